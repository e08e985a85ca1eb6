//! Maildir++ storage: [`Maildir`].

mod caller;
mod dotlock;
mod durable;
mod filename;
mod folder;
mod keywords;
mod listing;
mod message_cache;
mod modseqs;
mod server_lock;
mod subscriptions;
mod tmp_sweep;
mod tree;
mod uidlist;
mod upload;

#[cfg(test)]
mod dovecot_tests;
#[cfg(test)]
mod message_cache_tests;
#[cfg(test)]
mod modseq_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::Mutex as AsyncMutex;

use self::folder::{Folder, FolderCache, TmpMessage, Written};
use self::message_cache::MemoryUse;
pub use self::server_lock::ServerLock;
pub use self::upload::MaildirUpload;
use super::{
    ChangeNotifier, FlagsUpdate, INBOX, MailboxInfo, MailboxSnapshot, MailboxWatch, Mailstore,
    MessageFlags, StoreError, StoreResult, rules,
};

/// Mail stored in Maildir++ directories, one tree per user, readable by other Maildir tools
/// (mutt, Dovecot's layout, MDAs delivering into `new/`).
///
/// # Layout
///
/// User `alice` lives in `<root>/alice/`: INBOX is `<root>/alice/{cur,new,tmp}`, and mailbox
/// `Archive/2024` is `<root>/alice/.Archive.2024/{cur,new,tmp}`. Mailbox names use `/`; on disk
/// Maildir++ uses `.`, so a `.` inside a name is written `%2E` (`john.doe` →
/// `.john%2Edoe`), and names containing `%` or `*` are refused. Each folder has Dovecot's
/// `dovecot-uidlist` file holding its UIDVALIDITY, UIDNEXT, the UID of each message and where
/// `\Recent` starts; the user directory has Dovecot's `subscriptions` file (see *Dovecot*).
///
/// Messages are files named like Dovecot's,
/// `<secs>.M<micros>P<pid>Q<n>.<host>,S=<size>,W=<rfc822 size>:2,<flags>`, whose modification
/// time is the INTERNALDATE. Messages an MDA drops into `new/` get a UID at the next
/// [`snapshot`](Mailstore::snapshot).
///
/// # Keywords
///
/// Keywords are stored as Dovecot stores them: each folder's `dovecot-keywords` file names
/// the letters `a` to `z` (`0 $Label1` names `a`), and a message's file name carries its
/// keyword letters after its system flags (`:2,Sab`). The file is read as Dovecot left it
/// and only ever grows: a letter keeps its name, a new keyword takes the first free letter,
/// so this store and Dovecot show the same keywords on the same tree. Hence at most 26
/// keywords per folder ([`MAX_KEYWORDS`](super::MAX_KEYWORDS)).
///
/// # Mod-sequences
///
/// Each folder's `tower-mail-modseq` file keeps its RFC 7162 mod-sequences: the highest, each
/// message's with the flag letters it had then, and the recent expunges (bounded: older ones
/// are forgotten, and [`expunged_since`](Mailstore::expunged_since) then answers `None`). A
/// change appends a line and syncs it, under the UID list's dot-lock; the file is rewritten
/// whole when it has grown long. Dovecot keeps its own mod-sequences in its index files and
/// leaves this file alone. What other programs did (Dovecot, mutt renaming a file, an MDA)
/// is found at the next snapshot: a message whose flag letters differ from those recorded,
/// or that is new to the file, gets a new mod-sequence; a UID gone from the UID list is
/// recorded as expunged. A folder without the file starts from the clock in microseconds,
/// above any value handed out before the file was lost.
///
/// # Message cache
///
/// Each folder's `tower-mail-cache` file keeps what FETCH derived from each message (IMAP's
/// ENVELOPE and BODYSTRUCTURE, see [`cached`](Mailstore::cached)), so that a FETCH over a
/// large mailbox, warm or after a restart, reads one file instead of every message. It is
/// only a shortcut, checked on every use: an entry answers only for the UID, file base name
/// and size it was recorded with (a Maildir message never changes under its base name), a
/// message whose file is gone is gone whatever the cache says, and a damaged file or one of
/// another version is ignored and rebuilt. Deleting it at any time is harmless. Other
/// programs leave it alone. A folder's cache is kept in memory while the store keeps the
/// folder's state; all folders' together are bounded (256 MiB), past which the store forgets
/// the folders not in use at that moment.
///
/// # Durability and concurrency
///
/// `append`, `set_flags` and `expunge` sync files and directories before resolving. Clones
/// share one set of per-folder locks, so the sessions of one process never race on a folder;
/// the blocking file work runs on tokio's blocking pool. A delivery writes and syncs its file
/// in `tmp/` before it takes the folder's lock, so a large or slow upload
/// ([`MaildirUpload`]) holds up nobody else. Across processes, the UID list and the
/// subscriptions are written under Dovecot's dot-locks (`dovecot-uidlist.lock`,
/// `subscriptions.lock`), starting from what is on disk under the lock, so no other writer's
/// change is lost; external deliveries into `new/` are fine at any time. Two servers serving
/// one tree at the same time are not supported (each keeps state of its own: the POP3
/// maildrop lock, its sessions' view of a folder between looks); in turn they are. A server
/// claims the tree with [`lock_for_server`](Maildir::lock_for_server), so that a second one
/// refuses to start.
///
/// # Dovecot
///
/// A tree moves between Dovecot and tower-mail, either way, with its UIDs, UIDVALIDITY,
/// UIDNEXT, POP3 UIDLs (both use `%08X` of the UID then of the UIDVALIDITY, Dovecot's
/// default `pop3_uidl_format`, unless the UID list kept a message's UIDL from an earlier
/// server: see [`pop3_uidls`](Mailstore::pop3_uidls)), flags and subscriptions:
///
/// - Read: `dovecot-uidlist` (version 3, and version 1 as Courier wrote it), `subscriptions`
///   (version 2, and the older one-name-per-line file with Dovecot's `.` separator), and the
///   `tower-mail-uidlist` of earlier tower-mail versions, replaced by a `dovecot-uidlist` at
///   first use. A damaged UID list line costs only its message's UID (it gets a new one);
///   a damaged header renumbers the folder under a new UIDVALIDITY.
/// - Written: `dovecot-uidlist` in version 3, keeping Dovecot's fields (the mailbox GUID,
///   message sizes, POP3 UIDL overrides) and adding `r<UID>` to the header, where `\Recent`
///   starts, which Dovecot keeps as it is; `subscriptions` in version 2.
/// - Not read: Dovecot's index files (`dovecot.index*`). Dovecot keeps `\Recent` there, so
///   after a switch the messages the other server's sessions were told of may be recent
///   once more; and its mod-sequences, so each server counts its own (see *Mod-sequences*).
///
/// Deleting a mailbox deletes that folder only: its children stay. INBOX cannot be deleted or
/// renamed.
///
/// # Users
///
/// A user name is one directory name: not empty, no `/`, no leading `.`, no control
/// characters. [`ensure_user`](Mailstore::ensure_user) creates INBOX, Drafts, Junk, Sent and
/// Trash (all subscribed) the first time only, and records that in a
/// `tower-mail-initialized` file, so a special-use mailbox the user deleted stays deleted; it
/// also works on a directory an MDA created before the user's first login.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use tower_mail::store::{Flags, Maildir, Mailstore};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let root = tempfile::tempdir()?;
/// let store = Maildir::new(root.path());
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// runtime.block_on(async {
///     store.ensure_user("alice").await?;
///     let message = Bytes::from_static(b"Subject: hi\r\n\r\nHello\r\n");
///     let uid = store.append("alice", "INBOX", message.clone(), Flags::SEEN.into(), None).await?;
///     let snapshot = store.snapshot("alice", "INBOX").await?;
///     assert_eq!(snapshot.messages[0].uid, uid);
///     assert_eq!(store.fetch("alice", "INBOX", uid).await?, message);
///     Ok::<_, tower_mail::store::StoreError>(())
/// })?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Maildir {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    /// One lock per folder directory, holding what is cached about the folder.
    folders: LockRegistry<FolderCache>,
    /// One lock per user directory, for changes to the tree (create, delete, rename,
    /// subscriptions).
    trees: LockRegistry<()>,
    /// Tells sessions watching a folder that it changed.
    changes: ChangeNotifier,
    /// The memory the folders' message caches hold (see *Message cache*).
    cache_memory: MemoryUse,
}

