//! The store's [`MessageFlags`] as IMAP flags and back, and the mailbox's flag lists (the
//! FLAGS response and PERMANENTFLAGS).

use imap_codec::imap_types::core::Atom;
use imap_codec::imap_types::flag::{Flag, FlagFetch, FlagPerm};
use imap_codec::imap_types::response::{Code, Data, StatusKind};

use super::response;
use crate::store::{Flags, Keyword, Keywords, MessageFlags};

/// The system flags, in the order they are listed (RFC 3501's order, as Dovecot lists them).
pub(super) const SYSTEM: [(Flags, Flag<'static>); 5] = [
    (Flags::ANSWERED, Flag::Answered),
    (Flags::FLAGGED, Flag::Flagged),
    (Flags::DELETED, Flag::Deleted),
    (Flags::SEEN, Flag::Seen),
    (Flags::DRAFT, Flag::Draft),
];

/// The most of a refused flag's name echoed back, so that the answer stays short.
const MAX_ECHOED: usize = 64;

/// Why a client's flag list cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refused {
    /// A system flag a client cannot set (`\Recent`) or that does not exist (`\Foo`): a
    /// protocol error, answered `BAD`.
    SystemFlag(String),
    /// A keyword longer than the store keeps: answered `NO [LIMIT]`.
    KeywordTooLong,
}

/// The IMAP flags of `flags`, for FLAGS in FETCH responses: the system flags, the keywords,
/// then `\Recent` if `recent` (it belongs to the session rather than to the message, see
/// `recent.rs`).
pub(super) fn to_fetch(flags: &MessageFlags, recent: bool) -> Vec<FlagFetch<'static>> {
    let mut shown: Vec<FlagFetch<'static>> = system(flags.system)
        .chain(keywords(&flags.keywords))
        .map(FlagFetch::Flag)
        .collect();
    if recent {
        shown.push(FlagFetch::Recent);
    }
    shown
}

/// The flags a client asked for (STORE, APPEND), as the store keeps them.
pub(super) fn from_imap(flags: &[Flag<'_>]) -> Result<MessageFlags, Refused> {
    let mut wanted = MessageFlags::default();
    for flag in flags {
        match flag {
            Flag::Keyword(atom) => {
                // The parser already took an atom: only its length can be refused.
                let keyword = Keyword::new(atom.as_ref()).map_err(|_| Refused::KeywordTooLong)?;
                wanted.keywords.insert(keyword);
            }
            Flag::Extension(_) => {
                // Echoed in the answer: an atom is ASCII, so any cut is a character boundary.
                let mut name = flag.to_string();
                name.truncate(MAX_ECHOED);
                return Err(Refused::SystemFlag(name));
            }
            system => {
                let bit = SYSTEM
                    .iter()
                    .find(|(_, known)| known == system)
                    .map(|(bit, _)| *bit);
                wanted.system |= bit.unwrap_or(Flags::EMPTY);
            }
        }
    }
    Ok(wanted)
}

/// The untagged responses that tell the client which flags the mailbox has: `* FLAGS`
/// (the system flags and the mailbox's `keywords`), and for a mailbox open read-write
/// `* OK [PERMANENTFLAGS]`, which adds `\*`: any new keyword is kept.
pub(super) fn write_lists(out: &mut Vec<u8>, mailbox_keywords: &Keywords, read_only: bool) {
    write_flags(out, mailbox_keywords);
    if !read_only {
        write_permanent(out, mailbox_keywords, read_only);
    }
}

/// `* FLAGS (...)`: the system flags and the mailbox's keywords.
pub(super) fn write_flags(out: &mut Vec<u8>, mailbox_keywords: &Keywords) {
    let all = all(mailbox_keywords).collect();
    response::data(out, Data::Flags(all));
}

/// `* OK [PERMANENTFLAGS (...)]`: nothing in a mailbox open read-only; else every flag of
/// the mailbox and `\*`.
pub(super) fn write_permanent(out: &mut Vec<u8>, mailbox_keywords: &Keywords, read_only: bool) {
    let permanent = match read_only {
        true => Vec::new(),
        false => all(mailbox_keywords)
            .map(FlagPerm::Flag)
            .chain([FlagPerm::Asterisk])
            .collect(),
    };
    let code = Some(Code::PermanentFlags(permanent));
    response::untagged(out, StatusKind::Ok, code, "Flags permitted");
}

fn all(mailbox_keywords: &Keywords) -> impl Iterator<Item = Flag<'static>> + '_ {
    SYSTEM
        .into_iter()
        .map(|(_, flag)| flag)
        .chain(keywords(mailbox_keywords))
}

fn system(flags: Flags) -> impl Iterator<Item = Flag<'static>> {
    SYSTEM
        .into_iter()
        .filter(move |(bit, _)| flags.contains(*bit))
        .map(|(_, flag)| flag)
}

fn keywords(keywords: &Keywords) -> impl Iterator<Item = Flag<'static>> + '_ {
    // A stored keyword is an atom: none is left out.
    keywords
        .iter()
        .filter_map(|keyword| Atom::try_from(keyword.as_str().to_owned()).ok())
        .map(Flag::Keyword)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_flags, test_keywords};

    #[test]
    fn flags_and_keywords_round_trip() {
        let flags = test_flags(Flags::SEEN | Flags::DRAFT, &["NonJunk", "$Label1"]);
        let fetched = to_fetch(&flags, true);
        assert_eq!(fetched.last(), Some(&FlagFetch::Recent));
        let shown: Vec<Flag> = to_fetch(&flags, false)
            .into_iter()
            .map(|flag| match flag {
                FlagFetch::Flag(flag) => flag,
                FlagFetch::Recent => panic!("never \\Recent"),
            })
            .collect();
        let names: Vec<String> = shown.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["\\Seen", "\\Draft", "$Label1", "NonJunk"]);
        assert_eq!(from_imap(&shown), Ok(flags));
    }

    #[test]
    fn unsettable_system_flags_and_overlong_keywords_are_refused() {
        let recent = Flag::try_from("\\Recent").unwrap();
        assert_eq!(
            from_imap(&[Flag::Seen, recent]),
            Err(Refused::SystemFlag("\\Recent".into()))
        );
        let long = "k".repeat(crate::store::MAX_KEYWORD_LEN + 1);
        let long_keyword = Flag::try_from(long.as_str()).unwrap();
        assert_eq!(from_imap(&[long_keyword]), Err(Refused::KeywordTooLong));
        let long_system = format!("\\{long}");
        let long_system = Flag::try_from(long_system.as_str()).unwrap();
        let Err(Refused::SystemFlag(echoed)) = from_imap(&[long_system]) else {
            panic!("refused");
        };
        assert_eq!(echoed.len(), MAX_ECHOED);
    }

    #[test]
    fn flag_lists() {
        let keywords = test_keywords(&["$Label1"]);
        let mut out = Vec::new();
        write_lists(&mut out, &keywords, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] \
             Flags permitted\r\n"
        );
        let mut out = Vec::new();
        write_lists(&mut out, &keywords, true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n"
        );
    }
}
