//! `direct`: K pairs of connections (`a0`–`b0`, `a1`–`b1`, …); each side
//! sends M messages of B bytes to its partner by nickname
//! (`Recipients::Users([partner])`), all at once.
//!
//! The figure is messages delivered per second: 2 × K × M divided by the
//! time from the start signal to the last delivery anywhere (hubload's
//! `messages_per_s`). Each side warms up (sends to its partner every 20 ms)
//! until every connection has seen a warm-up message; then all start
//! together.
//!
//! JSON figures: `pairs`, `messages`, `size`, `sent`, `connect_s`,
//! `all_ready`, `elapsed_s`, `messages_per_s`, `send_s`, `reliable`, `rate`.
//!
//! # `--receipts`
//!
//! The same, with receipts (`docs/protocol.md`, section 8.10): every
//! connection also asks for `CONFIRMS` and `RECEIPTS`, confirms the hub's
//! id of every data message it receives (one `CONFIRM` per 256 ids, as the
//! client library does, and what is pending once its socket has been quiet
//! for 5 ms or the run
//! ends), and gets a receipt for each message it sent once its partner has
//! confirmed it. Every receipt is checked (`receipts.rs`): it must name the
//! partner and a message the hub acked to the sender, awaiting its receipt.
//! The run then also waits (within the deadline) for every receipt, and the
//! CPU window ends with the last of them rather than the last delivery.
//! `messages_per_s` is measured as without, so that the two compare:
//!
//! ```text
//! chinwag bench direct --pairs 50 --messages 60000 --size 64
//! chinwag bench direct --pairs 50 --messages 60000 --size 64 --receipts
//! ```
//!
//! JSON figures added, only with `--receipts`: `receipts` (good ones),
//! `receipts_expected` (2 × K × M), `receipts_elapsed_s` and
//! `receipts_per_s` (receipts over the time from the start signal to the
//! last receipt anywhere), `bad_receipts` (for a message awaiting none, a
//! duplicate or not acked to that sender, or naming someone other than the
//! partner), `receipts_out_of_order` (a receipt after a later message's:
//! allowed, counted), `confirmed` (ids confirmed), and
//! `receipt_latency` (as `latency`: from encoding a `SEND` to reading its
//! receipt, for every 16th message of each sender). Missing and bad receipts
//! fail the run.
//!
//! A connection's `CONFIRM`s travel behind its own messages, written before
//! them and still in the socket buffers or the hub's, so while every side
//! floods they lag by up to seconds. The hub remembers at most 65,536
//! unconfirmed messages per connection and forgets the oldest past that
//! (`docs/limits.md`): with more `--messages` than that, a run can lose
//! receipts, and then fails (50 pairs of 100,000 lost 6-8% of them here);
//! with at most that, none can be forgotten (the few warm-up messages,
//! which are not confirmed, are older and go first).
//!
//! # `--reliable`
//!
//! Reliable sessions (`docs/protocol.md`, section 8.11), with receipts as
//! above. Before the run the bench creates an account for every connection,
//! `bench-rel-0..2K` (password [`PASSWORD`](crate::mailbox::PASSWORD); one
//! left by a run that did not finish is deleted, with its mailbox, and
//! created again, so that every run starts empty), and each connection
//! logs in to its own with `RELIABLE`, `RECEIPTS` and `CONFIRMS`; a
//! `WELCOME` that does not grant `RELIABLE` is a setup error. So every
//! message goes to its recipient's mailbox, and only once the group commit
//! holding it has returned does the hub ack it and deliver it, as
//! `SEQUENCED`. The receivers read those in place as they read `MESSAGE`s,
//! check that each one's number is one more than the last, and confirm
//! every one (warm-up messages too, so that nothing stays held; their
//! receipts are expected, and not counted). `SEND` ids count up from a
//! random start per run (bits 32 to 61), since the hub takes an id it
//! remembers for the account as the same message sent again: the warm-ups
//! first, then the data messages from 2^24 above the start (the hub takes
//! a reliable session's ids only below 2^63, so warm-ups are told apart
//! by where their ids are, not by a marking bit as without `--reliable`).
//! After the run, the connections closed, the bench deletes the accounts:
//! nothing of the run stays in the store.
//!
//! Each sender keeps at most `--window` data messages (1,024 by default)
//! sent and not yet acked ([`Unacked`]), as the client library's reliable
//! sessions do (`max_pending`): the hub recognises a message sent again by
//! its client id among the account's newest 1,024, so a client with more
//! unacknowledged could have one routed twice after a reconnection. Without
//! it the senders filled the sockets with seconds of `SEND`s, and every
//! `CONFIRM` and `CONFIRM_RECEIPTS` queued behind them.
//!
//! JSON figures added: `reliable` (true), `window`, the receipt figures above, and
//! `ack_latency` (as `receipt_latency`: from encoding a `SEND` to reading
//! its `ACK`, which a reliable session gets after the commit; the sender
//! keeps its own send times), `receipts_confirmed` (every receipt is
//! confirmed with `CONFIRM_RECEIPTS`, batched as the `CONFIRM`s, so that
//! the hub stops keeping it), `accounts_created`, `accounts_replaced`,
//! `accounts_deleted`.
//!
//! # `--rate N`
//!
//! Paced instead of as fast as possible: N messages per second over all
//! the 2 × K senders, interleaved (sender `i`'s message `q` is the run's
//! `(q × 2K + i)`th, due `1 / N` s after the one before), each sender
//! writing at each wake every message then due ([`Pace`]). Every latency
//! (`latency`, `receipt_latency`, `ack_latency`) is then from a message's
//! *scheduled* time, not the time it was encoded: a sender held up (late
//! timers, the hub's flow control) adds to the latencies rather than
//! hiding the hub's slowness. The timer wakes up to about a millisecond
//! late, which the latencies include. For the p99 from `SEND` to receipt at
//! a given load:
//!
//! ```text
//! chinwag bench direct --pairs 50 --messages 1000 --size 64 --reliable --rate 5000
//! ```
//!
//! JSON: `rate` (`null` without).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use chinwag_protocol::Recipients;
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cast::float;
use crate::clock::span_s;
use crate::conn::{self, Peer, STREAM_READ_BUFFER, Spec};
use crate::context::{Ctx, MAX_LATENCY_NS};
use crate::error::SetupError;
use crate::mailbox;
use crate::payload::Kind;
use crate::procstat::CpuWindow;
use crate::receipts::{ReceiptSpec, ReceiptTally, ReliableSpec, SAMPLE_EVERY, SendTimes};
use crate::receiver::{Expect, Tally};
use crate::report::{self, Checks, Figures, Percentiles, Report};
use crate::sender::{self, Pace, Sender, Sent, WARMUP_EVERY};
use crate::unacked::Unacked;
use crate::wait::{
    Wait, collect, count_ready, last_delivery_ns, not_ready, wait_for, wait_for_receipts,
};

