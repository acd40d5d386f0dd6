//! What every front end (binary or text) keeps about one peer, and the
//! handling of its requests, which is the same whatever they arrived as:
//! registration, messages and their in-flight budget, pings and deadlines,
//! and the goodbye when the connection ends for any reason.
//!
//! The front ends (`front/`) turn their transport's bytes into
//! [`Request`]s and hand them to a [`Connection`]; the connection's writer
//! (`writer.rs`, or the text front end's own) drains its outbox.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chinwag_protocol::{
    AccountRequest, ClientFrameOf, Code, ErrorFrame, Hello, Nick, PROTOCOL_VERSION, ReceiptKeyRun,
    SendPayload, ServerFrame, encode_frame,
};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::WaitForCancellationFutureOwned;
use tracing::{debug, info, warn};

use crate::admission::Ticket;
use crate::command::{AccountJob, Command};
use crate::flood::{TokenBucket, Verdict};
use crate::front::Front;
use crate::hub::InFlightBudget;
use crate::metrics::MeterGuard;
use crate::outbox::Outbox;
use crate::registry::ConnId;
use crate::{Hub, HubConfig, HubError};

/// A deadline that does not come (about 30 years).
const NEVER: Duration = Duration::from_secs(86_400 * 365 * 30);

/// A client's frame as the hub handles it: a `SEND` is read in place.
pub(crate) type Request = ClientFrameOf<SendPayload>;

/// Input that can give back memory once its peer has gone quiet.
pub(crate) trait Quiet {
    /// The peer has sent nothing for a ping interval.
    fn quiet(&mut self) {}

    /// When the peer's bytes last arrived, for an input that keeps track:
    /// then the connection need not read the clock for every frame.
    fn last_heard(&self) -> Option<Instant> {
        None
    }
}

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The peer closed its side.
    Eof,
    /// The peer said `QUIT`.
    Quit,
    /// The hub is shutting down.
    Shutdown,
    /// The peer broke the protocol; it gets this code and is closed.
    Fatal(Code),
    /// The socket failed.
    Io(io::Error),
    /// The writer stopped first: the hub closed the outbox (slow consumer),
    /// or writing failed.
    WriterDone(io::Result<()>),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Eof => f.write_str("closed by the peer"),
            Self::Quit => f.write_str("quit"),
            Self::Shutdown => f.write_str("hub shutting down"),
            Self::Fatal(code) => write!(f, "{code}"),
            Self::Io(error) => write!(f, "read failed: {error}"),
            Self::WriterDone(Ok(())) => f.write_str("cut by the hub"),
            Self::WriterDone(Err(error)) => write!(f, "write failed: {error}"),
        }
    }
}

/// Where a connection stands with registration. (Accounts will add states
/// between the first and the last: authenticating, throttled.)
#[derive(Debug)]
pub(crate) enum Registration {
    /// Waiting for `HELLO`.
    Unregistered,
    /// `HELLO` is with the actor, which has not answered yet.
    Joining,
    /// Registered as this nickname.
    Registered(Nick),
}

impl Registration {
    /// The nickname, once registered.
    pub(crate) fn nick(&self) -> Option<&Nick> {
        match self {
            Self::Registered(nick) => Some(nick),
            Self::Unregistered | Self::Joining => None,
        }
    }

    pub(crate) fn is_registered(&self) -> bool {
        matches!(self, Self::Registered(_))
    }
}

/// What every front end (binary or text) keeps about one peer, and the
/// handling of its requests, which is the same whatever they arrived as.
pub(crate) struct Connection {
    pub(crate) hub: Hub,
    pub(crate) id: ConnId,
    pub(crate) outbox: Arc<Outbox>,
    /// In-flight bytes of this connection's messages (see `HubConfig::max_in_flight_bytes`).
    pub(crate) permits: Arc<Semaphore>,
    /// The whole of that budget, fixed when the connection began.
    pub(crate) budget: InFlightBudget,
    /// The hub's configuration as this connection last took it, and the
    /// reconfiguration it came from: a newer one is taken at the next
    /// frame (`refresh`).
    pub(crate) config: Arc<HubConfig>,
    generation: u64,
    pub(crate) registration: Registration,
    /// Its place under the limit of unregistered connections, then, from
    /// `Joining` on, under the limit of registered ones (the unregistered
    /// place goes to the actor with the `Join`, and comes back with a
    /// refusal).
    slot: OwnedSemaphorePermit,
    /// Its place under its source address's limits.
    ticket: Ticket,
    /// Flood control, when the hub has it turned on.
    pub(crate) bucket: Option<TokenBucket>,
    /// Pings sent and not answered since the client was last heard from.
    missed_pings: u32,
    /// When the client last sent a frame (unless its input keeps that
    /// itself: see [`Quiet::last_heard`]), or was last pinged.
    heard: Instant,
    /// The registration deadline, then the next liveness check.
    timer: Pin<Box<Sleep>>,
    /// Resolves when the hub begins to shut down.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Its place in the table of meters (`/connz`), left when it ends.
    pub(crate) meter: MeterGuard,
}

