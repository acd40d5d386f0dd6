//! The schema, as a list of migrations, and the connections' settings.
//!
//! Each migration is a step of SQL, applied in order and recorded in
//! `PRAGMA user_version` (`rusqlite_migration`). A released step is never
//! edited: a change of schema is a new step at the end. The tables are
//! meant to be read by a person with `sqlite3 chinwag-data/chinwag.db`.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

use crate::StoreError;

/// Version 1: accounts, their mailboxes, and the hub's last message id.
///
/// - `accounts`: one row per registered nickname, keyed by its case-folded
///   spelling. `mailbox_count` and `mailbox_bytes` are kept by the triggers
///   below, so the quota check reads one row instead of counting a mailbox;
///   `expired_untold` counts messages the sweeper dropped that the owner has
///   not yet been told of.
/// - `mailbox`: one row per stored message and recipient, in message id
///   order (the primary key, and `WITHOUT ROWID` stores the rows in it), so a
///   mailbox reads back in the order the hub routed its messages. `to_names`
///   is whom the message was addressed to, names separated by spaces (empty:
///   everyone). Deleting an account deletes its mailbox (`ON DELETE
///   CASCADE`).
/// - `hub_state`: named counters; `last_message_id` is the highest message id
///   the store was ever handed, which a restarted hub counts on from.
const V1: &str = "
CREATE TABLE accounts (
    nick_folded    TEXT PRIMARY KEY NOT NULL,
    nick           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    last_seen_ms   INTEGER,
    mailbox_count  INTEGER NOT NULL DEFAULT 0,
    mailbox_bytes  INTEGER NOT NULL DEFAULT 0,
    expired_untold INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE mailbox (
    recipient TEXT NOT NULL REFERENCES accounts (nick_folded) ON DELETE CASCADE,
    id        INTEGER NOT NULL,
    sender    TEXT NOT NULL,
    to_names  TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    text      TEXT NOT NULL,
    bytes     INTEGER NOT NULL,
    PRIMARY KEY (recipient, id)
) STRICT, WITHOUT ROWID;

CREATE INDEX mailbox_by_age ON mailbox (ts_ms);

CREATE TRIGGER mailbox_counts_insert AFTER INSERT ON mailbox BEGIN
    UPDATE accounts
    SET mailbox_count = mailbox_count + 1, mailbox_bytes = mailbox_bytes + NEW.bytes
    WHERE nick_folded = NEW.recipient;
END;

CREATE TRIGGER mailbox_counts_delete AFTER DELETE ON mailbox BEGIN
    UPDATE accounts
    SET mailbox_count = mailbox_count - 1, mailbox_bytes = mailbox_bytes - OLD.bytes
    WHERE nick_folded = OLD.recipient;
END;

CREATE TABLE hub_state (
    key   TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) STRICT;

INSERT INTO hub_state (key, value) VALUES ('last_message_id', 0);
";

/// Version 2: what a stored message costs, cut to one B-tree insert.
///
/// Measured through the hub (`chinwag bench store`), the writer spent its
/// time on four B-tree operations per message: the mailbox row, the age
/// index, the trigger's update of the account's counts, and the foreign
/// key's lookup of the account, with a statement journal around each insert
/// because a trigger or a foreign key could need it undone.
///
/// - The triggers go: the store's code keeps `mailbox_count` and
///   `mailbox_bytes` (`queries.rs`), in the same transaction as the rows,
///   and counts a request's messages once per recipient.
/// - The age index goes: the sweeper runs hourly, and a scan of the table
///   then costs less than an index entry per message meanwhile.
/// - Foreign keys are no longer enforced (`open_writer`): the `REFERENCES`
///   clause stays as documentation, and deleting an account deletes its
///   mailbox in the same transaction (`queries::delete_account`).
const V2: &str = "
DROP TRIGGER mailbox_counts_insert;
DROP TRIGGER mailbox_counts_delete;
DROP INDEX mailbox_by_age;
";

/// Version 3: the mailbox appended to, in the order messages are stored.
///
/// Measured on the store alone (300,000 messages of 256 bytes to 60
/// mailboxes, 400 a transaction, `synchronous=FULL`): keyed by
/// (recipient, id), every commit rewrote a leaf page or more in each
/// recipient's part of the tree, and its splits, and the writer stored
/// about 88,000 a second at 8 µs each; the same rows appended to a rowid
/// table, 430,000 a second at 1.7 µs. A secondary index by recipient would
/// bring the scattered page writes back (170,000 a second), so there is
/// none: the writer keeps each mailbox's rows in memory (`index.rs`), built
/// from this table when the store opens.
///
/// - `mailbox`: one row per stored message and recipient; `seq`, the rowid,
///   is the order they were stored in. A recipient's messages are read back
///   by hub id (`id`), which the index orders. That a mailbox holds an id
///   once is kept by the store's code, which looks in the index first.
///   `SELECT * FROM mailbox WHERE recipient = 'bob' ORDER BY id` still shows
///   a mailbox (by a scan).
/// - `accounts` no longer counts its mailbox (`mailbox_count`,
///   `mailbox_bytes`): the index counts, and
///   `SELECT recipient, count(*), sum(bytes) FROM mailbox GROUP BY recipient`
///   shows the same.
const V3: &str = "
CREATE TABLE mailbox_v3 (
    seq       INTEGER PRIMARY KEY,
    recipient TEXT NOT NULL REFERENCES accounts (nick_folded) ON DELETE CASCADE,
    id        INTEGER NOT NULL,
    sender    TEXT NOT NULL,
    to_names  TEXT NOT NULL,
    ts_ms     INTEGER NOT NULL,
    text      TEXT NOT NULL,
    bytes     INTEGER NOT NULL
) STRICT;

INSERT INTO mailbox_v3 (recipient, id, sender, to_names, ts_ms, text, bytes)
SELECT recipient, id, sender, to_names, ts_ms, text, bytes FROM mailbox ORDER BY id, recipient;

DROP TABLE mailbox;
ALTER TABLE mailbox_v3 RENAME TO mailbox;
ALTER TABLE accounts DROP COLUMN mailbox_count;
ALTER TABLE accounts DROP COLUMN mailbox_bytes;
";

/// Version 4: whether a stored message's sender asked for a receipt
/// (`receipt`, 0 or 1), so that its recipient's confirmation, days later,
/// can still be told to the sender.
const V4: &str = "
ALTER TABLE mailbox ADD COLUMN receipt INTEGER NOT NULL DEFAULT 0;
";

/// Version 5: receipts kept for senders who were offline when their
/// message was confirmed, until their next login. `owner` is the sender's
/// folded nickname; the index finds one sender's at login (receipts are
/// written far less often than messages, and each row is small).
const V5: &str = "
CREATE TABLE receipts (
    seq         INTEGER PRIMARY KEY,
    owner       TEXT NOT NULL REFERENCES accounts (nick_folded) ON DELETE CASCADE,
    message_id  INTEGER NOT NULL,
    recipient   TEXT NOT NULL,
    received_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX receipts_by_owner ON receipts (owner);
";

/// Version 6: reliable sessions. Each stored message's number for its
/// recipient (`number`; 0 for those stored before), and each account's last
/// number handed out (`last_number`), so that a number a client has seen is
/// never handed out again, across restarts, even once every message is
/// confirmed and gone.
const V6: &str = "
ALTER TABLE mailbox ADD COLUMN number INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN last_number INTEGER NOT NULL DEFAULT 0;
";

/// Version 7: what became of each message a reliable session sent, by its
/// sender's client id, so that the same message sent again is answered
/// with its outcome instead of being routed twice. Keyed by sender and hub
/// message id (a login reads a sender's newest); kept for a day
/// (`SENT_MAX_AGE`), swept with the expired messages.
const V7: &str = "
CREATE TABLE sent (
    sender     TEXT NOT NULL REFERENCES accounts (nick_folded) ON DELETE CASCADE,
    message_id INTEGER NOT NULL,
    client_id  INTEGER NOT NULL,
    ts_ms      INTEGER NOT NULL,
    delivered  INTEGER NOT NULL,
    statuses   TEXT NOT NULL,
    PRIMARY KEY (sender, message_id)
) STRICT, WITHOUT ROWID;
";

/// Version 8: numbers of a reliable session's messages that will never be
/// delivered (a copy refused for a full mailbox, copies the age limit
/// dropped unconfirmed), kept until the account's owner is told (`GAP`).
/// `reason` is the protocol's code (33 mailbox full, 35 expired).
const V8: &str = "
CREATE TABLE gaps (
    seq     INTEGER PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts (nick_folded) ON DELETE CASCADE,
    first   INTEGER NOT NULL,
    last    INTEGER NOT NULL,
    reason  INTEGER NOT NULL
) STRICT;

CREATE INDEX gaps_by_account ON gaps (account);
";

/// Version 9: a reliable session's receipts are kept until its client
/// confirms each one (`CONFIRM_RECEIPTS`, by message id and recipient), not
/// only while it is offline: an index to find one by its message, which
/// also serves the owner's lookups of `receipts_by_owner`.
const V9: &str = "
CREATE INDEX receipts_by_message ON receipts (owner, message_id);
DROP INDEX receipts_by_owner;
";

/// Version 10: the receipts found by the writer's index in memory
/// (`index.rs`), not an index on disk. A receipt is kept when its message
/// is confirmed and deleted when its owner confirms it, usually within
/// milliseconds: on disk, `receipts_by_message` wrote a page in every
/// sender's part of its B-tree at both ends, the table itself only its
/// last pages. Measured with `chinwag bench direct --reliable` (50 pairs,
/// 5,000 messages each way, 3 alternating rounds): 129,628 messages a
/// second before, 154,819 after, the daemon's CPU 5.88 s a run against
/// 5.18, and its disk writes 932 MB against 658 MB.
/// `SELECT * FROM receipts WHERE owner = 'amy' ORDER BY seq` still shows
/// an owner's (by a scan).
const V10: &str = "
DROP INDEX receipts_by_message;
";

/// Version 11: `sent` appended to, in the order its records are written
/// (`seq`, the rowid), with no key of its own. Keyed by sender and message,
/// every commit wrote a leaf page in the part of the tree of every account
/// that sent in it; each account's newest records, all a login reads, are
/// found by the writer's index in memory instead (`index.rs`). Measured with
/// `chinwag bench direct --reliable` (50 pairs, 5,000 messages each way, 4
/// alternating rounds): 157,772 messages a second before, 176,969 after
/// (medians), the daemon's CPU 4.94 s a run against 4.47. Deleting an
/// account deletes the records in its window; older ones are left to the
/// sweep (a scan per deletion, the other way, would let a loop of
/// registrations and deletions stall the writer), and a record older than
/// its sender's account is not that account's (`MailIndex::load`).
/// `SELECT * FROM sent WHERE sender = 'amy' ORDER BY message_id` still
/// shows an account's (by a scan).
const V11: &str = "
CREATE TABLE sent_v11 (
    seq        INTEGER PRIMARY KEY,
    sender     TEXT NOT NULL REFERENCES accounts (nick_folded) ON DELETE CASCADE,
    message_id INTEGER NOT NULL,
    client_id  INTEGER NOT NULL,
    ts_ms      INTEGER NOT NULL,
    delivered  INTEGER NOT NULL,
    statuses   TEXT NOT NULL
) STRICT;

INSERT INTO sent_v11 (sender, message_id, client_id, ts_ms, delivered, statuses)
SELECT sender, message_id, client_id, ts_ms, delivered, statuses FROM sent
ORDER BY message_id, sender;

DROP TABLE sent;
ALTER TABLE sent_v11 RENAME TO sent;
";

/// Version 12: the journal (`journal.rs`). A batch's copies held for
/// reliable sessions that are online, one row per batch (`copies`, a blob:
/// see `journal.rs` for its layout), written when the hub routed them
/// (`ts_ms`). A row lives about a second: then each of its copies still
/// unconfirmed is written to `mailbox` and the row is deleted. A store that
/// opens with rows here (it crashed) moves their copies to `mailbox` first.
/// Measured with `chinwag bench direct --reliable`: see
/// `docs/performance.md`, "the journal".
const V12: &str = "
CREATE TABLE journal (
    seq    INTEGER PRIMARY KEY,
    ts_ms  INTEGER NOT NULL,
    copies BLOB NOT NULL
) STRICT;
";

/// Version 13: what reliable sessions sent, one row per batch
/// (`sent_log.rs`): `records`, a blob of the batch's records (see
/// `sent_log.rs` for its layout), the newest routed at `ts_ms`, which the
/// hourly sweep goes by. `sent` stays for the records written before, read
/// as they were, and empties itself within a day through the sweep.
const V13: &str = "
CREATE TABLE sent_batches (
    seq     INTEGER PRIMARY KEY,
    ts_ms   INTEGER NOT NULL,
    records BLOB NOT NULL
) STRICT;
";

/// Version 14: receipts kept for their owners, one row per group commit
/// (`receipt_log.rs`): `receipts`, a blob of the receipts that commit kept
/// (see `receipt_log.rs` for its layout). A row lives a couple of seconds
/// at most: then each of its receipts still owed is written to `receipts`
/// and the row is deleted. A store that opens with rows here (it crashed)
/// moves their receipts to `receipts` first.
const V14: &str = "
CREATE TABLE receipt_batches (
    seq      INTEGER PRIMARY KEY,
    receipts BLOB NOT NULL
) STRICT;
";

/// Version 15: which items of the journal's and the receipt log's batches
/// are needed no more, one row per group commit that released some
/// (`release_log.rs`): `items`, a blob of them (see `release_log.rs` for
/// its layout). A row lives while a batch it names is held. A store that
/// opens with rows here (it crashed) leaves their items out of what it
/// recovers from the batches, then deletes them.
const V15: &str = "
CREATE TABLE releases (
    seq   INTEGER PRIMARY KEY,
    items BLOB NOT NULL
) STRICT;
";

/// Version 16: what the batch log (`batch_log/`, `logged.rs`) has handed
/// over to the tables: `batch_log_lsn`, the last of its groups written into
/// them when the store opened; `batch_log_journal` and
/// `batch_log_receipts` and `batch_log_sent`, the newest batch of the
/// journal, of the receipt log and of sent records settled from it
/// (settled oldest first, so every batch up to it is settled or needed no
/// more); `batch_log_sql`, the last group with writes to the tables as
/// well whose transaction committed.
const V16: &str = "
INSERT INTO hub_state (key, value) VALUES
    ('batch_log_lsn', 0),
    ('batch_log_journal', 0),
    ('batch_log_receipts', 0),
    ('batch_log_sent', 0),
    ('batch_log_sql', 0);
";

/// Every migration, oldest first.
pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
        M::up(V7),
        M::up(V8),
        M::up(V9),
        M::up(V10),
        M::up(V11),
        M::up(V12),
        M::up(V13),
        M::up(V14),
        M::up(V15),
        M::up(V16),
    ])
}

