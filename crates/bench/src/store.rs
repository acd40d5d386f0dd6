//! `store`: S guest senders share out M messages of B bytes and send them
//! to R registered recipients who are offline (`bench-store-0..R`), so that
//! the hub stores every one in a mailbox, and each `ACK` says `STORED` only
//! once the commit holding the message has returned (fsync'd).
//!
//! Sender `s`'s message `q` goes to recipient `(q × S + s) mod R`: the
//! messages are dealt round the recipients, so each mailbox gets M / R of
//! them. A mailbox holds 10,000 by default (the hub's
//! `--mailbox-max-messages`); by default R is one per 5,000 messages, so a
//! run fits with room for an earlier run's leftovers.
//!
//! Each sender is pipelined: it keeps up to W messages in flight (written,
//! their `ACK` not yet back), writing more as acks come back, all the
//! writes of one turn in one system call. The figures are stored messages
//! per second (acks saying `STORED`, over the time from the start signal to
//! the last of them) and the latency of each: from encoding its `SEND` to
//! reading its `ACK`, in the report's `latency`. Every ack is checked: an
//! ack that is not `STORED` (`MAILBOX_FULL`, `STORE_FAILED`, or a live
//! delivery because a recipient was online) fails the run and is counted.
//!
//! Setup creates the recipients' accounts over the wire (`ACCOUNT`, with
//! the password [`PASSWORD`](crate::mailbox::PASSWORD); one left by an
//! earlier run is used as it is) and never logs in to them during the run,
//! so they stay offline; then each sender sends one warm-up message and
//! waits for its ack, and all start together. After the run, unless
//! `--keep`, the bench empties the mailboxes as their owners would (log in,
//! read, `CONFIRM`), so that runs can be repeated on one data directory,
//! and checks on the way that every message acked `STORED` was there, once,
//! in the right mailbox (`mailbox.rs`). Draining is not measured.
//!
//! JSON figures: `senders`, `recipients`, `messages`, `size`, `window`,
//! `accounts_created`, `accounts_existing`, `sent`, `acks`, `stored`,
//! `mailbox_full`, `store_failed`, `other_status`, `out_of_order`,
//! `hub_errors`, `connections_cut`, `connect_s`, `all_ready`, `elapsed_s`,
//! `stored_per_s`, and for the drain (`null` with `--keep`) `drain_s`,
//! `confirmed`, `drained_this_run`, `leftovers`, `missing`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use chinwag_protocol::{ClientFrame, Code, ErrorFrame, ProtocolError, Recipients, ServerFrame};
use clap::Args;
use futures::{FutureExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::cast::float;
use crate::clock::{Clock, span_s};
use crate::codec::Inbound;
use crate::conn::{self, Frames, Registered, STREAM_READ_BUFFER};
use crate::context::{Ctx, MAX_LATENCY_NS};
use crate::error::SetupError;
use crate::mailbox::{self, Drained, Ledger};
use crate::payload::{Kind, WARMUP_ID};
use crate::procstat::{CpuUse, CpuWindow};
use crate::report::{self, Figures, Report};
use crate::sender::Sender;

/// Messages per recipient when `--recipients` is not given: half a
/// mailbox's default quota of 10,000.
const PER_RECIPIENT: u64 = 5_000;

/// A sender that has messages in flight and hears nothing for this long
/// gives up (a commit takes milliseconds).
const ACK_IDLE: Duration = Duration::from_secs(10);

/// Senders registering at once.
const CONNECT_CONCURRENCY: usize = 64;

/// `chinwag bench store`.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// Guest connections that send.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    senders: u32,
    /// Messages in all, shared out evenly among the senders.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Bytes of text per message (at least the 33-byte header).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Offline recipients (accounts `bench-store-0..`), the messages dealt
    /// round them [default: one per 5,000 messages].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    recipients: Option<u32>,
    /// Messages each sender keeps in flight: written, their ack not yet
    /// back. Senders × window should stay below the hub's store queue
    /// (4,096 requests), or the surplus is refused as `STORE_FAILED`.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    window: u64,
    /// Leave the messages in the mailboxes instead of logging in to each
    /// recipient afterwards and confirming them (the next run then needs a
    /// fresh --data-dir, or room in the mailboxes).
    #[arg(long)]
    keep: bool,
}

