//! The store's error.

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

/// Why the store could not open, take a request, or carry it out.
///
/// A logical refusal of a stored message (a full mailbox, no such account)
/// is not an error but a [`StoreOutcome`](crate::StoreOutcome).
#[derive(Debug, Error)]
pub enum StoreError {
    /// Another process (or another `Store` in this one) holds the data
    /// directory's lock.
    #[error("data directory {} is in use by another chinwag{}", dir.display(), holder_note(*holder))]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The process id the holder wrote into the lock file, if readable.
        holder: Option<u32>,
    },
    /// The data directory or its lock file could not be created or opened.
    #[error("cannot use data directory {}", dir.display())]
    DataDir {
        /// The data directory.
        dir: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or set up (journal mode, pragmas).
    #[error("cannot open database {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database schema")]
    Migrate(#[from] rusqlite_migration::Error),
    /// The store's threads could not be started.
    #[error("cannot start the store's threads")]
    Spawn(#[source] std::io::Error),
    /// The store's queue is full; the request was not taken (see
    /// [`StoreConfig::write_queue`](crate::StoreConfig::write_queue)).
    #[error("store queue full")]
    Busy,
    /// The store's threads have stopped; nothing more will be answered.
    #[error("store closed")]
    Closed,
    /// SQLite failed (disk full, I/O error). For a write, the whole
    /// transaction it was part of was rolled back: nothing of it is stored.
    /// The store goes on taking requests.
    #[error("store failed")]
    Failed(#[source] Arc<rusqlite::Error>),
    /// An account by that name exists already.
    #[error("account exists")]
    AccountExists,
    /// No account by that name.
    #[error("no such account")]
    NoSuchAccount,
    /// A number the store cannot hold: SQLite's integers are signed 64-bit,
    /// so ids and times must be below 2^63.
    #[error("{0} out of range (must be below 2^63)")]
    OutOfRange(&'static str),
}

fn holder_note(holder: Option<u32>) -> String {
    holder.map_or_else(String::new, |pid| format!(" (pid {pid})"))
}

impl StoreError {
    /// Whether this is a failure of the store itself (full queue, closed,
    /// SQLite error): what the hub reports as `STORE_FAILED`.
    pub fn is_store_failure(&self) -> bool {
        matches!(self, Self::Busy | Self::Closed | Self::Failed(_))
    }
}
