//! The per-folder keyword file, `dovecot-keywords`, read and written as Dovecot does: which
//! keyword each of the letters `a` to `z` in the message file names stands for.
//!
//! ```text
//! 0 $Label1
//! 1 NonJunk
//! 3 $Forwarded
//! ```
//!
//! One line per letter, `<index> <name>`: index 0 is `a`, 25 is `z`, and unused indexes are
//! left out. Dovecot and this store share one file per folder, so both show the same keywords
//! on the same tree: a letter keeps its name for good, a new keyword takes the first free
//! letter, and the file is rewritten whole (atomically) only to add names.
//!
//! Reading follows Dovecot's rules: a line without a space, with an index that is no number
//! below 26, or with an empty name is skipped. A name that is no IMAP keyword (not an atom,
//! too long, not UTF-8) keeps its letter taken and its line in the file, but is not shown,
//! and messages keep such a letter when their flags change. A letter on a message that the
//! file does not name gets the name Dovecot gives it, `unknown-<index>`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::durable;
use super::filename;
use crate::store::keyword_table::{KeywordTable, bit};
use crate::store::{Flags, Keyword, MAX_KEYWORDS, MessageFlags};

/// The keyword file's name, in the folder directory beside `cur/`, `new/` and `tmp/`.
pub(super) const FILE_NAME: &str = "dovecot-keywords";

/// The most of the file that is read: 26 lines of the longest names are under 7 KiB, so
/// anything past this is no keyword file (and is not kept when the file is rewritten).
const MAX_FILE_LEN: u64 = 64 * 1024;

/// A folder's keyword letters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct KeywordFile {
    pub(super) table: KeywordTable,
    /// The names that are no keyword, by index, kept to be written back as found.
    foreign: BTreeMap<usize, Vec<u8>>,
}

