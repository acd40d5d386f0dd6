//! The hub actor: one task that owns the [`Registry`] and does all routing.
//!
//! Connections and sessions talk to it through a bounded queue of
//! [`Command`]s; it answers with `oneshot`s where an answer is needed, and
//! otherwise pushes encoded frames into the recipients' [`Outbox`]es, which
//! never makes it wait. This file holds the loop and the commands that are
//! not messages (join, leave, who, the slow-consumer sweep); the rest is
//! split by concept:
//!
//! - `route.rs`: a run of one sender's messages, from names to recipients;
//! - `delivery.rs`: one message's fan-out, and the sender's parked permit;
//! - `gather.rs`: direct messages gathered into one buffer per recipient;
//! - `id_ring.rs`: maps keyed by message id, kept in id order;
//! - `acks.rs`: the sender's replies, and acknowledgements that complete later;
//! - `presence.rs`: comings and goings, queued once per batch;
//! - `message_id.rs`: hub message ids, unique across restarts;
//! - `accounts.rs`: logins, `ACCOUNT` requests and the table of users;
//! - `mailbox.rs`: messages stored for offline users, and delivered at login;
//! - `backlog.rs`: a reliable session's mailbox, sent a window at a time;
//! - `lost.rs`: numbers lost to a failed commit, recorded to be told;
//! - `receipts.rs`: receipts owed by confirming clients, and due to senders;
//! - `held_confirms.rs`: confirmations held until their receipts are confirmed.

mod accounts;
mod acks;
mod backlog;
mod delivery;
mod gather;
mod held_confirms;
mod id_ring;
mod lost;
mod mailbox;
mod message_id;
mod presence;
mod receipts;
mod resend;
mod route;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chinwag_protocol::{
    Code, Encode, PROTOCOL_VERSION, ServerFrame, Welcome, encode_frame, options,
};
use chinwag_store::Account;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use self::accounts::Accounts;
use self::acks::{PendingAcks, Replies};
use self::backlog::Backlogs;
use self::gather::Gathered;
use self::held_confirms::HeldConfirms;
use self::id_ring::IdRing;
use self::mailbox::{HeldCopies, ToStore};
use self::message_id::MessageIds;
use self::presence::PendingPresence;
use self::receipts::Receipts;
use self::resend::Resends;
use self::route::LastFound;
use crate::HubConfig;
use crate::accounts::Storage;
use crate::command::{Answer, Command, Join};
use crate::metrics::{ActorFigures, Tally};
use crate::outbox::{Outbox, Pressure, PushError};
use crate::registry::{ConnId, IdMap, IdSet, Lookup, Member, Registry};

/// Commands the actor takes from its queue at once. Consumers woken by a
/// batch are woken once, after it.
const BATCH: usize = 128;

pub(crate) struct Actor {
    registry: Registry,
    /// Outboxes that went from empty to non-empty during the current batch:
    /// their consumers are woken when the batch is done.
    wakes: Vec<Arc<Outbox>>,
    message_ids: MessageIds,
    /// Connections whose outbox went above its high-water mark; checked by
    /// the sweep so that one that stays there past the deadline is cut even
    /// if nothing more is sent to it.
    congested: IdSet,
    /// Comings and goings of the current batch, not yet queued.
    presence: PendingPresence,
    /// The current command's direct messages, not yet queued.
    gathered: Gathered,
    /// Acknowledgements waiting for a recipient's status, and the replies
    /// held behind them so that each sender's come in the order it sent.
    acks: PendingAcks,
    /// The last name looked up, and whom it found.
    last_found: LastFound,
    /// Registered nicknames, and the store behind them and the mailboxes.
    accounts: Accounts,
    /// The current batch's copies for offline users, not yet handed over.
    to_store: ToStore,
    /// Per connection, the stored messages its login delivered and it has
    /// not confirmed: only these make a `CONFIRM` a write to the store (a
    /// client that confirms every live message would otherwise cost the
    /// store a transaction per batch of confirmations). In id order: a
    /// session is given them, and confirms them, in about that order (in a
    /// hash set each was a cache miss, a sixth of the actor's handling of
    /// the store's answers under `bench direct --reliable`).
    /// Each holds the sender owed a receipt, when the actor knows it
    /// (`held_confirms.rs`).
    stored_out: IdMap<IdRing<Option<Arc<str>>>>,
    /// Reliable sessions' confirmations held until the receipts they owe
    /// are confirmed (`held_confirms.rs`).
    held_confirms: HeldConfirms,
    /// Reliable sessions' mailboxes not all sent yet (`backlog.rs`).
    backlogs: Backlogs,
    /// Numbers lost to failed commits, not recorded by the store yet
    /// (`lost.rs`).
    unrecorded: Vec<(String, chinwag_store::LostNumbers)>,
    /// Copies for reliable sessions online, by message id, with their
    /// index in the `ACK`: delivered once the store has them.
    held: IdRing<HeldCopies>,
    /// Acknowledgements completed while acting on a store's answer, for
    /// one sender, queued together (`route.rs`, `gather_acks`).
    acks_out: (Option<ConnId>, Replies),
    /// Receipts owed by confirming connections, and the batch's due.
    receipts: Receipts,
    /// What became of reliable sessions' newest messages, so that one sent
    /// again is answered rather than routed twice.
    resends: Resends,
    /// Messages by outcome, and routing latency (the admin endpoint).
    tally: Tally,
    /// The folded nickname of the sender whose run is being routed, when
    /// it asked for receipts (set once per run).
    receipt_sender: Option<Arc<str>>,
    /// The hub's tasks, which shutdown waits for: a store answer that must
    /// not be lost if it comes after the actor has stopped is awaited by
    /// one of these.
    tasks: TaskTracker,
    /// The time stamped on what the current batch routes, read once per
    /// batch: a clock read per message was 3% of the hub's time, and a batch
    /// takes well under a millisecond.
    now_ms: u64,
    max_frame: usize,
    deadline: Duration,
}