/// `chinwag bench direct`.
#[derive(Debug, Args)]
pub(crate) struct DirectArgs {
    /// Pairs of connections that message each other.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pairs: u32,
    /// Messages each side sends to its partner.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Bytes of text per message (at least the 33-byte header).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Receipts on: every connection confirms what it receives and gets a
    /// receipt for each message it sent; every receipt is checked and
    /// awaited, and counted and timed in the report.
    #[arg(long)]
    receipts: bool,
    /// Reliable sessions, with receipts as --receipts: every connection
    /// logs in to an account (bench-rel-0.., created before the run and
    /// deleted after it) with RELIABLE, so that every message is committed
    /// to the store before it is delivered; SEND to ACK is timed too.
    #[arg(long)]
    reliable: bool,
    /// Messages per second in all, shared evenly among the senders and
    /// sent on a schedule (latencies are from each message's scheduled
    /// time) [default: as fast as the hub takes them].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    rate: Option<u64>,
    /// With --reliable: each sender keeps at most this many messages sent
    /// and not yet acknowledged, as the client library does (the hub
    /// remembers 1,024 client ids per account).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
}

/// What `direct` measured.
#[derive(Debug, Serialize)]
pub(crate) struct Direct {
    pairs: u32,
    messages: u64,
    size: usize,
    sent: u64,
    connect_s: f64,
    all_ready: bool,
    elapsed_s: Option<f64>,
    messages_per_s: Option<f64>,
    send_s: Option<f64>,
    /// Whether the sessions were reliable (`--reliable`).
    reliable: bool,
    /// With `--reliable`, each sender's window (`--window`).
    window: Option<u64>,
    /// `--rate`, if given.
    rate: Option<u64>,
    /// Only with `--receipts` or `--reliable`.
    #[serde(flatten)]
    receipts: Option<ReceiptFigures>,
    /// Only with `--reliable`.
    #[serde(flatten)]
    accounts: Option<AccountFigures>,
}

