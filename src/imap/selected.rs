//! What the commands of the selected state share: keeping the view current, turning sequence
//! sets into messages, and EXPUNGE (RFC 3501 sections 6.4.3 and 7.4.1, RFC 4315's UID EXPUNGE).

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::sequence::SequenceSet;

use super::session::{Flow, ImapSession};
use super::view::Expunges;
use super::{sequence, syntax};
use crate::auth::Authenticator;
use crate::close_reason::CloseReason;
use crate::store::{Flags, MailboxSnapshot, Mailstore, StoreError};
use crate::wire::bye;

/// Why a sequence set names no messages: answered `BAD`, as Dovecot and Cyrus do.
pub(super) const INVALID_SEQUENCE: &str = "Invalid message sequence number";

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// Tell the client what changed in the selected mailbox since it last heard. A mailbox
    /// deleted or renamed by another session ends this one with `* BYE`: its numbering no
    /// longer means anything. A store failure skips this update; the next one catches up.
    pub(super) async fn sync(&mut self, expunges: Expunges) -> Result<(), CloseReason> {
        let Some(view) = self.selected.as_mut() else {
            return Ok(());
        };
        let user = self.session.user().unwrap_or_default();
        view.watch().mark_seen();
        let (name, read_only) = (view.name.clone(), view.read_only);
        let lost = match self.service.store.snapshot(&user, &name).await {
            Ok(snapshot) => {
                let first_recent = self.recent_for_arrivals(&snapshot, &name, read_only).await;
                let Some(view) = self.selected.as_mut() else {
                    return Ok(());
                };
                let out = self.channel.out();
                view.update(snapshot, expunges, out, first_recent, self.resync)
                    .is_err()
            }
            Err(StoreError::NoSuchMailbox) => true,
            Err(err) => {
                tracing::warn!(session_id = %self.session.id(), error = %err, "mailbox update failed");
                false
            }
        };
        if !lost {
            return Ok(());
        }
        let text = "Selected mailbox was deleted or renamed";
        bye(self.channel.out(), text);
        let _ = self.channel.flush().await;
        Err(CloseReason::Kicked(text.to_owned()))
    }

    /// Where `\Recent` starts for the messages `snapshot` has beyond the view: claimed (or,
    /// read-only, looked up) only if there are any. A store failure makes none of them
    /// recent, rather than failing the command.
    async fn recent_for_arrivals(
        &mut self,
        snapshot: &MailboxSnapshot,
        name: &str,
        read_only: bool,
    ) -> u32 {
        let arrived = self
            .selected
            .as_ref()
            .and_then(|view| view.arrivals(snapshot));
        let Some(highest) = arrived else {
            return u32::MAX;
        };
        if self.rev2 {
            // IMAP4rev2 has no `\Recent`: nothing to claim.
            return u32::MAX;
        }
        match self.recent_from(name, highest, read_only).await {
            Ok(uid) => uid,
            Err(err) => {
                tracing::warn!(session_id = %self.session.id(), error = %err, "\\Recent not claimed");
                u32::MAX
            }
        }
    }

    /// The indices (in the view) of the messages `set` names, in mailbox order.
    ///
    /// UIDs that name no message are skipped (RFC 3501 section 6.4.8); a sequence number
    /// beyond the mailbox is an error. The saved result `$` names the messages it kept that
    /// are still there, none if it is empty (RFC 5182 section 2.1).
    pub(super) fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, ()> {
        let Some(view) = self.selected.as_ref() else {
            return Err(());
        };
        let messages = view.messages();
        if syntax::is_saved_result(self.extension, set) {
            return Ok((0..messages.len())
                .filter(|&i| view.saved.binary_search(&messages[i].uid).is_ok())
                .collect());
        }
        if uid {
            let largest = view.largest_uid();
            return Ok((0..messages.len())
                .filter(|&i| sequence::contains(set, messages[i].uid, largest))
                .collect());
        }
        let exists = view.exists();
        if exists == 0 || sequence::highest_value(set) > exists {
            return Err(());
        }
        Ok((0..messages.len())
            .filter(|&i| sequence::contains(set, index_to_seq(i), exists))
            .collect())
    }

    /// EXPUNGE, and UID EXPUNGE when `only` is given: remove the messages marked `\Deleted`
    /// (of those `only` names) and report each removal.
    pub(super) async fn expunge(&mut self, tag: &Tag<'static>, only: Option<SequenceSet>) -> Flow {
        let Some(view) = self.selected.as_ref() else {
            return self.bad(tag, "No mailbox selected");
        };
        if view.read_only {
            return self.no(tag, "READ-ONLY", "Mailbox is read-only");
        }
        let named = match &only {
            Some(set) => self.resolve(set, true).unwrap_or_default(),
            None => (0..view.messages().len()).collect(),
        };
        let deleted: Vec<u32> = named
            .into_iter()
            .map(|i| &view.messages()[i])
            .filter(|m| m.flags.system.contains(Flags::DELETED))
            .map(|m| m.uid)
            .collect();
        let name = view.name.clone();
        if !deleted.is_empty()
            && let Err(err) = self
                .service
                .store
                .expunge(&self.user(), &name, &deleted)
                .await
        {
            return self.store_failed(tag, err);
        }
        if let Err(reason) = self.sync(Expunges::Report).await {
            return Flow::Close(reason);
        }
        let code = self.expunged_modseq_code();
        self.ok(tag, code, "EXPUNGE completed")
    }
}

/// The sequence number of the message at `index`.
pub(super) fn index_to_seq(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}
