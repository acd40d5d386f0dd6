//! Counters of limits breached, for logs today and a metrics endpoint later.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chinwag_protocol::Code;
use tracing::warn;

use crate::admission::Refusal;

/// How many distinct nicknames the per-nickname slow-consumer counts keep;
/// past this, new nicknames are counted only in the total.
const MAX_NICKS_COUNTED: usize = 10_000;

/// A snapshot of [`Hub::stats`](crate::Hub::stats): how often each limit was
/// hit since the hub started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Connections closed for a malformed frame.
    pub malformed_frames: u64,
    /// Connections closed for a frame over the size limit.
    pub oversized_frames: u64,
    /// Connections closed for a frame that stopped arriving midway.
    pub stalled_frames: u64,
    /// Connections closed for not completing `HELLO` in time.
    pub registration_timeouts: u64,
    /// Connections closed for unanswered pings.
    pub ping_timeouts: u64,
    /// Connections cut as slow consumers.
    pub slow_consumers: u64,
    /// Messages refused by flood control.
    pub rate_limited: u64,
    /// Connections closed for flooding.
    pub flooders: u64,
    /// Connections refused because the hub was full.
    pub server_full: u64,
    /// Connections refused because their address opened new ones too fast.
    pub address_rate_refusals: u64,
    /// Connections refused because their address held as many unregistered
    /// ones as it may.
    pub address_unregistered_refusals: u64,
    /// `HELLO`s refused because their address held as many registered
    /// connections as it may.
    pub address_registered_refusals: u64,
    /// Unregistered connections closed to make room for a newcomer.
    pub shed_unregistered: u64,
    /// Slow-consumer disconnects per nickname.
    pub slow_consumers_by_nick: HashMap<String, u64>,
}

/// Lets log lines through, at most `per_second` in any one second, and
/// counts the others, so that an attack (a crowd cut at a deadline, refused,
/// or sending garbage) cannot turn the log into a disk-filling one.
/// `HubStats` counts every event; the log says what happens, and how much it
/// left unsaid.
#[derive(Debug)]
pub(crate) struct LogGate {
    per_second: u64,
    /// When the current second began, lines let through in it, and lines
    /// held back since the last one let through.
    state: Mutex<(Option<tokio::time::Instant>, u64, u64)>,
}

impl Default for LogGate {
    /// One line a second: for warnings, each of which stands for a crowd.
    fn default() -> Self {
        Self::per_second(1)
    }
}

impl LogGate {
    pub(crate) fn per_second(per_second: u64) -> Self {
        Self {
            per_second: per_second.max(1),
            state: Mutex::new((None, 0, 0)),
        }
    }

    /// `Some(lines held back since the last one)` if a line may be logged
    /// now, `None` if it must be held back.
    pub(crate) fn pass(&self) -> Option<u64> {
        let now = tokio::time::Instant::now();
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (second, passed, held) = &mut *state;
        let current =
            second.is_some_and(|start| now.saturating_duration_since(start).as_secs() < 1);
        if !current {
            *second = Some(now);
            *passed = 0;
        }
        if *passed >= self.per_second {
            *held += 1;
            return None;
        }
        *passed += 1;
        Some(std::mem::take(held))
    }
}

/// The gate of the `info` lines about comings and goings: twenty a second,
/// enough for an operator to follow a busy hub's ordinary traffic, bounded
/// under attack.
#[derive(Debug)]
pub(crate) struct Notices(LogGate);

impl Default for Notices {
    fn default() -> Self {
        Self(LogGate::per_second(20))
    }
}