/// The accounts of `direct --reliable`.
#[derive(Debug, Serialize)]
struct AccountFigures {
    /// Created for the run.
    #[serde(rename = "accounts_created")]
    created: u32,
    /// Left by an earlier run (one that did not finish): deleted and
    /// created again, empty.
    #[serde(rename = "accounts_replaced")]
    replaced: u32,
    /// Deleted after the run.
    #[serde(rename = "accounts_deleted")]
    deleted: u32,
}

/// What `direct --receipts` adds.
#[derive(Debug, Serialize)]
struct ReceiptFigures {
    receipts: u64,
    receipts_expected: u64,
    receipts_elapsed_s: Option<f64>,
    receipts_per_s: Option<f64>,
    bad_receipts: u64,
    receipts_out_of_order: u64,
    confirmed: u64,
    receipt_latency: Option<Percentiles>,
    /// Only with `--reliable`: SEND to its ACK.
    #[serde(skip_serializing_if = "Option::is_none")]
    ack_latency: Option<Percentiles>,
    /// Only with `--reliable`: receipts confirmed (`CONFIRM_RECEIPTS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    receipts_confirmed: Option<u64>,
}

/// A latency's row of the report: its percentiles, and what it measured.
fn latency_row(latency: &Percentiles, what: &str) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {} µs ({} samples: {what}, every {SAMPLE_EVERY}th message)",
        report::micros(latency.p50_us),
        report::micros(latency.p90_us),
        report::micros(latency.p99_us),
        report::micros(latency.p999_us),
        report::micros(latency.max_us),
        report::count(latency.samples),
    )
}

impl ReceiptFigures {
    fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![(
            "receipts",
            format!(
                "{} receipts/s ({} of {} in {}), wrong {}, out of order {}, {} ids confirmed",
                self.receipts_per_s
                    .map_or_else(|| "-".to_owned(), report::rate),
                report::count(self.receipts),
                report::count(self.receipts_expected),
                self.receipts_elapsed_s
                    .map_or_else(|| "-".to_owned(), |s| format!("{s:.3} s")),
                self.bad_receipts,
                self.receipts_out_of_order,
                report::count(self.confirmed),
            ),
        )];
        if let Some(confirmed) = self.receipts_confirmed {
            rows.push((
                "",
                format!("{} receipts confirmed", report::count(confirmed)),
            ));
        }
        if let Some(latency) = &self.ack_latency {
            rows.push(("to ack", latency_row(latency, "SEND to its ACK")));
        }
        if let Some(latency) = &self.receipt_latency {
            rows.push(("to receipt", latency_row(latency, "SEND to its receipt")));
        }
        rows
    }
}

impl Figures for Direct {
    fn title(&self) -> String {
        format!(
            "direct: {} pairs, {} messages each way of {} bytes{}{}",
            self.pairs,
            report::count(self.messages),
            self.size,
            if self.reliable {
                ", reliable sessions with receipts"
            } else if self.receipts.is_some() {
                ", with receipts"
            } else {
                ""
            },
            self.rate.map_or_else(String::new, |rate| format!(
                ", paced at {} messages/s (latencies from the scheduled send)",
                report::count(rate)
            )),
        )
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![
            (
                "throughput",
                format!(
                    "{} messages/s ({} in {})",
                    self.messages_per_s
                        .map_or_else(|| "-".to_owned(), report::rate),
                    report::count(self.sent),
                    self.elapsed_s
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:.3} s")),
                ),
            ),
            (
                "send",
                format!(
                    "all written in {}",
                    self.send_s
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:.3} s"))
                ),
            ),
            (
                "connect",
                format!("{} connections in {:.2} s", 2 * self.pairs, self.connect_s),
            ),
        ];
        if let Some(receipts) = &self.receipts {
            rows.extend(receipts.rows());
        }
        if let Some(accounts) = &self.accounts {
            rows.push((
                "accounts",
                format!(
                    "{} created ({} left by an earlier run, emptied), {} deleted after the run",
                    accounts.created + accounts.replaced,
                    accounts.replaced,
                    accounts.deleted,
                ),
            ));
        }
        rows
    }
}

/// The nickname of connection `index`: `a0..a(K-1)`, then `b0..b(K-1)`;
/// with `--reliable`, its account's, [`account`].
fn nick(index: u32, pairs: u32, reliable: bool) -> String {
    if reliable {
        account(index)
    } else if index < pairs {
        format!("a{index}")
    } else {
        format!("b{}", index - pairs)
    }
}

