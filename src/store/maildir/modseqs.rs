//! The per-folder mod-sequence file, `tower-mail-modseq`: the folder's highest mod-sequence,
//! each message's mod-sequence with the flag letters it had then, and the recent expunges
//! (RFC 7162's CONDSTORE and QRESYNC). Dovecot keeps mod-sequences in its index files, which
//! this store neither reads nor writes, so the file is ours; Dovecot leaves it alone.
//!
//! ```text
//! 1 V1700000000 H1700000000000123 C1700000000000000
//! X 1700000000000101 3:5,9
//! M 1 1700000000000000 S
//! M 2 1700000000000122 RSa
//! M 6 1700000000000123
//! ```
//!
//! The header has the format version, the folder's UIDVALIDITY (`V`) the file belongs to,
//! the highest mod-sequence when the file was last written whole (`H`) and the mod-sequence
//! from which the expunge history is complete (`C`). `M <uid> <modseq> <info>` is a
//! message's mod-sequence and the info letters of its file name (after `:2,`) at that
//! mod-sequence; `X <modseq> <uids>` UIDs expunged at that mod-sequence.
//!
//! Each change appends a line and syncs it, so a flag change costs one short write, not a
//! rewrite of a file as long as the folder; the file is rewritten whole (atomically) when
//! the appended lines outnumber what they describe. Read back, later lines win and each
//! line's mod-sequence raises the highest. A line cut short by a crash, or otherwise
//! unreadable, is skipped, and the file is rewritten whole at the next change.
//!
//! Changes made by other programs are found by comparing: a message whose flag letters are
//! not those recorded with its mod-sequence (Dovecot or mutt changed them), or that has no
//! line (a delivery numbered by Dovecot), gets a new mod-sequence when the store next looks;
//! a recorded UID that is gone is recorded as expunged then. Clients hear of such changes
//! later than they happened, never not at all.
//!
//! A folder without the file (new, or served by Dovecot until now) starts from the clock
//! in microseconds, as does a file of another UIDVALIDITY: every change takes a fsync, far
//! more than a microsecond, so no mod-sequence handed out before (from a file that was lost
//! since, say) is reached again, and a client that remembers one is sent every message's
//! flags rather than too little.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::dotlock::DotLock;
use super::durable;
use crate::store::MAX_MODSEQ;
use crate::store::modseq::{self, Expunge, ExpungeHistory, render_ranges};

/// The file's name, in the folder directory beside `dovecot-uidlist`.
pub(super) const FILE_NAME: &str = "tower-mail-modseq";

/// Appended lines allowed beyond what the file describes before it is rewritten whole.
const SLACK_LINES: usize = 1024;

/// A folder's mod-sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Modseqs {
    uid_validity: u32,
    highest: u64,
    /// Each message's mod-sequence and the info letters it had then.
    messages: BTreeMap<u32, Stamped>,
    expunged: ExpungeHistory,
    /// Lines in the file, for deciding when to rewrite it.
    lines: usize,
    /// Lines to append at the next [`flush`](Self::flush).
    pending: String,
    pending_lines: usize,
    /// The file must be written whole at the next flush (new, of another UIDVALIDITY, or
    /// damaged).
    rewrite: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamped {
    modseq: u64,
    info: Box<str>,
}

