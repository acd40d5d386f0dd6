//! What a run prints: a table for people or one JSON object for programs,
//! and the delivery checks that decide the exit status.
//!
//! The JSON object has `workload`, `ok`, `failures` (one sentence each),
//! `server`, the workload's own figures (see each workload's file), and for
//! the workloads that send messages `expected`, `delivered`, `lost`,
//! `duplicated`, `out_of_order`, `corrupt`, `acks_expected`, `acks`,
//! `bad_acks`, `hub_errors`, `connections_cut` and `latency` (`samples`,
//! `mean_us`, `p50_us`, `p90_us`, `p99_us`, `p999_us`, `max_us`); then `cpu`
//! over the measured window (`wall_s`, `bench_cpu_s`, `bench_cpu_pct`,
//! `server_cpu_s`, `server_cpu_pct`), `bench_total_cpu_s`, `bench_rss_kb`,
//! `server_pid` and `server_rss_kb`. Figures that could not be read are
//! `null`.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cast::{float, whole};
use crate::procstat::CpuUse;
use crate::receiver::Tally;

/// The rows a workload adds to the table.
pub(crate) trait Figures: Serialize {
    /// The table's first line: what was run.
    fn title(&self) -> String;
    /// Label and value of each of the workload's own rows.
    fn rows(&self) -> Vec<(&'static str, String)>;
}

/// The delivery checks, summed over every connection.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct Checks {
    pub(crate) expected: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) out_of_order: u64,
    pub(crate) corrupt: u64,
    pub(crate) acks_expected: u64,
    pub(crate) acks: u64,
    pub(crate) bad_acks: u64,
    pub(crate) hub_errors: u64,
    pub(crate) connections_cut: u64,
}

impl Checks {
    /// Sums the tallies and says, one sentence each, what failed.
    pub(crate) fn from_tallies(
        tallies: &[Tally],
        expected: u64,
        acks_expected: u64,
    ) -> (Self, Vec<String>) {
        let mut checks = Self {
            expected,
            acks_expected,
            ..Self::default()
        };
        for tally in tallies {
            checks.delivered += tally.delivered;
            checks.duplicated += tally.duplicated;
            checks.out_of_order += tally.out_of_order;
            checks.corrupt += tally.corrupt;
            checks.acks += tally.acks;
            checks.bad_acks += tally.bad_acks;
            checks.hub_errors += tally.hub_errors;
            checks.connections_cut += u64::from(tally.cut.is_some());
        }
        checks.lost = expected.saturating_sub(checks.delivered);
        let failures = checks.failures(tallies);
        (checks, failures)
    }

