//! One Maildir folder (`cur/`, `new/`, `tmp/`, the UID list, the keyword file and the
//! mod-sequence file): the blocking work behind `snapshot`, `fetch`, `append`, `set_flags` and
//! `expunge`.
//!
//! The caller holds the folder's lock and passes its [`FolderCache`], so nothing here races
//! with another operation of this process on the same folder; except [`TmpMessage`], a
//! message being written to `tmp/`, which is private to its writer until [`deliver`] takes
//! the lock.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;

use super::dotlock::{DotLock, LockTimes};
use super::durable;
use super::filename;
use super::keywords::{self, KeywordFile};
use super::listing::{DirTimes, Listing};
use super::message_cache::{MemoryUse, MessageCache};
use super::modseqs::{self, Modseqs};
use super::tmp_sweep;
use super::uidlist::{self, Loaded, UidList};
use crate::store::keyword_table::SlotMask;
use crate::store::{
    FlagsUpdate, MailboxSnapshot, MessageFlags, MessageMeta, Rfc822Size, StoreError, StoreResult,
    rfc822_size,
};

/// The paths of one folder.
pub(super) struct Folder {
    dir: PathBuf,
}

impl Folder {
    pub(super) fn new(dir: PathBuf) -> Folder {
        Folder { dir }
    }
    fn cur(&self) -> PathBuf {
        self.dir.join("cur")
    }
    fn new_dir(&self) -> PathBuf {
        self.dir.join("new")
    }
    fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }
    fn uidlist(&self) -> PathBuf {
        self.dir.join(uidlist::FILE_NAME)
    }
    fn keywords(&self) -> PathBuf {
        self.dir.join(keywords::FILE_NAME)
    }
    fn modseqs(&self) -> PathBuf {
        self.dir.join(modseqs::FILE_NAME)
    }

    /// Takes Dovecot's lock on the UID list, which every writer of it holds; fails with
    /// `NoSuchMailbox` if the folder is gone.
    fn lock(&self) -> StoreResult<DotLock> {
        DotLock::acquire(&self.uidlist(), LockTimes::UIDLIST).map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => self.check_exists().err().unwrap_or(err.into()),
            _ => err.into(),
        })
    }

    /// Creates the folder's directories and UID list; `Ok(false)` if it already existed.
    ///
    /// `cur/` comes last: a folder exists once `cur/` does, so a crash halfway leaves no
    /// half-made folder visible, and the next attempt finishes it.
    pub(super) fn create(&self) -> io::Result<bool> {
        if self.cur().is_dir() {
            return Ok(false);
        }
        durable::create_dir(&self.tmp())?;
        durable::create_dir(&self.new_dir())?;
        let lock = DotLock::acquire(&self.uidlist(), LockTimes::UIDLIST)?;
        if !self.uidlist().exists() && !self.dir.join(uidlist::LEGACY_FILE_NAME).exists() {
            UidList::fresh(0).write(&self.dir, &lock)?;
        }
        drop(lock);
        let created = durable::create_dir(&self.cur())?;
        durable::sync_dir(&self.dir)?;
        Ok(created)
    }

    fn check_exists(&self) -> StoreResult<()> {
        if self.cur().is_dir() {
            Ok(())
        } else {
            Err(StoreError::NoSuchMailbox)
        }
    }
}

/// What this process remembers about a folder between operations; a cache only: it is
/// checked against the UID list file on every use, and file names are re-read from `cur/`
/// when another program renamed a file.
#[derive(Default)]
pub(super) struct FolderCache {
    state: Option<State>,
    /// Whether `tmp/` was swept of abandoned files since this cache was made (see
    /// [`tmp_sweep`](super::tmp_sweep)): once per folder while the process keeps it.
    tmp_swept: bool,
    /// The folder's `tower-mail-cache`, once used; kept apart from `state`, which is read
    /// again whenever another program changed the UID list.
    messages: Option<MessageCache>,
}

impl FolderCache {
    /// Forgets everything (after the folder was renamed or deleted, or an operation failed).
    pub(super) fn clear(&mut self) {
        self.state = None;
        self.messages = None;
    }
}

struct State {
    /// Identifies the UID list file this state was read from or written to.
    stamp: Stamp,
    list: UidList,
    /// File name in `cur/` by UID, as last seen.
    names: HashMap<u32, String>,
    /// Whether `names` covers every UID that had a file at the last scan, so a missing entry
    /// means the message is gone rather than "not looked up yet".
    names_complete: bool,
    /// When `names` was last read whole, for [`cached`].
    names_read: Option<NamesRead>,
    /// Modification times (INTERNALDATE) by base name, so a snapshot stats new files only.
    dates: HashMap<String, SystemTime>,
    /// RFC 822 sizes of messages whose names carry no `W=`, by base name, so such a file is
    /// read once per process rather than at every snapshot.
    sizes: HashMap<String, u64>,
    /// The last snapshot, reused while the directories are unchanged.
    listing: Listing,
    /// The keyword letters, and the stamp of the file they were read from (`None`: no file).
    keywords: KeywordFile,
    keywords_stamp: Option<Stamp>,
    /// The mod-sequences, once needed.
    modseqs: Option<ModseqCache>,
}

