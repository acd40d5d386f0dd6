//! What the store's writer keeps in the batch log (`batch_log/`), and how
//! a store that opens hands what a crash left there over to the tables.
//!
//! With [`StoreConfig::batch_log`](crate::StoreConfig::batch_log) on, a
//! group commit writes its journal batch (held copies), its receipt log
//! batch, its sent records and its release log row to the batch log as
//! entries, instead of as rows of `journal`, `receipt_batches`,
//! `sent_batches` and `releases`: the same blobs,
//! keyed by the same rows, one frame and one `fdatasync` for the group,
//! before SQLite's `COMMIT` (which, for a group that wrote nothing else,
//! writes nothing). Every frame also carries the highest message id the
//! writer has stored, so that the log's newest frame always has it.
//!
//! A batch holds its segment of the log until it is settled (its copies
//! or receipts still needed written as rows, or its sent records still in
//! their senders' windows as the row of `sent_batches`, in a commit that
//! also raises `batch_log_journal`, `batch_log_receipts` or
//! `batch_log_sent` in `hub_state` to its row) or needed no more (each of
//! its items released, which the release log's entries say, or each of
//! its sent records out of its window). Batches are settled oldest first, so those two
//! marks say which batches of the log recovery must leave alone.
//!
//! A store that opens reads the log's groups after `batch_log_lsn`, and
//! writes their entries into the tables they would have been rows of
//! (batches past the marks only), with `batch_log_lsn` raised to the last
//! group's, in one transaction. The tables' own recovery then does the
//! rest, exactly as for rows written there (`journal::recover`,
//! `receipt_log::recover`). So the log is read at most once: a crash
//! during the hand-over leaves it to be done again.

use std::io;
use std::path::Path;

use rusqlite::{Connection, params};
use tracing::warn;

use crate::batch_log::{BatchLog, Committed, Group};
use crate::journal::Batch;
use crate::sent_log;

/// A batch of the journal (`journal.rs`), keyed by its row.
pub(crate) const JOURNAL: u8 = 1;
/// A batch of the receipt log (`receipt_log.rs`), keyed by its row.
pub(crate) const RECEIPTS: u8 = 2;
/// A row of the release log (`release_log.rs`), keyed by its row.
pub(crate) const RELEASES: u8 = 3;
/// The highest message id stored so far, as the key (no bytes).
pub(crate) const LAST_ID: u8 = 4;
/// A batch of sent records (`sent_log.rs`), keyed by its row.
pub(crate) const SENT: u8 = 6;
/// The group wrote to the tables too (no key, no bytes): it counts only if
/// its transaction committed, which `batch_log_sql` says.
pub(crate) const WITH_TABLES: u8 = 5;

/// The batch log's directory inside the data directory.
pub(crate) const DIR: &str = "batch-log";

/// The writer's side of the batch log.
#[derive(Debug)]
pub(crate) struct Logged {
    log: BatchLog,
    /// The highest message id stored, written with every frame.
    last_id: u64,
}

/// What [`recover`] handed over: the rows the journal's batches, the
/// receipt log's and the sent records' must start after.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Recovered {
    pub(crate) journal: i64,
    pub(crate) receipts: i64,
    pub(crate) sent: i64,
}

impl Logged {
    /// Stages a batch's blob (`kind` [`JOURNAL`], [`RECEIPTS`], [`SENT`] or
    /// [`RELEASES`]) in the group's frame. Batches hold their segment; the
    /// release log's rows do not (they are needed only while the batches
    /// they name are, which come before them).
    pub(crate) fn stage(&mut self, kind: u8, row: i64, blob: &[u8]) {
        let holds = kind != RELEASES;
        self.log.stage(kind, key(row), blob, holds);
    }

    /// Message `id` was stored (the frame carries the highest).
    pub(crate) fn note_id(&mut self, id: u64) {
        self.last_id = self.last_id.max(id);
    }

