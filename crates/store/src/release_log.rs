//! The release log: which items of the batches held on disk (the
//! journal's copies, `journal.rs`; the receipt log's receipts,
//! `receipt_log.rs`) are needed no more, written in the commit that
//! released them.
//!
//! A batch is one row, written whole and deleted whole. Before this log, a
//! copy confirmed (or a receipt confirmed by its owner) was only a count in
//! the writer's memory until its batch was settled, so a crash delivered
//! it again; to bound that, the oldest batches were settled as soon as a
//! few thousand such items had piled up, which under load was within
//! milliseconds of their commit, while most of their copies were still
//! unconfirmed: each of those became a row of `mailbox`, then was read and
//! deleted at its confirmation, most of the writer's work for a reliable
//! session (`docs/performance.md`). Now each group commit that released
//! items writes one row of `releases` (schema version 15) saying which, a
//! few bytes each, and a batch waits for its grace, its copies confirmed
//! meanwhile, and goes whole.
//!
//! A row lives while a batch it names is held: each batch keeps the rows
//! that name it, each row the count of batches it names still held, and
//! the row is deleted in the commit that settles or deletes the last of
//! them. A store that opens with rows here (it crashed) leaves the items
//! they name out of what it recovers from the batches
//! ([`journal::recover`](crate::journal::recover),
//! [`receipt_log::recover`](crate::receipt_log::recover)), then deletes
//! them ([`clear`]).
//!
//! The blob is runs, one after another, each: its kind (one byte, 1 a
//! journal copy, 2 a receipt), the batch's row (`i64` little-endian), a
//! count (`u32`), and that many items (`u32` each: a copy's index in its
//! batch, a receipt's byte in its batch's blob).

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, params};

use crate::blob::Reader;

/// Which kind of batch an item is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// A copy in a batch of the journal.
    Copy = 1,
    /// A receipt in a batch of the receipt log.
    Receipt = 2,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Copy),
            2 => Some(Self::Receipt),
            _ => None,
        }
    }
}

/// A group's releases, to write: the row, the batches named, the blob.
#[derive(Debug)]
pub(crate) struct Closed {
    pub(crate) row: i64,
    pub(crate) named: Vec<(Kind, i64)>,
    pub(crate) blob: Vec<u8>,
}

/// The current group's releases, and the rows written before that are
/// still needed.
#[derive(Debug)]
pub(crate) struct ReleaseLog {
    /// The current group's releases, as runs.
    pending: Vec<u8>,
    /// The last run's kind and row, and where its count is.
    last_run: Option<(Kind, i64, usize)>,
    /// The batches the current group's releases name, each once.
    named: Vec<(Kind, i64)>,
    /// Each row written, and how many batches still held it names.
    rows: HashMap<i64, u32>,
    /// The row the next group's releases are written to.
    next_row: i64,
}

impl Default for ReleaseLog {
    fn default() -> Self {
        Self {
            pending: Vec::new(),
            last_run: None,
            named: Vec::new(),
            rows: HashMap::new(),
            next_row: 1,
        }
    }
}

impl ReleaseLog {
    /// Item `item` of batch `row` is needed no more.
    pub(crate) fn release(&mut self, kind: Kind, row: i64, item: u32) {
        let count_at = match self.last_run {
            Some((last_kind, last_row, at)) if last_kind == kind && last_row == row => at,
            _ => {
                if !self.named.contains(&(kind, row)) {
                    self.named.push((kind, row));
                }
                self.pending.push(kind as u8);
                self.pending.extend_from_slice(&row.to_le_bytes());
                let at = self.pending.len();
                self.pending.extend_from_slice(&0_u32.to_le_bytes());
                self.last_run = Some((kind, row, at));
                at
            }
        };
        self.pending.extend_from_slice(&item.to_le_bytes());
        if let Some(count) = self.pending.get_mut(count_at..count_at + 4) {
            let next = u32::from_le_bytes([count[0], count[1], count[2], count[3]]) + 1;
            count.copy_from_slice(&next.to_le_bytes());
        }
    }

    /// Ends the current group's releases: the row to write them to, the
    /// batches they name, and the blob; `None` if there were none. The
    /// caller names the row in each batch still held
    /// ([`named`](Self::named)).
    pub(crate) fn close(&mut self) -> Option<Closed> {
        self.last_run = None;
        if self.pending.is_empty() {
            return None;
        }
        let row = self.next_row;
        self.next_row += 1;
        Some(Closed {
            row,
            named: std::mem::take(&mut self.named),
            blob: std::mem::take(&mut self.pending),
        })
    }

    /// Row `row` names `batches` batches still held.
    pub(crate) fn named(&mut self, row: i64, batches: u32) {
        if batches > 0 {
            self.rows.insert(row, batches);
        }
    }

    /// Forgets the current group's releases (it was rolled back).
    pub(crate) fn drop_pending(&mut self) {
        self.pending.clear();
        self.named.clear();
        self.last_run = None;
    }

    /// Forgets row `row` (the group that wrote it was rolled back).
    pub(crate) fn unwrite(&mut self, row: i64) {
        self.rows.remove(&row);
    }

    /// A batch that row `row` names is held no more: answers whether the
    /// row is needed no more (it is to be deleted), or `None` if it was
    /// not written (its group was rolled back).
    pub(crate) fn unname(&mut self, row: i64) -> Option<bool> {
        let count = self.rows.get_mut(&row)?;
        *count = count.saturating_sub(1);
        if *count > 0 {
            return Some(false);
        }
        self.rows.remove(&row);
        Some(true)
    }

    /// Undoes [`unname`](Self::unname) (its group was rolled back).
    pub(crate) fn rename(&mut self, row: i64) {
        *self.rows.entry(row).or_insert(0) += 1;
    }