/// The folder's mod-sequences as last read or written, and the stamp of their file then
/// (`None`: there was none).
struct ModseqCache {
    modseqs: Modseqs,
    stamp: Option<Stamp>,
}

impl State {
    fn new(stamp: Stamp, list: UidList) -> State {
        State {
            stamp,
            list,
            names: HashMap::new(),
            names_complete: false,
            names_read: None,
            dates: HashMap::new(),
            sizes: HashMap::new(),
            listing: Listing::default(),
            keywords: KeywordFile::default(),
            keywords_stamp: None,
            modseqs: None,
        }
    }
}

/// Length, modification time and inode of the UID list (or the keyword file): since it is
/// always replaced by a rename, a new write means a new inode, even within one timestamp tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Stamp {
    /// The stamp of the file at `path`; `None` if there is none.
    fn of_path(path: &Path) -> io::Result<Option<Stamp>> {
        match fs::metadata(path) {
            Ok(meta) => Ok(Some(Stamp::of(&meta))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

/// The directory times under which `cur/` was last read whole, and when.
struct NamesRead {
    times: DirTimes,
    at: SystemTime,
}

impl NamesRead {
    /// How long names read under directory times too recent to be trusted (see
    /// [`listing`](super::listing)) are used anyway: a whole-mailbox FETCH looks them up
    /// once per batch, and should not list a large `cur/` again each time. A file another
    /// program removed within that time may be answered for from the message cache, as if
    /// the FETCH had come just before; the session's view of the mailbox lists it until
    /// its next look anyway.
    const UNSETTLED_USE: std::time::Duration = std::time::Duration::from_millis(500);

    fn new(times: DirTimes, at: SystemTime) -> NamesRead {
        NamesRead { times, at }
    }

    /// Whether `cur/` still holds the names read then: the directories kept their times,
    /// and those were settled, or the names are very recent.
    fn holds(&self, times: DirTimes, now: SystemTime) -> bool {
        self.times == times
            && (times.settled(self.at)
                || now
                    .duration_since(self.at)
                    .is_ok_and(|age| age < Self::UNSETTLED_USE))
    }
}

/// A message file seen in `cur/`.
struct CurFile {
    name: String,
    modified: SystemTime,
}

impl CurFile {
    fn base(&self) -> &str {
        filename::split(&self.name).0
    }
}

/// Runs `op` on the folder's state, forgetting the state if the operation failed halfway.
fn with_state<T>(
    folder: &Folder,
    cache: &mut FolderCache,
    op: impl FnOnce(&mut State) -> StoreResult<T>,
) -> StoreResult<T> {
    let result = state(folder, cache, None).and_then(op);
    if let Err(StoreError::Io(_)) = result {
        cache.clear();
    }
    result
}

/// [`with_state`] for an operation that may write the UID list: under Dovecot's lock on it,
/// taken before the state is checked against the file, so that what is written starts from
/// what another server (or another store on this tree) wrote last.
fn with_state_locked<T>(
    folder: &Folder,
    cache: &mut FolderCache,
    op: impl FnOnce(&mut State, &DotLock) -> StoreResult<T>,
) -> StoreResult<T> {
    let result = folder.lock().and_then(|lock| {
        let state = state(folder, cache, Some(&lock))?;
        op(state, &lock)
    });
    if let Err(StoreError::Io(_)) = result {
        cache.clear();
    }
    result
}

/// The folder's state: the cached one if the UID list did not change, else read from disk,
/// rebuilt from the files (with a new UIDVALIDITY) if the list is missing or corrupt. `lock`
/// is Dovecot's lock on the list if the caller holds it; loading takes it if it must write.
fn state<'c>(
    folder: &Folder,
    cache: &'c mut FolderCache,
    lock: Option<&DotLock>,
) -> StoreResult<&'c mut State> {
    if !cache.tmp_swept {
        cache.tmp_swept = true;
        tmp_sweep::sweep_logged(&folder.tmp(), SystemTime::now());
    }
    let stamp = Stamp::of_path(&folder.uidlist())?;
    let state = match cache.state.take() {
        Some(state) if Some(state.stamp) == stamp => state,
        old => {
            let previous = old.map_or(0, |state| state.list.uid_validity);
            load(folder, previous, lock)?
        }
    };
    let state = cache.state.insert(state);
    refresh_keywords(folder, state)?;
    Ok(state)
}

/// Re-reads the keyword file if another program (Dovecot) changed it since it was read;
/// whether it did.
fn refresh_keywords(folder: &Folder, state: &mut State) -> io::Result<bool> {
    let path = folder.keywords();
    let stamp = Stamp::of_path(&path)?;
    if stamp == state.keywords_stamp {
        return Ok(false);
    }
    state.keywords = KeywordFile::read(&path)?;
    state.keywords_stamp = stamp;
    // The listing's keywords were named by the old file.
    state.listing.forget();
    Ok(true)
}

/// The folder's mod-sequences (for the UID list's `uid_validity`): read at first use and
/// again when another process wrote the file, started anew for a new UIDVALIDITY. Returns
/// whether they were read or started anew, which makes a kept listing stale.
fn modseqs<'c>(
    folder: &Folder,
    uid_validity: u32,
    cache: &'c mut Option<ModseqCache>,
) -> io::Result<(&'c mut Modseqs, bool)> {
    let path = folder.modseqs();
    let stamp = Stamp::of_path(&path)?;
    let (modseqs, mut renewed) = match cache.take() {
        Some(cached) if cached.stamp == stamp => (cached.modseqs, false),
        old => {
            let previous = old.map_or(0, |cached| cached.modseqs.highest());
            let read = Modseqs::read(&path)?;
            let modseqs = read.unwrap_or_else(|| Modseqs::fresh(uid_validity, previous));
            (modseqs, true)
        }
    };
    let cached = cache.insert(ModseqCache { modseqs, stamp });
    renewed |= cached.modseqs.follow_uid_validity(uid_validity);
    Ok((&mut cached.modseqs, renewed))
}