impl Maildir {
    /// A store whose users live under `root` (created when the first user is).
    ///
    /// ```
    /// let store = tower_mail::store::Maildir::new("/var/mail/tower");
    /// assert_eq!(store.root(), std::path::Path::new("/var/mail/tower"));
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> Maildir {
        Maildir::with_cache_memory(root, MemoryUse::default())
    }

    fn with_cache_memory(root: impl Into<PathBuf>, cache_memory: MemoryUse) -> Maildir {
        Maildir {
            inner: Arc::new(Inner {
                root: root.into(),
                folders: LockRegistry::default(),
                trees: LockRegistry::default(),
                changes: ChangeNotifier::default(),
                cache_memory,
            }),
        }
    }

    /// Drops what is kept of the folders not in use once their message caches hold more
    /// than their budget.
    fn bound_cache_memory(&self) {
        if self.inner.cache_memory.over_budget() {
            self.inner.folders.sweep_idle();
        }
    }

    /// The directory holding the users' trees.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Claims the tree for this server process: an exclusive advisory lock (`flock`) on
    /// `<root>/.tower-mail-server.lock`, held until the [`ServerLock`] is dropped or the
    /// process ends in any way (a crash leaves no lock behind). A server takes it before it
    /// serves; if another process holds it, this fails at once with
    /// [`WouldBlock`](std::io::ErrorKind::WouldBlock) and a message naming that process.
    ///
    /// The store itself does not need it: tools, MDAs and Dovecot may write the tree while a
    /// server runs (see *Durability and concurrency*); two servers at once may not.
    ///
    /// ```
    /// use tower_mail::store::Maildir;
    ///
    /// let root = tempfile::tempdir()?;
    /// let store = Maildir::new(root.path());
    /// let claim = store.lock_for_server()?;
    /// let second = Maildir::new(root.path()).lock_for_server();
    /// assert_eq!(second.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// drop(claim);
    /// assert!(Maildir::new(root.path()).lock_for_server().is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock_for_server(&self) -> io::Result<ServerLock> {
        ServerLock::acquire(&self.inner.root)
    }

    fn user_dir(&self, user: &str) -> StoreResult<PathBuf> {
        rules::check_user(user)?;
        Ok(self.inner.root.join(user))
    }

    /// The directory of `mailbox` of `user`.
    fn folder_dir(&self, user: &str, mailbox: &str) -> StoreResult<PathBuf> {
        let user_dir = self.user_dir(user)?;
        let mailbox = rules::canonical_mailbox(mailbox)?;
        Ok(tree::folder_dir(&user_dir, &mailbox))
    }

    /// Runs `op` on a folder, under its lock, on the blocking pool.
    async fn on_folder<T: Send + 'static>(
        &self,
        user: &str,
        mailbox: &str,
        op: impl FnOnce(&Folder, &mut FolderCache) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let dir = self.folder_dir(user, mailbox)?;
        let mut cache = self.inner.folders.get(&dir).lock_owned().await;
        // The guard moves into the task: if the caller gives up waiting, the lock is still
        // held until the file work is done.
        blocking(move || op(&Folder::new(dir), &mut cache)).await
    }

    /// Runs `op`, which changes the folder, like [`on_folder`](Self::on_folder), then wakes
    /// the sessions watching it.
    async fn on_folder_changing<T: Send + 'static>(
        &self,
        user: &str,
        mailbox: &str,
        op: impl FnOnce(&Folder, &mut FolderCache) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let result = self.on_folder(user, mailbox, op).await;
        if result.is_ok() {
            let mailbox = rules::canonical_mailbox(mailbox)?;
            self.inner.changes.notify(user, &mailbox);
        }
        result
    }

    /// Delivers a message written to the folder's `tmp/`: the end of every delivery, whole
    /// or streamed.
    async fn deliver(
        &self,
        user: &str,
        mailbox: &str,
        written: Written,
        flags: MessageFlags,
    ) -> StoreResult<u32> {
        self.on_folder_changing(user, mailbox, move |folder, cache| {
            folder::deliver(folder, cache, written, flags)
        })
        .await
    }

    /// Runs `op` on a user's tree, under the tree lock, on the blocking pool.
    async fn on_tree<T: Send + 'static>(
        &self,
        user: &str,
        op: impl FnOnce(&Path) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let user_dir = self.user_dir(user)?;
        let tree_lock = self.inner.trees.get(&user_dir).lock_owned().await;
        blocking(move || {
            let _tree_lock = tree_lock;
            op(&user_dir)
        })
        .await
    }
}

