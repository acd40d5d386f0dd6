//! The hub actor and the handle everyone else holds.
//!
//! One task owns the [`Registry`] and does all routing. Connections and
//! sessions talk to it through a bounded command queue; it answers with
//! `oneshot`s where an answer is needed, and otherwise pushes encoded frames
//! into the recipients' [`Outbox`]es, which never makes it wait.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use chinwag_protocol::{
    AckRun, AckView, Code, Encode, ErrorFrame, MAX_NICK_LEN, MessageView, Nick, PROTOCOL_VERSION,
    Presence, SendPayload, ServerFrame, Utf8, Welcome, encode_frame, encode_into, options,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::outbox::{Outbox, Pressure, PushError};
use crate::registry::{ConnId, IdSet, Lookup, Member, Registry};
use crate::stats::Counters;
use crate::{HubConfig, HubError, HubStats};

/// What connections and sessions ask of the actor.
#[derive(Debug)]
pub(crate) enum Command {
    /// Register `nick` for connection `id`, whose frames go to `outbox`.
    Join {
        id: ConnId,
        nick: Nick,
        outbox: Arc<Outbox>,
        /// The options `HELLO` asked for, if it carried the field.
        options: Option<u32>,
        /// The connection's place under the limit of unregistered ones. It
        /// is given up before the `WELCOME` is queued, so that no one who
        /// has read that `WELCOME` finds the place still taken, and handed
        /// back with a refusal.
        unregistered: Option<OwnedSemaphorePermit>,
        reply: oneshot::Sender<Result<(), (Code, Option<OwnedSemaphorePermit>)>>,
    },
    /// Route a message. The permit is the sender's in-flight slot: dropped
    /// once routed, or parked on a congested recipient's outbox.
    Send {
        id: ConnId,
        send: SendPayload,
        permit: OwnedSemaphorePermit,
    },
    /// Route several messages of one sender, in order: those a connection
    /// found already read behind one another. One permit covers them all,
    /// and is released once they are routed, or once the last congested
    /// recipient any of them was parked on has drained.
    SendMany {
        id: ConnId,
        sends: Vec<SendPayload>,
        permit: OwnedSemaphorePermit,
    },
    /// Queue a `ROSTER` frame for connection `id`.
    Who { id: ConnId },
    /// Connection `id` is gone. `done` is answered once the actor has handled
    /// everything the connection sent before, so that the acks of its last
    /// messages are queued before its outbox closes.
    Leave {
        id: ConnId,
        done: Option<oneshot::Sender<()>>,
    },
    /// Answer with the roster (for embedders).
    Roster { reply: oneshot::Sender<Vec<String>> },
}

