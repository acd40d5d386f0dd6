//! Receipts kept for their owners, one row per group commit.
//!
//! When a recipient confirms a message whose sender asked for receipts and
//! has an account, the sender is owed a receipt until it confirms it in
//! turn (`CONFIRM_RECEIPTS`): a reliable session does within milliseconds
//! when it is online, a sender offline at its next login. Each was first
//! kept pending in memory on its message's copy, which stayed on disk;
//! one still waiting after a quarter of a second was a row of `receipts`
//! appended, then deleted again at its confirmation. Under load nearly
//! every receipt waited longer than that (a sender's confirmations queue
//! behind its own traffic), and those two statements, with the pending
//! receipts' bookkeeping, were two fifths of the writer's time
//! (`docs/performance.md`, the session of the receipt batches).
//!
//! Here the receipts a group commit keeps are one row of `receipt_batches`
//! (schema version 14), a blob written in the same commit, and the message's
//! copy goes at once (a crash does not deliver it again). The writer keeps
//! the blob in memory with a count of the receipts still owed: a
//! confirmation writes nothing, and a batch none of whose receipts is owed
//! any more is deleted by the next commit. A batch still owed receipts
//! after [`RECEIPT_GRACE`] (or while the batches in memory are past
//! [`MAX_RECEIPT_BYTES`], or as the store closes, sweeps or deletes an
//! account) is settled in one commit: each receipt still owed becomes a row
//! of `receipts`, and the batch's row is deleted. Which receipts of a
//! batch on disk were confirmed is in the release log (`release_log.rs`),
//! written in the commit of their confirmation. A store that opens with
//! rows here (it crashed) writes every receipt in them that the release
//! log does not name to `receipts` ([`recover`]) before it builds its
//! index. (One whose confirmation was not committed yet is sent again, and
//! the client library, which remembers the receipts it handed over, does
//! not hand it over twice.)
//!
//! The blob is the receipts one after another, each: `message_id` and
//! `received_ms` (`u64` little-endian each), then the owner's folded
//! nickname and the recipient's name as the receipt shows it, each a `u32`
//! little-endian length and its UTF-8 bytes.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use tracing::warn;

use crate::blob::{self, Reader};
use crate::release_log::{Kind, Released};
use crate::settling::{self, Blob, Held};

/// How long a batch of receipts stays in memory before the receipts still
/// owed in it are written to `receipts`.
pub(crate) const RECEIPT_GRACE: Duration = Duration::from_secs(2);

/// The batches' blobs in memory at most: past it, the oldest are settled at
/// the next commit, however young.
pub(crate) const MAX_RECEIPT_BYTES: usize = 16 << 20;

/// One receipt, as a batch has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchedReceipt<'a> {
    /// Its owner's folded nickname.
    pub(crate) owner: &'a str,
    pub(crate) message_id: u64,
    /// The recipient who confirmed, as the receipt shows it.
    pub(crate) recipient: &'a str,
    pub(crate) received_ms: u64,
}

/// One batch: its blob, and its receipts still owed and those confirmed
/// (a crash before it is deleted sends them again).
#[derive(Debug, Default)]
pub(crate) struct ReceiptBatch {
    blob: Blob,
}

impl settling::Batch for ReceiptBatch {
    fn blob(&self) -> &Blob {
        &self.blob
    }

    fn blob_mut(&mut self) -> &mut Blob {
        &mut self.blob
    }
}

impl ReceiptBatch {
    /// Appends a receipt, answering where it starts in the blob.
    fn push(&mut self, receipt: &BatchedReceipt<'_>) -> u32 {
        let blob = &mut self.blob.bytes;
        let at = u32::try_from(blob.len()).unwrap_or(u32::MAX);
        self.blob.live += 1;
        for number in [receipt.message_id, receipt.received_ms] {
            blob.extend_from_slice(&number.to_le_bytes());
        }
        blob::put_str(blob, receipt.owner);
        blob::put_str(blob, receipt.recipient);
        at
    }

    /// Whether none of its receipts is owed any more.
    pub(crate) fn is_spent(&self) -> bool {
        self.blob.is_spent()
    }

    /// The release log's rows that name its receipts confirmed.
    pub(crate) fn releases(&self) -> &[i64] {
        &self.blob.releases
    }

    /// Every receipt with where it starts, in the order kept; a blob cut
    /// short or not UTF-8 ends the list where it stops reading.
    pub(crate) fn receipts(&self) -> impl Iterator<Item = (u32, BatchedReceipt<'_>)> {
        receipts(&self.blob.bytes)
    }
}

