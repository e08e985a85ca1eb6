//! Dovecot's dot-lock: a file `<name>.lock` beside the file it protects, created exclusively
//! by whoever is about to change that file and removed when done. Dovecot takes
//! `dovecot-uidlist.lock` before it writes a folder's UID list (or its keyword file) and
//! `subscriptions.lock` before it writes the subscriptions; taking the same locks before
//! writing the same files keeps the two servers from overwriting each other's changes.
//!
//! Like Dovecot's, the lock file holds `<pid>:<host name>`, so that a lock left behind by a
//! process that died on this host is taken over at once; any other lock is taken over once
//! neither it nor the file it protects has changed for the stale time Dovecot uses for that
//! file. A lock that names this very process but that this process does not hold was left by
//! an earlier process that had the same pid, and is taken over at once too: after a power
//! cut or a reboot pids come round again, and a server that is pid 1 in its container names
//! the same pid every time. And a lock made before the machine last booted is taken over at
//! once whatever it names: a power cut can leave one naming a pid some other process has
//! now, or even empty (its name written, its content not). Both were found by
//! `tests/power_loss.sh`, where each lock the cut left held the next start up for the
//! two-minute stale time.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::filename;

/// How long a lock and the file it protects may go unchanged before the lock is taken over,
/// and how long to wait for a lock at most.
#[derive(Debug, Clone, Copy)]
pub(super) struct LockTimes {
    stale_after: Duration,
    give_up_after: Duration,
}

impl LockTimes {
    /// Dovecot's times for `dovecot-uidlist.lock`: stale after two minutes unchanged.
    pub(super) const UIDLIST: LockTimes = LockTimes::waiting_past(Duration::from_secs(120));

    /// Dovecot's times for `subscriptions.lock`: stale after 30 seconds unchanged.
    pub(super) const SUBSCRIPTIONS: LockTimes = LockTimes::waiting_past(Duration::from_secs(30));

    /// Waits a little longer than a lock can stay fresh, as Dovecot does: a lock nobody
    /// releases is then always taken over before giving up.
    const fn waiting_past(stale_after: Duration) -> LockTimes {
        LockTimes {
            stale_after,
            give_up_after: Duration::from_secs(stale_after.as_secs() + 2),
        }
    }
}

/// Retry interval while another process holds the lock: short at first (Dovecot holds these
/// locks for milliseconds), growing so a long wait costs little.
const FIRST_RETRY: Duration = Duration::from_millis(5);
const LAST_RETRY: Duration = Duration::from_millis(200);

/// The lock files this process holds now. Taking a lock, releasing it, and taking over one
/// that names this process happen under this mutex, so no thread sees a lock of another
/// thread's between its creation and its entry here.
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn held() -> MutexGuard<'static, Vec<PathBuf>> {
    // The list stays whole whatever panicked while holding it: pushes and retains only.
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A held dot-lock; dropping it removes the lock file (unless another process took it over).
#[derive(Debug)]
pub(super) struct DotLock {
    path: PathBuf,
    /// The lock file as created, to tell whether the file at `path` is still ours.
    identity: Identity,
}

