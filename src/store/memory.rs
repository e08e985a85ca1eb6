//! In-memory storage: [`MemoryStore`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};

use super::keyword_table::KeywordTable;
use super::modseq::{self, ExpungeHistory};
use super::rules;
use super::{
    ChangeNotifier, FlagsUpdate, INBOX, MailboxInfo, MailboxSnapshot, MailboxWatch, Mailstore,
    MessageFlags, MessageList, MessageMeta, MessageUpload, StoreError, StoreResult, UploadLength,
    broken_upload, rfc822_size,
};

/// Mail kept in memory, with the same rules as [`Maildir`](super::Maildir): the same valid
/// names, INBOX plus Sent, Drafts, Trash and Junk for a new user, UIDs never reused, the same
/// [`MAX_KEYWORDS`](super::MAX_KEYWORDS) keywords per mailbox, and mod-sequences kept as
/// [`Maildir`](super::Maildir) keeps them (on disk there).
///
/// For tests, and as a starting point for other storage. Clones share the same mail; nothing
/// survives the process.
///
/// Deleting a mailbox deletes that mailbox only: its children stay, and so does its
/// subscription (RFC 3501 forbids dropping subscriptions unilaterally).
///
/// ```
/// use bytes::Bytes;
/// use tower_mail::store::{Flags, Mailstore, MemoryStore};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// runtime.block_on(async {
///     store.ensure_user("alice").await?;
///     let uid = store
///         .append("alice", "inbox", Bytes::from_static(b"Subject: hi\n\nHello\n"), Flags::EMPTY.into(), None)
///         .await?;
///     let snapshot = store.snapshot("alice", "INBOX").await?;
///     assert_eq!(snapshot.messages[0].uid, uid);
///     assert_eq!(snapshot.messages[0].size, 22); // 19 octets, each LF counted as CRLF
///     Ok::<_, tower_mail::store::StoreError>(())
/// })?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    users: Arc<Mutex<HashMap<String, User>>>,
    changes: Arc<ChangeNotifier>,
}

#[derive(Default)]
struct User {
    mailboxes: HashMap<String, Mailbox>,
    /// Kept apart from the mailboxes: a subscription outlives its mailbox.
    subscriptions: BTreeSet<String>,
}

struct Mailbox {
    uid_validity: u32,
    uid_next: u32,
    /// The first UID no read-write session has been told about (`\Recent` from there on).
    first_recent_uid: u32,
    messages: BTreeMap<u32, Message>,
    keywords: KeywordTable,
    highest_modseq: u64,
    expunged: ExpungeHistory,
    /// The messages as the last snapshot listed them: handed out again while they stay the
    /// same, so that the sessions holding them share one list.
    listed: MessageList,
}

impl Mailbox {
    fn new() -> Mailbox {
        // Mod-sequences are positive: an empty mailbox starts at 1.
        Mailbox {
            uid_validity: rules::new_uid_validity(0),
            uid_next: 1,
            first_recent_uid: 1,
            messages: BTreeMap::new(),
            keywords: KeywordTable::default(),
            highest_modseq: 1,
            expunged: ExpungeHistory::new(1),
            listed: MessageList::default(),
        }
    }
}

struct Message {
    content: Bytes,
    size: u64,
    flags: MessageFlags,
    internal_date: SystemTime,
    modseq: u64,
}

impl MemoryStore {
    /// An empty store.
    ///
    /// ```
    /// let store = tower_mail::store::MemoryStore::new();
    /// let shared = store.clone(); // the same mail
    /// # drop(shared);
    /// ```
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Runs `op` on an existing user.
    fn with_user<T>(
        &self,
        user: &str,
        op: impl FnOnce(&mut User) -> StoreResult<T>,
    ) -> StoreResult<T> {
        rules::check_user(user)?;
        // Every operation leaves the map consistent before it can panic.
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        op(users.get_mut(user).ok_or(StoreError::NoSuchMailbox)?)
    }

    /// Runs `op` on an existing mailbox.
    fn with_mailbox<T>(
        &self,
        user: &str,
        mailbox: &str,
        op: impl FnOnce(&mut Mailbox) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mailbox = rules::canonical_mailbox(mailbox)?;
        self.with_user(user, |user| {
            op(user
                .mailboxes
                .get_mut(&mailbox)
                .ok_or(StoreError::NoSuchMailbox)?)
        })
    }
}

