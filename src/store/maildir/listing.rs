//! The last listing of a folder, reused while its directories have not changed.
//!
//! A snapshot of a large folder is a `readdir` of `cur/` and `new/` and a reconciliation of
//! every name with the UID list: milliseconds for 10,000 messages, and an IMAP session takes
//! one before every command. Every change to a Maildir folder (a delivery, a flag change,
//! which renames a file, an expunge) changes the modification time of `cur/` or `new/`, so
//! while both times are what they were at the last listing, its result still holds.
//!
//! Directory times come from the kernel's coarse clock, so two changes a few milliseconds
//! apart can leave the same time behind. A listing is therefore reused only if both times
//! were at least [`SETTLED`] old when it was made, as Dovecot treats recent directory times as
//! dirty: a change after such a listing always moves a time. (On a network file system whose
//! server clock runs ahead of this host's, times look recent for longer, which only costs
//! listings.)

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::store::{MessageList, MessageMeta};

/// How old both directory times must be for a listing to be reused.
pub(super) const SETTLED: Duration = Duration::from_secs(2);

/// The modification times of a folder's `cur/` and `new/`; `None` for a directory that is
/// not there (a folder another program made may lack `new/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DirTimes {
    cur: Option<SystemTime>,
    new: Option<SystemTime>,
}

impl DirTimes {
    /// The times of `cur` and `new` now; read before listing them, so that a change during
    /// the listing moves a time past the one recorded.
    pub(super) fn read(cur: &Path, new: &Path) -> io::Result<DirTimes> {
        Ok(DirTimes {
            cur: modified(cur)?,
            new: modified(new)?,
        })
    }

    /// Whether both times are at least [`SETTLED`] before `now` (a time ahead of `now` is not).
    pub(super) fn settled(&self, now: SystemTime) -> bool {
        [self.cur, self.new]
            .iter()
            .flatten()
            .all(|&time| now.duration_since(time).is_ok_and(|age| age >= SETTLED))
    }
}

fn modified(dir: &Path) -> io::Result<Option<SystemTime>> {
    match fs::metadata(dir) {
        Ok(meta) => meta.modified().map(Some),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// A folder's last listing, and the directory times it was made under while those were
/// settled.
///
/// The messages are kept even when the times are not settled: a new listing that finds the
/// same messages hands out this list again, so that the sessions holding it share one copy.
#[derive(Debug, Default)]
pub(super) struct Listing {
    settled: Option<DirTimes>,
    messages: MessageList,
}

impl Listing {
    /// The messages of the last listing, if the directories still have the times it was made
    /// under.
    pub(super) fn reuse(&self, times: DirTimes) -> Option<MessageList> {
        (self.settled == Some(times)).then(|| self.messages.clone())
    }

    /// Keep `messages`, listed under `times` read at `now`, for reuse if those times were
    /// settled; returns them, as the list handed out before if they are the same.
    pub(super) fn keep(
        &mut self,
        times: DirTimes,
        now: SystemTime,
        messages: Vec<MessageMeta>,
    ) -> MessageList {
        self.messages = self.messages.or_same(messages);
        self.settled = times.settled(now).then_some(times);
        self.messages.clone()
    }

    /// Forget the listing's times (the state it came from changed): the next snapshot lists
    /// the folder again.
    pub(super) fn forget(&mut self) {
        self.settled = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(cur: u64, new: u64) -> DirTimes {
        let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        DirTimes {
            cur: Some(at(cur)),
            new: Some(at(new)),
        }
    }

    fn meta(uid: u32) -> MessageMeta {
        MessageMeta {
            uid,
            size: 10,
            flags: Default::default(),
            internal_date: SystemTime::UNIX_EPOCH,
            modseq: 1,
        }
    }

    #[test]
    fn a_listing_is_reused_only_under_the_same_settled_times() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut listing = Listing::default();
        listing.keep(times(900, 950), now, vec![meta(1)]);
        assert_eq!(listing.reuse(times(900, 950)).unwrap()[0].uid, 1);
        assert!(listing.reuse(times(901, 950)).is_none(), "cur/ changed");
        assert!(listing.reuse(times(900, 999)).is_none(), "new/ changed");
        listing.forget();
        assert!(listing.reuse(times(900, 950)).is_none());
    }

    #[test]
    fn a_listing_of_the_same_messages_hands_out_the_list_before() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut listing = Listing::default();
        // Unsettled times: listed again at each snapshot, yet the same list while it holds.
        let first = listing.keep(times(999, 999), now, vec![meta(1), meta(2)]);
        let again = listing.keep(times(999, 999), now, vec![meta(1), meta(2)]);
        assert!(MessageList::ptr_eq(&first, &again));
        let changed = listing.keep(times(1_000, 999), now, vec![meta(2)]);
        assert!(!MessageList::ptr_eq(&first, &changed));
        assert_eq!((first.len(), changed.len()), (2, 1));
    }

    #[test]
    fn recent_or_future_times_are_never_trusted() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut listing = Listing::default();
        // Changed a second ago: another change within the same clock tick would not show.
        listing.keep(times(999, 900), now, vec![meta(1)]);
        assert!(listing.reuse(times(999, 900)).is_none());
        listing.keep(times(900, 1_005), now, vec![meta(1)]);
        assert!(listing.reuse(times(900, 1_005)).is_none());
        listing.keep(times(998, 900), now, vec![meta(1)]);
        assert!(
            listing.reuse(times(998, 900)).is_some(),
            "two seconds is settled"
        );
    }
}
