//! Mod-sequences (RFC 7162, CONDSTORE and QRESYNC): what both stores share.
//!
//! Every change to a mailbox (a message delivered, its flags changed, messages expunged)
//! raises the mailbox's highest mod-sequence by one and stamps the changed message with the
//! new value, so a client that remembers the highest value it saw can later ask for just
//! what changed after it. Expunged messages are remembered too, with the value at which they
//! went, in an [`ExpungeHistory`] of bounded size: past its bound the oldest expunges are
//! forgotten, and the history says from which value on it is complete.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

use super::MessageFlags;

/// The largest mod-sequence RFC 7162 allows: they are 63-bit numbers.
///
/// ```
/// assert_eq!(tower_mail::store::MAX_MODSEQ, 9_223_372_036_854_775_807);
/// ```
pub const MAX_MODSEQ: u64 = i64::MAX as u64;

/// What [`Mailstore::update_flags`](super::Mailstore::update_flags) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagsUpdate {
    /// The flags were stored (or were already so): as stored, and the message's
    /// mod-sequence now (0 from a store without mod-sequences).
    Stored {
        /// The flags and keywords as stored.
        flags: MessageFlags,
        /// The message's mod-sequence after the change.
        modseq: u64,
    },
    /// Nothing was changed: the message changed after the mod-sequence the caller gave
    /// (its mod-sequence now is larger). IMAP's `[MODIFIED]`.
    Modified {
        /// The message's mod-sequence now.
        modseq: u64,
    },
}

impl FlagsUpdate {
    /// The flags as stored by a change made without a condition, which is never refused:
    /// `set_flags` of a store whose `update_flags` does the work.
    pub(crate) fn unconditional(self) -> MessageFlags {
        match self {
            FlagsUpdate::Stored { flags, .. } => flags,
            FlagsUpdate::Modified { .. } => unreachable!("a change without a condition"),
        }
    }
}

/// Raises `highest` by one and returns it: the mod-sequence of the next change. It stays at
/// [`MAX_MODSEQ`] once there (some 10¹⁸ changes away, even from a clock-based start).
pub(crate) fn next(highest: &mut u64) -> u64 {
    *highest = highest.saturating_add(1).min(MAX_MODSEQ);
    *highest
}

/// How many UID ranges an [`ExpungeHistory`] keeps at most: a client away for longer (past
/// this many separate expunges) is told conservatively (see [`ExpungeHistory::since`]).
pub(crate) const MAX_EXPUNGED_RANGES: usize = 8192;

/// The UIDs expunged from a mailbox and the mod-sequence at which they went, oldest first,
/// bounded by [`MAX_EXPUNGED_RANGES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpungeHistory {
    entries: VecDeque<Expunge>,
    /// The ranges in all `entries`.
    ranges: usize,
    /// Every expunge after this mod-sequence is in `entries`.
    complete_from: u64,
}

/// One expunge: its mod-sequence and the UIDs it removed, as ascending ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expunge {
    pub(crate) modseq: u64,
    pub(crate) uids: Vec<RangeInclusive<u32>>,
}

impl ExpungeHistory {
    /// An empty history, complete for every mod-sequence from `complete_from` on (the
    /// mailbox's highest when the history starts: nothing is known of earlier expunges).
    pub(crate) fn new(complete_from: u64) -> ExpungeHistory {
        ExpungeHistory {
            entries: VecDeque::new(),
            ranges: 0,
            complete_from,
        }
    }

    /// Every expunge after this mod-sequence is known.
    #[cfg(any(feature = "maildir", test))]
    pub(crate) fn complete_from(&self) -> u64 {
        self.complete_from
    }

    /// The expunges kept, oldest first.
    #[cfg(feature = "maildir")]
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Expunge> {
        self.entries.iter()
    }

    /// Remembers that `uids` were expunged at `modseq` (larger than any recorded before),
    /// forgetting the oldest expunges past the bound.
    pub(crate) fn record(&mut self, modseq: u64, uids: impl IntoIterator<Item = u32>) {
        let mut uids: Vec<u32> = uids.into_iter().collect();
        uids.sort_unstable();
        uids.dedup();
        let ranges = ranges_of(uids);
        if ranges.is_empty() {
            return;
        }
        self.push(Expunge {
            modseq,
            uids: ranges,
        });
    }

    /// Adds an expunge as read back from storage.
    pub(crate) fn push(&mut self, expunge: Expunge) {
        self.ranges += expunge.uids.len();
        self.entries.push_back(expunge);
        while self.ranges > MAX_EXPUNGED_RANGES {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            self.ranges -= oldest.uids.len();
            self.complete_from = self.complete_from.max(oldest.modseq);
        }
    }