impl MemoryStore {
    /// Runs `op`, which changes the mailbox, like [`with_mailbox`](Self::with_mailbox), then
    /// wakes the sessions watching it.
    fn changing_mailbox<T>(
        &self,
        user: &str,
        mailbox: &str,
        op: impl FnOnce(&mut Mailbox) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let result = self.with_mailbox(user, mailbox, op)?;
        self.changes
            .notify(user, &rules::canonical_mailbox(mailbox)?);
        Ok(result)
    }

    /// Delivers a whole message: the end of every delivery, whole or streamed.
    fn deliver(
        &self,
        user: &str,
        mailbox: &str,
        content: Bytes,
        mut flags: MessageFlags,
        internal_date: Option<SystemTime>,
    ) -> StoreResult<u32> {
        self.changing_mailbox(user, mailbox, |mailbox| {
            flags.keywords = mailbox.keywords.canonical(&flags.keywords)?;
            let uid = rules::assign_uid(
                &mut mailbox.uid_validity,
                &mut mailbox.uid_next,
                &mut mailbox.messages,
            );
            let message = Message {
                size: rfc822_size(&content),
                content,
                flags,
                internal_date: internal_date.unwrap_or_else(SystemTime::now),
                modseq: modseq::next(&mut mailbox.highest_modseq),
            };
            mailbox.messages.insert(uid, message);
            Ok(uid)
        })
    }
}

/// Initial buffer of an upload: its announced size, up to this (a bogus size must not
/// allocate).
const INITIAL_CAPACITY: u64 = 64 * 1024;

/// A message being delivered to a [`MemoryStore`] piece by piece, from
/// [`Mailstore::begin_append`]: gathered in memory (where the store keeps it anyway), and
/// delivered at [`commit`](MessageUpload::commit). Dropping it uncommitted leaves nothing.
pub struct MemoryUpload {
    store: MemoryStore,
    user: String,
    mailbox: String,
    length: UploadLength,
    /// `None` once a write failed.
    content: Option<BytesMut>,
}

impl MessageUpload for MemoryUpload {
    async fn write(&mut self, chunk: &[u8]) -> StoreResult<()> {
        let content = self.content.as_mut().ok_or_else(broken_upload)?;
        if let Err(err) = self.length.add(chunk.len()) {
            self.content = None;
            return Err(err);
        }
        content.extend_from_slice(chunk);
        Ok(())
    }

    async fn commit(
        self,
        flags: MessageFlags,
        internal_date: Option<SystemTime>,
    ) -> StoreResult<u32> {
        let content = self.content.ok_or_else(broken_upload)?;
        self.length.check_complete()?;
        self.store.deliver(
            &self.user,
            &self.mailbox,
            content.freeze(),
            flags,
            internal_date,
        )
    }
}

impl fmt::Debug for MemoryUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryUpload")
            .field("user", &self.user)
            .field("mailbox", &self.mailbox)
            .field("length", &self.length)
            .field("broken", &self.content.is_none())
            .finish_non_exhaustive()
    }
}

impl User {
    /// Creates the missing parents of `mailbox`, as Maildir does.
    fn create_parents(&mut self, mailbox: &str) {
        let mut end = 0;
        while let Some(slash) = mailbox[end..].find('/') {
            end += slash;
            self.mailboxes
                .entry(mailbox[..end].to_owned())
                .or_insert_with(Mailbox::new);
            end += 1;
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemoryStore")
            .field("users", &users.len())
            .finish_non_exhaustive()
    }
}

impl Mailstore for MemoryStore {
    type Upload = MemoryUpload;

    async fn ensure_user(&self, user: &str) -> StoreResult<()> {
        rules::check_user(user)?;
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.entry(user.to_owned()).or_insert_with(|| {
            let names =
                std::iter::once(INBOX).chain(rules::SPECIAL_USE.iter().map(|(name, _)| *name));
            let mut new_user = User::default();
            for name in names {
                new_user.mailboxes.insert(name.to_owned(), Mailbox::new());
                new_user.subscriptions.insert(name.to_owned());
            }
            new_user
        });
        Ok(())
    }

