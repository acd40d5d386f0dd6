//! The journal: copies held for reliable sessions, one row per batch.
//!
//! A copy routed to a reliable session that is online is usually confirmed
//! within milliseconds of its commit. Stored as a row of `mailbox`, each one
//! cost the writer a row appended, then read back and deleted at its
//! confirmation: three statements of SQLite's, most of the writer's time
//! (`docs/performance.md`). Here a batch's held copies are one row of
//! `journal` (schema version 12), a blob written in one statement, and the
//! writer keeps the blob in memory: a confirmation reads the copy there and
//! writes nothing.
//!
//! A batch is settled once it is [`JOURNAL_GRACE`] old (or the journal's
//! memory is past [`MAX_JOURNAL_BYTES`], or the store closes or sweeps, or
//! an account is deleted), in one commit: each copy still unconfirmed is
//! written to `mailbox` as a row of its own, as if it had been stored
//! there; then the batch's row is deleted. A batch whose copies are all
//! confirmed goes at the next commit, with nothing written but its
//! deletion. Until then a batch is on disk whole, confirmed copies too;
//! which of them were confirmed is in the release log
//! (`release_log.rs`), written in the commit of their confirmation. A
//! confirmed copy's receipt is kept apart (`receipt_log.rs`). A store that
//! opens with rows in the journal (it crashed) writes every copy in them
//! that the release log does not name to `mailbox` ([`recover`]) before it
//! builds its index.
//!
//! The blob is the copies one after another, each: `id`, `ts_ms`, `number`
//! (`u64` little-endian each), `receipt` (one byte), then the recipient's
//! folded nickname, the sender, the addressees and the text, each a `u32`
//! little-endian length and its UTF-8 bytes.

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use tracing::warn;

use crate::blob::{self, Reader};
use crate::release_log::{Kind, Released};
use crate::settling::{self, Blob, Held};

/// How long a batch of held copies stays in the journal before it is
/// settled: what its copies have to be confirmed in for nothing more to be
/// written for them.
pub(crate) const JOURNAL_GRACE: Duration = Duration::from_secs(1);

/// The journal's blobs in memory at most: past it, the oldest batches are
/// settled at the next commit, however young.
pub(crate) const MAX_JOURNAL_BYTES: usize = 32 << 20;

/// One held copy, as the journal has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JournalCopy<'a> {
    /// The recipient's folded nickname.
    pub(crate) recipient: &'a str,
    pub(crate) id: u64,
    pub(crate) sender: &'a str,
    pub(crate) to_names: &'a str,
    pub(crate) ts_ms: u64,
    pub(crate) text: &'a str,
    pub(crate) receipt: bool,
    pub(crate) number: u64,
}

impl JournalCopy<'_> {
    /// What it counts against its mailbox's byte quota (as
    /// [`StoredMessage::stored_bytes`](crate::StoredMessage::stored_bytes)).
    pub(crate) fn stored_bytes(&self) -> u64 {
        crate::routed::quota_bytes(self.text, self.sender, self.to_names)
    }
}

/// What a held copy's confirmation needs of it ([`Batch::owed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owed<'a> {
    pub(crate) number: u64,
    /// Its sender asked for a receipt.
    pub(crate) receipt: bool,
    pub(crate) sender: &'a str,
}

/// A batch's copies: the blob of its row, and where each copy starts.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Its blob, and its copies still needed (unconfirmed) and needed no
    /// more (a crash before it is settled delivers them again).
    blob: Blob,
    starts: Vec<u32>,
}

impl settling::Batch for Batch {
    fn blob(&self) -> &Blob {
        &self.blob
    }

    fn blob_mut(&mut self) -> &mut Blob {
        &mut self.blob
    }
}

impl Batch {
    /// Appends a copy, answering its index in the batch.
    pub(crate) fn push(&mut self, copy: &JournalCopy<'_>) -> u32 {
        let index = u32::try_from(self.starts.len()).unwrap_or(u32::MAX);
        let blob = &mut self.blob.bytes;
        self.starts
            .push(u32::try_from(blob.len()).unwrap_or(u32::MAX));
        self.blob.live += 1;
        for number in [copy.id, copy.ts_ms, copy.number] {
            blob.extend_from_slice(&number.to_le_bytes());
        }
        blob.push(u8::from(copy.receipt));
        for text in [copy.recipient, copy.sender, copy.to_names, copy.text] {
            blob::put_str(blob, text);
        }
        index
    }