/// The writer's page cache spills dirty pages into the log in the middle
/// of a transaction only once it holds more than this many (32 MiB of 16
/// KiB pages). SQLite's default spills as soon as the cache is full (2,000
/// KiB): most group commits of a burst filled it, and their pages were
/// written to the log twice, once spilled and again at `COMMIT` (3% of the
/// daemon's samples under `bench direct --reliable`, `pagerStress`). Past
/// the threshold a transaction spills as before, so a large one (a sweep,
/// an account's deletion) does not hold all its pages in memory.
const SPILL_PAGES: u32 = 2048;

/// How much of the database file the writer reads through a memory map
/// rather than with `pread`: the pages it reads that are not in its cache
/// (a spent journal batch's overflow pages, read to free them, and B-tree
/// pages) cost a system call and a copy each. Under `bench direct
/// --reliable` the writer's `pread`s fell from 14,399 to 4,285 a run (the
/// rest are pages whose newest version is in the log, which SQLite reads
/// with `pread` still). SQLite writes with `pwrite` as before; the map is
/// only read. The price, SQLite's own caveat: an I/O error while reading
/// the file through the map (a failing disk) is a `SIGBUS` that ends the
/// process, where `pread` would have failed the one transaction.
const MMAP_BYTES: u64 = 256 << 20;