impl Connection {
    /// A new connection, holding `slot` under the limit of unregistered ones.
    /// `peer` and `front` say where it came from and what it speaks, for
    /// `/connz`.
    pub(crate) fn new(
        hub: Hub,
        slot: OwnedSemaphorePermit,
        mut ticket: Ticket,
        (peer, front): (String, Front),
    ) -> Self {
        let generation = hub.shared.generation.load(Ordering::Acquire);
        let config = hub.config();
        let outbox = Hub::new_outbox(&config);
        let budget = InFlightBudget::of(&config);
        let id = hub.next_conn_id();
        let meter = (hub.shared.meters).enlist(id, peer, front, outbox.clone());
        // Shedding closes the outbox with `SERVER_FULL`: its writer says so
        // and the connection ends.
        ticket.enlist(&outbox);
        Self {
            permits: budget.semaphore(),
            budget,
            bucket: config.rate_limit.map(TokenBucket::new),
            outbox,
            id,
            meter,
            registration: Registration::Unregistered,
            slot,
            ticket,
            missed_pings: 0,
            heard: Instant::now(),
            timer: Box::pin(tokio::time::sleep(config.registration_timeout)),
            shutdown: Box::pin(hub.shared.shutdown.clone().cancelled_owned()),
            config,
            generation,
            hub,
        }
    }

    /// The nickname, once registered.
    pub(crate) fn nick(&self) -> Option<&Nick> {
        self.registration.nick()
    }

    /// Takes the hub's configuration again if it was reconfigured since
    /// this connection last looked: one load of a word that changes only
    /// on a reconfiguration, per frame. Flood control starts afresh under
    /// the new rate limit; deadlines and pings follow the new values from
    /// their next use. (What is fixed when a connection begins, such as its
    /// outbox's limits, stays: `reconfigure.rs`.)
    fn refresh(&mut self) {
        let generation = self.hub.shared.generation.load(Ordering::Acquire);
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let config = self.hub.config();
        if config.rate_limit != self.config.rate_limit {
            self.bucket = config.rate_limit.map(TokenBucket::new);
        }
        self.config = config;
    }

