//! Sequence sets (RFC 3501 section 9, `sequence-set`) tested for membership rather than
//! expanded: `1:4294967295` is a valid set, and expanding it would cost billions of steps.

use std::num::NonZeroU32;
use std::ops::RangeInclusive;

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use crate::store::{ranges_of, render_ranges};

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
    render_ranges(&ranges_of(numbers.iter().copied()))
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

/// The numbers `set` names, as ascending, disjoint ranges (`*` standing for `largest`, as in
/// [`contains`]): for intersecting a set with others without expanding it.
pub(super) fn ranges(set: &SequenceSet, largest: u32) -> Vec<RangeInclusive<u32>> {
    let value = |bound: &SeqOrUid| match bound {
        SeqOrUid::Value(value) => value.get(),
        SeqOrUid::Asterisk => largest,
    };
    let mut ranges: Vec<RangeInclusive<u32>> = set
        .0
        .as_ref()
        .iter()
        .map(|sequence| match sequence {
            Sequence::Single(single) => value(single)..=value(single),
            Sequence::Range(a, b) => {
                let (a, b) = (value(a), value(b));
                a.min(b)..=a.max(b)
            }
        })
        .filter(|range| *range.end() > 0)
        .map(|range| (*range.start()).max(1)..=*range.end())
        .collect();
    ranges.sort_unstable_by_key(|range| *range.start());
    let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start().saturating_sub(1) <= *last.end() => {
                let end = *last.end().max(range.end());
                *last = *last.start()..=end;
            }
            _ => merged.push(range),
        }
    }
    merged
}

/// The numbers in both `a` and `b` (each ascending and disjoint, as [`ranges`] makes them).
pub(super) fn intersect(
    a: &[RangeInclusive<u32>],
    b: &[RangeInclusive<u32>],
) -> Vec<RangeInclusive<u32>> {
    let (mut i, mut j) = (0, 0);
    let mut both = Vec::new();
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        let start = *x.start().max(y.start());
        let end = *x.end().min(y.end());
        if start <= end {
            both.push(start..=end);
        }
        if x.end() < y.end() {
            i += 1;
        } else {
            j += 1;
        }
    }
    both
}

/// The numbers in `a` but not in `b` (each ascending and disjoint).
pub(super) fn subtract(
    a: &[RangeInclusive<u32>],
    b: &[RangeInclusive<u32>],
) -> Vec<RangeInclusive<u32>> {
    let mut left = Vec::with_capacity(a.len());
    let mut j = 0;
    for range in a {
        let mut start = Some(*range.start());
        while b.get(j).is_some_and(|hole| hole.end() < range.start()) {
            j += 1;
        }
        while let (Some(from), Some(hole)) = (start, b.get(j)) {
            if hole.start() > range.end() {
                break;
            }
            if *hole.start() > from {
                left.push(from..=hole.start() - 1);
            }
            start = hole.end().checked_add(1);
            if hole.end() > range.end() {
                break;
            }
            j += 1;
        }
        if let Some(from) = start.filter(|from| from <= range.end()) {
            left.push(from..=*range.end());
        }
    }
    left
}

/// Whether `n` is in `ranges` (ascending and disjoint).
pub(super) fn in_ranges(ranges: &[RangeInclusive<u32>], n: u32) -> bool {
    let after = ranges.partition_point(|range| *range.end() < n);
    ranges.get(after).is_some_and(|range| range.contains(&n))
}

/// Ascending ranges (of numbers above 0) as a sequence set; `None` for none, since a set
/// cannot be empty.
pub(super) fn from_ranges(ranges: &[RangeInclusive<u32>]) -> Option<SequenceSet> {
    let sequences: Vec<Sequence> = ranges
        .iter()
        .filter_map(|range| {
            let start = NonZeroU32::new(*range.start())?;
            let end = NonZeroU32::new(*range.end())?;
            Some(match start == end {
                true => Sequence::Single(SeqOrUid::Value(start)),
                false => Sequence::Range(SeqOrUid::Value(start), SeqOrUid::Value(end)),
            })
        })
        .collect();
    Vec1::try_from(sequences).ok().map(SequenceSet)
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
    fn sets_as_ranges_intersected_and_back() {
        assert_eq!(
            ranges(&set("9,1:3,4,*,20:12"), 30),
            vec![1..=4, 9..=9, 12..=20, 30..=30]
        );
        assert_eq!(ranges(&set("5:*"), 2), vec![2..=5], "* below the start");
        assert_eq!(ranges(&set("*"), 0), vec![], "* of an empty mailbox");
        let both = intersect(&[1..=10, 20..=30], &[5..=22, 25..=25, 29..=40]);
        assert_eq!(both, vec![5..=10, 20..=22, 25..=25, 29..=30]);
        assert!(intersect(&[1..=3], &[]).is_empty());
        let left = subtract(
            &[1..=10, 20..=30, 40..=40],
            &[0..=2, 5..=5, 9..=21, 30..=50],
        );
        assert_eq!(left, vec![3..=4, 6..=8, 22..=29]);
        assert_eq!(subtract(&[1..=u32::MAX], &[7..=u32::MAX]), vec![1..=6]);
        assert_eq!(subtract(&[1..=3], &[]), vec![1..=3]);
        assert!(in_ranges(&[1..=3, 7..=9], 8) && !in_ranges(&[1..=3, 7..=9], 5));
        assert!(!in_ranges(&[], 1));
        let back = from_ranges(&[1..=3, 7..=7]).unwrap();
        assert_eq!(ranges(&back, 99), vec![1..=3, 7..=7]);
        assert!(from_ranges(&[]).is_none());
    }

    #[test]
    fn huge_sets_cost_nothing() {
        assert!(contains(&set("1:4294967295"), 3_000_000_000, 5));
    }
}
