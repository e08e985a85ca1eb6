//! The file behind a `PasswdFile`: reading it whole, and noticing that it changed.
//!
//! A change shows in the file's stamp: device and inode (an editor's or an installer's atomic
//! rename makes a new file), size, and modification and status-change times to the
//! nanosecond. A rewrite within one tick of the filesystem's clock (a second on some
//! filesystems) can keep every one of them; so while the file's modification time is that
//! recent, each check reads the content and compares its SHA-256 with the one in use.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::table::Table;

/// How long after its last modification a file's stamp may still miss a rewrite: the
/// coarsest timestamp granularity of common filesystems (FAT's 2 seconds).
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// The file a table was read from, and when to look at it again.
pub(super) struct Source {
    pub(super) path: PathBuf,
    /// Apart from `state` so that a login deciding whether a check is due never waits for a
    /// reload in progress.
    schedule: Mutex<Schedule>,
    /// Held for a whole reload, so that two reloads cannot store their tables out of order.
    state: Mutex<FileState>,
    /// Whether the last automatic check failed: its warning is logged once, not at every check.
    failing: AtomicBool,
}

struct Schedule {
    /// `None`: no automatic checks.
    interval: Option<Duration>,
    /// The clock is Tokio's, so that tests can pause and advance it.
    last: Instant,
}

/// What the table in use was read from.
struct FileState {
    stamp: Stamp,
    digest: [u8; 32],
    /// The file was modified so recently that a rewrite could keep its stamp.
    racy: bool,
    /// The bytes read are not UTF-8, so the table in use is an older file's.
    unusable: bool,
}

/// The metadata a change of the file shows in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    device: u64,
    inode: u64,
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            device: meta.dev(),
            inode: meta.ino(),
            len: meta.size(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A file read whole, with the stamp of the file that was read.
struct Snapshot {
    /// `None` if the file is not UTF-8.
    text: Option<String>,
    state: FileState,
}

impl Snapshot {
    /// Stamps the open file itself, so that the stamp and the bytes belong to the same inode
    /// even if a rename replaces the file meanwhile.
    fn read(path: &Path) -> io::Result<Snapshot> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let racy = meta
            .modified()
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_none_or(|age| age < RACY_WINDOW);
        let digest = Sha256::digest(&bytes).into();
        let text = String::from_utf8(bytes).ok();
        Ok(Snapshot {
            state: FileState {
                stamp: Stamp::of(&meta),
                digest,
                racy,
                unusable: text.is_none(),
            },
            text,
        })
    }
}

/// The table of a file's text, if it is text; `path` names it in warnings.
fn parse(text: Option<&str>, path: &Path) -> io::Result<Table> {
    let table = Table::parse(text.ok_or_else(not_utf8)?, &path.display().to_string());
    tracing::debug!(path = %path.display(), users = table.users.len(), "passwd-file loaded");
    Ok(table)
}

fn not_utf8() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "passwd-file is not UTF-8")
}

impl Source {
    /// Reads the file at `path`; checks are off until [`set_interval`](Source::set_interval).
    pub(super) fn open(path: PathBuf) -> io::Result<(Source, Table)> {
        let snapshot = Snapshot::read(&path)?;
        let table = parse(snapshot.text.as_deref(), &path)?;
        let source = Source {
            path,
            schedule: Mutex::new(Schedule {
                interval: None,
                last: Instant::now(),
            }),
            state: Mutex::new(snapshot.state),
            failing: AtomicBool::new(false),
        };
        Ok((source, table))
    }

    pub(super) fn set_interval(&self, interval: Option<Duration>) {
        lock(&self.schedule).interval = interval;
    }

    /// Whether an automatic check is due; if so, the caller is to make it, and the next one is
    /// due an interval from now.
    pub(super) fn claim_check(&self) -> bool {
        let mut schedule = lock(&self.schedule);
        let Some(interval) = schedule.interval else {
            return false;
        };
        let now = Instant::now();
        if now.duration_since(schedule.last) < interval {
            return false;
        }
        schedule.last = now;
        true
    }

    /// Reads the file again and stores its table in `table` if it changed (or, with `force`,
    /// whatever it holds). On error the table in use stays; a file that is not UTF-8 is an
    /// error until it changes, and is read again only then. Blocking I/O.
    pub(super) fn reload(&self, table: &ArcSwap<Table>, force: bool) -> io::Result<bool> {
        let mut state = lock(&self.state);
        let unchanged = |state: &FileState| match state.unusable {
            true => Err(not_utf8()),
            false => Ok(false),
        };
        if !force {
            let stamp = Stamp::of(&fs::metadata(&self.path)?);
            if stamp == state.stamp && !state.racy {
                return unchanged(&state);
            }
        }
        let Snapshot { text, state: read } = Snapshot::read(&self.path)?;
        let changed = force || read.digest != state.digest;
        *state = read;
        if !changed {
            return unchanged(&state);
        }
        table.store(Arc::new(parse(text.as_deref(), &self.path)?));
        Ok(true)
    }

    /// An automatic check: [`reload`](Source::reload) if the file changed, with what happened
    /// logged. Blocking I/O.
    pub(super) fn check(&self, table: &ArcSwap<Table>) {
        let path = self.path.display();
        match self.reload(table, false) {
            Ok(reloaded) => {
                if reloaded {
                    let users = table.load().users.len();
                    tracing::info!(%path, users, "passwd-file changed on disk and was read again");
                }
                if self.failing.swap(false, Ordering::Relaxed) && !reloaded {
                    tracing::info!(%path, "passwd-file readable again, unchanged");
                }
            }
            Err(error) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %path,
                        %error,
                        "passwd-file changed on disk but cannot be read: the users read before stay in use"
                    );
                }
            }
        }
    }

    /// Records the file's present stamp as the one read, and the file as recently modified:
    /// what a rewrite within one tick of the filesystem's clock leaves behind.
    #[cfg(test)]
    pub(super) fn pretend_same_tick_rewrite(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.stamp = Stamp::of(&fs::metadata(&self.path)?);
        state.racy = true;
        Ok(())
    }
}

/// The data behind these locks stays consistent at every point a panic could occur.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
