//! The bench's clock, which stamps every message and every delivery, and
//! the spans of a run measured with it.

use std::time::Instant;

use crate::cast::float;

/// Nanoseconds since one instant shared by every task of the bench, so that
/// a receiver can subtract a sender's timestamp from its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base: Instant,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Self {
            base: Instant::now(),
        }
    }

    pub(crate) fn now_ns(self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant of reading `ns` (a time to sleep until).
    pub(crate) fn at(self, ns: u64) -> Instant {
        self.base + std::time::Duration::from_nanos(ns)
    }
}

/// Seconds from `t0_ns` to `end_ns` (both [`Clock::now_ns`] readings), if
/// there is such a span.
pub(crate) fn span_s(t0_ns: u64, end_ns: u64) -> Option<f64> {
    (end_ns > t0_ns).then(|| float(end_ns - t0_ns) / 1e9)
}