/// What `store` measured.
#[derive(Debug, Serialize)]
pub(crate) struct StoreRun {
    senders: u32,
    recipients: u32,
    messages: u64,
    size: usize,
    window: u64,
    accounts_created: u32,
    accounts_existing: u32,
    sent: u64,
    acks: u64,
    stored: u64,
    mailbox_full: u64,
    store_failed: u64,
    other_status: u64,
    out_of_order: u64,
    hub_errors: u64,
    connections_cut: u64,
    connect_s: f64,
    all_ready: bool,
    elapsed_s: Option<f64>,
    stored_per_s: Option<f64>,
    drain_s: Option<f64>,
    confirmed: Option<u64>,
    drained_this_run: Option<u64>,
    leftovers: Option<u64>,
    missing: Option<u64>,
}

impl Figures for StoreRun {
    fn title(&self) -> String {
        format!(
            "store: {} senders, {} messages of {} bytes to {} offline recipients, {} in flight per sender (latency: SEND to its STORED ack)",
            self.senders,
            report::count(self.messages),
            self.size,
            self.recipients,
            self.window,
        )
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let drain = match (self.drain_s, self.confirmed) {
            (Some(secs), Some(confirmed)) => format!(
                "{} confirmed in {secs:.2} s: this run's {}, leftovers {}, missing {}",
                report::count(confirmed),
                report::count(self.drained_this_run.unwrap_or(0)),
                report::count(self.leftovers.unwrap_or(0)),
                self.missing.unwrap_or(0),
            ),
            _ => "skipped (--keep): the mailboxes hold this run's messages".to_owned(),
        };
        vec![
            (
                "stored",
                format!(
                    "{} messages/s ({} in {})",
                    self.stored_per_s
                        .map_or_else(|| "-".to_owned(), report::rate),
                    report::count(self.stored),
                    self.elapsed_s
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:.3} s")),
                ),
            ),
            (
                "acks",
                format!(
                    "{} of {}: stored {}, mailbox full {}, store failed {}, other {}, out of order {}",
                    report::count(self.acks),
                    report::count(self.sent),
                    report::count(self.stored),
                    self.mailbox_full,
                    self.store_failed,
                    self.other_status,
                    self.out_of_order,
                ),
            ),
            (
                "hub errors",
                format!(
                    "{}, connections cut {}",
                    self.hub_errors, self.connections_cut
                ),
            ),
            (
                "recipients",
                format!(
                    "{} accounts ({} created, {} there already)",
                    self.recipients, self.accounts_created, self.accounts_existing
                ),
            ),
            (
                "connect",
                format!("{} senders in {:.2} s", self.senders, self.connect_s),
            ),
            ("drain", drain),
        ]
    }
}