/// Makes the folder's mod-sequence changes durable (the caller holds Dovecot's lock on the
/// UID list) before any of them is reported: one reported and then lost in a crash could be
/// handed out again for another change, which a client that saw it would then miss.
fn flush_modseqs(
    folder: &Folder,
    cache: &mut Option<ModseqCache>,
    lock: &DotLock,
) -> io::Result<()> {
    if let Some(cached) = cache
        && cached.modseqs.flush(&folder.dir, lock)?
    {
        cached.stamp = Stamp::of_path(&folder.modseqs())?;
    }
    Ok(())
}

/// The info letters of a file name in `cur/` (after `:2,`; none reads as none set).
fn info_of(name: &str) -> &str {
    filename::split(name).1.unwrap_or("")
}

/// The slots of `flags`' keywords, adding the new ones to the keyword file first, so that no
/// message file ever carries a letter the file does not name. Fails with `TooManyKeywords`,
/// changing nothing, when they do not fit. Dovecot writes `dovecot-keywords` only under its
/// lock on the UID list: `lock` if the caller holds it, else taken here, and the file read
/// again under it so that a keyword Dovecot just added keeps its letter.
fn keyword_slots(
    folder: &Folder,
    state: &mut State,
    flags: &MessageFlags,
    lock: Option<&DotLock>,
) -> StoreResult<SlotMask> {
    let (mut mask, added) = state.keywords.table.intern(&flags.keywords)?;
    if !added {
        return Ok(mask);
    }
    let _taken = match lock {
        Some(_) => None,
        None => {
            let taken = folder.lock()?;
            if refresh_keywords(folder, state)? {
                // Read again: what was added in memory went with the old table.
                let (again, still_new) = state.keywords.table.intern(&flags.keywords)?;
                mask = again;
                if !still_new {
                    return Ok(mask);
                }
            }
            Some(taken)
        }
    };
    let path = folder.keywords();
    state.keywords.write(&path)?;
    state.keywords_stamp = Stamp::of_path(&path)?;
    Ok(mask)
}

fn load(folder: &Folder, previous: u32, lock: Option<&DotLock>) -> StoreResult<State> {
    // The stamp before the read: a change during the read then shows as a change at the
    // next look, never the other way round.
    let stamp = match fs::metadata(folder.uidlist()) {
        Ok(meta) => Stamp::of(&meta),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Stamp::default(),
        Err(err) => return Err(err.into()),
    };
    let loaded = match UidList::read(&folder.dir)? {
        Loaded::Ok(list) if !list.is_legacy() => return Ok(State::new(stamp, list)),
        other => other,
    };
    let Some(lock) = lock else {
        // Rebuilding or converting writes the list: under the lock, from a fresh read.
        let lock = folder.lock()?;
        return load(folder, previous, Some(&lock));
    };
    let list = match loaded {
        // Written earlier by tower-mail: kept, and replaced with a `dovecot-uidlist` now.
        Loaded::Ok(list) => list,
        Loaded::Missing => {
            folder.check_exists()?;
            // Normal for a folder another tool made.
            tracing::info!(folder = %folder.dir.display(), "UID list missing: assigning UIDs");
            UidList::fresh(previous)
        }
        Loaded::Corrupt(validity, path) => {
            folder.check_exists()?;
            tracing::warn!(file = %path.display(), "UID list corrupt: assigning new UIDs");
            // Keep the evidence; the rebuilt list replaces it.
            let mut kept = path.as_os_str().to_owned();
            kept.push(".corrupt");
            fs::rename(&path, kept)?;
            UidList::fresh(previous.max(validity.unwrap_or(0)))
        }
    };
    let mut state = State::new(Stamp::default(), list);
    refresh_keywords(folder, &mut state)?;
    sync(folder, &mut state, true, lock)?;
    Ok(state)
}