/// Opens the writer's connection: creates the file if missing, sets the
/// durability settings, and brings the schema up to date.
///
/// - `page_size=16384` (a new database only).
/// - `journal_mode=WAL`: a commit appends to the log and fsyncs it once;
///   readers go on reading the last commit meanwhile.
/// - `synchronous=FULL`: in WAL mode, every commit fsyncs the log before
///   COMMIT returns. (`NORMAL` would fsync only at checkpoints, and a power
///   loss could take back commits that were answered.)
/// - foreign keys are left unenforced (SQLite's default): the store's code
///   keeps the mailbox and its account consistent (schema version 2).
/// - `cache_spill` past [`SPILL_PAGES`] only.
/// - the database file read through a memory map ([`MMAP_BYTES`]).
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_error)?;
    // 16 KiB pages for a new database (an existing one keeps its own): the
    // mailbox is appended to, so a commit and a checkpoint write a quarter
    // as many frames, each a system call or two, for the same bytes.
    // Measured with `chinwag bench store` (W=16, 4 rounds A/B): 306,000 a
    // second against 290,000 with 4 KiB pages, 3.85 µs of the daemon's CPU
    // a message against 4.07.
    conn.execute_batch("PRAGMA page_size = 16384")
        .map_err(open_error)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(open_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_error(rusqlite::Error::InvalidQuery));
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; \
         PRAGMA cache_spill = {SPILL_PAGES}; PRAGMA mmap_size = {MMAP_BYTES};"
    ))
    .map_err(open_error)?;
    migrations().to_latest(&mut conn)?;
    Ok(conn)
}