impl Modseqs {
    /// The mod-sequences of a folder with UIDVALIDITY `uid_validity` that has no file (or one
    /// that cannot be used), starting above `previous` (the highest known so far, 0 if none)
    /// and the clock: every message gets a mod-sequence when first seen.
    pub(super) fn fresh(uid_validity: u32, previous: u64) -> Modseqs {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |since| {
                u64::try_from(since.as_micros()).unwrap_or(MAX_MODSEQ)
            });
        let highest = clock.max(previous.saturating_add(1)).clamp(1, MAX_MODSEQ);
        Modseqs {
            uid_validity,
            highest,
            messages: BTreeMap::new(),
            expunged: ExpungeHistory::new(highest),
            lines: 0,
            pending: String::new(),
            pending_lines: 0,
            rewrite: true,
        }
    }

    /// Reads the file at `path`; `None` if there is none or its header is unreadable.
    pub(super) fn read(path: &Path) -> io::Result<Option<Modseqs>> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let parsed = parse(&bytes);
        if parsed.is_none() {
            tracing::warn!(file = %path.display(), "mod-sequence file unreadable: starting anew");
        }
        Ok(parsed)
    }

    /// The folder's highest mod-sequence.
    pub(super) fn highest(&self) -> u64 {
        self.highest
    }

    /// Starts anew if the folder's UIDVALIDITY is not the one the file belongs to (the
    /// folder was renumbered, by Dovecot or by this store); returns whether it did.
    pub(super) fn follow_uid_validity(&mut self, uid_validity: u32) -> bool {
        if self.uid_validity == uid_validity {
            return false;
        }
        *self = Modseqs::fresh(uid_validity, self.highest);
        true
    }

    /// The mod-sequence of message `uid`, whose file name has the info letters `info` now:
    /// the recorded one if the letters are those recorded with it, else a new one (the
    /// message is new to this file, or another program changed its flags).
    pub(super) fn of(&mut self, uid: u32, info: &str) -> u64 {
        match self.messages.get(&uid) {
            Some(stamped) if *stamped.info == *info => stamped.modseq,
            _ => self.changed(uid, info),
        }
    }

    /// The mod-sequence message `uid` has if it is recorded with `info`.
    #[cfg(test)]
    pub(super) fn recorded(&self, uid: u32, info: &str) -> Option<u64> {
        self.messages
            .get(&uid)
            .filter(|stamped| *stamped.info == *info)
            .map(|stamped| stamped.modseq)
    }

    /// Message `uid` changed (delivered, or its flags set) and now has the info letters
    /// `info`: gives it the next mod-sequence and returns it.
    pub(super) fn changed(&mut self, uid: u32, info: &str) -> u64 {
        let modseq = modseq::next(&mut self.highest);
        self.messages.insert(
            uid,
            Stamped {
                modseq,
                info: info.into(),
            },
        );
        let _ = writeln!(self.pending, "M {uid} {modseq} {info}");
        self.pending_lines += 1;
        modseq
    }

    /// The messages `uids` were expunged (by this store or another program): one new
    /// mod-sequence for all of them. Nothing happens for no UIDs.
    pub(super) fn expunged(&mut self, uids: impl IntoIterator<Item = u32>) {
        let mut uids: Vec<u32> = uids.into_iter().collect();
        if uids.is_empty() {
            return;
        }
        uids.sort_unstable();
        uids.dedup();
        let modseq = modseq::next(&mut self.highest);
        for uid in &uids {
            self.messages.remove(uid);
        }
        let ranges = modseq::ranges_of(uids);
        let _ = writeln!(self.pending, "X {modseq} {}", render_ranges(&ranges));
        self.pending_lines += 1;
        self.expunged.push(Expunge {
            modseq,
            uids: ranges,
        });
    }

    /// Records as expunged every UID this file knows that is not among `present` (what the
    /// UID list holds now): the messages another program removed.
    pub(super) fn forget_missing<V>(&mut self, present: &BTreeMap<u32, V>) {
        let gone: Vec<u32> = self
            .messages
            .keys()
            .filter(|uid| !present.contains_key(uid))
            .copied()
            .collect();
        self.expunged(gone);
    }

    /// The UIDs expunged after `modseq`, if the history goes back that far.
    pub(super) fn expunged_since(&self, modseq: u64) -> Option<Vec<RangeInclusive<u32>>> {
        self.expunged.since(modseq)
    }

    /// Makes the changes since the last flush durable: appends their lines and syncs the
    /// file, or rewrites it whole (atomically) when it is new, damaged or has grown long.
    /// The caller holds Dovecot's lock on the folder's UID list, under which every writer of
    /// the folder's state works. Returns whether the file was written.
    pub(super) fn flush(&mut self, dir: &Path, _held: &DotLock) -> io::Result<bool> {
        let path = dir.join(FILE_NAME);
        let described = self.messages.len() + self.expunged.entries().count();
        if !self.rewrite && self.lines + self.pending_lines <= 2 * described + SLACK_LINES {
            if self.pending.is_empty() {
                return Ok(false);
            }
            match OpenOptions::new().append(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(self.pending.as_bytes())?;
                    file.sync_data()?;
                    self.lines += self.pending_lines;
                    self.clear_pending();
                    return Ok(true);
                }
                // Removed meanwhile (by hand): written whole below.
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        let text = self.render();
        durable::write_atomic(&path, text.as_bytes())?;
        self.lines = text.lines().count();
        self.rewrite = false;
        self.clear_pending();
        Ok(true)
    }

    fn clear_pending(&mut self) {
        self.pending.clear();
        self.pending_lines = 0;
    }

    fn render(&self) -> String {
        let mut text = String::with_capacity(64 + self.messages.len() * 32);
        let _ = writeln!(
            text,
            "1 V{} H{} C{}",
            self.uid_validity,
            self.highest,
            self.expunged.complete_from()
        );
        for expunge in self.expunged.entries() {
            let _ = writeln!(
                text,
                "X {} {}",
                expunge.modseq,
                render_ranges(&expunge.uids)
            );
        }
        for (uid, stamped) in &self.messages {
            let _ = writeln!(text, "M {uid} {} {}", stamped.modseq, stamped.info);
        }
        text
    }
}