    /// The batch a row's blob holds (`None`: it does not read as one).
    pub(crate) fn from_blob(bytes: Vec<u8>) -> Option<Self> {
        let mut starts = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            starts.push(u32::try_from(at).ok()?);
            at = decode(&bytes, at)?.1;
        }
        let live = u32::try_from(starts.len()).ok()?;
        let blob = Blob {
            bytes,
            live,
            ..Blob::default()
        };
        Some(Self { blob, starts })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Whether none of its copies is needed any more.
    pub(crate) fn is_spent(&self) -> bool {
        self.blob.is_spent()
    }

    pub(crate) fn blob(&self) -> &[u8] {
        &self.blob.bytes
    }

    /// The release log's rows that name its copies confirmed.
    pub(crate) fn releases(&self) -> &[i64] {
        &self.blob.releases
    }

    /// Copy `index`.
    pub(crate) fn copy(&self, index: u32) -> Option<JournalCopy<'_>> {
        let start = *self.starts.get(usize::try_from(index).ok()?)?;
        decode(&self.blob.bytes, usize::try_from(start).ok()?).map(|(copy, _)| copy)
    }

    /// Of copy `index`, what its confirmation needs: its number, whether
    /// its sender asked for a receipt, and its sender. Only the sender's
    /// bytes are checked as UTF-8 (those of the text and the names, a
    /// confirmation's every copy, were 1.4% of the daemon's samples under
    /// `bench direct --reliable`; they were checked as they were written).
    pub(crate) fn owed(&self, index: u32) -> Option<Owed<'_>> {
        let start = *self.starts.get(usize::try_from(index).ok()?)?;
        let mut reader = Reader::at(&self.blob.bytes, usize::try_from(start).ok()?);
        let Numbers {
            number, receipt, ..
        } = numbers(&mut reader)?;
        let _recipient = reader.bytes()?;
        let sender = reader.str()?;
        Some(Owed {
            number,
            receipt,
            sender,
        })
    }

    /// Every copy with its index, in the order added.
    pub(crate) fn copies(&self) -> impl Iterator<Item = (u32, JournalCopy<'_>)> {
        (0..).zip(&self.starts).filter_map(|(index, &start)| {
            let copy = decode(&self.blob.bytes, usize::try_from(start).ok()?)?.0;
            Some((index, copy))
        })
    }
}

/// What a copy begins with, before its strings.
struct Numbers {
    id: u64,
    ts_ms: u64,
    number: u64,
    receipt: bool,
}

/// Reads what a copy begins with.
fn numbers(reader: &mut Reader<'_>) -> Option<Numbers> {
    Some(Numbers {
        id: reader.u64()?,
        ts_ms: reader.u64()?,
        number: reader.u64()?,
        receipt: *reader.take(1)?.first()? != 0,
    })
}

/// The copy that starts at `at`, and where the next one starts.
fn decode(blob: &[u8], at: usize) -> Option<(JournalCopy<'_>, usize)> {
    let mut reader = Reader::at(blob, at);
    let Numbers {
        id,
        ts_ms,
        number,
        receipt,
    } = numbers(&mut reader)?;
    let recipient = reader.str()?;
    let sender = reader.str()?;
    let to_names = reader.str()?;
    let text = reader.str()?;
    let copy = JournalCopy {
        recipient,
        id,
        sender,
        to_names,
        ts_ms,
        text,
        receipt,
        number,
    };
    Some((copy, reader.position()))
}

/// The journal's batches in the writer's memory, by row, oldest first.
#[derive(Debug)]
pub(crate) struct Journal {
    held: Held<Batch>,
    /// The row the next batch is written to (rows are given here, so that
    /// a batch's copies are indexed as they are checked, before it is
    /// written).
    next_row: i64,
}

impl Default for Journal {
    fn default() -> Self {
        Self::after(0)
    }
}

impl Journal {
    /// An empty journal whose rows start after `last_row`.
    pub(crate) fn after(last_row: i64) -> Self {
        Self {
            held: Held::new(MAX_JOURNAL_BYTES),
            next_row: last_row.saturating_add(1),
        }
    }

