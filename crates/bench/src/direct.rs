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
//! `all_ready`, `elapsed_s`, `messages_per_s`, `send_s`.
//!
//! # `--receipts`
//!
//! The same, with receipts (`docs/protocol.md`, section 8.10): every
//! connection also asks for `CONFIRMS` and `RECEIPTS`, confirms the hub's
//! id of every data message it receives (one `CONFIRM` per 64 ids, and
//! what is pending once its socket has been quiet for 5 ms or the run
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

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use chinwag_protocol::Recipients;
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch;

use crate::cast::float;
use crate::clock::span_s;
use crate::conn::{self, STREAM_READ_BUFFER, Spec};
use crate::context::{Ctx, MAX_LATENCY_NS};
use crate::error::SetupError;
use crate::payload::Kind;
use crate::procstat::CpuWindow;
use crate::receipts::{ReceiptSpec, ReceiptTally, SAMPLE_EVERY, SendTimes};
use crate::receiver::{Expect, Tally};
use crate::report::{self, Checks, Figures, Percentiles, Report};
use crate::sender::{self, Sender, Sent, WARMUP_EVERY};
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
    /// Only with `--receipts`.
    #[serde(flatten)]
    receipts: Option<ReceiptFigures>,
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
        if let Some(latency) = &self.receipt_latency {
            rows.push((
                "to receipt",
                format!(
                    "p50 {}  p90 {}  p99 {}  p99.9 {}  max {} µs ({} samples: SEND to its receipt, every {SAMPLE_EVERY}th message)",
                    report::micros(latency.p50_us),
                    report::micros(latency.p90_us),
                    report::micros(latency.p99_us),
                    report::micros(latency.p999_us),
                    report::micros(latency.max_us),
                    report::count(latency.samples),
                ),
            ));
        }
        rows
    }
}

impl Figures for Direct {
    fn title(&self) -> String {
        format!(
            "direct: {} pairs, {} messages each way of {} bytes{}",
            self.pairs,
            report::count(self.messages),
            self.size,
            if self.receipts.is_some() {
                ", with receipts"
            } else {
                ""
            }
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
        rows
    }
}

/// The nickname of connection `index`: `a0..a(K-1)`, then `b0..b(K-1)`.
fn nick(index: u32, pairs: u32) -> String {
    if index < pairs {
        format!("a{index}")
    } else {
        format!("b{}", index - pairs)
    }
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
            nick: nick(i, pairs),
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
    let started = Instant::now();
    let receipts = if args.receipts {
        Some(Receipted::new(pairs, args.messages)?)
    } else {
        None
    };
    let specs = specs(args, receipts.as_ref());
    let mut peers =
        conn::connect_many(ctx, specs, &mut ctx.bar((2 * pairs).into(), "connecting")).await?;
    let connect_s = started.elapsed().as_secs_f64();

    let (go, start) = watch::channel(false);
    let mut writers = Vec::with_capacity(peers.len());
    for (i, peer) in (0..).zip(&peers) {
        let to = Recipients::Users(vec![nick(partner(i, pairs), pairs)]);
        let sender = Sender::new(peer, i, to, args.size, ctx.clock)?;
        writers.push(tokio::spawn(side(
            sender,
            start.clone(),
            args.messages,
            ctx.deadline,
        )));
    }
    let ready_until = ctx.ready_until();
    while count_ready(&peers) < peers.len() && Instant::now() < ready_until {
        tokio::time::sleep(WARMUP_EVERY / 4).await;
    }
    let mut failures = Vec::new();
    let ready = count_ready(&peers);
    failures.extend(not_ready(ready, peers.len()));

    let cpu = CpuWindow::start(ctx.server_pid);
    let t0 = ctx.clock.now_ns();
    let _ = go.send(true);
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
    let elapsed_s = span_s(t0, last);
    let figures = Direct {
        pairs,
        messages: args.messages,
        size: args.size,
        sent,
        connect_s,
        all_ready: ready == peers.len(),
        elapsed_s,
        messages_per_s: elapsed_s.map(|s| float(checks.0.delivered) / s),
        send_s: span_s(t0, send_end),
        receipts: receipt_figures,
    };
    drop(senders);
    Ok(ctx.report("direct", figures, Some(checks), failures, cpu))
}

/// One side of a pair: warm-up messages to the partner every
/// [`WARMUP_EVERY`] until the start signal, then the data messages.
async fn side(
    mut sender: Sender,
    mut start: watch::Receiver<bool>,
    messages: u64,
    deadline: Instant,
) -> Sent {
    while !*start.borrow_and_update() {
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
    sender::send_all(sender, messages, deadline).await
}

/// What the connections of `direct --receipts` share: each sender's
/// sampled send times, and the histogram of SEND to receipt.
struct Receipted {
    times: Vec<Arc<SendTimes>>,
    latencies: Arc<Mutex<Histogram<u64>>>,
}

impl Receipted {
    fn new(pairs: u32, messages: u64) -> Result<Self, SetupError> {
        let latencies = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .map_err(|error| SetupError::Task(error.to_string()))?;
        Ok(Self {
            times: (0..2 * pairs)
                .map(|_| Arc::new(SendTimes::new(messages)))
                .collect(),
            latencies: Arc::new(Mutex::new(latencies)),
        })
    }

    /// Connection `index`'s part.
    fn spec(&self, index: u32, pairs: u32) -> ReceiptSpec {
        let partner = partner(index, pairs);
        ReceiptSpec {
            partner: nick(partner, pairs),
            own_times: Arc::clone(&self.times[index as usize]),
            partner_times: Arc::clone(&self.times[partner as usize]),
            latencies: Arc::clone(&self.latencies),
        }
    }
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
    let latency = Percentiles::of(
        &receipted
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let figures = ReceiptFigures {
        receipts: sum.receipts,
        receipts_expected: expected,
        receipts_elapsed_s: elapsed_s,
        receipts_per_s: elapsed_s.map(|s| float(sum.receipts) / s),
        bad_receipts: sum.bad,
        receipts_out_of_order: sum.out_of_order,
        confirmed: sum.confirmed,
        receipt_latency: latency,
    };
    (Some(figures), failures)
}
