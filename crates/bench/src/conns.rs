//! `conns`: C idle registered connections, held open; with `--server-pid`,
//! the hub's resident memory (`VmRSS`) before, after connecting and settling,
//! and 2 s after closing them all, and bytes per connection.
//!
//! Settling is hubload's: at least a second, then until the hub uses less
//! than 2% of a core over half a second (it is done sending the presence
//! notices of every arrival to everyone online). Each connection keeps a
//! receiver reading (and checking) what the hub sends it.
//!
//! With `--no-presence` the connections ask for `NO_PRESENCE`: no one is
//! told of the others' arrivals, which with everyone told is n^2 frames
//! (5 x 10^9 for 100,000 connections) and bounds how many a run can reach.
//!
//! One source address has about 28,000 ephemeral ports; `--source-ips K`
//! spreads the connections over 127.0.0.1 … 127.0.0.K, binding each socket
//! before connecting.
//!
//! JSON figures: `count`, `source_ips`, `presence`, `held`, `connect_s`,
//! `connects_per_s`, `settle_s`, `settle` (`idle`, `deadline` or
//! `no-server-pid`), `server_rss_before_kb`, `server_rss_after_kb`,
//! `server_bytes_per_conn`, `server_rss_after_close_kb`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::cast::float;
use crate::conn::{self, IDLE_READ_BUFFER, Spec};
use crate::context::Ctx;
use crate::error::SetupError;
use crate::procstat::{CpuWindow, Process};
use crate::receiver::Expect;
use crate::report::{self, Checks, Figures, Report};
use crate::wait::collect;

/// Settling takes at least this long.
const SETTLE_MIN: Duration = Duration::from_secs(1);
/// The hub is idle when it uses at most this much CPU over [`SETTLE_STEP`].
const SETTLE_CPU_S: f64 = 0.01;
const SETTLE_STEP: Duration = Duration::from_millis(500);
/// Memory is read again this long after closing every connection.
const AFTER_CLOSE: Duration = Duration::from_secs(2);

/// `chinwag bench conns`.
#[derive(Debug, Args)]
pub(crate) struct ConnsArgs {
    /// Idle registered connections to hold.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
    /// Spread the connections over the source addresses 127.0.0.1 to
    /// 127.0.0.K (an IPv4 loopback hub only).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    source_ips: u8,
    /// The connections ask for `NO_PRESENCE`: they are not told of each
    /// other's arrivals, nor given the roster.
    #[arg(long)]
    no_presence: bool,
}

/// What `conns` measured.
#[derive(Debug, Serialize)]
pub(crate) struct Conns {
    count: u32,
    source_ips: u8,
    presence: bool,
    held: usize,
    connect_s: f64,
    connects_per_s: f64,
    settle_s: f64,
    settle: &'static str,
    server_rss_before_kb: Option<u64>,
    server_rss_after_kb: Option<u64>,
    server_bytes_per_conn: Option<f64>,
    server_rss_after_close_kb: Option<u64>,
}

impl Figures for Conns {
    fn title(&self) -> String {
        format!(
            "conns: {} idle registered connections from {} source address{}{}",
            report::count(self.count.into()),
            self.source_ips,
            if self.source_ips == 1 { "" } else { "es" },
            if self.presence {
                ""
            } else {
                ", not following presence"
            }
        )
    }

    fn rows(&self) -> Vec<(&'static str, String)> {
        let kib = |kb: Option<u64>| {
            kb.map_or_else(
                || "unknown".to_owned(),
                |kb| format!("{} KiB", report::count(kb)),
            )
        };
        let mut rows = vec![
            (
                "held",
                format!(
                    "{} connections, connected in {:.2} s ({}/s), settled in {:.2} s ({})",
                    report::count(self.held as u64),
                    self.connect_s,
                    report::rate(self.connects_per_s),
                    self.settle_s,
                    self.settle
                ),
            ),
            (
                "server rss",
                format!(
                    "{} before, {} held, {} after closing",
                    kib(self.server_rss_before_kb),
                    kib(self.server_rss_after_kb),
                    kib(self.server_rss_after_close_kb)
                ),
            ),
        ];
        rows.push((
            "per conn",
            self.server_bytes_per_conn.map_or_else(
                || "unknown (needs --server-pid)".to_owned(),
                |bytes| format!("{} bytes of server memory", report::rate(bytes)),
            ),
        ));
        rows
    }
}

