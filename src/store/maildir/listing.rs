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

use crate::store::MessageMeta;

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

/// A folder's messages as listed under some directory times.
#[derive(Debug, Default)]
pub(super) struct Listing(Option<(DirTimes, Vec<MessageMeta>)>);

impl Listing {
    /// The messages of the last listing, if the directories still have the times it was made
    /// under.
    pub(super) fn reuse(&self, times: DirTimes) -> Option<Vec<MessageMeta>> {
        match &self.0 {
            Some((listed, messages)) if *listed == times => Some(messages.clone()),
            _ => None,
        }
    }

    /// Keep `messages`, listed under `times` read at `now`, if those times were settled.
    pub(super) fn keep(&mut self, times: DirTimes, now: SystemTime, messages: &[MessageMeta]) {
        self.0 = times.settled(now).then(|| (times, messages.to_vec()));
    }

    /// Forget the listing (the state it came from changed).
    pub(super) fn forget(&mut self) {
        self.0 = None;
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
        listing.keep(times(900, 950), now, &[meta(1)]);
        assert_eq!(listing.reuse(times(900, 950)).unwrap()[0].uid, 1);
        assert!(listing.reuse(times(901, 950)).is_none(), "cur/ changed");
        assert!(listing.reuse(times(900, 999)).is_none(), "new/ changed");
        listing.forget();
        assert!(listing.reuse(times(900, 950)).is_none());
    }

    #[test]
    fn recent_or_future_times_are_never_trusted() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut listing = Listing::default();
        // Changed a second ago: another change within the same clock tick would not show.
        listing.keep(times(999, 900), now, &[meta(1)]);
        assert!(listing.reuse(times(999, 900)).is_none());
        listing.keep(times(900, 1_005), now, &[meta(1)]);
        assert!(listing.reuse(times(900, 1_005)).is_none());
        listing.keep(times(998, 900), now, &[meta(1)]);
        assert!(
            listing.reuse(times(998, 900)).is_some(),
            "two seconds is settled"
        );
    }
}
