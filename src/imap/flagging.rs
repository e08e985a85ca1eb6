//! STORE and UID STORE (RFC 3501 section 6.4.6), with RFC 7162's UNCHANGEDSINCE.

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::response::{Code, Data};
use imap_codec::imap_types::sequence::SequenceSet;

use super::condstore::Resync;
use super::flags::{self, Refused};
use super::selected::{INVALID_SEQUENCE, index_to_seq};
use super::session::{Flow, ImapSession};
use super::{response, sequence};
use crate::auth::Authenticator;
use crate::store::{FlagsUpdate, MAX_KEYWORD_LEN, Mailstore, MessageFlags, StoreError, ranges_of};

/// What one STORE asks for: how to change the flags, with which, and whether to answer
/// with the result.
pub(super) struct StoreChange<'a> {
    pub(super) kind: StoreType,
    pub(super) reply: StoreResponse,
    pub(super) flags: &'a [Flag<'a>],
}

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// Change flags and keywords, answering with each message's flags unless `.SILENT`; the
    /// answer shows them as stored. A keyword new to the mailbox is announced with an
    /// untagged FLAGS before the first message that has it (RFC 3501 section 7.2.6). One
    /// keyword too many for the mailbox is refused before any message changes: all the
    /// messages get the same new keywords, so the first change fails.
    ///
    /// With UNCHANGEDSINCE (RFC 7162 section 3.1.3) a message that changed after the given
    /// mod-sequence is left alone and listed in the tagged `OK [MODIFIED ...]` (by number, or
    /// by UID for UID STORE); every message changed is answered with its MODSEQ, also with
    /// `.SILENT`. With CONDSTORE on, answers carry MODSEQ too.
    pub(super) async fn store(
        &mut self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        change: StoreChange<'_>,
        uid: bool,
        modifiers: &[StoreModifier],
    ) -> Flow {
        if self.selected.as_ref().is_some_and(|v| v.read_only) {
            return self.no(tag, "READ-ONLY", "Mailbox is read-only");
        }
        let Ok(indices) = self.resolve(set, uid) else {
            return self.bad(tag, INVALID_SEQUENCE);
        };
        let requested = match flags::from_imap(change.flags) {
            Ok(requested) => requested,
            Err(refused) => return self.flags_refused(tag, refused),
        };
        let unchanged_since = match self.store_modifiers(modifiers) {
            Ok(unchanged_since) => unchanged_since,
            Err(text) => return self.bad(tag, text),
        };
        let with_modseq = unchanged_since.is_some() || self.resync >= Resync::Condstore;
        let mut modified = Vec::new();
        for index in indices {
            let Some(meta) = self.selected.as_ref().map(|v| v.messages()[index].clone()) else {
                break;
            };
            let mut shown = apply(change.kind, &meta.flags, &requested);
            let mut modseq = meta.modseq;
            // A conditional change goes to the store even when the flags stay: the condition
            // is checked there, against the message as it is now.
            if shown != meta.flags || unchanged_since.is_some() {
                match self.set_flags(index, shown, unchanged_since).await {
                    Ok(FlagsUpdate::Stored { flags, modseq: now }) => {
                        (shown, modseq) = (flags, now)
                    }
                    Ok(FlagsUpdate::Modified { .. }) => {
                        modified.push(if uid { meta.uid } else { index_to_seq(index) });
                        continue;
                    }
                    // Expunged meanwhile: nothing to show either.
                    Err(StoreError::NoSuchMessage) => continue,
                    Err(err) => return self.store_failed(tag, err),
                }
            }
            let answer = change.reply == StoreResponse::Answer;
            if !answer && unchanged_since.is_none() {
                continue;
            }
            let recent = self.selected.as_ref().is_some_and(|v| v.is_recent(index));
            let mut items = Vec::with_capacity(3);
            if answer {
                items.push(MessageDataItem::Flags(flags::to_fetch(&shown, recent)));
            }
            if uid {
                items.extend(NonZeroU32::new(meta.uid).map(MessageDataItem::Uid));
            }
            if with_modseq {
                items.extend(NonZeroU64::new(modseq).map(MessageDataItem::ModSeq));
            }
            let Ok(items) = Vec1::try_from(items) else {
                continue;
            };
            let seq = NonZeroU32::new(index_to_seq(index)).expect("sequence numbers start at 1");
            response::data(self.channel.out(), Data::Fetch { seq, items });
            if let Err(reason) = self.send_if_full().await {
                return Flow::Close(reason);
            }
        }
        match sequence::from_ranges(&ranges_of(modified)) {
            Some(set) => self.ok(tag, Some(Code::Modified(set)), "Conditional STORE failed"),
            None => self.ok(tag, None, "STORE completed"),
        }
    }

    /// The answer to a flag list that cannot be stored (STORE, APPEND).
    pub(super) fn flags_refused(&mut self, tag: &Tag<'static>, refused: Refused) -> Flow {
        match refused {
            Refused::SystemFlag(flag) => self.bad(tag, &format!("Invalid system flag {flag}")),
            Refused::KeywordTooLong => self.no(
                tag,
                "LIMIT",
                &format!("Keyword longer than {MAX_KEYWORD_LEN} octets"),
            ),
        }
    }
}

/// The flags after `kind` with `requested`.
fn apply(kind: StoreType, current: &MessageFlags, requested: &MessageFlags) -> MessageFlags {
    match kind {
        StoreType::Replace => requested.clone(),
        StoreType::Add => {
            let mut all = current.clone();
            all.system |= requested.system;
            for keyword in &requested.keywords {
                all.keywords.insert(keyword.clone());
            }
            all
        }
        StoreType::Remove => {
            let mut remaining = current.clone();
            remaining.system.remove(requested.system);
            for keyword in &requested.keywords {
                remaining.keywords.remove(keyword);
            }
            remaining
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{Flags, test_flags as flags};

    #[test]
    fn add_remove_replace() {
        let current = flags(Flags::SEEN | Flags::FLAGGED, &["$Label1", "NonJunk"]);
        assert_eq!(
            apply(
                StoreType::Add,
                &current,
                &flags(Flags::DELETED, &["nonjunk", "Todo"])
            ),
            flags(
                Flags::SEEN | Flags::FLAGGED | Flags::DELETED,
                &["$Label1", "NonJunk", "Todo"]
            )
        );
        assert_eq!(
            apply(
                StoreType::Remove,
                &current,
                &flags(Flags::SEEN, &["NONJUNK"])
            ),
            flags(Flags::FLAGGED, &["$Label1"])
        );
        assert_eq!(
            apply(StoreType::Replace, &current, &flags(Flags::DRAFT, &[])),
            flags(Flags::DRAFT, &[]),
            "replacing clears the keywords too"
        );
    }
}