/// The account of connection `index` with `--reliable`.
fn account(index: u32) -> String {
    format!("bench-rel-{index}")
}

/// The partner of connection `index`.
fn partner(index: u32, pairs: u32) -> u32 {
    if index < pairs {
        index + pairs
    } else {
        index - pairs
    }
}

/// Every connection's spec: `a0..a(K-1)`, then `b0..b(K-1)`.
fn specs(args: &DirectArgs, receipts: Option<&Receipted>) -> Vec<Spec> {
    let pairs = args.pairs;
    (0..2 * pairs)
        .map(|i| Spec {
            nick: nick(i, pairs, args.reliable),
            expect: Expect {
                from: Some(partner(i, pairs)),
                messages: args.messages,
                size: args.size,
                record_from: 0,
                ack_recipients: Some(1),
                stuck: 0,
            },
            source: None,
            read_buffer: STREAM_READ_BUFFER,
            presence: true,
            receipts: receipts.map(|r| r.spec(i, pairs)),
        })
        .collect()
}

/// Runs `direct`: `Err` only when it cannot start or go on; failed checks are
/// in the report.
pub(crate) async fn run(ctx: &Ctx, args: &DirectArgs) -> Result<Report<Direct>, SetupError> {
    let pairs = args.pairs;
    let created = if args.reliable {
        Some(mailbox::create_named(ctx, 2 * pairs, account, true).await?)
    } else {
        None
    };
    let started = Instant::now();
    let receipts = if args.receipts || args.reliable {
        Some(Receipted::new(pairs, args)?)
    } else {
        None
    };
    let specs = specs(args, receipts.as_ref());
    let mut peers =
        conn::connect_many(ctx, specs, &mut ctx.bar((2 * pairs).into(), "connecting")).await?;
    let connect_s = started.elapsed().as_secs_f64();

    let (go, writers) = spawn_sides(ctx, args, &peers, receipts.as_ref())?;
    let ready_until = ctx.ready_until();
    while count_ready(&peers) < peers.len() && Instant::now() < ready_until {
        tokio::time::sleep(WARMUP_EVERY / 4).await;
    }
    let mut failures = Vec::new();
    let (ready, connections) = (count_ready(&peers), peers.len());
    failures.extend(not_ready(ready, connections));

    let cpu = CpuWindow::start(ctx.server_pid);
    let t0 = ctx.clock.now_ns();
    let _ = go.send(Some(t0));
    let expected = args.messages * u64::from(2 * pairs);
    let outcome = wait_for(
        ctx,
        &peers,
        expected,
        expected,
        &mut ctx.bar(expected, "delivered"),
    )
    .await;
    failures.extend(outcome.failure());
    if receipts.is_some() && outcome == Wait::Complete {
        let bar = &mut ctx.bar(expected, "receipts");
        let outcome = wait_for_receipts(ctx, &peers, expected, bar).await;
        failures.extend(
            outcome
                .failure()
                .map(|failure| format!("receipts: {failure}")),
        );
    }
    let cpu = cpu.end();

    let mut sent = 0;
    let mut send_end = 0;
    let mut senders = Vec::with_capacity(writers.len());
    for writer in futures::future::join_all(writers).await {
        let done = writer.map_err(|error| SetupError::Task(error.to_string()))?;
        sent += done.count;
        send_end = send_end.max(done.end_ns);
        failures.extend(
            done.error
                .as_ref()
                .map(|error| format!("{}: {error}", peers[senders.len()].nick)),
        );
        senders.push(done.sender);
    }
    let last = last_delivery_ns(&peers);
    let tallies = collect(ctx, &mut peers).await;
    let checks = Checks::from_tallies(&tallies, expected, expected);
    let (receipt_figures, receipt_failures) = receipt_figures(receipts, &tallies, expected, t0);
    failures.extend(receipt_failures);
    // The connections close (their last `CONFIRM`s written first), then
    // the accounts go, with whatever their mailboxes still hold.
    drop(senders);
    drop(peers);
    let accounts = match created {
        Some(created) => Some(delete_accounts(ctx, pairs, created, &mut failures).await),
        None => None,
    };
    let elapsed_s = span_s(t0, last);
    let figures = Direct {
        pairs,
        messages: args.messages,
        size: args.size,
        sent,
        connect_s,
        all_ready: ready == connections,
        elapsed_s,
        messages_per_s: elapsed_s.map(|s| float(checks.0.delivered) / s),
        send_s: span_s(t0, send_end),
        reliable: args.reliable,
        window: args.reliable.then_some(args.window),
        rate: args.rate,
        receipts: receipt_figures,
        accounts,
    };
    Ok(ctx.report("direct", figures, Some(checks), failures, cpu))
}

