//! `chinwag bench`: load a hub and measure it, the way hubload measures the
//! hubs people would otherwise pick, so that the figures compare.
//!
//! ```text
//! chinwag bench fanout  --subscribers 100 --messages 100000 --size 64
//! chinwag bench direct  --pairs 50 --messages 50000 --size 64
//! chinwag bench latency --subscribers 100 --rate 5000 --duration 10
//! chinwag bench conns   --count 10000 --source-ips 4 --server-pid PID
//! ```
//!
//! Layout: `fanout.rs`, `direct.rs`, `latency.rs` and `conns.rs` are the
//! workloads (each says what it does and what it reports); `conn.rs` opens
//! and registers connections; `sender.rs` writes `SEND` frames in batches;
//! `receiver.rs` reads each connection and checks every frame, decoded by
//! `codec.rs` (which reads bench messages in place); `payload.rs`
//! is the text of every message; `procstat.rs` reads CPU and memory from
//! `/proc`; `report.rs` prints the table or the JSON object.
//!
//! Every workload first sends warm-up messages until each receiver has seen
//! one, then measures. Every delivery is checked: a run in which anything is
//! lost, duplicated, out of order or corrupt, an ack is wrong or missing, the
//! hub sends an error or cuts a connection, fails with exit status 1. Setup
//! problems (cannot connect, nickname refused, bad flags) exit with 2.
//!
//! The entry point is [`run`], given the hub's address and the parsed
//! [`BenchArgs`]; the `chinwag` program (crate `chinwag-client`) parses the
//! command line and turns the [`Verdict`] or the [`SetupError`] into its exit
//! status.

mod codec;
mod conn;
mod conns;
mod direct;
mod fanout;
mod latency;
mod payload;
mod procstat;
mod receiver;
mod report;
mod sender;

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

use self::conn::Peer;
use self::payload::Clock;
use self::procstat::{CpuUse, Process};
use self::receiver::Tally;
use self::report::{Bar, Checks, Figures, Percentiles, Report};

/// Worker threads of the bench's runtime: the bench shares the machine's two
/// cores with the hub, as hubload does.
pub const WORKER_THREADS: usize = 2;

/// Longest wait for every receiver to see a warm-up message.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Stop waiting for deliveries after this long without any.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the coordinator looks at the receivers' progress.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// The largest latency recorded (60 s), in nanoseconds; slower ones count
/// as 60 s.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

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
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Debug, Subcommand)]
enum Workload {
    /// One publisher broadcasts M messages as fast as the hub takes them to
    /// N subscribers: deliveries per second.
    Fanout(fanout::FanoutArgs),
    /// K pairs: each side sends M messages to its partner by name:
    /// messages delivered per second.
    Direct(direct::DirectArgs),
    /// One publisher broadcasts at a fixed rate to N subscribers: latency
    /// percentiles after a warm-up.
    Latency(latency::LatencyArgs),
    /// C idle registered connections: the hub's memory per connection
    /// (with --server-pid).
    Conns(conns::ConnsArgs),
}

/// Why a run could not start or go on: a usage or connection problem, not a
/// failed check (those are in the report).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The server address does not resolve.
    #[error("cannot resolve {server}")]
    Resolve {
        /// The address as given.
        server: String,
        /// Why it did not resolve.
        #[source]
        source: io::Error,
    },
    /// Flags that cannot work together, or with this hub.
    #[error("{0}")]
    Usage(String),
    /// A TCP connection could not be opened.
    #[error("cannot connect to {addr} as {nick}")]
    Connect {
        /// The hub's address.
        addr: SocketAddr,
        /// The nickname the connection was for.
        nick: String,
        /// Why it could not be opened.
        #[source]
        source: io::Error,
    },
    /// The hub answered `HELLO` with an error.
    #[error("the hub refused {nick}: {message} (code {code})")]
    Refused {
        /// The nickname refused.
        nick: String,
        /// The `ERROR` frame's code.
        code: u16,
        /// The `ERROR` frame's message.
        message: String,
    },
    /// Registration went wrong otherwise.
    #[error("registering {nick}: {reason}")]
    Handshake {
        /// The nickname being registered.
        nick: String,
        /// What went wrong.
        reason: String,
    },
    /// A task of the bench itself failed.
    #[error("bench task failed: {0}")]
    Task(String),
}