/// The receipts of a batch's blob, each with where it starts.
fn receipts(blob: &[u8]) -> impl Iterator<Item = (u32, BatchedReceipt<'_>)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = u32::try_from(at).ok()?;
        let mut reader = Reader::at(blob, at);
        let message_id = reader.u64()?;
        let received_ms = reader.u64()?;
        let owner = reader.str()?;
        let recipient = reader.str()?;
        at = reader.position();
        let receipt = BatchedReceipt {
            owner,
            message_id,
            recipient,
            received_ms,
        };
        Some((start, receipt))
    })
}

/// The batches in the writer's memory, by row, oldest first, and the one
/// the current group commit fills.
#[derive(Debug)]
pub(crate) struct ReceiptLog {
    held: Held<ReceiptBatch>,
    /// The batch the current group fills, and its row, if it kept any.
    open: Option<(i64, ReceiptBatch)>,
    /// The row the next batch is written to.
    next_row: i64,
}

impl Default for ReceiptLog {
    fn default() -> Self {
        Self::after(0)
    }
}

impl ReceiptLog {
    /// An empty log whose rows start after `last_row`.
    pub(crate) fn after(last_row: i64) -> Self {
        Self {
            held: Held::new(MAX_RECEIPT_BYTES),
            open: None,
            next_row: last_row.saturating_add(1),
        }
    }

    /// Keeps `receipt` in the current group's batch, answering its row and
    /// where it starts, and whether this opened the batch.
    pub(crate) fn keep(&mut self, receipt: &BatchedReceipt<'_>) -> (i64, u32, bool) {
        let opened = self.open.is_none();
        let next_row = &mut self.next_row;
        let (row, batch) = self.open.get_or_insert_with(|| {
            let row = *next_row;
            *next_row = next_row.saturating_add(1);
            (row, ReceiptBatch::default())
        });
        (*row, batch.push(receipt), opened)
    }

    /// Ends the current group's batch: answers its row and blob, to write
    /// in the group's transaction, unless it kept nothing or everything in
    /// it is confirmed already (then it is dropped).
    pub(crate) fn close(&mut self, now: Instant) -> Option<(i64, &[u8])> {
        let (row, mut batch) = self.open.take()?;
        if batch.is_spent() {
            return None;
        }
        batch.blob.due = Some(now + RECEIPT_GRACE);
        self.held.insert(row, batch);
        Some((row, &self.held.get(row)?.blob.bytes))
    }

    /// Forgets batch `row` (its group was rolled back): whether open or
    /// written.
    pub(crate) fn drop_batch(&mut self, row: i64) {
        if self.open.as_ref().is_some_and(|(open, _)| *open == row) {
            self.open = None;
        } else {
            self.held.take(row);
        }
    }

    /// Takes out batch `row` to settle it.
    pub(crate) fn take(&mut self, row: i64) -> Option<ReceiptBatch> {
        self.held.take(row)
    }

    /// Puts back batch `row`, taken out by a group that was rolled back.
    pub(crate) fn put_back(&mut self, row: i64, batch: ReceiptBatch) {
        self.held.insert(row, batch);
    }

    /// One of batch `row`'s receipts is owed no more (`undo`: it is again),
    /// whether in the batch being filled or one written before.
    pub(crate) fn release(&mut self, row: i64, undo: bool) {
        match &mut self.open {
            Some((open, batch)) if *open == row => batch.blob.release(undo),
            _ => self.held.release(row, undo),
        }
    }

    /// Written batch `row`'s blob and counts, if it is held.
    pub(crate) fn blob_mut(&mut self, row: i64) -> Option<&mut Blob> {
        self.held.get_mut(row).map(|batch| &mut batch.blob)
    }

    /// The written rows to settle now, in order: `all`, every one;
    /// otherwise those spent, those due, and the oldest while the log is
    /// past [`MAX_RECEIPT_BYTES`].
    pub(crate) fn due(&mut self, all: bool, now: Instant) -> Vec<i64> {
        self.held.due(all, now)
    }

    /// When the oldest written batch is due, if any is held.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.held.next_due()
    }
}

