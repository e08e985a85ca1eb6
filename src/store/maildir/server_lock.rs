//! One server per Maildir tree: [`ServerLock`], an exclusive advisory lock (`flock`) on
//! `<root>/.tower-mail-server.lock`, which a server takes at start and holds while it runs.
//!
//! Why refuse rather than share: the store writes the UID lists, keyword files and
//! mod-sequence files under Dovecot's dot-locks, re-reading them under the lock, so other
//! writers (Dovecot, an MDA, a second `Maildir` in a tool) lose nothing; but a server also
//! keeps state that lives in its memory only: the POP3 maildrop lock, the sessions told of a
//! change (IDLE, `\Recent`), and its cache of each folder, which it trusts while the UID
//! list's length, time and inode are unchanged (an inode freed and reused within one clock
//! tick would pass for unchanged). Two servers on one tree would each miss the other's
//! sessions; one refuses to start instead.
//!
//! The kernel releases the lock when its holder exits in any way, SIGKILL included, so a
//! crash never leaves a lock that blocks the next start. The file holds the holder's process
//! id, which the refusal names.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in the root. The leading dot keeps it apart from user directories,
/// whose names cannot start with one.
pub(super) const FILE_NAME: &str = ".tower-mail-server.lock";

/// The claim of one process on a Maildir tree, from [`Maildir::lock_for_server`]; the tree
/// is free for another server once this is dropped or the process ends.
///
/// [`Maildir::lock_for_server`]: super::Maildir::lock_for_server
pub struct ServerLock {
    /// Held open: closing it releases the lock.
    _file: File,
    path: PathBuf,
}

impl ServerLock {
    /// Takes the lock on `root` (created if missing), or fails at once with
    /// `ErrorKind::WouldBlock` and a message naming the holder's process id.
    pub(super) fn acquire(root: &Path) -> io::Result<ServerLock> {
        fs::create_dir_all(root)?;
        let path = root.join(FILE_NAME);
        // Not truncated on open: until the lock is ours, the file names the holder.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // A holder that has not written its id yet is named as unknown.
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "unknown".to_owned(),
                    pid => pid.to_owned(),
                };
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{} is in use by another server (process {holder}, holding {}); \
                         one server per Maildir tree",
                        root.display(),
                        path.display()
                    ),
                ));
            }
            Err(TryLockError::Error(err)) => return Err(err),
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        Ok(ServerLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for ServerLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerLock")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let root = tempfile::tempdir().unwrap();
        let tree = root.path().join("maildir");
        let first = ServerLock::acquire(&tree).unwrap();
        // flock locks belong to an open file, so a second open in this process conflicts
        // as another process's would.
        let refused = ServerLock::acquire(&tree).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::WouldBlock);
        let text = refused.to_string();
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(&tree.display().to_string()), "{text}");
        drop(first);
        let again = ServerLock::acquire(&tree).unwrap();
        assert_eq!(again.path(), tree.join(FILE_NAME));
    }
}
