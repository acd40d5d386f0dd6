//! CPU time and resident memory of this process and of the hub, read from
//! `/proc` as hubload reads them, so that the figures compare.

use std::time::Instant;

use serde::Serialize;

use crate::cast::float;

/// Clock ticks per second of `/proc/PID/stat`'s times. Linux reports them in
/// `USER_HZ`, which is 100 on every architecture it supports for userland
/// (hubload assumes the same).
const TICKS_PER_SECOND: f64 = 100.0;

/// Whose figures to read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Process {
    /// This process.
    Me,
    /// Another process, by id.
    Pid(u32),
}

impl Process {
    fn file(self, name: &str) -> String {
        match self {
            Self::Me => format!("/proc/self/{name}"),
            Self::Pid(pid) => format!("/proc/{pid}/{name}"),
        }
    }

    /// User plus system CPU time so far, in seconds; `None` where `/proc`
    /// cannot tell (not Linux, or the process is gone).
    pub(crate) fn cpu_secs(self) -> Option<f64> {
        let stat = std::fs::read_to_string(self.file("stat")).ok()?;
        parse_cpu_secs(&stat)
    }

    /// Resident set size (`VmRSS`) in KiB.
    pub(crate) fn rss_kb(self) -> Option<u64> {
        let status = std::fs::read_to_string(self.file("status")).ok()?;
        parse_rss_kb(&status)
    }
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name (field
/// 2) is in parentheses and may hold spaces and parentheses itself, so the
/// fields are counted from the last `)`.
fn parse_cpu_secs(stat: &str) -> Option<f64> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    // The first field after the name is field 3 (state); utime is 14, stime 15.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(float(utime + stime) / TICKS_PER_SECOND)
}

/// The `VmRSS:` line of `/proc/PID/status`, in KiB.
fn parse_rss_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU used by the bench and the hub over the measured part of a run.
#[derive(Debug)]
pub(crate) struct CpuWindow {
    started: Instant,
    me: Option<f64>,
    server: Option<(u32, f64)>,
}

/// What a [`CpuWindow`] measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CpuUse {
    pub(crate) wall_s: f64,
    pub(crate) bench_cpu_s: Option<f64>,
    /// Percent of one core.
    pub(crate) bench_cpu_pct: Option<f64>,
    pub(crate) server_cpu_s: Option<f64>,
    /// Percent of one core.
    pub(crate) server_cpu_pct: Option<f64>,
}

impl CpuWindow {
    pub(crate) fn start(server_pid: Option<u32>) -> Self {
        Self {
            started: Instant::now(),
            me: Process::Me.cpu_secs(),
            server: server_pid.and_then(|pid| Some((pid, Process::Pid(pid).cpu_secs()?))),
        }
    }

    pub(crate) fn end(&self) -> CpuUse {
        let wall_s = self.started.elapsed().as_secs_f64();
        let me = Process::Me
            .cpu_secs()
            .zip(self.me)
            .map(|(now, then)| now - then);
        let server = self
            .server
            .and_then(|(pid, then)| Some(Process::Pid(pid).cpu_secs()? - then));
        let pct = |secs: f64| 100.0 * secs / wall_s;
        CpuUse {
            wall_s,
            bench_cpu_s: me,
            bench_cpu_pct: me.map(pct),
            server_cpu_s: server,
            server_cpu_pct: server.map(pct),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fields_are_counted_after_the_name() {
        let stat = "4242 (odd) name)) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 3 0";
        assert_eq!(parse_cpu_secs(stat), Some(4.0));
        assert_eq!(parse_cpu_secs("garbage"), None);
    }

    #[test]
    fn rss_is_read_from_its_line() {
        let status = "Name:\tchinwagd\nVmPeak:\t  9000 kB\nVmRSS:\t  5120 kB\n";
        assert_eq!(parse_rss_kb(status), Some(5120));
        assert_eq!(parse_rss_kb("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_can_be_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(Process::Me.cpu_secs().is_some());
            assert!(Process::Me.rss_kb().is_some_and(|kb| kb > 0));
        }
    }
}