impl KeywordFile {
    /// Reads the file at `path`, its first [`MAX_FILE_LEN`] octets at most; a missing file
    /// names no letter.
    pub(super) fn read(path: &Path) -> io::Result<KeywordFile> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(KeywordFile::default());
            }
            Err(err) => return Err(err),
        };
        let mut bytes = Vec::new();
        file.take(MAX_FILE_LEN).read_to_end(&mut bytes)?;
        Ok(KeywordFile::parse(&bytes))
    }

    /// Writes the file atomically and durably.
    pub(super) fn write(&self, path: &Path) -> io::Result<()> {
        durable::write_atomic(path, &self.render())
    }

    fn parse(bytes: &[u8]) -> KeywordFile {
        let mut file = KeywordFile::default();
        for line in bytes.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(space) = line.iter().position(|&b| b == b' ') else {
                continue;
            };
            let (index, name) = (&line[..space], &line[space + 1..]);
            let Some(index) = std::str::from_utf8(index)
                .ok()
                .filter(|index| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|index| index.parse::<usize>().ok())
                .filter(|&index| index < MAX_KEYWORDS)
            else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            // A later line for the same index wins, as in Dovecot.
            match std::str::from_utf8(name).ok().map(Keyword::new) {
                Some(Ok(keyword)) => {
                    file.foreign.remove(&index);
                    file.table.set(index, keyword);
                }
                _ => {
                    file.table.reserve(index);
                    file.foreign.insert(index, name.to_vec());
                }
            }
        }
        file
    }

    fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_KEYWORDS * 16);
        for index in 0..MAX_KEYWORDS {
            let name = match (self.table.get(index), self.foreign.get(&index)) {
                (Some(keyword), _) => keyword.as_str().as_bytes(),
                (None, Some(raw)) => raw.as_slice(),
                (None, None) => continue,
            };
            out.extend_from_slice(format!("{index} ").as_bytes());
            out.extend_from_slice(name);
            out.push(b'\n');
        }
        out
    }

    /// The flags and keywords that the info letters `info` stand for. A keyword letter the
    /// file does not name is named `unknown-<index>` (with `?` added until the name is new),
    /// as Dovecot names it; the name is written with the next change to the file.
    pub(super) fn flags_of(&mut self, info: &str) -> MessageFlags {
        let mask = filename::keyword_mask(info) & !self.table.reserved();
        for index in (0..MAX_KEYWORDS).filter(|&index| mask & bit(index) != 0) {
            if self.table.get(index).is_none() {
                self.name_unknown(index);
            }
        }
        MessageFlags {
            system: Flags::from_maildir_letters(info),
            keywords: self.table.keywords(mask),
        }
    }

    fn name_unknown(&mut self, index: usize) {
        let mut name = format!("unknown-{index}");
        loop {
            match Keyword::new(&name) {
                Ok(keyword) if self.table.slot_of(&keyword).is_none() => {
                    self.table.set(index, keyword);
                    return;
                }
                Ok(_) => name.push('?'),
                // Cannot happen with 26 slots; should it, the letter stays unnamed.
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_keywords as keywords;

    #[test]
    fn reads_and_writes_dovecots_format() {
        let mut file = KeywordFile::parse(b"0 $Label1\n1 NonJunk\n3 $Forwarded\n");
        assert_eq!(file.table.get(1).unwrap().as_str(), "NonJunk");
        assert!(file.table.get(2).is_none());
        let flags = file.flags_of("Sab");
        assert_eq!(flags.system, Flags::SEEN);
        assert_eq!(flags.keywords, keywords(&["$Label1", "NonJunk"]));

        // A new keyword takes the gap; nothing is renumbered.
        let (mask, added) = file.table.intern(&keywords(&["Todo", "nonjunk"])).unwrap();
        assert!(added);
        assert_eq!(mask, bit(1) | bit(2));
        assert_eq!(
            String::from_utf8(file.render()).unwrap(),
            "0 $Label1\n1 NonJunk\n2 Todo\n3 $Forwarded\n"
        );
        assert_eq!(KeywordFile::parse(&file.render()), file);
    }

    #[test]
    fn skips_what_dovecot_skips_and_keeps_what_it_cannot_show() {
        let text = b"no-space\n26 TooFar\nx Junk\n-1 Neg\n4 \n\n2 a b\n5 caf\xc3\xa9\n7 First\n7 Second\r\n";
        let file = KeywordFile::parse(text);
        assert_eq!(file.table.all(), keywords(&["Second"]));
        assert_eq!(file.table.get(7).unwrap().as_str(), "Second");
        assert_eq!(file.table.reserved(), bit(2) | bit(5));
        assert_eq!(
            file.render(),
            b"2 a b\n5 caf\xc3\xa9\n7 Second\n".to_vec(),
            "names that are no keyword are written back as found"
        );
    }

    #[test]
    fn unnamed_letters_get_dovecots_unknown_names() {
        let mut file = KeywordFile::parse(b"0 unknown-1\n4 Unusable(\n");
        let flags = file.flags_of("RSbce");
        assert_eq!(flags.system, Flags::ANSWERED | Flags::SEEN);
        assert_eq!(
            flags.keywords,
            keywords(&["unknown-1?", "unknown-2"]),
            "a letter the file reserves for a foreign name is not shown"
        );
        assert_eq!(
            String::from_utf8(file.render()).unwrap(),
            "0 unknown-1\n1 unknown-1?\n2 unknown-2\n4 Unusable(\n"
        );
    }

    #[test]
    fn only_the_start_of_an_oversized_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut text = b"0 $Junk\n".to_vec();
        text.resize(MAX_FILE_LEN as usize - 1, b'x');
        text.extend_from_slice(b"\n1 Beyond\n");
        std::fs::write(&path, &text).unwrap();
        let file = KeywordFile::read(&path).unwrap();
        assert_eq!(file.table.all(), keywords(&["$Junk"]));
    }

    #[test]
    fn missing_file_is_empty_and_writes_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(KeywordFile::read(&path).unwrap(), KeywordFile::default());
        let mut file = KeywordFile::default();
        file.table.intern(&keywords(&["$Junk"])).unwrap();
        file.write(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0 $Junk\n");
        assert_eq!(KeywordFile::read(&path).unwrap(), file);
    }
}
