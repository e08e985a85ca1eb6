//! The messages that are `\Recent` in one session, as UID ranges: a session is told of
//! recent messages a batch at a time (on SELECT, then as they arrive), and each batch is every
//! message from some UID up to the highest, so a few ranges hold what a list of UIDs would
//! hold in four bytes a message.

use std::ops::RangeInclusive;

use crate::store::MessageMeta;

/// UID ranges, ascending and disjoint; a message is recent if its UID is in one of them.
/// Expunged UIDs may stay in a range: they name no message of the view.
#[derive(Debug, Default)]
pub(super) struct RecentUids(Vec<RangeInclusive<u32>>);

impl RecentUids {
    /// Make the UIDs of `range` recent; `range` lies above every range before it (messages
    /// arrive with ever higher UIDs). An empty range adds nothing.
    pub(super) fn add(&mut self, range: RangeInclusive<u32>) {
        if range.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(last) if last.end().saturating_add(1) >= *range.start() => {
                *last = *last.start()..=*range.end().max(last.end());
            }
            _ => self.0.push(range),
        }
    }

    /// Whether `uid` is recent.
    pub(super) fn contains(&self, uid: u32) -> bool {
        let after = self.0.partition_point(|range| *range.end() < uid);
        self.0.get(after).is_some_and(|range| range.contains(&uid))
    }

    /// How many of `messages` (sorted by UID) are recent.
    pub(super) fn count_in(&self, messages: &[MessageMeta]) -> usize {
        self.0.iter().map(|range| within(messages, range)).sum()
    }

    /// Drop the ranges that no longer name any of `messages` (all of them expunged), so that
    /// the ranges stay as few as the recent messages at most.
    pub(super) fn keep_present(&mut self, messages: &[MessageMeta]) {
        self.0.retain(|range| within(messages, range) > 0);
    }
}

/// How many of `messages` (sorted by UID) have a UID in `range`.
fn within(messages: &[MessageMeta], range: &RangeInclusive<u32>) -> usize {
    let from = messages.partition_point(|m| m.uid < *range.start());
    let to = messages.partition_point(|m| m.uid <= *range.end());
    to - from
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn messages(uids: &[u32]) -> Vec<MessageMeta> {
        uids.iter()
            .map(|&uid| MessageMeta {
                uid,
                size: 1,
                flags: Default::default(),
                internal_date: UNIX_EPOCH,
                modseq: 1,
            })
            .collect()
    }

    #[test]
    fn batches_that_follow_each_other_are_one_range() {
        let mut recent = RecentUids::default();
        recent.add(3..=5);
        recent.add(6..=9);
        recent.add(12..=12);
        // What an update with no recent arrival adds (it starts past its end).
        let (past, end) = (20, 19);
        recent.add(past..=end);
        assert_eq!(recent.0, [3..=9, 12..=12]);
        assert!(recent.contains(3) && recent.contains(9) && recent.contains(12));
        assert!(!recent.contains(2) && !recent.contains(10) && !recent.contains(13));
    }

    #[test]
    fn counted_among_the_messages_still_there() {
        let mut recent = RecentUids::default();
        recent.add(3..=5);
        recent.add(8..=9);
        let present = messages(&[1, 2, 4, 5, 9, 10]);
        assert_eq!(recent.count_in(&present), 3);
        let present = messages(&[1, 9]);
        recent.keep_present(&present);
        assert_eq!(recent.0, [8..=9]);
        assert_eq!(recent.count_in(&present), 1);
    }
}
