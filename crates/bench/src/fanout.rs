//! `fanout`: one publisher broadcasts (`Recipients::Everyone`) M messages of
//! B bytes as fast as the hub takes them to N registered subscribers.
//!
//! The figure is deliveries per second: M × N divided by the time from the
//! first publish to the last delivery at the last subscriber (hubload's
//! `deliveries_per_s`). Also reported: how fast the hub took the messages
//! from the publisher, and the latency of every delivery (which, with a
//! publisher going flat out, is mostly time spent queued).
//!
//! JSON figures: `subscribers`, `messages`, `size`, `sent`, `connect_s`,
//! `all_ready`, `elapsed_s`, `deliveries_per_s`, `publish_s`,
//! `publish_per_s`.

use std::time::Instant;

use chinwag_protocol::Recipients;
use clap::Args;
use serde::Serialize;

use super::conn::{self, Peer, Spec};
use super::procstat::CpuWindow;
use super::receiver::Expect;
use super::report::{self, Checks, Figures, Report};
use super::sender::{self, Sender};
use super::{
    Ctx, SetupError, collect, count_ready, float, last_delivery_ns, not_ready, span_s, wait_for,
};

/// Read buffer of a connection that receives a stream of messages.
pub(crate) const STREAM_READ_BUFFER: usize = 64 * 1024;

/// `chinwag bench fanout`.
#[derive(Debug, Args)]
pub(crate) struct FanoutArgs {
    /// Connections that receive every message.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    subscribers: u32,
    /// Messages the publisher sends.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Bytes of text per message (at least the 33-byte header).
    #[arg(long, default_value_t = 64)]
    size: usize,
}

/// What `fanout` measured.
#[derive(Debug, Serialize)]
pub(crate) struct Fanout {
    subscribers: u32,
    messages: u64,
    size: usize,
    sent: u64,
    connect_s: f64,
    all_ready: bool,
    elapsed_s: Option<f64>,
    deliveries_per_s: Option<f64>,
    publish_s: Option<f64>,
    publish_per_s: Option<f64>,
}

impl Figures for Fanout {
    fn title(&self) -> String {
        format!(
            "fanout: 1 publisher, {} subscribers, {} messages of {} bytes",
            self.subscribers,
            report::count(self.messages),
            self.size
        )
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "throughput",
                format!(
                    "{} deliveries/s ({} in {})",
                    self.deliveries_per_s
                        .map_or_else(|| "-".to_owned(), report::rate),
                    report::count(self.sent * u64::from(self.subscribers)),
                    self.elapsed_s
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:.3} s")),
                ),
            ),
            (
                "publish",
                format!(
                    "{} messages in {} ({}/s)",
                    report::count(self.sent),
                    self.publish_s
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:.3} s")),
                    self.publish_per_s
                        .map_or_else(|| "-".to_owned(), report::rate),
                ),
            ),
            (
                "connect",
                format!(
                    "{} connections in {:.2} s",
                    self.subscribers + 1,
                    self.connect_s
                ),
            ),
        ]
    }
}

/// Connects `subscribers` receivers (`s0`, `s1`, ...) of one publisher's
/// broadcasts, then the publisher (`pub`), which is the last peer returned:
/// the audience of `fanout` and `latency`. Receivers expect `messages` data
/// messages and record latencies from sequence number `record_from` on.
pub(crate) async fn connect_audience(
    ctx: &Ctx,
    subscribers: u32,
    messages: u64,
    size: usize,
    record_from: u64,
) -> Result<Vec<Peer>, SetupError> {
    let specs = (0..subscribers)
        .map(|i| Spec {
            nick: format!("s{i}"),
            expect: Expect {
                from: Some(0),
                messages,
                size,
                record_from,
                ack_recipients: None,
            },
            source: None,
            read_buffer: STREAM_READ_BUFFER,
            presence: true,
        })
        .collect();
    let mut peers =
        conn::connect_many(ctx, specs, &mut ctx.bar(subscribers.into(), "connecting")).await?;
    let publisher = conn::connect(
        ctx,
        Spec {
            nick: "pub".to_owned(),
            expect: Expect {
                from: None,
                messages: 0,
                size,
                record_from: 0,
                ack_recipients: Some(subscribers),
            },
            source: None,
            read_buffer: STREAM_READ_BUFFER,
            presence: true,
        },
    )
    .await?;
    peers.push(publisher);
    Ok(peers)
}

/// Builds the publisher's sender (the last of `peers`) and sends warm-up
/// messages until every receiver has seen one. Returns the sender, whether
/// all were ready, and the failures found on the way.
pub(crate) async fn warm_up_audience(
    ctx: &Ctx,
    peers: &[Peer],
    size: usize,
) -> Result<(Sender, bool, Vec<String>), SetupError> {
    let (publisher, receivers) = peers
        .split_last()
        .ok_or(SetupError::Task("no publisher".to_owned()))?;
    let mut sender = Sender::new(publisher, 0, Recipients::Everyone, size, ctx.clock)?;
    let mut failures = Vec::new();
    let all_ready = match sender
        .warm_up(ctx.ready_until(), || {
            count_ready(receivers) == receivers.len()
        })
        .await
    {
        Ok(all) => all,
        Err(error) => {
            failures.push(format!("pub: warm-up failed: {error}"));
            false
        }
    };
    failures.extend(not_ready(count_ready(receivers), receivers.len()));
    Ok((sender, all_ready, failures))
}

pub(crate) async fn run(ctx: &Ctx, args: &FanoutArgs) -> Result<Report<Fanout>, SetupError> {
    let subscribers = args.subscribers;
    let started = Instant::now();
    let mut peers = connect_audience(ctx, subscribers, args.messages, args.size, 0).await?;
    let connect_s = started.elapsed().as_secs_f64();
    let (sender, all_ready, mut failures) = warm_up_audience(ctx, &peers, args.size).await?;

    let cpu = CpuWindow::start(ctx.server_pid);
    let t0 = ctx.clock.now_ns();
    let publishing = tokio::spawn(sender::send_all(sender, args.messages, ctx.deadline));
    let expected = args.messages * u64::from(subscribers);
    let outcome = wait_for(
        ctx,
        &peers,
        expected,
        args.messages,
        &mut ctx.bar(expected, "delivered"),
    )
    .await;
    let cpu = cpu.end();
    let sent = publishing
        .await
        .map_err(|error| SetupError::Task(error.to_string()))?;
    failures.extend(sent.error.clone());
    failures.extend(outcome.failure());

    let last = last_delivery_ns(&peers);
    let tallies = collect(ctx, &mut peers).await;
    let checks = Checks::from_tallies(&tallies, expected, args.messages);
    let elapsed_s = span_s(t0, last);
    let publish_s = span_s(t0, sent.end_ns);
    let figures = Fanout {
        subscribers,
        messages: args.messages,
        size: args.size,
        sent: sent.count,
        connect_s,
        all_ready,
        elapsed_s,
        deliveries_per_s: elapsed_s.map(|s| float(checks.0.delivered) / s),
        publish_s,
        publish_per_s: publish_s.map(|s| float(sent.count) / s),
    };
    drop(sent);
    Ok(ctx.report("fanout", figures, Some(checks), failures, cpu))
}
