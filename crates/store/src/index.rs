//! The mailboxes' index, in the writer's memory.
//!
//! The `mailbox` table is append-only in the order messages are stored
//! (`seq`, its rowid), with no index of its own: a commit appends its
//! messages to the last pages of one B-tree instead of writing a page in
//! every recipient's part of a tree keyed by recipient. Finding a
//! recipient's messages is this index's job: for every account, its stored
//! messages by hub id, each with the row that holds it and what it counts
//! against the quota. The writer builds it from the tables when the store
//! opens, and keeps it as it writes: the quota check, duplicate ids,
//! confirmations and reads at login all look here instead of at the disk.
//!
//! The `receipts` table is kept the same way (schema version 10): appended
//! to, with no index, and each account's receipts, as their owner, found
//! here by message id. A receipt is kept when its message is confirmed and
//! forgotten when its owner confirms it, so an index on owner and message
//! wrote a page in every sender's part of a B-tree at both ends.
//!
//! And `sent` (schema version 11): appended to, with no key of its own, and
//! each account's newest [`SENT_WINDOW`](crate::SENT_WINDOW) records found
//! here, which is all a login reads. Keyed by sender and message on disk,
//! every commit wrote a page in every sending account's part of the tree.
//! Since schema version 13 a batch's records are one row of `sent_batches`
//! (`sent_log.rs`), and each is found here by its row and place in it
//! ([`SentPlace`]).
//!
//! A copy for a reliable session online is not a row but a place in one of
//! the journal's batches (`journal.rs`, [`Place::Journal`]), whose blobs
//! are kept here too until the batch is settled.
//!
//! A receipt kept when its message is confirmed is first in one of the
//! receipt log's batches (`receipt_log.rs`, [`ReceiptRow::Batch`]), a row
//! per group commit: if its owner confirms it soon (a reliable session
//! does, within milliseconds), nothing more is written for it; one still
//! owed when its batch is settled becomes a row of `receipts`
//! ([`ReceiptRow::Kept`]).
//!
//! Changes made inside a group's transaction are recorded with how to undo
//! them: if the group is rolled back (a full disk), the writer undoes them,
//! and the index again matches what is on disk.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::Connection;
use tracing::warn;

use crate::chunked_stack::ChunkedStack;
use crate::id_map::IdMap;
use crate::journal::{Batch, Journal, JournalCopy, Owed};
use crate::kept_receipts::KeptReceipts;
use crate::receipt_log::{BatchedReceipt, ReceiptBatch, ReceiptLog};
use crate::release_log::{Closed, Kind, ReleaseLog};
use crate::sent_log::{self, SentBatch, SentBatches};
use crate::settling;

/// The undo records' room kept between groups once the writer has been
/// idle a while (four chunks: 1 MiB at 64 bytes a record).
const UNDO_KEPT: usize = 16_384;

/// An account's slot in the index, kept while the index lives: undo
/// records name an account by it. By name, each record was an allocation
/// and a free, a fifth of the writer's time under `bench direct
/// --reliable`.
type AccountId = usize;

/// A kept receipt's recipient, as kept: the receipts one confirmation
/// keeps share it.
pub(crate) type Name = Arc<str>;

/// The names seen last, each handed out again while it is among them:
/// the receipts that name the same sender or recipient share one `Name`
/// rather than each holding a copy (a recipient confirms messages from a
/// few senders, many each).
#[derive(Debug, Default)]
pub(crate) struct RecentNames(Vec<Name>);

impl RecentNames {
    /// Remembered at most: names coming in turn from more than this share
    /// less.
    const MAX: usize = 8;

    /// `name`, shared with the last time it was seen if it is recent.
    pub(crate) fn share(&mut self, name: &str) -> Name {
        if let Some(recent) = self.0.iter().rev().find(|recent| ***recent == *name) {
            return Arc::clone(recent);
        }
        let shared: Name = name.into();
        if self.0.len() == Self::MAX {
            self.0.remove(0);
        }
        self.0.push(Arc::clone(&shared));
        shared
    }
}

/// Where a kept receipt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ReceiptRow {
    /// A row of `receipts`.
    Kept(i64),
    /// The receipt at byte `at` of the receipt log's batch `row`
    /// (`receipt_log.rs`), and when it was received.
    Batch { row: i64, at: u32, received_ms: u64 },
}

/// Where a stored message is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A row of `mailbox`.
    Row(i64),
    /// Copy `copy` of the journal's row `row` (`journal.rs`).
    Journal { row: i64, copy: u32 },
}

/// A receipt kept for `owner`, as a read or a take of them has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptRow {
    pub(crate) message_id: u64,
    pub(crate) recipient: Name,
    pub(crate) row: ReceiptRow,
}

/// Where a sent record is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SentPlace {
    /// A row of `sent` (before schema version 13).
    Row(i64),
    /// The record at byte `at` of row `row` of `sent_batches`.
    Batch { row: i64, at: u32 },
}

/// Where one stored message is, and what it weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Where it is.
    pub(crate) place: Place,
    /// What it counts against the byte quota.
    pub(crate) bytes: u64,
}

/// One account's mailbox.
#[derive(Debug, Default, Clone)]
pub(crate) struct Entries {
    /// Its messages by hub id, so in the order they are delivered.
    pub(crate) by_id: IdMap<Slot>,
    /// The sum of their bytes.
    pub(crate) bytes: u64,
    /// The highest id it ever held: an id above it is not there without
    /// looking (the hub's ids grow, so a new message's always is).
    max_id: u64,
    /// The receipts kept for this account as their owner, by message id
    /// and the row that holds each: its recipient's name (as kept).
    receipts: KeptReceipts,
    /// Its newest records of what became of a message it sent (`sent`),
    /// oldest first: each message's id and its row.
    sent: VecDeque<(u64, SentPlace)>,
}

impl Entries {
    /// Whether it holds message `id`.
    pub(crate) fn holds(&self, id: u64) -> bool {
        id <= self.max_id && self.by_id.contains_key(id)
    }

    /// How many messages it holds.
    pub(crate) fn count(&self) -> u64 {
        self.by_id.len() as u64
    }

    /// How many receipts are kept for it.
    pub(crate) fn receipt_count(&self) -> u64 {
        self.receipts.len()
    }

    /// The receipts kept for it, oldest message first.
    pub(crate) fn receipt_rows(&self) -> Vec<KeptRow> {
        (self.receipts.sorted().into_iter())
            .map(|(message_id, row, recipient)| KeptRow {
                message_id,
                recipient,
                row,
            })
            .collect()
    }