/// A handle to a running hub. Cheap to clone; every clone talks to the same
/// actor.
///
/// ```no_run
/// use chinwag_hub::{Hub, HubConfig};
/// use tokio::net::TcpListener;
///
/// # async fn demo() -> std::io::Result<()> {
/// let hub = Hub::start(HubConfig::default());
/// let listener = TcpListener::bind("127.0.0.1:2446").await?;
/// let server = tokio::spawn({
///     let hub = hub.clone();
///     async move { hub.serve(listener).await }
/// });
/// // ... later:
/// hub.shutdown().await;
/// server.await??;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Hub {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) config: HubConfig,
    /// Cancelled when shutdown begins: stop accepting and reading.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the actor has routed everything it was sent and exited.
    pub(crate) actor_done: CancellationToken,
    /// Every task of this hub: the actor and each connection.
    pub(crate) tracker: TaskTracker,
    /// One permit per registered user (connection or session).
    pub(crate) connections: Arc<Semaphore>,
    /// One permit per connection that has not registered yet.
    pub(crate) unregistered: Arc<Semaphore>,
    /// Limits breached, for logs and stats.
    pub(crate) counters: Counters,
    next_conn: AtomicU64,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.shared.config)
            .field("shutting_down", &self.shared.shutdown.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Spawns the hub's actor on the current Tokio runtime and returns a
    /// handle to it.
    ///
    /// # Panics
    /// If called outside a Tokio runtime.
    pub fn start(config: HubConfig) -> Self {
        let (commands, rx) = mpsc::channel(config.command_queue.max(1));
        let shared = Arc::new(Shared {
            commands,
            connections: Arc::new(Semaphore::new(config.max_connections)),
            unregistered: Arc::new(Semaphore::new(config.max_unregistered)),
            counters: Counters::default(),
            shutdown: CancellationToken::new(),
            actor_done: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            config,
        });
        let actor = Actor {
            registry: Registry::default(),
            wakes: Vec::new(),
            next_message: 0,
            congested: IdSet::default(),
            presence: PendingPresence::default(),
            gathered: Gathered::default(),
            last_found: LastFound::default(),
            now_ms: now_ms(),
            max_frame: shared.config.max_frame,
            deadline: shared.config.slow_consumer_deadline,
        };
        shared
            .tracker
            .spawn(actor.run(rx, shared.shutdown.clone(), shared.actor_done.clone()));
        Self { shared }
    }

    /// The configuration this hub runs with.
    pub fn config(&self) -> &HubConfig {
        &self.shared.config
    }

    /// Who is online, sorted case-insensitively.
    ///
    /// # Errors
    /// [`HubError::Closed`] once the hub has shut down.
    pub async fn roster(&self) -> Result<Vec<String>, HubError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Roster { reply }).await?;
        answer.await.map_err(|_| HubError::Closed)
    }

    /// Begins shutdown without waiting for it: stop accepting, stop reading,
    /// route what was already sent, flush every queue, and tell each client
    /// with a `SHUTTING_DOWN` error.
    pub fn begin_shutdown(&self) {
        self.shared.shutdown.cancel();
        self.shared.tracker.close();
    }

    /// Shuts down and waits until every connection has been flushed and
    /// closed and the actor has exited. A peer that stops reading can delay
    /// this by up to [`HubConfig::slow_consumer_deadline`]; callers that need
    /// a harder bound wrap this in a timeout.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        self.shared.tracker.wait().await;
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }

    /// Connections and sessions being served right now, registered or not.
    pub fn connection_count(&self) -> usize {
        let config = &self.shared.config;
        (config.max_connections - self.shared.connections.available_permits())
            + (config.max_unregistered - self.shared.unregistered.available_permits())
    }

    /// How often each limit has been hit since the hub started.
    pub fn stats(&self) -> HubStats {
        self.shared.counters.snapshot()
    }

    pub(crate) fn next_conn_id(&self) -> ConnId {
        ConnId(self.shared.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// As [`command`](Self::command), without an `.await` when the queue has room.
    pub(crate) async fn try_command(&self, command: Command) -> Result<(), HubError> {
        match self.shared.commands.try_send(command) {
            Ok(()) => Ok(()),
            // Boxed: the slow path's state would otherwise sit in every
            // connection's task for its whole life.
            Err(mpsc::error::TrySendError::Full(command)) => Box::pin(self.command(command)).await,
            Err(mpsc::error::TrySendError::Closed(_)) => Err(HubError::Closed),
        }
    }

    pub(crate) async fn command(&self, command: Command) -> Result<(), HubError> {
        self.shared
            .commands
            .send(command)
            .await
            .map_err(|_| HubError::Closed)
    }

    /// Registers `nick` for connection `id`. On success the actor has already
    /// queued `WELCOME` on `outbox` and told everyone else, and has dropped
    /// `unregistered`; a refusal hands it back.
    pub(crate) async fn join(
        &self,
        id: ConnId,
        nick: Nick,
        outbox: Arc<Outbox>,
        options: Option<u32>,
        unregistered: Option<OwnedSemaphorePermit>,
    ) -> Result<(), (HubError, Option<OwnedSemaphorePermit>)> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Join {
            id,
            nick,
            outbox,
            options,
            unregistered,
            reply,
        })
        .await
        .map_err(|error| (error, None))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((code, unregistered))) => Err((HubError::Refused(code), unregistered)),
            Err(_) => Err((HubError::Closed, None)),
        }
    }

    /// A semaphore of in-flight bytes for one connection or session.
    pub(crate) fn new_in_flight(&self) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(self.in_flight_budget() as usize))
    }

    /// The in-flight budget as permits: at least one, at most what one
    /// acquisition can take.
    fn in_flight_budget(&self) -> u32 {
        let budget = self.shared.config.max_in_flight_bytes;
        u32::try_from(budget).unwrap_or(u32::MAX).max(1)
    }

    /// What sending `send` takes from its sender's in-flight budget: about
    /// the bytes it will occupy, and never more than the whole budget, so
    /// that a message larger than the budget waits for the others and then
    /// goes alone.
    pub(crate) fn in_flight_cost(&self, send: &SendPayload) -> u32 {
        let bytes = u32::try_from(send.len() + 32).unwrap_or(u32::MAX);
        bytes.clamp(1, self.in_flight_budget())
    }

    pub(crate) fn new_outbox(&self) -> Arc<Outbox> {
        let config = &self.shared.config;
        Arc::new(Outbox::new(config.outbox_high_water, config.outbox_limit))
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

/// Appends a reply the hub builds itself to `replies`; as [`encode`].
fn encode_reply<F: Encode + ?Sized>(frame: &F, replies: &mut BytesMut) {
    if let Err(error) = encode_into(frame, usize::MAX, replies) {
        warn!(%error, "could not encode a hub frame");
    }
}

/// The replies (`ACK`s and errors) to a run of one sender's messages, in
/// the run's order. For a sender that asked for `ACK_RUNS`, consecutive
/// messages that each reached everyone they named are acknowledged by one
/// `ACK_RUN` rather than an `ACK` each.
struct Replies {
    frames: BytesMut,
    ack_runs: bool,
    /// The run being gathered, written once a reply breaks it or the
    /// sender's run of messages ends.
    open: Option<AckRun>,
}

impl Replies {
    fn new(ack_runs: bool, sends: usize) -> Self {
        Self {
            frames: BytesMut::with_capacity(if ack_runs { 32 } else { sends * 48 }),
            ack_runs,
            open: None,
        }
    }

    /// Appends a reply, after the run gathered so far.
    fn frame<F: Encode + ?Sized>(&mut self, frame: &F) {
        self.close();
        encode_reply(frame, &mut self.frames);
    }

    /// Appends a message's `ACK`; if the message reached everyone it named
    /// and the sender asked for runs, it joins the open run instead (or
    /// opens the next one, if it does not follow).
    fn ack<S>(&mut self, ack: &AckView<S>, reached_all: bool)
    where
        AckView<S>: Encode,
    {
        if !(self.ack_runs && reached_all) {
            return self.frame(ack);
        }
        let (client_id, message_id) = (ack.client_id, ack.message_id);
        if let Some(open) = &mut self.open
            && open.extend(client_id, message_id)
        {
            return;
        }
        self.close();
        self.open = Some(AckRun::one(client_id, message_id));
    }

    fn close(&mut self) {
        if let Some(run) = self.open.take() {
            encode_reply(&ServerFrame::AckRun(run), &mut self.frames);
        }
    }

    fn finish(mut self) -> BytesMut {
        self.close();
        self.frames
    }
}

/// The error for a message whose `MESSAGE` frame would exceed the frame
/// limit once the sender's name and the recipients are added.
const TOO_LARGE: &str =
    "the message is too large once addressed; send a shorter text or fewer recipients";

/// Commands the actor takes from its queue at once. Consumers woken by a
/// batch are woken once, after it.
const BATCH: usize = 128;

struct Actor {
    registry: Registry,
    /// Outboxes that went from empty to non-empty during the current batch:
    /// their consumers are woken when the batch is done.
    wakes: Vec<Arc<Outbox>>,
    next_message: u64,
    /// Connections whose outbox went above its high-water mark; checked by
    /// the sweep so that one that stays there past the deadline is cut even
    /// if nothing more is sent to it.
    congested: IdSet,
    /// Comings and goings of the current batch, not yet queued.
    presence: PendingPresence,
    /// The current command's direct messages, not yet queued.
    gathered: Gathered,
    /// The last name looked up, and whom it found.
    last_found: LastFound,
    /// The time stamped on what the current batch routes, read once per
    /// batch: a clock read per message was 3% of the hub's time, and a batch
    /// takes well under a millisecond.
    now_ms: u64,
    max_frame: usize,
    deadline: Duration,
}

/// `PRESENCE` notices waiting to be queued. A storm of connections (a
/// restart, a load balancer failing over) is n joins each announced to
/// everyone: n^2 notices. The joins and leaves of one batch of commands go
/// out together instead, as one buffer per recipient holding all of their
/// frames, so each recipient costs one queue slot and one wake-up per batch
/// rather than per notice. The wire is the same; only the queueing changes.
///
/// Order is kept: the actor queues these before it handles any other
/// command, and before waking anyone.
#[derive(Debug, Default)]
struct PendingPresence {
    /// The encoded frames, one after another.
    frames: BytesMut,
    /// Who joined during the batch, and where in `frames` the notices that
    /// came after their own begin: they see only those.
    joined: Vec<(ConnId, usize)>,
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
        done: CancellationToken,
    ) {
        let period = (self.deadline / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut sweep = tokio::time::interval(period);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
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
                    self.flush_presence();
                    self.wake_all();
                }
                () = shutdown.cancelled() => break,
                _ = sweep.tick() => {
                    self.now_ms = now_ms();
                    self.sweep();
                    self.flush_presence();
                    self.wake_all();
                }
            }
        }
        // Route whatever was sent before shutdown, then tell everyone.
        commands.close();
        while let Some(command) = commands.recv().await {
            self.now_ms = now_ms();
            self.handle(command);
        }
        self.flush_presence();
        self.wake_all();
        for (_, member) in self.registry.online() {
            member.outbox.close(Some(Code::SHUTTING_DOWN), true);
        }
        info!(online = self.registry.len(), "hub actor stopped");
        done.cancel();
    }

    fn wake_all(&mut self) {
        for outbox in self.wakes.drain(..) {
            outbox.wake();
        }
    }

    fn handle(&mut self, command: Command) {
        if !matches!(command, Command::Join { .. } | Command::Leave { .. }) {
            self.flush_presence();
        }
        match command {
            Command::Join {
                id,
                nick,
                outbox,
                options,
                unregistered,
                reply,
            } => self.join(id, nick, outbox, options, unregistered, reply),
            Command::Send { id, send, permit } => {
                self.route_run(id, std::slice::from_ref(&send), permit);
            }
            Command::SendMany { id, sends, permit } => self.route_run(id, &sends, permit),
            Command::Who { id } => {
                if let Some(member) = self.registry.member(id) {
                    let roster = ServerFrame::Roster(self.registry.roster());
                    if let Some(frame) = encode(&roster) {
                        let _ = member.outbox.push(frame);
                    }
                }
            }
            Command::Leave { id, done } => {
                self.leave(id);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Command::Roster { reply } => {
                let _ = reply.send(self.registry.roster());
            }
        }
    }

    fn join(
        &mut self,
        id: ConnId,
        nick: Nick,
        outbox: Arc<Outbox>,
        options: Option<u32>,
        unregistered: Option<OwnedSemaphorePermit>,
        reply: oneshot::Sender<Result<(), (Code, Option<OwnedSemaphorePermit>)>>,
    ) {
        // Granted: the options asked for that this hub knows.
        let granted = options.map(|asked| asked & options::KNOWN);
        let member = Member {
            nick,
            outbox,
            ack_runs: granted.is_some_and(|bits| bits & options::ACK_RUNS != 0),
            presence: granted.is_none_or(|bits| bits & options::NO_PRESENCE == 0),
        };
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
            roster: if member.presence {
                self.registry.roster()
            } else {
                Vec::new()
            },
            options: granted,
        });
        if let Some(frame) = encode(&welcome) {
            let _ = member.outbox.push(frame);
        }
        let nick = member.nick.to_string();
        debug!(%nick, "joined");
        self.presence(id, nick, true);
        if reply.send(Ok(())).is_err() {
            // The connection went away while waiting: it will never say
            // goodbye, so do it for it.
            self.leave(id);
        }
    }

    fn leave(&mut self, id: ConnId) {
        self.congested.remove(&id);
        if let Some(member) = self.registry.leave(id) {
            debug!(nick = %member.nick, "left");
            self.presence(id, member.nick.to_string(), false);
        }
    }

    /// Tells those who follow presence, but `subject`, that `nick` came or
    /// went, once the batch's notices are flushed.
    fn presence(&mut self, subject: ConnId, nick: String, online: bool) {
        let frame = ServerFrame::Presence(Presence {
            online,
            ts_ms: self.now_ms,
            nick,
        });
        let Some(frame) = encode(&frame) else { return };
        let pending = &mut self.presence;
        pending.frames.extend_from_slice(&frame);
        if online {
            pending.joined.push((subject, pending.frames.len()));
        }
    }

    /// Queues the batch's presence notices to those who follow presence:
    /// all of them for those who were online before it, and for those who
    /// joined during it the ones after their own.
    fn flush_presence(&mut self) {
        while !self.presence.frames.is_empty() {
            let all = self.presence.frames.split().freeze();
            let mut joined = std::mem::take(&mut self.presence.joined);
            joined.sort_unstable();
            let mut cut = Vec::new();
            for (id, member) in self.registry.watchers() {
                let from = joined
                    .binary_search_by_key(&id, |&(joiner, _)| joiner)
                    .map_or(0, |at| joined[at].1);
                if from == all.len() {
                    continue;
                }
                let queued = enqueue(
                    id,
                    &member.outbox,
                    all.slice(from..),
                    &mut self.wakes,
                    &mut self.congested,
                );
                if queued == Err(PushError::Overflow) {
                    cut.push(id);
                }
            }
            // Their departures are announced in turn, hence the loop.
            for id in cut {
                self.leave(id);
            }
            joined.clear();
            self.presence.joined = joined;
        }
    }

    /// Routes a run of `id`'s messages in order, under one permit, then
    /// queues the messages gathered for single recipients and the run's
    /// replies.
    fn route_run(&mut self, id: ConnId, sends: &[SendPayload], permit: OwnedSemaphorePermit) {
        let mut permit = InFlight::new(permit);
        let ack_runs = self
            .registry
            .member(id)
            .is_some_and(|sender| sender.ack_runs);
        let mut replies = Replies::new(ack_runs, sends.len());
        // Room for the whole run in one recipient's buffer (a `MESSAGE` is a
        // `SEND` plus the sender's name, an id and a time): grown by
        // doubling, a run of 64 is copied 7 times.
        self.gathered.room = sends.iter().map(|send| send.len() + 48).sum();
        for send in sends {
            self.route(id, send, &mut permit, &mut replies);
        }
        self.gathered.flush(&mut self.wakes);
        self.reply(id, replies.finish());
    }

    /// Queues the replies (`ACK`s and errors) gathered while routing a run
    /// of `id`'s messages: one queue slot for the run, in its order.
    fn reply(&mut self, id: ConnId, replies: BytesMut) {
        if replies.is_empty() {
            return;
        }
        let Some(sender) = self.registry.member(id) else {
            return;
        };
        let queued = enqueue(
            id,
            &sender.outbox,
            replies.freeze(),
            &mut self.wakes,
            &mut self.congested,
        );
        if queued == Err(PushError::Overflow) {
            self.leave(id);
        }
    }

    /// Routes one message, and writes the sender's reply to it (its `ACK`,
    /// or an error) at the end of `replies`.
    fn route(
        &mut self,
        from: ConnId,
        send: &SendPayload,
        permit: &mut InFlight,
        replies: &mut Replies,
    ) {
        let Some(sender) = self.registry.member(from) else {
            return;
        };
        let mut reply_error = |code: Code, message: &str| {
            let error = ServerFrame::Error(ErrorFrame {
                code,
                reference: send.id(),
                message: message.to_owned(),
            });
            replies.frame(&error);
        };

        let mut named = match send.recipients() {
            Some(_) if send.recipient_count() == 0 => {
                reply_error(Code::BAD_REQUEST, "a message needs at least one recipient");
                return;
            }
            Some(names) => Some(resolve(
                &self.registry,
                &mut self.last_found,
                names,
                send.recipient_count(),
            )),
            None => None,
        };

        self.next_message += 1;
        let registry = &self.registry;
        // Written straight from the parts, nothing copied first. The
        // recipients are shown as they registered (never the sender's typos
        // or guesses), or as everyone.
        let message = MessageView {
            id: self.next_message,
            ts_ms: self.now_ms,
            from: sender.nick.as_str(),
            to: named.as_deref().map(|named| {
                named
                    .iter()
                    .filter_map(|named| Some(named.found?.1.nick.as_str()))
            }),
            text: send.text_utf8(),
        };
        let mut delivery = Delivery {
            permit,
            congested: &mut self.congested,
            wakes: &mut self.wakes,
            cut: Vec::new(),
            delivered: 0,
            failures: Vec::new(),
        };
        // A message for one user is written into the buffer of that user's
        // messages in this command, queued when the command is done.
        let single = named.as_deref().and_then(|named| {
            let mut found = named.iter().filter_map(|named| named.found);
            let first = found.next()?;
            found.next().is_none().then_some(first)
        });
        if let Some((id, member)) = single {
            let room = self.gathered.room;
            let chunk = self.gathered.chunk(id, &member.outbox, delivery.wakes);
            let start = chunk.frames.len();
            if encode_into(&message, self.max_frame, &mut chunk.frames).is_err() {
                reply_error(Code::BAD_REQUEST, TOO_LARGE);
                return;
            }
            let reserved = chunk.reserve(chunk.frames.len() - start, room);
            match reserved {
                Ok(Pressure::Congested) => {
                    delivery.congested.insert(id);
                }
                Ok(Pressure::Normal) => {}
                Err(_) => chunk.frames.truncate(start),
            }
            let status = delivery.counted(id, member, reserved);
            for recipient in named.iter_mut().flatten() {
                if recipient.found.is_some() {
                    recipient.status = status;
                }
            }
        } else {
            // Whoever this reaches gets it after what they were sent before.
            self.gathered.flush(delivery.wakes);
            // Encoded once; every recipient's queue gets a clone of the same bytes.
            let Ok(frame) = encode_frame(&message, self.max_frame) else {
                reply_error(Code::BAD_REQUEST, TOO_LARGE);
                return;
            };
            delivery.fan_out(from, frame, named.as_deref_mut(), registry);
        }

        let ack = AckView {
            client_id: send.id(),
            message_id: self.next_message,
            delivered: delivery.delivered,
            // Every named recipient, or the broadcast's failures.
            statuses: (named.iter().flatten())
                .map(|named| (named.name, named.status))
                .chain(delivery.failures.iter().copied()),
        };
        let cut = delivery.cut;
        replies.ack(&ack, reached_all(named.as_deref(), delivery.delivered));
        // Whoever this message cut is gone for everyone at once.
        for id in cut {
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
        for id in cut {
            self.leave(id);
        }
    }
}