impl DotLock {
    /// Takes the lock on `target` (the file `<target>.lock`), waiting while another process
    /// holds it; fails with `TimedOut` after `times.give_up_after`.
    ///
    /// Blocks the thread: call it on the blocking pool, like all file work here.
    pub(super) fn acquire(target: &Path, times: LockTimes) -> io::Result<DotLock> {
        let path = lock_path(target);
        let deadline = Instant::now() + times.give_up_after;
        let mut retry = FIRST_RETRY;
        // The lock appears with its owner already in it, as Dovecot's dot-locks do: written
        // to a draft file first, then linked to the lock's name, which fails while the lock
        // exists. A lock created empty and filled after would, if its process died between
        // the two (a SIGKILL), name no owner and block every writer of the file until it
        // went stale, two minutes later (found by `tests/crash_safety.rs`).
        let draft = Draft::write(&path)?;
        loop {
            {
                let mut held = held();
                match fs::hard_link(&draft.path, &path) {
                    Ok(()) => {
                        let identity = Identity::of(&fs::symlink_metadata(&path)?);
                        held.push(path.clone());
                        return Ok(DotLock { path, identity });
                    }
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(err) => return Err(err),
                }
                if !held.contains(&path)
                    && fs::read_to_string(&path).is_ok_and(|content| content == owner())
                {
                    tracing::warn!(lock = %path.display(), "taking over a lock an earlier process with this pid left");
                    match fs::remove_file(&path) {
                        Ok(()) => continue,
                        Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                        Err(err) => return Err(err),
                    }
                }
            }
            if is_stale(&path, target, times.stale_after)? {
                tracing::warn!(lock = %path.display(), "taking over a stale lock");
                match fs::remove_file(&path) {
                    Ok(()) => continue,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err),
                }
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} is held by another process", path.display()),
                ));
            }
            if super::caller::is_gone() {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "nobody waits for the lock any more",
                ));
            }
            thread::sleep(retry);
            retry = (retry * 2).min(LAST_RETRY);
        }
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        let mut held = held();
        // A lock another process took over (ours looked stale to it) is theirs now; its file
        // may even have our old inode number, but not our pid.
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| Identity::of(&meta) == self.identity)
            && fs::read_to_string(&self.path).is_ok_and(|content| content == owner());
        if ours && let Err(err) = fs::remove_file(&self.path) {
            tracing::warn!(lock = %self.path.display(), error = %err, "lock not removed");
        }
        if let Some(at) = held.iter().position(|path| *path == self.path) {
            held.swap_remove(at);
        }
    }
}

/// A lock's content in a file of its own, `<lock>.<unique token>.tmp`, removed when dropped
/// (the lock, a second name for it, stays).
struct Draft {
    path: PathBuf,
}

impl Draft {
    fn write(lock: &Path) -> io::Result<Draft> {
        let mut path = lock.as_os_str().to_owned();
        path.push(format!(".{}.tmp", filename::unique_token()));
        let draft = Draft {
            path: PathBuf::from(path),
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&draft.path)?;
        file.write_all(owner().as_bytes())?;
        Ok(draft)
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What a lock file of this process holds: `<pid>:<host name>`, as Dovecot writes.
fn owner() -> String {
    format!("{}:{}", std::process::id(), filename::raw_hostname())
}

/// `<target>.lock`.
fn lock_path(target: &Path) -> PathBuf {
    let mut path = target.as_os_str().to_owned();
    path.push(".lock");
    PathBuf::from(path)
}

/// Device and inode (on Unix) of a lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    fn of(meta: &fs::Metadata) -> Identity {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Identity { dev, ino }
    }
}

/// Whether the lock at `path` may be taken over: its owner died on this host, or neither it
/// nor `target` changed for `stale_after`.
fn is_stale(path: &Path, target: &Path, stale_after: Duration) -> io::Result<bool> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        // Released meanwhile: not stale, just free.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    let made = meta.modified().ok();
    if made_before_this_boot(made) {
        return Ok(true);
    }
    if let Ok(content) = fs::read_to_string(path)
        && owner_is_gone(&content, made)
    {
        return Ok(true);
    }
    let now = SystemTime::now();
    let unchanged_since = |modified: io::Result<SystemTime>| {
        modified.is_ok_and(|time| now.duration_since(time).is_ok_and(|age| age > stale_after))
    };
    let target_unchanged = match fs::metadata(target) {
        Ok(target) => unchanged_since(target.modified()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => true,
        Err(err) => return Err(err),
    };
    Ok(unchanged_since(meta.modified()) && target_unchanged)
}

/// Whether a lock file's `<pid>:<host>` names a process of this host that is gone: no
/// process has that pid now, or the one that has it started after the lock was made
/// (`made`), so it is another process that got the pid again (after a reboot, where a
/// power cut left the lock, or when pids wrapped). Only Linux's `/proc` tells, without a
/// system call this crate would need `unsafe` for; elsewhere a lock goes stale with time
/// alone. This process's own pid is never judged here: the locks it holds are known.
fn owner_is_gone(content: &str, made: Option<SystemTime>) -> bool {
    let Some((pid, host)) = content.trim().split_once(':') else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let proc_root = Path::new("/proc");
    if host != filename::raw_hostname()
        || host.is_empty()
        || pid == std::process::id()
        || !proc_root.join("self").exists()
    {
        return false;
    }
    let process = proc_root.join(pid.to_string());
    if !process.exists() {
        return true;
    }
    process_age(&process).is_some_and(|age| older_than(made, age))
}

