//! Maildir's 36-hour rule for `tmp/`: a file there that has not been touched for 36 hours
//! is a delivery whose writer died (a crash, a SIGKILL between writing and renaming), and
//! the reader removes it. A younger file may be a delivery in progress and is left alone.
//!
//! "Touched" is the later of the file's access and modification times, as the Maildir
//! specification has it (access time): the modification time alone will not do, because a
//! delivery sets it to the message's INTERNALDATE, which may be years back, before it
//! renames the file into `cur/`; its access time is still when it was created.
//!
//! The store sweeps a folder's `tmp/` the first time it opens the folder in this process:
//! once per folder, so a folder in use costs one directory listing per process, and a crash's
//! leftovers go at the next start that opens the folder.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long a `tmp/` file may go untouched before it counts as abandoned (the Maildir
/// specification's figure; qmail, Dovecot and maildrop use it too).
pub(super) const ABANDONED_AFTER: Duration = Duration::from_secs(36 * 60 * 60);

/// Removes the regular files in `tmp` last touched (accessed or modified) at least [`ABANDONED_AFTER`] before
/// `now`; how many it removed. A missing `tmp/` has nothing to sweep, and a file that
/// vanishes meanwhile (its writer renamed it into place) is skipped.
pub(super) fn sweep(tmp: &Path, now: SystemTime) -> io::Result<usize> {
    let entries = match fs::read_dir(tmp) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        // A file dated in the future (a clock set back) is not old: `duration_since` fails.
        let abandoned = meta.is_file()
            && now
                .duration_since(last_touched(&meta)?)
                .is_ok_and(|age| age >= ABANDONED_AFTER);
        if !abandoned {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(removed)
}

/// The later of the access and modification times; the modification time alone where the
/// platform keeps no access time.
fn last_touched(meta: &fs::Metadata) -> io::Result<SystemTime> {
    let modified = meta.modified()?;
    Ok(meta
        .accessed()
        .map_or(modified, |accessed| accessed.max(modified)))
}

/// [`sweep`], with what it did logged: a sweep that fails leaves the folder usable (the
/// files stay for the next process to try), so it is reported, not returned.
pub(super) fn sweep_logged(tmp: &Path, now: SystemTime) {
    match sweep(tmp, now) {
        Ok(0) => {}
        Ok(removed) => {
            tracing::info!(dir = %tmp.display(), removed, "removed abandoned files from tmp/");
        }
        Err(err) => {
            tracing::warn!(dir = %tmp.display(), error = %err, "could not sweep tmp/");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};

    /// A file in `tmp` last read and written `age` before `now`.
    fn file_aged(tmp: &Path, name: &str, now: SystemTime, age: Duration) {
        let file = File::create(tmp.join(name)).unwrap();
        file.set_times(
            FileTimes::new()
                .set_accessed(now - age)
                .set_modified(now - age),
        )
        .unwrap();
    }

    fn names(tmp: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn files_unwritten_for_36_hours_go_and_younger_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        file_aged(dir.path(), "crashed-long-ago", now, 100 * hour);
        file_aged(dir.path(), "crashed-just-36h-ago", now, ABANDONED_AFTER);
        file_aged(dir.path(), "slow-delivery", now, 35 * hour);
        file_aged(dir.path(), "delivery-in-progress", now, Duration::ZERO);
        // Being delivered with an INTERNALDATE years back: modified then, created now.
        File::create(dir.path().join("dated-delivery"))
            .unwrap()
            .set_modified(now - 1000 * 24 * hour)
            .unwrap();
        // A clock set back makes a file look written in the future: not old.
        file_aged(
            dir.path(),
            "from-the-future",
            now + 2 * hour,
            Duration::ZERO,
        );
        fs::create_dir(dir.path().join("a-directory")).unwrap();
        let old = now - 100 * hour;
        File::open(dir.path().join("a-directory"))
            .unwrap()
            .set_times(FileTimes::new().set_accessed(old).set_modified(old))
            .unwrap();

        assert_eq!(sweep(dir.path(), now).unwrap(), 2);
        assert_eq!(
            names(dir.path()),
            [
                "a-directory",
                "dated-delivery",
                "delivery-in-progress",
                "from-the-future",
                "slow-delivery"
            ]
        );
        // Nothing more to do the second time.
        assert_eq!(sweep(dir.path(), now).unwrap(), 0);
    }

    #[test]
    fn a_folder_without_tmp_has_nothing_to_sweep() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            sweep(&dir.path().join("tmp"), SystemTime::now()).unwrap(),
            0
        );
    }
}