/// Brings the UID list up to date with the files: moves deliveries from `new/` to `cur/`,
/// gives UIDs to files that have none (oldest first), forgets UIDs whose file is gone, and
/// persists the list if anything changed (or if `dirty`). Returns the messages by UID.
fn sync(
    folder: &Folder,
    state: &mut State,
    mut dirty: bool,
    lock: &DotLock,
) -> StoreResult<Vec<MessageMeta>> {
    let cur = folder.cur();
    let mut files = Vec::new();
    let mut bases = HashSet::new();
    for entry in fs::read_dir(&cur)? {
        let entry = entry?;
        let Some(name) = message_name(entry.file_name()) else {
            continue;
        };
        let base = filename::split(&name).0;
        if bases.contains(base) {
            tracing::warn!(file = %name, "two files with the same base name; ignoring one");
            continue;
        }
        // The INTERNALDATE never changes, so a known file needs no stat: with the sizes in the
        // names, a snapshot of a large folder is one readdir.
        let known = state.dates.get(base).copied();
        let modified = match known {
            Some(modified) if entry.file_type().is_ok_and(|kind| kind.is_file()) => modified,
            _ => match entry.metadata() {
                Ok(meta) if meta.is_file() => meta.modified()?,
                Ok(_) => continue,
                // Expunged by another program since readdir.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err.into()),
            },
        };
        bases.insert(base.to_owned());
        files.push(CurFile { name, modified });
    }
    deliver_new(folder, &state.list, &mut files, &mut bases)?;

    // Reconcile.
    let before = state.list.entries.len();
    state
        .list
        .entries
        .retain(|_, base| bases.contains(base.as_str()));
    dirty |= state.list.entries.len() != before;
    let known: HashSet<&str> = state.list.entries.values().map(String::as_str).collect();
    let mut unknown: Vec<&CurFile> = files
        .iter()
        .filter(|file| !known.contains(file.base()))
        .collect();
    drop(known);
    unknown.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
    dirty |= !unknown.is_empty();
    for file in unknown {
        state.list.assign(file.base().to_owned());
    }
    if dirty {
        persist(folder, state, lock)?;
    }

    // List.
    let by_base: HashMap<&str, &CurFile> = files.iter().map(|file| (file.base(), file)).collect();
    state.names.clear();
    state.dates = files
        .iter()
        .map(|file| (file.base().to_owned(), file.modified))
        .collect();
    state
        .sizes
        .retain(|base, _| by_base.contains_key(base.as_str()));
    // Messages new to the mod-sequence file (delivered since, by this store too: a delivery
    // leaves that to here) get a mod-sequence now, as do those whose flags another program
    // changed; UIDs gone from the list were expunged by another program.
    let (modseqs, _) = modseqs(folder, state.list.uid_validity, &mut state.modseqs)?;
    modseqs.forget_missing(&state.list.entries);
    let mut messages = Vec::with_capacity(state.list.entries.len());
    for (&uid, base) in &state.list.entries {
        let Some(file) = by_base.get(base.as_str()) else {
            continue;
        };
        let size = match filename::size_field(base, 'W') {
            Some(size) => size,
            None => match state.sizes.get(base) {
                Some(&size) => size,
                None => {
                    let size = rfc822_size(&fs::read(cur.join(&file.name))?);
                    state.sizes.insert(base.clone(), size);
                    size
                }
            },
        };
        let info = info_of(&file.name);
        messages.push(MessageMeta {
            uid,
            size,
            flags: state.keywords.flags_of(info),
            internal_date: file.modified,
            modseq: modseqs.of(uid, info),
        });
        state.names.insert(uid, file.name.clone());
    }
    state.names_complete = true;
    flush_modseqs(folder, &mut state.modseqs, lock)?;
    Ok(messages)
}

