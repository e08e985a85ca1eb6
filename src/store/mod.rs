//! Mail storage shared by the IMAP and POP3 services: the [`Mailstore`] trait and its two
//! implementations, [`Maildir`] (Maildir++ on disk, the default; the `maildir` feature) and
//! [`MemoryStore`].
//!
//! Messages are delivered whole ([`Mailstore::append`]) or streamed
//! ([`Mailstore::begin_append`], then [`MessageUpload::write`] and
//! [`MessageUpload::commit`]), so that a large upload need not be held in memory.

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod conformance_modseq;
mod flags;
mod keyword;
mod keyword_table;
#[cfg(feature = "maildir")]
mod maildir;
mod memory;
mod message_list;
mod modseq;
mod rules;
mod watch;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::ops::RangeInclusive;
use std::time::SystemTime;

use bytes::Bytes;

pub use flags::{Flags, MessageFlags};
pub use keyword::{InvalidKeyword, Keyword, Keywords, MAX_KEYWORD_LEN};
#[cfg(feature = "maildir")]
pub use maildir::{Maildir, MaildirUpload, ServerLock};
pub use memory::{MemoryStore, MemoryUpload};
pub use message_list::MessageList;
pub use modseq::{FlagsUpdate, MAX_MODSEQ};
#[cfg(feature = "imap")]
pub(crate) use modseq::{ranges_of, render_ranges};
pub(crate) use watch::ChangeNotifier;
pub use watch::MailboxWatch;
#[cfg(test)]
pub(crate) use {flags::test_flags, keyword::test_keywords};

/// The name of every user's inbox.
pub const INBOX: &str = "INBOX";

/// The most keywords a mailbox can know: Maildir names a message's keywords with the
/// letters `a` to `z` (as Dovecot does), and the [`MemoryStore`] keeps the same limit. A
/// keyword stays known to its mailbox once used, even when no message has it any more.
///
/// ```
/// assert_eq!(tower_mail::store::MAX_KEYWORDS, 26);
/// ```
pub const MAX_KEYWORDS: usize = 26;

/// One message as listed in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// The message's UID: unique in its mailbox for this UIDVALIDITY, never reused.
    pub uid: u32,
    /// The RFC 822 size: octets with every line ending as CRLF (what IMAP's RFC822.SIZE and
    /// POP3's LIST report).
    pub size: u64,
    /// The message's flags and keywords.
    pub flags: MessageFlags,
    /// When the message was delivered (IMAP INTERNALDATE).
    pub internal_date: SystemTime,
    /// The mod-sequence of the message's last change (RFC 7162): its delivery or its last
    /// flag change. 0 from a store that keeps no mod-sequences (see
    /// [`MailboxSnapshot::highest_modseq`]).
    pub modseq: u64,
}

/// A mailbox's contents at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSnapshot {
    /// The UIDVALIDITY of the mailbox: changes only if UIDs are reassigned.
    pub uid_validity: u32,
    /// The UID the next delivered message will get.
    pub uid_next: u32,
    /// The messages, sorted by UID ascending; the same shared list in every snapshot of the
    /// mailbox while its messages stay as they were (see [`MessageList`]).
    pub messages: MessageList,
    /// Every keyword the mailbox knows (IMAP's FLAGS response lists them), whether or not a
    /// message has it now.
    pub keywords: Keywords,
    /// The mailbox's highest mod-sequence (RFC 7162's HIGHESTMODSEQ): raised by every
    /// delivery, flag change and expunge, never lowered while the UIDVALIDITY stays, at least
    /// every message's [`modseq`](MessageMeta::modseq). 0 means the store keeps no
    /// mod-sequences for this mailbox (IMAP then answers `NOMODSEQ`).
    pub highest_modseq: u64,
}

/// A mailbox as listed for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// The full name, with `/` as the hierarchy separator (`INBOX`, `Archive/2024`).
    pub name: String,
    /// RFC 6154 special use (`\Sent`, `\Drafts`, `\Trash`, `\Junk`), if any.
    pub special_use: Option<&'static str>,
    /// Whether the user subscribed to it.
    pub subscribed: bool,
}

