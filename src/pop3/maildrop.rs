//! A POP3 maildrop: the messages of a session's snapshot with their deletion marks, and the
//! exclusive lock RFC 1939 asks for.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::store::{INBOX, MailboxSnapshot, Mailstore, StoreResult};

/// One message as POP3 sees it.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) uid: u32,
    pub(crate) size: u64,
    pub(crate) deleted: bool,
}

/// The messages a POP3 session works on: fixed at login (RFC 1939 numbers never change during
/// a session), with deletions marked until QUIT.
#[derive(Debug)]
pub(crate) struct Maildrop {
    uid_validity: u32,
    messages: Vec<Message>,
    /// Unique-ids kept from an earlier server, by UID (see [`Mailstore::pop3_uidls`]).
    kept_uidls: HashMap<u32, String>,
}

impl Maildrop {
    /// `user`'s INBOX as it is now.
    pub(crate) async fn open(store: &impl Mailstore, user: &str) -> StoreResult<Maildrop> {
        let snapshot = store.snapshot(user, INBOX).await?;
        let kept_uidls = store.pop3_uidls(user, INBOX).await?;
        Ok(Maildrop::new(snapshot, kept_uidls))
    }

    /// The messages of `snapshot`; `kept_uidls` are used where RFC 1939 allows them (1 to 70
    /// characters from 0x21 to 0x7E), so a damaged one cannot break the listing.
    pub(crate) fn new(snapshot: MailboxSnapshot, mut kept_uidls: HashMap<u32, String>) -> Maildrop {
        kept_uidls.retain(|_, uidl| {
            (1..=70).contains(&uidl.len()) && uidl.bytes().all(|b| (0x21..=0x7e).contains(&b))
        });
        Maildrop {
            kept_uidls,
            uid_validity: snapshot.uid_validity,
            messages: snapshot
                .messages
                .into_iter()
                .map(|m| Message {
                    uid: m.uid,
                    size: m.size,
                    deleted: false,
                })
                .collect(),
        }
    }

    /// The message numbered `number` (1-based), unless it does not exist or is marked deleted.
    pub(crate) fn get(&self, number: u32) -> Option<&Message> {
        let index = usize::try_from(number).ok()?.checked_sub(1)?;
        self.messages.get(index).filter(|m| !m.deleted)
    }

    /// Mark `number` deleted; false if there is no such undeleted message.
    pub(crate) fn delete(&mut self, number: u32) -> bool {
        let Some(index) = usize::try_from(number).ok().and_then(|n| n.checked_sub(1)) else {
            return false;
        };
        match self.messages.get_mut(index) {
            Some(m) if !m.deleted => {
                m.deleted = true;
                true
            }
            _ => false,
        }
    }

    /// Unmark every deletion (RSET).
    pub(crate) fn reset(&mut self) {
        self.messages.iter_mut().for_each(|m| m.deleted = false);
    }

    /// The undeleted messages with their numbers.
    pub(crate) fn live(&self) -> impl Iterator<Item = (u32, &Message)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.deleted)
            .map(|(i, m)| (i as u32 + 1, m))
    }

    /// Count and total size of the undeleted messages (STAT).
    pub(crate) fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(count, size), (_, m)| (count + 1, size + m.size))
    }

    /// UIDs marked deleted, to expunge in the UPDATE state.
    pub(crate) fn deleted_uids(&self) -> Vec<u32> {
        self.messages
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.uid)
            .collect()
    }

    /// The unique-id listing of a message: stable across sessions because UIDs and
    /// UIDVALIDITY persist. Dovecot's default format (`%08Xu%08Xv`), so clients migrating
    /// between the two do not download everything again; or, as in Dovecot, the one the
    /// store kept from an earlier server.
    pub(crate) fn unique_id(&self, message: &Message) -> String {
        match self.kept_uidls.get(&message.uid) {
            Some(kept) => kept.clone(),
            None => format!("{:08X}{:08X}", message.uid, self.uid_validity),
        }
    }
}

/// Which users have a POP3 session in TRANSACTION state now, shared by every session of one
/// service: RFC 1939 section 8 wants the maildrop locked exclusively.
#[derive(Debug, Clone, Default)]
pub(crate) struct MaildropLocks(Arc<Mutex<HashSet<String>>>);

/// Holds one user's maildrop lock; dropping it unlocks, on every path including panics.
#[derive(Debug)]
pub(crate) struct MaildropLock {
    locks: MaildropLocks,
    user: String,
}

impl MaildropLocks {
    pub(crate) fn try_lock(&self, user: &str) -> Option<MaildropLock> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(user.to_owned()).then(|| MaildropLock {
            locks: self.clone(),
            user: user.to_owned(),
        })
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        let mut held = self.locks.0.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Flags, MessageMeta};

    fn drop_of(sizes: &[u64]) -> Maildrop {
        drop_with_kept_uidls(sizes, HashMap::new())
    }

    fn drop_with_kept_uidls(sizes: &[u64], kept: HashMap<u32, String>) -> Maildrop {
        Maildrop::new(
            MailboxSnapshot {
                uid_validity: 7,
                uid_next: 100,
                messages: sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &size)| MessageMeta {
                        uid: 10 + i as u32,
                        size,
                        flags: Flags::EMPTY.into(),
                        internal_date: std::time::SystemTime::UNIX_EPOCH,
                        modseq: 0,
                    })
                    .collect(),
                keywords: Default::default(),
                highest_modseq: 0,
            },
            kept,
        )
    }

    #[test]
    fn deleted_messages_vanish_from_stat_and_come_back_on_reset() {
        let mut drop = drop_of(&[100, 200, 300]);
        assert_eq!(drop.stat(), (3, 600));
        assert!(drop.delete(2));
        assert!(!drop.delete(2), "a second DELE of the same message fails");
        assert!(!drop.delete(0) && !drop.delete(4));
        assert_eq!(drop.stat(), (2, 400));
        assert!(drop.get(2).is_none());
        assert_eq!(drop.deleted_uids(), vec![11]);
        drop.reset();
        assert_eq!(drop.stat(), (3, 600));
    }

    #[test]
    fn unique_ids_follow_uid_and_uidvalidity() {
        let drop = drop_of(&[1]);
        assert_eq!(drop.unique_id(drop.get(1).unwrap()), "0000000A00000007");
    }

    #[test]
    fn kept_unique_ids_are_used_where_rfc_1939_allows_them() {
        let kept = [
            (10, "courier-uidl.1"),
            (11, ""),
            (12, "has space"),
            (13, &"x".repeat(71)),
        ];
        let kept = kept
            .iter()
            .map(|(uid, uidl)| (*uid, uidl.to_string()))
            .collect();
        let drop = drop_with_kept_uidls(&[1, 1, 1, 1, 1], kept);
        let ids: Vec<String> = drop.live().map(|(_, m)| drop.unique_id(m)).collect();
        assert_eq!(
            ids,
            [
                "courier-uidl.1",
                "0000000B00000007",
                "0000000C00000007",
                "0000000D00000007",
                "0000000E00000007",
            ]
        );
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let locks = MaildropLocks::default();
        let held = locks.try_lock("alice").unwrap();
        assert!(locks.try_lock("alice").is_none());
        assert!(locks.try_lock("bob").is_some());
        drop(held);
        assert!(locks.try_lock("alice").is_some());
    }
}