/// Starts each connection's sender, warming up until told to start (the
/// start signal carries its time).
type Sides = (watch::Sender<Option<u64>>, Vec<JoinHandle<Sent>>);

fn spawn_sides(
    ctx: &Ctx,
    args: &DirectArgs,
    peers: &[Peer],
    receipts: Option<&Receipted>,
) -> Result<Sides, SetupError> {
    let pairs = args.pairs;
    let (go, start) = watch::channel(None);
    let mut writers = Vec::with_capacity(peers.len());
    for (i, peer) in (0..).zip(peers) {
        let to = Recipients::Users(vec![nick(partner(i, pairs), pairs, args.reliable)]);
        let mut sender = Sender::new(peer, i, to, args.size, ctx.clock)?;
        if let Some((id_base, times, window)) = receipts.and_then(|r| r.reliable_sender(i)) {
            sender = sender.reliable(id_base, times, window);
        }
        let pace = args.rate.map(|rate| Pace {
            rate,
            senders: 2 * pairs,
            index: i,
            start_ns: 0,
        });
        writers.push(tokio::spawn(side(
            sender,
            start.clone(),
            args.messages,
            pace,
            ctx.deadline,
        )));
    }
    Ok((go, writers))
}

/// Deletes the accounts of `direct --reliable` after the run; a failure is
/// the run's.
async fn delete_accounts(
    ctx: &Ctx,
    pairs: u32,
    created: mailbox::Created,
    failures: &mut Vec<String>,
) -> AccountFigures {
    let deleted = match mailbox::delete_named(ctx, 2 * pairs, account).await {
        Ok(deleted) => deleted,
        Err(error) => {
            failures.push(format!("deleting the accounts: {error}"));
            0
        }
    };
    if failures.is_empty() && deleted < 2 * pairs {
        failures.push(format!(
            "only {deleted} of the {} accounts were there to delete",
            2 * pairs
        ));
    }
    AccountFigures {
        created: created.created,
        replaced: created.existing,
        deleted,
    }
}

/// One side of a pair: warm-up messages to the partner every
/// [`WARMUP_EVERY`] until the start signal (which carries its time), then
/// the data messages, as fast as the hub takes them or paced.
async fn side(
    mut sender: Sender,
    mut start: watch::Receiver<Option<u64>>,
    messages: u64,
    pace: Option<Pace>,
    deadline: Instant,
) -> Sent {
    while start.borrow_and_update().is_none() {
        if let Err(error) = sender.push(Kind::Warmup, 0) {
            return sender.stopped(format!("warm-up failed: {error}"));
        }
        if let Err(error) = sender.flush().await {
            return sender.stopped(format!("warm-up failed: {error}"));
        }
        tokio::select! {
            changed = start.changed() => {
                if changed.is_err() {
                    return sender.stopped("never told to start".to_owned());
                }
            }
            () = tokio::time::sleep(WARMUP_EVERY) => {}
        }
    }
    let start_ns = *start.borrow();
    match (pace, start_ns) {
        (Some(pace), Some(start_ns)) => {
            sender::send_paced(sender, messages, Pace { start_ns, ..pace }, deadline).await
        }
        _ => sender::send_all(sender, messages, deadline).await,
    }
}

/// What the connections of `direct --receipts` share: each sender's
/// sampled send times, and the histogram of SEND to receipt; with
/// `--reliable`, the run's first `SEND` id and the histogram of SEND to
/// ACK.
struct Receipted {
    times: Vec<Arc<SendTimes>>,
    latencies: Arc<Mutex<Histogram<u64>>>,
    reliable: Option<ReliableSpec>,
    /// With `--reliable`, each connection's window (`--window`).
    windows: Vec<Arc<Unacked>>,
}