    /// The rows written and still needed (for tests).
    #[cfg(test)]
    pub(crate) fn rows(&self) -> usize {
        self.rows.len()
    }
}

/// Writes the group's releases to row `row`.
pub(crate) fn write(conn: &Connection, row: i64, blob: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO releases (seq, items) VALUES (?1, ?2)")?
        .execute(params![row, blob])?;
    Ok(())
}

/// Deletes row `row`: every batch it names is gone.
pub(crate) fn delete(conn: &Connection, row: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM releases WHERE seq = ?1")?
        .execute([row])?;
    Ok(())
}

/// The items released in the batches a crash left, as the log has them.
#[derive(Debug, Default)]
pub(crate) struct Released(HashSet<(Kind, i64, u32)>);

impl Released {
    /// Reads every row of the log. A row that does not read whole counts
    /// up to where it stops (its items were released all the same).
    pub(crate) fn read(conn: &Connection) -> rusqlite::Result<Self> {
        let mut released = HashSet::new();
        let mut rows = conn.prepare("SELECT items FROM releases ORDER BY seq")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            released.extend(items(row.get_ref(0)?.as_blob()?));
        }
        Ok(Self(released))
    }

    /// Whether item `item` of batch `row` was released.
    pub(crate) fn has(&self, kind: Kind, row: i64, item: u32) -> bool {
        self.0.contains(&(kind, row, item))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Empties the log, once what a crash left in the batches is recovered.
pub(crate) fn clear(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM releases", [])?;
    Ok(())
}

/// Every item of a blob, in order; one cut short ends the list where it
/// stops reading.
fn items(blob: &[u8]) -> impl Iterator<Item = (Kind, i64, u32)> + '_ {
    let mut reader = Reader::at(blob, 0);
    let mut run: Option<(Kind, i64, u32)> = None;
    std::iter::from_fn(move || {
        loop {
            match &mut run {
                Some((kind, row, left)) if *left > 0 => {
                    *left -= 1;
                    let (kind, row) = (*kind, *row);
                    return Some((kind, row, reader.u32()?));
                }
                _ => {
                    let kind = Kind::from_byte(*reader.take(1)?.first()?)?;
                    let row = i64::from_le_bytes(reader.u64()?.to_le_bytes());
                    run = Some((kind, row, reader.u32()?));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_read_back_as_runs_and_a_cut_blob_stops_where_it_breaks() {
        let mut log = ReleaseLog::default();
        assert!(log.close().is_none(), "nothing released, nothing to write");
        log.release(Kind::Copy, 7, 0);
        log.release(Kind::Copy, 7, 3);
        log.release(Kind::Receipt, 2, 40);
        log.release(Kind::Copy, 7, 1);
        let Closed { row, named, blob } = log.close().unwrap();
        assert_eq!(row, 1);
        assert_eq!(named, [(Kind::Copy, 7), (Kind::Receipt, 2)]);
        let read: Vec<_> = items(&blob).collect();
        assert_eq!(
            read,
            [
                (Kind::Copy, 7, 0),
                (Kind::Copy, 7, 3),
                (Kind::Receipt, 2, 40),
                (Kind::Copy, 7, 1)
            ]
        );
        // Two runs of copies and one of receipts, 13 bytes a run and 4 an item.
        assert_eq!(blob.len(), 3 * 13 + 4 * 4);
        let cut: Vec<_> = items(&blob[..blob.len() - 2]).collect();
        assert_eq!(cut, read[..3]);
        assert_eq!(items(&[9, 0, 0]).count(), 0, "an unknown kind stops it");
        // The next group's row follows.
        log.release(Kind::Receipt, 3, 0);
        assert_eq!(log.close().unwrap().row, 2);
    }

    #[test]
    fn a_row_goes_when_the_last_batch_it_names_does() {
        let mut log = ReleaseLog::default();
        log.release(Kind::Copy, 1, 0);
        log.release(Kind::Receipt, 1, 0);
        let Closed { row, named, .. } = log.close().unwrap();
        log.named(row, u32::try_from(named.len()).unwrap());
        assert_eq!(log.unname(row), Some(false));
        assert_eq!(log.unname(row), Some(true), "the second batch was the last");
        assert_eq!(log.rows(), 0);
        assert_eq!(log.unname(row), None, "a row not held is nothing to delete");
        log.rename(row);
        assert_eq!(
            log.unname(row),
            Some(true),
            "renamed by a rollback, it is needed again"
        );
        // A group rolled back writes nothing.
        log.release(Kind::Copy, 4, 2);
        log.drop_pending();
        assert!(log.close().is_none());
    }

    #[test]
    fn a_crash_reads_back_what_the_rows_released() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrations().to_latest(&mut conn).unwrap();
        let mut log = ReleaseLog::default();
        for group in [
            [(Kind::Copy, 3, 1), (Kind::Copy, 3, 2)],
            [(Kind::Receipt, 3, 9); 2],
        ] {
            for (kind, row, item) in group {
                log.release(kind, row, item);
            }
            let Closed { row, blob, .. } = log.close().unwrap();
            write(&conn, row, &blob).unwrap();
        }
        let released = Released::read(&conn).unwrap();
        assert_eq!(released.len(), 3);
        assert!(released.has(Kind::Copy, 3, 2) && released.has(Kind::Receipt, 3, 9));
        assert!(!released.has(Kind::Receipt, 3, 1), "kinds apart");
        delete(&conn, 1).unwrap();
        assert!(!Released::read(&conn).unwrap().has(Kind::Copy, 3, 2));
        clear(&conn).unwrap();
        assert_eq!(Released::read(&conn).unwrap().len(), 0);
    }
}
