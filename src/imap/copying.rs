//! COPY, MOVE and their UID forms (RFC 3501 section 6.4.7, RFC 6851), answered with
//! COPYUID (RFC 4315).

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, StatusKind};
use imap_codec::imap_types::sequence::SequenceSet;

use super::mailboxes::mailbox_name;
use super::response;
use super::selected::INVALID_SEQUENCE;
use super::session::{Flow, ImapSession};
use super::view::Expunges;
use crate::auth::Authenticator;
use crate::store::{Mailstore, StoreError};

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// COPY (`moving` false) and MOVE. All or nothing: if one message fails, the copies
    /// made so far are removed again (RFC 3501 section 6.4.7).
    pub(super) async fn copy(
        &mut self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        target: Mailbox<'static>,
        uid: bool,
        moving: bool,
    ) -> Flow {
        let Some(view) = self.selected.as_ref() else {
            return self.bad(tag, "No mailbox selected");
        };
        if moving && view.read_only {
            return self.no(tag, "READ-ONLY", "Mailbox is read-only");
        }
        let Ok(indices) = self.resolve(set, uid) else {
            return self.bad(tag, INVALID_SEQUENCE);
        };
        let Some(target) = mailbox_name(&target, self.rev2) else {
            return self.no(tag, "TRYCREATE", "No such mailbox");
        };
        let user = self.user();
        let store = &self.service.store;
        let uid_validity = match store.uid_validity(&user, &target).await {
            Ok(uid_validity) => uid_validity,
            Err(StoreError::NoSuchMailbox) => {
                return self.no(tag, "TRYCREATE", "No such mailbox");
            }
            Err(err) => return self.store_failed(tag, err),
        };
        let source = view.name.clone();
        let messages: Vec<_> = indices
            .iter()
            .map(|&i| view.messages()[i].clone())
            .collect();
        let mut copied = Vec::with_capacity(messages.len());
        for meta in &messages {
            let result = async {
                let content = store.fetch(&user, &source, meta.uid).await?;
                store
                    .append(
                        &user,
                        &target,
                        content,
                        meta.flags.clone(),
                        Some(meta.internal_date),
                    )
                    .await
            }
            .await;
            match result {
                Ok(new_uid) => copied.push((meta.uid, new_uid)),
                // Expunged by another session meanwhile: nothing left to copy.
                Err(StoreError::NoSuchMessage) => {}
                Err(err) => {
                    let new_uids: Vec<u32> = copied.iter().map(|&(_, new)| new).collect();
                    if let Err(undo) = store.expunge(&user, &target, &new_uids).await {
                        tracing::error!(session_id = %self.session.id(), error = %undo, "removing a failed COPY's copies failed");
                    }
                    return self.store_failed(tag, err);
                }
            }
        }
        let code = copy_uid(uid_validity, &copied);
        let command = if moving { "MOVE" } else { "COPY" };
        if !moving {
            response::tagged(
                self.channel.out(),
                tag,
                StatusKind::Ok,
                code,
                "COPY completed",
            );
            return Flow::Continue;
        }
        // RFC 6851 section 4.3: COPYUID goes in an untagged OK before the EXPUNGEs.
        response::untagged(self.channel.out(), StatusKind::Ok, code, "Moved");
        let moved: Vec<u32> = copied.iter().map(|&(old, _)| old).collect();
        if !moved.is_empty()
            && let Err(err) = self.service.store.expunge(&user, &source, &moved).await
        {
            return self.store_failed(tag, err);
        }
        if let Err(reason) = self.sync(Expunges::Report).await {
            return Flow::Close(reason);
        }
        // MOVE expunges as EXPUNGE does: with QRESYNC on, its tagged OK carries the
        // HIGHESTMODSEQ the client now knows (RFC 7162 section 3.2.7).
        let code = self.expunged_modseq_code();
        self.ok(tag, code, &format!("{command} completed"))
    }
}

/// The COPYUID code for `copied` (source UID, new UID) pairs, both ascending; none when
/// nothing was copied, since a UID set cannot be empty.
fn copy_uid(uid_validity: u32, copied: &[(u32, u32)]) -> Option<Code<'static>> {
    let source = uid_set(copied.iter().map(|&(old, _)| old))?;
    let destination = uid_set(copied.iter().map(|&(_, new)| new))?;
    Some(Code::CopyUid {
        uid_validity: NonZeroU32::new(uid_validity)?,
        source,
        destination,
    })
}

/// Ascending UIDs as a UID set, runs written as ranges. The order is kept, so the source and
/// destination sets of COPYUID pair up element by element.
pub(super) fn uid_set(uids: impl Iterator<Item = u32>) -> Option<UidSet> {
    let mut elements: Vec<UidElement> = Vec::new();
    for uid in uids.filter_map(NonZeroU32::new) {
        match elements.last_mut() {
            Some(UidElement::Single(start)) if start.get().checked_add(1) == Some(uid.get()) => {
                *elements.last_mut().expect("just matched") = UidElement::Range(*start, uid);
            }
            Some(UidElement::Range(_, end)) if end.get().checked_add(1) == Some(uid.get()) => {
                *end = uid;
            }
            _ => elements.push(UidElement::Single(uid)),
        }
    }
    Vec1::try_from(elements).ok().map(UidSet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_become_ranges() {
        let set = uid_set([1, 2, 3, 7, 9, 10].into_iter()).unwrap();
        let text: Vec<String> = set
            .0
            .as_ref()
            .iter()
            .map(|e| match e {
                UidElement::Single(a) => a.to_string(),
                UidElement::Range(a, b) => format!("{a}:{b}"),
            })
            .collect();
        assert_eq!(text.join(","), "1:3,7,9:10");
        assert!(uid_set(std::iter::empty()).is_none());
    }
}
