//! What the journal (`journal.rs`) and the receipt log (`receipt_log.rs`)
//! share: batches held in the writer's memory, each one row on disk, and
//! which of them to settle at a commit.

use std::time::Instant;

/// A batch held, as the choice of which to settle sees it.
pub(crate) struct Seen {
    pub(crate) row: i64,
    /// Its blob's bytes.
    pub(crate) bytes: usize,
    /// Its items needed no more (a crash before it is settled repeats
    /// them).
    pub(crate) released: u64,
    /// When it comes due, once written.
    pub(crate) due: Option<Instant>,
}

/// What the batches held may come to at most before the oldest are
/// settled, however young: their blobs' bytes, and their items released.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) bytes: usize,
    pub(crate) released: u64,
}

/// The rows to settle now, in order: `spent` (those needed no more), and
/// of `held` (oldest first; their bytes and items released in all are
/// `totals`) every one if `all`, otherwise those due, and the oldest while
/// the totals are past `bounds`.
pub(crate) fn due_rows(
    spent: impl Iterator<Item = i64>,
    held: impl Iterator<Item = Seen>,
    totals: (usize, u64),
    bounds: Bounds,
    (all, now): (bool, Instant),
) -> Vec<i64> {
    let mut rows: Vec<i64> = spent.collect();
    let mut over = totals.0.saturating_sub(bounds.bytes);
    let mut exposed = totals.1.saturating_sub(bounds.released);
    for batch in held {
        let late = batch.due.is_some_and(|due| due <= now);
        if !(all || late || over > 0 || exposed > 0) {
            break;
        }
        over = over.saturating_sub(batch.bytes);
        exposed = exposed.saturating_sub(batch.released);
        rows.push(batch.row);
    }
    rows.sort_unstable();
    rows.dedup();
    rows
}