/// Moves what an MDA delivered into `new/` to `cur/` (adding `:2,`), appending the files to
/// `files`. Adds `,S=` and `,W=` to names that lack them, reading such a file once, so later
/// snapshots get the sizes from the name; except where the UID list already has the name
/// (Dovecot gives UIDs to what is in `new/`): renaming it would cost the message its UID.
fn deliver_new(
    folder: &Folder,
    list: &UidList,
    files: &mut Vec<CurFile>,
    bases: &mut HashSet<String>,
) -> StoreResult<()> {
    let listed: HashSet<&str> = list.entries.values().map(String::as_str).collect();
    let new = folder.new_dir();
    let cur = folder.cur();
    let mut moved = false;
    let entries = match fs::read_dir(&new) {
        Ok(entries) => entries,
        // Some tools make only cur/ for a folder that never receives deliveries.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    for entry in entries {
        let entry = entry?;
        let raw_name = entry.file_name();
        if raw_name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => continue,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err.into()),
        };
        // A delivery whose name we could not keep (not UTF-8, control characters) still
        // is mail: it gets a name of ours.
        let (base, info) = raw_name
            .to_str()
            .filter(|name| filename::is_message_name(name))
            .map_or(("", None), filename::split);
        if !base.is_empty() && listed.contains(base) && !bases.contains(base) {
            let target = filename::full_name(base, info.unwrap_or(""));
            match fs::rename(entry.path(), cur.join(&target)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err.into()),
            }
            moved = true;
            bases.insert(base.to_owned());
            files.push(CurFile {
                name: target,
                modified: meta.modified()?,
            });
            continue;
        }
        let rfc822 = match filename::size_field(base, 'W') {
            Some(size) => size,
            None => match fs::read(entry.path()) {
                Ok(content) => rfc822_size(&content),
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err.into()),
            },
        };
        let base = if base.is_empty() || bases.contains(base) {
            // Unusable, or would clobber or shadow a message already in cur/.
            filename::unique_base(meta.len(), rfc822)
        } else {
            filename::with_size_fields(base, meta.len(), rfc822)
        };
        let target = filename::full_name(&base, info.unwrap_or(""));
        match fs::rename(entry.path(), cur.join(&target)) {
            Ok(()) => {}
            // Another process moved it first.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err.into()),
        }
        moved = true;
        bases.insert(base);
        files.push(CurFile {
            name: target,
            modified: meta.modified()?,
        });
    }
    if moved {
        durable::sync_dir(&cur)?;
        durable::sync_dir(&new)?;
    }
    Ok(())
}

fn message_name(name: std::ffi::OsString) -> Option<String> {
    match name.into_string() {
        Ok(name) if filename::is_message_name(&name) => Some(name),
        Ok(_) => None,
        Err(name) => {
            tracing::warn!(?name, "ignoring a file whose name is not UTF-8");
            None
        }
    }
}

fn persist(folder: &Folder, state: &mut State, lock: &DotLock) -> io::Result<()> {
    state.list.write(&folder.dir, lock)?;
    state.stamp = Stamp::of(&fs::metadata(folder.uidlist())?);
    Ok(())
}

/// Re-reads `cur/` to learn the current file name of every UID.
fn rescan_names(folder: &Folder, state: &mut State) -> io::Result<()> {
    let uids: HashMap<&str, u32> = state
        .list
        .entries
        .iter()
        .map(|(&uid, base)| (base.as_str(), uid))
        .collect();
    state.names.clear();
    for entry in fs::read_dir(folder.cur())? {
        let Some(name) = message_name(entry?.file_name()) else {
            continue;
        };
        if let Some(&uid) = uids.get(filename::split(&name).0) {
            state.names.insert(uid, name);
        }
    }
    state.names_complete = true;
    Ok(())
}

/// Runs `op` on the file of message `uid` (its path and name). Another program may have
/// renamed the file (changing its flags) since it was last seen: then `cur/` is read again
/// and `op` retried once.
fn on_file<T>(
    folder: &Folder,
    state: &mut State,
    uid: u32,
    mut op: impl FnMut(&Path, &str) -> io::Result<T>,
) -> StoreResult<T> {
    if !state.list.entries.contains_key(&uid) {
        return Err(StoreError::NoSuchMessage);
    }
    let cur = folder.cur();
    for _ in 0..2 {
        if !state.names.contains_key(&uid) && !state.names_complete {
            rescan_names(folder, state)?;
        }
        let Some(name) = state.names.get(&uid) else {
            return Err(StoreError::NoSuchMessage);
        };
        match op(&cur.join(name), name) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                state.names.remove(&uid);
                state.names_complete = false;
            }
            result => return result.map_err(StoreError::from),
        }
    }
    Err(StoreError::NoSuchMessage)
}

