//! The `Store` handle: opening a data directory, and handing requests to its
//! threads.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::checkpoint;
use crate::index::{Entries, MailIndex};
use crate::jobs::{IndexedRead, Read, Request, Then, Txn, Write, WriteJob};
use crate::journal;
use crate::lock::DirLock;
use crate::logged;
use crate::message::check_i64;
use crate::queries::{self, Quota};
use crate::receipt_log;
use crate::release_log;
use crate::schema;
use crate::writer::{Writer, read_loop};
use crate::{
    Account, AccountStore, Confirmed, Expired, KeptReceipt, LostNumbers, MailStore, Mailbox,
    NewAccount, Pending, Routed, SentRecord, StoreConfig, StoreError, StoreOutcome, StoreStats,
    StoredMessage,
};

/// The SQLite store: a cheap, cloneable handle to the writer and reader
/// threads that own its connections.
///
/// Every request is handed over without waiting ([`StoreError::Busy`] when
/// the queue is full) and answered through a [`Pending`]. The threads stop,
/// and the data directory's lock is released, when the last handle is
/// dropped; that drop waits for the requests already queued to be carried
/// out (at most a group commit or two).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// What the handles share. Field order matters: `requests` is dropped first,
/// which lets the writer finish, then `_threads` (held for its `Drop`) waits for it and lets go of
/// the lock.
struct Inner {
    requests: mpsc::Sender<Request>,
    quota: Quota,
    dir: PathBuf,
    db_path: PathBuf,
    /// Kept by the writer: commit latencies and failures.
    stats: Arc<Mutex<StoreStats>>,
    _threads: Threads,
}

/// The store's threads, joined when the last handle goes.
struct Threads {
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
    /// Held until every thread, and so every connection, is done.
    _lock: DirLock,
}

impl Drop for Threads {
    fn drop(&mut self) {
        // The writer ends once the queue is closed and drained, and its end
        // closes the reader's and the checkpointer's queues. A thread that
        // panicked has nothing left to hand back.
        for thread in [
            self.writer.take(),
            self.reader.take(),
            self.checkpointer.take(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = thread.join();
        }
    }
}

impl Store {
    /// Opens (creating if missing) the data directory `config.data_dir`:
    /// takes its lock, opens `chinwag.db` in WAL mode with
    /// `synchronous=FULL`, brings the schema up to date, and starts the
    /// writer, reader and checkpointer threads.
    ///
    /// This blocks on the disk (a migration can take a while): call it before
    /// starting the runtime, or in `spawn_blocking`. Opening reads every
    /// stored message's place and size (not its text) into the mailboxes'
    /// index, about a second per million stored messages.
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] if another process (or another `Store` here)
    /// has the directory; [`StoreError::DataDir`], [`StoreError::Open`],
    /// [`StoreError::Migrate`] if it cannot be set up.
    pub fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let lock = DirLock::acquire(&config.data_dir)?;
        let path = config.db_path();
        let conn = schema::open_writer(&path)?;
        if let Some(bytes) = config.max_db_bytes {
            queries::set_max_db_bytes(&conn, Some(bytes)).map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        }
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        // Copies a crash left in the journal go to their mailboxes first,
        // and receipts it left in the receipt log to `receipts`: those the
        // release log names as confirmed are left out. Then the release
        // log is emptied (until then, a crash here recovers the same).
        // What a crash left in the batch log is handed to those tables
        // before anything else (`logged.rs`).
        let (logged, marks) = logged::recover(
            &config.data_dir,
            config.batch_log_segment_bytes,
            &conn,
            config.batch_log,
        )
        .map_err(|source| StoreError::DataDir {
            dir: config.data_dir.join(logged::DIR),
            source,
        })?;
        let released = release_log::Released::read(&conn).map_err(open_error)?;
        let journal_row = journal::recover(&conn, &released).map_err(open_error)?;
        let receipt_row = receipt_log::recover(&conn, &released).map_err(open_error)?;
        release_log::clear(&conn).map_err(open_error)?;
        // Batches settled from the batch log are never numbered again.
        let rows = (
            journal_row.max(marks.journal),
            receipt_row.max(marks.receipts),
            marks.sent,
        );
        let index = MailIndex::load(&conn, rows).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let reader_conn = schema::open_reader(&path)?;
        checkpoint::take_over(&conn);
        let (checkpoints, checkpointer) = checkpoint::open(&path)?;

