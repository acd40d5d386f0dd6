//! What a store tells its operator: how long its commits take, whether it
//! can still write, and how large it has grown (the admin endpoint's
//! `/metrics` and `/readyz`).

use std::time::Duration;

/// The upper bounds of [`Latencies`]' buckets, in microseconds: from 10 µs
/// (a commit the page cache absorbed, a batch routed at once) to 10 s (a
/// disk that has stopped answering). Past the last, a sample counts only
/// in the total.
pub const LATENCY_BOUNDS_US: [u64; 18] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 10_000_000,
];

/// A histogram of durations in fixed buckets ([`LATENCY_BOUNDS_US`]), the
/// shape Prometheus scrapes: recording is a few comparisons and an add, so
/// a hot loop can afford it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latencies {
    /// Samples at or under each bound (not cumulative: each counts once,
    /// in the first bucket that holds it).
    pub buckets: [u64; LATENCY_BOUNDS_US.len()],
    /// Every sample, those past the last bound included.
    pub count: u64,
    /// The samples' sum, in microseconds.
    pub sum_us: u64,
}

impl Latencies {
    /// Counts one sample.
    pub fn record(&mut self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = LATENCY_BOUNDS_US.iter().position(|&bound| us <= bound) {
            self.buckets[bucket] += 1;
        }
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }
}

/// A store's figures at one moment ([`MailStore::stats`](crate::MailStore::stats)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Bytes the store takes on disk (the database and its write-ahead
    /// log), if the backend knows.
    pub disk_bytes: Option<u64>,
    /// How long each group commit took, fsync included.
    pub commits: Latencies,
    /// Group commits that failed and were rolled back (a full disk, an I/O
    /// error): every write in them was answered with the error.
    pub failed_commits: u64,
    /// Whether the last commit succeeded (true before the first): false
    /// while the store cannot write, which takes the hub out of `/readyz`.
    pub writable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_that_holds_them_and_add_up() {
        let mut latencies = Latencies::default();
        for us in [5, 10, 11, 700, 20_000_000] {
            latencies.record(Duration::from_micros(us));
        }
        assert_eq!(latencies.count, 5);
        assert_eq!(latencies.sum_us, 5 + 10 + 11 + 700 + 20_000_000);
        // 5 and 10 in the first bucket (at most 10 µs), 11 in the second,
        // 700 under 1 ms; 20 s past the last bound, in the count only.
        assert_eq!(latencies.buckets[..7], [2, 1, 0, 0, 0, 0, 1]);
        assert_eq!(latencies.buckets.iter().sum::<u64>(), 4);
    }
}
