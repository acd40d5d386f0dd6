//! Checkpoints, off the writer's thread.
//!
//! In WAL mode a commit appends pages to `chinwag.db-wal`; a checkpoint
//! copies them into `chinwag.db` and fsyncs it, so that the log can start
//! over. SQLite runs one by itself at the end of the commit that takes the
//! log past 1,000 pages, on the committing connection: on the writer, whose
//! group then waits for a copy of 4 MiB and a second fsync. Measured with
//! `chinwag bench store`, that was a fifth of the writer's CPU and the
//! commits of the slowest percent (9 ms against 1 ms for the median).
//!
//! Here the writer's automatic checkpoint is off. A WAL hook records how
//! many pages the log holds after each commit; past [`SOFT_BYTES`] the
//! writer wakes the checkpointer thread, which runs a passive checkpoint on
//! a connection of its own while the writer goes on committing (a passive
//! checkpoint never blocks a writer, and is never blocked by one). The log
//! starts over at the writer's next transaction once a checkpoint has
//! copied all of it. Under a load that never pauses, the writer keeps
//! appending while the checkpointer copies, and the log would never be
//! copied whole; past [`HARD_BYTES`] the writer checkpoints itself (little
//! is left to copy by then), which bounds the log. A checkpoint finds the
//! other's running and gives up at once (SQLite takes its checkpoint lock
//! without waiting), so the writer first waits for the checkpointer's to
//! end (`Turn`): giving up instead, it went on appending through the
//! checkpointer's copy and fsync, and a flood of 4 KB messages took the log
//! to 31 MB.
//!
//! A checkpoint that fails (a full disk) is logged and tried again at the
//! next wake: the commits are in the log, fsync'd, and nothing is lost.

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};
use tracing::{debug, warn};

use crate::StoreError;

/// The log's length past which the checkpointer is woken: SQLite's own
/// threshold for its automatic checkpoint (1,000 pages of 4 KiB).
const SOFT_BYTES: i64 = 4 << 20;

/// The log's length past which the writer checkpoints itself.
const HARD_BYTES: i64 = 16 << 20;

/// How much the log grows between two wake-ups of the checkpointer while it
/// is past [`SOFT_BYTES`]: each checkpoint ends with an fsync of the
/// database, and one a megabyte is plenty.
const WAKE_EVERY_BYTES: i64 = 1 << 20;

thread_local! {
    /// Pages in the log after this thread's last commit, as the WAL hook
    /// reported them. Thread-local because the hook is a plain `fn`: each
    /// store's writer is one thread, and only it commits.
    static LOG_PAGES: Cell<i32> = const { Cell::new(0) };
}

// The signature is rusqlite's for a WAL hook.
#[allow(clippy::unnecessary_wraps)]
fn record_log_pages(_wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    LOG_PAGES.set(pages);
    Ok(())
}

/// Turns the writer connection's automatic checkpoint off and has each
/// commit record the log's length instead (for the thread that commits).
pub(crate) fn take_over(conn: &Connection) {
    conn.wal_hook(Some(record_log_pages));
}

/// Held by whoever checkpoints, the writer or the checkpointer: one waits
/// for the other's to end rather than find SQLite's lock taken.
type Turn = Arc<Mutex<()>>;

/// What the writer does about checkpoints after each commit.
pub(crate) struct Checkpoints {
    wake: SyncSender<()>,
    turn: Turn,
    /// The thresholds above, in pages of this database.
    soft: i32,
    hard: i32,
    every: i32,
    /// The log's length at the last wake-up (0 once it started over).
    woken_at: i32,
}

impl Checkpoints {
    /// Wakes the checkpointer, or checkpoints on `conn`, as the log's
    /// length after the last commit on this thread asks.
    pub(crate) fn after_commit(&mut self, conn: &Connection) {
        let pages = LOG_PAGES.get();
        if pages < self.woken_at {
            self.woken_at = 0;
        }
        if pages >= self.hard {
            let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
            match checkpoint(conn) {
                Ok((log, copied)) => debug!(log, copied, "the writer checkpointed"),
                Err(error) => warn!(%error, "store checkpoint failed"),
            }
            LOG_PAGES.set(0);
        } else if pages >= self.soft && pages >= self.woken_at + self.every {
            self.woken_at = pages;
            match self.wake.try_send(()) {
                // Full: a wake is already pending. Disconnected: the
                // checkpointer is gone, and SQLite checkpoints at close.
                Ok(()) | Err(TrySendError::Full(()) | TrySendError::Disconnected(())) => {}
            }
        }
    }
}

/// A passive checkpoint: answers the log's pages and how many of them are
/// now in the database.
fn checkpoint(conn: &Connection) -> rusqlite::Result<(i32, i32)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

/// Opens the checkpointer's connection and the writer's end of its wake-ups.
pub(crate) fn open(path: &Path) -> Result<(Checkpoints, Checkpointer), StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|conn| {
        // The checkpoint fsyncs the database before the log may start over.
        conn.execute_batch("PRAGMA synchronous = FULL")?;
        Ok(conn)
    })
    .map_err(open_error)?;
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(open_error)?;
    let pages = |bytes: i64| i32::try_from(bytes / page.max(512)).unwrap_or(i32::MAX);
    let (wake, woken) = std::sync::mpsc::sync_channel(1);
    let turn = Turn::default();
    Ok((
        Checkpoints {
            wake,
            turn: Arc::clone(&turn),
            soft: pages(SOFT_BYTES),
            hard: pages(HARD_BYTES),
            every: pages(WAKE_EVERY_BYTES),
            woken_at: 0,
        },
        Checkpointer { conn, woken, turn },
    ))
}

/// The checkpointer thread's state.
pub(crate) struct Checkpointer {
    conn: Connection,
    woken: Receiver<()>,
    turn: Turn,
}

impl Checkpointer {
    /// Checkpoints at every wake-up, until the writer is gone.
    pub(crate) fn run(self) {
        while self.woken.recv().is_ok() {
            let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
            match checkpoint(&self.conn) {
                Ok((log, copied)) => debug!(log, copied, "checkpoint"),
                Err(error) => warn!(%error, "store checkpoint failed"),
            }
        }
    }
}
