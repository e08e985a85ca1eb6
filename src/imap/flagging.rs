//! STORE and UID STORE (RFC 3501 section 6.4.6).

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::sequence::SequenceSet;

use super::flags::{self, Refused};
use super::response;
use super::selected::{INVALID_SEQUENCE, index_to_seq};
use super::session::{Flow, ImapSession};
use crate::auth::Authenticator;
use crate::store::{MAX_KEYWORD_LEN, Mailstore, MessageFlags, StoreError};

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// Change flags and keywords, answering with each message's flags unless `.SILENT`; the
    /// answer shows them as stored. A keyword new to the mailbox is announced with an
    /// untagged FLAGS before the first message that has it (RFC 3501 section 7.2.6). One
    /// keyword too many for the mailbox is refused before any message changes: all the
    /// messages get the same new keywords, so the first change fails.
    pub(super) async fn store(
        &mut self,
        tag: &Tag<'static>,
        set: &SequenceSet,
        kind: StoreType,
        reply: StoreResponse,
        requested: &[Flag<'_>],
        uid: bool,
    ) -> Flow {
        if self.selected.as_ref().is_some_and(|v| v.read_only) {
            return self.no(tag, "READ-ONLY", "Mailbox is read-only");
        }
        let Ok(indices) = self.resolve(set, uid) else {
            return self.bad(tag, INVALID_SEQUENCE);
        };
        let requested = match flags::from_imap(requested) {
            Ok(requested) => requested,
            Err(refused) => return self.flags_refused(tag, refused),
        };
        for index in indices {
            let Some(meta) = self.selected.as_ref().map(|v| v.messages()[index].clone()) else {
                break;
            };
            let mut shown = apply(kind, &meta.flags, &requested);
            if shown != meta.flags {
                match self.set_flags(index, shown).await {
                    Ok(stored) => shown = stored,
                    // Expunged meanwhile: nothing to show either.
                    Err(StoreError::NoSuchMessage) => continue,
                    Err(err) => return self.store_failed(tag, err),
                }
            }
            if reply == StoreResponse::Answer {
                let recent = self.selected.as_ref().is_some_and(|v| v.is_recent(index));
                let mut items = vec![MessageDataItem::Flags(flags::to_fetch(&shown, recent))];
                if uid {
                    items.extend(NonZeroU32::new(meta.uid).map(MessageDataItem::Uid));
                }
                let seq =
                    NonZeroU32::new(index_to_seq(index)).expect("sequence numbers start at 1");
                let items = Vec1::try_from(items).expect("FLAGS is always there");
                response::data(self.channel.out(), Data::Fetch { seq, items });
                if let Err(reason) = self.send_if_full().await {
                    return Flow::Close(reason);
                }
            }
        }
        self.ok(tag, None, "STORE completed")
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