    /// Whether the group's frame is to be written: it has entries, or
    /// segments were retired since the last.
    pub(crate) fn has_frame(&self) -> bool {
        self.log.has_staged() || self.log.has_retired()
    }

    /// Marks the group's frame as one of a group that also wrote to the
    /// tables, in its transaction: recovery takes the frame only if that
    /// transaction committed. Called before [`commit`](Self::commit), only
    /// if [`has_frame`](Self::has_frame).
    pub(crate) fn with_tables(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        conn.prepare_cached("UPDATE hub_state SET value = ?1 WHERE key = 'batch_log_sql'")?
            .execute([self.log.last_lsn() + 1])?;
        self.log.stage(WITH_TABLES, 0, &[], false);
        Ok(())
    }

    /// Writes the group's frame, if it has one, and waits for it to be on
    /// disk.
    pub(crate) fn commit(&mut self) -> io::Result<Option<Committed>> {
        if self.has_frame() {
            self.log.stage(LAST_ID, self.last_id, &[], false);
        }
        self.log.commit()
    }

    /// Takes back the last commit (SQLite's part of the group failed).
    pub(crate) fn revoke(&mut self, committed: Committed) {
        if let Err(error) = self.log.revoke(committed) {
            warn!(%error, "could not take back a group of the batch log: a crash before the next may recover it");
        }
    }

    /// Forgets what the group staged (it failed before its commit).
    pub(crate) fn discard(&mut self) {
        self.log.discard();
    }

    /// A batch the log held is settled or needed no more, and that has
    /// committed.
    pub(crate) fn release(&mut self, segment: u64) {
        self.log.release(segment);
    }

    /// The last group on disk (for the mark a clean close leaves).
    pub(crate) fn last_lsn(&self) -> u64 {
        self.log.last_lsn()
    }
}

/// Opens the batch log in `data_dir` (if it is there, or `writing`: the
/// store is to write to it), and hands over to the tables what it holds
/// that they do not ([`Recovered`]). `None` for the writer when it is not
/// `writing`.
pub(crate) fn recover(
    data_dir: &Path,
    segment_bytes: u64,
    conn: &Connection,
    writing: bool,
) -> io::Result<(Option<Logged>, Recovered)> {
    let dir = data_dir.join(DIR);
    if !writing && !dir.exists() {
        return Ok((None, marks(conn).map_err(io::Error::other)?));
    }
    let (log, groups) = BatchLog::open(&dir, segment_bytes)?;
    let (last_id, recovered) =
        hand_over(conn, &groups, log.last_lsn()).map_err(io::Error::other)?;
    let logged = writing.then_some(Logged { log, last_id });
    Ok((logged, recovered))
}

