//! Every SQL statement the store runs, one function each.
//!
//! The writes run inside the writer's group transaction and return
//! `rusqlite::Result<Result<T, StoreError>>`: the outer error is SQLite
//! failing (it fails the whole group), the inner one a refusal that is this
//! request's answer alone (no such account, say), which fails nothing else.
//! The reads run on the reader's connection.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::index::{Entries, KeptRow, MailIndex, Place, ReceiptRow, RecentNames, SentPlace, Slot};
use crate::jobs::Txn;
use crate::journal::{Batch, INSERT_COPY, JournalCopy, insert_copy};
use crate::logged;
use crate::message::fold;
use crate::receipt_log::{BatchedReceipt, ReceiptBatch};
use crate::release_log;
use crate::routed::{CopyView, SentView};
use crate::sent_log;
use crate::{
    Account, Confirmed, Expired, KeptReceipt, LostNumbers, Mailbox, NewAccount, Routed, SentRecord,
    StoreError, StoreOutcome, StoredMessage,
};

/// How long what became of a reliable session's message is kept
/// ([`SentRecord`]): a client that sends it again within this, after a lost
/// connection or a hub restart, is answered with the outcome instead of
/// the message being routed twice.
pub const SENT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// How many of a sender's newest [`SentRecord`]s a login reads: the hub
/// recognises a message sent again among these. The client library keeps
/// no more than this many messages unacknowledged.
pub const SENT_WINDOW: usize = 1024;

/// Records what became of messages reliable sessions sent, in the
/// transaction that stores their copies (so a message whose copies were
/// stored is never routed again when sent again): the batch's records as
/// one row of `sent_batches` (`sent_log.rs`), each found by the index. A
/// record already in its sender's window is left as it was; one for a
/// sender with no account is not kept.
pub(crate) fn remember_sent<'a>(
    tx: &mut Txn<'_>,
    sent: impl Iterator<Item = SentView<'a>>,
) -> rusqlite::Result<()> {
    // One row for the batch's records, given now so that each is indexed
    // as it is checked (`sent_log.rs`).
    let row = tx.index.sent_row();
    let mut records = Vec::new();
    let mut newest = 0;
    let mut added = 0_u32;
    for record in sent {
        let sender = fold(record.sender);
        if tx.index.get(&sender).is_none() || tx.index.has_sent(&sender, record.message_id) {
            continue;
        }
        let at = sent_log::push(&mut records, &sender, &record);
        newest = newest.max(record.ts_ms);
        let place = SentPlace::Batch { row, at };
        added += u32::from(tx.index.add_sent(&sender, record.message_id, place));
    }
    if records.is_empty() {
        tx.index.sent_made();
        return Ok(());
    }
    if let Some(logged) = tx.logged.as_deref_mut() {
        // In the batch log, and held in memory until settled (`sent_log.rs`).
        logged.stage(logged::SENT, row, &records);
        tx.index.hold_sent(row, records, added, newest);
    } else {
        tx.conn
            .prepare_cached("INSERT INTO sent_batches (seq, ts_ms, records) VALUES (?1, ?2, ?3)")?
            .execute(params![row, newest, records])?;
        tx.index.sent_made();
    }
    tx.index.sent_row_used(row);
    Ok(())
}

/// Records numbers of an account's that will never be delivered.
fn lose_numbers(
    conn: &Connection,
    folded: &str,
    (first, last): (u64, u64),
    reason: u16,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO gaps (account, first, last, reason) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![folded, first, last, reason])?;
    Ok(())
}

/// Records numbers accounts lost to a failed commit (`MailStore::lose_numbers`),
/// for accounts that exist, and raises their last numbers past them.
pub(crate) fn record_lost(
    tx: &mut Txn<'_>,
    lost: &[(String, LostNumbers)],
) -> rusqlite::Result<()> {
    for (account, numbers) in lost {
        let folded = fold(account);
        if tx.index.get(&folded).is_none() {
            continue;
        }
        let highest = numbers.last.max(numbers.first);
        lose_numbers(tx.conn, &folded, (numbers.first, highest), numbers.reason)?;
        raise_last_number(tx.conn, &folded, highest)?;
    }
    Ok(())
}

