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

use std::time::Instant;

use chinwag_protocol::Recipients;
use clap::Args;
use serde::Serialize;
use tokio::sync::watch;

use crate::cast::float;
use crate::clock::span_s;
use crate::conn::{self, STREAM_READ_BUFFER, Spec};
use crate::context::Ctx;
use crate::error::SetupError;
use crate::payload::Kind;
use crate::procstat::CpuWindow;
use crate::receiver::Expect;
use crate::report::{self, Checks, Figures, Report};
use crate::sender::{self, Sender, Sent, WARMUP_EVERY};
use crate::wait::{collect, count_ready, last_delivery_ns, not_ready, wait_for};

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
}

impl Figures for Direct {
    fn title(&self) -> String {
        format!(
            "direct: {} pairs, {} messages each way of {} bytes",
            self.pairs,
            report::count(self.messages),
            self.size
        )
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        vec![
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
        ]
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

/// Runs `direct`: `Err` only when it cannot start or go on; failed checks are
/// in the report.
pub(crate) async fn run(ctx: &Ctx, args: &DirectArgs) -> Result<Report<Direct>, SetupError> {
    let pairs = args.pairs;
    let started = Instant::now();
    let specs = (0..2 * pairs)
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
        })
        .collect();
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
    let cpu = cpu.end();
    failures.extend(outcome.failure());

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