/// What a hub with a store starts from: the store, every account, and the
/// highest message id it holds.
pub(crate) struct Loaded {
    pub(crate) storage: Storage,
    pub(crate) accounts: Vec<Account>,
    pub(crate) last_message_id: u64,
}

impl Actor {
    pub(crate) fn new(
        config: &HubConfig,
        answers: mpsc::WeakSender<Command>,
        tasks: TaskTracker,
        loaded: Option<Loaded>,
    ) -> Self {
        let mut message_ids = MessageIds::starting_now();
        let (storage, accounts) = match loaded {
            Some(loaded) => {
                // Above every id stored, should the clock have gone back.
                if loaded.last_message_id >= message_ids.peek() {
                    message_ids = MessageIds::starting_after(loaded.last_message_id);
                }
                (Some(loaded.storage), loaded.accounts)
            }
            None => (None, Vec::new()),
        };
        Self {
            accounts: Accounts::new(storage, accounts, config.accounts.clone(), answers),
            to_store: ToStore::default(),
            stored_out: IdMap::default(),
            held_confirms: HeldConfirms::default(),
            backlogs: Backlogs::default(),
            unrecorded: Vec::new(),
            receipts: Receipts::default(),
            resends: Resends::default(),
            held: IdRing::default(),
            acks_out: (None, Replies::new(false, 0)),
            tally: Tally::default(),
            receipt_sender: None,
            tasks,
            registry: Registry::default(),
            wakes: Vec::new(),
            message_ids,
            congested: IdSet::default(),
            presence: PendingPresence::default(),
            gathered: Gathered::default(),
            acks: PendingAcks::default(),
            last_found: LastFound::default(),
            now_ms: now_ms(),
            max_frame: config.max_frame,
            deadline: config.slow_consumer_deadline,
        }
    }