/// What can go wrong in a store.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The user or mailbox does not exist.
    NoSuchMailbox,
    /// No message has that UID (it was expunged meanwhile).
    NoSuchMessage,
    /// The mailbox to create already exists.
    AlreadyExists,
    /// The mailbox name is not acceptable (empty, `..`, control characters, ...).
    InvalidName,
    /// The operation is not allowed on this mailbox (deleting or renaming INBOX).
    NotAllowed,
    /// The mailbox would know more than [`MAX_KEYWORDS`] keywords; nothing was changed.
    TooManyKeywords,
    /// The storage failed.
    Io(io::Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NoSuchMailbox => f.write_str("no such mailbox"),
            StoreError::NoSuchMessage => f.write_str("no such message"),
            StoreError::AlreadyExists => f.write_str("mailbox already exists"),
            StoreError::InvalidName => f.write_str("invalid mailbox name"),
            StoreError::NotAllowed => f.write_str("operation not allowed on this mailbox"),
            StoreError::TooManyKeywords => {
                write!(f, "more than {MAX_KEYWORDS} keywords in one mailbox")
            }
            StoreError::Io(err) => write!(f, "storage error: {err}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(err: io::Error) -> StoreError {
        StoreError::Io(err)
    }
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Asynchronous mail storage, shared by the IMAP and POP3 session services.
///
/// Every method that changes mail (`append`, [`MessageUpload::commit`], `expunge`,
/// `set_flags`, `update_flags`) is durable when its future resolves `Ok`, mod-sequences
/// included: the protocol services acknowledge
/// the client only after that, so an acknowledged APPEND or DELE survives a crash.
///
/// Mailbox names use `/` as the hierarchy separator; `INBOX` is case-insensitive.
///
/// # Mod-sequences
///
/// A store may keep RFC 7162 mod-sequences, which IMAP's CONDSTORE and QRESYNC serve: each
/// delivery, flag change and expunge raises the mailbox's
/// [`highest_modseq`](MailboxSnapshot::highest_modseq) and stamps the message it changed
/// ([`MessageMeta::modseq`]), durably, never lowering them while the UIDVALIDITY stays;
/// [`update_flags`](Self::update_flags) and [`expunged_since`](Self::expunged_since) answer
/// with them. Both stores here do. A store that does not leaves them 0 and keeps the
/// defaults: IMAP then answers `NOMODSEQ` for its mailboxes.
///
/// # Implementing
///
/// Delivery is [`begin_append`](Self::begin_append) and its [`Upload`](Self::Upload) type;
/// [`append`](Self::append) has a default written with them. A store with nowhere to stream
/// to can buffer in its upload, as [`MemoryStore`] does.
///
/// [`snapshot`](Self::snapshot) should hand out the same [`MessageList`] (a clone of it) while
/// the mailbox's messages stay the same, as both stores here do: every IMAP session with the
/// mailbox selected then holds that one list, instead of a copy of its own.
pub trait Mailstore: Send + Sync + 'static {
    /// A message being delivered piece by piece: see [`begin_append`](Self::begin_append).
    type Upload: MessageUpload;

    /// Make sure `user`'s mail tree exists, with INBOX and the special-use mailboxes
    /// (Sent, Drafts, Trash, Junk) created on first use.
    fn ensure_user(&self, user: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// The messages in `mailbox` now.
    fn snapshot(
        &self,
        user: &str,
        mailbox: &str,
    ) -> impl Future<Output = StoreResult<MailboxSnapshot>> + Send;

    /// The mailbox's UIDVALIDITY, for APPENDUID and COPYUID; `NoSuchMailbox` if it does not
    /// exist. The default reads a snapshot; [`Maildir`] reads only the UID list, so that
    /// appending to a large mailbox does not list it.
    fn uid_validity(
        &self,
        user: &str,
        mailbox: &str,
    ) -> impl Future<Output = StoreResult<u32>> + Send {
        async move { Ok(self.snapshot(user, mailbox).await?.uid_validity) }
    }

    /// The whole message with `uid`, exactly as stored.
    fn fetch(
        &self,
        user: &str,
        mailbox: &str,
        uid: u32,
    ) -> impl Future<Output = StoreResult<Bytes>> + Send;

    /// Several whole messages, in the order of `uids`; each is `Err(NoSuchMessage)` if it is
    /// gone. The default fetches them one by one; [`Maildir`] reads them in one pass, which
    /// is what makes a FETCH over a large mailbox fast.
    fn fetch_many(
        &self,
        user: &str,
        mailbox: &str,
        uids: &[u32],
    ) -> impl Future<Output = StoreResult<Vec<StoreResult<Bytes>>>> + Send {
        async move {
            let mut messages = Vec::with_capacity(uids.len());
            for &uid in uids {
                messages.push(self.fetch(user, mailbox, uid).await);
            }
            Ok(messages)
        }
    }

    /// What [`remember`](Self::remember) kept for the messages `keys` names by UID and RFC
    /// 822 size ([`MessageMeta::size`]), in their order: `Ok(None)` where nothing is kept for
    /// that message as it is now, `Err(NoSuchMessage)` where it is gone. A protocol keeps
    /// there what it derives from a message's content and would rather not derive again
    /// (IMAP: its rendered ENVELOPE and BODYSTRUCTURE); the data is opaque to the store.
    ///
    /// The default keeps nothing. [`Maildir`] keeps it in a file per folder, checked on every
    /// use, so that it survives a restart and never answers for another file than the one
    /// it was derived from (see *Message cache* there).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_mail::store::{Flags, Maildir, Mailstore};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let root = tempfile::tempdir()?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// runtime.block_on(async {
    ///     let store = Maildir::new(root.path());
    ///     store.ensure_user("alice").await?;
    ///     let message = Bytes::from_static(b"Subject: hi\r\n\r\nHello\r\n");
    ///     let uid = store.append("alice", "INBOX", message, Flags::EMPTY.into(), None).await?;
    ///     let size = store.snapshot("alice", "INBOX").await?.messages[0].size;
    ///     let derived = Bytes::from_static(b"what parsing found");
    ///     store.remember("alice", "INBOX", vec![(uid, size, derived.clone())]).await?;
    ///     // A new store on the same tree, as after a restart.
    ///     let store = Maildir::new(root.path());
    ///     let kept = store.cached("alice", "INBOX", &[(uid, size)]).await?;
    ///     assert_eq!(kept[0].as_ref().ok().cloned().flatten(), Some(derived));
    ///     let other_size = store.cached("alice", "INBOX", &[(uid, size + 1)]).await?;
    ///     assert!(matches!(other_size[0], Ok(None)));
    ///     Ok::<_, tower_mail::store::StoreError>(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    fn cached(
        &self,
        user: &str,
        mailbox: &str,
        keys: &[(u32, u64)],
    ) -> impl Future<Output = StoreResult<Vec<StoreResult<Option<Bytes>>>>> + Send {
        let _ = (user, mailbox);
        let misses = keys.iter().map(|_| Ok(None)).collect();
        async move { Ok(misses) }
    }

    /// Keeps `entries` (UID, RFC 822 size, data) for [`cached`](Self::cached) to answer;
    /// a store may keep only some (each has bounds). `Ok` also when nothing could be kept:
    /// the data can always be derived again. The default keeps nothing.
    fn remember(
        &self,
        user: &str,
        mailbox: &str,
        entries: Vec<(u32, u64, Bytes)>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        let _ = (user, mailbox, entries);
        async { Ok(()) }
    }

    /// Deliver a message; returns its UID. Durable on `Ok`.
    ///
    /// Keywords new to the mailbox become known to it; past [`MAX_KEYWORDS`] the delivery
    /// fails with [`StoreError::TooManyKeywords`] and delivers nothing.
    ///
    /// `internal_date` is the IMAP INTERNALDATE; `None` means now. The default is
    /// [`begin_append`](Self::begin_append), one [`write`](MessageUpload::write) and
    /// [`commit`](MessageUpload::commit); stores override it only to save work for a message
    /// already whole in memory, through the same delivery code.
    fn append(
        &self,
        user: &str,
        mailbox: &str,
        content: Bytes,
        flags: MessageFlags,
        internal_date: Option<SystemTime>,
    ) -> impl Future<Output = StoreResult<u32>> + Send {
        async move {
            let mut upload = self
                .begin_append(user, mailbox, content.len() as u64)
                .await?;
            upload.write(&content).await?;
            upload.commit(flags, internal_date).await
        }
    }

    /// Start delivering a message of `size` octets to `mailbox`, to be written piece by piece:
    /// what IMAP APPEND uses, so that a large literal goes to the store as it arrives instead
    /// of being held whole in memory.
    ///
    /// Fails at once, before anything is written, with [`StoreError::NoSuchMailbox`] if the
    /// user or mailbox does not exist (IMAP then answers `NO [TRYCREATE]`) and with
    /// [`StoreError::InvalidName`] for a name no mailbox can have.
    ///
    /// `size` is the message's exact length (an IMAP literal announces it): writing more fails
    /// at once, and committing after writing fewer fails. Capping message sizes is the
    /// caller's business, done before this is called.
    ///
    /// The message gets its UID, and watchers hear of it, only at
    /// [`commit`](MessageUpload::commit); until then the mailbox is not locked, so other
    /// sessions keep reading it and delivering to it. Dropping the upload abandons it.
    ///
    /// ```
    /// use tower_mail::store::{Flags, Mailstore, MemoryStore, MessageUpload};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.ensure_user("alice").await?;
    /// let mut upload = store.begin_append("alice", "INBOX", 22).await?;
    /// for chunk in [&b"Subject: hi\r"[..], b"\n\r\n", b"Hello\r\n"] {
    ///     upload.write(chunk).await?;
    /// }
    /// let uid = upload.commit(Flags::SEEN.into(), None).await?;
    /// assert_eq!(store.fetch("alice", "INBOX", uid).await?, &b"Subject: hi\r\n\r\nHello\r\n"[..]);
    /// # Ok::<_, tower_mail::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    fn begin_append(
        &self,
        user: &str,
        mailbox: &str,
        size: u64,
    ) -> impl Future<Output = StoreResult<Self::Upload>> + Send;

    /// Remove the messages with these UIDs; UIDs that are already gone are ignored.
    /// Durable on `Ok`.
    fn expunge(
        &self,
        user: &str,
        mailbox: &str,
        uids: &[u32],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Replace the flags and keywords of the message with `uid`; returns them as stored
    /// (each keyword spelled as the mailbox first knew it). Durable on `Ok`.
    ///
    /// Fails with [`StoreError::TooManyKeywords`], changing nothing, if the mailbox would know
    /// more than [`MAX_KEYWORDS`] keywords.
    ///
    /// ```
    /// use tower_mail::store::{Flags, Keyword, Mailstore, MemoryStore, MessageFlags};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.ensure_user("alice").await?;
    /// let mut flags = MessageFlags::from(Flags::SEEN);
    /// flags.keywords.insert(Keyword::new("NonJunk").unwrap());
    /// let uid = store.append("alice", "INBOX", "Subject: hi\r\n\r\n".into(), flags, None).await?;
    ///
    /// let mut flags = MessageFlags::default();
    /// flags.keywords.insert(Keyword::new("nonjunk").unwrap());
    /// let stored = store.set_flags("alice", "INBOX", uid, flags).await?;
    /// assert_eq!(stored.keywords.iter().next().unwrap().as_str(), "NonJunk");
    /// let snapshot = store.snapshot("alice", "INBOX").await?;
    /// assert_eq!(snapshot.messages[0].flags, stored);
    /// # Ok::<_, tower_mail::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    fn set_flags(
        &self,
        user: &str,
        mailbox: &str,
        uid: u32,
        flags: MessageFlags,
    ) -> impl Future<Output = StoreResult<MessageFlags>> + Send {
        // A change without a condition is never refused: `update_flags` does the work.
        async move {
            let update = self.update_flags(user, mailbox, uid, flags, None).await?;
            Ok(update.unconditional())
        }
    }

    /// [`set_flags`](Self::set_flags) with the message's new mod-sequence, and, with
    /// `unchanged_since`, only if the message has not changed after that mod-sequence
    /// (RFC 7162's `UNCHANGEDSINCE`): checked and changed atomically, so of two sessions
    /// changing a message from the same state, one is told [`FlagsUpdate::Modified`].
    ///
    /// Flags that are already so change nothing, and keep the message's mod-sequence. A flag
    /// change made by another program and not yet seen counts as a change.
    ///
    /// The default, for stores without mod-sequences (whose snapshots have
    /// [`highest_modseq`](MailboxSnapshot::highest_modseq) 0, so that IMAP never passes a
    /// condition), is [`set_flags`](Self::set_flags) with mod-sequence 0; a store that keeps
    /// mod-sequences must override it.
    ///
    /// ```
    /// use tower_mail::store::{Flags, FlagsUpdate, Mailstore, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.ensure_user("alice").await?;
    /// let uid = store.append("alice", "INBOX", "Subject: hi\r\n\r\n".into(), Flags::EMPTY.into(), None).await?;
    /// let seen = store.snapshot("alice", "INBOX").await?.messages[0].modseq;
    ///
    /// // Another session flags it...
    /// store.set_flags("alice", "INBOX", uid, Flags::FLAGGED.into()).await?;
    /// // ...so a change conditional on the state seen before is refused.
    /// let update = store.update_flags("alice", "INBOX", uid, Flags::SEEN.into(), Some(seen)).await?;
    /// let FlagsUpdate::Modified { modseq } = update else { panic!("stored") };
    /// assert!(modseq > seen);
    /// let update = store.update_flags("alice", "INBOX", uid, Flags::SEEN.into(), Some(modseq)).await?;
    /// assert!(matches!(update, FlagsUpdate::Stored { modseq: now, .. } if now > modseq));
    /// # Ok::<_, tower_mail::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    fn update_flags(
        &self,
        user: &str,
        mailbox: &str,
        uid: u32,
        flags: MessageFlags,
        unchanged_since: Option<u64>,
    ) -> impl Future<Output = StoreResult<FlagsUpdate>> + Send {
        let _ = unchanged_since;
        async move {
            let flags = self.set_flags(user, mailbox, uid, flags).await?;
            Ok(FlagsUpdate::Stored { flags, modseq: 0 })
        }
    }

    /// The UIDs expunged from `mailbox` after mod-sequence `modseq`, as ascending ranges
    /// (what IMAP's `VANISHED (EARLIER)` reports); `None` if the store does not remember
    /// expunges that far back (it keeps a bounded history) or keeps no mod-sequences, which
    /// is the default. Callers then take every UID below UIDNEXT that is not in the mailbox
    /// as possibly expunged.
    ///
    /// ```
    /// use tower_mail::store::{Flags, Mailstore, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.ensure_user("alice").await?;
    /// let mut uids = Vec::new();
    /// for _ in 0..3 {
    ///     uids.push(store.append("alice", "INBOX", "Subject: hi\r\n\r\n".into(), Flags::EMPTY.into(), None).await?);
    /// }
    /// let before = store.snapshot("alice", "INBOX").await?.highest_modseq;
    /// store.expunge("alice", "INBOX", &uids[..2]).await?;
    /// let gone = store.expunged_since("alice", "INBOX", before).await?;
    /// assert_eq!(gone, Some(vec![uids[0]..=uids[1]]));
    /// # Ok::<_, tower_mail::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    fn expunged_since(
        &self,
        user: &str,
        mailbox: &str,
        modseq: u64,
    ) -> impl Future<Output = StoreResult<Option<Vec<RangeInclusive<u32>>>>> + Send {
        let _ = (user, mailbox, modseq);
        async { Ok(None) }
    }

    /// The user's mailboxes, INBOX first, then by name.
    fn list_mailboxes(
        &self,
        user: &str,
    ) -> impl Future<Output = StoreResult<Vec<MailboxInfo>>> + Send;

    /// Create a mailbox (and any missing parents).
    fn create_mailbox(
        &self,
        user: &str,
        mailbox: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Delete a mailbox and its messages. INBOX cannot be deleted.
    fn delete_mailbox(
        &self,
        user: &str,
        mailbox: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Rename a mailbox (and its children).
    fn rename_mailbox(
        &self,
        user: &str,
        from: &str,
        to: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// A watch that wakes when `mailbox` of `user` changes through this store (any clone of
    /// it): what IMAP's IDLE waits on. The default never wakes; sessions then notice changes
    /// only when they look.
    fn watch(&self, user: &str, mailbox: &str) -> MailboxWatch {
        let _ = (user, mailbox);
        MailboxWatch::never()
    }

    /// Mark a mailbox subscribed or not.
    fn set_subscribed(
        &self,
        user: &str,
        mailbox: &str,
        subscribed: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Where `\Recent` starts in `mailbox` (RFC 3501 section 2.3.2): the first UID that no
    /// read-write IMAP session has been told about, so the messages from it on are recent.
    /// What EXAMINE and STATUS RECENT read; [`claim_recent`](Self::claim_recent) moves it.
    ///
    /// The default says no message is ever recent (as IMAP4rev2 servers do); [`Maildir`] keeps
    /// the value in the folder, so it survives restarts, and [`MemoryStore`] in memory.
    ///
    /// ```
    /// use tower_mail::store::{Mailstore, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.ensure_user("alice").await?;
    /// // No session was told of anything yet: whatever arrives from UID 1 on is recent.
    /// assert_eq!(store.first_recent_uid("alice", "INBOX").await?, 1);
    /// # Ok::<_, tower_mail::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    fn first_recent_uid(
        &self,
        user: &str,
        mailbox: &str,
    ) -> impl Future<Output = StoreResult<u32>> + Send {
        let _ = (user, mailbox);
        async { Ok(u32::MAX) }
    }

    /// A read-write IMAP session (SELECT) has been told of every message of `mailbox` up to
    /// UID `highest`: returns [`first_recent_uid`](Self::first_recent_uid) as it was, so that
    /// the messages from it up to `highest` are recent in that session, and moves it past
    /// `highest` (never back), atomically, so that no other session sees them as recent.
    ///
    /// ```
    /// use tower_mail::store::{Flags, Mailstore, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.ensure_user("alice").await?;
    /// let uid = store.append("alice", "INBOX", "Subject: hi\r\n\r\n".into(), Flags::EMPTY.into(), None).await?;
    /// // Delivered before any session looked: recent for the first one that selects.
    /// assert_eq!(store.claim_recent("alice", "INBOX", uid).await?, uid);
    /// // Claimed: the next session is told of no recent message.
    /// assert_eq!(store.claim_recent("alice", "INBOX", uid).await?, uid + 1);
    /// assert_eq!(store.first_recent_uid("alice", "INBOX").await?, uid + 1);
    /// # Ok::<_, tower_mail::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// The default claims nothing and says no message is recent, like the default
    /// [`first_recent_uid`](Self::first_recent_uid).
    fn claim_recent(
        &self,
        user: &str,
        mailbox: &str,
        highest: u32,
    ) -> impl Future<Output = StoreResult<u32>> + Send {
        let _ = highest;
        self.first_recent_uid(user, mailbox)
    }

    /// POP3 unique-ids that messages of `mailbox` keep from the server they came from, by
    /// UID: the POP3 service answers UIDL with these instead of its own, so a migrated
    /// client does not download those messages again. [`Maildir`] has the ones Dovecot keeps
    /// in its UID list (put there by migration scripts, from Courier for instance); the
    /// default has none.
    ///
    /// ```
    /// use tower_mail::store::{Mailstore, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.ensure_user("alice").await?;
    /// // Mail that never lived on another server keeps no UIDL of its own.
    /// assert!(store.pop3_uidls("alice", "INBOX").await?.is_empty());
    /// # Ok::<_, tower_mail::store::StoreError>(())
    /// # }).unwrap();
    /// ```
    fn pop3_uidls(
        &self,
        user: &str,
        mailbox: &str,
    ) -> impl Future<Output = StoreResult<HashMap<u32, String>>> + Send {
        let _ = (user, mailbox);
        async { Ok(HashMap::new()) }
    }
}

/// A message being delivered piece by piece, from [`Mailstore::begin_append`].
///
/// Write the message's octets in order with [`write`](Self::write), exactly as many as were
/// announced, then [`commit`](Self::commit), which delivers the message like
/// [`Mailstore::append`] and is as durable. Chunks may be of any size and may split a line
/// ending anywhere; the store keeps at most a small buffer of them in memory (except stores
/// that are in memory anyway, like [`MemoryStore`]).
///
/// Dropping an upload without committing it abandons it: nothing is delivered and what was
/// stored for it is removed. A failed `write`, or a `write` future dropped before it finished,
/// breaks the upload: later calls fail, and it can only be dropped. A failed `commit`
/// delivered nothing; a `commit` future dropped before it finished may or may not have
/// delivered the message, as with [`Mailstore::append`].
pub trait MessageUpload: Send + 'static {
    /// Add the next octets of the message.
    fn write(&mut self, chunk: &[u8]) -> impl Future<Output = StoreResult<()>> + Send;

    /// Deliver the message with `flags` and `internal_date` (`None`: now); returns its UID,
    /// the mailbox's next. Durable on `Ok`; fails if fewer octets were written than announced,
    /// or with [`StoreError::TooManyKeywords`] as [`Mailstore::append`] does.
    fn commit(
        self,
        flags: MessageFlags,
        internal_date: Option<SystemTime>,
    ) -> impl Future<Output = StoreResult<u32>> + Send;
}

/// Keeps an upload to the length announced to [`Mailstore::begin_append`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct UploadLength {
    announced: u64,
    written: u64,
}

