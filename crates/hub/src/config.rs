//! The hub's limits and deadlines.

use std::time::Duration;

use chinwag_protocol::{DEFAULT_MAX_FRAME, MAX_FRAME_UNREGISTERED};

use crate::{AccountPolicy, AddressLimits};

/// Limits and deadlines of a [`Hub`](crate::Hub). `HubConfig::default()` is
/// what `chinwagd` runs with when given no flags.
///
/// `docs/architecture.md` explains how the outbox limits make up the
/// flow-control policy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Registered users at once (TCP, text and in-process). A connection
    /// arriving when all are taken gets a `SERVER_FULL` error and is closed.
    pub max_connections: usize,
    /// Connections that have not completed `HELLO` yet, capped apart from
    /// registered ones so that a crowd of idle or dribbling sockets cannot
    /// lock real users out.
    pub max_unregistered: usize,
    /// Largest frame payload accepted from a registered client, in bytes. The
    /// hub also sends no frame larger than this.
    pub max_frame: usize,
    /// Largest frame payload accepted before `HELLO` has succeeded: small, so
    /// that an anonymous peer cannot make the hub buffer much.
    pub max_frame_unregistered: usize,
    /// How long a connection may take to complete `HELLO`.
    pub registration_timeout: Duration,
    /// How long the bytes of a frame that has started arriving may stop
    /// coming before the connection is closed (`FRAME_TIMEOUT`).
    pub frame_timeout: Duration,
    /// A registered binary client that has sent nothing for this long is
    /// sent a `PING`.
    pub ping_interval: Duration,
    /// Consecutive unanswered `PING`s after which the client is closed
    /// (`PING_TIMEOUT`).
    pub max_missed_pings: u32,
    /// Per-connection flood control on `SEND`; off (`None`) by default.
    pub rate_limit: Option<RateLimit>,
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
    /// Bytes of one connection's messages that may be on their way through
    /// the hub at once (a message larger than this goes alone). Together with
    /// the high-water mark this bounds how far a fast publisher can overshoot
    /// before it is paused. Counted in bytes rather than messages so that a
    /// publisher of small messages keeps the actor fed (16 messages, as this
    /// once was, starved a fan-out to 1,000 down to 5 KiB writes) while one
    /// of 1 MiB messages still cannot overshoot by more than one.
    pub max_in_flight_bytes: usize,
    /// Capacity of the actor's command queue, shared by all connections.
    pub command_queue: usize,
    /// Limits per source address, and who is exempt from them.
    pub addresses: AddressLimits,
    /// Guests or accounts only, open or closed registration, the mailbox's
    /// age limit: what applies when the hub runs with a store
    /// ([`Hub::start_with_storage`](crate::Hub::start_with_storage)).
    pub accounts: AccountPolicy,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_unregistered: 1_000,
            max_frame: DEFAULT_MAX_FRAME,
            max_frame_unregistered: MAX_FRAME_UNREGISTERED,
            registration_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            max_missed_pings: 2,
            rate_limit: None,
            outbox_high_water: 256 * 1024,
            outbox_limit: 16 * 1024 * 1024,
            slow_consumer_deadline: Duration::from_secs(10),
            max_in_flight_bytes: 256 * 1024,
            command_queue: 1024,
            addresses: AddressLimits::default(),
            accounts: AccountPolicy::default(),
        }
    }
}

/// A token bucket on the messages one connection sends: `burst` messages at
/// once, refilled at `per_second`. A message over the limit is refused with
/// `RATE_LIMITED`; a sender that has had more than `per_second × grace`
/// messages refused within one `grace` period is disconnected (`FLOODING`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Messages per second, sustained.
    pub per_second: f64,
    /// Messages that may be sent at once after a quiet spell.
    pub burst: u32,
    /// How long a sender may keep flooding before it is disconnected.
    pub grace: std::time::Duration,
}
