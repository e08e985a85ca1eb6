//! The user's `subscriptions` file, in Dovecot's format, so that Dovecot and tower-mail
//! serving one tree in turn agree on what is subscribed.
//!
//! Dovecot 2.3 and later write version 2: a `V<TAB>2` line and an empty line, then one line
//! per subscribed mailbox with its hierarchy levels separated by TAB (so the file does not
//! depend on the hierarchy separator), each level escaped with `\x01` (`\x01t` for a TAB,
//! `\x01n` for a line feed, `\x01r`, `\x011`, `\x010`):
//!
//! ```text
//! V<TAB>2
//!
//! INBOX
//! Archive<TAB>2024
//! ```
//!
//! Older files have one name per line and no header. Which separator they use, the file does
//! not say: Dovecot's Maildir++ layout writes `Archive.2024`, earlier tower-mail versions
//! wrote `Archive/2024` (and `john.doe` for a name with a dot), so the caller says which
//! wrote it ([`PlainNames`]). Such a file is rewritten in version 2, which Dovecot then keeps.
//!
//! A line naming a mailbox tower-mail cannot have (a `%` in a name, a control character) is
//! kept as it is, so a rewrite loses no subscription another server knows. Writers hold
//! Dovecot's `subscriptions.lock` from the read to the write.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use super::dotlock::{DotLock, LockTimes};
use super::durable;
use super::rules;

/// The file's name, in the user directory.
pub(super) const FILE_NAME: &str = "subscriptions";

/// The first line of a version 2 file, and the empty line after it.
const V2_HEADER: &str = "V\t2\n\n";

/// Longer lines are damage: a mailbox name is at most 255 octets here, and not much longer
/// in Dovecot.
const MAX_LINE: usize = 4 * 1024;

/// How to read a file without the version 2 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlainNames {
    /// Written by Dovecot with its default Maildir++ layout: `.` separates the levels.
    Dovecot,
    /// Written by an earlier tower-mail: `/` separates, a `.` belongs to the name.
    TowerMail,
}

/// A user's subscriptions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Subscriptions {
    /// The subscribed mailboxes tower-mail can have, by canonical name.
    pub(super) names: BTreeSet<String>,
    /// Lines of mailboxes it cannot have, in version 2 form, written back as they were.
    foreign: Vec<Vec<u8>>,
}

impl Subscriptions {
    /// Reads the user's subscriptions (none if there is no file).
    pub(super) fn read(user_dir: &Path, plain: PlainNames) -> io::Result<Subscriptions> {
        match fs::read(user_dir.join(FILE_NAME)) {
            Ok(bytes) => Ok(Subscriptions::parse(&bytes, plain)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Subscriptions::default()),
            Err(err) => Err(err),
        }
    }

    /// Changes the subscriptions with `change` under Dovecot's lock, writing them back if it
    /// returns true.
    pub(super) fn update(
        user_dir: &Path,
        plain: PlainNames,
        change: impl FnOnce(&mut Subscriptions) -> bool,
    ) -> io::Result<()> {
        let path = user_dir.join(FILE_NAME);
        let _lock = DotLock::acquire(&path, LockTimes::SUBSCRIPTIONS)?;
        let mut subscriptions = Subscriptions::read(user_dir, plain)?;
        if change(&mut subscriptions) {
            durable::write_atomic(&path, &subscriptions.render())?;
        }
        Ok(())
    }

    fn parse(bytes: &[u8], plain: PlainNames) -> Subscriptions {
        let (v2, body) = match bytes.strip_prefix(V2_HEADER.as_bytes()) {
            Some(body) => (true, body),
            None => (false, bytes),
        };
        let mut subscriptions = Subscriptions::default();
        for line in body.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            if line.len() > MAX_LINE {
                tracing::warn!(
                    file = FILE_NAME,
                    "dropping a subscription line longer than {MAX_LINE} octets"
                );
                continue;
            }
            let levels: Vec<Vec<u8>> = if v2 {
                line.split(|&b| b == b'\t').map(unescape).collect()
            } else {
                plain_levels(line, plain)
            };
            match name_of(&levels) {
                Some(name) => {
                    subscriptions.names.insert(name);
                }
                None => subscriptions.foreign.push(v2_line(&levels)),
            }
        }
        subscriptions
    }

    /// The file's content in version 2.
    fn render(&self) -> Vec<u8> {
        let mut out = V2_HEADER.as_bytes().to_vec();
        for name in &self.names {
            // Valid names hold no control characters: nothing to escape.
            out.extend(name.replace('/', "\t").bytes());
            out.push(b'\n');
        }
        for line in &self.foreign {
            out.extend(line);
            out.push(b'\n');
        }
        out
    }
}

/// The levels of a line of a file without the version 2 header.
fn plain_levels(line: &[u8], plain: PlainNames) -> Vec<Vec<u8>> {
    let separator = match plain {
        PlainNames::Dovecot => b'.',
        PlainNames::TowerMail => b'/',
    };
    line.split(|&b| b == separator)
        .map(<[u8]>::to_vec)
        .collect()
}

/// The canonical name of a mailbox with these levels, if tower-mail can have it.
fn name_of(levels: &[Vec<u8>]) -> Option<String> {
    let levels: Vec<&str> = levels
        .iter()
        .map(|level| std::str::from_utf8(level).ok().filter(|l| !l.contains('/')))
        .collect::<Option<_>>()?;
    rules::canonical_mailbox(&levels.join("/")).ok()
}

/// A version 2 line for these levels.
fn v2_line(levels: &[Vec<u8>]) -> Vec<u8> {
    let mut line = Vec::new();
    for (i, level) in levels.iter().enumerate() {
        if i > 0 {
            line.push(b'\t');
        }
        escape_into(level, &mut line);
    }
    line
}