impl fmt::Debug for Maildir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Maildir")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    caller::on_blocking_pool(op)
        .await
        .map_err(|err| StoreError::Io(io::Error::other(err)))?
}

/// Async locks created on demand, one per path.
struct LockRegistry<T> {
    locks: Mutex<Registry<T>>,
}

struct Registry<T> {
    map: HashMap<PathBuf, Arc<AsyncMutex<T>>>,
    /// Size at which unused locks are dropped next, so the map does not grow with every
    /// folder ever touched, nor get swept at every call.
    sweep_at: usize,
}

impl<T> Default for LockRegistry<T> {
    fn default() -> Self {
        LockRegistry {
            locks: Mutex::new(Registry {
                map: HashMap::new(),
                sweep_at: 64,
            }),
        }
    }
}

impl<T: Default> LockRegistry<T> {
    fn get(&self, path: &Path) -> Arc<AsyncMutex<T>> {
        // The map stays consistent even if a holder panicked.
        let mut registry = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if registry.map.len() >= registry.sweep_at {
            // Nobody holds or waits for a lock only the map refers to.
            registry.map.retain(|_, lock| Arc::strong_count(lock) > 1);
            registry.sweep_at = (registry.map.len() * 2).max(64);
        }
        registry.map.entry(path.to_path_buf()).or_default().clone()
    }

