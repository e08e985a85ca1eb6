//! The per-folder UID list, Dovecot's `dovecot-uidlist`: which base name has which UID, the
//! folder's UIDVALIDITY and UIDNEXT, and (a field of ours) where `\Recent` starts. Reading
//! and writing Dovecot's own file means a tree keeps its UIDs, UIDVALIDITY and POP3 UIDLs
//! when it moves between Dovecot and tower-mail, in either direction.
//!
//! Written in Dovecot's version 3 format:
//!
//! ```text
//! 3 V1700000000 N4 G0f3c9a2e5b7d41c8a6e2f1b3c4d5e6f7 r3
//! 1 :1700000000.M1P2Q1.host,S=120,W=123
//! 3 W82 :1700000001.M5P2Q2.host,S=80
//! ```
//!
//! The header has the format version, then fields in any order: `V<uidvalidity>`,
//! `N<uidnext>`, `G<mailbox GUID>`, and `r<first recent UID>`, which is ours (Dovecot keeps
//! header fields it does not know as they are; it keeps `\Recent` in its index instead). Each
//! message line is its UID, Dovecot's extension fields (`W<size>`, `P<POP3 UIDL>`, ...: kept
//! as read, so Dovecot still has them after tower-mail rewrote the file) and `:` then the base
//! name. `N` is kept because UIDs are never reused: after message 4 is expunged, the next one
//! still gets 5.
//!
//! Also read: Dovecot's and Courier's version 1 (`1 <uidvalidity> <uidnext>`, then
//! `<uid> <name>` lines), and `tower-mail-uidlist`, the list earlier tower-mail versions wrote
//! (`1 V<uidvalidity> N<uidnext>`, then `<uid> <base>` lines), which the first write replaces
//! with a `dovecot-uidlist`.
//!
//! Writers hold Dovecot's `dovecot-uidlist.lock` (see [`dotlock`](super::dotlock)); readers
//! need no lock, since the file is only ever replaced by a rename or (by Dovecot) appended to.

mod parse;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::hash::BuildHasher;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::dotlock::DotLock;
use super::durable;
use super::rules;

/// The UID list's file name, in the folder directory beside `cur/`, `new/` and `tmp/`.
pub(super) const FILE_NAME: &str = "dovecot-uidlist";

/// The UID list earlier tower-mail versions wrote; read when there is no `dovecot-uidlist`.
pub(super) const LEGACY_FILE_NAME: &str = "tower-mail-uidlist";

/// The header field holding the first recent UID. Lower case, so that no field Dovecot adds
/// (its keys are capitals) can collide with it.
const RECENT_KEY: char = 'r';

/// A folder's UIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UidList {
    pub(super) uid_validity: u32,
    pub(super) uid_next: u32,
    /// The first UID no read-write IMAP session has been told about: the messages from this
    /// UID on are `\Recent` (RFC 3501 section 2.3.2), also after a restart.
    pub(super) first_recent_uid: u32,
    /// Base name by UID.
    pub(super) entries: BTreeMap<u32, String>,
    /// Dovecot's extension fields of a message's line (`W2481 P0000abcd`), by base name (so
    /// they follow a message renumbered when UIDs run out); written back as read.
    extensions: HashMap<String, String>,
    /// The mailbox GUID, 32 hex digits, as Dovecot requires.
    guid: String,
    /// Header fields of other programs (Dovecot's `P<POP3 UIDL format>`), written back as read.
    other_header: Vec<String>,
    /// Read from the legacy file, which the next write replaces.
    legacy: bool,
}

/// What reading a UID list found.
#[derive(Debug)]
pub(super) enum Loaded {
    Ok(UidList),
    Missing,
    /// Unusable (no readable header); the UIDVALIDITY from its header, if that much could be
    /// read, so the rebuilt list gets a different one. The path is the damaged file's.
    Corrupt(Option<u32>, std::path::PathBuf),
}