/// A recipient as the sender named it, who that is if anyone, and what
/// became of the message for them.
struct Named<'a, 'r> {
    name: Utf8<'a>,
    found: Option<(ConnId, &'r Member)>,
    status: Code,
}

/// Whether a message reached every user it named, so that a run may
/// acknowledge it. Never a broadcast: its `delivered` is a count its
/// sender could not work out.
fn reached_all(named: Option<&[Named<'_, '_>]>, delivered: u32) -> bool {
    named.is_some_and(|named| {
        named.iter().all(|named| named.status == Code::DELIVERED)
            && u32::try_from(named.len()) == Ok(delivered)
    })
}

/// Resolves named recipients once, case-insensitively, in the order first
/// named; a name repeated in any case counts once. Allocates nothing per
/// name beyond the copy the ack needs: names are folded on the stack,
/// and repeats found by comparing with the names kept so far (a list of
/// recipients is short; long ones fall back to a hash set).
fn resolve<'a, 'r>(
    registry: &'r Registry,
    last_found: &mut LastFound,
    names: impl Iterator<Item = Utf8<'a>>,
    count: usize,
) -> Vec<Named<'a, 'r>> {
    let mut resolved: Vec<Named<'_, '_>> = Vec::with_capacity(count);
    // Only for long lists; creating a hash set costs even when unused.
    let mut seen = (count > 16).then(HashSet::new);
    for name in names {
        let repeated = match &mut seen {
            None => resolved
                .iter()
                .any(|kept| kept.name.as_bytes().eq_ignore_ascii_case(name.as_bytes())),
            Some(seen) => !seen.insert(name.as_bytes().to_ascii_lowercase()),
        };
        if !repeated {
            let found = lookup(registry, last_found, name.as_bytes());
            resolved.push(Named {
                name,
                found,
                status: Code::NO_SUCH_USER,
            });
        }
    }
    resolved
}

/// The online user called `name`, in any case.
fn lookup<'r>(
    registry: &'r Registry,
    last_found: &mut LastFound,
    name: &[u8],
) -> Option<(ConnId, &'r Member)> {
    // No valid nickname is longer or outside ASCII, so such a name
    // matches nobody.
    let mut folded = [0u8; MAX_NICK_LEN];
    let folded = folded.get_mut(..name.len())?;
    folded.copy_from_slice(name);
    folded.make_ascii_lowercase();
    if let Some(id) = last_found.get(folded) {
        // Still online: an id is never reused, so it is the same user.
        if let Some(member) = registry.member(id) {
            return Some((id, member));
        }
    }
    match registry.lookup(folded) {
        Lookup::Online(id, member) => {
            last_found.set(folded, id);
            Some((id, member))
        }
        Lookup::Unknown => None,
    }
}

