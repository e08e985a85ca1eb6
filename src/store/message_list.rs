//! A mailbox's messages at one moment, shared: every IMAP session with the mailbox selected
//! holds the same list instead of a copy of its own, so a thousand sessions on a
//! 10,000-message INBOX cost the list once.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::MessageMeta;

/// The messages of a [`MailboxSnapshot`](super::MailboxSnapshot), sorted by UID ascending:
/// immutable and cheap to clone (a reference count), read as a slice.
///
/// Stores hand out the same list for as long as the mailbox's messages stay as they were, so
/// that the sessions holding it share one copy ([`ptr_eq`](Self::ptr_eq) tells).
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use tower_mail::store::{MessageList, MessageMeta};
///
/// let meta = MessageMeta { uid: 1, size: 10, flags: Default::default(), internal_date: UNIX_EPOCH, modseq: 1 };
/// let list = MessageList::from(vec![meta]);
/// let held = list.clone();
/// assert!(MessageList::ptr_eq(&list, &held));
/// assert_eq!(held[0].uid, 1);
/// assert_eq!(list.iter().map(|m| m.size).sum::<u64>(), 10);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MessageList(Arc<[MessageMeta]>);

impl MessageList {
    /// Whether `a` and `b` are the same list in memory, not merely equal.
    pub fn ptr_eq(a: &MessageList, b: &MessageList) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// `fresh` if it differs from `self`, else `self` again: a store keeps handing out the
    /// list it handed out before while the messages stay the same.
    pub(crate) fn or_same(&self, fresh: Vec<MessageMeta>) -> MessageList {
        match fresh[..] == self[..] {
            true => self.clone(),
            false => fresh.into(),
        }
    }

    /// The messages to change in place: copied first if the list is shared, so that only
    /// this holder sees the change.
    #[cfg(feature = "imap")]
    pub(crate) fn make_mut(&mut self) -> &mut [MessageMeta] {
        Arc::make_mut(&mut self.0)
    }
}

impl Deref for MessageList {
    type Target = [MessageMeta];

    fn deref(&self) -> &[MessageMeta] {
        &self.0
    }
}

impl From<Vec<MessageMeta>> for MessageList {
    fn from(messages: Vec<MessageMeta>) -> MessageList {
        MessageList(messages.into())
    }
}

impl FromIterator<MessageMeta> for MessageList {
    fn from_iter<I: IntoIterator<Item = MessageMeta>>(messages: I) -> MessageList {
        MessageList(messages.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a MessageList {
    type Item = &'a MessageMeta;
    type IntoIter = std::slice::Iter<'a, MessageMeta>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for MessageList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn meta(uid: u32) -> MessageMeta {
        MessageMeta {
            uid,
            size: 10,
            flags: Default::default(),
            internal_date: UNIX_EPOCH,
            modseq: 1,
        }
    }

    #[test]
    fn the_same_messages_keep_the_list_handed_out_before() {
        let before = MessageList::from(vec![meta(1), meta(2)]);
        let same = before.or_same(vec![meta(1), meta(2)]);
        assert!(MessageList::ptr_eq(&before, &same));
        let other = before.or_same(vec![meta(1)]);
        assert!(!MessageList::ptr_eq(&before, &other));
        assert_eq!(other.len(), 1);
    }

    #[test]
    #[cfg(feature = "imap")]
    fn a_change_in_place_is_seen_by_its_holder_alone() {
        let shared = MessageList::from(vec![meta(1), meta(2)]);
        let mut mine = shared.clone();
        mine.make_mut()[1].modseq = 9;
        assert_eq!((shared[1].modseq, mine[1].modseq), (1, 9));
        assert!(!MessageList::ptr_eq(&shared, &mine));
    }
}
