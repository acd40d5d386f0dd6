//! The hub's limits and deadlines.

use std::time::Duration;

use chinwag_protocol::DEFAULT_MAX_FRAME;

/// Limits and deadlines of a [`Hub`](crate::Hub). `HubConfig::default()` is
/// what `chinwagd` runs with when given no flags.
///
/// `docs/architecture.md` explains how the outbox limits make up the
/// flow-control policy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Connections served at once (TCP and in-process). The one over the cap
    /// gets a `SERVER_FULL` error and is closed.
    pub max_connections: usize,
    /// Largest frame payload accepted from a registered client, in bytes. The
    /// hub also sends no frame larger than this.
    pub max_frame: usize,
    /// Largest frame payload accepted before `HELLO` has succeeded: small, so
    /// that an anonymous peer cannot make the hub buffer much.
    pub max_frame_unregistered: usize,
    /// How long a connection may take to complete `HELLO`.
    pub registration_timeout: Duration,
    /// Bytes queued for one connection above which the hub stops reading from
    /// the publishers that keep filling it, until it drains to half of this.
    pub outbox_high_water: usize,
    /// Bytes queued for one connection beyond which it is cut at once as a slow
    /// consumer. Bounds the memory one stuck reader can pin.
    pub outbox_limit: usize,
    /// How long a connection's queue may stay above the high-water mark, or a
    /// single socket write may make no progress, before it is cut as a slow
    /// consumer.
    pub slow_consumer_deadline: Duration,
    /// Messages one connection may have on their way through the hub at once.
    /// Together with the high-water mark this bounds how far a fast publisher
    /// can overshoot before it is paused.
    pub max_in_flight: usize,
    /// Capacity of the actor's command queue, shared by all connections.
    pub command_queue: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_frame: DEFAULT_MAX_FRAME,
            max_frame_unregistered: 16 * 1024,
            registration_timeout: Duration::from_secs(5),
            outbox_high_water: 256 * 1024,
            outbox_limit: 16 * 1024 * 1024,
            slow_consumer_deadline: Duration::from_secs(10),
            max_in_flight: 16,
            command_queue: 1024,
        }
    }
}