/// The last name found, folded, and whom it found. A sender's run of
/// messages is often to one user: the name is then a short comparison and
/// a hash of the id away, rather than a walk of the ordered map of names.
/// An entry whose user has left is simply not found by id.
#[derive(Debug, Default)]
struct LastFound {
    name: [u8; MAX_NICK_LEN],
    len: usize,
    id: Option<ConnId>,
}

impl LastFound {
    fn get(&self, folded: &[u8]) -> Option<ConnId> {
        (self.name.get(..self.len) == Some(folded)).then_some(self.id)?
    }

    fn set(&mut self, folded: &[u8], id: ConnId) {
        if let Some(room) = self.name.get_mut(..folded.len()) {
            room.copy_from_slice(folded);
            self.len = folded.len();
            self.id = Some(id);
        }
    }
}

/// A sender's in-flight permit while its messages are routed. Dropped once
/// they are...
struct InFlight {
    whole: Option<OwnedSemaphorePermit>,
    /// ...unless a recipient is congested: then it is shared by every
    /// congested recipient, and released when the last of them has drained.
    shared: Option<Arc<OwnedSemaphorePermit>>,
}

impl InFlight {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        Self {
            whole: Some(permit),
            shared: None,
        }
    }

    /// Leaves the permit with a congested recipient, until it drains.
    fn park(&mut self, outbox: &Outbox) {
        if let Some(permit) = self.whole.take() {
            self.shared = Some(Arc::new(permit));
        }
        if let Some(shared) = &self.shared {
            outbox.hold(shared.clone());
        }
    }
}