/// Opens the reader's connection, read-only, on a database the writer has
/// already set up.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_to_an_empty_database() {
        migrations().validate().unwrap();
    }

    #[test]
    fn migrations_leave_the_tables_and_the_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, 16);
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            tables,
            [
                "accounts",
                "gaps",
                "hub_state",
                "journal",
                "mailbox",
                "receipt_batches",
                "receipts",
                "releases",
                "sent",
                "sent_batches"
            ]
        );
    }

    #[test]
    fn version_11_keeps_the_sent_records_of_version_10_in_message_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 10).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (nick_folded, nick, password_hash, created_ms)
             VALUES ('amy', 'Amy', 'h', 1), ('bob', 'Bob', 'h', 1);
             INSERT INTO sent (sender, message_id, client_id, ts_ms, delivered, statuses) VALUES
                ('bob', 9, 2, 90, 1, ''),
                ('amy', 12, 3, 120, 0, 'carol 33'),
                ('amy', 4, 1, 40, 1, '');",
        )
        .unwrap();
        migrations().to_version(&mut conn, 11).unwrap();
        let rows: Vec<(i64, String, i64, String)> = conn
            .prepare("SELECT seq, sender, message_id, statuses FROM sent ORDER BY seq")
            .unwrap()
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "amy".into(), 4, String::new()),
                (2, "bob".into(), 9, String::new()),
                (3, "amy".into(), 12, "carol 33".into()),
            ]
        );
        // Read by the index of the latest version, beside the batches.
        migrations().to_latest(&mut conn).unwrap();
        let index = crate::index::MailIndex::load(&conn, (0, 0, 0)).unwrap();
        assert_eq!(
            index.get("amy").unwrap().sent_rows(),
            [
                crate::index::SentPlace::Row(1),
                crate::index::SentPlace::Row(3)
            ]
        );
    }

    #[test]
    fn version_3_keeps_the_messages_of_version_2_in_id_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 2).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (nick_folded, nick, password_hash, created_ms, mailbox_count, mailbox_bytes)
             VALUES ('bob', 'Bob', 'h', 1, 2, 10), ('amy', 'Amy', 'h', 1, 1, 5);
             INSERT INTO mailbox (recipient, id, sender, to_names, ts_ms, text, bytes) VALUES
                ('bob', 9, 'carol', 'bob', 90, 'later', 5),
                ('bob', 3, 'carol', 'bob amy', 30, 'first', 5),
                ('amy', 3, 'carol', 'bob amy', 30, 'first', 5);",
        )
        .unwrap();
        migrations().to_version(&mut conn, 3).unwrap();
        let rows: Vec<(i64, String, i64, String)> = conn
            .prepare("SELECT seq, recipient, id, text FROM mailbox ORDER BY seq")
            .unwrap()
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "amy".into(), 3, "first".into()),
                (2, "bob".into(), 3, "first".into()),
                (3, "bob".into(), 9, "later".into()),
            ]
        );
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('accounts')")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !columns.iter().any(|name| name.starts_with("mailbox_")),
            "{columns:?}"
        );
    }
}
