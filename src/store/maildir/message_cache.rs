//! The folder's `tower-mail-cache` file: what a protocol derived from each message's content
//! (IMAP's rendered ENVELOPE and BODYSTRUCTURE), kept so that a FETCH over a large mailbox
//! reads one file instead of every message, also after a restart.
//!
//! # Why it can be trusted
//!
//! A Maildir message's content never changes under its file's base name (a flag change
//! renames only the `:2,` suffix), so an entry recorded with the UID, the base name and the
//! RFC 822 size holds for as long as the UID list gives that UID that base name and the
//! caller asks with that size. Nothing in the file is believed otherwise: a record whose
//! checksum fails, a file of another version or one larger than [`MAX_FILE`] counts as
//! empty and is rewritten at the next entry kept. The file is only ever a shortcut; a miss
//! means the caller parses the message, as without the file.
//!
//! # Why an append log
//!
//! A FETCH adds the entries it missed, a batch at a time (a whole mailbox at first, then
//! the few messages delivered since): appending those records costs what they weigh, where
//! rewriting the file would cost the whole folder's entries (megabytes for 10,000 messages)
//! every time. Each record carries
//! a CRC-32 of its contents, so a record torn by a crash (appends are not synced: losing the
//! last ones only costs parsing again) ends the file's valid part, and what follows it is
//! dropped at the next write. Records of replaced or expunged entries stay in the file until
//! they outweigh the live ones; the file is then rewritten with the live ones only, by a
//! temporary file renamed over it.
//!
//! # Bounds
//!
//! One entry's data is at most [`MAX_ENTRY`] bytes (a hostile message with a huge structure
//! is simply not kept: it is parsed at each FETCH), a folder keeps at most [`MAX_LIVE`] bytes
//! of entries (past that, new ones are not kept), and a file larger than [`MAX_FILE`] is not
//! read.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// The file's name in the folder's directory.
const FILE_NAME: &str = "tower-mail-cache";

/// The first line of the file: its format and version. A file that starts otherwise is
/// another version's (or damaged) and is rebuilt.
const HEADER: &[u8] = b"tower-mail-cache 1\n";

/// The most data one entry keeps.
const MAX_ENTRY: usize = 64 * 1024;

/// The most bytes of live records one folder keeps (in memory and on disk).
const MAX_LIVE: u64 = 64 * 1024 * 1024;

/// The largest file read: live records plus as much again of dead ones, which compaction
/// keeps below.
const MAX_FILE: u64 = 2 * MAX_LIVE + HEADER.len() as u64;

/// The most memory the message caches of all the folders of one store hold together before
/// the store drops those of the folders not in use (see [`MemoryUse`]).
const MEMORY_BUDGET: u64 = 256 * 1024 * 1024;

/// Dead records are not compacted away before they weigh this much (a small file is cheap
/// to keep as it is).
const COMPACT_AT: u64 = 1024 * 1024;

/// A record's header: the payload's length and its CRC-32, both little-endian `u32`.
const RECORD_HEADER: usize = 8;
/// The payload's fixed part: UID (`u32`), RFC 822 size (`u64`), base name length (`u16`).
const PAYLOAD_FIXED: usize = 4 + 8 + 2;

/// One message's entry, as recorded (the payload of its record).
#[derive(Debug, Clone)]
struct Entry {
    payload: Bytes,
}

impl Entry {
    fn new(uid: u32, base: &str, size: u64, data: &[u8]) -> Option<Entry> {
        let base_len = u16::try_from(base.len()).ok()?;
        let mut payload = Vec::with_capacity(PAYLOAD_FIXED + base.len() + data.len());
        payload.extend_from_slice(&uid.to_le_bytes());
        payload.extend_from_slice(&size.to_le_bytes());
        payload.extend_from_slice(&base_len.to_le_bytes());
        payload.extend_from_slice(base.as_bytes());
        payload.extend_from_slice(data);
        Some(Entry {
            payload: payload.into(),
        })
    }

    /// The entry in `payload` if it is well formed.
    fn parse(payload: Bytes) -> Option<(u32, Entry)> {
        let fixed = payload.get(..PAYLOAD_FIXED)?;
        let uid = u32::from_le_bytes(fixed[..4].try_into().ok()?);
        let base_len = usize::from(u16::from_le_bytes(fixed[12..14].try_into().ok()?));
        let base = payload.get(PAYLOAD_FIXED..PAYLOAD_FIXED + base_len)?;
        std::str::from_utf8(base).ok()?;
        (payload.len() - PAYLOAD_FIXED - base_len <= MAX_ENTRY).then_some((uid, Entry { payload }))
    }