pub(super) fn snapshot(folder: &Folder, cache: &mut FolderCache) -> StoreResult<MailboxSnapshot> {
    let snapshot_of = |state: &State, messages| MailboxSnapshot {
        uid_validity: state.list.uid_validity,
        uid_next: state.list.uid_next,
        messages,
        keywords: state.keywords.table.all(),
        highest_modseq: state
            .modseqs
            .as_ref()
            .map_or(1, |cached| cached.modseqs.highest()),
    };
    let reused = with_state(folder, cache, |state| {
        let times = DirTimes::read(&folder.cur(), &folder.new_dir())?;
        let (_, renewed) = modseqs(folder, state.list.uid_validity, &mut state.modseqs)?;
        if renewed {
            state.listing.forget();
        }
        Ok(state
            .listing
            .reuse(times)
            .map(|messages| snapshot_of(state, messages)))
    })?;
    if let Some(snapshot) = reused {
        return Ok(snapshot);
    }
    // Listing may give UIDs to new files: under the lock, as Dovecot lists too.
    with_state_locked(folder, cache, |state, lock| {
        let times = DirTimes::read(&folder.cur(), &folder.new_dir())?;
        let messages = sync(folder, state, false, lock)?;
        let now = SystemTime::now();
        let messages = state.listing.keep(times, now, messages);
        state.names_read = Some(NamesRead::new(times, now));
        Ok(snapshot_of(state, messages))
    })
}

pub(super) fn uid_validity(folder: &Folder, cache: &mut FolderCache) -> StoreResult<u32> {
    with_state(folder, cache, |state| Ok(state.list.uid_validity))
}

/// The POP3 UIDLs the UID list keeps for some messages (Dovecot's `P` field), by UID.
pub(super) fn pop3_uidls(
    folder: &Folder,
    cache: &mut FolderCache,
) -> StoreResult<HashMap<u32, String>> {
    with_state(folder, cache, |state| Ok(state.list.pop3_uidls()))
}

/// The first UID no read-write session has been told about: `\Recent` from there on.
pub(super) fn first_recent_uid(folder: &Folder, cache: &mut FolderCache) -> StoreResult<u32> {
    with_state(folder, cache, |state| Ok(state.list.first_recent_uid))
}

/// A read-write session has been told of every message up to UID `highest`: returns the
/// first recent UID before (the messages from it up to `highest` are recent for that
/// session), and raises it past `highest`, durably, so that no later session, in this process
/// or after a restart, sees them as recent.
pub(super) fn claim_recent(
    folder: &Folder,
    cache: &mut FolderCache,
    highest: u32,
) -> StoreResult<u32> {
    let before = first_recent_uid(folder, cache)?;
    if highest < before {
        return Ok(before);
    }
    with_state_locked(folder, cache, |state, lock| {
        let before = state.list.first_recent_uid;
        // A UID from an older numbering may be past UIDNEXT: never claim beyond it.
        let claimed = highest.saturating_add(1).min(state.list.uid_next);
        if claimed > before {
            state.list.first_recent_uid = claimed;
            persist(folder, state, lock)?;
        }
        Ok(before)
    })
}

pub(super) fn fetch(folder: &Folder, cache: &mut FolderCache, uid: u32) -> StoreResult<Vec<u8>> {
    with_state(folder, cache, |state| {
        on_file(folder, state, uid, |path, _| fs::read(path))
    })
}

/// Reads several messages under one look at the UID list.
pub(super) fn fetch_many(
    folder: &Folder,
    cache: &mut FolderCache,
    uids: &[u32],
) -> StoreResult<Vec<StoreResult<Vec<u8>>>> {
    with_state(folder, cache, |state| {
        Ok(uids
            .iter()
            .map(|&uid| on_file(folder, state, uid, |path, _| fs::read(path)))
            .collect())
    })
}

/// What the folder's cache keeps for each message of `keys` (UID and RFC 822 size), in
/// their order: `Ok(None)` where it keeps nothing for that file, `Err(NoSuchMessage)` where
/// the message's file is gone. Reads no message: `cur/` is listed again only if it changed
/// since it was last listed.
pub(super) fn cached(
    folder: &Folder,
    cache: &mut FolderCache,
    keys: &[(u32, u64)],
    memory: &MemoryUse,
) -> StoreResult<Vec<StoreResult<Option<Bytes>>>> {
    let messages = cache
        .messages
        .take()
        .unwrap_or_else(|| MessageCache::load(&folder.dir, memory));
    let found = with_state(folder, cache, |state| {
        let times = DirTimes::read(&folder.cur(), &folder.new_dir())?;
        let now = SystemTime::now();
        let current = state
            .names_read
            .as_ref()
            .is_some_and(|read| read.holds(times, now));
        if !state.names_complete || !current {
            rescan_names(folder, state)?;
            state.names_read = Some(NamesRead::new(times, now));
        }
        Ok(keys
            .iter()
            .map(|&(uid, size)| {
                match (state.list.entries.get(&uid), state.names.contains_key(&uid)) {
                    (Some(base), true) => Ok(messages.get(uid, base, size)),
                    _ => Err(StoreError::NoSuchMessage),
                }
            })
            .collect())
    });
    cache.messages = Some(messages);
    found
}