    fn add_receipt(&mut self, message_id: u64, recipient: Name, seq: ReceiptRow) {
        self.receipts.insert(message_id, seq, recipient);
    }

    /// The row of a receipt kept for message `message_id` by `recipient`.
    fn find_receipt(&self, message_id: u64, recipient: &str) -> Option<ReceiptRow> {
        self.receipts.find(message_id, recipient)
    }

    /// The rows of its newest records of what became of messages it sent,
    /// oldest first.
    pub(crate) fn sent_rows(&self) -> Vec<SentPlace> {
        self.sent.iter().map(|(_, seq)| *seq).collect()
    }

    /// Records message `message_id`'s record in row `seq`, unless it holds
    /// one for it.
    fn add_sent(&mut self, message_id: u64, seq: SentPlace) -> Recorded {
        let after_last = self.sent.back().is_none_or(|(last, _)| *last < message_id);
        if !after_last && self.sent.iter().any(|(id, _)| *id == message_id) {
            return Recorded::Already;
        }
        if after_last {
            self.sent.push_back((message_id, seq));
        } else {
            let at = self.sent.partition_point(|(id, _)| *id < message_id);
            self.sent.insert(at, (message_id, seq));
        }
        let evicted = if self.sent.len() > crate::SENT_WINDOW {
            self.sent.pop_front()
        } else {
            None
        };
        Recorded::New { evicted }
    }

    /// Takes out the record in row `seq`; says whether it was there.
    fn remove_sent(&mut self, seq: SentPlace) -> bool {
        let at = self.sent.iter().position(|(_, row)| *row == seq);
        at.and_then(|at| self.sent.remove(at)).is_some()
    }

    /// Takes out the receipt in row `seq`, answering its recipient.
    fn remove_receipt(&mut self, message_id: u64, seq: ReceiptRow) -> Option<Name> {
        self.receipts.remove(message_id, seq)
    }
}

/// What recording a sent record did.
enum Recorded {
    /// The window holds one for that message already.
    Already,
    /// Recorded; `evicted` is the oldest, if it left the window for it.
    New { evicted: Option<(u64, SentPlace)> },
}

/// A change to undo if its group's transaction is rolled back.
///
/// A record owns nothing: what undoing a change needs that lives on the
/// heap (a name, a batch taken out, an account's entries) is kept apart,
/// in [`Owned`], in the same order. A commit then forgets its group's
/// records (hundreds of thousands under a burst) without a look at each:
/// dropping them one by one, for the few that own something, was 1.6% of
/// the daemon's samples under `bench direct --reliable`.
#[derive(Debug, Clone, Copy)]
enum Undo {
    Added {
        account: AccountId,
        id: u64,
    },
    Removed {
        account: AccountId,
        id: u64,
        slot: Slot,
    },
    /// Its name is [`Owned::Account`].
    AccountAdded {
        id: AccountId,
    },
    /// Its name and entries are [`Owned::Removed`].
    AccountRemoved {
        id: AccountId,
    },
    ReceiptKept {
        owner: AccountId,
        message_id: u64,
        seq: ReceiptRow,
    },
    /// Its recipient is [`Owned::Name`].
    ReceiptForgotten {
        owner: AccountId,
        message_id: u64,
        seq: ReceiptRow,
    },
    /// A batched receipt was written as a row (`from` to `to`).
    ReceiptWritten {
        owner: AccountId,
        message_id: u64,
        from: ReceiptRow,
        to: ReceiptRow,
    },
    SentAdded {
        sender: AccountId,
        seq: SentPlace,
        evicted: Option<(u64, SentPlace)>,
    },
    SentSwept {
        sender: AccountId,
        message_id: u64,
        seq: SentPlace,
    },
    /// A stored message moved (from the journal to a row).
    Moved {
        account: AccountId,
        id: u64,
        from: Place,
    },
    BatchAdded {
        row: i64,
    },
    /// The batch is [`Owned::Batch`].
    BatchTaken {
        row: i64,
    },
    /// A copy of batch `row` was released (needed no more).
    HeldReleased {
        row: i64,
    },
    /// The receipt log's batch `row` was begun (or written).
    ReceiptBatchAdded {
        row: i64,
    },
    /// The batch is [`Owned::ReceiptBatch`].
    ReceiptBatchTaken {
        row: i64,
    },
    /// The batch of sent records `row` was held (`sent_log.rs`).
    SentBatchAdded {
        row: i64,
    },
    /// The batch is [`Owned::SentBatch`].
    SentBatchTaken {
        row: i64,
    },
    /// A record of the held batch of sent records `row` left its window.
    SentReleased {
        row: i64,
    },
    /// A receipt of the receipt log's batch `row` is owed no more.
    ReceiptReleased {
        row: i64,
    },
    /// The release log's row `row` was written.
    ReleasesWritten {
        row: i64,
    },
    /// A batch the release log's row `row` names went.
    ReleasesUnnamed {
        row: i64,
    },
}

const _: () = assert!(
    !std::mem::needs_drop::<Undo>(),
    "an undo record owns nothing"
);

/// What an undo record needs that lives on the heap, one for each record
/// that names one here, in the records' order.
#[derive(Debug)]
enum Owned {
    Account(String),
    // The large ones are boxed: every one is as large as the largest, and
    // these are rare.
    Removed(String, Box<Entries>),
    Name(Name),
    Batch(Box<Batch>),
    ReceiptBatch(Box<ReceiptBatch>),
    SentBatch(Box<SentBatch>),
}

/// Every account's mailbox, keyed by folded nickname.
#[derive(Debug, Default)]
pub(crate) struct MailIndex {
    /// Each account's slot, by folded nickname: hashed with a seed drawn
    /// per map (peers choose nicknames), by foldhash rather than `SipHash`,
    /// several times faster on short keys.
    ids: HashMap<String, AccountId, foldhash::fast::RandomState>,
    /// Each account's mailbox, by slot; a deleted account's slot is left
    /// empty (never given again, so an undo record always finds its own).
    slots: Vec<Option<Entries>>,
    /// The recipients named by the receipts kept last.
    recipients: RecentNames,
    undo: ChunkedStack<Undo>,
    /// What the undo records need that lives on the heap.
    owned: Vec<Owned>,
    /// The receipt log's batches (`receipt_log.rs`), which
    /// `ReceiptRow::Batch` receipts point into.
    receipt_log: ReceiptLog,
    /// The journal's batches (`journal.rs`), which `Place::Journal` slots
    /// point into.
    journal: Journal,
    /// Which items of those batches are needed no more, as written with
    /// each commit (`release_log.rs`).
    releases: ReleaseLog,
    /// The next row of `sent_batches`.
    next_sent_row: i64,
    /// Batches of sent records held in memory while they are only in the
    /// batch log (`sent_log.rs`), which `SentPlace::Batch` records point
    /// into until they are settled as rows.
    sent_batches: SentBatches,
    /// Records of the batch being made that left their window already.
    sent_evicted: u32,
    /// The batches the current group added, to be told the batch log's
    /// segment its frame went to ([`place`](Self::place)).
    placed: Vec<(Placed, i64)>,
}

