//! What reliable sessions sent, one row per batch (schema version 13).
//!
//! Every message a reliable session sends is recorded (`SentRecord`: its
//! client id, hub id, time and outcome) in the commit that stores its
//! copies, and kept a day, so that the same message sent again is answered
//! rather than routed twice. A row of `sent` each cost the writer a
//! statement per message, a fifth of its time under `bench direct
//! --reliable`; a batch's records are now one row of `sent_batches`, a
//! blob, and the writer's index finds each sender's newest in it by row
//! and place (`index.rs`). A batch's row goes with the hourly sweep once
//! its records are a day old; deleting an account leaves its records in
//! the batches (a newer account of the same name never reads them: each is
//! older than it, `MailIndex::load`).
//!
//! Each record: `message_id`, `client_id`, `ts_ms` (`u64` little-endian
//! each), `delivered` (`u32`), then the sender's folded nickname and the
//! statuses column (as `sent` has it), each a `u32` length and its UTF-8
//! bytes.

use std::time::{Duration, Instant};

use crate::blob::{self, Reader};
use crate::routed::SentView;
use crate::settling::{self, Blob, Held};

/// How long a batch of sent records stays in the batch log (`logged.rs`)
/// before it is settled as a row of `sent_batches`, if any of its records
/// is still in its sender's window then. Under load a sender's window
/// turns over in well under this, and the batch goes with nothing
/// written.
pub(crate) const SENT_GRACE: Duration = Duration::from_secs(2);

/// The blobs of sent records held in memory at most: past it, the oldest
/// are settled at the next commit, however young.
pub(crate) const MAX_SENT_BYTES: usize = 16 << 20;

/// A batch of sent records held in the writer's memory while it is only
/// in the batch log: its blob, and how many of its records are still in
/// their senders' windows.
#[derive(Debug, Default)]
pub(crate) struct SentBatch {
    blob: Blob,
    /// Its newest record's time (`sent_batches.ts_ms`, for the sweep).
    pub(crate) newest: u64,
}

impl settling::Batch for SentBatch {
    fn blob(&self) -> &Blob {
        &self.blob
    }

    fn blob_mut(&mut self) -> &mut Blob {
        &mut self.blob
    }
}

impl SentBatch {
    /// The batch of `bytes`, with `live` records in windows.
    pub(crate) fn new(bytes: Vec<u8>, live: u32, newest: u64) -> Self {
        Self {
            blob: Blob {
                bytes,
                live,
                ..Blob::default()
            },
            newest,
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.blob.bytes
    }

    pub(crate) fn is_spent(&self) -> bool {
        self.blob.is_spent()
    }
}

/// The batches of sent records held in memory, by row.
#[derive(Debug)]
pub(crate) struct SentBatches {
    held: Held<SentBatch>,
}

impl Default for SentBatches {
    fn default() -> Self {
        Self {
            held: Held::new(MAX_SENT_BYTES),
        }
    }
}

impl SentBatches {
    /// Holds `batch`, of row `row`, until it is settled.
    pub(crate) fn add(&mut self, row: i64, mut batch: SentBatch, now: Instant) {
        batch.blob.due.get_or_insert(now + SENT_GRACE);
        self.held.insert(row, batch);
    }

    pub(crate) fn take(&mut self, row: i64) -> Option<SentBatch> {
        self.held.take(row)
    }

    pub(crate) fn get(&self, row: i64) -> Option<&SentBatch> {
        self.held.get(row)
    }

    pub(crate) fn blob_mut(&mut self, row: i64) -> Option<&mut Blob> {
        self.held.get_mut(row).map(|batch| &mut batch.blob)
    }

    /// One of batch `row`'s records left its window (`undo`: it is back).
    pub(crate) fn release(&mut self, row: i64, undo: bool) {
        self.held.release(row, undo);
    }

    /// The rows to settle now (`all`: every one).
    pub(crate) fn due(&mut self, all: bool, now: Instant) -> Vec<i64> {
        self.held.due(all, now)
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.held.next_due()
    }
}

/// Appends `record`, sent by `sender` (folded), answering where it starts.
pub(crate) fn push(blob: &mut Vec<u8>, sender: &str, record: &SentView<'_>) -> u32 {
    let at = u32::try_from(blob.len()).unwrap_or(u32::MAX);
    for number in [record.message_id, record.client_id, record.ts_ms] {
        blob.extend_from_slice(&number.to_le_bytes());
    }
    blob.extend_from_slice(&record.delivered.to_le_bytes());
    blob::put_str(blob, sender);
    blob::put_str(blob, record.statuses);
    at
}

/// The record that starts at `at` (its `sender` folded, as written), and
/// where the next one starts.
pub(crate) fn read(blob: &[u8], at: usize) -> Option<(SentView<'_>, usize)> {
    let mut reader = Reader::at(blob, at);
    let message_id = reader.u64()?;
    let client_id = reader.u64()?;
    let ts_ms = reader.u64()?;
    let delivered = reader.u32()?;
    let sender = reader.str()?;
    let statuses = reader.str()?;
    let record = SentView {
        sender,
        client_id,
        message_id,
        ts_ms,
        delivered,
        statuses,
    };
    Some((record, reader.position()))
}

/// Every record of a batch with where it starts, in order; a blob that
/// does not read to its end stops where it stops reading.
pub(crate) fn records(blob: &[u8]) -> impl Iterator<Item = (u32, SentView<'_>)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (record, next) = read(blob, at)?;
        let start = u32::try_from(at).ok()?;
        at = next;
        Some((start, record))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(message_id: u64, statuses: &str) -> SentView<'_> {
        SentView {
            sender: "Amy",
            client_id: message_id + 1000,
            message_id,
            ts_ms: 1_700_000_000_000 + message_id,
            delivered: 2,
            statuses,
        }
    }

    #[test]
    fn records_read_back_in_order_and_by_place() {
        let mut blob = Vec::new();
        let first = push(&mut blob, "amy", &view(7, "bob 0 carol 32"));
        let second = push(&mut blob, "amy", &view(8, ""));
        assert_eq!(first, 0);
        let read_back: Vec<_> = records(&blob).collect();
        assert_eq!(read_back.len(), 2);
        assert_eq!(read_back[1].0, second);
        let (record, _) = read(&blob, second as usize).expect("a record at its place");
        assert_eq!(
            (record.sender, record.message_id, record.client_id),
            ("amy", 8, 1008)
        );
        assert_eq!(read_back[0].1.statuses, "bob 0 carol 32");
        assert_eq!(read_back[0].1.delivered, 2);
        // Cut short, the last does not read.
        assert_eq!(records(&blob[..blob.len() - 1]).count(), 1);
    }
}