/// Keeps `entries` (UID, RFC 822 size, data) in the folder's cache, for the files the UIDs
/// name now; entries of messages gone are dropped on the way. Failing to write the cache
/// file is logged, not an error: the file is only a shortcut.
pub(super) fn remember(
    folder: &Folder,
    cache: &mut FolderCache,
    entries: Vec<(u32, u64, Bytes)>,
    memory: &MemoryUse,
) -> StoreResult<()> {
    let mut messages = cache
        .messages
        .take()
        .unwrap_or_else(|| MessageCache::load(&folder.dir, memory));
    let result = with_state(folder, cache, |state| {
        let list = &state.list.entries;
        let new = entries.into_iter().filter_map(|(uid, size, data)| {
            let base = list.get(&uid)?;
            Some((uid, base.clone(), size, data))
        });
        let live = |uid, base: &[u8]| list.get(&uid).is_some_and(|b| b.as_bytes() == base);
        if let Err(err) = messages.add(&folder.dir, new, live) {
            tracing::warn!(dir = %folder.dir.display(), %err, "could not write the message cache");
        }
        Ok(())
    });
    cache.messages = Some(messages);
    result
}

/// A file in `tmp/` that is removed when this is dropped, unless [`kept`](Self::keep): so a
/// delivery that fails, or is abandoned or cancelled at any point, leaves nothing behind.
///
/// The removal is a plain `remove_file`, also when the drop happens on an async worker (an
/// upload the client abandoned): one unlink in a local directory, not synced (a leftover in
/// `tmp/` after a crash is harmless: no reader lists `tmp/`), is as cheap as the `close` that
/// dropping the file does anyway, and unlike a task spawned for it, it is done when the drop
/// returns, also at runtime shutdown.
struct TmpFile {
    path: PathBuf,
    kept: bool,
}

impl TmpFile {
    fn new(path: PathBuf) -> TmpFile {
        TmpFile { path, kept: false }
    }

    /// The file was moved away: nothing to remove.
    fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        if let Err(err) = fs::remove_file(&self.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            let file = self.path.display();
            tracing::warn!(%file, error = %err, "abandoned message not removed");
        }
    }
}

/// A message being written to `tmp/`: the first half of a delivery, done without the
/// folder's lock. [`finish`](Self::finish) syncs it, and [`deliver`] moves it into `cur/`.
pub(super) struct TmpMessage {
    file: File,
    tmp: TmpFile,
    /// The file's name in `tmp/`, a [`filename::unique_token`]: the base in `cur/` adds the
    /// sizes, known only at the end.
    token: String,
    size: Rfc822Size,
}

impl TmpMessage {
    /// Creates an empty message file in the folder's `tmp/`, failing with `NoSuchMailbox` if
    /// the folder does not exist.
    pub(super) fn create(folder: &Folder) -> StoreResult<TmpMessage> {
        folder.check_exists()?;
        let tmp = folder.tmp();
        loop {
            let token = filename::unique_token();
            let path = tmp.join(&token);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TmpMessage {
                        file,
                        tmp: TmpFile::new(path),
                        token,
                        size: Rfc822Size::default(),
                    });
                }
                // Names are unique per process; this is another process's file.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    folder.check_exists()?;
                    // A folder made by a tool that did not create tmp/.
                    durable::create_dir(&tmp)?;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Appends `data` to the file, counting its RFC 822 size.
    pub(super) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.size.add(data);
        Ok(())
    }

    /// Sets the INTERNALDATE (the file's mtime) and syncs the file: ready for [`deliver`].
    pub(super) fn finish(self, internal_date: Option<SystemTime>) -> io::Result<Written> {
        if let Some(date) = internal_date {
            self.file.set_modified(date)?;
        }
        self.file.sync_all()?;
        Ok(Written {
            tmp: self.tmp,
            token: self.token,
            size: self.size.octets(),
            rfc822: self.size.rfc822(),
        })
    }
}

/// A message written and synced in `tmp/`, waiting for [`deliver`]; removed if dropped.
pub(super) struct Written {
    tmp: TmpFile,
    token: String,
    size: u64,
    rfc822: u64,
}