    /// Ends a connection whose reader or writer has stopped: says goodbye to
    /// the actor, closes the outbox the way `outcome` calls for, and lets the
    /// writer flush what is left.
    pub(crate) async fn finish<F>(&mut self, outcome: &Outcome, writer: std::pin::Pin<&mut F>)
    where
        F: Future<Output = io::Result<()>>,
    {
        let counters = &self.hub.shared.counters;
        match outcome {
            Outcome::Io(error) => debug!(%error, "read failed"),
            Outcome::Fatal(code) => {
                if let Some(held) = counters.gate.pass() {
                    warn!(%code, lines_held_back = held, "closing the connection");
                }
                counters.record(*code);
            }
            Outcome::WriterDone(result) => {
                if let Err(error) = result {
                    debug!(%error, "write failed");
                }
            }
            Outcome::Eof | Outcome::Quit | Outcome::Shutdown => {}
        }
        if let Some(nick) = self.nick()
            && let Some(held) = counters.notices.pass()
        {
            // The hub's own reason, if it cut the connection.
            let reason =
                (self.outbox.reason()).map_or_else(|| outcome.to_string(), |code| code.to_string());
            info!(%nick, %reason, lines_held_back = held, "disconnected");
        }
        if self.outbox.reason() == Some(Code::SLOW_CONSUMER) {
            warn!("disconnected as a slow consumer");
            counters.record_slow_consumer(self.nick().map(Nick::as_str));
        }

        // Say goodbye first, so that nothing more is routed here. Always,
        // before registration completes: if the reader was dropped while its
        // `Join` was in flight, the actor may have registered us anyway, and
        // a `Leave` for an id it does not know is a no-op.
        if let Outcome::Shutdown = outcome {
            // The actor drains its queue and closes our outbox itself.
            self.hub.shared.actor_done.cancelled().await;
        } else {
            let (done, routed) = oneshot::channel();
            let leave = Command::Leave {
                id: self.id,
                done: Some(done),
            };
            if self.hub.command(leave).await.is_ok() {
                let _ = routed.await;
            }
        }
        match outcome {
            // The writer has stopped: nothing more can be written.
            Outcome::WriterDone(_) => return,
            Outcome::Eof | Outcome::Quit => self.outbox.close(None, true),
            Outcome::Shutdown => self.outbox.close(Some(Code::SHUTTING_DOWN), true),
            Outcome::Fatal(code) => self.outbox.close(Some(*code), true),
            Outcome::Io(_) => self.outbox.close(None, false),
        }
        if let Err(error) = writer.await {
            debug!(%error, "final write failed");
        }
    }

    /// The next item from `input`, unless shutdown begins or (before
    /// registration) the registration deadline passes first.
    ///
    /// With `pings` (binary clients), a registered client that stays silent
    /// is sent `PING`s every `ping_interval`, and closed once
    /// `max_missed_pings` of them in a row went unanswered. Anything the
    /// client sends counts as an answer.
    ///
    /// One timer serves both deadlines and is not touched per frame: when it
    /// fires, it checks when the peer was last heard from and re-arms.
    pub(crate) async fn next_input<S: futures::Stream + Quiet + Unpin>(
        &mut self,
        input: &mut S,
        pings: bool,
    ) -> Result<Option<S::Item>, Outcome> {
        loop {
            let interval = self.config.ping_interval;
            let max_missed = self.config.max_missed_pings;
            tokio::select! {
                biased;
                () = self.shutdown.as_mut() => return Err(Outcome::Shutdown),
                next = input.next() => {
                    self.refresh();
                    if !self.registration.is_registered() {
                        self.ticket.progressed();
                    }
                    if input.last_heard().is_none() {
                        self.heard = Instant::now();
                    }
                    self.missed_pings = 0;
                    return Ok(next);
                }
                () = self.timer.as_mut() => {
                    if !self.registration.is_registered() {
                        debug!("no HELLO before the registration deadline");
                        return Err(Outcome::Fatal(Code::REGISTRATION_TIMEOUT));
                    }
                    let now = Instant::now();
                    if !pings {
                        self.timer.as_mut().reset(now + NEVER);
                        continue;
                    }
                    // Since the last frame or ping, whichever is later.
                    let heard = input.last_heard().map_or(self.heard, |read| read.max(self.heard));
                    let due = heard + interval;
                    if due > now {
                        self.timer.as_mut().reset(due);
                        continue;
                    }
                    input.quiet();
                    if self.missed_pings >= max_missed {
                        debug!(missed = self.missed_pings, "peer stopped answering pings");
                        return Err(Outcome::Fatal(Code::PING_TIMEOUT));
                    }
                    self.missed_pings += 1;
                    self.reply_frame(&ServerFrame::Ping(u64::from(self.missed_pings)));
                    self.heard = now;
                    self.timer.as_mut().reset(now + interval);
                }
            }
        }
    }

    /// This connection's in-flight permit for `send`. It waits while earlier
    /// messages of ours sit parked on congested recipients' queues; usually
    /// a permit is free: no waiting, no timer.
    pub(crate) async fn in_flight(
        &mut self,
        send: &SendPayload,
    ) -> Result<OwnedSemaphorePermit, Option<Outcome>> {
        self.permits_for(self.budget.cost(send)).await
    }

