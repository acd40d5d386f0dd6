//! `latency`: one publisher broadcasts at a fixed rate R to N subscribers
//! for S seconds; every message carries the time it was encoded, and each
//! delivery's latency goes into an HDR histogram (nanoseconds, three
//! significant digits), reported as p50, p90, p99, p99.9 and max in µs.
//!
//! Pacing is hubload's: a 1 ms tick (missed ticks skipped), and on each tick
//! as many messages as are due by then (elapsed time × R), so bursts of about
//! R / 1000. Messages of the first `--warmup` seconds are delivered and
//! checked but not recorded.
//!
//! With `--stuck N`, N registered readers that never read (`stuck.rs`) are
//! in the audience too: the figures are those of the readers that keep up,
//! and show what the stuck ones cost them.
//!
//! JSON figures: `subscribers`, `stuck`, `rate`, `duration_s`, `size`,
//! `warmup_s`, `sent`, `all_ready`, `publish_per_s`, `max_publish_batch`.

use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use tokio::time::MissedTickBehavior;

use crate::audience;
use crate::cast::{float, whole};
use crate::context::Ctx;
use crate::error::SetupError;
use crate::payload::Kind;
use crate::procstat::CpuWindow;
use crate::report::{self, Checks, Figures, Report};
use crate::sender::Sender;
use crate::stuck;
use crate::wait::{collect, wait_for};

/// `chinwag bench latency`.
#[derive(Debug, Args)]
pub(crate) struct LatencyArgs {
    /// Connections that receive every message.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    subscribers: u32,
    /// Messages per second the publisher sends.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
    /// Seconds of sending.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// Bytes of text per message (at least the 33-byte header).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Seconds at the start whose latencies are not recorded.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    warmup: f64,
    /// Registered readers that never read, added to the audience (a small
    /// receive buffer each, as a phone on a dead network): the hub should
    /// cut them without slowing the others.
    #[arg(long, default_value_t = 0)]
    stuck: u32,
}

/// What `latency` measured (the percentiles are in the report's `latency`).
#[derive(Debug, Serialize)]
pub(crate) struct Latency {
    subscribers: u32,
    stuck: u32,
    rate: u64,
    duration_s: u64,
    size: usize,
    warmup_s: f64,
    sent: u64,
    all_ready: bool,
    publish_per_s: f64,
    max_publish_batch: u64,
}

impl Figures for Latency {
    fn title(&self) -> String {
        let stuck = if self.stuck > 0 {
            format!(" and {} stuck readers", self.stuck)
        } else {
            String::new()
        };
        format!(
            "latency: 1 publisher, {} subscribers{stuck}, {} messages/s of {} bytes for {} s (first {} s not recorded)",
            self.subscribers,
            report::count(self.rate),
            self.size,
            self.duration_s,
            self.warmup_s
        )
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        vec![(
            "publish",
            format!(
                "{} messages at {}/s, at most {} per tick",
                report::count(self.sent),
                report::rate(self.publish_per_s),
                self.max_publish_batch
            ),
        )]
    }
}

/// What the paced publisher did.
#[derive(Debug)]
struct Paced {
    sender: Sender,
    sent: u64,
    seconds: f64,
    max_batch: u64,
    error: Option<String>,
}

/// Runs `latency`: `Err` only when it cannot start or go on; failed checks are
/// in the report.
pub(crate) async fn run(ctx: &Ctx, args: &LatencyArgs) -> Result<Report<Latency>, SetupError> {
    if !(args.warmup >= 0.0 && args.warmup < float(args.duration)) {
        return Err(SetupError::Usage(format!(
            "--warmup {} must be at least 0 and less than --duration {}",
            args.warmup, args.duration
        )));
    }
    let subscribers = args.subscribers;
    let total = args.rate * args.duration;
    let record_from = whole(args.warmup * float(args.rate));
    // Registered before the audience, so that every broadcast names them.
    let stuck = stuck::connect(ctx, args.stuck).await?;
    let mut peers =
        audience::connect(ctx, subscribers, total, args.size, record_from, args.stuck).await?;
    let (sender, all_ready, mut failures) = audience::warm_up(ctx, &peers, args.size).await?;

    let cpu = CpuWindow::start(ctx.server_pid);
    let publishing = tokio::spawn(paced(sender, args.rate, total, ctx.deadline));
    let expected = total * u64::from(subscribers);
    let outcome = wait_for(
        ctx,
        &peers,
        expected,
        total,
        &mut ctx.bar(expected, "delivered"),
    )
    .await;
    let cpu = cpu.end();
    let paced = publishing
        .await
        .map_err(|error| SetupError::Task(error.to_string()))?;
    failures.extend(paced.error.clone());
    failures.extend(outcome.failure());

    let tallies = collect(ctx, &mut peers).await;
    let checks = Checks::from_tallies(&tallies, expected, total);
    drop(stuck);
    let figures = Latency {
        subscribers,
        stuck: args.stuck,
        rate: args.rate,
        duration_s: args.duration,
        size: args.size,
        warmup_s: args.warmup,
        sent: paced.sent,
        all_ready,
        publish_per_s: float(paced.sent) / paced.seconds,
        max_publish_batch: paced.max_batch,
    };
    drop(paced.sender);
    Ok(ctx.report("latency", figures, Some(checks), failures, cpu))
}

/// Sends `total` data messages at `rate` per second: on each 1 ms tick,
/// every message due by then, then one write.
async fn paced(mut sender: Sender, rate: u64, total: u64, deadline: Instant) -> Paced {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut sent = 0;
    let mut max_batch = 0;
    let mut error = None;
    'ticks: while sent < total {
        if Instant::now() >= deadline {
            error = Some(format!(
                "the deadline stopped sending after {sent} of {total}"
            ));
            break;
        }
        tick.tick().await;
        let due = whole(started.elapsed().as_secs_f64() * float(rate)).min(total);
        max_batch = max_batch.max(due.saturating_sub(sent));
        while sent < due {
            if let Err(failed) = sender.send(Kind::Data, sent).await {
                error = Some(format!("sending failed after {sent} messages: {failed}"));
                break 'ticks;
            }
            sent += 1;
        }
        if let Err(failed) = sender.flush().await {
            error = Some(format!("sending failed after {sent} messages: {failed}"));
            break;
        }
    }
    Paced {
        sender,
        sent,
        seconds: started.elapsed().as_secs_f64(),
        max_batch,
        error,
    }
}