/// The bookkeeping of one message's fan-out.
struct Delivery<'a, 'n> {
    permit: &'a mut InFlight,
    congested: &'a mut IdSet,
    /// Consumers to wake at the end of the batch.
    wakes: &'a mut Vec<Arc<Outbox>>,
    /// Recipients this message overflowed, to be removed once it is routed.
    cut: Vec<ConnId>,
    delivered: u32,
    /// The recipients of a broadcast it could not be queued for.
    failures: Vec<(Utf8<'n>, Code)>,
}

impl<'n> Delivery<'_, 'n> {
    /// Queues `frame` for the `named` recipients found, or for everyone
    /// online but the sender.
    fn fan_out(
        &mut self,
        from: ConnId,
        mut frame: Bytes,
        named: Option<&mut [Named<'_, '_>]>,
        registry: &'n Registry,
    ) {
        match named {
            Some(named) => {
                // The last recipient gets the frame itself: a `Bytes`
                // shared for the first time costs an allocation.
                let mut left = named.iter().filter(|named| named.found.is_some()).count();
                for recipient in named {
                    if let Some((id, member)) = recipient.found {
                        left -= 1;
                        let frame = if left == 0 {
                            std::mem::take(&mut frame)
                        } else {
                            frame.clone()
                        };
                        recipient.status = self.push(id, member, frame);
                    }
                }
            }
            None => {
                for (id, member) in registry.online() {
                    if id == from {
                        continue;
                    }
                    let status = self.push(id, member, frame.clone());
                    if status != Code::DELIVERED {
                        self.failures.push((member.nick.as_str().into(), status));
                    }
                }
            }
        }
    }