    /// `cost` in-flight permits, waiting for them if need be.
    pub(crate) async fn permits_for(
        &mut self,
        cost: u32,
    ) -> Result<OwnedSemaphorePermit, Option<Outcome>> {
        if let Ok(permit) = self.permits.clone().try_acquire_many_owned(cost) {
            return Ok(permit);
        }
        tokio::select! {
            biased;
            () = self.shutdown.as_mut() => Err(Some(Outcome::Shutdown)),
            permit = self.permits.clone().acquire_many_owned(cost) => permit.map_err(|_| None),
        }
    }

    /// Acts on one frame; `Some` ends the connection.
    pub(crate) async fn handle(&mut self, frame: Request) -> Option<Outcome> {
        match frame {
            // Boxed, as is everything rare that awaits: a future's state
            // is as large as its largest await, and this one lives in every
            // connection's task for the connection's whole life.
            Request::Hello(hello) => return Box::pin(self.register(hello)).await,
            Request::Send(send) => {
                if !self.registration.is_registered() {
                    self.reply(ErrorFrame::new(Code::NOT_REGISTERED, send.id()));
                    return None;
                }
                if let Err(outcome) = self.flood_control(send.id()) {
                    return outcome;
                }
                let permit = match self.in_flight(&send).await {
                    Ok(permit) => permit,
                    Err(outcome) => return outcome,
                };
                let command = Command::Send {
                    id: self.id,
                    send,
                    permit,
                    arrived: Instant::now(),
                };
                if self.hub.try_command(command).await.is_err() {
                    return Some(Outcome::Shutdown);
                }
            }
            Request::Who => {
                if !self.registration.is_registered() {
                    self.reply(ErrorFrame::new(Code::NOT_REGISTERED, 0));
                } else if let Err(outcome) = self.flood_control(0) {
                    return outcome;
                } else if Box::pin(self.hub.command(Command::Who { id: self.id }))
                    .await
                    .is_err()
                {
                    return Some(Outcome::Shutdown);
                }
            }
            Request::Quit => return Some(Outcome::Quit),
            Request::Ping(token) => {
                if let Err(outcome) = self.flood_control(0) {
                    return outcome;
                }
                self.reply_frame(&ServerFrame::Pong(token));
            }
            Request::Pong(_) => {}
            Request::Account(request) => return Box::pin(self.account(request)).await,
            Request::Confirm(ids) => {
                if self.registration.is_registered()
                    && !ids.is_empty()
                    && Box::pin(self.hub.command(Command::Confirm { id: self.id, ids }))
                        .await
                        .is_err()
                {
                    return Some(Outcome::Shutdown);
                }
            }
            Request::ConfirmReceipts(keys) => {
                let runs = keys.into_iter().map(ReceiptKeyRun::of).collect();
                return self.confirm_receipts(runs).await;
            }
            Request::ConfirmReceiptRuns(runs) => return self.confirm_receipts(runs).await,
        }
        None
    }

    /// Hands receipts a registered client confirmed (runs of them) to the
    /// actor; `Some` ends the connection (the hub is shutting down).
    async fn confirm_receipts(&mut self, runs: Vec<ReceiptKeyRun>) -> Option<Outcome> {
        if !self.registration.is_registered() || runs.is_empty() {
            return None;
        }
        let command = Command::ConfirmReceipts { id: self.id, runs };
        if Box::pin(self.hub.command(command)).await.is_err() {
            return Some(Outcome::Shutdown);
        }
        None
    }

    /// Flood control for one request (`reference` is a `SEND`'s id, 0 for
    /// others), when the hub has it on: a request over the rate is refused
    /// with `RATE_LIMITED` (`Err(None)`), a flood past its grace ends the
    /// connection (`Err(Some(FLOODING))`).
    fn flood_control(&mut self, reference: u64) -> Result<(), Option<Outcome>> {
        let Some(bucket) = &mut self.bucket else {
            return Ok(());
        };
        match bucket.take(Instant::now()) {
            Verdict::Pass => Ok(()),
            Verdict::Refuse => {
                self.hub.shared.counters.record(Code::RATE_LIMITED);
                debug!(reference, "rate limited");
                self.reply(ErrorFrame::new(Code::RATE_LIMITED, reference));
                Err(None)
            }
            Verdict::Disconnect => Err(Some(Outcome::Fatal(Code::FLOODING))),
        }
    }