    /// Drops the locks nobody holds or waits for now, and what they keep.
    fn sweep_idle(&self) {
        let mut registry = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        registry.map.retain(|_, lock| Arc::strong_count(lock) > 1);
    }
}

impl Mailstore for Maildir {
    type Upload = MaildirUpload;

    async fn ensure_user(&self, user: &str) -> StoreResult<()> {
        let root = self.inner.root.clone();
        self.on_tree(user, move |user_dir| {
            std::fs::create_dir_all(&root)?;
            tree::ensure_user(user_dir)
        })
        .await
    }

    async fn snapshot(&self, user: &str, mailbox: &str) -> StoreResult<MailboxSnapshot> {
        self.on_folder(user, mailbox, folder::snapshot).await
    }

    async fn uid_validity(&self, user: &str, mailbox: &str) -> StoreResult<u32> {
        self.on_folder(user, mailbox, folder::uid_validity).await
    }

    async fn fetch(&self, user: &str, mailbox: &str, uid: u32) -> StoreResult<Bytes> {
        self.on_folder(user, mailbox, move |folder, cache| {
            folder::fetch(folder, cache, uid).map(Bytes::from)
        })
        .await
    }

    async fn fetch_many(
        &self,
        user: &str,
        mailbox: &str,
        uids: &[u32],
    ) -> StoreResult<Vec<StoreResult<Bytes>>> {
        let uids = uids.to_vec();
        self.on_folder(user, mailbox, move |folder, cache| {
            let messages = folder::fetch_many(folder, cache, &uids)?;
            Ok(messages
                .into_iter()
                .map(|message| message.map(Bytes::from))
                .collect())
        })
        .await
    }

    async fn cached(
        &self,
        user: &str,
        mailbox: &str,
        keys: &[(u32, u64)],
    ) -> StoreResult<Vec<StoreResult<Option<Bytes>>>> {
        let keys = keys.to_vec();
        let memory = self.inner.cache_memory.clone();
        let found = self
            .on_folder(user, mailbox, move |folder, cache| {
                folder::cached(folder, cache, &keys, &memory)
            })
            .await;
        self.bound_cache_memory();
        found
    }

    async fn remember(
        &self,
        user: &str,
        mailbox: &str,
        entries: Vec<(u32, u64, Bytes)>,
    ) -> StoreResult<()> {
        let memory = self.inner.cache_memory.clone();
        let kept = self
            .on_folder(user, mailbox, move |folder, cache| {
                folder::remember(folder, cache, entries, &memory)
            })
            .await;
        self.bound_cache_memory();
        kept
    }

    async fn append(
        &self,
        user: &str,
        mailbox: &str,
        content: Bytes,
        flags: MessageFlags,
        internal_date: Option<SystemTime>,
    ) -> StoreResult<u32> {
        // As an upload would, in one trip to the blocking pool instead of a buffer's worth.
        let folder = Folder::new(self.folder_dir(user, mailbox)?);
        let written = blocking(move || {
            let mut message = TmpMessage::create(&folder)?;
            message.write(&content)?;
            Ok(message.finish(internal_date)?)
        })
        .await?;
        self.deliver(user, mailbox, written, flags).await
    }

    async fn begin_append(
        &self,
        user: &str,
        mailbox: &str,
        size: u64,
    ) -> StoreResult<MaildirUpload> {
        let canonical = rules::canonical_mailbox(mailbox)?;
        let folder = Folder::new(self.folder_dir(user, &canonical)?);
        let message = blocking(move || TmpMessage::create(&folder)).await?;
        Ok(MaildirUpload::new(
            self.clone(),
            user,
            canonical,
            size,
            message,
        ))
    }

    async fn expunge(&self, user: &str, mailbox: &str, uids: &[u32]) -> StoreResult<()> {
        let uids = uids.to_vec();
        self.on_folder_changing(user, mailbox, move |folder, cache| {
            folder::expunge(folder, cache, &uids)
        })
        .await
    }