impl UploadLength {
    pub(crate) fn new(announced: u64) -> UploadLength {
        UploadLength {
            announced,
            written: 0,
        }
    }

    /// Counts `more` octets written; fails if they go past the announced length.
    pub(crate) fn add(&mut self, more: usize) -> StoreResult<()> {
        match self.written.checked_add(more as u64) {
            Some(written) if written <= self.announced => {
                self.written = written;
                Ok(())
            }
            _ => Err(StoreError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "message longer than the {} octets announced",
                    self.announced
                ),
            ))),
        }
    }

    /// Fails unless all the announced octets were written.
    pub(crate) fn check_complete(&self) -> StoreResult<()> {
        if self.written == self.announced {
            return Ok(());
        }
        Err(StoreError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "message shorter than announced: {} of {} octets",
                self.written, self.announced
            ),
        )))
    }
}

/// The error of every call on an upload broken by an earlier failure.
pub(crate) fn broken_upload() -> StoreError {
    StoreError::Io(io::Error::other(
        "the upload failed earlier and was abandoned",
    ))
}

/// The RFC 822 size of `content`: its length with every bare LF counted as CRLF.
///
/// ```
/// assert_eq!(tower_mail::store::rfc822_size(b"a\nb\r\n"), 6);
/// ```
pub fn rfc822_size(content: &[u8]) -> u64 {
    let mut size = Rfc822Size::default();
    size.add(content);
    size.rfc822()
}