/// Dovecot's TAB escaping: `\x01` then `0`, `1`, `t`, `r` or `n` for NUL, `\x01`, TAB, CR
/// and LF.
fn escape_into(level: &[u8], out: &mut Vec<u8>) {
    for &b in level {
        let escaped = match b {
            0 => b'0',
            1 => b'1',
            b'\t' => b't',
            b'\r' => b'r',
            b'\n' => b'n',
            other => {
                out.push(other);
                continue;
            }
        };
        out.extend([1, escaped]);
    }
}

/// The inverse of [`escape_into`]; an unknown escape stands for the octet after `\x01`, and
/// a lone `\x01` at the end is dropped, as in Dovecot.
fn unescape(level: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(level.len());
    let mut octets = level.iter();
    while let Some(&b) = octets.next() {
        if b != 1 {
            out.push(b);
            continue;
        }
        match octets.next() {
            Some(b'0') => out.push(0),
            Some(b'1') => out.push(1),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(&other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, plain: PlainNames) -> Subscriptions {
        Subscriptions::parse(text.as_bytes(), plain)
    }

    fn names(subscriptions: &Subscriptions) -> Vec<&str> {
        subscriptions.names.iter().map(String::as_str).collect()
    }

    #[test]
    fn reads_dovecot_version_2_with_nested_names() {
        let read = parse(
            "V\t2\n\nINBOX\nArchive\t2024\nLists\trust\tusers\n",
            PlainNames::Dovecot,
        );
        assert_eq!(names(&read), ["Archive/2024", "INBOX", "Lists/rust/users"]);
        assert!(read.foreign.is_empty());
    }

    #[test]
    fn writes_what_dovecot_writes() {
        let mut subscriptions = Subscriptions::default();
        for name in ["INBOX", "Archive/2024", "john.doe"] {
            subscriptions.names.insert(name.to_owned());
        }
        assert_eq!(
            String::from_utf8(subscriptions.render()).unwrap(),
            "V\t2\n\nArchive\t2024\nINBOX\njohn.doe\n"
        );
        assert_eq!(
            Subscriptions::parse(&subscriptions.render(), PlainNames::TowerMail),
            subscriptions
        );
    }

    #[test]
    fn reads_plain_files_of_either_writer() {
        let dovecot = parse("INBOX\nArchive.2024\nSent\n", PlainNames::Dovecot);
        assert_eq!(names(&dovecot), ["Archive/2024", "INBOX", "Sent"]);
        let tower = parse("INBOX\nArchive/2024\njohn.doe\n", PlainNames::TowerMail);
        assert_eq!(names(&tower), ["Archive/2024", "INBOX", "john.doe"]);
        // The rewrite is version 2, with the levels as the writer meant them.
        assert_eq!(
            String::from_utf8(dovecot.render()).unwrap(),
            "V\t2\n\nArchive\t2024\nINBOX\nSent\n"
        );
    }

    #[test]
    fn names_tower_mail_cannot_have_are_kept_as_they_were() {
        let text = b"V\t2\n\nINBOX\n50%\toff\nTab\x01there\nok\x01\n\xff\xfe\n";
        let read = Subscriptions::parse(text, PlainNames::Dovecot);
        // A lone escape at the end is dropped, as Dovecot reads it.
        assert_eq!(names(&read), ["INBOX", "ok"]);
        assert_eq!(
            read.render(),
            b"V\t2\n\nINBOX\nok\n50%\toff\nTab\x01there\n\xff\xfe\n".to_vec(),
            "the lines of names tower-mail cannot have are written back as they were"
        );
        // A plain line with a TAB in a name is escaped in the version 2 rewrite.
        let plain = Subscriptions::parse(b"a\tb.c\n", PlainNames::Dovecot);
        assert_eq!(plain.render(), b"V\t2\n\na\x01tb\tc\n".to_vec());
    }

    #[test]
    fn hostile_and_truncated_files_lose_nothing_else() {
        let long = "x".repeat(MAX_LINE + 1);
        let text = format!("V\t2\n\n{long}\n\n\nINBOX\nArchive\t20");
        let read = parse(&text, PlainNames::Dovecot);
        // The overlong line is dropped; the truncated last line is a name like any other.
        assert_eq!(names(&read), ["Archive/20", "INBOX"]);
        assert_eq!(parse("", PlainNames::Dovecot), Subscriptions::default());
        // A header alone, or a broken one (then read as a plain file).
        assert!(parse("V\t2\n\n", PlainNames::Dovecot).names.is_empty());
        let broken = parse("V\t2\nINBOX\n", PlainNames::Dovecot);
        assert_eq!(names(&broken), ["INBOX"]);
    }

    #[test]
    fn escapes_round_trip() {
        let level = b"a\tb\nc\rd\x01e\x00f".to_vec();
        let mut escaped = Vec::new();
        escape_into(&level, &mut escaped);
        assert!(!escaped.contains(&b'\t') && !escaped.contains(&b'\n'));
        assert_eq!(unescape(&escaped), level);
    }

    #[test]
    fn update_writes_under_the_lock_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        Subscriptions::update(dir.path(), PlainNames::Dovecot, |s| {
            s.names.insert("INBOX".to_owned())
        })
        .unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(fs::read_to_string(&path).unwrap(), "V\t2\n\nINBOX\n");
        fs::remove_file(&path).unwrap();
        Subscriptions::update(dir.path(), PlainNames::Dovecot, |_| false).unwrap();
        assert!(!path.exists(), "nothing changed, nothing written");
        assert!(!dir.path().join("subscriptions.lock").exists());
    }
}