    /// Handles commands until the queue closes or shutdown begins, then
    /// routes what was already sent, closes every outbox with
    /// `SHUTTING_DOWN`, and cancels `done`.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
        done: CancellationToken,
    ) {
        let period = (self.deadline / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut sweep = tokio::time::interval(period);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut expiry =
            tokio::time::interval(self.accounts.policy.sweep_every.max(Duration::from_secs(1)));
        expiry.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                biased;
                received = commands.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        break;
                    }
                    self.now_ms = now_ms();
                    for command in batch.drain(..) {
                        self.handle(command);
                    }
                    self.flush_store();
                    self.flush_receipts();
                    self.flush_held_confirms(false);
                    self.flush_confirms();
                    self.flush_presence();
                    self.wake_all();
                    self.tally.batch_done();
                }
                () = shutdown.cancelled() => break,
                _ = sweep.tick() => {
                    self.now_ms = now_ms();
                    self.sweep();
                    self.record_lost();
                    self.flush_held_confirms(false);
                    self.flush_releases();
                    self.flush_presence();
                    self.wake_all();
                }
                _ = expiry.tick() => {
                    self.now_ms = now_ms();
                    self.expire();
                    self.accounts.prune();
                    let registry = &self.registry;
                    self.resends.prune(self.now_ms, |key| {
                        matches!(registry.lookup(key), Lookup::Online(..))
                    });
                }
            }
        }
        // Route whatever was sent before shutdown, then tell everyone.
        commands.close();
        while let Some(command) = commands.recv().await {
            self.now_ms = now_ms();
            self.handle(command);
        }
        self.flush_store();
        self.flush_receipts();
        self.flush_held_confirms(true);
        self.flush_confirms();
        self.flush_presence();
        self.wake_all();
        let mut holders = Vec::new();
        for (_, member) in self.registry.online() {
            member.outbox.close(Some(Code::SHUTTING_DOWN), true);
            if member.account {
                holders.push(member.nick.clone());
            }
        }
        // Account holders online now were last seen now: written before
        // the store closes (it finishes what was queued).
        self.now_ms = now_ms();
        for nick in &holders {
            self.seen_leaving(nick);
        }
        info!(online = self.registry.len(), "hub actor stopped");
        done.cancel();
    }

    /// The figures a scrape asks for: the tally, who is online, and each
    /// registered connection's messages.
    fn figures(&self) -> ActorFigures {
        ActorFigures {
            tally: self.tally.clone(),
            online: self.registry.len(),
            accounts: self.accounts.known.len(),
            members: (self.registry.online())
                .map(|(id, member)| (id, (member.sent.get(), member.received.get())))
                .collect(),
        }
    }

    fn wake_all(&mut self) {
        for outbox in self.wakes.drain(..) {
            outbox.wake();
        }
    }

    fn handle(&mut self, command: Command) {
        if !matches!(command, Command::Join(_) | Command::Leave { .. }) {
            self.flush_presence();
        }
        match command {
            Command::Join(join) => self.join(join),
            Command::Send {
                id,
                send,
                permit,
                arrived,
            } => {
                self.tally.arrived(arrived);
                self.route_run(id, std::slice::from_ref(&send), permit);
            }
            Command::SendMany {
                id,
                sends,
                permit,
                arrived,
            } => {
                self.tally.arrived(arrived);
                self.route_run(id, &sends, permit);
            }
            Command::Account(job) => self.account(job),
            Command::Confirm { id, ids } => self.confirm(id, ids),
            Command::ConfirmReceipts { id, runs } => self.confirm_receipts(id, &runs),
            Command::Answer(answer) => match *answer {
                Answer::Login { join, ok, sent } => self.logged_in(join, ok, sent),
                Answer::Checked { job, ok, hash } => self.account_checked(job, ok, hash),
                Answer::Written {
                    job,
                    change,
                    result,
                } => self.account_written(job, change, result),
                Answer::Stored {
                    batch,
                    settled,
                    lost,
                } => {
                    self.lost_offline(lost);
                    self.stored_batch(batch, settled);
                }
                Answer::Unrecorded(lost) => self.unrecorded.extend(lost),
                Answer::Mailbox { id, mailbox, gaps } => self.mailbox_read(id, mailbox, &gaps),
                Answer::Gaps { id, gaps } => self.tell_gaps(id, &gaps),
                Answer::Expired(expired) => self.expired(&expired),
                Answer::Confirmed {
                    nick,
                    received_ms,
                    confirmed,
                } => {
                    self.receipts
                        .stored_confirmed(&nick, confirmed, received_ms);
                }
                Answer::KeptReceipts { id, kept } => self.kept_receipts(id, kept),
            },
            Command::Who { id } => self.who(id),
            Command::Leave { id, done } => {
                self.leave(id);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Command::Roster { reply } => {
                let _ = reply.send(self.registry.roster());
            }
            Command::Reconfigure(config) => {
                self.accounts.policy = config.accounts.clone();
                self.deadline = config.slow_consumer_deadline;
            }
            Command::Figures { reply } => {
                let _ = reply.send(self.figures());
            }
            Command::Wedge(duration) => {
                warn!(?duration, "wedging the actor, as a test asked");
                std::thread::sleep(duration);
            }
        }
    }

    /// Registers a nickname whose `HELLO` passed (a guest's, or a login
    /// to `account`): `WELCOME`, the table of users if asked for, the
    /// mailbox for an account, and everyone told.
    fn register(&mut self, join: Join, account: bool) {
        let Join {
            id,
            nick,
            outbox,
            options,
            unregistered,
            reply,
            ..
        } = join;
        // Granted: the options asked for that this hub knows; a reliable
        // session only to an account's login (its mailbox holds the
        // messages).
        let known = if account {
            options::KNOWN
        } else {
            options::KNOWN & !options::RELIABLE
        };
        let granted = options.map(|asked| asked & known);
        let member = Member::new(nick, outbox, granted.unwrap_or(0), account);
        if self.registry.join(id, member).is_err() {
            let _ = reply.send(Err((Code::NICK_TAKEN, unregistered)));
            return;
        }
        drop(unregistered);
        let Some(member) = self.registry.member(id) else {
            return;
        };
        let welcome = ServerFrame::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            max_frame: u32::try_from(self.max_frame).unwrap_or(u32::MAX),
            nick: member.nick.to_string(),
            // Not followed, so not worth a snapshot of everyone online.
            roster: if member.presence() {
                self.registry.roster()
            } else {
                Vec::new()
            },
            options: granted,
        });
        let nick = member.nick.to_string();
        let quiet = member.quiet();
        let table = member.users() && member.presence();
        let outbox = member.outbox.clone();
        let welcomed = encode(&welcome).map(|frame| outbox.push(frame));
        if let Some(Err(_)) = welcomed {
            // A `WELCOME` larger than the queue's limit (a roster of many
            // thousands, and a small limit): the queue is closed as a slow
            // consumer's, so the connection ends. Nobody was told it came.
            warn!(%nick, "the WELCOME did not fit in the new connection's queue");
            self.registry.leave(id);
            let _ = reply.send(Ok(()));
            return;
        }
        if table && outbox.push(self.table_frames()).is_err() {
            warn!(%nick, "the table of users did not fit in the new connection's queue");
            self.registry.leave(id);
            let _ = reply.send(Ok(()));
            return;
        }
        if account {
            self.read_mailbox(id);
            self.take_kept_receipts(id);
        }
        debug!(%nick, account, "joined");
        if quiet {
            self.presence.joined_quietly(id);
        } else {
            self.presence(id, nick, true);
        }
        if reply.send(Ok(())).is_err() {
            // The connection went away while waiting: it will never say
            // goodbye, so do it for it.
            self.leave(id);
        }
    }

    fn leave(&mut self, id: ConnId) {
        self.congested.remove(&id);
        self.acks.forget(id);
        self.receipts.forget(id);
        self.stored_out.remove(&id);
        self.backlogs.forget(id);
        if let Some(member) = self.registry.leave(id) {
            debug!(nick = %member.nick, "left");
            if member.account {
                self.seen_leaving(&member.nick);
            }
            if !member.quiet() {
                self.presence(id, member.nick.to_string(), false);
            }
        }
    }

    /// Queues `frame` for member `id` alone (a reply of its own); one that
    /// overflows its queue is cut, as for any other frame.
    fn queue_for(&mut self, id: ConnId, frame: Bytes) {
        let Some(member) = self.registry.member(id) else {
            return;
        };
        let queued = enqueue(
            id,
            &member.outbox,
            frame,
            &mut self.wakes,
            &mut self.congested,
        );
        if queued == Err(PushError::Overflow) {
            self.leave(id);
        }
    }

    /// Cuts connections that have stayed above their high-water mark for
    /// longer than the slow-consumer deadline.
    fn sweep(&mut self) {
        let deadline = self.deadline;
        let registry = &self.registry;
        let mut cut = Vec::new();
        self.congested.retain(|&id| {
            let Some(member) = registry.member(id) else {
                return false;
            };
            match member.outbox.congested_since() {
                None => false,
                Some(since) if since.elapsed() >= deadline => {
                    warn!(nick = %member.nick, "slow consumer: queue above high-water mark past the deadline");
                    member.outbox.close(Some(Code::SLOW_CONSUMER), false);
                    cut.push(id);
                    false
                }
                Some(_) => true,
            }
        });
        for id in self.backlogs.stalled(deadline) {
            if let Some(member) = self.registry.member(id) {
                warn!(nick = %member.nick, "slow consumer: mailbox messages sent and not confirmed past the deadline");
                member.outbox.close(Some(Code::SLOW_CONSUMER), false);
            }
            cut.push(id);
        }
        for id in cut {
            self.leave(id);
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Encodes a frame the hub builds itself; these are bounded by the hub's own
/// data, so a failure is a bug worth logging, not a reason to stop.
fn encode<F: Encode + ?Sized>(frame: &F) -> Option<Bytes> {
    match encode_frame(frame, usize::MAX) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            warn!(%error, "could not encode a hub frame");
            None
        }
    }
}

/// Queues `frame` on member `id`'s outbox during a batch: its consumer is
/// woken after the batch if it may be waiting, and a queue left above its
/// high-water mark is remembered for the slow-consumer sweep.
fn enqueue(
    id: ConnId,
    outbox: &Arc<Outbox>,
    frame: Bytes,
    wakes: &mut Vec<Arc<Outbox>>,
    congested: &mut IdSet,
) -> Result<Pressure, PushError> {
    let (pressure, wake) = outbox.push_quiet(frame)?;
    if wake {
        wakes.push(outbox.clone());
    }
    if pressure == Pressure::Congested {
        congested.insert(id);
    }
    Ok(pressure)
}