/// Whether the lock was made before this boot: no process that could hold it survived the
/// reboot, whatever it names. A power cut can even leave a lock empty, its name written
/// and its content not (found by `tests/power_loss.sh`). Linux only, as above.
fn made_before_this_boot(made: Option<SystemTime>) -> bool {
    uptime().is_some_and(|uptime| older_than(made, uptime))
}

/// Whether a lock made at `made` (by the wall clock) is older than `age` (by the boot
/// clock), with a second of slack for `/proc`'s ticks and the file system's timestamps. A
/// wall clock stepped forward makes locks look older: by less than the time since boot or
/// since their owner started, in all but a server started moments before the step.
fn older_than(made: Option<SystemTime>, age: Duration) -> bool {
    made.and_then(|made| SystemTime::now().duration_since(made).ok())
        .is_some_and(|lock_age| lock_age > age + Duration::from_secs(1))
}

/// The time since boot, from `/proc/uptime`.
fn uptime() -> Option<Duration> {
    let uptime = fs::read_to_string("/proc/uptime").ok()?;
    Duration::try_from_secs_f64(uptime.split_whitespace().next()?.parse().ok()?).ok()
}

/// How long ago the process whose `/proc/<pid>` is `process` started.
fn process_age(process: &Path) -> Option<Duration> {
    // Field 22 of `stat`, counted after the command name, which may hold spaces and
    // parentheses: the start in clock ticks after boot, 100 a second on Linux.
    let stat = fs::read_to_string(process.join("stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    uptime()?.checked_sub(Duration::from_millis(ticks.checked_mul(10)?))
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    const QUICK: LockTimes = LockTimes {
        stale_after: Duration::from_secs(120),
        give_up_after: Duration::ZERO,
    };

    fn target() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dovecot-uidlist");
        fs::write(&target, "3 V1 N1\n").unwrap();
        (dir, target)
    }

    #[test]
    fn held_while_alive_and_removed_on_drop() {
        let (_dir, target) = target();
        let lock = DotLock::acquire(&target, QUICK).unwrap();
        let content = fs::read_to_string(lock_path(&target)).unwrap();
        assert_eq!(content, owner());
        let err = DotLock::acquire(&target, QUICK).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(lock);
        assert!(!lock_path(&target).exists());
        DotLock::acquire(&target, QUICK).unwrap();
    }

    /// Regression (found by `tests/crash_safety.rs`): the lock used to be created empty and
    /// its owner written after, so a SIGKILL between the two left a lock naming nobody that
    /// blocked the restarted server for two minutes. Now the lock's name appears only on a
    /// file that already names its owner, and the draft it was made from goes.
    #[test]
    fn a_lock_names_its_owner_from_its_first_moment_and_leaves_no_draft() {
        let (dir, target) = target();
        let files = || {
            let mut names: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        let lock = DotLock::acquire(&target, QUICK).unwrap();
        assert_eq!(files(), ["dovecot-uidlist", "dovecot-uidlist.lock"]);
        assert_eq!(fs::read_to_string(lock_path(&target)).unwrap(), owner());
        // Refused while held: the refused attempt's draft goes too.
        assert!(DotLock::acquire(&target, QUICK).is_err());
        assert_eq!(files(), ["dovecot-uidlist", "dovecot-uidlist.lock"]);
        drop(lock);
        assert_eq!(files(), ["dovecot-uidlist"]);
    }

    #[test]
    fn a_lock_of_a_live_process_elsewhere_is_respected() {
        let (_dir, target) = target();
        fs::write(lock_path(&target), "1:some-other-host").unwrap();
        assert!(DotLock::acquire(&target, QUICK).is_err());
        // Still there: it was not ours to remove.
        assert!(lock_path(&target).exists());
    }

    #[test]
    fn a_lock_of_a_dead_process_on_this_host_is_taken_over() {
        if !Path::new("/proc/self").exists() || filename::raw_hostname().is_empty() {
            return; // No way to tell a dead process here; covered by the stale time.
        }
        let (_dir, target) = target();
        // Above Linux's largest pid (2^22): no process has it.
        let dead = format!("99999999:{}", filename::raw_hostname());
        fs::write(lock_path(&target), dead).unwrap();
        let lock = DotLock::acquire(&target, QUICK).unwrap();
        drop(lock);
        assert!(!lock_path(&target).exists());
    }

    /// Regression (found by `tests/power_loss.sh`): after a power cut, the pid a lock names
    /// belonged to some live process of the new boot, and the lock held the server up for the
    /// stale time.
    #[test]
    fn a_lock_naming_a_process_younger_than_the_lock_is_taken_over() {
        if !Path::new("/proc/self").exists() || filename::raw_hostname().is_empty() {
            return; // No way to tell a process's age here; covered by the stale time.
        }
        let ((_dir, target), (_dir2, target2)) = (target(), target());
        let mut younger = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep(1)");
        let lock = lock_path(&target);
        fs::write(
            &lock,
            format!("{}:{}", younger.id(), filename::raw_hostname()),
        )
        .unwrap();
        // Made before the process started: its owner was another process with that pid.
        let made = SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(made)
            .unwrap();
        let taken = DotLock::acquire(&target, QUICK);
        // The same live process named by a lock made after it started is respected.
        let started_before = format!("{}:{}", younger.id(), filename::raw_hostname());
        fs::write(lock_path(&target2), started_before).unwrap();
        let respected = DotLock::acquire(&target2, QUICK);
        younger.kill().unwrap();
        younger.wait().unwrap();
        assert!(taken.is_ok(), "{taken:?}");
        assert!(respected.is_err());
    }

    /// Regression (found by `tests/power_loss.sh`): a power cut left a lock empty, its name
    /// linked and its content never written, which named nobody and waited out the stale time.
    #[test]
    fn a_lock_made_before_this_boot_is_taken_over_whatever_it_names() {
        let Some(uptime) = uptime() else {
            return; // No boot clock here; covered by the stale time.
        };
        let (_dir, target) = target();
        let lock = lock_path(&target);
        fs::write(&lock, "").unwrap();
        // Fresh by the stale time's measure (the UID list changed just now), but older
        // than the boot.
        let before_boot = SystemTime::now() - uptime - Duration::from_secs(10);
        File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(before_boot)
            .unwrap();
        let taken = DotLock::acquire(&target, QUICK).expect("taken over at once");
        drop(taken);
        // Made in this boot, the same empty lock is waited for.
        fs::write(&lock, "").unwrap();
        assert!(DotLock::acquire(&target, QUICK).is_err());
    }

    /// Regression (found by `tests/power_loss.sh`): after a power cut the restarted server
    /// had the pid of the one that died, so the locks the cut left named a live process, the
    /// server itself, and held it up for the stale time.
    #[test]
    fn a_lock_naming_this_process_that_it_does_not_hold_is_taken_over() {
        let (_dir, target) = target();
        fs::write(lock_path(&target), owner()).unwrap();
        let lock = DotLock::acquire(&target, QUICK).expect("taken over at once");
        // Held now, it is respected like any held lock, by this process too.
        assert!(DotLock::acquire(&target, QUICK).is_err());
        drop(lock);
        assert!(!lock_path(&target).exists());
    }

    #[test]
    fn a_lock_unchanged_past_the_stale_time_is_taken_over() {
        let (_dir, target) = target();
        let long_ago = SystemTime::now() - Duration::from_secs(600);
        File::options()
            .write(true)
            .open(&target)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        let lock = File::create(lock_path(&target)).unwrap();
        lock.set_modified(long_ago).unwrap();
        DotLock::acquire(&target, QUICK).unwrap();
    }

    #[test]
    fn a_lock_on_a_file_still_changing_is_not_stale() {
        let (_dir, target) = target();
        let lock = File::create(lock_path(&target)).unwrap();
        lock.set_modified(SystemTime::now() - Duration::from_secs(600))
            .unwrap();
        // The UID list itself changed just now: its writer is at work.
        assert!(DotLock::acquire(&target, QUICK).is_err());
    }

    #[test]
    fn a_lock_taken_over_by_another_process_is_left_alone() {
        let (_dir, target) = target();
        let lock = DotLock::acquire(&target, QUICK).unwrap();
        fs::remove_file(lock_path(&target)).unwrap();
        fs::write(lock_path(&target), "1:some-other-host").unwrap();
        drop(lock);
        assert_eq!(
            fs::read_to_string(lock_path(&target)).unwrap(),
            "1:some-other-host"
        );
    }
}
