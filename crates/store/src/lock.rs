//! The data directory's lock: one process at a time.
//!
//! SQLite's own locking lets several processes share a database; chinwag
//! must not (two hubs would each believe they own the mailboxes). The lock is
//! an advisory whole-file lock (`flock` on Unix, `LockFileEx` on Windows) on
//! `lock` in the data directory, taken with `File::try_lock` so that a
//! second daemon is refused at once instead of waiting. The kernel drops it
//! when the holder exits however it exits, `kill -9` included, so there is
//! no stale lock to clean up. The holder writes its process id into the file
//! for the refusal to name.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::StoreError;

/// The lock file's name inside the data directory.
const LOCK_FILE: &str = "lock";

/// A held lock on a data directory, released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// Held open for the lock's lifetime: closing it releases the lock.
    _file: File,
}

impl DirLock {
    /// Creates `dir` if missing and takes its lock, or says who holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let io_error = |source| StoreError::DataDir {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_error)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let holder = file
                    .read_to_string(&mut holder)
                    .ok()
                    .and_then(|_| holder.trim().parse().ok());
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io_error(source)),
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(io_error)?;
        Ok(Self { _file: file })
    }
}