    /// Carries out an `ACCOUNT` request and queues its answer; `Some` ends
    /// the connection. Nothing more is read meanwhile: a connection has at
    /// most one password being checked.
    async fn account(&mut self, request: AccountRequest) -> Option<Outcome> {
        if let Err(outcome) = self.flood_control(u64::from(request.action.to_u8())) {
            return outcome;
        }
        let (reply, answer) = oneshot::channel();
        let job = AccountJob {
            id: self.id,
            address: self.ticket.address(),
            request,
            reply,
        };
        if self.hub.command(Command::Account(job)).await.is_err() {
            return Some(Outcome::Shutdown);
        }
        match answer.await {
            Ok(frame) => {
                if let ServerFrame::Error(error) = &frame {
                    self.notice(error.code, "account request refused");
                }
                self.reply_frame(&frame);
                None
            }
            Err(_) => Some(Outcome::Shutdown),
        }
    }

    /// Registers the nickname a `HELLO` asks for; `Some` ends the connection.
    async fn register(&mut self, hello: Hello) -> Option<Outcome> {
        if !matches!(self.registration, Registration::Unregistered) {
            self.reply(ErrorFrame::new(Code::ALREADY_REGISTERED, 0));
            return None;
        }
        if hello.version != PROTOCOL_VERSION {
            debug!(version = hello.version, "unsupported protocol version");
            return Some(Outcome::Fatal(Code::UNSUPPORTED_VERSION));
        }
        let nick = match Nick::parse(&hello.nick) {
            Ok(nick) => nick,
            Err(error) => {
                self.notice(error.code(), "nickname refused");
                self.reply(ErrorFrame {
                    code: error.code(),
                    reference: 0,
                    message: error.to_string(),
                });
                return None;
            }
        };
        if let Err(refusal) = self.ticket.may_register() {
            self.hub.shared.counters.record_refusal(refusal);
            return Some(Outcome::Fatal(Code::SERVER_FULL));
        }
        // Move from the unregistered pool to the registered one. The actor
        // lets go of the unregistered place as it registers the nickname
        // (before the WELCOME), or hands it back with a refusal.
        let Ok(registered) = self.hub.shared.connections.clone().try_acquire_owned() else {
            return Some(Outcome::Fatal(Code::SERVER_FULL));
        };
        let unregistered = std::mem::replace(&mut self.slot, registered);
        self.registration = Registration::Joining;
        let joined = self.hub.join(
            self.id,
            nick.clone(),
            self.outbox.clone(),
            hello.options,
            Some(unregistered),
            (hello.password, self.ticket.address()),
        );
        match joined.await {
            Ok(()) => {
                tracing::Span::current().record("nick", nick.as_str());
                info!("registered");
                self.meter.meter.registered(nick.as_str());
                self.registration = Registration::Registered(nick);
                // Registered: no longer a candidate for shedding.
                self.ticket.registered();
                // Liveness is counted from registration: the first `PING`
                // to a client that stays silent comes one ping interval
                // after its `WELCOME`, however long registration may take.
                let interval = self.config.ping_interval;
                self.heard = Instant::now();
                self.timer.as_mut().reset(self.heard + interval);
            }
            Err((HubError::Refused(code), unregistered)) => {
                if let Some(unregistered) = unregistered {
                    // Back to the unregistered pool; the registered place goes.
                    self.slot = unregistered;
                }
                self.registration = Registration::Unregistered;
                self.notice(code, "registration refused");
                self.reply(ErrorFrame::new(code, 0));
            }
            Err((HubError::Closed, _)) => return Some(Outcome::Shutdown),
        }
        None
    }

    /// An `info` line for the operator (the span names the peer's address),
    /// at most one a second, saying how many were held back.
    fn notice(&self, code: Code, what: &str) {
        if let Some(held) = self.hub.shared.counters.notices.pass() {
            info!(%code, lines_held_back = held, "{what}");
        }
    }

    pub(crate) fn reply(&self, error: ErrorFrame) {
        self.reply_frame(&ServerFrame::Error(error));
    }

    /// Queues a frame for this connection only. A reply that does not fit is
    /// the same as any other frame that does not: this connection is cut.
    fn reply_frame(&self, frame: &ServerFrame) {
        if let Ok(bytes) = encode_frame(frame, usize::MAX) {
            let _ = self.outbox.push(bytes);
        }
    }
}