        let stats = Arc::new(Mutex::new(StoreStats {
            writable: true,
            ..StoreStats::default()
        }));
        let (requests, requests_rx) = mpsc::channel(config.write_queue.max(1));
        let (reads, reads_rx) = mpsc::channel(config.read_queue.max(1));
        let writer = Writer {
            conn,
            index,
            requests: requests_rx,
            reads,
            group_max: config.group_max.max(1),
            checkpoints,
            stats: stats.clone(),
            logged,
            frames: 0,
        };
        let writer = spawn("chinwag-store-writer", move || writer.run())?;
        let reader = spawn("chinwag-store-reader", move || {
            read_loop(&reader_conn, reads_rx);
        })?;
        let checkpointer = spawn("chinwag-store-checkpoint", move || checkpointer.run())?;
        Ok(Self {
            inner: Arc::new(Inner {
                requests,
                quota: Quota {
                    messages: config.mailbox_max_messages,
                    bytes: config.mailbox_max_bytes,
                },
                dir: config.data_dir.clone(),
                db_path: path,
                stats,
                _threads: Threads {
                    writer: Some(writer),
                    reader: Some(reader),
                    checkpointer: Some(checkpointer),
                    _lock: lock,
                },
            }),
        })
    }

    /// The data directory this store holds.
    pub fn data_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Sets the ceiling on the database file, in bytes (`None`: no ceiling
    /// but the disk's), and answers the ceiling now in force. SQLite never
    /// sets it below the file's current size. Writes past the ceiling fail
    /// as on a full disk; raising it lets them succeed again.
    pub fn set_max_db_bytes(&self, bytes: Option<u64>) -> Result<Pending<u64>, StoreError> {
        let (reply, pending) = Pending::channel();
        let job = Read::new(
            move |conn: &Connection| queries::set_max_db_bytes(conn, bytes).map(Ok),
            reply,
        );
        self.submit(Request::Control(Box::new(job)))?;
        Ok(pending)
    }

    /// Copies the database, as of this request, into a new file at `path`
    /// (`VACUUM INTO`: a consistent, compact snapshot, taken on the reader's
    /// connection while writes go on). `path` must not exist.
    pub fn backup_into(&self, path: impl Into<PathBuf>) -> Result<Pending<()>, StoreError> {
        let path = path.into();
        self.read(move |conn| {
            let path = path.to_string_lossy();
            conn.execute("VACUUM INTO ?1", [path.as_ref()])
                .map(|_| Ok(()))
        })
    }

    fn submit(&self, request: Request) -> Result<(), StoreError> {
        self.try_submit(request).map_err(|(error, _)| error)
    }

    /// Queues `request` for the writer; a refused one comes back with why.
    fn try_submit(&self, request: Request) -> Result<(), (StoreError, Request)> {
        self.inner
            .requests
            .try_send(request)
            .map_err(|error| match error {
                TrySendError::Full(request) => (StoreError::Busy, request),
                TrySendError::Closed(request) => (StoreError::Closed, request),
            })
    }

    /// Hands over a write: `work` runs inside a group's transaction.
    fn write<T, F>(&self, work: F) -> Result<Pending<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Txn<'_>) -> rusqlite::Result<Result<T, StoreError>> + Send + 'static,
    {
        let (reply, pending) = Pending::channel();
        self.submit(Request::Write(Box::new(Write::new(work, reply))))?;
        Ok(pending)
    }

    /// Hands over a read: `work` runs on the reader's connection once the
    /// writes handed over before it have committed.
    fn read<T, F>(&self, work: F) -> Result<Pending<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<Result<T, StoreError>> + Send + 'static,
    {
        let (reply, pending) = Pending::channel();
        self.submit(Request::Read(Box::new(Read::new(work, reply))))?;
        Ok(pending)
    }

    /// Hands over a read that needs the index: `prepare` takes what it needs
    /// from it on the writer's thread, as of the writes handed over before
    /// it, and `work` then runs on the reader's connection.
    fn indexed_read<T, P, X, F>(&self, prepare: P, work: F) -> Result<Pending<T>, StoreError>
    where
        T: Send + 'static,
        X: Send + 'static,
        P: FnOnce(&MailIndex) -> X + Send + 'static,
        F: FnOnce(&Connection, X) -> rusqlite::Result<Result<T, StoreError>> + Send + 'static,
    {
        let (reply, pending) = Pending::channel();
        let job = IndexedRead::new(prepare, work, reply);
        self.submit(Request::Read(Box::new(job)))?;
        Ok(pending)
    }
}