/// Writes the entries of `groups` past `batch_log_lsn` into the tables, and
/// raises it to `last_lsn`: the highest message id stored, and the marks
/// the batches must be numbered after. With no group past it, writes
/// nothing.
fn hand_over(
    conn: &Connection,
    groups: &[Group],
    last_lsn: u64,
) -> rusqlite::Result<(u64, Recovered)> {
    let recovered = marks(conn)?;
    let handed: u64 = mark(conn, "batch_log_lsn")?;
    let mut last_id: u64 = mark(conn, "last_message_id")?;
    if groups.iter().all(|group| group.lsn <= handed) {
        return Ok((last_id, recovered));
    }
    let tx = conn.unchecked_transaction()?;
    let (journal, receipts, sent) = (recovered.journal, recovered.receipts, recovered.sent);
    let with_tables: u64 = mark(&tx, "batch_log_sql")?;
    let (mut batches, mut releases) = (0_u64, 0_u64);
    // A group whose writes to the tables did not commit did not commit at
    // all: it was answered as failed, or not answered.
    let committed = |group: &&Group| {
        group.lsn <= with_tables
            || group
                .entries
                .iter()
                .all(|(kind, _, _)| *kind != WITH_TABLES)
    };
    for group in groups
        .iter()
        .filter(|group| group.lsn > handed)
        .filter(committed)
    {
        for (kind, key, bytes) in &group.entries {
            match *kind {
                JOURNAL if key_row(*key) > journal => {
                    let newest = Batch::from_blob(bytes.clone())
                        .and_then(|batch| batch.copies().map(|(_, copy)| copy.ts_ms).max())
                        .unwrap_or(0);
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO journal (seq, ts_ms, copies) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![*key, newest, bytes])?;
                    batches += 1;
                }
                RECEIPTS if key_row(*key) > receipts => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO receipt_batches (seq, receipts) VALUES (?1, ?2)",
                    )?
                    .execute(params![*key, bytes])?;
                    batches += 1;
                }
                RELEASES => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO releases (seq, items) VALUES (?1, ?2)",
                    )?
                    .execute(params![*key, bytes])?;
                    releases += 1;
                }
                SENT if key_row(*key) > sent => {
                    let newest = sent_log::records(bytes)
                        .map(|(_, record)| record.ts_ms)
                        .max()
                        .unwrap_or(0);
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO sent_batches (seq, ts_ms, records) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![*key, newest, bytes])?;
                    batches += 1;
                }
                LAST_ID => last_id = last_id.max(*key),
                _ => {}
            }
        }
    }
    raise(&tx, "batch_log_lsn", last_lsn)?;
    raise(&tx, "last_message_id", last_id)?;
    tx.commit()?;
    if batches > 0 {
        warn!(
            batches,
            releases, "batches a crash left in the batch log were handed to the tables"
        );
    }
    Ok((last_id, recovered))
}

/// The rows the journal's and the receipt log's batches must start after:
/// past every one settled from the log.
fn marks(conn: &Connection) -> rusqlite::Result<Recovered> {
    Ok(Recovered {
        journal: mark(conn, "batch_log_journal")?,
        receipts: mark(conn, "batch_log_receipts")?,
        sent: mark(conn, "batch_log_sent")?,
    })
}

/// Raises mark `key` (`batch_log_journal`, `batch_log_receipts`,
/// `batch_log_sent`) to `row`: the batch `row` is settled, in this
/// transaction.
pub(crate) fn settled(conn: &Connection, key: &str, row: i64) -> rusqlite::Result<()> {
    raise(conn, key, row)
}

/// Leaves the mark of a clean close: every group of the log is in the
/// tables or needed no more, so the next open reads none.
pub(crate) fn closed(conn: &Connection, last_lsn: u64) -> rusqlite::Result<()> {
    raise(conn, "batch_log_lsn", last_lsn)
}

/// The value of `hub_state`'s `key`.
fn mark<T: rusqlite::types::FromSql>(conn: &Connection, key: &str) -> rusqlite::Result<T> {
    conn.prepare_cached("SELECT value FROM hub_state WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
}

/// Raises `hub_state`'s `key` to at least `value`.
fn raise(conn: &Connection, key: &str, value: impl rusqlite::ToSql) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE hub_state SET value = max(value, ?2) WHERE key = ?1")?
        .execute(params![key, value])?;
    Ok(())
}

/// A log entry's key as the row it stands for.
fn key_row(key: u64) -> i64 {
    i64::try_from(key).unwrap_or(i64::MAX)
}

/// The batch log's failure, as the store reports a failed write: SQLite's
/// own codes for a full disk and an I/O error, with what the file system
/// said.
pub(crate) fn failure(error: &io::Error) -> rusqlite::Error {
    let code = if error.kind() == io::ErrorKind::StorageFull {
        rusqlite::ffi::SQLITE_FULL
    } else {
        rusqlite::ffi::SQLITE_IOERR
    };
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(code),
        Some(format!("batch log: {error}")),
    )
}

/// A row as the log's key (rows are positive).
fn key(row: i64) -> u64 {
    u64::try_from(row).unwrap_or(0)
}