    /// The row for the next batch.
    pub(crate) fn next_row(&self) -> i64 {
        self.next_row
    }

    /// Holds `batch`, written to row `row`, until it is settled.
    pub(crate) fn add(&mut self, row: i64, mut batch: Batch, now: Instant) {
        batch.blob.due.get_or_insert(now + JOURNAL_GRACE);
        self.next_row = self.next_row.max(row.saturating_add(1));
        self.held.insert(row, batch);
    }

    /// Takes out batch `row`.
    pub(crate) fn take(&mut self, row: i64) -> Option<Batch> {
        self.held.take(row)
    }

    /// One of batch `row`'s copies is needed no more (`undo`: it is again).
    pub(crate) fn release(&mut self, row: i64, undo: bool) {
        self.held.release(row, undo);
    }

    pub(crate) fn get(&self, row: i64) -> Option<&Batch> {
        self.held.get(row)
    }

    /// Batch `row`'s blob and counts, if it is held.
    pub(crate) fn blob_mut(&mut self, row: i64) -> Option<&mut Blob> {
        self.held.get_mut(row).map(|batch| &mut batch.blob)
    }

    /// The rows to settle now, in order: `all`, every one; otherwise those
    /// spent, those due, and the oldest while the journal is past
    /// [`MAX_JOURNAL_BYTES`].
    pub(crate) fn due(&mut self, all: bool, now: Instant) -> Vec<i64> {
        self.held.due(all, now)
    }

    /// When the oldest batch is due, if any is held.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.held.next_due()
    }
}

/// Writes every copy in the journal to `mailbox` and empties the journal,
/// in one transaction: the store crashed with batches not yet settled. A
/// copy `released` names (confirmed before the crash) is left out, and so
/// is one whose recipient's account is gone (none should be: deleting an
/// account settles the journal first, in its transaction). Answers the
/// journal's last row, which new batches follow.
pub(crate) fn recover(conn: &Connection, released: &Released) -> rusqlite::Result<i64> {
    let tx = conn.unchecked_transaction()?;
    let last_row: i64 = tx.query_row("SELECT coalesce(max(seq), 0) FROM journal", [], |row| {
        row.get(0)
    })?;
    let mut recovered = 0_u64;
    let mut confirmed = 0_u64;
    let mut unreadable = 0_u64;
    {
        let mut rows = tx.prepare("SELECT seq, copies FROM journal ORDER BY seq")?;
        let mut account = tx.prepare_cached("SELECT 1 FROM accounts WHERE nick_folded = ?1")?;
        let mut insert = tx.prepare_cached(INSERT_COPY)?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let Some(batch) = Batch::from_blob(row.get(1)?) else {
                unreadable += 1;
                continue;
            };
            for (index, copy) in batch.copies() {
                if released.has(Kind::Copy, seq, index) {
                    confirmed += 1;
                } else if account.exists([copy.recipient])? {
                    insert_copy(&mut insert, &copy)?;
                    recovered += 1;
                }
            }
        }
    }
    tx.execute("DELETE FROM journal", [])?;
    tx.commit()?;
    if recovered > 0 || unreadable > 0 {
        warn!(
            recovered,
            confirmed,
            unreadable,
            "held copies not settled when the store last stopped were put in mailboxes \
             (those confirmed left out)"
        );
    }
    Ok(last_row)
}

/// Appends a copy to `mailbox`, as [`insert_copy`] binds it.
pub(crate) const INSERT_COPY: &str =
    "INSERT INTO mailbox (recipient, id, sender, to_names, ts_ms, text, bytes, receipt, number)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Appends `copy` to `mailbox` with `insert` ([`INSERT_COPY`]).