/// Runs `store`: `Err` only when it cannot start or go on; failed checks
/// are in the report.
pub(crate) async fn run(ctx: &Ctx, args: &StoreArgs) -> Result<Report<StoreRun>, SetupError> {
    let senders = args.senders;
    let recipients = args.recipients.unwrap_or_else(|| {
        u32::try_from(args.messages.div_ceil(PER_RECIPIENT).max(1)).unwrap_or(u32::MAX)
    });
    let created = mailbox::create_accounts(ctx, recipients).await?;
    // Every recipient, as a `SEND`'s `to`, built once.
    let targets: Vec<Recipients> = (0..recipients)
        .map(|i| Recipients::Users(vec![mailbox::recipient(i)]))
        .collect();
    let per_sender: Vec<u64> = (0..u64::from(senders))
        .map(|s| {
            args.messages / u64::from(senders) + u64::from(s < args.messages % u64::from(senders))
        })
        .collect();

    let started = Instant::now();
    let connections = connect(ctx, senders, args.size).await?;
    let connect_s = started.elapsed().as_secs_f64();

    let tasks = spawn_senders(ctx, args, connections, &targets, &per_sender)?;
    let (tallies, all_ready, cpu, t0) = measure(ctx, args.messages, tasks).await?;
    let mut failures = Vec::new();
    if !all_ready {
        failures.push(format!(
            "not every one of the {senders} senders had its warm-up message acked in time"
        ));
    }
    let mut ledger = Ledger::new(senders, recipients, per_sender);
    let mut total = Tally::new(0, 0)?;
    for tally in &tallies {
        total.add(tally, &mut ledger);
    }
    {
        let mut latencies = ctx
            .latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Same bounds and precision: adding cannot fail.
        let _ = latencies.add(&total.latencies);
    }
    failures.extend(total.failures(args.messages));

    let elapsed_s = span_s(t0, total.last_stored_ns);
    let mut figures = StoreRun {
        senders,
        recipients,
        messages: args.messages,
        size: args.size,
        window: args.window,
        accounts_created: created.created,
        accounts_existing: created.existing,
        sent: total.sent,
        acks: total.acks,
        stored: total.stored,
        mailbox_full: total.mailbox_full,
        store_failed: total.store_failed,
        other_status: total.other_status,
        out_of_order: total.out_of_order,
        hub_errors: total.hub_errors,
        connections_cut: total.cut,
        connect_s,
        all_ready,
        elapsed_s,
        stored_per_s: elapsed_s.map(|s| float(total.stored) / s),
        drain_s: None,
        confirmed: None,
        drained_this_run: None,
        leftovers: None,
        missing: None,
    };
    if !args.keep {
        let draining = Instant::now();
        let drained = mailbox::drain(ctx, recipients, args.size, total.first_id, &mut ledger).await;
        figures.drain_s = Some(draining.elapsed().as_secs_f64());
        failures.extend(drain_failures(&drained));
        figures.confirmed = Some(drained.confirmed);
        figures.drained_this_run = Some(drained.this_run);
        figures.leftovers = Some(drained.leftovers);
        figures.missing = Some(drained.missing);
    }
    Ok(ctx.report("store", figures, None, failures, cpu))
}

/// The senders' tasks, how many have had their warm-up message acked, the
/// start signal, and the answers to data messages so far (all senders).
type Senders = (
    Vec<JoinHandle<Tally>>,
    Arc<AtomicU32>,
    watch::Sender<bool>,
    Arc<AtomicU64>,
);