/// Takes (reads and deletes) the numbers an account lost, oldest first.
pub(crate) fn take_gaps(tx: &mut Txn<'_>, account: &str) -> rusqlite::Result<Vec<LostNumbers>> {
    let mut taken: Vec<(i64, LostNumbers)> = tx
        .conn
        .prepare_cached("DELETE FROM gaps WHERE account = ?1 RETURNING seq, first, last, reason")?
        .query_map([fold(account)], |row| {
            Ok((
                row.get(0)?,
                LostNumbers {
                    first: row.get(1)?,
                    last: row.get(2)?,
                    reason: row.get(3)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    taken.sort_by_key(|(seq, _)| *seq);
    Ok(taken.into_iter().map(|(_, lost)| lost).collect())
}

/// What `take` reads of an account's entries in the index (its default
/// if there is no such account): a read's rows, taken on the writer's
/// thread (`MailStore`'s `indexed_read`).
pub(crate) fn indexed<T: Default>(index: &MailIndex, nick: &str, take: fn(&Entries) -> T) -> T {
    index.get(&fold(nick)).map(take).unwrap_or_default()
}

/// Where one of a sender's records is read from: a row, or (held in the
/// writer's memory while only in the batch log) the record itself, read
/// there.
#[derive(Debug)]
pub(crate) enum SentSource {
    Place(SentPlace),
    Record(SentRecord),
}

/// A sender's window of records, oldest first, as the writer's thread
/// finds them (`MailStore::sent`): those held in memory read there.
pub(crate) fn sent_sources(index: &MailIndex, sender: &str) -> Vec<SentSource> {
    let places = indexed(index, sender, Entries::sent_rows);
    let held = |place: SentPlace| {
        let SentPlace::Batch { row, at } = place else {
            return None;
        };
        let blob = index.held_sent(row)?;
        let (record, _) = sent_log::read(blob, usize::try_from(at).ok()?)?;
        Some(sent_record(sender, &record))
    };
    let source = |place| held(place).map_or(SentSource::Place(place), SentSource::Record);
    places.into_iter().map(source).collect()
}

/// `sender`'s record as a batch of them has it.
fn sent_record(sender: &str, record: &SentView<'_>) -> SentRecord {
    SentRecord {
        sender: sender.to_owned(),
        message_id: record.message_id,
        client_id: record.client_id,
        ts_ms: record.ts_ms,
        delivered: record.delivered,
        statuses: SentRecord::split_statuses(record.statuses),
    }
}

/// A sender's newest [`SENT_WINDOW`] records, oldest first: `rows`, as of
/// the writes before this read (one swept since is left out).
pub(crate) fn sent(
    conn: &Connection,
    sender: &str,
    rows: Vec<SentSource>,
) -> rusqlite::Result<Vec<SentRecord>> {
    let tx = conn.unchecked_transaction()?;
    let mut read = tx.prepare_cached(
        "SELECT message_id, client_id, ts_ms, delivered, statuses FROM sent WHERE seq = ?1",
    )?;
    let mut read_batch = tx.prepare_cached("SELECT records FROM sent_batches WHERE seq = ?1")?;
    // The window's records are mostly in a few batches, in order: each is
    // read once.
    let mut batch: Option<(i64, Option<Vec<u8>>)> = None;
    let mut records = Vec::with_capacity(rows.len().min(SENT_WINDOW));
    for source in rows {
        let place = match source {
            SentSource::Place(place) => place,
            SentSource::Record(record) => {
                records.push(record);
                continue;
            }
        };
        let seq = match place {
            SentPlace::Row(seq) => seq,
            SentPlace::Batch { row, at } => {
                if batch.as_ref().is_none_or(|(read, _)| *read != row) {
                    let blob = read_batch
                        .query_row([row], |found| found.get(0))
                        .optional()?;
                    batch = Some((row, blob));
                }
                let logged = (batch.as_ref())
                    .and_then(|(_, blob)| blob.as_deref())
                    .and_then(|blob| sent_log::read(blob, usize::try_from(at).ok()?));
                records.extend(logged.map(|(record, _)| sent_record(sender, &record)));
                continue;
            }
        };
        let record = read
            .query_row([seq], |row| {
                let statuses: String = row.get(4)?;
                Ok(SentRecord {
                    sender: sender.to_owned(),
                    message_id: row.get(0)?,
                    client_id: row.get(1)?,
                    ts_ms: row.get(2)?,
                    delivered: row.get(3)?,
                    statuses: SentRecord::split_statuses(&statuses),
                })
            })
            .optional()?;
        records.extend(record);
    }
    drop((read, read_batch));
    tx.finish()?;
    Ok(records)
}

/// A mailbox's limits, as the writer applies them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quota {
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
}

/// A refusal, or done, as the answer of a write that changed `changed` rows.
fn changed_or(changed: usize, refusal: StoreError) -> Result<(), StoreError> {
    if changed == 0 { Err(refusal) } else { Ok(()) }
}

/// Stores a batch of routed copies, and records what became of the
/// messages reliable sessions sent, in one transaction.
pub(crate) fn store_routed(
    tx: &mut Txn<'_>,
    quota: Quota,
    routed: &Routed,
) -> rusqlite::Result<Vec<StoreOutcome>> {
    remember_sent(tx, routed.sent_views())?;
    store(tx, quota, routed.copy_views())
}

/// Stores `messages` in order, each against its mailbox's quota (counting
/// the ones before it), and raises the last message id past them.
///
/// The quota, the account's existence and an id already stored are checked
/// in the index; only the rows are written, appended to `mailbox`.
pub(crate) fn store<'a>(
    tx: &mut Txn<'_>,
    quota: Quota,
    messages: impl Iterator<Item = CopyView<'a>>,
) -> rusqlite::Result<Vec<StoreOutcome>> {
    let mut insert = tx.conn.prepare_cached(INSERT_COPY)?;
    let mut outcomes = Vec::with_capacity(messages.size_hint().0);
    let mut last = None;
    // Held copies go to one row of the journal, given now so that each is
    // indexed (and counted against its quota) as it is checked.
    let mut held = Batch::default();
    let journal_row = tx.index.journal_row();
    let mut held_newest = 0;
    for message in messages {
        last = last.max(Some(message.id));
        let recipient = fold(message.recipient);
        let bytes = message.stored_bytes();
        let outcome = match tx.index.get(&recipient) {
            None => StoreOutcome::NoSuchAccount,
            // A message already there (the same id) counts as stored, once.
            Some(entries) if entries.holds(message.id) => StoreOutcome::Stored,
            Some(entries)
                if entries.count() >= quota.messages || entries.bytes + bytes > quota.bytes =>
            {
                // Its number will never be delivered: its owner is told
                // (`GAP`), and it is never given again.
                if message.number > 0 {
                    lose_numbers(tx.conn, &recipient, (message.number, message.number), 33)?;
                    raise_last_number(tx.conn, &recipient, message.number)?;
                }
                StoreOutcome::MailboxFull
            }
            Some(_) if message.held => {
                let copy = held.push(&JournalCopy {
                    recipient: &recipient,
                    id: message.id,
                    sender: message.sender,
                    to_names: &message.to_names,
                    ts_ms: message.ts_ms,
                    text: message.text,
                    receipt: message.receipt,
                    number: message.number,
                });
                held_newest = held_newest.max(message.ts_ms);
                let place = Place::Journal {
                    row: journal_row,
                    copy,
                };
                tx.index.add(&recipient, message.id, Slot { place, bytes });
                StoreOutcome::Stored
            }
            Some(_) => {
                insert.execute(params![
                    recipient,
                    message.id,
                    message.sender,
                    message.to_names,
                    message.ts_ms,
                    message.text,
                    bytes,
                    message.receipt,
                    message.number,
                ])?;
                let place = Place::Row(tx.conn.last_insert_rowid());
                tx.index.add(&recipient, message.id, Slot { place, bytes });
                StoreOutcome::Stored
            }
        };
        outcomes.push(outcome);
    }
    let logged_held = !held.is_empty() && tx.logged.is_some();
    if let Some(logged) = tx.logged.as_deref_mut() {
        if let Some(last) = last {
            logged.note_id(last);
        }
        if !held.is_empty() {
            logged.stage(logged::JOURNAL, journal_row, held.blob());
        }
    } else if !held.is_empty() {
        tx.conn
            .prepare_cached("INSERT INTO journal (seq, ts_ms, copies) VALUES (?1, ?2, ?3)")?
            .execute(params![journal_row, held_newest, held.blob()])?;
    }
    if !held.is_empty() {
        tx.index.add_batch(journal_row, held);
    }
    // The batch log's frame carries the last id (`logged.rs`).
    if let Some(last) = last.filter(|_| !logged_held) {
        tx.conn
            .prepare_cached(
                "UPDATE hub_state SET value = max(value, ?1) WHERE key = 'last_message_id'",
            )?
            .execute([last])?;
    }
    Ok(outcomes)
}

/// Raises an account's last number to `highest` (the highest number among
/// messages leaving its mailbox). Numbers are kept with the messages while
/// they are stored (the last given is then the mailbox's highest), and in
/// the account once they leave it: storing a message costs nothing more.
fn raise_last_number(conn: &Connection, folded: &str, highest: u64) -> rusqlite::Result<()> {
    if highest > 0 {
        conn.prepare_cached(
            "UPDATE accounts SET last_number = max(last_number, ?1) WHERE nick_folded = ?2",
        )?
        .execute(params![highest, folded])?;
    }
    Ok(())
}

/// Each mailbox's highest number, by folded nickname (one scan of the
/// table: read with the accounts, when a hub starts).
fn highest_numbers(conn: &Connection) -> rusqlite::Result<HashMap<String, u64>> {
    conn.prepare_cached(
        "SELECT recipient, max(number) FROM mailbox WHERE number > 0 GROUP BY recipient",
    )?
    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
    .collect()
}

/// Deletes one stored message's row, confirmed and owed nothing more. One
/// in the journal is released from its batch instead (`journal.rs`): a
/// batch none of whose copies is needed any more is deleted at the next
/// commit.
fn delete_copy(tx: &mut Txn<'_>, place: Place) -> rusqlite::Result<()> {
    match place {
        Place::Row(seq) => {
            tx.conn
                .prepare_cached("DELETE FROM mailbox WHERE seq = ?1")?
                .execute([seq])?;
        }
        Place::Journal { row, copy } => tx.index.release_held(row, copy),
    }
    Ok(())
}

/// Removes the named messages from a mailbox; answers how many went, and
/// the senders owed a receipt: those with an account have it kept here, in
/// the group's batch of the receipt log (`receipt_log.rs`), until they
/// confirm it. A reliable session confirms its receipts within
/// milliseconds, so most are never written but as part of their batch's
/// one row.
pub(crate) fn confirm(
    tx: &mut Txn<'_>,
    recipient: &str,
    ids: &[u64],
    received_ms: u64,
) -> rusqlite::Result<Confirmed> {
    take_out(tx, recipient, ids, Some(received_ms))
}

/// Removes the named messages from a mailbox, as [`confirm`] does, and
/// keeps and answers no receipt: the hub told each sender owed one already,
/// and its client confirmed it (or the hub keeps it itself, in the same
/// request: [`release_all`]).
pub(crate) fn release(tx: &mut Txn<'_>, recipient: &str, ids: &[u64]) -> rusqlite::Result<()> {
    take_out(tx, recipient, ids, None).map(drop)
}

/// Receipts the hub told their senders, and the copies confirmed that owed
/// them: the receipts are kept first (those with an account, until they
/// are confirmed), then the copies taken out of their mailboxes, in one
/// commit.
pub(crate) fn release_all(
    tx: &mut Txn<'_>,
    releases: &[(String, Vec<u64>)],
    receipts: &[KeptReceipt],
) -> rusqlite::Result<()> {
    for receipt in receipts {
        let owner = fold(&receipt.owner);
        tx.index.keep_batched(&BatchedReceipt {
            owner: &owner,
            message_id: receipt.message_id,
            recipient: &receipt.recipient,
            received_ms: receipt.received_ms,
        });
    }
    for (recipient, ids) in releases {
        release(tx, recipient, ids)?;
    }
    Ok(())
}

/// [`confirm`] (with the time received, `Some`) or [`release`] (`None`:
/// no receipt is looked at).
fn take_out(
    tx: &mut Txn<'_>,
    recipient: &str,
    ids: &[u64],
    received_ms: Option<u64>,
) -> rusqlite::Result<Confirmed> {
    let shown = recipient;
    let recipient = fold(recipient);
    // Read, then deleted: one `DELETE ... RETURNING` a row cost the writer
    // more than the two (SQLite gathers a statement's returned rows before
    // it hands out the first). bench direct --reliable, 4 alternating
    // rounds: 182,000 -> 190,000 msgs/s (medians), the writer's CPU 3.39 ->
    // 3.19 s a run.
    let mut read = tx
        .conn
        .prepare_cached("SELECT sender, receipt, number FROM mailbox WHERE seq = ?1")?;
    let mut confirmed = Confirmed::default();
    let mut highest = 0;
    // Folded, each name shared by its receipts: a name a receipt each was
    // an allocation in the writer and two more in the hub (which folded
    // it into an `Arc<str>` of its own).
    let mut senders = RecentNames::default();
    let receipts = received_ms.is_some();
    for &id in ids {
        if let Some(slot) = tx.index.remove(&recipient, id) {
            // A held copy is read from the journal's memory; a row, from
            // the disk. Its sender, if it is owed a receipt.
            let (owed, number) = match slot.place {
                Place::Row(seq) => {
                    let (sender, receipt, number): (String, bool, u64) =
                        read.query_row([seq], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
                    (
                        (receipt && receipts).then(|| senders.share(&fold(&sender))),
                        number,
                    )
                }
                Place::Journal { .. } => match tx.index.held_owed(slot.place) {
                    Some(copy) => (
                        (copy.receipt && receipts).then(|| senders.share(&fold(copy.sender))),
                        copy.number,
                    ),
                    // Its batch is not held (it cannot be): nothing is
                    // owed.
                    None => (None, 0),
                },
            };
            confirmed.removed += 1;
            highest = highest.max(number);
            delete_copy(tx, slot.place)?;
            let (Some(sender), Some(received_ms)) = (owed, received_ms) else {
                continue;
            };
            let kept = tx.index.keep_batched(&BatchedReceipt {
                owner: &sender,
                message_id: id,
                recipient: shown,
                received_ms,
            });
            if kept {
                confirmed.kept.push((id, sender));
            } else {
                // Not kept (no account, or full): told to the sender if it
                // is online.
                confirmed.receipts.push((id, sender));
            }
        }
    }
    raise_last_number(tx.conn, &recipient, highest)?;
    Ok(confirmed)
}

/// What became of a receipt handed to [`keep`].
enum Kept {
    Yes,
    /// Its owner holds [`MAX_KEPT_RECEIPTS`] already: dropped.
    Full,
    /// Its owner has no account: not kept.
    NoAccount,
}

/// Keeps a receipt for its owner: a row appended to `receipts`, found by
/// the index (which also counts an owner's).
fn keep(tx: &mut Txn<'_>, receipt: &KeptReceipt) -> rusqlite::Result<Kept> {
    let owner = fold(&receipt.owner);
    let Some(entries) = tx.index.get(&owner) else {
        return Ok(Kept::NoAccount);
    };
    if entries.receipt_count() >= MAX_KEPT_RECEIPTS {
        return Ok(Kept::Full);
    }
    tx.conn.prepare_cached(INSERT_RECEIPT)?.execute(params![
        owner,
        receipt.message_id,
        receipt.recipient,
        receipt.received_ms
    ])?;
    let seq = ReceiptRow::Kept(tx.conn.last_insert_rowid());
    (tx.index).keep_receipt(&owner, receipt.message_id, &receipt.recipient, seq);
    Ok(Kept::Yes)
}

/// Receipts kept for one sender at most: past it, more are dropped (a
/// sender offline for long, whose many messages are all being confirmed).
pub const MAX_KEPT_RECEIPTS: u64 = 100_000;

/// Keeps receipts for their owners' next login.
pub(crate) fn keep_receipts(tx: &mut Txn<'_>, receipts: &[KeptReceipt]) -> rusqlite::Result<()> {
    for receipt in receipts {
        keep(tx, receipt)?;
    }
    Ok(())
}

/// Writes what waited in memory and is due (`all`: everything): the
/// receipt log's batches ([`settle_receipts`]), then the journal's
/// ([`settle_journal`]). Run first in every group commit; with `all`, by
/// whatever needs the disk to say everything (a sweep, an account's
/// deletion, the store's close).
pub(crate) fn settle(tx: &mut Txn<'_>, all: bool) -> rusqlite::Result<()> {
    settle_receipts(tx, all)?;
    settle_journal(tx, all)?;
    settle_sent(tx, all)
}

/// Settles the held batches of sent records that are due
/// (`sent_log.rs`): one with records still in their senders' windows is
/// written as the row of `sent_batches` it stands for (where its records'
/// places point already); one with none is dropped.
fn settle_sent(tx: &mut Txn<'_>, all: bool) -> rusqlite::Result<()> {
    let due = tx.index.due_sent_batches(all, std::time::Instant::now());
    for row in due {
        let Some(batch) = tx.index.take_sent_batch(row) else {
            continue;
        };
        let settled = if batch.is_spent() {
            Ok(())
        } else {
            (tx.conn)
                .prepare_cached(
                    "INSERT INTO sent_batches (seq, ts_ms, records) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut insert| insert.execute(params![row, batch.newest, batch.bytes()]))
                .and_then(|_| logged::settled(tx.conn, "batch_log_sent", row))
        };
        tx.index.sent_batch_taken(row, batch);
        settled?;
    }
    Ok(())
}

/// Writes the group's batch of receipts kept (`receipt_log.rs`), if it
/// has one to write: run last in every group commit.
pub(crate) fn finish(tx: &mut Txn<'_>) -> rusqlite::Result<()> {
    if let Some((row, blob)) = tx.index.close_receipts() {
        if let Some(logged) = tx.logged.as_deref_mut() {
            logged.stage(logged::RECEIPTS, row, blob);
        } else {
            tx.conn
                .prepare_cached("INSERT INTO receipt_batches (seq, receipts) VALUES (?1, ?2)")?
                .execute(params![row, blob])?;
        }
    }
    if let Some((row, blob)) = tx.index.close_releases() {
        if let Some(logged) = tx.logged.as_deref_mut() {
            logged.stage(logged::RELEASES, row, &blob);
        } else {
            release_log::write(tx.conn, row, &blob)?;
        }
    }
    Ok(())
}

/// Batch `releases` named by the release log went: deletes the log's rows
/// that named nothing else still held.
fn unname(tx: &mut Txn<'_>, releases: &[i64]) -> rusqlite::Result<()> {
    for row in tx.index.unname(releases) {
        // A release log's entry in the batch log needs no deleting: it
        // goes with its segment.
        if tx.logged.is_none() {
            release_log::delete(tx.conn, row)?;
        }
    }
    Ok(())
}

/// Settles the receipt log's batches that are due: each receipt the index
/// still holds in the batch is written to `receipts`, and the index moved
/// to its row; then the batch's row is deleted.
fn settle_receipts(tx: &mut Txn<'_>, all: bool) -> rusqlite::Result<()> {
    let due = tx.index.due_receipt_batches(all, std::time::Instant::now());
    for row in due {
        let Some(batch) = tx.index.take_receipt_batch(row) else {
            continue;
        };
        let settled =
            settle_receipt_batch(tx, row, &batch).and_then(|()| unname(tx, batch.releases()));
        tx.index.receipt_batch_taken(row, batch);
        settled?;
    }
    Ok(())
}

fn settle_receipt_batch(tx: &mut Txn<'_>, row: i64, batch: &ReceiptBatch) -> rusqlite::Result<()> {
    let conn = tx.conn;
    if !batch.is_spent() {
        let mut insert = conn.prepare_cached(INSERT_RECEIPT)?;
        for (at, receipt) in batch.receipts() {
            let from = ReceiptRow::Batch {
                row,
                at,
                received_ms: receipt.received_ms,
            };
            let (owner, id, recipient) = (receipt.owner, receipt.message_id, receipt.recipient);
            if tx.index.receipt_is_at(owner, id, recipient, from) {
                let seq = insert.insert(params![owner, id, recipient, receipt.received_ms])?;
                tx.index.written(owner, id, from, seq);
            }
        }
    }
    if tx.logged.is_none() {
        conn.prepare_cached("DELETE FROM receipt_batches WHERE seq = ?1")?
            .execute([row])?;
    } else if !batch.is_spent() {
        logged::settled(conn, "batch_log_receipts", row)?;
    }
    Ok(())
}

/// Settles the journal's batches that are due (`journal.rs`): each copy
/// the index still holds in the batch is written to `mailbox`, and the
/// index moved to its row; the others (confirmed) are dropped; then the
/// batch's row is deleted.
fn settle_journal(tx: &mut Txn<'_>, all: bool) -> rusqlite::Result<()> {
    let due = tx.index.due_batches(all, std::time::Instant::now());
    for row in due {
        let Some(batch) = tx.index.take_batch(row) else {
            continue;
        };
        let settled = settle_batch(tx, row, &batch).and_then(|()| unname(tx, batch.releases()));
        tx.index.batch_taken(row, batch);
        settled?;
    }
    Ok(())
}

fn settle_batch(tx: &mut Txn<'_>, row: i64, batch: &Batch) -> rusqlite::Result<()> {
    let conn = tx.conn;
    if !batch.is_spent() {
        let mut insert = conn.prepare_cached(INSERT_COPY)?;
        for (copy_index, copy) in batch.copies() {
            let place = Place::Journal {
                row,
                copy: copy_index,
            };
            let unconfirmed = (tx.index.get(copy.recipient))
                .and_then(|entries| entries.by_id.get(copy.id))
                .is_some_and(|slot| slot.place == place);
            if unconfirmed {
                insert_copy(&mut insert, &copy)?;
                let to = Place::Row(conn.last_insert_rowid());
                tx.index.moved(copy.recipient, copy.id, to);
            }
        }
    }
    if tx.logged.is_none() {
        conn.prepare_cached("DELETE FROM journal WHERE seq = ?1")?
            .execute([row])?;
    } else if !batch.is_spent() {
        logged::settled(conn, "batch_log_journal", row)?;
    }
    Ok(())
}

/// Appends a receipt to `receipts`: its owner (folded), message id,
/// recipient (as shown) and when it was received.
pub(crate) const INSERT_RECEIPT: &str =
    "INSERT INTO receipts (owner, message_id, recipient, received_ms)
     VALUES (?1, ?2, ?3, ?4)";

/// Reads (`delete`: and deletes) the receipts `rows`, kept for `owner`; one
/// no longer there is left out. A batched one is read from the index's
/// copy of it (taking it releases it from its batch: the caller's part).
fn read_receipts(
    conn: &Connection,
    owner: &str,
    rows: Vec<KeptRow>,
    delete: bool,
) -> rusqlite::Result<Vec<KeptReceipt>> {
    let sql = if delete {
        "DELETE FROM receipts WHERE seq = ?1 RETURNING message_id, recipient, received_ms"
    } else {
        "SELECT message_id, recipient, received_ms FROM receipts WHERE seq = ?1"
    };
    let mut receipts = Vec::with_capacity(rows.len());
    for kept in rows {
        let receipt = match kept.row {
            ReceiptRow::Kept(seq) => conn
                .prepare_cached(sql)?
                .query_row([seq], |row| {
                    Ok(KeptReceipt {
                        owner: owner.to_owned(),
                        message_id: row.get(0)?,
                        recipient: row.get(1)?,
                        received_ms: row.get(2)?,
                    })
                })
                .optional()?,
            ReceiptRow::Batch { received_ms, .. } => Some(KeptReceipt {
                owner: owner.to_owned(),
                message_id: kept.message_id,
                recipient: kept.recipient.to_string(),
                received_ms,
            }),
        };
        receipts.extend(receipt);
    }
    Ok(receipts)
}

/// Deletes the receipt in `row`.
fn delete_receipt(tx: &mut Txn<'_>, row: ReceiptRow) -> rusqlite::Result<()> {
    match row {
        ReceiptRow::Kept(seq) => {
            tx.conn
                .prepare_cached("DELETE FROM receipts WHERE seq = ?1")?
                .execute([seq])?;
        }
        ReceiptRow::Batch { row, at, .. } => tx.index.release_receipt(row, at),
    }
    Ok(())
}

/// Reads and deletes the receipts kept for `owner`, oldest message first.
pub(crate) fn take_receipts(tx: &mut Txn<'_>, owner: &str) -> rusqlite::Result<Vec<KeptReceipt>> {
    let rows = tx.index.take_receipts(&fold(owner));
    let batched: Vec<(i64, u32)> = (rows.iter())
        .filter_map(|kept| match kept.row {
            ReceiptRow::Batch { row, at, .. } => Some((row, at)),
            ReceiptRow::Kept(_) => None,
        })
        .collect();
    let taken = read_receipts(tx.conn, owner, rows, true)?;
    for (row, at) in batched {
        tx.index.release_receipt(row, at);
    }
    Ok(taken)
}

/// The receipts kept for `owner`, oldest message first; they stay kept.
/// `rows` are theirs as of the writes before this read; one forgotten
/// since is left out.
pub(crate) fn kept_receipts(
    conn: &Connection,
    owner: &str,
    rows: Vec<KeptRow>,
) -> rusqlite::Result<Vec<KeptReceipt>> {
    let tx = conn.unchecked_transaction()?;
    let kept = read_receipts(&tx, owner, rows, false)?;
    tx.finish()?;
    Ok(kept)
}

/// Deletes the named receipts kept for `owner`.
pub(crate) fn forget_receipts(
    tx: &mut Txn<'_>,
    owner: &str,
    receipts: &[(u64, String)],
) -> rusqlite::Result<()> {
    let folded = fold(owner);
    for (message_id, recipient) in receipts {
        while let Some(row) = tx.index.forget_receipt(&folded, *message_id, recipient) {
            delete_receipt(tx, row)?;
        }
    }
    Ok(())
}

/// Deletes messages routed before `now_ms - max_age`, counting them per
/// mailbox, and adds each count to the account's untold ones.
pub(crate) fn expire(
    tx: &mut Txn<'_>,
    now_ms: u64,
    max_age: Duration,
) -> rusqlite::Result<Vec<Expired>> {
    // The journal's copies are written as rows (or dropped) first, and
    // the receipt log's receipts.
    settle(tx, true)?;
    let max_age_ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
    // Clamped into i64 so that a far-future clock reads as "everything".
    let cutoff = i64::try_from(now_ms.saturating_sub(max_age_ms)).unwrap_or(i64::MAX);
    // A scan of the table: the sweep runs hourly, and an index on age
    // would cost every stored message a second B-tree insert meanwhile.
    let gone: Vec<(String, u64, u64)> = tx
        .conn
        .prepare_cached("DELETE FROM mailbox WHERE ts_ms < ?1 RETURNING recipient, id, number")?
        .query_map([cutoff], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let sent_cutoff = now_ms.saturating_sub(u64::try_from(SENT_MAX_AGE.as_millis()).unwrap_or(0));
    let sent_cutoff = i64::try_from(sent_cutoff).unwrap_or(i64::MAX);
    let mut swept: Vec<(String, u64, SentPlace)> = tx
        .conn
        .prepare_cached("DELETE FROM sent WHERE ts_ms < ?1 RETURNING sender, message_id, seq")?
        .query_map([sent_cutoff], |row| {
            Ok((row.get(0)?, row.get(1)?, SentPlace::Row(row.get(2)?)))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let batches: Vec<(i64, Vec<u8>)> = tx
        .conn
        .prepare_cached("DELETE FROM sent_batches WHERE ts_ms < ?1 RETURNING seq, records")?
        .query_map([sent_cutoff], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (row, blob) in &batches {
        swept.extend(sent_log::records(blob).map(|(at, record)| {
            let place = SentPlace::Batch { row: *row, at };
            (record.sender.to_owned(), record.message_id, place)
        }));
    }
    tx.index.sweep_sent(swept);
    let mut dropped: BTreeMap<String, (u64, (u64, u64))> = BTreeMap::new();
    for (recipient, id, number) in gone {
        tx.index.remove(&recipient, id);
        let (count, (lowest, highest)) = dropped.entry(recipient).or_insert((0, (u64::MAX, 0)));
        *count += 1;
        if number > 0 {
            *lowest = (*lowest).min(number);
        }
        *highest = (*highest).max(number);
    }
    let mut tell = tx.conn.prepare_cached(
        "UPDATE accounts SET expired_untold = expired_untold + ?2 WHERE nick_folded = ?1
         RETURNING nick",
    )?;
    let mut expired = Vec::with_capacity(dropped.len());
    for (folded, (dropped, (lowest, highest))) in dropped {
        raise_last_number(tx.conn, &folded, highest)?;
        if highest > 0 {
            lose_numbers(tx.conn, &folded, (lowest.max(1), highest), 35)?;
        }
        // A row whose account is gone has nobody to tell.
        if let Some(recipient) = tell
            .query_row(params![folded, dropped], |row| row.get(0))
            .optional()?
        {
            expired.push(Expired { recipient, dropped });
        }
    }
    Ok(expired)
}

/// Takes `told` off a mailbox's count of expired messages not yet told.
pub(crate) fn clear_expired(
    conn: &Connection,
    recipient: &str,
    told: u64,
) -> rusqlite::Result<Result<(), StoreError>> {
    update_account(
        conn,
        recipient,
        "UPDATE accounts SET expired_untold = max(0, expired_untold - ?2)
         WHERE nick_folded = ?1",
        &told,
    )
}

/// Creates an account, unless its nickname is taken.
pub(crate) fn create_account(
    tx: &mut Txn<'_>,
    account: &NewAccount,
) -> rusqlite::Result<Result<(), StoreError>> {
    let folded = fold(&account.nick);
    let changed = tx
        .conn
        .prepare_cached(
            "INSERT INTO accounts (nick_folded, nick, password_hash, created_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            folded,
            account.nick,
            account.password_hash,
            account.created_ms,
        ])?;
    if changed > 0 {
        tx.index.add_account(&folded);
    }
    Ok(changed_or(changed, StoreError::AccountExists))
}

/// Runs `sql`, an UPDATE of one account (`?1` its folded nickname, `?2`
/// `value`).
fn update_account(
    conn: &Connection,
    nick: &str,
    sql: &str,
    value: &dyn rusqlite::ToSql,
) -> rusqlite::Result<Result<(), StoreError>> {
    let changed = conn
        .prepare_cached(sql)?
        .execute(params![fold(nick), value])?;
    Ok(changed_or(changed, StoreError::NoSuchAccount))
}

/// Replaces an account's password hash.
pub(crate) fn set_password(
    conn: &Connection,
    nick: &str,
    password_hash: &str,
) -> rusqlite::Result<Result<(), StoreError>> {
    update_account(
        conn,
        nick,
        "UPDATE accounts SET password_hash = ?2 WHERE nick_folded = ?1",
        &password_hash,
    )
}

/// Records when an account's owner was last seen.
pub(crate) fn set_last_seen(
    conn: &Connection,
    nick: &str,
    at_ms: u64,
) -> rusqlite::Result<Result<(), StoreError>> {
    update_account(
        conn,
        nick,
        "UPDATE accounts SET last_seen_ms = ?2 WHERE nick_folded = ?1",
        &at_ms,
    )
}

/// Deletes an account and its mailbox, in the same transaction.
pub(crate) fn delete_account(
    tx: &mut Txn<'_>,
    nick: &str,
) -> rusqlite::Result<Result<(), StoreError>> {
    let folded = fold(nick);
    // The receipt log and the journal: written first, so that what
    // follows sees only rows.
    settle(tx, true)?;
    let (places, receipts, sent): (Vec<Place>, Vec<KeptRow>, Vec<SentPlace>) = tx
        .index
        .remove_account(&folded)
        .map(|entries| {
            let places = entries.by_id.values().map(|slot| slot.place).collect();
            (places, entries.receipt_rows(), entries.sent_rows())
        })
        .unwrap_or_default();
    for place in places {
        delete_copy(tx, place)?;
    }
    for kept in receipts {
        delete_receipt(tx, kept.row)?;
    }
    // What it sent: the window a login would read. Older records (a day
    // at most) are left to the sweep rather than found by a scan of the
    // table, and are ignored meanwhile (`MailIndex::load`).
    // Records in a batch of the newer layout stay with the batch's others
    // until the sweep (`sent_log.rs`).
    let mut delete = tx.conn.prepare_cached("DELETE FROM sent WHERE seq = ?1")?;
    for place in sent {
        if let SentPlace::Row(seq) = place {
            delete.execute([seq])?;
        }
    }
    drop(delete);
    tx.conn
        .prepare_cached("DELETE FROM gaps WHERE account = ?1")?
        .execute([&folded])?;
    let changed = tx
        .conn
        .prepare_cached("DELETE FROM accounts WHERE nick_folded = ?1")?
        .execute([&folded])?;
    Ok(changed_or(changed, StoreError::NoSuchAccount))
}

/// The columns [`account_from_row`] reads, in its order.
const ACCOUNT_COLUMNS: &str =
    "nick_folded, nick, password_hash, created_ms, last_seen_ms, last_number";

/// Each mailbox's messages and bytes, by folded nickname, as the index has
/// them.
pub(crate) type Counts = HashMap<String, (u64, u64)>;

/// The counts of one mailbox, or of all (`None`), from the index.
pub(crate) fn counts(index: &MailIndex, account: Option<&str>) -> Counts {
    let count =
        |(folded, entries): (&str, &Entries)| (folded.to_owned(), (entries.count(), entries.bytes));
    match account {
        Some(account) => {
            let folded = fold(account);
            index
                .get(&folded)
                .map(|entries| count((&folded, entries)))
                .into_iter()
                .collect()
        }
        None => index
            .iter()
            .map(|(folded, entries)| count((folded, entries)))
            .collect(),
    }
}

fn account_from_row(row: &Row<'_>, counts: &Counts) -> rusqlite::Result<Account> {
    let folded = row.get_ref(0)?.as_str()?;
    let (mailbox_count, mailbox_bytes) = counts.get(folded).copied().unwrap_or_default();
    Ok(Account {
        nick: row.get(1)?,
        password_hash: row.get(2)?,
        created_ms: row.get(3)?,
        last_seen_ms: row.get(4)?,
        mailbox_count,
        mailbox_bytes,
        last_number: row.get(5)?,
    })
}

/// One account. Its last number is the higher of the one kept with it and
/// its mailbox's highest (a scan of the mailbox, which has no index by
/// recipient: for the operator's commands and tests, not for traffic).
pub(crate) fn account(
    conn: &Connection,
    nick: &str,
    counts: &Counts,
) -> rusqlite::Result<Option<Account>> {
    let folded = fold(nick);
    let Some(mut account) = conn
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE nick_folded = ?1"
        ))?
        .query_row([&folded], |row| account_from_row(row, counts))
        .optional()?
    else {
        return Ok(None);
    };
    let highest: u64 = conn
        .prepare_cached("SELECT coalesce(max(number), 0) FROM mailbox WHERE recipient = ?1")?
        .query_row([&folded], |row| row.get(0))?;
    account.last_number = account.last_number.max(highest);
    Ok(Some(account))
}

/// Every account, by folded nickname, each with its last number (as
/// [`account`], with one scan of the mailbox for all).
pub(crate) fn accounts(conn: &Connection, counts: &Counts) -> rusqlite::Result<Vec<Account>> {
    let highest = highest_numbers(conn)?;
    let mut accounts: Vec<Account> = conn
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY nick_folded"
        ))?
        .query_map([], |row| account_from_row(row, counts))?
        .collect::<rusqlite::Result<_>>()?;
    for account in &mut accounts {
        if let Some(&number) = highest.get(fold(&account.nick).as_ref()) {
            account.last_number = account.last_number.max(number);
        }
    }
    Ok(accounts)
}

/// A stored message as a mailbox read finds it in the index.
#[derive(Debug)]
pub(crate) enum MailboxEntry {
    /// A row of `mailbox`, to read.
    Row(i64),
    /// A copy held in the journal, read from its memory (its `recipient`
    /// is filled in by the read).
    Held(StoredMessage),
}

/// A mailbox's messages, in id order, as the index has them (`None`: no
/// such account).
pub(crate) fn mailbox_rows(index: &MailIndex, recipient: &str) -> Option<Vec<MailboxEntry>> {
    let entries = index.get(&fold(recipient))?;
    let read = |slot: &Slot| match slot.place {
        Place::Row(seq) => Some(MailboxEntry::Row(seq)),
        Place::Journal { .. } => index.held_copy(slot.place).map(|copy| {
            MailboxEntry::Held(StoredMessage {
                recipient: String::new(),
                id: copy.id,
                sender: copy.sender.to_owned(),
                to: StoredMessage::split_names(copy.to_names),
                ts_ms: copy.ts_ms,
                text: copy.text.to_owned(),
                receipt: copy.receipt,
                number: copy.number,
            })
        }),
    };
    Some(entries.by_id.values().filter_map(read).collect())
}

/// A mailbox, oldest first, read in one read transaction so that its
/// messages and its expired count agree. `rows` are its rows as of the
/// writes before this read; one confirmed and deleted since is left out.
pub(crate) fn mailbox(
    conn: &Connection,
    recipient: &str,
    rows: Option<Vec<MailboxEntry>>,
) -> rusqlite::Result<Result<Mailbox, StoreError>> {
    let tx = conn.unchecked_transaction()?;
    let owner: Option<(String, u64)> = tx
        .prepare_cached("SELECT nick, expired_untold FROM accounts WHERE nick_folded = ?1")?
        .query_row([fold(recipient)], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (Some((nick, expired)), Some(rows)) = (owner, rows) else {
        return Ok(Err(StoreError::NoSuchAccount));
    };
    let mut read = tx.prepare_cached(
        "SELECT id, sender, to_names, ts_ms, text, receipt, number FROM mailbox WHERE seq = ?1",
    )?;
    let mut messages = Vec::with_capacity(rows.len());
    for entry in rows {
        let seq = match entry {
            MailboxEntry::Row(seq) => seq,
            MailboxEntry::Held(message) => {
                messages.push(StoredMessage {
                    recipient: nick.clone(),
                    ..message
                });
                continue;
            }
        };
        let message = read
            .query_row([seq], |row| {
                Ok(StoredMessage {
                    recipient: nick.clone(),
                    id: row.get(0)?,
                    sender: row.get(1)?,
                    to: StoredMessage::split_names(&row.get::<_, String>(2)?),
                    ts_ms: row.get(3)?,
                    text: row.get(4)?,
                    receipt: row.get(5)?,
                    number: row.get(6)?,
                })
            })
            .optional()?;
        messages.extend(message);
    }
    drop(read);
    tx.finish()?;
    Ok(Ok(Mailbox { messages, expired }))
}

/// The highest message id the store was handed.
pub(crate) fn last_message_id(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT value FROM hub_state WHERE key = 'last_message_id'",
        [],
        |row| row.get(0),
    )
}

/// Sets the database's page ceiling from a size in bytes (`None`: the
/// largest SQLite allows), answering the ceiling now in force in bytes.
/// SQLite never sets it below the pages already in use.
pub(crate) fn set_max_db_bytes(conn: &Connection, bytes: Option<u64>) -> rusqlite::Result<u64> {
    let page_size: u64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    // SQLite's own ceiling on max_page_count.
    let pages = bytes.map_or(4_294_967_294, |bytes| (bytes / page_size.max(1)).max(1));
    let pages: u64 = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
        row.get(0)
    })?;
    Ok(pages * page_size)
}
