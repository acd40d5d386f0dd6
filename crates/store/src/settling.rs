//! What the journal (`journal.rs`) and the receipt log (`receipt_log.rs`)
//! share: batches held in the writer's memory, each one row on disk, with
//! a count of their items still needed, and which of them to settle at a
//! commit.

use std::collections::BTreeMap;
use std::time::Instant;

/// A batch's blob (its row's, item after item) and its counts.
#[derive(Debug, Default)]
pub(crate) struct Blob {
    pub(crate) bytes: Vec<u8>,
    /// When it is to be settled (set as it is held).
    pub(crate) due: Option<Instant>,
    /// Its items still needed. At 0 the batch is deleted at the next
    /// commit.
    pub(crate) live: u32,
    /// The rows of the release log (`release_log.rs`) that name its items
    /// needed no more: each is told when the batch goes.
    pub(crate) releases: Vec<i64>,
    /// The batch log's segment that holds it (`batch_log/`), once its
    /// group has committed there (0: it is a row of SQLite).
    pub(crate) segment: u64,
}

impl Blob {
    /// Whether none of its items is needed any more.
    pub(crate) fn is_spent(&self) -> bool {
        self.live == 0
    }

    /// One of its items is needed no more (`undo`: it is again).
    pub(crate) fn release(&mut self, undo: bool) {
        if undo {
            self.live += 1;
        } else {
            self.live = self.live.saturating_sub(1);
        }
    }
}

/// A batch of either kind.
pub(crate) trait Batch {
    fn blob(&self) -> &Blob;
    fn blob_mut(&mut self) -> &mut Blob;
}

/// The batches held, by row, oldest first, and their totals.
#[derive(Debug)]
pub(crate) struct Held<B> {
    batches: BTreeMap<i64, B>,
    /// Their blobs' bytes.
    bytes: usize,
    /// Batches that were spent when last looked at, to delete (a hint:
    /// each is looked at again).
    spent: Vec<i64>,
    /// What their blobs may come to at most before the oldest are
    /// settled, however young.
    max_bytes: usize,
}

impl<B: Batch> Held<B> {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            batches: BTreeMap::new(),
            bytes: 0,
            spent: Vec::new(),
            max_bytes,
        }
    }

    /// Holds `batch`, written to row `row`, until it is settled.
    pub(crate) fn insert(&mut self, row: i64, batch: B) {
        let blob = batch.blob();
        self.bytes += blob.bytes.len();
        if blob.is_spent() {
            self.spent.push(row);
        }
        if let Some(old) = self.batches.insert(row, batch) {
            self.bytes -= old.blob().bytes.len();
        }
    }

    /// Takes out batch `row`.
    pub(crate) fn take(&mut self, row: i64) -> Option<B> {
        let batch = self.batches.remove(&row)?;
        self.bytes -= batch.blob().bytes.len();
        Some(batch)
    }

    pub(crate) fn get(&self, row: i64) -> Option<&B> {
        self.batches.get(&row)
    }

    /// One of batch `row`'s items is needed no more (`undo`: it is again).
    pub(crate) fn release(&mut self, row: i64, undo: bool) {
        let Some(blob) = self.batches.get_mut(&row).map(B::blob_mut) else {
            return;
        };
        blob.release(undo);
        if !undo && blob.is_spent() {
            self.spent.push(row);
        }
    }

    pub(crate) fn get_mut(&mut self, row: i64) -> Option<&mut B> {
        self.batches.get_mut(&row)
    }

    /// The rows to settle now, in order: `all`, every one; otherwise those
    /// spent, those due, and the oldest while their blobs are past
    /// `max_bytes`.
    pub(crate) fn due(&mut self, all: bool, now: Instant) -> Vec<i64> {
        let mut rows: Vec<i64> = (self.spent.drain(..))
            .filter(|row| (self.batches.get(row)).is_some_and(|batch| batch.blob().is_spent()))
            .collect();
        let mut over = self.bytes.saturating_sub(self.max_bytes);
        for (&row, batch) in &self.batches {
            let blob = batch.blob();
            let late = blob.due.is_some_and(|due| due <= now);
            if !(all || late || over > 0) {
                break;
            }
            over = over.saturating_sub(blob.bytes.len());
            rows.push(row);
        }
        rows.sort_unstable();
        rows.dedup();
        rows
    }

    /// When the oldest batch is due, if any is held (a spent one goes with
    /// the next commit, whenever that is: not worth a commit of its own).
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.batches
            .values()
            .next()
            .and_then(|batch| batch.blob().due)
    }
}