    fn failures(&self, tallies: &[Tally]) -> Vec<String> {
        let mut failures = Vec::new();
        let mut fail = |count: u64, what: String| {
            if count > 0 {
                failures.push(what);
            }
        };
        fail(
            self.lost,
            format!("{} of {} messages lost", self.lost, self.expected),
        );
        fail(
            self.duplicated,
            format!("{} messages duplicated", self.duplicated),
        );
        fail(
            self.out_of_order,
            format!("{} messages out of order", self.out_of_order),
        );
        fail(
            self.corrupt,
            format!("{} messages corrupt or misrouted", self.corrupt),
        );
        let missing = self.acks_expected.saturating_sub(self.acks);
        fail(
            missing,
            format!("{missing} of {} acks missing", self.acks_expected),
        );
        fail(self.bad_acks, format!("{} acks wrong", self.bad_acks));
        fail(
            self.hub_errors,
            format!("{} error frames from the hub", self.hub_errors),
        );
        fail(
            self.connections_cut,
            format!("{} connections ended early", self.connections_cut),
        );
        // Then the first specific problem of each kind, so that the cause is
        // on screen.
        let cut = tallies.iter().find_map(|t| t.cut.clone());
        let first = tallies.iter().find_map(|t| t.first_problem.clone());
        failures.extend(
            cut.into_iter()
                .chain(first)
                .map(|what| format!("first: {what}")),
        );
        failures
    }
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Percentiles {
    pub(crate) samples: u64,
    pub(crate) mean_us: f64,
    pub(crate) p50_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    pub(crate) max_us: f64,
}

impl Percentiles {
    /// From a histogram of nanoseconds; `None` if it is empty.
    pub(crate) fn of(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let us = |ns: u64| float(ns) / 1000.0;
        Some(Self {
            samples: histogram.len(),
            mean_us: histogram.mean() / 1000.0,
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        })
    }
}

/// Everything one run reports.
#[derive(Debug, Serialize)]
pub(crate) struct Report<F> {
    pub(crate) workload: &'static str,
    pub(crate) ok: bool,
    pub(crate) failures: Vec<String>,
    pub(crate) server: String,
    #[serde(flatten)]
    pub(crate) figures: F,
    #[serde(flatten)]
    pub(crate) checks: Option<Checks>,
    pub(crate) latency: Option<Percentiles>,
    pub(crate) cpu: CpuUse,
    pub(crate) bench_total_cpu_s: Option<f64>,
    pub(crate) bench_rss_kb: Option<u64>,
    pub(crate) server_pid: Option<u32>,
    pub(crate) server_rss_kb: Option<u64>,
}

impl<F: Figures> Report<F> {
    /// The JSON object, on one line.
    pub(crate) fn json(&self) -> String {
        // Plain structs of numbers and strings: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The table for people.
    pub(crate) fn table(&self) -> String {
        let mut rows = self.figures.rows();
        if let Some(latency) = &self.latency {
            rows.push((
                "latency",
                format!(
                    "p50 {}  p90 {}  p99 {}  p99.9 {}  max {} µs ({} samples)",
                    micros(latency.p50_us),
                    micros(latency.p90_us),
                    micros(latency.p99_us),
                    micros(latency.p999_us),
                    micros(latency.max_us),
                    count(latency.samples),
                ),
            ));
        }
        if let Some(c) = self
            .checks
            .as_ref()
            .filter(|c| c.expected + c.acks_expected > 0)
        {
            rows.push((
                "delivered",
                format!(
                    "{} of {}: lost {}, duplicated {}, out of order {}, corrupt {}",
                    count(c.delivered),
                    count(c.expected),
                    c.lost,
                    c.duplicated,
                    c.out_of_order,
                    c.corrupt
                ),
            ));
            rows.push((
                "acks",
                format!(
                    "{} of {}, {} wrong",
                    count(c.acks),
                    count(c.acks_expected),
                    c.bad_acks
                ),
            ));
        }
        if let Some(c) = &self.checks {
            rows.push((
                "hub errors",
                format!("{}, connections cut {}", c.hub_errors, c.connections_cut),
            ));
        }
        let cpu = &self.cpu;
        let mut used = format!("bench {}", seconds_pct(cpu.bench_cpu_s, cpu.bench_cpu_pct));
        if self.server_pid.is_some() {
            let _ = write!(
                used,
                ", server {}",
                seconds_pct(cpu.server_cpu_s, cpu.server_cpu_pct)
            );
        }
        let _ = write!(used, " over {:.2} s", cpu.wall_s);
        rows.push(("cpu", used));
        let mut memory = format!("bench {}", kib(self.bench_rss_kb));
        if self.server_pid.is_some() {
            let _ = write!(memory, ", server {}", kib(self.server_rss_kb));
        }
        rows.push(("rss", memory));
        rows.push((
            "result",
            if self.ok {
                "ok".to_owned()
            } else {
                "FAILED".to_owned()
            },
        ));

        let mut out = self.figures.title();
        out.push('\n');
        for (label, value) in rows {
            let _ = writeln!(out, "  {label:<12} {value}");
        }
        for failure in &self.failures {
            let _ = writeln!(out, "  ! {failure}");
        }
        out
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate, rounded, with separators.
pub(crate) fn rate(per_second: f64) -> String {
    if per_second.is_finite() && per_second >= 0.0 {
        count(whole(per_second.round()))
    } else {
        "-".to_owned()
    }
}

pub(crate) fn micros(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.1}")
    } else {
        count(whole(us.round()))
    }
}

fn seconds_pct(secs: Option<f64>, pct: Option<f64>) -> String {
    match (secs, pct) {
        (Some(secs), Some(pct)) => format!("{secs:.2} s ({pct:.0}% of a core)"),
        _ => "unknown".to_owned(),
    }
}

fn kib(kb: Option<u64>) -> String {
    kb.map_or_else(|| "unknown".to_owned(), |kb| format!("{} KiB", count(kb)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(rate(f64::NAN), "-");
    }

    #[test]
    fn failures_name_each_problem_and_the_first_cause() {
        let tallies = [
            Tally {
                delivered: 8,
                acks: 10,
                ..Tally::default()
            },
            Tally {
                delivered: 9,
                duplicated: 1,
                cut: Some("s1: cut by the hub: slow consumer (code 8)".to_owned()),
                first_problem: Some("s1: message 3 arrived twice".to_owned()),
                ..Tally::default()
            },
        ];
        let (checks, failures) = Checks::from_tallies(&tallies, 20, 10);
        assert_eq!(checks.lost, 3);
        assert_eq!(checks.connections_cut, 1);
        assert_eq!(
            failures,
            [
                "3 of 20 messages lost",
                "1 messages duplicated",
                "1 connections ended early",
                "first: s1: cut by the hub: slow consumer (code 8)",
                "first: s1: message 3 arrived twice",
            ]
        );
        let (_, none) = Checks::from_tallies(
            &[Tally {
                delivered: 5,
                ..Tally::default()
            }],
            5,
            0,
        );
        assert!(none.is_empty());
    }
}
