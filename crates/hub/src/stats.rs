//! Counters of limits breached, for logs today and a metrics endpoint later.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chinwag_protocol::Code;

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

#[derive(Debug, Default)]
pub(crate) struct Counters {
    malformed_frames: AtomicU64,
    oversized_frames: AtomicU64,
    stalled_frames: AtomicU64,
    registration_timeouts: AtomicU64,
    ping_timeouts: AtomicU64,
    slow_consumers: AtomicU64,
    rate_limited: AtomicU64,
    flooders: AtomicU64,
    server_full: AtomicU64,
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
            slow_consumers_by_nick: self
                .slow_by_nick
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            // Counted by admission; `Hub::stats` fills them in.
            ..HubStats::default()
        }
    }
}