fn spawn(name: &str, run: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(run)
        .map_err(StoreError::Spawn)
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl MailStore for Store {
    fn store_message(&self, message: StoredMessage) -> Result<Pending<StoreOutcome>, StoreError> {
        message.check()?;
        let quota = self.inner.quota;
        self.write(move |tx| {
            let outcomes = queries::store(tx, quota, std::iter::once(message.view()))?;
            Ok(outcomes.first().copied().ok_or(StoreError::Closed))
        })
    }

    fn store_routed(&self, routed: Routed) -> Result<Pending<Vec<StoreOutcome>>, StoreError> {
        routed.check()?;
        let quota = self.inner.quota;
        self.write(move |tx| queries::store_routed(tx, quota, &routed).map(Ok))
    }

    fn store_routed_then(&self, routed: Routed, then: Then<Vec<StoreOutcome>>) {
        if let Err(error) = routed.check() {
            return then(Err(error));
        }
        let quota = self.inner.quota;
        let work = move |tx: &mut Txn<'_>| queries::store_routed(tx, quota, &routed).map(Ok);
        let job: Box<dyn WriteJob> = Box::new(Write::new(work, then));
        // A refused request comes back, so that `then` is answered.
        if let Err((error, Request::Write(job))) = self.try_submit(Request::Write(job)) {
            job.refuse(error);
        }
    }

    fn take_gaps(&self, account: &str) -> Result<Pending<Vec<LostNumbers>>, StoreError> {
        let account = account.to_owned();
        self.write(move |tx| queries::take_gaps(tx, &account).map(Ok))
    }

    fn lose_numbers(&self, lost: Vec<(String, LostNumbers)>) -> Result<Pending<()>, StoreError> {
        for (_, numbers) in &lost {
            check_i64(numbers.first, "number")?;
            check_i64(numbers.last, "number")?;
        }
        self.write(move |tx| queries::record_lost(tx, &lost).map(Ok))
    }

    fn sent(&self, sender: &str) -> Result<Pending<Vec<SentRecord>>, StoreError> {
        let sender = sender.to_owned();
        let key = sender.clone();
        self.indexed_read(
            move |index| queries::sent_sources(index, &key),
            move |conn, rows| queries::sent(conn, &sender, rows).map(Ok),
        )
    }

    fn mailbox(&self, recipient: &str) -> Result<Pending<Mailbox>, StoreError> {
        let recipient = recipient.to_owned();
        let key = recipient.clone();
        self.indexed_read(
            move |index| queries::mailbox_rows(index, &key),
            move |conn, rows| queries::mailbox(conn, &recipient, rows),
        )
    }

    fn confirm(
        &self,
        recipient: &str,
        ids: Vec<u64>,
        received_ms: u64,
    ) -> Result<Pending<Confirmed>, StoreError> {
        check_i64(received_ms, "receipt time")?;
        let recipient = recipient.to_owned();
        self.write(move |tx| queries::confirm(tx, &recipient, &ids, received_ms).map(Ok))
    }

    fn confirm_all(
        &self,
        confirms: Vec<(String, Vec<u64>)>,
        received_ms: u64,
    ) -> Result<Pending<Vec<Confirmed>>, StoreError> {
        check_i64(received_ms, "receipt time")?;
        self.write(move |tx| {
            let mut answers = Vec::with_capacity(confirms.len());
            for (recipient, ids) in &confirms {
                answers.push(queries::confirm(tx, recipient, ids, received_ms)?);
            }
            Ok(Ok(answers))
        })
    }

    fn release_all(
        &self,
        releases: Vec<(String, Vec<u64>)>,
        receipts: Vec<KeptReceipt>,
    ) -> Result<Pending<()>, StoreError> {
        for receipt in &receipts {
            check_i64(receipt.message_id, "message id")?;
            check_i64(receipt.received_ms, "receipt time")?;
        }
        self.write(move |tx| queries::release_all(tx, &releases, &receipts).map(Ok))
    }

    fn expire(&self, now_ms: u64, max_age: Duration) -> Result<Pending<Vec<Expired>>, StoreError> {
        self.write(move |tx| queries::expire(tx, now_ms, max_age).map(Ok))
    }

    fn clear_expired(&self, recipient: &str, told: u64) -> Result<Pending<()>, StoreError> {
        check_i64(told, "expired count")?;
        let recipient = recipient.to_owned();
        self.write(move |tx| queries::clear_expired(tx.conn, &recipient, told))
    }

    fn keep_receipts(&self, receipts: Vec<KeptReceipt>) -> Result<Pending<()>, StoreError> {
        for receipt in &receipts {
            check_i64(receipt.message_id, "message id")?;
            check_i64(receipt.received_ms, "receipt time")?;
        }
        self.write(move |tx| queries::keep_receipts(tx, &receipts).map(Ok))
    }

    fn take_receipts(&self, owner: &str) -> Result<Pending<Vec<KeptReceipt>>, StoreError> {
        let owner = owner.to_owned();
        self.write(move |tx| queries::take_receipts(tx, &owner).map(Ok))
    }

    fn kept_receipts(&self, owner: &str) -> Result<Pending<Vec<KeptReceipt>>, StoreError> {
        let owner = owner.to_owned();
        let key = owner.clone();
        self.indexed_read(
            move |index| queries::indexed(index, &key, Entries::receipt_rows),
            move |conn, rows| queries::kept_receipts(conn, &owner, rows).map(Ok),
        )
    }

    fn forget_receipts(
        &self,
        receipts: Vec<(String, Vec<(u64, String)>)>,
    ) -> Result<Pending<()>, StoreError> {
        for (_, keys) in &receipts {
            for (message_id, _) in keys {
                check_i64(*message_id, "message id")?;
            }
        }
        self.write(move |tx| {
            for (owner, keys) in &receipts {
                queries::forget_receipts(tx, owner, keys)?;
            }
            Ok(Ok(()))
        })
    }

    fn last_message_id(&self) -> Result<Pending<u64>, StoreError> {
        self.read(|conn| queries::last_message_id(conn).map(Ok))
    }

    fn stats(&self) -> StoreStats {
        let mut stats = (self.inner.stats.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // The database, its log and its shared-memory index: what a backup
        // or a disk-space alert counts.
        let files = ["", "-wal", "-shm"].map(|suffix| {
            let mut path = self.inner.db_path.clone().into_os_string();
            path.push(suffix);
            std::fs::metadata(path).map_or(0, |meta| meta.len())
        });
        stats.disk_bytes = Some(files.iter().sum());
        stats
    }
}

impl AccountStore for Store {
    fn create_account(&self, account: NewAccount) -> Result<Pending<()>, StoreError> {
        check_i64(account.created_ms, "creation time")?;
        self.write(move |tx| queries::create_account(tx, &account))
    }

    fn account(&self, nick: &str) -> Result<Pending<Option<Account>>, StoreError> {
        let nick = nick.to_owned();
        let key = nick.clone();
        self.indexed_read(
            move |index| queries::counts(index, Some(&key)),
            move |conn, counts| queries::account(conn, &nick, &counts).map(Ok),
        )
    }

    fn accounts(&self) -> Result<Pending<Vec<Account>>, StoreError> {
        self.indexed_read(
            |index| queries::counts(index, None),
            |conn, counts| queries::accounts(conn, &counts).map(Ok),
        )
    }

    fn set_password(&self, nick: &str, password_hash: String) -> Result<Pending<()>, StoreError> {
        let nick = nick.to_owned();
        self.write(move |tx| queries::set_password(tx.conn, &nick, &password_hash))
    }

    fn set_last_seen(&self, nick: &str, at_ms: u64) -> Result<Pending<()>, StoreError> {
        check_i64(at_ms, "last seen time")?;
        let nick = nick.to_owned();
        self.write(move |tx| queries::set_last_seen(tx.conn, &nick, at_ms))
    }

    fn delete_account(&self, nick: &str) -> Result<Pending<()>, StoreError> {
        let nick = nick.to_owned();
        self.write(move |tx| queries::delete_account(tx, &nick))
    }
}
