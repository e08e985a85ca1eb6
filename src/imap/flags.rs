//! The store's [`Flags`] as IMAP flags and back.

use imap_codec::imap_types::flag::{Flag, FlagFetch};

use crate::store::Flags;

/// The system flags, in the order they are listed (RFC 3501's order, as Dovecot lists them).
pub(super) const SYSTEM: [(Flags, Flag<'static>); 5] = [
    (Flags::ANSWERED, Flag::Answered),
    (Flags::FLAGGED, Flag::Flagged),
    (Flags::DELETED, Flag::Deleted),
    (Flags::SEEN, Flag::Seen),
    (Flags::DRAFT, Flag::Draft),
];

/// The IMAP flags of `flags`, for FLAGS in FETCH responses; `recent` adds `\Recent`, which
/// belongs to the session rather than to the message (see `recent.rs`).
pub(super) fn to_fetch(flags: Flags, recent: bool) -> Vec<FlagFetch<'static>> {
    let mut shown: Vec<FlagFetch<'static>> = SYSTEM
        .into_iter()
        .filter(|(bit, _)| flags.contains(*bit))
        .map(|(_, flag)| FlagFetch::Flag(flag))
        .collect();
    if recent {
        shown.push(FlagFetch::Recent);
    }
    shown
}

/// The system flags among `flags`. Keywords are not kept by the stores (PERMANENTFLAGS does
/// not list `\*`), so they are dropped, as RFC 3501 section 7.1 allows.
pub(super) fn from_imap(flags: &[Flag<'_>]) -> Flags {
    SYSTEM
        .iter()
        .filter(|(_, system)| flags.contains(system))
        .fold(Flags::EMPTY, |all, (bit, _)| all | *bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_flags_round_trip_and_keywords_drop() {
        let flags = Flags::SEEN | Flags::DRAFT;
        assert_eq!(to_fetch(flags, true).last(), Some(&FlagFetch::Recent));
        let fetched: Vec<Flag> = to_fetch(flags, false)
            .into_iter()
            .map(|flag| match flag {
                FlagFetch::Flag(flag) => flag,
                FlagFetch::Recent => panic!("never \\Recent"),
            })
            .collect();
        assert_eq!(fetched, [Flag::Seen, Flag::Draft]);
        let keyword = Flag::try_from("$Junk").unwrap();
        assert_eq!(from_imap(&[Flag::Seen, keyword, Flag::Draft]), flags);
    }
}