    /// The UIDs expunged after `modseq`, as ascending ranges; `None` if the history does not
    /// go back that far. Then every UID the client knows that is no longer in the mailbox may
    /// have gone: RFC 7162 lets the server report UIDs as vanished that the client never had,
    /// and clients ignore them.
    pub(crate) fn since(&self, modseq: u64) -> Option<Vec<RangeInclusive<u32>>> {
        if modseq < self.complete_from {
            return None;
        }
        let mut uids: Vec<RangeInclusive<u32>> = self
            .entries
            .iter()
            .filter(|expunge| expunge.modseq > modseq)
            .flat_map(|expunge| expunge.uids.iter().cloned())
            .collect();
        uids.sort_unstable_by_key(|range| *range.start());
        Some(merge(uids))
    }
}

/// Ascending, distinct `uids` as ranges of consecutive UIDs.
pub(crate) fn ranges_of(uids: impl IntoIterator<Item = u32>) -> Vec<RangeInclusive<u32>> {
    let mut ranges: Vec<RangeInclusive<u32>> = Vec::new();
    for uid in uids {
        match ranges.last_mut() {
            Some(last) if last.end().checked_add(1) == Some(uid) => {
                *last = *last.start()..=uid;
            }
            _ => ranges.push(uid..=uid),
        }
    }
    ranges
}

/// Ascending ranges written as IMAP writes a set of them: `3:5,9`.
#[cfg(any(feature = "imap", feature = "maildir"))]
pub(crate) fn render_ranges(ranges: &[RangeInclusive<u32>]) -> String {
    let mut text = String::new();
    for range in ranges {
        if !text.is_empty() {
            text.push(',');
        }
        text.push_str(&range.start().to_string());
        if range.start() != range.end() {
            text.push(':');
            text.push_str(&range.end().to_string());
        }
    }
    text
}

/// Ranges sorted by start, overlapping or adjacent ones joined.
fn merge(sorted: Vec<RangeInclusive<u32>>) -> Vec<RangeInclusive<u32>> {
    let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(sorted.len());
    for range in sorted {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modseqs_grow_and_stop_at_63_bits() {
        let mut highest = 1;
        assert_eq!(next(&mut highest), 2);
        assert_eq!(highest, 2);
        let mut highest = MAX_MODSEQ - 1;
        assert_eq!(next(&mut highest), MAX_MODSEQ);
        assert_eq!(next(&mut highest), MAX_MODSEQ);
    }

    #[test]
    fn ranges_join_consecutive_uids() {
        assert_eq!(ranges_of([1, 2, 3, 5, 7, 8]), vec![1..=3, 5..=5, 7..=8]);
        assert_eq!(
            ranges_of([u32::MAX - 1, u32::MAX]),
            vec![u32::MAX - 1..=u32::MAX]
        );
        assert!(ranges_of([]).is_empty());
        assert_eq!(render_ranges(&ranges_of([1, 2, 3, 5, 7, 8])), "1:3,5,7:8");
        assert_eq!(render_ranges(&[]), "");
        assert_eq!(merge(vec![1..=3, 2..=6, 7..=7, 9..=9]), vec![1..=7, 9..=9]);
    }

    #[test]
    fn expunges_after_a_modseq() {
        let mut history = ExpungeHistory::new(10);
        history.record(11, [4, 2, 3]);
        history.record(12, []);
        history.record(13, [9]);
        history.record(14, [5]);
        assert_eq!(history.since(10), Some(vec![2..=5, 9..=9]));
        assert_eq!(history.since(11), Some(vec![5..=5, 9..=9]));
        assert_eq!(history.since(14), Some(vec![]));
        assert_eq!(history.since(99), Some(vec![]), "a value from the future");
        assert_eq!(history.since(9), None, "from before the history began");
    }

    #[test]
    fn the_oldest_expunges_are_forgotten_past_the_bound() {
        let mut history = ExpungeHistory::new(1);
        // Every other UID: one range per UID.
        for i in 0..MAX_EXPUNGED_RANGES as u32 {
            history.record(2 + u64::from(i), [2 * i + 1]);
        }
        assert_eq!(history.since(1).map(|r| r.len()), Some(MAX_EXPUNGED_RANGES));
        history.record(9_999_999, [100_000, 100_002]);
        assert_eq!(history.ranges, MAX_EXPUNGED_RANGES);
        assert_eq!(history.complete_from(), 3, "the two oldest went");
        assert_eq!(history.since(2), None);
        let since = history.since(3).unwrap();
        assert_eq!(since.first(), Some(&(5..=5)));
        assert_eq!(since.last(), Some(&(100_002..=100_002)));
    }
}
