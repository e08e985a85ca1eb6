//! Change notification: a session with a mailbox open (IMAP's selected state, IDLE) learns
//! that another session of the same store changed it, without polling the disk.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

/// Wakes when the watched mailbox changes: a message appended, expunged or re-flagged, or the
/// mailbox renamed or deleted.
///
/// A store that cannot tell (one written without notifications, or mail dropped into a
/// Maildir by another program) never wakes it; the IMAP service then still finds the changes
/// at the client's next command and at its IDLE poll interval.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use tower_mail::store::{Flags, Mailstore, MemoryStore};
///
/// let store = MemoryStore::new();
/// store.ensure_user("alice").await?;
/// let mut watch = store.watch("alice", "INBOX");
/// store.append("alice", "INBOX", "Subject: hi\r\n\r\n".into(), Flags::EMPTY.into(), None).await?;
/// watch.changed().await; // returns at once: the append happened after `watch`
/// # Ok::<_, tower_mail::store::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct MailboxWatch(Option<watch::Receiver<u64>>);

impl MailboxWatch {
    /// A watch that never wakes, for stores without notifications.
    pub fn never() -> MailboxWatch {
        MailboxWatch(None)
    }

    /// Wait for the next change after the last one this watch saw. Cancel-safe.
    pub async fn changed(&mut self) {
        if let Some(receiver) = self.0.as_mut()
            && receiver.changed().await.is_ok()
        {
            return;
        }
        // The store is gone (or never notifies): nothing will ever change.
        std::future::pending().await
    }

    /// Forget the changes seen so far, so that `changed` waits for a new one: call it just
    /// before re-reading the mailbox.
    pub fn mark_seen(&mut self) {
        if let Some(receiver) = self.0.as_mut() {
            receiver.borrow_and_update();
        }
    }
}

/// The senders behind [`MailboxWatch`]es, one per watched mailbox, kept only while somebody
/// watches.
#[derive(Debug, Default)]
pub(crate) struct ChangeNotifier {
    senders: Mutex<HashMap<(String, String), watch::Sender<u64>>>,
}

impl ChangeNotifier {
    /// A watch on `mailbox` (its canonical name) of `user`.
    pub(crate) fn watch(&self, user: &str, mailbox: &str) -> MailboxWatch {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        // Drop the senders nobody listens to any more, so the map holds only open mailboxes.
        senders.retain(|_, sender| sender.receiver_count() > 0);
        let sender = senders
            .entry((user.to_owned(), mailbox.to_owned()))
            .or_insert_with(|| watch::channel(0).0);
        MailboxWatch(Some(sender.subscribe()))
    }

    /// Wake every watch on `mailbox` of `user`.
    pub(crate) fn notify(&self, user: &str, mailbox: &str) {
        let senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = senders.get(&(user.to_owned(), mailbox.to_owned())) {
            sender.send_modify(|version| *version = version.wrapping_add(1));
        }
    }

    /// Wake every watch on `mailbox` of `user` and on the mailboxes below it (a rename or a
    /// delete moves them all).
    pub(crate) fn notify_tree(&self, user: &str, mailbox: &str) {
        let senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        let below = format!("{mailbox}/");
        for ((watched_user, watched), sender) in senders.iter() {
            if watched_user == user && (watched == mailbox || watched.starts_with(&below)) {
                sender.send_modify(|version| *version = version.wrapping_add(1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn wakes(watch: &mut MailboxWatch) -> bool {
        tokio::time::timeout(Duration::from_millis(50), watch.changed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn only_the_changed_mailbox_wakes() {
        let notifier = ChangeNotifier::default();
        let mut inbox = notifier.watch("alice", "INBOX");
        let mut sent = notifier.watch("alice", "Sent");
        let mut bobs = notifier.watch("bob", "INBOX");
        notifier.notify("alice", "INBOX");
        assert!(wakes(&mut inbox).await);
        assert!(!wakes(&mut inbox).await, "one change wakes once");
        assert!(!wakes(&mut sent).await);
        assert!(!wakes(&mut bobs).await);
    }

    #[tokio::test]
    async fn a_tree_change_wakes_the_children() {
        let notifier = ChangeNotifier::default();
        let mut child = notifier.watch("alice", "Archive/2024");
        let mut sibling = notifier.watch("alice", "Archived");
        notifier.notify_tree("alice", "Archive");
        assert!(wakes(&mut child).await);
        assert!(!wakes(&mut sibling).await);
    }

    #[tokio::test]
    async fn unwatched_mailboxes_are_forgotten_and_never_wakes_nothing() {
        let notifier = ChangeNotifier::default();
        drop(notifier.watch("alice", "INBOX"));
        let _other = notifier.watch("alice", "Sent");
        assert_eq!(notifier.senders.lock().unwrap().len(), 1);
        assert!(!wakes(&mut MailboxWatch::never()).await);
    }

    #[tokio::test]
    async fn mark_seen_skips_earlier_changes() {
        let notifier = ChangeNotifier::default();
        let mut watch = notifier.watch("alice", "INBOX");
        notifier.notify("alice", "INBOX");
        watch.mark_seen();
        assert!(!wakes(&mut watch).await);
    }
}
