//! Sequence sets (RFC 3501 section 9, `sequence-set`) tested for membership rather than
//! expanded: `1:4294967295` is a valid set, and expanding it would cost billions of steps.

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// The number a `$` (RFC 5182's saved search result) is written as before `imap-codec`
/// decodes the command (see `syntax::prepare`): no mailbox holds that many messages, and a
/// command that names it beside a `$` is refused, so it cannot be mistaken for a real set.
pub(super) const SAVED_MARKER: u32 = u32::MAX;

/// Whether `set` is exactly the one number `n`.
pub(super) fn is_single(set: &SequenceSet, n: u32) -> bool {
    matches!(set.0.as_ref(), [Sequence::Single(SeqOrUid::Value(v))] if v.get() == n)
}

/// `numbers` (ascending) as a sequence set, with runs as ranges: `1:3,5`. Empty if there
/// are none.
pub(super) fn compact(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while numbers
            .get(i + 1)
            .is_some_and(|&next| Some(next) == end.checked_add(1))
        {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        match start == end {
            true => out.push_str(&start.to_string()),
            false => out.push_str(&format!("{start}:{end}")),
        }
        i += 1;
    }
    out
}

/// Whether `n` is in `set`, where `*` stands for `largest` (the highest sequence number or
/// UID in the mailbox).
///
/// A range is taken in either order, and `*` in a range with a number above `largest` still
/// names `largest`: RFC 3501 section 6.4.8 has `559:*` include the last message's UID even
/// when that is below 559.
pub(super) fn contains(set: &SequenceSet, n: u32, largest: u32) -> bool {
    let value = |bound: &SeqOrUid| match bound {
        SeqOrUid::Value(value) => value.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|sequence| match sequence {
        Sequence::Single(single) => value(single) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (value(a), value(b));
            (a.min(b)..=a.max(b)).contains(&n)
        }
    })
}

/// The highest number `set` names other than by `*`, to check sequence numbers against the
/// mailbox's size.
pub(super) fn highest_value(set: &SequenceSet) -> u32 {
    let value = |bound: &SeqOrUid| match bound {
        SeqOrUid::Value(value) => value.get(),
        SeqOrUid::Asterisk => 0,
    };
    set.0
        .as_ref()
        .iter()
        .map(|sequence| match sequence {
            Sequence::Single(single) => value(single),
            Sequence::Range(a, b) => value(a).max(value(b)),
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> SequenceSet {
        SequenceSet::try_from(text).unwrap()
    }

    #[test]
    fn ranges_singles_and_star() {
        let s = set("1:3,7,10:*");
        let members: Vec<u32> = (1..=12).filter(|&n| contains(&s, n, 12)).collect();
        assert_eq!(members, [1, 2, 3, 7, 10, 11, 12]);
        assert!(contains(&set("5:2"), 3, 9), "reversed ranges count");
        assert!(!contains(&set("*"), 11, 12));
        assert_eq!(highest_value(&set("2,9:4,*")), 9);
    }

    #[test]
    fn star_beyond_the_last_names_the_last() {
        let s = set("559:*");
        assert!(contains(&s, 200, 200));
        assert!(!contains(&s, 199, 200));
    }

    #[test]
    fn compact_sets_and_the_marker() {
        assert_eq!(compact(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(compact(&[4294967295]), "4294967295");
        assert_eq!(compact(&[]), "");
        assert!(is_single(&set("4294967295"), SAVED_MARKER));
        assert!(!is_single(&set("4294967295,1"), SAVED_MARKER));
        assert!(!is_single(&set("*"), SAVED_MARKER));
    }

    #[test]
    fn huge_sets_cost_nothing() {
        assert!(contains(&set("1:4294967295"), 3_000_000_000, 5));
    }
}