impl UidList {
    /// An empty list with a fresh UIDVALIDITY, different from `previous`.
    pub(super) fn fresh(previous: u32) -> UidList {
        UidList {
            uid_validity: rules::new_uid_validity(previous),
            uid_next: 1,
            first_recent_uid: 1,
            entries: BTreeMap::new(),
            extensions: HashMap::new(),
            guid: new_guid(),
            other_header: Vec::new(),
            legacy: false,
        }
    }

    /// Gives `base` the next UID.
    pub(super) fn assign(&mut self, base: String) -> u32 {
        let validity = self.uid_validity;
        let uid = rules::assign_uid(
            &mut self.uid_validity,
            &mut self.uid_next,
            &mut self.entries,
        );
        if self.uid_validity != validity {
            // Renumbered from 1: no session has been told of the new UIDs.
            self.first_recent_uid = 1;
        }
        self.entries.insert(uid, base);
        uid
    }

    /// The POP3 UIDLs of messages whose line has Dovecot's `P` field (set by migration
    /// scripts to keep another server's UIDLs), by UID.
    pub(super) fn pop3_uidls(&self) -> HashMap<u32, String> {
        self.entries
            .iter()
            .filter_map(|(&uid, base)| {
                let fields = self.extensions.get(base)?;
                let uidl = fields
                    .split(' ')
                    .find_map(|field| field.strip_prefix('P'))?;
                Some((uid, uidl.to_owned()))
            })
            .collect()
    }

    /// Whether this was read from the legacy file (and so must be written out as a
    /// `dovecot-uidlist`).
    pub(super) fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// Reads the folder's list from `dir`: `dovecot-uidlist`, else the legacy file.
    pub(super) fn read(dir: &Path) -> io::Result<Loaded> {
        let path = dir.join(FILE_NAME);
        match read_file(&path)? {
            Loaded::Missing => {}
            found => return Ok(found),
        }
        let loaded = read_file(&dir.join(LEGACY_FILE_NAME))?;
        Ok(match loaded {
            Loaded::Ok(mut list) => {
                list.legacy = true;
                Loaded::Ok(list)
            }
            other => other,
        })
    }

    /// Writes the list to `dir` atomically and durably, under `lock` (Dovecot's lock on the
    /// file, which the caller holds), and removes a legacy list it replaces.
    pub(super) fn write(&mut self, dir: &Path, _held: &DotLock) -> io::Result<()> {
        durable::write_atomic(&dir.join(FILE_NAME), self.render().as_bytes())?;
        if self.legacy {
            match fs::remove_file(dir.join(LEGACY_FILE_NAME)) {
                Ok(()) => durable::sync_dir(dir)?,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            self.legacy = false;
        }
        Ok(())
    }

    fn render(&self) -> String {
        let mut text = String::with_capacity(64 + self.entries.len() * 64);
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "3 V{} N{} G{}",
            self.uid_validity, self.uid_next, self.guid
        );
        for field in &self.other_header {
            let _ = write!(text, " {field}");
        }
        let _ = writeln!(text, " {RECENT_KEY}{}", self.first_recent_uid);
        for (uid, base) in &self.entries {
            match self.extensions.get(base) {
                Some(fields) => {
                    let _ = writeln!(text, "{uid} {fields} :{base}");
                }
                None => {
                    let _ = writeln!(text, "{uid} :{base}");
                }
            }
        }
        text
    }
}

fn read_file(path: &Path) -> io::Result<Loaded> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(err) => return Err(err),
    };
    Ok(match parse::parse(&bytes) {
        Ok(parsed) => {
            if parsed.skipped > 0 {
                tracing::warn!(
                    file = %path.display(),
                    lines = parsed.skipped,
                    "skipped unreadable UID list lines: those messages get new UIDs"
                );
            }
            Loaded::Ok(parsed.list)
        }
        Err(validity) => Loaded::Corrupt(validity, path.to_path_buf()),
    })
}

/// A new mailbox GUID: 128 bits as 32 hex digits. Unique, not secret: two keyed hashes of
/// the time, the process and a counter, with the keys std draws at random per thread.
fn new_guid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = (
        SystemTime::now(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    );
    let high = std::hash::RandomState::new().hash_one(seed);
    let low = std::hash::RandomState::new().hash_one((seed, high));
    format!("{high:016x}{low:016x}")
}