    fn push(&mut self, id: ConnId, member: &Member, frame: Bytes) -> Code {
        let queued = enqueue(id, &member.outbox, frame, self.wakes, self.congested);
        self.counted(id, member, queued)
    }

    /// Counts the outcome of queueing (or reserving room for) the message
    /// for `member`, and says what it was.
    fn counted(
        &mut self,
        id: ConnId,
        member: &Member,
        queued: Result<Pressure, PushError>,
    ) -> Code {
        match queued {
            Ok(pressure) => {
                self.delivered += 1;
                if pressure == Pressure::Congested {
                    self.permit.park(&member.outbox);
                }
                Code::DELIVERED
            }
            Err(error) => {
                if error == PushError::Overflow {
                    self.cut.push(id);
                }
                Code::UNABLE_TO_DELIVER
            }
        }
    }
}

/// The `MESSAGE`s of the command being handled that have a single
/// recipient, one buffer per recipient, queued when the command is done.
/// A busy sender's command carries a run of messages, often to the same
/// user; its frames then take one allocation and one queue slot, not one
/// each. Their room in each queue is reserved as they are written, so each
/// message's status is known at once, as for any other; while the queue is
/// well below its high-water mark, room for the rest of the run is set
/// aside with the first, so that the rest need not take the queue's lock.
///
/// Order is kept: nothing else is queued for anyone while messages are
/// gathered (a message for several users, or for everyone, flushes them
/// first), and they are queued before the command's replies.
#[derive(Debug, Default)]
struct Gathered {
    chunks: Vec<Chunk>,
    /// The room a new buffer starts with, and the most set aside in a queue
    /// for it.
    room: usize,
}

