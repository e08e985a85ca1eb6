//! STORE and UID STORE (RFC 3501 section 6.4.6).

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::response::Data;
use imap_codec::imap_types::sequence::SequenceSet;

use super::flags;
use super::response;
use super::selected::{INVALID_SEQUENCE, index_to_seq};
use super::session::{Flow, ImapSession};
use crate::auth::Authenticator;
use crate::store::{Flags, Mailstore, StoreError};

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    /// Change flags, answering with each message's flags unless `.SILENT`. Keywords are not
    /// kept (see [`flags::from_imap`]); the answer shows the flags as stored.
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
        let requested = flags::from_imap(requested);
        for index in indices {
            let Some(meta) = self.selected.as_ref().map(|v| v.messages()[index].clone()) else {
                break;
            };
            let wanted = apply(kind, meta.flags, requested);
            if wanted != meta.flags {
                match self.set_flags(index, wanted).await {
                    Ok(()) => {}
                    // Expunged meanwhile: nothing to show either.
                    Err(StoreError::NoSuchMessage) => continue,
                    Err(err) => return self.store_failed(tag, err),
                }
            }
            if reply == StoreResponse::Answer {
                let recent = self.selected.as_ref().is_some_and(|v| v.is_recent(index));
                let mut items = vec![MessageDataItem::Flags(flags::to_fetch(wanted, recent))];
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
}

/// The flags after `kind` with `requested`.
fn apply(kind: StoreType, current: Flags, requested: Flags) -> Flags {
    match kind {
        StoreType::Replace => requested,
        StoreType::Add => current | requested,
        StoreType::Remove => {
            let mut remaining = current;
            remaining.remove(requested);
            remaining
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_remove_replace() {
        let current = Flags::SEEN | Flags::FLAGGED;
        assert_eq!(
            apply(StoreType::Add, current, Flags::DELETED),
            current | Flags::DELETED
        );
        assert_eq!(
            apply(StoreType::Remove, current, Flags::SEEN),
            Flags::FLAGGED
        );
        assert_eq!(
            apply(StoreType::Replace, current, Flags::DRAFT),
            Flags::DRAFT
        );
    }
}