/// Writes every receipt in `receipt_batches` to `receipts` and empties the
/// table, in one transaction: the store crashed with batches not yet
/// settled. A receipt `released` names (confirmed before the crash) is
/// left out, and so is one whose owner's account is gone. Answers the last
/// row, which new batches follow.
pub(crate) fn recover(conn: &Connection, released: &Released) -> rusqlite::Result<i64> {
    let tx = conn.unchecked_transaction()?;
    let last_row: i64 = tx.query_row(
        "SELECT coalesce(max(seq), 0) FROM receipt_batches",
        [],
        |row| row.get(0),
    )?;
    let mut recovered = 0_u64;
    let mut confirmed = 0_u64;
    {
        let mut rows = tx.prepare("SELECT seq, receipts FROM receipt_batches ORDER BY seq")?;
        let mut account = tx.prepare_cached("SELECT 1 FROM accounts WHERE nick_folded = ?1")?;
        let mut insert = tx.prepare_cached(crate::queries::INSERT_RECEIPT)?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            for (at, receipt) in receipts(row.get_ref(1)?.as_blob()?) {
                if released.has(Kind::Receipt, seq, at) {
                    confirmed += 1;
                } else if account.exists([receipt.owner])? {
                    insert.execute(rusqlite::params![
                        receipt.owner,
                        receipt.message_id,
                        receipt.recipient,
                        receipt.received_ms
                    ])?;
                    recovered += 1;
                }
            }
        }
    }
    tx.execute("DELETE FROM receipt_batches", [])?;
    tx.commit()?;
    if recovered > 0 {
        warn!(
            recovered,
            confirmed,
            "receipts not settled when the store last stopped were kept as rows (those confirmed left out)"
        );
    }
    Ok(last_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(message_id: u64) -> BatchedReceipt<'static> {
        BatchedReceipt {
            owner: "alice",
            message_id,
            recipient: "Bob",
            received_ms: 1_700_000_000_000 + message_id,
        }
    }

    #[test]
    fn a_batch_reads_back_what_it_kept_and_stops_at_a_cut() {
        let mut log = ReceiptLog::after(0);
        let (row, first, opened) = log.keep(&receipt(1));
        assert!(opened);
        let (same_row, second, opened) = log.keep(&receipt(2));
        assert_eq!((same_row, opened), (row, false));
        let (_, blob) = log.close(Instant::now()).unwrap();
        let read: Vec<_> = receipts(blob).collect();
        assert_eq!(read, vec![(first, receipt(1)), (second, receipt(2))]);
        let cut = &blob[..blob.len() - 1];
        assert_eq!(receipts(cut).count(), 1);
    }

    #[test]
    fn a_batch_confirmed_before_it_is_written_is_not_written() {
        let mut log = ReceiptLog::after(7);
        let (row, _, _) = log.keep(&receipt(1));
        assert_eq!(row, 8);
        log.release(row, false);
        assert!(log.close(Instant::now()).is_none());
        assert!(log.due(true, Instant::now()).is_empty());
        // The next group's batch takes the next row all the same.
        assert_eq!(log.keep(&receipt(2)).0, 9);
    }

    #[test]
    fn batches_come_due_when_spent_late_or_past_the_bounds() {
        let now = Instant::now();
        let mut log = ReceiptLog::after(0);
        let (first, _, _) = log.keep(&receipt(1));
        log.close(now).unwrap();
        let (second, _, _) = log.keep(&receipt(2));
        log.close(now).unwrap();
        assert!(log.due(false, now).is_empty());
        assert_eq!(log.next_due(), Some(now + RECEIPT_GRACE));
        log.release(second, false);
        assert_eq!(log.due(false, now), vec![second]);
        assert_eq!(log.due(false, now + RECEIPT_GRACE), vec![first, second]);
        assert_eq!(log.due(true, now), vec![first, second]);
        // However many receipts are confirmed, a batch with one still
        // owed waits for its grace (the release log says which were).
        let mut log = ReceiptLog::after(0);
        let (row, _, _) = log.keep(&receipt(1));
        log.keep(&receipt(2));
        log.release(row, false);
        log.close(now).unwrap();
        let (young, _, _) = log.keep(&receipt(0));
        log.close(now).unwrap();
        assert!(log.due(false, now).is_empty());
        let taken = log.take(row).unwrap();
        assert!(!taken.is_spent());
        log.put_back(row, taken);
        log.release(row, false);
        assert_eq!(log.due(false, now), vec![row]);
        log.drop_batch(young);
        assert_eq!(log.next_due(), Some(now + RECEIPT_GRACE));
    }
}
