//! Every limit of the store, with its default.

use std::path::PathBuf;
use std::time::Duration;

/// Where the store lives and the limits it keeps.
///
/// `StoreConfig::default()` is the daemon's default: `./chinwag-data`, and
/// the limits below. `docs/durability.md` lists them for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The data directory (the daemon's `--data-dir`), created if missing.
    /// It holds `chinwag.db` (with SQLite's `-wal` and `-shm` beside it)
    /// and `lock`, which one process at a time holds.
    pub data_dir: PathBuf,
    /// Most messages one mailbox holds (default 10,000). A message past it is
    /// answered [`MailboxFull`](crate::StoreOutcome::MailboxFull); the
    /// mailbox takes more once its owner has confirmed some.
    pub mailbox_max_messages: u64,
    /// Most bytes one mailbox holds (default 10 MiB), counted as each
    /// message's [`StoredMessage::stored_bytes`](crate::StoredMessage::stored_bytes).
    pub mailbox_max_bytes: u64,
    /// How old a stored message may grow (default 30 days) before the
    /// sweeper drops it. The store keeps it only as a default for whoever
    /// calls [`MailStore::expire`](crate::MailStore::expire): expiry runs when
    /// it is asked to, never on a timer of its own.
    pub max_age: Duration,
    /// Requests waiting for the writer (default 4,096). Handing over a
    /// request never waits: when this many are queued the request is
    /// refused at once with [`StoreError::Busy`](crate::StoreError::Busy),
    /// which the hub reports as a failed store. A group commit takes a few
    /// milliseconds (one fsync), so a full queue means the disk has fallen
    /// seconds behind; waiting longer would only hide that. What the queued
    /// requests weigh is bounded by whoever hands them over (the hub's
    /// in-flight budget per connection).
    pub write_queue: usize,
    /// Reads waiting for the reader thread (default 256). Reads are rarer
    /// than writes (a login reads its mailbox once); a full queue refuses
    /// with [`StoreError::Busy`](crate::StoreError::Busy) like the writer's.
    pub read_queue: usize,
    /// Most requests one group commit takes (default 1,024). The writer
    /// takes everything queued up to this many into one transaction; the
    /// cap bounds how long the first of them waits for the last, and what
    /// one transaction adds to the write-ahead log.
    pub group_max: usize,
    /// A ceiling on the database file, in bytes (default none: as large as
    /// the disk allows). Past it, writes fail as on a full disk, and can be
    /// raised while running ([`Store::set_max_db_bytes`](crate::Store::set_max_db_bytes)).
    /// The tests use it to fill a "disk" quickly.
    pub max_db_bytes: Option<u64>,
    /// Whether the reliable path's batches (held copies, kept receipts,
    /// sent records, releases) go to the batch log, a log of the store's
    /// own in `batch-log/` (default on: `bench direct --reliable` runs
    /// about 1.2× faster). Off, they are rows of SQLite, as before. A batch log left
    /// by a crash is handed over to the tables at open either way
    /// (`docs/durability.md`, "The batch log").
    pub batch_log: bool,
    /// The batch log's segment files, in bytes (default 16 MiB): each is
    /// written over once nothing in it is needed.
    pub batch_log_segment_bytes: u64,
}

/// The default data directory, relative to the daemon's working directory.
pub const DEFAULT_DATA_DIR: &str = "chinwag-data";

impl StoreConfig {
    /// The defaults, in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            mailbox_max_messages: 10_000,
            mailbox_max_bytes: 10 * 1024 * 1024,
            max_age: Duration::from_secs(30 * 24 * 60 * 60),
            write_queue: 4_096,
            read_queue: 256,
            group_max: 1_024,
            max_db_bytes: None,
            batch_log: true,
            batch_log_segment_bytes: 16 << 20,
        }
    }

    /// The database file's path inside the data directory.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::new(DEFAULT_DATA_DIR)
    }
}

/// The database's file name inside the data directory.
pub(crate) const DB_FILE: &str = "chinwag.db";