impl Notices {
    /// As [`LogGate::pass`].
    pub(crate) fn pass(&self) -> Option<u64> {
        self.0.pass()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Gates the per-connection lines about connections closed or refused.
    pub(crate) gate: LogGate,
    /// Gates the `info` lines an operator reads to follow who comes and
    /// goes: nicknames and logins refused, disconnections.
    pub(crate) notices: Notices,
    malformed_frames: AtomicU64,
    oversized_frames: AtomicU64,
    stalled_frames: AtomicU64,
    registration_timeouts: AtomicU64,
    ping_timeouts: AtomicU64,
    slow_consumers: AtomicU64,
    rate_limited: AtomicU64,
    flooders: AtomicU64,
    server_full: AtomicU64,
    address_rate_refusals: AtomicU64,
    address_unregistered_refusals: AtomicU64,
    address_registered_refusals: AtomicU64,
    shed_unregistered: AtomicU64,
    slow_by_nick: Mutex<HashMap<String, u64>>,
}

impl Counters {
    /// Counts a connection closed with `code` (or a message refused with
    /// `RATE_LIMITED`). Codes that are not breaches are ignored.
    pub(crate) fn record(&self, code: Code) {
        let counter = match code {
            Code::MALFORMED_FRAME => &self.malformed_frames,
            Code::FRAME_TOO_LARGE => &self.oversized_frames,
            Code::FRAME_TIMEOUT => &self.stalled_frames,
            Code::REGISTRATION_TIMEOUT => &self.registration_timeouts,
            Code::PING_TIMEOUT => &self.ping_timeouts,
            Code::SLOW_CONSUMER => &self.slow_consumers,
            Code::RATE_LIMITED => &self.rate_limited,
            Code::FLOODING => &self.flooders,
            Code::SERVER_FULL => &self.server_full,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection admission turned away, and logs it through the
    /// gate.
    pub(crate) fn record_refusal(&self, refusal: Refusal) {
        let counter = match refusal {
            Refusal::Rate => &self.address_rate_refusals,
            Refusal::Unregistered => &self.address_unregistered_refusals,
            Refusal::Registered => &self.address_registered_refusals,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.log_admission(refusal.as_str());
    }

    /// Counts an unregistered connection shed to make room, and logs it
    /// through the gate.
    pub(crate) fn record_shed(&self) {
        self.shed_unregistered.fetch_add(1, Ordering::Relaxed);
        self.log_admission("shed an unregistered connection to make room");
    }

    fn log_admission(&self, what: &str) {
        if let Some(held) = self.gate.pass() {
            warn!(
                lines_held_back = held,
                "admission: {what} (logged at most once a second; HubStats counts every one)"
            );
        }
    }

    pub(crate) fn record_slow_consumer(&self, nick: Option<&str>) {
        self.record(Code::SLOW_CONSUMER);
        let Some(nick) = nick else { return };
        let mut by_nick = self
            .slow_by_nick
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if by_nick.len() < MAX_NICKS_COUNTED || by_nick.contains_key(nick) {
            *by_nick.entry(nick.to_owned()).or_default() += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> HubStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        HubStats {
            malformed_frames: get(&self.malformed_frames),
            oversized_frames: get(&self.oversized_frames),
            stalled_frames: get(&self.stalled_frames),
            registration_timeouts: get(&self.registration_timeouts),
            ping_timeouts: get(&self.ping_timeouts),
            slow_consumers: get(&self.slow_consumers),
            rate_limited: get(&self.rate_limited),
            flooders: get(&self.flooders),
            server_full: get(&self.server_full),
            address_rate_refusals: get(&self.address_rate_refusals),
            address_unregistered_refusals: get(&self.address_unregistered_refusals),
            address_registered_refusals: get(&self.address_registered_refusals),
            shed_unregistered: get(&self.shed_unregistered),
            slow_consumers_by_nick: self
                .slow_by_nick
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_gate_lets_a_line_through_a_second_and_counts_the_rest() {
        let gate = LogGate::default();
        assert_eq!(gate.pass(), Some(0));
        for _ in 0..3 {
            assert_eq!(gate.pass(), None);
        }
        tokio::time::advance(std::time::Duration::from_millis(999)).await;
        assert_eq!(gate.pass(), None);
        tokio::time::advance(std::time::Duration::from_millis(1)).await;
        assert_eq!(gate.pass(), Some(4));
        assert_eq!(gate.pass(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_notices_gate_lets_a_burst_through_each_second() {
        let gate = LogGate::per_second(3);
        assert_eq!([gate.pass(), gate.pass(), gate.pass()], [Some(0); 3]);
        assert_eq!(gate.pass(), None);
        assert_eq!(gate.pass(), None);
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert_eq!(gate.pass(), Some(2));
        assert_eq!(gate.pass(), Some(0));
    }
}