    fn size(&self) -> u64 {
        u64::from_le_bytes(self.payload[4..12].try_into().expect("checked by parse"))
    }

    fn base_len(&self) -> usize {
        usize::from(u16::from_le_bytes(
            self.payload[12..14].try_into().expect("checked by parse"),
        ))
    }

    fn base(&self) -> &[u8] {
        &self.payload[PAYLOAD_FIXED..PAYLOAD_FIXED + self.base_len()]
    }

    fn data(&self) -> Bytes {
        self.payload.slice(PAYLOAD_FIXED + self.base_len()..)
    }

    /// What its record weighs in the file.
    fn record_len(&self) -> u64 {
        (RECORD_HEADER + self.payload.len()) as u64
    }

    fn write_record(&self, out: &mut Vec<u8>) {
        let len = u32::try_from(self.payload.len()).expect("payloads are bounded");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&self.payload).to_le_bytes());
        out.extend_from_slice(&self.payload);
    }
}

/// The memory the message caches of one store's folders hold, together: each folder's
/// cache is kept in memory while the store keeps the folder's state, and a store with many
/// folders of large mailboxes in use one after the other would otherwise hold all of them.
/// Past its budget, the store drops the state of every folder not in use at that moment
/// (their cache files stay, and are read again at their next FETCH).
#[derive(Debug, Clone)]
pub(super) struct MemoryUse {
    used: Arc<AtomicU64>,
    budget: u64,
}

impl Default for MemoryUse {
    fn default() -> MemoryUse {
        MemoryUse::with_budget(MEMORY_BUDGET)
    }
}

impl MemoryUse {
    pub(super) fn with_budget(budget: u64) -> MemoryUse {
        MemoryUse {
            used: Arc::default(),
            budget,
        }
    }

    /// Whether the caches hold more than the budget.
    pub(super) fn over_budget(&self) -> bool {
        self.used() > self.budget
    }

    /// What the caches hold now, in bytes.
    pub(super) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// A folder's cache file as loaded, and the entries it holds.
#[derive(Debug, Default)]
pub(super) struct MessageCache {
    entries: HashMap<u32, Entry>,
    /// What the live entries' records weigh.
    live: u64,
    /// The length of the file's valid part (header and records) as this cache knows it.
    file_len: u64,
    /// The file must be written whole before anything is appended: it is missing, damaged,
    /// of another version, or an append failed.
    rewrite: bool,
    /// Where the memory this cache holds is counted, and how much it counted: the file as
    /// read, then every entry added (what replaced entries held is counted until the cache
    /// is dropped, as they may share the file's buffer).
    memory: MemoryUse,
    charged: u64,
}

impl Drop for MessageCache {
    fn drop(&mut self) {
        self.memory.used.fetch_sub(self.charged, Ordering::Relaxed);
    }
}

impl MessageCache {
    /// The cache of the folder at `dir`, from its file, its memory counted in `memory`;
    /// empty (to be rebuilt) if the file is missing, unreadable, too large or of another
    /// version. Damaged records end what is read.
    pub(super) fn load(dir: &Path, memory: &MemoryUse) -> MessageCache {
        let (mut cache, read) = MessageCache::read(dir);
        cache.memory = memory.clone();
        cache.charge(read);
        cache
    }

    /// The cache in the file in `dir`, and the bytes read.
    fn read(dir: &Path) -> (MessageCache, u64) {
        let path = dir.join(FILE_NAME);
        let bytes = match fs::metadata(&path) {
            Ok(meta) if meta.len() <= MAX_FILE => fs::read(&path),
            Ok(meta) => {
                tracing::warn!(file = %path.display(), len = meta.len(), "ignoring an oversized cache file");
                return (MessageCache::rebuilt(), 0);
            }
            Err(err) => Err(err),
        };
        match bytes {
            Ok(bytes) => {
                let read = bytes.len() as u64;
                (MessageCache::parse(Bytes::from(bytes), &path), read)
            }
            Err(err) => {
                if err.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(file = %path.display(), %err, "ignoring an unreadable cache file");
                }
                (MessageCache::rebuilt(), 0)
            }
        }
    }

    fn charge(&mut self, bytes: u64) {
        self.memory.used.fetch_add(bytes, Ordering::Relaxed);
        self.charged += bytes;
    }

    fn rebuilt() -> MessageCache {
        let mut cache = MessageCache::default();
        cache.rewrite = true;
        cache
    }

