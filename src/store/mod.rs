//! Mail storage shared by the IMAP and POP3 services: the [`Mailstore`] trait and its two
//! implementations, [`Maildir`] (Maildir++ on disk, the default) and [`MemoryStore`].

mod flags;
mod maildir;
mod memory;
mod watch;

use std::future::Future;
use std::io;
use std::time::SystemTime;

use bytes::Bytes;

pub use flags::Flags;
pub use maildir::Maildir;
pub use memory::MemoryStore;
pub(crate) use watch::ChangeNotifier;
pub use watch::MailboxWatch;

/// The name of every user's inbox.
pub const INBOX: &str = "INBOX";

/// One message as listed in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// The message's UID: unique in its mailbox for this UIDVALIDITY, never reused.
    pub uid: u32,
    /// The RFC 822 size: octets with every line ending as CRLF (what IMAP's RFC822.SIZE and
    /// POP3's LIST report).
    pub size: u64,
    /// The message's flags.
    pub flags: Flags,
    /// When the message was delivered (IMAP INTERNALDATE).
    pub internal_date: SystemTime,
}

/// A mailbox's contents at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxSnapshot {
    /// The UIDVALIDITY of the mailbox: changes only if UIDs are reassigned.
    pub uid_validity: u32,
    /// The UID the next delivered message will get.
    pub uid_next: u32,
    /// The messages, sorted by UID ascending.
    pub messages: Vec<MessageMeta>,
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
/// Every method that changes mail (`append`, `expunge`, `set_flags`) is durable when its future
/// resolves `Ok`: the protocol services acknowledge the client only after that, so an
/// acknowledged APPEND or DELE survives a crash.
///
/// Mailbox names use `/` as the hierarchy separator; `INBOX` is case-insensitive.
pub trait Mailstore: Send + Sync + 'static {
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

    /// Deliver a message; returns its UID. Durable on `Ok`.
    fn append(
        &self,
        user: &str,
        mailbox: &str,
        content: Bytes,
        flags: Flags,
        internal_date: Option<SystemTime>,
    ) -> impl Future<Output = StoreResult<u32>> + Send;

    /// Remove the messages with these UIDs; UIDs that are already gone are ignored.
    /// Durable on `Ok`.
    fn expunge(
        &self,
        user: &str,
        mailbox: &str,
        uids: &[u32],
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Replace the flags of the message with `uid`. Durable on `Ok`.
    fn set_flags(
        &self,
        user: &str,
        mailbox: &str,
        uid: u32,
        flags: Flags,
    ) -> impl Future<Output = StoreResult<()>> + Send;

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
}

/// The RFC 822 size of `content`: its length with every bare LF counted as CRLF.
///
/// ```
/// assert_eq!(tower_mail::store::rfc822_size(b"a\nb\r\n"), 6);
/// ```
pub fn rfc822_size(content: &[u8]) -> u64 {
    let bare_lf = content
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || content[i - 1] != b'\r'))
        .count();
    (content.len() + bare_lf) as u64
}