/// Starts a task for each sender, which warms up and waits for the start.
fn spawn_senders(
    ctx: &Ctx,
    args: &StoreArgs,
    connections: Vec<Registered>,
    targets: &[Recipients],
    per_sender: &[u64],
) -> Result<Senders, SetupError> {
    let (senders, recipients) = (args.senders, targets.len() as u32);
    let (go, start) = watch::channel(false);
    let ready = Arc::new(AtomicU32::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(connections.len());
    for ((index, registered), &messages) in (0..).zip(connections).zip(per_sender) {
        let Registered {
            frames,
            write,
            max_frame,
        } = registered;
        let own = targets[mailbox::recipient_of(senders, recipients, index, 0) as usize].clone();
        let sender = Sender::on(write, max_frame, index, own, args.size, ctx.clock)?;
        let task = Task {
            index,
            sender,
            frames,
            targets: targets.to_vec(),
            senders,
            recipients,
            messages,
            window: args.window,
            clock: ctx.clock,
            deadline: ctx.deadline,
            acked: Arc::clone(&acked),
            tally: Tally::new(index, messages)?,
        };
        tasks.push(tokio::spawn(task.run(start.clone(), Arc::clone(&ready))));
    }
    Ok((tasks, ready, go, acked))
}

/// Waits for every sender to warm up, starts them all, and waits for them
/// to finish: their tallies, whether all were ready, the CPU used, and
/// when they started.
async fn measure(
    ctx: &Ctx,
    messages: u64,
    (tasks, ready, go, acked): Senders,
) -> Result<(Vec<Tally>, bool, CpuUse, u64), SetupError> {
    let ready_until = ctx.ready_until();
    while (ready.load(Relaxed) as usize) < tasks.len()
        && Instant::now() < ready_until
        && !tasks.iter().any(JoinHandle::is_finished)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_ready = ready.load(Relaxed) as usize == tasks.len();
    let cpu = CpuWindow::start(ctx.server_pid);
    let t0 = ctx.clock.now_ns();
    let _ = go.send(true);
    let mut bar = ctx.bar(messages, "stored");
    while !tasks.iter().all(JoinHandle::is_finished) {
        bar.set(acked.load(Relaxed));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = cpu.end();
    let mut tallies = Vec::with_capacity(tasks.len());
    for joined in futures::future::join_all(tasks).await {
        tallies.push(joined.map_err(|error| SetupError::Task(error.to_string()))?);
    }
    Ok((tallies, all_ready, cpu, t0))
}

/// The drain's problems as the report's failures.
fn drain_failures(drained: &Drained) -> Vec<String> {
    let mut failures: Vec<String> = drained
        .problems
        .iter()
        .map(|problem| format!("drain: {problem}"))
        .collect();
    if drained.more_problems > 0 {
        failures.push(format!(
            "drain: {} more problems not listed",
            drained.more_problems
        ));
    }
    failures
}

/// Registers the senders (`bench-sender-0..`), a few at a time, in order.
async fn connect(ctx: &Ctx, senders: u32, size: usize) -> Result<Vec<Registered>, SetupError> {
    let admission = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for index in 0..senders {
        let admission = Arc::clone(&admission);
        let ctx = ctx.clone();
        tasks.spawn(async move {
            // The semaphore is never closed.
            let _permit = admission.acquire_owned().await.ok();
            let nick = format!("bench-sender-{index}");
            let registered =
                conn::register(&ctx, &nick, None, STREAM_READ_BUFFER, size, false, 0, None).await?;
            Ok::<_, SetupError>((index, registered))
        });
    }
    let mut bar = ctx.bar(senders.into(), "connecting");
    let mut slots: Vec<Option<Registered>> = (0..senders).map(|_| None).collect();
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (index, registered) = joined.map_err(|error| SetupError::Task(error.to_string()))??;
        slots[index as usize] = Some(registered);
        done += 1;
        bar.set(done);
    }
    Ok(slots.into_iter().flatten().collect())
}

/// What one sender saw, and (summed) the whole run.
#[derive(Debug)]
struct Tally {
    /// Data messages written.
    sent: u64,
    /// Answers to data messages: `ACK`s, and `ERROR`s about one.
    acks: u64,
    stored: u64,
    mailbox_full: u64,
    store_failed: u64,
    /// Answers that are neither `STORED` nor a store's failure: a live
    /// delivery, `NO_SUCH_USER`, an `ERROR` about the message.
    other_status: u64,
    out_of_order: u64,
    hub_errors: u64,
    /// Connections that ended early (summed), or this one's (0 or 1).
    cut: u64,
    /// The lowest hub message id acknowledged: the run's messages have ids
    /// from here on, an earlier run's are below.
    first_id: u64,
    /// [`Clock::now_ns`] of the last `STORED` ack.
    last_stored_ns: u64,
    /// Sequence numbers acked `STORED`, for the drain's check; the sender's
    /// index with them.
    stored_seqs: Vec<u64>,
    index: u32,
    /// The first thing that went wrong.
    problem: Option<String>,
    latencies: Histogram<u64>,
}

impl Tally {
    /// A sender's tally, with room for `messages` stored (0 for the run's
    /// sum, which keeps none).
    fn new(index: u32, messages: u64) -> Result<Self, SetupError> {
        Ok(Self {
            sent: 0,
            acks: 0,
            stored: 0,
            mailbox_full: 0,
            store_failed: 0,
            other_status: 0,
            out_of_order: 0,
            hub_errors: 0,
            cut: 0,
            first_id: u64::MAX,
            last_stored_ns: 0,
            stored_seqs: Vec::with_capacity(usize::try_from(messages).unwrap_or(0)),
            index,
            problem: None,
            latencies: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .map_err(|error| SetupError::Task(error.to_string()))?,
        })
    }

    fn note(&mut self, problem: impl FnOnce() -> String) {
        if self.problem.is_none() {
            self.problem = Some(problem());
        }
    }

    /// Adds one sender's tally to the run's, and its stored messages to
    /// the ledger.
    fn add(&mut self, one: &Self, ledger: &mut Ledger) {
        self.sent += one.sent;
        self.acks += one.acks;
        self.stored += one.stored;
        self.mailbox_full += one.mailbox_full;
        self.store_failed += one.store_failed;
        self.other_status += one.other_status;
        self.out_of_order += one.out_of_order;
        self.hub_errors += one.hub_errors;
        self.cut += one.cut;
        self.first_id = self.first_id.min(one.first_id);
        self.last_stored_ns = self.last_stored_ns.max(one.last_stored_ns);
        for &seq in &one.stored_seqs {
            ledger.mark_stored(one.index, seq);
        }
        if self.problem.is_none() {
            self.problem.clone_from(&one.problem);
        }
        // Same bounds and precision: adding cannot fail.
        let _ = self.latencies.add(&one.latencies);
    }

    /// The run's failures, one sentence each, then the first specific one.
    fn failures(&self, messages: u64) -> Vec<String> {
        let mut failures = Vec::new();
        let mut fail = |count: u64, what: String| {
            if count > 0 {
                failures.push(what);
            }
        };
        fail(
            messages.saturating_sub(self.sent),
            format!(
                "{} of {messages} messages not sent",
                messages.saturating_sub(self.sent)
            ),
        );
        fail(
            self.sent.saturating_sub(self.acks),
            format!(
                "{} of {} acks missing",
                self.sent.saturating_sub(self.acks),
                self.sent
            ),
        );
        fail(
            self.mailbox_full,
            format!(
                "{} MAILBOX_FULL (more --recipients, a fresh --data-dir, or a larger chinwagd --mailbox-max-messages)",
                self.mailbox_full
            ),
        );
        fail(
            self.store_failed,
            format!("{} STORE_FAILED", self.store_failed),
        );
        fail(
            self.other_status,
            format!(
                "{} acks neither STORED nor a store failure",
                self.other_status
            ),
        );
        fail(
            self.out_of_order,
            format!("{} acks out of order", self.out_of_order),
        );
        fail(
            self.hub_errors,
            format!("{} error frames from the hub", self.hub_errors),
        );
        fail(self.cut, format!("{} connections ended early", self.cut));
        failures.extend(self.problem.iter().map(|p| format!("first: {p}")));
        failures
    }
}

/// One sender: its connection, both halves, and what it counts.
struct Task {
    index: u32,
    sender: Sender,
    frames: Frames,
    /// Every recipient, as a `SEND`'s `to`, by index.
    targets: Vec<Recipients>,
    senders: u32,
    recipients: u32,
    /// Data messages to send.
    messages: u64,
    window: u64,
    clock: Clock,
    deadline: Instant,
    /// Answers to data messages over every sender, for the progress bar.
    acked: Arc<AtomicU64>,
    tally: Tally,
}

/// Why a sender stopped reading.
type Stop = String;

impl Task {
    /// Warms up (one message, its ack awaited), says it is ready, waits
    /// for the start, then sends its messages keeping `window` in flight.
    async fn run(mut self, mut start: watch::Receiver<bool>, ready: Arc<AtomicU32>) -> Tally {
        let nick = format!("bench-sender-{}", self.index);
        if let Err(stop) = self.warm_up().await {
            self.tally.note(|| format!("{nick}: warm-up: {stop}"));
            return self.tally;
        }
        ready.fetch_add(1, Relaxed);
        while !*start.borrow_and_update() {
            if start.changed().await.is_err() {
                self.tally.note(|| format!("{nick}: never told to start"));
                return self.tally;
            }
        }
        if let Err(stop) = self.send_all().await {
            self.tally.note(|| format!("{nick}: {stop}"));
        }
        self.tally
    }

    async fn warm_up(&mut self) -> Result<(), Stop> {
        let first = mailbox::recipient_of(self.senders, self.recipients, self.index, 0);
        self.sender
            .push_to(Kind::Warmup, 0, &mut self.targets[first as usize])
            .map_err(|error| format!("sending failed: {error}"))?;
        let mut acked = false;
        while !acked {
            self.sender
                .flush()
                .await
                .map_err(|error| format!("sending failed: {error}"))?;
            let frame = self.next().await?;
            acked = self.on_frame(frame, None)?;
        }
        Ok(())
    }

    /// Sends every data message, keeping `window` in flight, until every
    /// one is answered.
    async fn send_all(&mut self) -> Result<(), Stop> {
        let window = self.window;
        // When each message in flight was written, by sequence number
        // modulo the window.
        let mut sent_ns = vec![0u64; usize::try_from(window).unwrap_or(1)];
        while self.tally.acks < self.messages {
            while self.tally.sent < self.messages && self.tally.sent - self.tally.acks < window {
                let seq = self.tally.sent;
                if seq.is_multiple_of(1024) && Instant::now() >= self.deadline {
                    return Err(format!(
                        "the deadline stopped sending after {seq} of {}",
                        self.messages
                    ));
                }
                let to = mailbox::recipient_of(self.senders, self.recipients, self.index, seq);
                self.sender
                    .push_to(Kind::Data, seq, &mut self.targets[to as usize])
                    .map_err(|error| format!("sending failed: {error}"))?;
                sent_ns[(seq % window) as usize] = self.clock.now_ns();
                self.tally.sent += 1;
            }
            self.sender
                .flush()
                .await
                .map_err(|error| format!("sending failed: {error}"))?;
            let before = self.tally.acks;
            let frame = self.next().await?;
            self.on_frame(frame, Some(&sent_ns))?;
            // Whatever else the last read brought, without waiting.
            while let Some(frame) = self.frames.next().now_or_never() {
                self.on_frame(frame, Some(&sent_ns))?;
            }
            self.acked.fetch_add(self.tally.acks - before, Relaxed);
        }
        Ok(())
    }

    /// The next frame, within [`ACK_IDLE`] and the run's deadline.
    async fn next(&mut self) -> Result<Option<Result<Inbound, ProtocolError>>, Stop> {
        let until = (Instant::now() + ACK_IDLE).min(self.deadline);
        tokio::time::timeout_at(until.into(), self.frames.next())
            .await
            .map_err(|_| {
                format!(
                    "no answer for {:.1} s with {} messages in flight",
                    ACK_IDLE.as_secs_f64(),
                    self.tally.sent - self.tally.acks
                )
            })
    }

    /// Handles one frame. `sent_ns` is `None` during the warm-up; then the
    /// answer is whether the warm-up message's ack came. A connection
    /// that ended is an `Err`.
    fn on_frame(
        &mut self,
        frame: Option<Result<Inbound, ProtocolError>>,
        sent_ns: Option<&[u64]>,
    ) -> Result<bool, Stop> {
        let inbound = match frame {
            Some(Ok(inbound)) => inbound,
            Some(Err(error)) => {
                self.tally.cut = 1;
                return Err(format!("reading failed: {error}"));
            }
            None => {
                self.tally.cut = 1;
                return Err("the hub closed the connection".to_owned());
            }
        };
        match inbound {
            Inbound::Frame(ServerFrame::Ack(ack)) => {
                self.tally.first_id = self.tally.first_id.min(ack.message_id);
                let status = match ack.statuses.as_slice() {
                    [one] => one.status,
                    _ => Code::BAD_REQUEST,
                };
                Ok(self.on_answer(ack.client_id, status, sent_ns))
            }
            // Every status "delivered": the recipient was online.
            Inbound::Delivered { client_id, .. } => {
                Ok(self.on_answer(client_id, Code::DELIVERED, sent_ns))
            }
            Inbound::Frame(ServerFrame::AckRun(run)) => {
                let mut warm = false;
                for (client_id, _) in run.ids() {
                    warm |= self.on_answer(client_id, Code::DELIVERED, sent_ns);
                }
                Ok(warm)
            }
            Inbound::Frame(ServerFrame::Error(error)) => Ok(self.on_error(&error, sent_ns)),
            Inbound::Frame(ServerFrame::Ping(token)) => {
                self.sender
                    .push_frame(&ClientFrame::Pong(token))
                    .map_err(|error| format!("cannot answer a ping: {error}"))?;
                Ok(false)
            }
            // Nothing else is this workload's business.
            _ => Ok(false),
        }
    }

    /// An `ERROR` from the hub; one that names a message answers it.
    fn on_error(&mut self, error: &ErrorFrame, sent_ns: Option<&[u64]>) -> bool {
        self.tally.hub_errors += 1;
        let nick = self.index;
        self.tally.note(|| {
            format!(
                "bench-sender-{nick}: the hub sent error {}: {}",
                error.code.0, error.message
            )
        });
        let next = self.tally.acks + 1;
        if error.reference & WARMUP_ID != 0 && sent_ns.is_none() {
            return true;
        }
        if error.reference == next && sent_ns.is_some() {
            self.tally.acks += 1;
            self.tally.other_status += 1;
        }
        false
    }

    /// The answer to message `client_id`: counted, checked, and timed.
    /// Returns whether it answered a warm-up message.
    fn on_answer(&mut self, client_id: u64, status: Code, sent_ns: Option<&[u64]>) -> bool {
        let nick = self.index;
        if client_id & WARMUP_ID != 0 {
            if status != Code::STORED {
                self.tally.note(|| {
                    format!("bench-sender-{nick}: the warm-up message's ack says {status}")
                });
            }
            return true;
        }
        let Some(sent_ns) = sent_ns else {
            self.tally.other_status += 1;
            self.tally.note(|| {
                format!("bench-sender-{nick}: an ack for message {client_id} before any was sent")
            });
            return false;
        };
        let now = self.clock.now_ns();
        let seq = client_id.wrapping_sub(1);
        let expected = self.tally.acks;
        self.tally.acks += 1;
        if seq != expected {
            self.tally.out_of_order += 1;
            self.tally.note(|| {
                format!(
                    "bench-sender-{nick}: the ack of message {seq} came when {expected} was due"
                )
            });
        }
        if seq < self.tally.sent && self.tally.sent - seq <= self.window {
            let at = sent_ns[(seq % self.window) as usize];
            self.tally
                .latencies
                .saturating_record(now.saturating_sub(at).max(1));
        }
        match status {
            Code::STORED => {
                self.tally.stored += 1;
                self.tally.last_stored_ns = now;
                self.tally.stored_seqs.push(seq);
            }
            Code::MAILBOX_FULL => self.tally.mailbox_full += 1,
            Code::STORE_FAILED => self.tally.store_failed += 1,
            other => {
                self.tally.other_status += 1;
                self.tally.note(|| {
                    format!(
                        "bench-sender-{nick}: the ack of message {seq} says {other}, not stored"
                    )
                });
            }
        }
        if status == Code::MAILBOX_FULL || status == Code::STORE_FAILED {
            self.tally
                .note(|| format!("bench-sender-{nick}: the ack of message {seq} says {status}"));
        }
        false
    }
}
