//! Making file system changes survive a crash: a rename or a new file is only durable once
//! the directory holding it is synced, and a file is replaced atomically by renaming a synced
//! temporary copy over it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Syncs a directory, making renames, creations and removals in it durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `contents` so that a crash leaves either the old or the new file,
/// never a torn one.
///
/// The temporary file is `<path>.tmp`: callers hold the lock for `path`, so no two writers in
/// this process share it.
pub(super) fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Creates a directory and any missing parents; `Ok(true)` if `dir` itself was created.
pub(super) fn create_dir(dir: &Path) -> io::Result<bool> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(false),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!dir.path().join("f.tmp").exists());
    }
}