    async fn snapshot(&self, user: &str, mailbox: &str) -> StoreResult<MailboxSnapshot> {
        self.with_mailbox(user, mailbox, |mailbox| {
            let messages = mailbox
                .messages
                .iter()
                .map(|(&uid, message)| MessageMeta {
                    uid,
                    size: message.size,
                    flags: message.flags.clone(),
                    internal_date: message.internal_date,
                    modseq: message.modseq,
                })
                .collect::<Vec<_>>();
            mailbox.listed = mailbox.listed.or_same(messages);
            Ok(MailboxSnapshot {
                uid_validity: mailbox.uid_validity,
                uid_next: mailbox.uid_next,
                messages: mailbox.listed.clone(),
                keywords: mailbox.keywords.all(),
                highest_modseq: mailbox.highest_modseq,
            })
        })
    }

    async fn fetch(&self, user: &str, mailbox: &str, uid: u32) -> StoreResult<Bytes> {
        self.with_mailbox(user, mailbox, |mailbox| {
            let message = mailbox
                .messages
                .get(&uid)
                .ok_or(StoreError::NoSuchMessage)?;
            Ok(message.content.clone())
        })
    }

    async fn append(
        &self,
        user: &str,
        mailbox: &str,
        content: Bytes,
        flags: MessageFlags,
        internal_date: Option<SystemTime>,
    ) -> StoreResult<u32> {
        // Without copying the message into an upload.
        self.deliver(user, mailbox, content, flags, internal_date)
    }

    async fn begin_append(
        &self,
        user: &str,
        mailbox: &str,
        size: u64,
    ) -> StoreResult<MemoryUpload> {
        self.with_mailbox(user, mailbox, |_| Ok(()))?;
        Ok(MemoryUpload {
            store: self.clone(),
            user: user.to_owned(),
            mailbox: rules::canonical_mailbox(mailbox)?,
            length: UploadLength::new(size),
            content: Some(BytesMut::with_capacity(size.min(INITIAL_CAPACITY) as usize)),
        })
    }

    async fn expunge(&self, user: &str, mailbox: &str, uids: &[u32]) -> StoreResult<()> {
        self.changing_mailbox(user, mailbox, |mailbox| {
            let removed: Vec<u32> = uids
                .iter()
                .filter(|uid| mailbox.messages.remove(uid).is_some())
                .copied()
                .collect();
            if !removed.is_empty() {
                let modseq = modseq::next(&mut mailbox.highest_modseq);
                mailbox.expunged.record(modseq, removed);
            }
            Ok(())
        })
    }

    async fn update_flags(
        &self,
        user: &str,
        mailbox: &str,
        uid: u32,
        mut flags: MessageFlags,
        unchanged_since: Option<u64>,
    ) -> StoreResult<FlagsUpdate> {
        self.changing_mailbox(user, mailbox, |mailbox| {
            let message = mailbox
                .messages
                .get_mut(&uid)
                .ok_or(StoreError::NoSuchMessage)?;
            if unchanged_since.is_some_and(|since| message.modseq > since) {
                return Ok(FlagsUpdate::Modified {
                    modseq: message.modseq,
                });
            }
            flags.keywords = mailbox.keywords.canonical(&flags.keywords)?;
            if message.flags != flags {
                message.flags = flags.clone();
                message.modseq = modseq::next(&mut mailbox.highest_modseq);
            }
            Ok(FlagsUpdate::Stored {
                flags,
                modseq: message.modseq,
            })
        })
    }

    async fn expunged_since(
        &self,
        user: &str,
        mailbox: &str,
        modseq: u64,
    ) -> StoreResult<Option<Vec<RangeInclusive<u32>>>> {
        self.with_mailbox(user, mailbox, |mailbox| Ok(mailbox.expunged.since(modseq)))
    }

    async fn list_mailboxes(&self, user: &str) -> StoreResult<Vec<MailboxInfo>> {
        self.with_user(user, |user| {
            let mut names: Vec<&String> = user.mailboxes.keys().collect();
            names.sort_by(|a, b| rules::cmp_mailboxes(a, b));
            Ok(names
                .into_iter()
                .map(|name| MailboxInfo {
                    name: name.clone(),
                    special_use: rules::special_use(name),
                    subscribed: user.subscriptions.contains(name),
                })
                .collect())
        })
    }