/// One recipient's messages in the command being handled.
#[derive(Debug)]
struct Chunk {
    id: ConnId,
    outbox: Arc<Outbox>,
    frames: BytesMut,
    /// Bytes set aside in the outbox and not yet used.
    ahead: usize,
}

impl Chunk {
    /// Reserves room in the queue for `len` more bytes, from what was set
    /// aside if it is enough, setting aside up to `ahead` more if not.
    fn reserve(&mut self, len: usize, ahead: usize) -> Result<Pressure, PushError> {
        if len <= self.ahead {
            self.ahead -= len;
            return Ok(Pressure::Normal);
        }
        let (reserved, set_aside) = self.outbox.reserve(len, ahead);
        self.ahead += set_aside;
        reserved
    }
}

/// Recipients gathered for at once, at most; one more flushes them.
const GATHER_RECIPIENTS: usize = 8;

impl Gathered {
    /// The buffer for `id`'s messages.
    fn chunk(
        &mut self,
        id: ConnId,
        outbox: &Arc<Outbox>,
        wakes: &mut Vec<Arc<Outbox>>,
    ) -> &mut Chunk {
        if let Some(at) = self.chunks.iter().position(|chunk| chunk.id == id) {
            return &mut self.chunks[at];
        }
        if self.chunks.len() == GATHER_RECIPIENTS {
            self.flush(wakes);
        }
        let at = self.chunks.len();
        self.chunks.push(Chunk {
            id,
            outbox: outbox.clone(),
            frames: BytesMut::with_capacity(self.room),
            ahead: 0,
        });
        &mut self.chunks[at]
    }

    /// Queues everything gathered, and gives back the room set aside and
    /// not used.
    fn flush(&mut self, wakes: &mut Vec<Arc<Outbox>>) {
        for chunk in self.chunks.drain(..) {
            let Chunk {
                id: _,
                outbox,
                frames,
                ahead,
            } = chunk;
            // A buffer made room for the whole run but given a few of its
            // messages is copied out rather than queued: a queued buffer
            // keeps all of its allocation until it is written, and a queue's
            // limits count only what it holds.
            let frames = if frames.capacity() > 2 * frames.len() {
                Bytes::copy_from_slice(&frames)
            } else {
                frames.freeze()
            };
            if outbox.push_reserved(frames, ahead) {
                wakes.push(outbox);
            }
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