/// Ascending, disjoint ranges as [`render_ranges`] writes them; `None` otherwise.
fn parse_ranges(text: &str) -> Option<Vec<RangeInclusive<u32>>> {
    let mut ranges: Vec<RangeInclusive<u32>> = Vec::new();
    for element in text.split(',') {
        let (start, end) = element.split_once(':').unwrap_or((element, element));
        let (start, end) = (number::<u32>(start)?, number::<u32>(end)?);
        let after_last = ranges.last().is_none_or(|last| start > *last.end());
        if start == 0 || start > end || !after_last {
            return None;
        }
        ranges.push(start..=end);
    }
    Some(ranges)
}

/// Digits only (no sign, no spaces), as this module writes numbers.
fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

fn parse(bytes: &[u8]) -> Option<Modseqs> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.split_inclusive('\n');
    let header = lines.next()?.strip_suffix('\n')?;
    let mut fields = header.split(' ');
    if fields.next()? != "1" {
        return None;
    }
    let (mut validity, mut highest, mut complete_from) = (None, None, None);
    for field in fields {
        let (key, value) = field.split_at_checked(1)?;
        match key {
            "V" => validity = number::<u32>(value),
            "H" => highest = number::<u64>(value),
            "C" => complete_from = number::<u64>(value),
            _ => {}
        }
    }
    let highest = highest?.min(MAX_MODSEQ);
    let mut modseqs = Modseqs {
        uid_validity: validity?,
        highest,
        messages: BTreeMap::new(),
        expunged: ExpungeHistory::new(complete_from?.min(highest)),
        lines: 1,
        pending: String::new(),
        pending_lines: 0,
        rewrite: false,
    };
    for line in lines {
        modseqs.lines += 1;
        // A line without its end was cut short: appending after it would corrupt the next.
        let read = line
            .strip_suffix('\n')
            .is_some_and(|line| modseqs.apply(line).is_some());
        modseqs.rewrite |= !read;
    }
    Some(modseqs)
}