/// What every part of a run shares.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) addr: SocketAddr,
    pub(crate) server: String,
    pub(crate) server_pid: Option<u32>,
    pub(crate) clock: Clock,
    /// Internal loops end here, a little before the hard `--timeout`, so that
    /// a run that is too slow still reports what it measured.
    pub(crate) deadline: Instant,
    /// Tells every receiver task to stop.
    pub(crate) stop: CancellationToken,
    /// Latencies of the measured deliveries, in nanoseconds.
    pub(crate) latencies: Arc<Mutex<Histogram<u64>>>,
    /// Whether progress bars may be shown (not with `--json`).
    pub(crate) bars: bool,
}

impl Ctx {
    pub(crate) fn bar(&self, len: u64, what: &'static str) -> Bar {
        Bar::new(self.bars, len, what)
    }

    /// When the warm-up barrier gives up.
    pub(crate) fn ready_until(&self) -> Instant {
        (Instant::now() + READY_TIMEOUT).min(self.deadline)
    }

    fn percentiles(&self) -> Option<Percentiles> {
        Percentiles::of(
            &self
                .latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The report of a run, with the readings common to all workloads.
    pub(crate) fn report<F: Figures>(
        &self,
        workload: &'static str,
        figures: F,
        checks: Option<(Checks, Vec<String>)>,
        mut failures: Vec<String>,
        cpu: CpuUse,
    ) -> Report<F> {
        let checks = checks.map(|(checks, more)| {
            failures.extend(more);
            checks
        });
        Report {
            workload,
            ok: failures.is_empty(),
            failures,
            server: self.server.clone(),
            figures,
            latency: checks.as_ref().and_then(|_| self.percentiles()),
            checks,
            cpu,
            bench_total_cpu_s: Process::Me.cpu_secs(),
            bench_rss_kb: Process::Me.rss_kb(),
            server_pid: self.server_pid,
            server_rss_kb: self.server_pid.and_then(|pid| Process::Pid(pid).rss_kb()),
        }
    }
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

/// Runs one workload against the hub at `server` and prints its report (a
/// table, or with `json` one JSON object on stdout).
///
/// # Errors
///
/// A [`SetupError`] when the run could not start or go on (the `chinwag`
/// program exits with status 2); a failed check is not an error but a
/// [`Verdict::Failed`].
pub async fn run(server: &str, json: bool, args: BenchArgs) -> Result<Verdict, SetupError> {
    raise_fd_limit();
    let addr = resolve(server).await?;
    if let Some(pid) = args.server_pid {
        if Process::Pid(pid).cpu_secs().is_none() {
            return Err(SetupError::Usage(format!(
                "--server-pid {pid}: no such process to read in /proc"
            )));
        }
    }
    let hard = Duration::from_secs(args.timeout);
    let latencies = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
        .map_err(|error| SetupError::Task(error.to_string()))?;
    let ctx = Ctx {
        addr,
        server: server.to_owned(),
        server_pid: args.server_pid,
        clock: Clock::start(),
        deadline: Instant::now() + hard.mul_f64(0.9),
        stop: CancellationToken::new(),
        latencies: Arc::new(Mutex::new(latencies)),
        bars: !json,
    };
    let work = async {
        Ok::<_, SetupError>(match &args.workload {
            Workload::Fanout(w) => emit(&fanout::run(&ctx, w).await?, json)?,
            Workload::Direct(w) => emit(&direct::run(&ctx, w).await?, json)?,
            Workload::Latency(w) => emit(&latency::run(&ctx, w).await?, json)?,
            Workload::Conns(w) => emit(&conns::run(&ctx, w).await?, json)?,
        })
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

/// How waiting for the deliveries ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Every message and ack arrived.
    Complete,
    /// A connection ended.
    Cut,
    /// Nothing arrived for [`IDLE_TIMEOUT`].
    Idle,
    /// The run's deadline passed.
    Deadline,
}

impl Wait {
    /// Why the run failed, if it ended this way.
    pub(crate) fn failure(self) -> Option<String> {
        match self {
            Self::Complete | Self::Cut => None,
            Self::Idle => Some(format!(
                "nothing arrived for {} s; gave up waiting",
                IDLE_TIMEOUT.as_secs()
            )),
            Self::Deadline => {
                Some("the deadline (0.9 × --timeout) passed before everything arrived".to_owned())
            }
        }
    }
}

/// Waits until `deliveries` data messages and `acks` acks have arrived over
/// `peers`, a connection ends, nothing arrives for a while, or the deadline.
pub(crate) async fn wait_for(
    ctx: &Ctx,
    peers: &[Peer],
    deliveries: u64,
    acks: u64,
    bar: &mut Bar,
) -> Wait {
    let mut last_seen = u64::MAX;
    let mut last_change = Instant::now();
    loop {
        let delivered: u64 = peers
            .iter()
            .map(|p| p.progress.delivered.load(Relaxed))
            .sum();
        let acked: u64 = peers.iter().map(|p| p.progress.acks.load(Relaxed)).sum();
        bar.set(delivered);
        if delivered >= deliveries && acked >= acks {
            return Wait::Complete;
        }
        if peers.iter().any(Peer::ended) {
            return Wait::Cut;
        }
        let now = Instant::now();
        if delivered + acked != last_seen {
            last_seen = delivered + acked;
            last_change = now;
        } else if now.duration_since(last_change) > IDLE_TIMEOUT {
            return Wait::Idle;
        }
        if now >= ctx.deadline {
            return Wait::Deadline;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// How many of `peers` have seen a warm-up message.
pub(crate) fn count_ready(peers: &[Peer]) -> usize {
    peers
        .iter()
        .filter(|p| p.progress.ready.load(Relaxed))
        .count()
}

/// Stops every receiver and collects what each counted.
pub(crate) async fn collect(ctx: &Ctx, peers: &mut [Peer]) -> Vec<Tally> {
    ctx.stop.cancel();
    futures::future::join_all(peers.iter_mut().map(Peer::tally)).await
}

/// The latest delivery over `peers`, in [`Clock`] nanoseconds.
pub(crate) fn last_delivery_ns(peers: &[Peer]) -> u64 {
    peers
        .iter()
        .map(|p| p.progress.last_ns.load(Relaxed))
        .max()
        .unwrap_or(0)
}

/// Seconds from `t0_ns` to `end_ns`, if there is such a span.
pub(crate) fn span_s(t0_ns: u64, end_ns: u64) -> Option<f64> {
    (end_ns > t0_ns).then(|| float(end_ns - t0_ns) / 1e9)
}

/// A count as a float, for rates and means: exact up to 2^53, far beyond
/// any count or nanosecond span of a run.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn float(n: u64) -> f64 {
    n as f64
}

/// A float rounded toward zero to a count; negative and NaN give 0 and
/// overflow saturates, as `as` defines.
#[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
pub(crate) fn whole(x: f64) -> u64 {
    x as u64
}

/// The failure of a warm-up that did not reach every receiver.
pub(crate) fn not_ready(ready: usize, receivers: usize) -> Option<String> {
    (ready < receivers).then(|| {
        format!(
            "only {ready} of {receivers} receivers saw a warm-up message within {} s",
            READY_TIMEOUT.as_secs()
        )
    })
}
