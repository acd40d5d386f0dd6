//! `chinwag bench` as a command: its flags ([`BenchArgs`], one subcommand per
//! workload) and [`run`], which sets a run up, hands it to its workload, and
//! prints the report.

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::conns::{self, ConnsArgs};
use crate::context::Ctx;
use crate::direct::{self, DirectArgs};
use crate::error::SetupError;
use crate::fanout::{self, FanoutArgs};
use crate::latency::{self, LatencyArgs};
use crate::procstat::Process;
use crate::report::{Figures, Report};
use crate::store::{self, StoreArgs};
use crate::transport::Tls;

/// Worker threads of the bench's runtime: the bench shares the machine's two
/// cores with the hub, as hubload does.
pub const WORKER_THREADS: usize = 2;

/// `chinwag bench` and its options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The hub's process id: also report its CPU time over the measured
    /// window and its resident memory, read from /proc.
    #[arg(long, global = true, value_name = "PID")]
    server_pid: Option<u32>,
    /// Give up after this many seconds (the run then fails).
    #[arg(long, global = true, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Speak WebSocket to the hub's web gateway: --server is its
    /// --web-listen port, each connection an upgrade to /ws (subprotocol
    /// chinwag.v1, one frame per binary message); with --tls, wss: to a
    /// --web-tls port. (latency --stuck is plain TCP only.)
    #[arg(long, global = true)]
    ws: bool,
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Debug, Subcommand)]
enum Workload {
    /// One publisher broadcasts M messages as fast as the hub takes them to
    /// N subscribers: deliveries per second.
    Fanout(FanoutArgs),
    /// K pairs: each side sends M messages to its partner by name:
    /// messages delivered per second.
    Direct(DirectArgs),
    /// One publisher broadcasts at a fixed rate to N subscribers: latency
    /// percentiles after a warm-up.
    Latency(LatencyArgs),
    /// C idle registered connections: the hub's memory per connection
    /// (with --server-pid).
    Conns(ConnsArgs),
    /// S guest senders send M messages, pipelined, to registered
    /// recipients who are offline: stored messages per second, and the
    /// time from SEND to its STORED ack (the hub needs a store).
    Store(StoreArgs),
}

/// Whether a run passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Every delivery, ack and connection was as expected.
    Passed,
    /// Something was lost, duplicated, out of order, corrupt or cut, or the
    /// run timed out; the report and stderr say what.
    Failed,
}

/// Runs one workload against the hub at `server` (over TLS with `tls`,
/// over WebSocket with `--ws`) and prints its report (a table, or with `json` one JSON object on
/// stdout).
///
/// # Errors
///
/// A [`SetupError`] when the run could not start or go on (the `chinwag`
/// program exits with status 2); a failed check is not an error but a
/// [`Verdict::Failed`].
pub async fn run(
    server: &str,
    json: bool,
    args: BenchArgs,
    tls: Option<Tls>,
) -> Result<Verdict, SetupError> {
    raise_fd_limit();
    let addr = resolve(server).await?;
    if let Some(pid) = args.server_pid
        && Process::Pid(pid).cpu_secs().is_none()
    {
        return Err(SetupError::Usage(format!(
            "--server-pid {pid}: no such process to read in /proc"
        )));
    }
    let hard = Duration::from_secs(args.timeout);
    let deadline = Instant::now() + hard.mul_f64(0.9);
    let ctx = Ctx::new(addr, server, args.server_pid, deadline, !json, tls, args.ws)?;
    let work = async {
        match &args.workload {
            Workload::Fanout(w) => emit(&fanout::run(&ctx, w).await?, json),
            Workload::Direct(w) => emit(&direct::run(&ctx, w).await?, json),
            Workload::Latency(w) => emit(&latency::run(&ctx, w).await?, json),
            Workload::Conns(w) => emit(&conns::run(&ctx, w).await?, json),
            Workload::Store(w) => emit(&store::run(&ctx, w).await?, json),
        }
    };
    if let Ok(result) = tokio::time::timeout(hard, work).await {
        result
    } else {
        eprintln!(
            "chinwag: bench failed: no result within --timeout {} s",
            args.timeout
        );
        Ok(Verdict::Failed)
    }
}

/// Prints the report, flushed (a program reading the JSON through a pipe
/// sees it at once), and says whether every check passed.
fn emit<F: Figures>(report: &Report<F>, json: bool) -> Result<Verdict, SetupError> {
    let text = if json {
        report.json() + "\n"
    } else {
        report.table()
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|error| SetupError::Task(format!("cannot print the report: {error}")))?;
    if report.ok {
        Ok(Verdict::Passed)
    } else {
        eprintln!("chinwag: bench failed: {}", report.failures.join("; "));
        Ok(Verdict::Failed)
    }
}

async fn resolve(server: &str) -> Result<SocketAddr, SetupError> {
    let resolve = |source| SetupError::Resolve {
        server: server.to_owned(),
        source,
    };
    let mut addrs = tokio::net::lookup_host(server).await.map_err(resolve)?;
    addrs
        .next()
        .ok_or_else(|| resolve(io::Error::new(io::ErrorKind::NotFound, "no address")))
}

/// Lets this process open as many sockets as the hard limit allows: `conns`
/// holds thousands, and `fanout` a thousand subscribers. Failing leaves the
/// soft limit, and a run that needs more then fails to connect.
fn raise_fd_limit() {
    if let Err(error) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("chinwag: cannot raise the open-files limit: {error}");
    }
}