/// Runs `conns`: `Err` only when it cannot start or go on; failed checks are
/// in the report.
pub(crate) async fn run(ctx: &Ctx, args: &ConnsArgs) -> Result<Report<Conns>, SetupError> {
    let sources = source_addresses(ctx, args.source_ips)?;
    let pid = ctx.server_pid.map(Process::Pid);
    let rss_before = pid.and_then(Process::rss_kb);
    let cpu = CpuWindow::start(ctx.server_pid);
    let presence = !args.no_presence;
    let specs = (0..args.count)
        .map(|i| Spec {
            nick: format!("c{i}"),
            expect: Expect {
                from: None,
                messages: 0,
                size: 0,
                record_from: 0,
                ack_recipients: None,
                stuck: 0,
            },
            source: sources.as_ref().map(|ips| ips[i as usize % ips.len()]),
            read_buffer: IDLE_READ_BUFFER,
            presence,
            receipts: None,
        })
        .collect();
    let started = Instant::now();
    let mut peers =
        conn::connect_many(ctx, specs, &mut ctx.bar(args.count.into(), "connecting")).await?;
    let connect_s = started.elapsed().as_secs_f64();

    tokio::time::sleep(SETTLE_MIN).await;
    let mut settle = "no-server-pid";
    if let Some(pid) = pid {
        settle = "deadline";
        let mut before = pid.cpu_secs().unwrap_or(0.0);
        while Instant::now() < ctx.deadline {
            tokio::time::sleep(SETTLE_STEP).await;
            let now = pid.cpu_secs().unwrap_or(0.0);
            if now - before <= SETTLE_CPU_S {
                settle = "idle";
                break;
            }
            before = now;
        }
    }
    let settle_s = started.elapsed().as_secs_f64() - connect_s;
    let rss_after = pid.and_then(Process::rss_kb);
    let cpu = cpu.end();

    let held = peers.len();
    let tallies = collect(ctx, &mut peers).await;
    let checks = Checks::from_tallies(&tallies, 0, 0);
    let mut report = ctx.report(
        "conns",
        Conns {
            count: args.count,
            source_ips: args.source_ips,
            presence,
            held,
            connect_s,
            connects_per_s: float(held as u64) / connect_s,
            settle_s,
            settle,
            server_rss_before_kb: rss_before,
            server_rss_after_kb: rss_after,
            server_bytes_per_conn: rss_before.zip(rss_after).map(|(before, after)| {
                (float(after) - float(before)) * 1024.0 / float(held as u64)
            }),
            server_rss_after_close_kb: None,
        },
        Some(checks),
        Vec::new(),
        cpu,
    );
    drop(peers);
    if pid.is_some() {
        tokio::time::sleep(AFTER_CLOSE).await;
        report.figures.server_rss_after_close_kb = pid.and_then(Process::rss_kb);
    }
    Ok(report)
}

/// The addresses to connect from: `None` (the system's choice) for one.
fn source_addresses(ctx: &Ctx, count: u8) -> Result<Option<Vec<IpAddr>>, SetupError> {
    if count == 1 {
        return Ok(None);
    }
    if !(ctx.addr.is_ipv4() && ctx.addr.ip().is_loopback()) {
        return Err(SetupError::Usage(format!(
            "--source-ips needs a hub on an IPv4 loopback address, not {}",
            ctx.addr
        )));
    }
    Ok(Some(
        (1..=count)
            .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
            .collect(),
    ))
}