    fn parse(bytes: Bytes, path: &Path) -> MessageCache {
        if !bytes.starts_with(HEADER) {
            tracing::warn!(file = %path.display(), "ignoring a cache file of another version or damaged");
            return MessageCache::rebuilt();
        }
        let mut cache = MessageCache::default();
        let mut at = HEADER.len();
        while at < bytes.len() {
            let Some(entry) = record_at(&bytes, at) else {
                tracing::warn!(file = %path.display(), offset = at, "a damaged record ends the cache file");
                cache.rewrite = true;
                break;
            };
            let (uid, entry) = entry;
            at += entry.record_len() as usize;
            cache.insert(uid, entry);
        }
        cache.file_len = at as u64;
        cache
    }

    /// The data kept for message `uid` if it was kept for the file with base name `base`
    /// and RFC 822 size `size`.
    pub(super) fn get(&self, uid: u32, base: &str, size: u64) -> Option<Bytes> {
        let entry = self.entries.get(&uid)?;
        (entry.base() == base.as_bytes() && entry.size() == size).then(|| entry.data())
    }

    /// Keeps `data` for each `(uid, base, size, data)` (within the bounds), forgets the
    /// entries `live` rejects (their message is gone), and writes the file: appending, or
    /// whole when it must be rebuilt or its dead records outweigh the live ones.
    pub(super) fn add(
        &mut self,
        dir: &Path,
        new: impl IntoIterator<Item = (u32, String, u64, Bytes)>,
        live: impl Fn(u32, &[u8]) -> bool,
    ) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|&uid, entry| live(uid, entry.base()));
        if self.entries.len() != before {
            self.live = self.entries.values().map(Entry::record_len).sum();
        }
        let mut appended = Vec::new();
        for (uid, base, size, data) in new {
            if data.len() > MAX_ENTRY {
                continue;
            }
            let Some(entry) = Entry::new(uid, &base, size, &data) else {
                continue;
            };
            let replaced = self.entries.get(&uid).map_or(0, Entry::record_len);
            if self.live - replaced + entry.record_len() > MAX_LIVE {
                continue;
            }
            entry.write_record(&mut appended);
            self.charge(entry.payload.len() as u64);
            self.insert(uid, entry);
        }
        let dead =
            (self.file_len + appended.len() as u64).saturating_sub(HEADER.len() as u64 + self.live);
        let result = if self.rewrite || dead > self.live.max(COMPACT_AT) {
            self.write_whole(dir)
        } else if appended.is_empty() {
            Ok(())
        } else {
            self.append(dir, &appended)
        };
        if result.is_err() {
            self.rewrite = true;
        }
        result
    }

    fn insert(&mut self, uid: u32, entry: Entry) {
        self.live += entry.record_len();
        if let Some(old) = self.entries.insert(uid, entry) {
            self.live -= old.record_len();
        }
    }

    fn append(&mut self, dir: &Path, records: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new().append(true).open(path(dir))?;
        // Another writer (or a truncation) would make our idea of the valid part wrong.
        if file.metadata()?.len() != self.file_len {
            return Err(io::Error::other("the cache file changed under us"));
        }
        file.write_all(records)?;
        self.file_len += records.len() as u64;
        Ok(())
    }

    fn write_whole(&mut self, dir: &Path) -> io::Result<()> {
        let mut contents = Vec::with_capacity(HEADER.len() + self.live as usize);
        contents.extend_from_slice(HEADER);
        let mut uids: Vec<u32> = self.entries.keys().copied().collect();
        // In UID order: a whole-mailbox FETCH then reads it front to back at the next load.
        uids.sort_unstable();
        for uid in uids {
            self.entries[&uid].write_record(&mut contents);
        }
        replace(&path(dir), &contents)?;
        self.file_len = contents.len() as u64;
        self.rewrite = false;
        Ok(())
    }
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Replaces the file at `path` by renaming a new one over it, so that a reader never sees
/// it half written. Not synced, unlike [`durable::write_atomic`](super::durable): after a
/// crash, a file left empty or torn fails its header or its checksums and is rebuilt, and a
/// sync of a large file on a busy disk could hold a FETCH up for long.
fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    fs::write(&tmp, contents)?;
    fs::rename(&tmp, path)
}

/// The record at `at` in `bytes`, if it is whole, its checksum holds and its entry is well
/// formed.
fn record_at(bytes: &Bytes, at: usize) -> Option<(u32, Entry)> {
    let header = bytes.get(at..at + RECORD_HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let start = at + RECORD_HEADER;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    Entry::parse(bytes.slice(start..start + len))
}

#[cfg(test)]
mod tests;