impl Receipted {
    fn new(pairs: u32, args: &DirectArgs) -> Result<Self, SetupError> {
        let (messages, reliable) = (args.messages, args.reliable);
        let histogram = || {
            Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .map(|histogram| Arc::new(Mutex::new(histogram)))
                .map_err(|error| SetupError::Task(error.to_string()))
        };
        let reliable = if reliable {
            Some(ReliableSpec {
                id_base: random_id_base(),
                ack_latencies: histogram()?,
            })
        } else {
            None
        };
        Ok(Self {
            times: (0..2 * pairs)
                .map(|_| Arc::new(SendTimes::new(messages)))
                .collect(),
            latencies: histogram()?,
            windows: if reliable.is_some() {
                (0..2 * pairs)
                    .map(|_| Arc::new(Unacked::new(args.window)))
                    .collect()
            } else {
                Vec::new()
            },
            reliable,
        })
    }

    /// Connection `index`'s part.
    fn spec(&self, index: u32, pairs: u32) -> ReceiptSpec {
        let partner = partner(index, pairs);
        ReceiptSpec {
            partner: nick(partner, pairs, self.reliable.is_some()),
            own_times: Arc::clone(&self.times[index as usize]),
            partner_times: Arc::clone(&self.times[partner as usize]),
            latencies: Arc::clone(&self.latencies),
            reliable: self.reliable.clone(),
            window: self.windows.get(index as usize).cloned(),
        }
    }

    /// With `--reliable`, what sender `index` needs: the first `SEND` id,
    /// where to keep its send times, and its window.
    fn reliable_sender(&self, index: u32) -> Option<(u64, Arc<SendTimes>, Arc<Unacked>)> {
        let reliable = self.reliable.as_ref()?;
        let window = Arc::clone(self.windows.get(index as usize)?);
        Some((
            reliable.id_base,
            Arc::clone(&self.times[index as usize]),
            window,
        ))
    }
}

/// Where a run's `SEND` ids start with `--reliable`: a random point of bits
/// 32 to 61 (the bundled client's, section 8.11 of `docs/protocol.md`, take
/// bits 32 to 62), below 2^62 with room for the warm-ups
/// ([`RELIABLE_WARMUP_ROOM`](crate::payload::RELIABLE_WARMUP_ROOM)) and
/// 2^32 messages above it. The ids of a reliable session
/// must be unique for the account, and the hub remembers them for a day.
fn random_id_base() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    // Seeded from the system's randomness, per process.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (random & ((1 << 62) - 1)) & !((1 << 32) - 1)
}

/// The receipt figures (with `--receipts`) and, with or without, what
/// failed: missing receipts, and wrong ones (without `--receipts`, any
/// receipt at all).
fn receipt_figures(
    receipted: Option<Receipted>,
    tallies: &[Tally],
    expected: u64,
    t0: u64,
) -> (Option<ReceiptFigures>, Vec<String>) {
    let mut sum = ReceiptTally::default();
    for tally in tallies {
        let one = &tally.receipts;
        sum.receipts += one.receipts;
        sum.out_of_order += one.out_of_order;
        sum.bad += one.bad;
        sum.confirmed += one.confirmed;
        sum.receipts_confirmed += one.receipts_confirmed;
        sum.last_ns = sum.last_ns.max(one.last_ns);
    }
    let mut failures = Vec::new();
    if sum.bad > 0 {
        failures.push(format!(
            "{} receipts wrong (for a message awaiting none, or naming someone other than the partner)",
            sum.bad
        ));
    }
    let Some(receipted) = receipted else {
        return (None, failures);
    };
    if sum.receipts < expected {
        failures.push(format!(
            "{} of {expected} receipts missing",
            expected - sum.receipts
        ));
    }
    let elapsed_s = span_s(t0, sum.last_ns);
    let of = |histogram: &Mutex<Histogram<u64>>| {
        Percentiles::of(&histogram.lock().unwrap_or_else(PoisonError::into_inner))
    };
    let latency = of(&receipted.latencies);
    let ack_latency = (receipted.reliable)
        .as_ref()
        .and_then(|reliable| of(&reliable.ack_latencies));
    let figures = ReceiptFigures {
        receipts: sum.receipts,
        receipts_expected: expected,
        receipts_elapsed_s: elapsed_s,
        receipts_per_s: elapsed_s.map(|s| float(sum.receipts) / s),
        bad_receipts: sum.bad,
        receipts_out_of_order: sum.out_of_order,
        confirmed: sum.confirmed,
        receipt_latency: latency,
        ack_latency,
        receipts_confirmed: receipted
            .reliable
            .is_some()
            .then_some(sum.receipts_confirmed),
    };
    (Some(figures), failures)
}