pub(crate) fn insert_copy(
    insert: &mut rusqlite::CachedStatement<'_>,
    copy: &JournalCopy<'_>,
) -> rusqlite::Result<()> {
    insert.execute(params![
        copy.recipient,
        copy.id,
        copy.sender,
        copy.to_names,
        copy.ts_ms,
        copy.text,
        copy.stored_bytes(),
        copy.receipt,
        copy.number,
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(id: u64, text: &str) -> JournalCopy<'_> {
        JournalCopy {
            recipient: "bob",
            id,
            sender: "Amy",
            to_names: "bob carol",
            ts_ms: 1_700_000_000_000 + id,
            text,
            receipt: id.is_multiple_of(2),
            number: id + 10,
        }
    }

    #[test]
    fn a_batch_reads_back_its_copies_from_memory_and_from_its_blob() {
        let mut batch = Batch::default();
        let texts = ["hi", "", "ünïcödé and spaces"];
        for (id, text) in (1..).zip(texts) {
            assert_eq!(batch.push(&copy(id, text)), u32::try_from(id - 1).unwrap());
        }
        assert_eq!(batch.copy(2), Some(copy(3, texts[2])));
        assert_eq!(batch.copy(3), None);
        let read = Batch::from_blob(batch.blob().to_vec()).expect("a batch's own blob reads");
        let copies: Vec<_> = read.copies().map(|(_, copy)| copy).collect();
        let expected: Vec<_> = (1..).zip(texts).map(|(id, text)| copy(id, text)).collect();
        assert_eq!(copies, expected);
    }

    #[test]
    fn what_a_confirmation_needs_reads_as_the_whole_copy_has_it() {
        let mut batch = Batch::default();
        let texts = ["hi", "", "ünïcödé and spaces"];
        for (id, text) in (1..).zip(texts) {
            batch.push(&copy(id, text));
        }
        for index in 0..3 {
            let whole = batch.copy(index).expect("pushed");
            let owed = Owed {
                number: whole.number,
                receipt: whole.receipt,
                sender: whole.sender,
            };
            assert_eq!(batch.owed(index), Some(owed));
        }
        assert_eq!(batch.owed(3), None);
    }

    #[test]
    fn a_blob_cut_short_or_not_utf8_does_not_read() {
        let mut batch = Batch::default();
        batch.push(&copy(1, "hello"));
        let blob = batch.blob().to_vec();
        assert!(Batch::from_blob(blob[..blob.len() - 1].to_vec()).is_none());
        let mut bad = blob;
        let last = bad.len() - 1;
        bad[last] = 0xff;
        assert!(Batch::from_blob(bad).is_none());
        assert!(Batch::from_blob(Vec::new()).is_some_and(|batch| batch.is_empty()));
    }

    #[test]
    fn batches_come_due_after_the_grace_or_when_memory_is_past_its_bound() {
        let now = Instant::now();
        let mut journal = Journal::after(6);
        assert_eq!(journal.next_row(), 7);
        let mut small = Batch::default();
        small.push(&copy(1, "a"));
        journal.add(7, small, now);
        assert!(journal.due(false, now).is_empty());
        assert_eq!(journal.due(true, now), [7]);
        assert_eq!(journal.due(false, now + JOURNAL_GRACE), [7]);
        assert_eq!(journal.next_due(), Some(now + JOURNAL_GRACE));
        let big_text = "x".repeat(MAX_JOURNAL_BYTES);
        let mut big = Batch::default();
        big.push(&copy(2, &big_text));
        journal.add(8, big, now);
        // Past the bound: the oldest go until it is under.
        assert_eq!(journal.due(false, now), [7, 8]);
        assert!(journal.take(7).is_some() && journal.take(7).is_none());
        assert_eq!(journal.due(false, now), [8]);
        assert!(journal.take(8).is_some());
        assert!(journal.due(false, now).is_empty());
        assert_eq!(journal.next_row(), 9);
    }

    #[test]
    fn a_spent_batch_is_due_at_once_and_one_needed_again_is_not() {
        let now = Instant::now();
        let mut journal = Journal::after(0);
        for row in 1..=3 {
            let mut batch = Batch::default();
            batch.push(&copy(1, "a"));
            batch.push(&copy(2, "b"));
            journal.add(row, batch, now);
        }
        // Both copies of batch 2 are needed no more: it goes, alone.
        journal.release(2, false);
        assert!(journal.due(false, now).is_empty());
        journal.release(2, false);
        assert_eq!(journal.due(false, now), [2]);
        assert!(journal.due(false, now).is_empty(), "said once");
        // Undone, it is needed again.
        journal.release(3, false);
        journal.release(3, false);
        journal.release(3, true);
        assert!(journal.due(false, now).is_empty());
        // However many copies are confirmed, a batch with one still needed
        // waits for its grace (the release log says which were).
        assert_eq!(journal.due(false, now + JOURNAL_GRACE), [1, 2, 3]);
    }
}