impl Modseqs {
    /// Applies one line read back; `None` if it is unreadable.
    fn apply(&mut self, line: &str) -> Option<()> {
        let mut parts = line.splitn(4, ' ');
        match parts.next()? {
            "M" => {
                let uid = number::<u32>(parts.next()?).filter(|&uid| uid != 0)?;
                let modseq = number::<u64>(parts.next()?).filter(|&m| m <= MAX_MODSEQ)?;
                let info = parts.next().unwrap_or("");
                self.highest = self.highest.max(modseq);
                self.messages.insert(
                    uid,
                    Stamped {
                        modseq,
                        info: info.into(),
                    },
                );
            }
            "X" => {
                let modseq = number::<u64>(parts.next()?).filter(|&m| m <= MAX_MODSEQ)?;
                let uids = parse_ranges(parts.next()?)?;
                if parts.next().is_some() {
                    return None;
                }
                self.highest = self.highest.max(modseq);
                for range in &uids {
                    let gone: Vec<u32> = self
                        .messages
                        .range(range.clone())
                        .map(|(&u, _)| u)
                        .collect();
                    for uid in gone {
                        self.messages.remove(&uid);
                    }
                }
                self.expunged.push(Expunge { modseq, uids });
            }
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::maildir::dotlock::LockTimes;

    fn lock(dir: &Path) -> DotLock {
        DotLock::acquire(&dir.join("dovecot-uidlist"), LockTimes::UIDLIST).unwrap()
    }

    fn reread(dir: &Path) -> Modseqs {
        Modseqs::read(&dir.join(FILE_NAME)).unwrap().unwrap()
    }

    /// What is kept, without the bookkeeping of writing.
    fn kept(modseqs: &Modseqs) -> (u32, u64, &BTreeMap<u32, Stamped>, &ExpungeHistory) {
        (
            modseqs.uid_validity,
            modseqs.highest,
            &modseqs.messages,
            &modseqs.expunged,
        )
    }

    #[test]
    fn a_fresh_file_starts_from_the_clock_and_above_what_was_known() {
        let fresh = Modseqs::fresh(7, 0);
        assert!(fresh.highest() > 1_600_000_000_000_000, "microseconds");
        let later = Modseqs::fresh(7, MAX_MODSEQ - 2);
        assert_eq!(later.highest(), MAX_MODSEQ - 1);
    }

    #[test]
    fn changes_are_appended_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut modseqs = Modseqs::fresh(7, 0);
        let start = modseqs.highest();
        let one = modseqs.of(1, "S");
        let two = modseqs.of(2, "");
        assert_eq!((one, two), (start + 1, start + 2));
        assert_eq!(modseqs.of(1, "S"), one, "unchanged letters keep the value");
        modseqs.flush(dir.path(), &lock(dir.path())).unwrap();
        assert_eq!(kept(&reread(dir.path())), kept(&modseqs));

        let flagged = modseqs.changed(2, "Fa");
        modseqs.expunged([1]);
        modseqs.flush(dir.path(), &lock(dir.path())).unwrap();
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(
            text.ends_with(&format!("M 2 {flagged} Fa\nX {} 1\n", flagged + 1)),
            "appended: {text}"
        );
        let back = reread(dir.path());
        assert_eq!(kept(&back), kept(&modseqs));
        assert_eq!(back.expunged_since(flagged), Some(vec![1..=1]));
        assert_eq!(
            back.expunged_since(start - 1),
            None,
            "before the file began"
        );
        assert_eq!(back.recorded(2, "Fa"), Some(flagged));
        assert_eq!(back.recorded(2, "F"), None);
    }

    #[test]
    fn another_programs_changes_get_new_modseqs() {
        let mut modseqs = Modseqs::fresh(7, 0);
        let one = modseqs.of(1, "S");
        let two = modseqs.of(2, "S");
        // Dovecot flagged message 1, expunged message 2 and numbered message 3.
        let flagged = modseqs.of(1, "FS");
        assert!(flagged > two);
        modseqs.forget_missing(&BTreeMap::from([(1, ()), (3, ())]));
        let three = modseqs.of(3, "");
        assert_eq!(modseqs.expunged_since(flagged), Some(vec![2..=2]));
        assert!(three > flagged + 1 && one < two);
        assert_eq!(modseqs.highest(), three);
    }

    #[test]
    fn a_line_cut_short_is_skipped_and_the_file_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut modseqs = Modseqs::fresh(7, 0);
        let one = modseqs.of(1, "S");
        modseqs.flush(dir.path(), &lock(dir.path())).unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str(&format!("M 1 {} FS", one + 1));
        fs::write(&path, &text).unwrap();

        let mut back = reread(dir.path());
        assert_eq!(
            back.recorded(1, "S"),
            Some(one),
            "the cut line is not applied"
        );
        let two = back.of(2, "");
        back.flush(dir.path(), &lock(dir.path())).unwrap();
        let again = reread(dir.path());
        assert_eq!(kept(&again), kept(&back));
        assert_eq!(again.recorded(2, ""), Some(two));
        assert!(!fs::read_to_string(&path).unwrap().contains(" FS"));
    }

    #[test]
    fn unreadable_files_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(Modseqs::read(&path).unwrap(), None);
        for bad in ["", "2 V1 H5 C5\n", "1 V1 H5\n", "1 Vx H5 C5\n", "\u{ff}"] {
            fs::write(&path, bad).unwrap();
            assert_eq!(Modseqs::read(&path).unwrap(), None, "{bad:?}");
        }
        fs::write(
            &path,
            "1 V1 H5 C5\nM 0 6 S\nM 1 x\nX 7 3:2\nX 7 2,1\nQ\nM 2 9 S\nX 10 4:6\n",
        )
        .unwrap();
        let read = reread(dir.path());
        assert_eq!(read.highest(), 10);
        assert_eq!(read.recorded(2, "S"), Some(9));
        assert_eq!(read.messages.len(), 1);
        assert_eq!(read.expunged_since(5), Some(vec![4..=6]));
        assert!(read.rewrite, "damaged lines are written away");
    }

    #[test]
    fn a_new_uid_validity_starts_anew_above_the_old_values() {
        let mut modseqs = Modseqs::fresh(7, 0);
        modseqs.of(1, "S");
        let before = modseqs.highest();
        assert!(!modseqs.follow_uid_validity(7));
        assert!(modseqs.follow_uid_validity(8));
        assert!(modseqs.highest() > before);
        assert_eq!(modseqs.recorded(1, "S"), None);
        assert_eq!(modseqs.expunged_since(before), None);
    }

    #[test]
    fn long_logs_are_rewritten_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut modseqs = Modseqs::fresh(7, 0);
        modseqs.of(1, "");
        modseqs.flush(dir.path(), &lock(dir.path())).unwrap();
        for i in 0..SLACK_LINES + 10 {
            let info = if i % 2 == 0 { "S" } else { "" };
            modseqs.changed(1, info);
            modseqs.flush(dir.path(), &lock(dir.path())).unwrap();
        }
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(text.lines().count() < 20, "{} lines", text.lines().count());
        assert_eq!(kept(&reread(dir.path())), kept(&modseqs));
    }
}
