//! Requests as the store's threads see them: work to run on a connection,
//! and the oneshot to answer on.

use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::StoreError;
use crate::index::MailIndex;
use crate::logged::Logged;

/// What a write works on: the group's transaction, and the mailboxes'
/// index, whose changes are undone if the transaction is rolled back.
pub(crate) struct Txn<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) index: &'a mut MailIndex,
    /// The batch log, when the reliable path's batches go there
    /// (`logged.rs`).
    pub(crate) logged: Option<&'a mut Logged>,
}

/// What the writer's queue carries.
pub(crate) enum Request {
    /// A write, run inside its group's transaction.
    Write(Box<dyn WriteJob>),
    /// A read, passed on to the reader once the writes queued before it
    /// have committed (so it sees them).
    Read(Box<dyn ReadJob>),
    /// Work on the writer's connection outside any transaction (a pragma),
    /// run when its group is taken, before the group's transaction begins.
    Control(Box<dyn ReadJob>),
}

/// A write: run inside the group's transaction, answered after it.
pub(crate) trait WriteJob: Send {
    /// Runs the write. An error fails the whole group (it is rolled back).
    fn run(&mut self, tx: &mut Txn<'_>) -> rusqlite::Result<()>;

    /// Answers, once the group's transaction has committed (`Ok`) or been
    /// rolled back (`Err`).
    fn answer(self: Box<Self>, committed: Result<(), Arc<rusqlite::Error>>);

    /// Answers without running it (the store's queue refused it).
    fn refuse(self: Box<Self>, error: StoreError);
}

/// Work run once on a connection, answering as it ends.
pub(crate) trait ReadJob: Send {
    /// Takes what it needs from the mailboxes' index, on the writer's
    /// thread, once the writes before it have committed. Most reads need
    /// nothing.
    fn prepare(&mut self, _index: &MailIndex) {}

    /// Runs it and answers.
    fn run(self: Box<Self>, conn: &Connection);

    /// Answers without running it (the reader was busy or gone).
    fn refuse(self: Box<Self>, error: StoreError);
}

/// The answer channel of a request whose answer is a `T`.
type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write's answer handed to a function, run on the store's writer thread
/// as soon as the group's commit (or rollback) returns: nobody has to wait
/// on a [`Pending`](crate::Pending) for it. It must be quick and must not
/// block: the next group waits for it.
pub type Then<T> = Box<dyn FnOnce(Result<T, StoreError>) + Send>;

/// Where a write's answer goes.
pub(crate) trait Answerer<T>: Send {
    fn deliver(self, answer: Result<T, StoreError>);
}

impl<T: Send> Answerer<T> for Reply<T> {
    fn deliver(self, answer: Result<T, StoreError>) {
        // A caller that went away is normal.
        let _ = self.send(answer);
    }
}

impl<T> Answerer<T> for Then<T> {
    fn deliver(self, answer: Result<T, StoreError>) {
        self(answer);
    }
}

/// A write from a closure. The closure's outer error is SQLite failing, its
/// inner one this request's own refusal.
pub(crate) struct Write<T, F, R = Reply<T>> {
    work: Option<F>,
    done: Option<Result<T, StoreError>>,
    reply: R,
}

impl<T, F, R> Write<T, F, R> {
    pub(crate) fn new(work: F, reply: R) -> Self {
        Self {
            work: Some(work),
            done: None,
            reply,
        }
    }
}

impl<T, F, R> WriteJob for Write<T, F, R>
where
    T: Send,
    F: FnOnce(&mut Txn<'_>) -> rusqlite::Result<Result<T, StoreError>> + Send,
    R: Answerer<T>,
{
    fn run(&mut self, tx: &mut Txn<'_>) -> rusqlite::Result<()> {
        if let Some(work) = self.work.take() {
            self.done = Some(work(tx)?);
        }
        Ok(())
    }

    fn answer(self: Box<Self>, committed: Result<(), Arc<rusqlite::Error>>) {
        let answer = match (committed, self.done) {
            (Ok(()), Some(done)) => done,
            (Ok(()), None) => Err(StoreError::Closed),
            (Err(error), _) => Err(StoreError::Failed(error)),
        };
        self.reply.deliver(answer);
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        self.reply.deliver(Err(error));
    }
}

/// A read (or control) from a closure.
pub(crate) struct Read<T, F> {
    work: F,
    reply: Reply<T>,
}

impl<T, F> Read<T, F> {
    pub(crate) fn new(work: F, reply: Reply<T>) -> Self {
        Self { work, reply }
    }
}

impl<T, F> ReadJob for Read<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> rusqlite::Result<Result<T, StoreError>> + Send,
{
    fn run(self: Box<Self>, conn: &Connection) {
        answer_read(self.reply, (self.work)(conn));
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// Sends a read's answer; SQLite failing is logged and answered `Failed`.
fn answer_read<T>(reply: Reply<T>, result: rusqlite::Result<Result<T, StoreError>>) {
    let answer = result.unwrap_or_else(|error| {
        tracing::error!(%error, "store read failed");
        Err(StoreError::Failed(Arc::new(error)))
    });
    let _ = reply.send(answer);
}

/// A read in two steps: `prepare` takes what it needs from the index on the
/// writer's thread (a mailbox's rows, say), `work` reads the rows on the
/// reader's.
pub(crate) struct IndexedRead<T, P, X, F> {
    prepare: Option<P>,
    prepared: Option<X>,
    work: F,
    reply: Reply<T>,
}

impl<T, P, X, F> IndexedRead<T, P, X, F> {
    pub(crate) fn new(prepare: P, work: F, reply: Reply<T>) -> Self {
        Self {
            prepare: Some(prepare),
            prepared: None,
            work,
            reply,
        }
    }
}

impl<T, P, X, F> ReadJob for IndexedRead<T, P, X, F>
where
    T: Send,
    X: Send,
    P: FnOnce(&MailIndex) -> X + Send,
    F: FnOnce(&Connection, X) -> rusqlite::Result<Result<T, StoreError>> + Send,
{
    fn prepare(&mut self, index: &MailIndex) {
        if let Some(prepare) = self.prepare.take() {
            self.prepared = Some(prepare(index));
        }
    }

    fn run(self: Box<Self>, conn: &Connection) {
        match self.prepared {
            Some(prepared) => answer_read(self.reply, (self.work)(conn, prepared)),
            // Never prepared: the writer passes every read through `prepare`.
            None => {
                let _ = self.reply.send(Err(StoreError::Closed));
            }
        }
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}
