//! The writer thread: group commit, and the reader thread it feeds.
//!
//! The writer blocks for one request, then takes every request already
//! queued behind it, up to [`StoreConfig::group_max`](crate::StoreConfig::group_max),
//! and runs their writes in one transaction: `BEGIN IMMEDIATE`, each write,
//! `COMMIT`. With `synchronous=FULL` in WAL mode the commit is one append to
//! the log and one fsync, shared by the whole group. Only when `COMMIT` has
//! returned does it answer the group's writes, so an answer of "stored"
//! always follows the fsync that made it so. Requests that arrive during the
//! commit wait in the queue and form the next group: under load the groups
//! grow by themselves, and a lone write is committed at once, with no timer.
//!
//! If any write or the commit fails (a full disk, an I/O error), the group
//! is rolled back, the index's changes with it, and every write in it is answered
//! [`StoreError::Failed`](crate::StoreError::Failed): they shared a
//! transaction, so none of them is on disk. The error is logged and the
//! writer goes on with the next group, which succeeds once the disk has
//! room again. Refusals that are a request's own answer (a full mailbox, no
//! such account) are not failures and leave the group alone.
//!
//! Batches kept in the writer's memory (the journal's held copies,
//! `journal.rs`, and the receipt log's receipts, `receipt_log.rs`) are
//! settled by the first commit after their grace. When no request comes,
//! the writer waits for the next one only until the oldest comes due, and
//! then settles it in a commit of its own: a current-thread runtime on the
//! writer's thread keeps that time.
//!
//! Reads queue behind the writes like everything else, and the writer
//! passes them to the reader thread after their group has committed: a read
//! sees every write handed over before it, yet runs on its own connection
//! (WAL lets it read while the next group commits), so a large mailbox read
//! at login does not hold up the writes behind it. The writer also keeps
//! the mailboxes' index (`index.rs`): a read that needs it (a mailbox at
//! login: which rows) takes it on the writer's thread, as of its group's
//! commit, before being passed on.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tracing::{debug, error, warn};

use crate::checkpoint::Checkpoints;
use crate::index::MailIndex;
use crate::jobs::{ReadJob, Request, Txn, WriteJob};
use crate::logged::{self, Logged};
use crate::queries;
use crate::{StoreError, StoreStats};

/// How long the writer waits with nothing to do before it gives back the
/// room a burst grew its undo records to. Trimmed whenever the queue ran
/// empty (before), a steady load grew them again in nearly every group,
/// into fresh pages: page faults were a fifth of the writer's time under
/// `bench direct --reliable`.
const TRIM_AFTER: Duration = Duration::from_secs(1);

/// The writer thread's state.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    /// The mailboxes' index, as of the last commit (and, during a group,
    /// with the group's changes, undone if it is rolled back).
    pub(crate) index: MailIndex,
    pub(crate) requests: mpsc::Receiver<Request>,
    /// The reader's queue; dropped when the writer ends, which ends the
    /// reader.
    pub(crate) reads: mpsc::Sender<Box<dyn ReadJob>>,
    pub(crate) group_max: usize,
    /// Wakes the checkpointer as the log grows (`checkpoint.rs`).
    pub(crate) checkpoints: Checkpoints,
    /// Commit latencies and failures, for the handles' `stats` (locked once
    /// per group commit).
    pub(crate) stats: Arc<Mutex<StoreStats>>,
    /// The batch log, when the reliable path's batches go there
    /// (`logged.rs`).
    pub(crate) logged: Option<Logged>,
    /// Frames written to the batch log (for whether a group wrote
    /// anything).
    pub(crate) frames: u64,
}

impl Writer {
    /// Runs until every handle to the store is gone and the queue is empty.
    pub(crate) fn run(mut self) {
        // Keeps time while batches wait to be settled and no request comes.
        let clock = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|error| {
                warn!(%error, "no timer for the store's batches: they are settled at the next commit");
            })
            .ok();
        let mut group = Vec::with_capacity(self.group_max);
        while let Some(first) = self.next_request(clock.as_ref()) {
            group.push(first);
            while group.len() < self.group_max {
                match self.requests.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
            self.handle_group(group.drain(..));
        }
        // The store is closing: the batches held in memory are settled, so
        // that a clean restart neither delivers their confirmed copies nor
        // sends their confirmed receipts again.
        if let Err(error) = self.commit(&mut [], true) {
            warn!(%error, "could not settle the journal and the receipts at close");
        } else if let Some(logged) = &self.logged {
            // Nothing in the batch log is needed now: the next open reads
            // none of it.
            if let Err(error) = logged::closed(&self.conn, logged.last_lsn()) {
                warn!(%error, "could not mark the batch log read at close");
            }
        }
    }

