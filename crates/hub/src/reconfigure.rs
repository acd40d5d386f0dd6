//! Reconfiguring a running hub ([`Hub::reconfigure`]): the daemon's SIGHUP.
//!
//! Each setting of [`HubConfig`] is one of three kinds:
//!
//! - **live for everyone**: flood control (`rate_limit`, started afresh),
//!   pings (`ping_interval`, `max_missed_pings`), the queue deadline of the
//!   slow-consumer sweep (`slow_consumer_deadline`), the limits per address
//!   (`addresses`), and the account policy (`accounts`: guests,
//!   registration, the mailbox's age limit). A connection takes them at its
//!   next frame; the actor before its next command; the admission at the
//!   next connection.
//! - **live for new connections**: what a connection is built with when it
//!   begins: its registration deadline, its outbox's limits, its in-flight
//!   budget, its stalled-frame deadline and its writer's deadline. Those
//!   already open keep theirs until they reconnect.
//! - **at the next restart**: the limits sized into the process when it
//!   started (`max_connections` and `max_unregistered`, which size the file
//!   descriptor limit and the hub's places; the frame limits, which both
//!   sides of open connections agreed on; the actor's queue). A
//!   reconfiguration keeps their old values, and says which changed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::command::Command;
use crate::{Hub, HubConfig, HubError};

/// What [`Hub::reconfigure`] did, by setting name (as `HubConfig`'s
/// fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconfigured {
    /// Settings that changed and are in force now (for new connections
    /// only, where `reconfigure.rs` says so).
    pub applied: Vec<&'static str>,
    /// Settings that changed but take effect only at the next restart;
    /// their old values stay in force.
    pub at_restart: Vec<&'static str>,
}

impl Hub {
    /// Puts `config` in force as far as a running hub can: see the module's
    /// documentation for which settings change at once, which for new
    /// connections, and which only at a restart (those keep their old
    /// values, and are named in the answer).
    ///
    /// # Errors
    /// [`HubError::Closed`] once the hub has shut down.
    pub async fn reconfigure(&self, mut config: HubConfig) -> Result<Reconfigured, HubError> {
        let current = self.config();
        let mut done = Reconfigured::default();
        keep_at_restart(&current, &mut config, &mut done.at_restart);
        let live = [
            (
                "registration_timeout",
                config.registration_timeout != current.registration_timeout,
            ),
            (
                "frame_timeout",
                config.frame_timeout != current.frame_timeout,
            ),
            (
                "ping_interval",
                config.ping_interval != current.ping_interval,
            ),
            (
                "max_missed_pings",
                config.max_missed_pings != current.max_missed_pings,
            ),
            ("rate_limit", config.rate_limit != current.rate_limit),
            (
                "outbox_high_water",
                config.outbox_high_water != current.outbox_high_water,
            ),
            ("outbox_limit", config.outbox_limit != current.outbox_limit),
            (
                "slow_consumer_deadline",
                config.slow_consumer_deadline != current.slow_consumer_deadline,
            ),
            (
                "max_in_flight_bytes",
                config.max_in_flight_bytes != current.max_in_flight_bytes,
            ),
            ("addresses", config.addresses != current.addresses),
            ("accounts", config.accounts != current.accounts),
        ];
        done.applied = live
            .into_iter()
            .filter_map(|(name, changed)| changed.then_some(name))
            .collect();
        if done.applied.is_empty() {
            return Ok(done);
        }
        let config = Arc::new(config);
        self.command(Command::Reconfigure(config.clone())).await?;
        let shared = &self.shared;
        shared.admission.set_limits(config.addresses.clone());
        *shared
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        shared.generation.fetch_add(1, Ordering::Release);
        Ok(done)
    }
}

/// Puts back in `config` the settings that change only at a restart, naming
/// those that differed.
fn keep_at_restart(current: &HubConfig, config: &mut HubConfig, named: &mut Vec<&'static str>) {
    let mut keep = |name, old: usize, new: &mut usize| {
        if *new != old {
            named.push(name);
            *new = old;
        }
    };
    keep(
        "max_connections",
        current.max_connections,
        &mut config.max_connections,
    );
    keep(
        "max_unregistered",
        current.max_unregistered,
        &mut config.max_unregistered,
    );
    keep("max_frame", current.max_frame, &mut config.max_frame);
    keep(
        "max_frame_unregistered",
        current.max_frame_unregistered,
        &mut config.max_frame_unregistered,
    );
    keep(
        "command_queue",
        current.command_queue,
        &mut config.command_queue,
    );
}
