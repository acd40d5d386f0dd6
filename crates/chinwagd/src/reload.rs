//! SIGHUP: the configuration read again, and what can change live changed.
//!
//! The flags, the environment and the file are read again exactly as at
//! start-up (`config.rs`). The log filter (`log`) changes at once; every
//! other setting that changed is logged as waiting for a restart (the hub
//! reads its limits once, when it starts). A configuration that does not
//! load changes nothing, and says why. systemd is told `RELOADING=1` and
//! then `READY=1` around it.

use std::collections::BTreeMap;

use sd_notify::NotifyState;
use tracing::{error, info, warn};

use crate::config;
use crate::logging::{self, FilterHandle};

/// Reloads on every SIGHUP, for as long as the daemon runs.
pub(crate) fn on_sighup(
    filter: FilterHandle,
    mut current: BTreeMap<String, Vec<String>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use anyhow::Context as _;
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let mut states = vec![NotifyState::Reloading];
            states.extend(NotifyState::monotonic_usec_now());
            let _ = sd_notify::notify(&states);
            match reload(&filter, &current) {
                Ok(now) => current = now,
                Err(error) => error!("reload failed, nothing changed: {error:#}"),
            }
            let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status("reloaded")]);
        }
    }))
}

/// Reads the configuration again and applies it; answers the settings now
/// in force.
fn reload(
    filter: &FilterHandle,
    current: &BTreeMap<String, Vec<String>>,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    // The command line is the same as at start-up, so this never exits.
    let loaded = config::load()?;
    let new = loaded.effective().clone();
    if current.get("log") != new.get("log") {
        filter.reload(logging::filter(loaded.args.log.as_deref())?)?;
        info!(filter = ?new.get("log"), "log filter changed");
    }
    for (key, value) in &new {
        if key != "log" && current.get(key) != Some(value) {
            warn!(setting = %key, value = ?value, "changed in the configuration; takes effect at the next restart");
        }
    }
    info!("configuration reloaded");
    Ok(new)
}