    async fn create_mailbox(&self, user: &str, mailbox: &str) -> StoreResult<()> {
        let mailbox = rules::canonical_mailbox(mailbox)?;
        self.with_user(user, |user| {
            if user.mailboxes.contains_key(&mailbox) {
                return Err(StoreError::AlreadyExists);
            }
            user.create_parents(&mailbox);
            user.mailboxes.insert(mailbox, Mailbox::new());
            Ok(())
        })
    }

    async fn delete_mailbox(&self, user: &str, mailbox: &str) -> StoreResult<()> {
        let mailbox = rules::canonical_mailbox(mailbox)?;
        if mailbox == INBOX {
            return Err(StoreError::NotAllowed);
        }
        self.with_user(user, |user| {
            user.mailboxes
                .remove(&mailbox)
                .map(drop)
                .ok_or(StoreError::NoSuchMailbox)
        })?;
        self.changes.notify_tree(user, &mailbox);
        Ok(())
    }

    async fn rename_mailbox(&self, user: &str, from: &str, to: &str) -> StoreResult<()> {
        let from = rules::canonical_mailbox(from)?;
        let to = rules::canonical_mailbox(to)?;
        if from == INBOX {
            return Err(StoreError::NotAllowed);
        }
        self.with_user(user, |user| {
            if !user.mailboxes.contains_key(&from) {
                return Err(StoreError::NoSuchMailbox);
            }
            // Check everything before moving anything, like Maildir.
            let prefix = format!("{from}/");
            let moves: Vec<(String, String)> = user
                .mailboxes
                .keys()
                .filter_map(|name| {
                    let target = if *name == from {
                        to.clone()
                    } else {
                        format!("{to}/{}", name.strip_prefix(&prefix)?)
                    };
                    Some((name.clone(), target))
                })
                .collect();
            for (_, target) in &moves {
                rules::canonical_mailbox(target)?;
                if user.mailboxes.contains_key(target) {
                    return Err(StoreError::AlreadyExists);
                }
            }
            let moved: Vec<(String, Mailbox)> = moves
                .iter()
                .filter_map(|(from, to)| Some((to.clone(), user.mailboxes.remove(from)?)))
                .collect();
            user.mailboxes.extend(moved);
            user.create_parents(&to);
            user.subscriptions = std::mem::take(&mut user.subscriptions)
                .into_iter()
                .map(|name| {
                    moves
                        .iter()
                        .find(|(from, _)| *from == name)
                        .map_or(name, |(_, to)| to.clone())
                })
                .collect();
            Ok(())
        })?;
        self.changes.notify_tree(user, &from);
        Ok(())
    }

    fn watch(&self, user: &str, mailbox: &str) -> MailboxWatch {
        match rules::canonical_mailbox(mailbox) {
            Ok(mailbox) => self.changes.watch(user, &mailbox),
            Err(_) => MailboxWatch::never(),
        }
    }

    async fn set_subscribed(&self, user: &str, mailbox: &str, subscribed: bool) -> StoreResult<()> {
        let mailbox = rules::canonical_mailbox(mailbox)?;
        self.with_user(user, |user| {
            if subscribed {
                if !user.mailboxes.contains_key(&mailbox) {
                    return Err(StoreError::NoSuchMailbox);
                }
                user.subscriptions.insert(mailbox);
            } else {
                user.subscriptions.remove(&mailbox);
            }
            Ok(())
        })
    }

    async fn first_recent_uid(&self, user: &str, mailbox: &str) -> StoreResult<u32> {
        self.with_mailbox(user, mailbox, |mailbox| Ok(mailbox.first_recent_uid))
    }

    async fn claim_recent(&self, user: &str, mailbox: &str, highest: u32) -> StoreResult<u32> {
        self.with_mailbox(user, mailbox, |mailbox| {
            let before = mailbox.first_recent_uid;
            // Never past UIDNEXT, like Maildir: `highest` may be of an older numbering.
            let claimed = highest.saturating_add(1).min(mailbox.uid_next);
            mailbox.first_recent_uid = before.max(claimed);
            Ok(before)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;
    use crate::store::conformance::conformance_tests;

    conformance_tests!((MemoryStore::new(), ()));
}