/// Delivers a message [written](TmpMessage::finish) to `tmp/`: renamed into `cur/` (named
/// with its sizes and `flags`) and the directory synced, and only then given a UID in the
/// (synced) UID list: once this returns, the message and its UID survive a crash. On failure
/// the message is removed: nothing was delivered.
pub(super) fn deliver(
    folder: &Folder,
    cache: &mut FolderCache,
    mut written: Written,
    flags: MessageFlags,
) -> StoreResult<u32> {
    with_state_locked(folder, cache, |state, lock| {
        state.listing.forget();
        let keywords = keyword_slots(folder, state, &flags, Some(lock))?;
        let letters = filename::info_letters(None, flags.system, keywords, 0);
        let base = filename::base_with_sizes(&written.token, written.size, written.rfc822);
        let name = filename::full_name(&base, &letters);
        let cur_path = folder.cur().join(&name);
        if let Err(err) = fs::rename(&written.tmp.path, &cur_path) {
            if err.kind() == io::ErrorKind::NotFound {
                // The mailbox was deleted or renamed away while the message was written.
                folder.check_exists()?;
            }
            return Err(err.into());
        }
        written.tmp.keep();
        if let Err(err) = durable::sync_dir(&folder.cur()) {
            let _ = fs::remove_file(&cur_path);
            return Err(err.into());
        }
        let validity = state.list.uid_validity;
        let uid = state.list.assign(base);
        if let Err(err) = persist(folder, state, lock) {
            // Without a durable UID the append failed: take the message back so a retry by
            // the client does not leave a duplicate.
            let _ = fs::remove_file(&cur_path);
            return Err(err.into());
        }
        if state.list.uid_validity != validity {
            // Renumbered: the remembered names are by old UIDs.
            state.names.clear();
            state.names_complete = false;
        }
        state.names.insert(uid, name);
        Ok(uid)
    })
}

/// Renames the message's file to carry `flags`, keeping the letters that IMAP cannot name,
/// unless it changed after `unchanged_since`; returns the flags as stored and the message's
/// mod-sequence. Under the UID list's lock, which the mod-sequence file is written under.
pub(super) fn update_flags(
    folder: &Folder,
    cache: &mut FolderCache,
    uid: u32,
    flags: MessageFlags,
    unchanged_since: Option<u64>,
) -> StoreResult<FlagsUpdate> {
    with_state_locked(folder, cache, |state, lock| {
        if !state.list.entries.contains_key(&uid) {
            return Err(StoreError::NoSuchMessage);
        }
        // Its own change moves the directory's time too; forgetting is the plainer guarantee.
        state.listing.forget();
        // The name now: a flag change by another program since the last look is a change.
        let current = on_file(folder, state, uid, |path, name| {
            fs::metadata(path).map(|_| name.to_owned())
        })?;
        let (table, _) = modseqs(folder, state.list.uid_validity, &mut state.modseqs)?;
        let before = table.of(uid, info_of(&current));
        if unchanged_since.is_some_and(|since| before > since) {
            flush_modseqs(folder, &mut state.modseqs, lock)?;
            return Ok(FlagsUpdate::Modified { modseq: before });
        }
        let keywords = keyword_slots(folder, state, &flags, Some(lock))?;
        let kept = state.keywords.table.reserved();
        let cur = folder.cur();
        let (name, renamed) = on_file(folder, state, uid, |path, name| {
            let (base, info) = filename::split(name);
            let letters = filename::info_letters(info, flags.system, keywords, kept);
            let target = filename::full_name(base, &letters);
            if target == name {
                return Ok((target, false));
            }
            fs::rename(path, cur.join(&target))?;
            Ok((target, true))
        })?;
        if renamed {
            durable::sync_dir(&cur)?;
        }
        let (table, _) = modseqs(folder, state.list.uid_validity, &mut state.modseqs)?;
        let modseq = table.of(uid, info_of(&name));
        flush_modseqs(folder, &mut state.modseqs, lock)?;
        state.names.insert(uid, name);
        Ok(FlagsUpdate::Stored {
            flags: MessageFlags {
                system: flags.system,
                keywords: state.keywords.table.keywords(keywords),
            },
            modseq,
        })
    })
}

/// The UIDs expunged after `modseq`, if the folder's history goes back that far.
pub(super) fn expunged_since(
    folder: &Folder,
    cache: &mut FolderCache,
    modseq: u64,
) -> StoreResult<Option<Vec<std::ops::RangeInclusive<u32>>>> {
    with_state(folder, cache, |state| {
        let (table, _) = modseqs(folder, state.list.uid_validity, &mut state.modseqs)?;
        Ok(table.expunged_since(modseq))
    })
}

/// Deletes the messages' files, then their UIDs (UIDNEXT stays: UIDs are never reused).
pub(super) fn expunge(folder: &Folder, cache: &mut FolderCache, uids: &[u32]) -> StoreResult<()> {
    with_state_locked(folder, cache, |state, lock| {
        state.listing.forget();
        let mut removed = Vec::new();
        for &uid in uids {
            match on_file(folder, state, uid, |path, _| fs::remove_file(path)) {
                Ok(()) | Err(StoreError::NoSuchMessage) => {}
                Err(err) => return Err(err),
            }
            if state.list.entries.remove(&uid).is_some() {
                removed.push(uid);
            }
            state.names.remove(&uid);
        }
        if !removed.is_empty() {
            durable::sync_dir(&folder.cur())?;
            persist(folder, state, lock)?;
            let (table, _) = modseqs(folder, state.list.uid_validity, &mut state.modseqs)?;
            table.expunged(removed);
            flush_modseqs(folder, &mut state.modseqs, lock)?;
        }
        Ok(())
    })
}
