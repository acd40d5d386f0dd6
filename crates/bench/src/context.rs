//! What every part of a run shares ([`Ctx`]): the hub's address, the clock,
//! the deadline, the stop signal, the latency histogram; and the report it
//! builds at the end with the readings common to every workload.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

use crate::bar::Bar;
use crate::clock::Clock;
use crate::error::SetupError;
use crate::procstat::{CpuUse, Process};
use crate::report::{Checks, Figures, Percentiles, Report};
use crate::transport::{Connector, Tls};
use crate::ws::Endpoint;

/// Longest wait for every receiver to see a warm-up message.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest latency recorded (60 s), in nanoseconds; slower ones count
/// as 60 s.
pub(crate) const MAX_LATENCY_NS: u64 = 60_000_000_000;

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
    /// TLS to the hub's TLS port, if the run is over TLS.
    pub(crate) tls: Option<Connector>,
    /// The hub's WebSocket endpoint, if the run is over WebSocket (over
    /// TLS too with `tls`).
    pub(crate) ws: Option<Endpoint>,
}

impl Ctx {
    /// The context of a run against the hub at `addr` (`server` as the user
    /// gave it), over TLS with `tls` and over WebSocket with `ws`, whose
    /// clock starts now.
    pub(crate) fn new(
        addr: SocketAddr,
        server: &str,
        server_pid: Option<u32>,
        deadline: Instant,
        bars: bool,
        tls: Option<Tls>,
        ws: bool,
    ) -> Result<Self, SetupError> {
        let ws = ws
            .then(|| Endpoint::new(server, tls.is_some()))
            .transpose()?;
        let tls = tls
            .map(|tls| Connector::new(tls, ws.is_some()))
            .transpose()?;
        let latencies = Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
            .map_err(|error| SetupError::Task(error.to_string()))?;
        Ok(Self {
            addr,
            server: server.to_owned(),
            server_pid,
            clock: Clock::start(),
            deadline,
            stop: CancellationToken::new(),
            latencies: Arc::new(Mutex::new(latencies)),
            bars,
            tls,
            ws,
        })
    }

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
            // Empty (so `None`) for a workload that records none.
            latency: self.percentiles(),
            checks,
            cpu,
            bench_total_cpu_s: Process::Me.cpu_secs(),
            bench_rss_kb: Process::Me.rss_kb(),
            server_pid: self.server_pid,
            server_rss_kb: self.server_pid.and_then(|pid| Process::Pid(pid).rss_kb()),
        }
    }
}