    async fn update_flags(
        &self,
        user: &str,
        mailbox: &str,
        uid: u32,
        flags: MessageFlags,
        unchanged_since: Option<u64>,
    ) -> StoreResult<FlagsUpdate> {
        self.on_folder_changing(user, mailbox, move |folder, cache| {
            folder::update_flags(folder, cache, uid, flags, unchanged_since)
        })
        .await
    }

    async fn expunged_since(
        &self,
        user: &str,
        mailbox: &str,
        modseq: u64,
    ) -> StoreResult<Option<Vec<RangeInclusive<u32>>>> {
        self.on_folder(user, mailbox, move |folder, cache| {
            folder::expunged_since(folder, cache, modseq)
        })
        .await
    }

    async fn list_mailboxes(&self, user: &str) -> StoreResult<Vec<MailboxInfo>> {
        self.on_tree(user, tree::list).await
    }

    async fn create_mailbox(&self, user: &str, mailbox: &str) -> StoreResult<()> {
        let mailbox = rules::canonical_mailbox(mailbox)?;
        self.on_tree(user, move |user_dir| tree::create(user_dir, &mailbox))
            .await
    }

    async fn delete_mailbox(&self, user: &str, mailbox: &str) -> StoreResult<()> {
        let user_dir = self.user_dir(user)?;
        let mailbox = rules::canonical_mailbox(mailbox)?;
        if mailbox == INBOX {
            return Err(StoreError::NotAllowed);
        }
        let tree_lock = self.inner.trees.get(&user_dir).lock_owned().await;
        let dir = tree::folder_dir(&user_dir, &mailbox);
        let mut cache = self.inner.folders.get(&dir).lock_owned().await;
        let name = mailbox.clone();
        blocking(move || {
            let _tree_lock = tree_lock;
            cache.clear();
            tree::delete(&user_dir, &name)
        })
        .await?;
        self.inner.changes.notify_tree(user, &mailbox);
        Ok(())
    }

    async fn rename_mailbox(&self, user: &str, from: &str, to: &str) -> StoreResult<()> {
        let user_dir = self.user_dir(user)?;
        let from = rules::canonical_mailbox(from)?;
        let to = rules::canonical_mailbox(to)?;
        if from == INBOX {
            return Err(StoreError::NotAllowed);
        }
        let tree_lock = self.inner.trees.get(&user_dir).lock_owned().await;
        let moves = {
            let (user_dir, from, to) = (user_dir.clone(), from.clone(), to.clone());
            blocking(move || tree::plan_rename(&user_dir, &from, &to)).await?
        };
        // Lock every folder involved, in path order (so two multi-folder operations cannot
        // deadlock), to keep appends out while the directories move.
        let mut dirs: Vec<PathBuf> = moves
            .iter()
            .flat_map(|(from, to)| [from, to])
            .map(|name| tree::folder_dir(&user_dir, name))
            .collect();
        dirs.sort();
        dirs.dedup();
        let mut caches = Vec::with_capacity(dirs.len());
        for dir in &dirs {
            caches.push(self.inner.folders.get(dir).lock_owned().await);
        }
        blocking(move || {
            let _tree_lock = tree_lock;
            caches.iter_mut().for_each(|cache| cache.clear());
            tree::rename(&user_dir, &moves)
        })
        .await?;
        self.inner.changes.notify_tree(user, &from);
        Ok(())
    }

    fn watch(&self, user: &str, mailbox: &str) -> MailboxWatch {
        match rules::canonical_mailbox(mailbox) {
            Ok(mailbox) => self.inner.changes.watch(user, &mailbox),
            Err(_) => MailboxWatch::never(),
        }
    }

    async fn set_subscribed(&self, user: &str, mailbox: &str, subscribed: bool) -> StoreResult<()> {
        let mailbox = rules::canonical_mailbox(mailbox)?;
        self.on_tree(user, move |user_dir| {
            tree::set_subscribed(user_dir, &mailbox, subscribed)
        })
        .await
    }

    async fn first_recent_uid(&self, user: &str, mailbox: &str) -> StoreResult<u32> {
        self.on_folder(user, mailbox, folder::first_recent_uid)
            .await
    }

    async fn claim_recent(&self, user: &str, mailbox: &str, highest: u32) -> StoreResult<u32> {
        self.on_folder(user, mailbox, move |folder, cache| {
            folder::claim_recent(folder, cache, highest)
        })
        .await
    }

    async fn pop3_uidls(&self, user: &str, mailbox: &str) -> StoreResult<HashMap<u32, String>> {
        self.on_folder(user, mailbox, folder::pop3_uidls).await
    }
}