/// Which batches a group added.
#[derive(Debug, Clone, Copy)]
enum Placed {
    Journal,
    Receipts,
    Sent,
}

impl MailIndex {
    /// Builds the index from the tables: every account, then every stored
    /// message. A row whose account is gone (none should be) is left out and
    /// counted in a warning.
    /// The journal's rows start after `journal_row` (its last, as
    /// [`journal::recover`](crate::journal::recover) found it), and the
    /// receipt log's after `receipt_row` (as
    /// [`receipt_log::recover`](crate::receipt_log::recover) found it).
    pub(crate) fn load(
        conn: &Connection,
        (journal_row, receipt_row, sent_mark): (i64, i64, i64),
    ) -> rusqlite::Result<Self> {
        let created: HashMap<String, u64> = conn
            .prepare("SELECT nick_folded, created_ms FROM accounts")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut accounts: HashMap<String, Entries> = (created.keys())
            .map(|folded| (folded.clone(), Entries::default()))
            .collect();
        let mut names = RecentNames::default();
        let mut orphans = 0_u64;
        let mut rows = conn.prepare("SELECT seq, recipient, id, bytes FROM mailbox")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let recipient = row.get_ref(1)?.as_str()?;
            let Some(entries) = accounts.get_mut(recipient) else {
                orphans += 1;
                continue;
            };
            let slot = Slot {
                place: Place::Row(row.get(0)?),
                bytes: row.get(3)?,
            };
            let id = row.get(2)?;
            entries.bytes += slot.bytes;
            entries.max_id = entries.max_id.max(id);
            entries.by_id.push_unsorted(id, slot);
        }
        for entries in accounts.values_mut() {
            entries.by_id.sort();
        }
        let mut rows = conn.prepare("SELECT seq, owner, message_id, recipient FROM receipts")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let owner = row.get_ref(1)?.as_str()?;
            let Some(entries) = accounts.get_mut(owner) else {
                orphans += 1;
                continue;
            };
            let recipient: &str = row.get_ref(3)?.as_str()?;
            let recipient = names.share(recipient);
            entries.add_receipt(row.get(2)?, recipient, ReceiptRow::Kept(row.get(0)?));
        }
        // A record older than its sender's account is a deleted account's
        // of the same name (deleting one leaves those past its window to
        // the sweep): not the new account's.
        let mut rows =
            conn.prepare("SELECT seq, sender, message_id, ts_ms FROM sent ORDER BY seq")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let sender = row.get_ref(1)?.as_str()?;
            let since = created.get(sender).copied().unwrap_or(u64::MAX);
            let Some(entries) = accounts.get_mut(sender) else {
                continue;
            };
            if row.get::<_, u64>(3)? < since {
                continue;
            }
            entries.add_sent(row.get(2)?, SentPlace::Row(row.get(0)?));
        }
        // And the batches of them (schema version 13), after: they are newer.
        let mut sent_row = 0;
        let mut rows = conn.prepare("SELECT seq, records FROM sent_batches ORDER BY seq")?;
        let mut rows = rows.query([])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            sent_row = seq;
            for (at, record) in sent_log::records(row.get_ref(1)?.as_blob()?) {
                let since = created.get(record.sender).copied().unwrap_or(u64::MAX);
                if let Some(entries) = accounts.get_mut(record.sender)
                    && record.ts_ms >= since
                {
                    entries.add_sent(record.message_id, SentPlace::Batch { row: seq, at });
                }
            }
        }
        if orphans > 0 {
            warn!(
                orphans,
                "stored messages or receipts without an account are ignored"
            );
        }
        let mut ids = HashMap::with_capacity_and_hasher(
            accounts.len(),
            foldhash::fast::RandomState::default(),
        );
        let mut slots = Vec::with_capacity(accounts.len());
        for (name, entries) in accounts {
            ids.insert(name, slots.len());
            slots.push(Some(entries));
        }
        Ok(Self {
            ids,
            slots,
            recipients: RecentNames::default(),
            undo: ChunkedStack::default(),
            owned: Vec::new(),
            receipt_log: ReceiptLog::after(receipt_row),
            journal: Journal::after(journal_row),
            releases: ReleaseLog::default(),
            next_sent_row: sent_row.max(sent_mark) + 1,
            sent_batches: SentBatches::default(),
            sent_evicted: 0,
            placed: Vec::new(),
        })
    }

    /// The row of `sent_batches` the next batch of sent records is
    /// written to.
    pub(crate) fn sent_row(&self) -> i64 {
        self.next_sent_row.max(1)
    }

    /// Row `row` of `sent_batches` was written (given here, so that each
    /// record is indexed as it is checked).
    pub(crate) fn sent_row_used(&mut self, row: i64) {
        self.next_sent_row = self.next_sent_row.max(row.saturating_add(1));
    }

    /// The row the journal's next batch is written to.
    pub(crate) fn journal_row(&self) -> i64 {
        self.journal.next_row()
    }

    /// Holds `batch`, written to the journal's row `row`.
    pub(crate) fn add_batch(&mut self, row: i64, batch: Batch) {
        self.journal.add(row, batch, Instant::now());
        self.undo.push(Undo::BatchAdded { row });
        self.placed.push((Placed::Journal, row));
    }

    /// Takes out the journal's batch `row` to settle it. The caller hands
    /// it back with [`batch_taken`](Self::batch_taken) once done, whether
    /// or not the writes succeeded, so that a rollback can put it back.
    pub(crate) fn take_batch(&mut self, row: i64) -> Option<Batch> {
        self.journal.take(row)
    }

    /// Batch `row`, taken out with [`take_batch`](Self::take_batch), is
    /// settled (if the group commits).
    pub(crate) fn batch_taken(&mut self, row: i64, batch: Batch) {
        self.undo.push(Undo::BatchTaken { row });
        self.owned.push(Owned::Batch(Box::new(batch)));
    }

    /// The journal's rows to settle now (`all`: every one).
    pub(crate) fn due_batches(&mut self, all: bool, now: Instant) -> Vec<i64> {
        self.journal.due(all, now)
    }

    /// Copy `copy` of the journal's batch `row` is needed no more:
    /// confirmed (the release log says so with the group's commit).
    pub(crate) fn release_held(&mut self, row: i64, copy: u32) {
        self.journal.release(row, false);
        self.releases.release(Kind::Copy, row, copy);
        self.undo.push(Undo::HeldReleased { row });
    }

    /// Ends the group's releases: the release log's row and blob to write
    /// in the group's transaction, if it released any item of a batch on
    /// disk. Each batch it names still held is told its row.
    pub(crate) fn close_releases(&mut self) -> Option<(i64, Vec<u8>)> {
        let Closed { row, named, blob } = self.releases.close()?;
        let mut held = 0;
        for (kind, batch) in named {
            let blob = match kind {
                Kind::Copy => self.journal.blob_mut(batch),
                Kind::Receipt => self.receipt_log.blob_mut(batch),
            };
            if let Some(blob) = blob {
                blob.releases.push(row);
                held += 1;
            }
        }
        // None held: every batch it names went in this group (an
        // account's deletion settles them all), and so does the need.
        if held == 0 {
            return None;
        }
        self.releases.named(row, held);
        self.undo.push(Undo::ReleasesWritten { row });
        Some((row, blob))
    }

    /// A batch that the release log's rows `rows` name goes: answers
    /// those of them needed no more, to delete.
    pub(crate) fn unname(&mut self, rows: &[i64]) -> Vec<i64> {
        let mut gone = Vec::new();
        for &row in rows {
            let Some(last) = self.releases.unname(row) else {
                continue;
            };
            if last {
                gone.push(row);
            }
            self.undo.push(Undo::ReleasesUnnamed { row });
        }
        gone
    }

    /// The held copy at `place`, if it is in the journal.
    pub(crate) fn held_copy(&self, place: Place) -> Option<JournalCopy<'_>> {
        match place {
            Place::Row(_) => None,
            Place::Journal { row, copy } => self.journal.get(row)?.copy(copy),
        }
    }

    /// What the confirmation of the held copy at `place` needs of it, if it
    /// is in the journal ([`Batch::owed`](crate::journal::Batch::owed)).
    pub(crate) fn held_owed(&self, place: Place) -> Option<Owed<'_>> {
        match place {
            Place::Row(_) => None,
            Place::Journal { row, copy } => self.journal.get(row)?.owed(copy),
        }
    }

    /// Account `account`'s slot and mailbox.
    fn entries_mut(&mut self, account: &str) -> Option<(AccountId, &mut Entries)> {
        let id = *self.ids.get(account)?;
        Some((id, self.slots.get_mut(id)?.as_mut()?))
    }

    /// The mailbox in slot `id`, if its account is there.
    fn slot_mut(&mut self, id: AccountId) -> Option<&mut Entries> {
        self.slots.get_mut(id)?.as_mut()
    }

    /// Records that `account`'s message `id` is now at `to`.
    pub(crate) fn moved(&mut self, account: &str, id: u64, to: Place) {
        let Some((account, entries)) = self.entries_mut(account) else {
            return;
        };
        if let Some(slot) = entries.by_id.get_mut(id) {
            let from = std::mem::replace(&mut slot.place, to);
            self.undo.push(Undo::Moved { account, id, from });
        }
    }

    /// One account's mailbox, if the account exists.
    pub(crate) fn get(&self, account: &str) -> Option<&Entries> {
        self.slots.get(*self.ids.get(account)?)?.as_ref()
    }

    /// Every account's mailbox.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Entries)> {
        (self.ids.iter()).filter_map(|(name, &id)| Some((name, self.slots.get(id)?.as_ref()?)))
    }

    /// Records a stored message.
    pub(crate) fn add(&mut self, account: &str, id: u64, slot: Slot) {
        if let Some((account, entries)) = self.entries_mut(account)
            && !entries.holds(id)
        {
            entries.by_id.insert(id, slot);
            entries.bytes += slot.bytes;
            // Not undone with the rest: a higher bound only costs a look.
            entries.max_id = entries.max_id.max(id);
            self.undo.push(Undo::Added { account, id });
        }
    }

    /// Forgets a stored message, answering where it was.
    pub(crate) fn remove(&mut self, account: &str, id: u64) -> Option<Slot> {
        let (account, entries) = self.entries_mut(account)?;
        let slot = entries.by_id.remove(id)?;
        entries.bytes -= slot.bytes;
        self.undo.push(Undo::Removed { account, id, slot });
        Some(slot)
    }

    /// Keeps a receipt for `receipt.owner` in the current group's batch of
    /// the receipt log (`receipt_log.rs`), written when the group commits;
    /// answers whether it did. It does not for an owner with no account,
    /// or one holding [`MAX_KEPT_RECEIPTS`](crate::MAX_KEPT_RECEIPTS)
    /// already.
    pub(crate) fn keep_batched(&mut self, receipt: &BatchedReceipt<'_>) -> bool {
        let keepable = (self.get(receipt.owner))
            .is_some_and(|entries| entries.receipt_count() < crate::MAX_KEPT_RECEIPTS);
        if !keepable {
            return false;
        }
        let (row, at, opened) = self.receipt_log.keep(receipt);
        if opened {
            self.undo.push(Undo::ReceiptBatchAdded { row });
        }
        let seq = ReceiptRow::Batch {
            row,
            at,
            received_ms: receipt.received_ms,
        };
        self.keep_receipt(receipt.owner, receipt.message_id, receipt.recipient, seq);
        true
    }

    /// Records a receipt kept for `owner` in row `seq`.
    pub(crate) fn keep_receipt(
        &mut self,
        owner: &str,
        message_id: u64,
        recipient: &str,
        seq: ReceiptRow,
    ) {
        let recipient = self.recipients.share(recipient);
        if let Some((owner, entries)) = self.entries_mut(owner) {
            entries.add_receipt(message_id, recipient, seq);
            self.undo.push(Undo::ReceiptKept {
                owner,
                message_id,
                seq,
            });
        }
    }

    /// Forgets a receipt kept for `owner` of `message_id` by `recipient`,
    /// answering its row (called until `None`: one may be kept twice).
    pub(crate) fn forget_receipt(
        &mut self,
        owner: &str,
        message_id: u64,
        recipient: &str,
    ) -> Option<ReceiptRow> {
        let (owner, entries) = self.entries_mut(owner)?;
        let seq = entries.find_receipt(message_id, recipient)?;
        let recipient = entries.remove_receipt(message_id, seq)?;
        self.undo.push(Undo::ReceiptForgotten {
            owner,
            message_id,
            seq,
        });
        self.owned.push(Owned::Name(recipient));
        Some(seq)
    }

    /// Forgets every receipt kept for `owner`, answering them, oldest
    /// message first.
    pub(crate) fn take_receipts(&mut self, owner: &str) -> Vec<KeptRow> {
        let Some((owner, entries)) = self.entries_mut(owner) else {
            return Vec::new();
        };
        let rows = entries.receipt_rows();
        entries.receipts.clear();
        for kept in &rows {
            self.undo.push(Undo::ReceiptForgotten {
                owner,
                message_id: kept.message_id,
                seq: kept.row,
            });
            self.owned.push(Owned::Name(kept.recipient.clone()));
        }
        rows
    }

    /// The receipt at byte `at` of the receipt log's batch `row` is owed
    /// no more: the release log says so with the group's commit (which
    /// also writes the batch, if it is the one being filled and not spent).
    pub(crate) fn release_receipt(&mut self, row: i64, at: u32) {
        self.receipt_log.release(row, false);
        self.releases.release(Kind::Receipt, row, at);
        self.undo.push(Undo::ReceiptReleased { row });
    }

    /// Ends the current group's batch of receipts: its row and blob, to
    /// write in the group's transaction, if it is to be written.
    pub(crate) fn close_receipts(&mut self) -> Option<(i64, &[u8])> {
        let closed = self.receipt_log.close(Instant::now());
        if let Some((row, _)) = closed {
            self.placed.push((Placed::Receipts, row));
        }
        closed
    }

    /// The group's frame went to segment `segment` of the batch log: the
    /// batches it added are held there.
    pub(crate) fn place(&mut self, segment: u64) {
        for (kind, row) in self.placed.drain(..) {
            let blob = match kind {
                Placed::Journal => self.journal.blob_mut(row),
                Placed::Receipts => self.receipt_log.blob_mut(row),
                Placed::Sent => self.sent_batches.blob_mut(row),
            };
            if let Some(blob) = blob {
                blob.segment = segment;
            }
        }
    }

    /// The receipt log's rows to settle now (`all`: every one).
    pub(crate) fn due_receipt_batches(&mut self, all: bool, now: Instant) -> Vec<i64> {
        self.receipt_log.due(all, now)
    }

    /// Takes out the receipt log's batch `row` to settle it; handed back
    /// with [`receipt_batch_taken`](Self::receipt_batch_taken) once done.
    pub(crate) fn take_receipt_batch(&mut self, row: i64) -> Option<ReceiptBatch> {
        self.receipt_log.take(row)
    }

    /// The receipt log's batch `row` is settled (if the group commits).
    pub(crate) fn receipt_batch_taken(&mut self, row: i64, batch: ReceiptBatch) {
        self.undo.push(Undo::ReceiptBatchTaken { row });
        self.owned.push(Owned::ReceiptBatch(Box::new(batch)));
    }

    /// Whether the receipt kept for `owner` of `message_id` by
    /// `recipient` is still the one at `seq`.
    pub(crate) fn receipt_is_at(
        &self,
        owner: &str,
        message_id: u64,
        recipient: &str,
        seq: ReceiptRow,
    ) -> bool {
        (self.get(owner))
            .and_then(|entries| entries.receipts.get(message_id, seq))
            .is_some_and(|name| **name == *recipient)
    }

    /// When the oldest journal batch or batch of receipts comes due, if
    /// any is waiting.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let receipts = self.receipt_log.next_due();
        let batch = self.journal.next_due();
        let sent = self.sent_batches.next_due();
        receipts.into_iter().chain(batch).chain(sent).min()
    }

    /// The receipt kept for `owner` of `message_id` at `from` was written
    /// to `receipts`, in row `seq`.
    pub(crate) fn written(&mut self, owner: &str, message_id: u64, from: ReceiptRow, seq: i64) {
        let to = ReceiptRow::Kept(seq);
        let Some((owner, entries)) = self.entries_mut(owner) else {
            return;
        };
        if let Some(recipient) = entries.receipts.remove(message_id, from) {
            entries.receipts.insert(message_id, to, recipient);
            self.undo.push(Undo::ReceiptWritten {
                owner,
                message_id,
                from,
                to,
            });
        }
    }

    /// Records what became of `sender`'s message `message_id`, in row
    /// `seq`; answers whether it was new (not already recorded).
    pub(crate) fn add_sent(&mut self, sender: &str, message_id: u64, seq: SentPlace) -> bool {
        let Some((sender, entries)) = self.entries_mut(sender) else {
            return false;
        };
        let Recorded::New { evicted } = entries.add_sent(message_id, seq) else {
            return false;
        };
        self.undo.push(Undo::SentAdded {
            sender,
            seq,
            evicted,
        });
        // A record that left its window releases its batch, if the batch
        // is held in memory (or is the one being made).
        if let Some((_, SentPlace::Batch { row, .. })) = evicted {
            if row == self.next_sent_row {
                self.sent_evicted += 1;
            } else if self.sent_batches.get(row).is_some() {
                self.sent_batches.release(row, false);
                self.undo.push(Undo::SentReleased { row });
            }
        }
        true
    }

    /// Holds the batch of sent records being made (row
    /// [`sent_row`](Self::sent_row)), `added` of whose records were
    /// recorded in windows, while it is only in the batch log.
    pub(crate) fn hold_sent(&mut self, row: i64, bytes: Vec<u8>, added: u32, newest: u64) {
        let live = added.saturating_sub(std::mem::take(&mut self.sent_evicted));
        let batch = SentBatch::new(bytes, live, newest);
        self.sent_batches.add(row, batch, Instant::now());
        self.undo.push(Undo::SentBatchAdded { row });
        self.placed.push((Placed::Sent, row));
    }

    /// Forgets the evictions counted for a batch of sent records that is
    /// not held (written as a row, or empty).
    pub(crate) fn sent_made(&mut self) {
        self.sent_evicted = 0;
    }

    /// The held batches of sent records to settle now (`all`: every one).
    pub(crate) fn due_sent_batches(&mut self, all: bool, now: Instant) -> Vec<i64> {
        self.sent_batches.due(all, now)
    }

    /// Takes out the held batch of sent records `row` to settle it;
    /// handed back with [`sent_batch_taken`](Self::sent_batch_taken).
    pub(crate) fn take_sent_batch(&mut self, row: i64) -> Option<SentBatch> {
        self.sent_batches.take(row)
    }

    /// The held batch of sent records `row` is settled (if the group
    /// commits).
    pub(crate) fn sent_batch_taken(&mut self, row: i64, batch: SentBatch) {
        self.undo.push(Undo::SentBatchTaken { row });
        self.owned.push(Owned::SentBatch(Box::new(batch)));
    }

    /// The blob of the held batch of sent records `row`, if it is held.
    pub(crate) fn held_sent(&self, row: i64) -> Option<&[u8]> {
        self.sent_batches.get(row).map(SentBatch::bytes)
    }

    /// Whether `sender` holds a record of message `message_id` in its
    /// window.
    pub(crate) fn has_sent(&self, sender: &str, message_id: u64) -> bool {
        self.get(sender).is_some_and(|entries| {
            (entries.sent.back()).is_some_and(|(last, _)| *last >= message_id)
                && entries.sent.iter().any(|(id, _)| *id == message_id)
        })
    }

    /// Forgets records swept from `sent` (by age): each sender, message
    /// and row.
    pub(crate) fn sweep_sent(&mut self, swept: Vec<(String, u64, SentPlace)>) {
        for (sender, message_id, seq) in swept {
            if let Some((sender, entries)) = self.entries_mut(&sender)
                && entries.remove_sent(seq)
            {
                self.undo.push(Undo::SentSwept {
                    sender,
                    message_id,
                    seq,
                });
            }
        }
    }

    /// Records a new, empty account's mailbox.
    pub(crate) fn add_account(&mut self, account: &str) {
        if !self.ids.contains_key(account) {
            let id = self.slots.len();
            self.slots.push(Some(Entries::default()));
            self.ids.insert(account.to_owned(), id);
            self.undo.push(Undo::AccountAdded { id });
            self.owned.push(Owned::Account(account.to_owned()));
        }
    }

    /// Forgets an account's mailbox, answering what it held.
    pub(crate) fn remove_account(&mut self, account: &str) -> Option<&Entries> {
        let id = self.ids.remove(account)?;
        let entries = self.slots.get_mut(id)?.take()?;
        self.undo.push(Undo::AccountRemoved { id });
        (self.owned).push(Owned::Removed(account.to_owned(), Box::new(entries)));
        match self.owned.last() {
            Some(Owned::Removed(_, entries)) => Some(entries),
            _ => None,
        }
    }

    /// The group's transaction committed: its changes stand. Answers the
    /// batch log's segments that held the batches it settled or deleted,
    /// one for each (each to be released).
    pub(crate) fn commit(&mut self) -> Vec<u64> {
        self.undo.clear();
        self.placed.clear();
        let gone = self.owned.drain(..).filter_map(|owned| match owned {
            Owned::Batch(batch) => Some(settling::Batch::blob(&*batch).segment),
            Owned::ReceiptBatch(batch) => Some(settling::Batch::blob(&*batch).segment),
            Owned::SentBatch(batch) => Some(settling::Batch::blob(&*batch).segment),
            _ => None,
        });
        gone.filter(|segment| *segment != 0).collect()
    }

    /// Whether the undo records hold more room than is kept between
    /// bursts ([`trim_undo`](Self::trim_undo) would give some back).
    pub(crate) fn undo_to_trim(&self) -> bool {
        self.undo.capacity() > UNDO_KEPT || self.owned.capacity() > UNDO_KEPT
    }

    /// Gives back what a burst's groups grew the undo records to: a group
    /// of hundreds of thousands of changes leaves tens of megabytes behind
    /// (80 MB after `bench direct --reliable`), which an ordinary group
    /// never needs again. Called by the writer once it has had nothing to
    /// do for a while (`writer.rs`): trimmed after every commit, or
    /// whenever the queue ran empty, each group of a steady load grew it
    /// again, into fresh pages.
    pub(crate) fn trim_undo(&mut self) {
        self.undo.trim(UNDO_KEPT);
        self.owned.shrink_to(UNDO_KEPT);
    }

    /// The group's transaction was rolled back: undoes its changes, last
    /// first.
    pub(crate) fn roll_back(&mut self) {
        self.releases.drop_pending();
        self.placed.clear();
        self.sent_evicted = 0;
        while let Some(undo) = self.undo.pop() {
            self.undo_one(undo);
        }
        // Each was taken by its record; none is left unless one was lost.
        debug_assert!(self.owned.is_empty(), "an undo record's own part left over");
        self.owned.clear();
    }

    /// Undoes the adding of `account`, in slot `id`.
    fn unadd_account(&mut self, account: &str, id: AccountId) {
        self.ids.remove(account);
        if let Some(slot) = self.slots.get_mut(id) {
            *slot = None;
        }
        // Undone last first: the slot given last is the last one.
        if id + 1 == self.slots.len() {
            self.slots.pop();
        }
    }

    fn undo_one(&mut self, undo: Undo) {
        match undo {
            Undo::Added { account, id } => {
                if let Some(entries) = self.slot_mut(account)
                    && let Some(slot) = entries.by_id.remove(id)
                {
                    entries.bytes -= slot.bytes;
                }
            }
            Undo::Removed { account, id, slot } => {
                if let Some(entries) = self.slot_mut(account) {
                    entries.bytes += slot.bytes;
                    entries.by_id.insert(id, slot);
                }
            }
            Undo::ReceiptKept {
                owner,
                message_id,
                seq,
            } => {
                if let Some(entries) = self.slot_mut(owner) {
                    entries.remove_receipt(message_id, seq);
                }
            }
            Undo::SentAdded {
                sender,
                seq,
                evicted,
            } => {
                if let Some(entries) = self.slot_mut(sender) {
                    entries.remove_sent(seq);
                    if let Some(evicted) = evicted {
                        entries.sent.push_front(evicted);
                    }
                }
            }
            Undo::SentSwept {
                sender,
                message_id,
                seq,
            } => {
                if let Some(entries) = self.slot_mut(sender) {
                    entries.add_sent(message_id, seq);
                }
            }
            Undo::Moved { account, id, from } => {
                if let Some(slot) = (self.slot_mut(account)).and_then(|e| e.by_id.get_mut(id)) {
                    slot.place = from;
                }
            }
            Undo::BatchAdded { row } => {
                self.journal.take(row);
            }
            Undo::HeldReleased { row } => self.journal.release(row, true),
            Undo::ReceiptWritten {
                owner,
                message_id,
                from,
                to,
            } => {
                if let Some(entries) = self.slot_mut(owner)
                    && let Some(recipient) = entries.receipts.remove(message_id, to)
                {
                    entries.receipts.insert(message_id, from, recipient);
                }
            }
            Undo::ReceiptBatchAdded { row } => self.receipt_log.drop_batch(row),
            Undo::ReceiptReleased { row } => self.receipt_log.release(row, true),
            Undo::ReleasesWritten { row } => self.releases.unwrite(row),
            Undo::ReleasesUnnamed { row } => self.releases.rename(row),
            Undo::SentBatchAdded { row } => {
                self.sent_batches.take(row);
            }
            Undo::SentReleased { row } => self.sent_batches.release(row, true),
            Undo::AccountAdded { .. }
            | Undo::AccountRemoved { .. }
            | Undo::ReceiptForgotten { .. }
            | Undo::BatchTaken { .. }
            | Undo::ReceiptBatchTaken { .. }
            | Undo::SentBatchTaken { .. } => self.undo_owning(undo),
        }
    }

    /// Undoes a change whose record has a part in [`Owned`].
    fn undo_owning(&mut self, undo: Undo) {
        match undo {
            Undo::AccountAdded { id } => {
                if let Some(Owned::Account(account)) = self.owned.pop() {
                    self.unadd_account(&account, id);
                }
            }
            Undo::AccountRemoved { id } => {
                if let Some(Owned::Removed(account, entries)) = self.owned.pop()
                    && let Some(slot) = self.slots.get_mut(id)
                {
                    *slot = Some(*entries);
                    self.ids.insert(account, id);
                }
            }
            Undo::ReceiptForgotten {
                owner,
                message_id,
                seq,
            } => {
                if let Some(Owned::Name(recipient)) = self.owned.pop()
                    && let Some(entries) = self.slot_mut(owner)
                {
                    entries.add_receipt(message_id, recipient, seq);
                }
            }
            Undo::BatchTaken { row } => {
                if let Some(Owned::Batch(batch)) = self.owned.pop() {
                    self.journal.add(row, *batch, Instant::now());
                }
            }
            Undo::ReceiptBatchTaken { row } => {
                if let Some(Owned::ReceiptBatch(batch)) = self.owned.pop() {
                    self.receipt_log.put_back(row, *batch);
                }
            }
            Undo::SentBatchTaken { row } => {
                if let Some(Owned::SentBatch(batch)) = self.owned.pop() {
                    self.sent_batches.add(row, *batch, Instant::now());
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(seq: i64, bytes: u64) -> Slot {
        Slot {
            place: Place::Row(seq),
            bytes,
        }
    }

    #[test]
    fn the_release_log_names_its_rows_in_batches_and_a_rollback_undoes_both() {
        let mut index = MailIndex::default();
        let mut batch = Batch::default();
        let copy = JournalCopy {
            recipient: "bob",
            id: 1,
            sender: "amy",
            to_names: "bob",
            ts_ms: 1,
            text: "hi",
            receipt: false,
            number: 1,
        };
        batch.push(&copy);
        batch.push(&JournalCopy { id: 2, ..copy });
        index.add_batch(1, batch);
        index.commit();
        // A group that released a copy and was rolled back wrote nothing.
        index.release_held(1, 0);
        assert!(index.close_releases().is_some());
        index.roll_back();
        assert_eq!(index.releases.rows(), 0);
        index.release_held(1, 0);
        index.roll_back();
        assert!(index.close_releases().is_none(), "dropped with its group");
        // Committed, the row is named in the batch and goes with it.
        index.release_held(1, 1);
        let (row, _) = index.close_releases().unwrap();
        index.commit();
        let taken = index.take_batch(1).unwrap();
        assert!(taken.releases().contains(&row));
        assert_eq!(index.unname(taken.releases()), [row]);
        index.batch_taken(1, taken);
        // Rolled back, the batch is back and the row needed again.
        index.roll_back();
        let taken = index.take_batch(1).unwrap();
        assert_eq!(index.unname(taken.releases()), [row]);
    }

    #[test]
    fn a_rolled_back_group_leaves_the_index_as_it_was() {
        let mut index = MailIndex::default();
        index.add_account("bob");
        index.add("bob", 1, slot(1, 10));
        index.add("bob", 2, slot(2, 20));
        index.commit();

        index.add("bob", 3, slot(3, 30));
        assert_eq!(index.remove("bob", 1), Some(slot(1, 10)));
        index.add_account("carol");
        index.add("carol", 4, slot(4, 40));
        assert_eq!(index.remove_account("bob").map(Entries::count), Some(2));
        index.roll_back();

        let bob = index.get("bob").unwrap();
        assert_eq!(bob.by_id.keys().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(bob.bytes, 30);
        assert!(index.get("carol").is_none());
    }

    #[test]
    fn an_account_deleted_and_made_again_in_a_rolled_back_group_is_as_it_was() {
        let mut index = MailIndex::default();
        index.add_account("bob");
        index.add("bob", 1, slot(1, 10));
        index.commit();

        assert!(index.remove_account("bob").is_some());
        index.add_account("bob");
        index.add("bob", 2, slot(2, 20));
        assert_eq!(index.get("bob").map(Entries::count), Some(1));
        index.roll_back();
        let bob = index.get("bob").unwrap();
        assert_eq!(bob.by_id.keys().collect::<Vec<_>>(), [1]);
        assert_eq!((bob.bytes, index.slots.len()), (10, 1));
        // And committed, the new one is there alone.
        assert!(index.remove_account("bob").is_some());
        index.add_account("bob");
        index.commit();
        assert_eq!(index.get("bob").map(Entries::count), Some(0));
        assert_eq!(index.iter().count(), 1);
    }

    #[test]
    fn an_undo_record_is_small() {
        // Several are pushed for every message a reliable session sends.
        assert!(
            std::mem::size_of::<Undo>() <= 64,
            "{}",
            std::mem::size_of::<Undo>()
        );
    }

    #[test]
    fn what_a_large_group_of_undo_records_owned_is_given_back_once_trimmed() {
        let mut index = MailIndex::default();
        index.add_account("bob");
        let many = UNDO_KEPT as u64 * 2;
        for id in 1..=many {
            index.keep_receipt("bob", id, "amy", ReceiptRow::Kept(id.cast_signed()));
        }
        index.commit();
        // Each receipt forgotten keeps its recipient's name beside its
        // record, for a roll-back.
        for id in 1..=many {
            assert!(index.forget_receipt("bob", id, "amy").is_some());
        }
        assert!(index.owned.capacity() > UNDO_KEPT);
        index.roll_back();
        assert_eq!(index.get("bob").map(Entries::receipt_count), Some(many));
        assert!(index.undo_to_trim());
        index.trim_undo();
        assert!(index.owned.capacity() <= UNDO_KEPT && !index.undo_to_trim());
    }

    #[test]
    fn a_large_group_leaves_no_large_undo_vector_behind_once_trimmed() {
        let mut index = MailIndex::default();
        index.add_account("bob");
        let many = UNDO_KEPT as u64 * 4;
        for id in 1..=many {
            index.add("bob", id, slot(id.cast_signed(), 1));
        }
        assert!(index.undo.capacity() > UNDO_KEPT);
        index.commit();
        index.trim_undo();
        assert!(index.undo.capacity() <= UNDO_KEPT);
        assert_eq!(index.get("bob").map(Entries::count), Some(many));
        // The same after a roll-back, which still undoes every record.
        for id in 1..=many {
            assert!(index.remove("bob", id).is_some());
        }
        index.roll_back();
        index.trim_undo();
        assert!(index.undo.capacity() <= UNDO_KEPT);
        assert_eq!(index.get("bob").map(Entries::count), Some(many));
    }

    fn batched(message_id: u64, recipient: &str) -> BatchedReceipt<'_> {
        BatchedReceipt {
            owner: "amy",
            message_id,
            recipient,
            received_ms: 5,
        }
    }

    #[test]
    fn a_rolled_back_group_leaves_the_receipts_as_they_were() {
        use ReceiptRow::Kept;
        let rows = |index: &MailIndex| -> Vec<ReceiptRow> {
            let rows = index.get("amy").map(Entries::receipt_rows);
            rows.unwrap_or_default()
                .into_iter()
                .map(|k| k.row)
                .collect()
        };
        let mut index = MailIndex::default();
        index.add_account("amy");
        index.keep_receipt("amy", 7, "Bob", Kept(1));
        index.keep_receipt("amy", 7, "Carol", Kept(2));
        index.keep_batched(&batched(9, "Bob"));
        let (row, _) = index.close_receipts().unwrap();
        let in_batch = ReceiptRow::Batch {
            row,
            at: 0,
            received_ms: 5,
        };
        index.commit();

        assert_eq!(index.forget_receipt("amy", 7, "Bob"), Some(Kept(1)));
        assert_eq!(index.forget_receipt("amy", 7, "Bob"), None);
        assert_eq!(index.forget_receipt("amy", 7, "bob"), None);
        index.keep_receipt("amy", 11, "Bob", Kept(4));
        index.keep_batched(&batched(12, "Bob"));
        assert_eq!(rows(&index).len(), 4);
        // The batch comes due (all asked for), and its receipt is written.
        assert_eq!(index.due_receipt_batches(true, Instant::now()), [row]);
        let batch = index.take_receipt_batch(row).unwrap();
        assert!(index.receipt_is_at("amy", 9, "Bob", in_batch));
        index.written("amy", 9, in_batch, 5);
        index.receipt_batch_taken(row, batch);
        assert!(!index.receipt_is_at("amy", 9, "Bob", in_batch));
        let taken: Vec<u64> = (index.take_receipts("amy").into_iter())
            .map(|kept| kept.message_id)
            .collect();
        assert_eq!(taken, [7, 9, 11, 12]);
        assert_eq!(index.get("amy").map(Entries::receipt_count), Some(0));
        index.roll_back();

        let after = rows(&index);
        assert_eq!(after.len(), 3);
        for row in [Kept(1), Kept(2), in_batch] {
            assert!(after.contains(&row), "{row:?} in {after:?}");
        }
        assert_eq!(index.get("amy").map(Entries::receipt_count), Some(3));
        // The batch is back, still owed its receipt, and the rolled-back
        // group's own batch is gone.
        assert!(index.close_receipts().is_none());
        assert_eq!(index.due_receipt_batches(true, Instant::now()), [row]);
        assert!(index.forget_receipt("nobody", 7, "Bob").is_none());
    }

    #[test]
    fn a_batch_of_receipts_is_spent_once_each_is_forgotten() {
        let mut index = MailIndex::default();
        index.add_account("amy");
        index.keep_batched(&batched(1, "Bob"));
        index.keep_batched(&batched(2, "Bob"));
        // One for an owner with no account is not kept.
        index.keep_batched(&BatchedReceipt {
            owner: "nobody",
            ..batched(3, "Bob")
        });
        let (row, blob) = index.close_receipts().unwrap();
        assert!(!blob.is_empty());
        index.commit();
        let now = Instant::now();
        assert!(index.due_receipt_batches(false, now).is_empty());
        for id in [1, 2] {
            if let Some(seq) = index.forget_receipt("amy", id, "Bob") {
                let ReceiptRow::Batch {
                    row: at_row, at, ..
                } = seq
                else {
                    panic!("{seq:?} is not batched");
                };
                index.release_receipt(at_row, at);
            }
        }
        // Spent: deleted by the next commit, however young.
        assert_eq!(index.due_receipt_batches(false, now), [row]);
    }

    #[test]
    fn the_sent_window_keeps_the_newest_and_a_rolled_back_group_restores_it() {
        let mut index = MailIndex::default();
        index.add_account("amy");
        let window = crate::SENT_WINDOW as u64;
        for id in 1..=window {
            assert!(index.add_sent("amy", id * 10, SentPlace::Row(id.cast_signed())));
        }
        index.commit();
        assert!(index.has_sent("amy", 10));
        assert!(
            !index.add_sent("amy", 10, SentPlace::Row(9_999)),
            "already recorded"
        );
        // One more: the oldest leaves the window.
        assert!(index.add_sent("amy", (window + 1) * 10, SentPlace::Row(5_000)));
        assert!(!index.has_sent("amy", 10));
        index.sweep_sent(vec![("amy".to_owned(), 20, SentPlace::Row(2))]);
        assert!(!index.has_sent("amy", 20));
        assert!(!index.add_sent("nobody", 1, SentPlace::Row(1)));
        index.roll_back();

        let amy = index.get("amy").unwrap();
        let rows = amy.sent_rows();
        assert_eq!(rows.len() as u64, window);
        assert_eq!(rows.first(), Some(&SentPlace::Row(1)));
        assert!(index.has_sent("amy", 10) && index.has_sent("amy", 20));
        assert!(!index.has_sent("amy", (window + 1) * 10));
    }

    #[test]
    fn a_message_for_no_account_or_already_there_is_not_counted_twice() {
        let mut index = MailIndex::default();
        index.add("nobody", 1, slot(1, 10));
        assert!(index.get("nobody").is_none());
        index.add_account("bob");
        index.add("bob", 1, slot(1, 10));
        index.add("bob", 1, slot(2, 10));
        assert_eq!(
            index.get("bob").map(|bob| (bob.count(), bob.bytes)),
            Some((1, 10))
        );
    }
}