    /// Blocks for the next request (`None`: every handle is gone). While
    /// batches of the journal or the receipt log wait in memory and no
    /// request comes, settles each as it comes due, so that none waits
    /// longer than its grace however quiet the store is (`journal.rs`,
    /// `receipt_log.rs`). A write that fails (a full disk) leaves them to
    /// the next group's commit. Once no request has come for
    /// [`TRIM_AFTER`], gives back what a burst grew the index's undo
    /// records to.
    fn next_request(&mut self, clock: Option<&tokio::runtime::Runtime>) -> Option<Request> {
        match self.requests.try_recv() {
            Ok(request) => return Some(request),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        let Some(clock) = clock else {
            self.index.trim_undo();
            return self.requests.blocking_recv();
        };
        let mut trim_at = self
            .index
            .undo_to_trim()
            .then(|| Instant::now() + TRIM_AFTER);
        let mut failed = false;
        loop {
            let due = self.index.next_due().filter(|_| !failed);
            let Some(deadline) = due.into_iter().chain(trim_at).min() else {
                return self.requests.blocking_recv();
            };
            let deadline = tokio::time::Instant::from_std(deadline);
            let requests = &mut self.requests;
            // Made inside `block_on`: a timer needs its runtime's context.
            let waited =
                clock.block_on(async { tokio::time::timeout_at(deadline, requests.recv()).await });
            if let Ok(request) = waited {
                return request;
            }
            let now = Instant::now();
            if trim_at.is_some_and(|at| at <= now) {
                self.index.trim_undo();
                trim_at = None;
            }
            if due.is_some_and(|due| due <= now) {
                match self.commit(&mut [], false) {
                    Ok(()) => self.checkpoints.after_commit(&self.conn),
                    Err(error) => {
                        warn!(%error, "could not settle the batches that came due");
                        failed = true;
                    }
                }
            }
        }
    }

    fn handle_group(&mut self, group: impl Iterator<Item = Request>) {
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        for request in group {
            match request {
                Request::Write(job) => writes.push(job),
                Request::Read(job) => reads.push(job),
                Request::Control(job) => job.run(&self.conn),
            }
        }
        if !writes.is_empty() {
            let changes_before = self.conn.total_changes();
            let frames_before = self.frames;
            let started = Instant::now();
            let committed = self.commit(&mut writes, false).map_err(|error| {
                error!(%error, writes = writes.len(), "store commit failed; rolled back");
                Arc::new(error)
            });
            let took = started.elapsed();
            if committed.is_ok() {
                self.checkpoints.after_commit(&self.conn);
            }
            {
                let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
                stats.commits.record(took);
                // A commit that changed no row (an hourly sweep with nothing
                // to sweep) says nothing about whether the disk takes data.
                let wrote =
                    self.conn.total_changes() > changes_before || self.frames > frames_before;
                if committed.is_err() || wrote {
                    stats.writable = committed.is_ok();
                }
                stats.failed_commits += u64::from(committed.is_err());
            }
            debug!(
                writes = writes.len(),
                ok = committed.is_ok(),
                commit_us = took.as_micros(),
                "group commit"
            );
            for job in writes {
                job.answer(committed.clone());
            }
        }
        for mut job in reads {
            job.prepare(&self.index);
            match self.reads.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job)) => job.refuse(StoreError::Busy),
                Err(TrySendError::Closed(job)) => job.refuse(StoreError::Closed),
            }
        }
    }

    /// Runs `writes` in one transaction and commits it, or rolls it back,
    /// and the index's changes with it. Batches held in memory that are
    /// due are settled first (`settle_all`: every one, as the store
    /// closes), and the group's receipts written last.
    fn commit(
        &mut self,
        writes: &mut [Box<dyn WriteJob>],
        settle_all: bool,
    ) -> rusqlite::Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let changes_before = self.conn.total_changes();
        let mut tx = Txn {
            conn: &self.conn,
            index: &mut self.index,
            logged: self.logged.as_mut(),
        };
        // Receipts that waited long enough for their owners' confirmation
        // are written first (`index.rs`).
        let mut result = queries::settle(&mut tx, settle_all)
            .and_then(|()| writes.iter_mut().try_for_each(|job| job.run(&mut tx)))
            .and_then(|()| queries::finish(&mut tx));
        // The batch log's frame first, then SQLite's commit: a group is
        // answered once both are on disk, and if SQLite's fails, the frame
        // is taken back (`logged.rs`).
        let mut framed = None;
        if let (Ok(()), Some(logged)) = (&result, self.logged.as_mut())
            && logged.has_frame()
            && self.conn.total_changes() > changes_before
        {
            result = logged.with_tables(&self.conn);
        }
        if let (Ok(()), Some(logged)) = (&result, self.logged.as_mut()) {
            match logged.commit() {
                Ok(frame) => framed = frame,
                Err(error) => result = Err(logged::failure(&error)),
            }
        }
        if result.is_ok() {
            result = self.conn.execute_batch("COMMIT");
            if let (Err(_), Some(logged), Some(frame)) = (&result, self.logged.as_mut(), framed) {
                logged.revoke(frame);
            }
        }
        if result.is_ok() {
            if let Some(frame) = framed {
                self.index.place(frame.segment);
                self.frames += 1;
            }
            let gone = self.index.commit();
            if let Some(logged) = self.logged.as_mut() {
                for segment in gone {
                    logged.release(segment);
                }
            }
        } else {
            self.index.roll_back();
            if let Some(logged) = self.logged.as_mut() {
                logged.discard();
            }
        }
        // SQLite rolls some failures back by itself (a full disk can); roll
        // back whatever it left open.
        if result.is_err()
            && !self.conn.is_autocommit()
            && let Err(error) = self.conn.execute_batch("ROLLBACK")
        {
            warn!(%error, "store rollback failed");
        }
        result
    }
}

/// The reader thread: runs reads one at a time on its own connection.
pub(crate) fn read_loop(conn: &Connection, mut reads: mpsc::Receiver<Box<dyn ReadJob>>) {
    while let Some(job) = reads.blocking_recv() {
        job.run(conn);
    }
}