/// [`rfc822_size`] of a message seen in pieces, split anywhere (a CR ending one piece and the
/// LF starting the next are one CRLF).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rfc822Size {
    octets: u64,
    bare_lf: u64,
    /// Whether the last octet seen is a CR.
    after_cr: bool,
}

impl Rfc822Size {
    /// Counts the next piece.
    pub(crate) fn add(&mut self, piece: &[u8]) {
        let Some((&first, _)) = piece.split_first() else {
            return;
        };
        let first_bare = u64::from(first == b'\n' && !self.after_cr);
        let rest_bare = piece
            .windows(2)
            .filter(|pair| pair[1] == b'\n' && pair[0] != b'\r')
            .count() as u64;
        self.bare_lf += first_bare + rest_bare;
        self.octets += piece.len() as u64;
        self.after_cr = piece.last() == Some(&b'\r');
    }

    /// The octets seen.
    #[cfg(feature = "maildir")]
    pub(crate) fn octets(&self) -> u64 {
        self.octets
    }

    /// The RFC 822 size of the octets seen.
    pub(crate) fn rfc822(&self) -> u64 {
        self.octets + self.bare_lf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc822_size_of_pieces_is_that_of_the_whole() {
        let messages: [&[u8]; 6] = [
            b"",
            b"\n",
            b"a\r\nb\nc\r\r\n\n\rd\n",
            b"\r\n\r\n",
            b"\n\n\r\r\n",
            b"Subject: x\n\nbody\r\nend",
        ];
        for message in messages {
            let whole = rfc822_size(message);
            // Every way of cutting it in three.
            for i in 0..=message.len() {
                for j in i..=message.len() {
                    let mut size = Rfc822Size::default();
                    for piece in [&message[..i], &message[i..j], &message[j..]] {
                        size.add(piece);
                    }
                    assert_eq!(size.rfc822(), whole, "{message:?} cut at {i}, {j}");
                    assert_eq!(size.octets(), message.len() as u64);
                }
            }
        }
        assert_eq!(rfc822_size(b"a\nb\r\n\n"), 8);
        assert_eq!(rfc822_size(b"\r"), 1);
    }

    #[test]
    fn upload_length() {
        let mut length = UploadLength::new(5);
        length.add(2).unwrap();
        assert!(length.check_complete().is_err());
        length.add(3).unwrap();
        length.check_complete().unwrap();
        assert!(length.add(1).is_err());
        length.add(0).unwrap();
        length.check_complete().unwrap();
    }
}
