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

use clap::Args;
use serde::Serialize;

use crate::audience;
use crate::cast::float;
use crate::clock::span_s;
use crate::context::Ctx;
use crate::error::SetupError;
use crate::procstat::CpuWindow;
use crate::report::{self, Checks, Figures, Report};
use crate::sender;
use crate::wait::{collect, last_delivery_ns, wait_for};

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

/// Runs `fanout`: `Err` only when it cannot start or go on; failed checks are
/// in the report.
pub(crate) async fn run(ctx: &Ctx, args: &FanoutArgs) -> Result<Report<Fanout>, SetupError> {
    let subscribers = args.subscribers;
    let started = Instant::now();
    let mut peers = audience::connect(ctx, subscribers, args.messages, args.size, 0, 0).await?;
    let connect_s = started.elapsed().as_secs_f64();
    let (sender, all_ready, mut failures) = audience::warm_up(ctx, &peers, args.size).await?;

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
