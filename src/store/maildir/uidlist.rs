//! The per-folder UID list, `tower-mail-uidlist`: which base name has which UID, plus the
//! folder's UIDVALIDITY and UIDNEXT, in the spirit of Dovecot's `dovecot-uidlist`:
//!
//! ```text
//! 1 V1700000000 N4
//! 1 1700000000.M1P2Q1.host,S=120,W=123
//! 3 1700000001.M5P2Q2.host,S=80,W=82
//! ```
//!
//! The first line is the format version, `V<uidvalidity>` and `N<uidnext>`; then one line per
//! message, `<uid> <base>`, UIDs ascending. `N` is kept explicitly because UIDs are never
//! reused: after message 4 is expunged, the next one still gets 5.

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use super::durable;
use super::rules;

/// The UID list's file name, in the folder directory beside `cur/`, `new/` and `tmp/`.
pub(super) const FILE_NAME: &str = "tower-mail-uidlist";

const VERSION: &str = "1";

/// A folder's UIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UidList {
    pub(super) uid_validity: u32,
    pub(super) uid_next: u32,
    /// Base name by UID.
    pub(super) entries: BTreeMap<u32, String>,
}

/// What reading a UID list found.
#[derive(Debug)]
pub(super) enum Loaded {
    Ok(UidList),
    Missing,
    /// Unusable; the UIDVALIDITY from its header, if that much could be read, so the rebuilt
    /// list gets a different one.
    Corrupt(Option<u32>),
}

impl UidList {
    /// An empty list with a fresh UIDVALIDITY, different from `previous`.
    pub(super) fn fresh(previous: u32) -> UidList {
        UidList {
            uid_validity: rules::new_uid_validity(previous),
            uid_next: 1,
            entries: BTreeMap::new(),
        }
    }

    /// Gives `base` the next UID.
    pub(super) fn assign(&mut self, base: String) -> u32 {
        let uid = rules::assign_uid(
            &mut self.uid_validity,
            &mut self.uid_next,
            &mut self.entries,
        );
        self.entries.insert(uid, base);
        uid
    }

    pub(super) fn read(path: &Path) -> io::Result<Loaded> {
        match fs::read(path) {
            Ok(bytes) => Ok(match String::from_utf8(bytes) {
                Ok(text) => match UidList::parse(&text) {
                    Ok(list) => Loaded::Ok(list),
                    Err(validity) => Loaded::Corrupt(validity),
                },
                Err(_) => Loaded::Corrupt(None),
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Loaded::Missing),
            Err(err) => Err(err),
        }
    }

    /// Writes the list atomically and durably.
    pub(super) fn write(&self, path: &Path) -> io::Result<()> {
        durable::write_atomic(path, self.render().as_bytes())
    }

    /// Parses a list; on failure, the UIDVALIDITY of the header if it was readable.
    ///
    /// Strict on purpose: a list that does not make sense (UIDs out of order or not below
    /// UIDNEXT, a base listed twice) would hand out wrong UIDs, so it is rebuilt instead.
    fn parse(text: &str) -> Result<UidList, Option<u32>> {
        let mut lines = text.lines();
        let header = lines.next().ok_or(None)?;
        let mut fields = header.split(' ');
        let version = fields.next();
        let uid_validity = fields
            .next()
            .and_then(|f| f.strip_prefix('V'))
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| *v != 0)
            .ok_or(None)?;
        let corrupt = Some(uid_validity);
        let uid_next = fields
            .next()
            .and_then(|f| f.strip_prefix('N'))
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n != 0)
            .ok_or(corrupt)?;
        if version != Some(VERSION) || fields.next().is_some() {
            return Err(corrupt);
        }
        let mut entries = BTreeMap::new();
        let mut bases = HashSet::new();
        let mut last = 0;
        for line in lines.filter(|line| !line.is_empty()) {
            let (uid, base) = line.split_once(' ').ok_or(corrupt)?;
            let uid: u32 = uid.parse().map_err(|_| corrupt)?;
            if uid <= last || uid >= uid_next || base.is_empty() || !bases.insert(base) {
                return Err(corrupt);
            }
            last = uid;
            entries.insert(uid, base.to_owned());
        }
        Ok(UidList {
            uid_validity,
            uid_next,
            entries,
        })
    }

    fn render(&self) -> String {
        let mut text = String::with_capacity(32 + self.entries.len() * 64);
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{VERSION} V{} N{}", self.uid_validity, self.uid_next);
        for (uid, base) in &self.entries {
            let _ = writeln!(text, "{uid} {base}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut list = UidList::fresh(0);
        assert_eq!(list.assign("a,S=1".into()), 1);
        assert_eq!(list.assign("b c".into()), 2);
        list.entries.remove(&2);
        let text = list.render();
        assert_eq!(text, format!("1 V{} N3\n1 a,S=1\n", list.uid_validity));
        assert_eq!(UidList::parse(&text), Ok(list));
    }

    #[test]
    fn base_may_contain_spaces() {
        let list = UidList::parse("1 V5 N9\n4 a b\n").unwrap();
        assert_eq!(list.entries[&4], "a b");
    }

    #[test]
    fn rejects_nonsense() {
        assert_eq!(UidList::parse(""), Err(None));
        assert_eq!(UidList::parse("garbage"), Err(None));
        assert_eq!(UidList::parse("1 V0 N1\n"), Err(None));
        assert_eq!(UidList::parse("2 V5 N1\n"), Err(Some(5)));
        assert_eq!(UidList::parse("1 V5 N3\n3 a\n"), Err(Some(5)));
        assert_eq!(UidList::parse("1 V5 N9\n2 a\n1 b\n"), Err(Some(5)));
        assert_eq!(UidList::parse("1 V5 N9\n1 a\n2 a\n"), Err(Some(5)));
        assert_eq!(UidList::parse("1 V5 N9\nx a\n"), Err(Some(5)));
    }

    #[test]
    fn missing_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert!(matches!(UidList::read(&path).unwrap(), Loaded::Missing));
        fs::write(&path, b"\xff\xfe").unwrap();
        assert!(matches!(
            UidList::read(&path).unwrap(),
            Loaded::Corrupt(None)
        ));
        let list = UidList::fresh(0);
        list.write(&path).unwrap();
        assert!(matches!(UidList::read(&path).unwrap(), Loaded::Ok(l) if l == list));
    }
}
