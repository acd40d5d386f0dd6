//! SIGHUP: the configuration read again, and what can change live changed.
//!
//! The flags, the environment and the file are read again exactly as at
//! start-up (`config.rs`). The log filter (`log`) changes at once; the
//! hub's limits, flood control, per-address limits and account policy go to
//! [`Hub::reconfigure`] (`crates/hub/src/reconfigure.rs` says which take
//! effect for everyone and which for new connections); every other setting
//! that changed (addresses to listen on, the data directory, the mailbox
//! quotas, the limits sized into the process) is logged as waiting for a
//! restart, and again at every reload until then. A configuration that does
//! not load changes nothing, and says why. The TLS certificate and key
//! (`tls-cert`, `tls-key`) are read again at every reload, changed or not
//! (a renewal rewrites the same files): the next handshake presents them,
//! connections already open keep theirs, and a pair that does not load
//! leaves the one in force and says why. systemd is told `RELOADING=1`
//! and then `READY=1` around it.

use std::collections::BTreeMap;

use chinwag_hub::{Hub, TlsAcceptor};
use sd_notify::NotifyState;
use tracing::{error, info, warn};

use crate::config;
use crate::logging::{self, FilterHandle};

/// The settings a running hub takes ([`Hub::reconfigure`]), by their keys.
const LIVE: &[&str] = &[
    "registration-timeout",
    "frame-timeout",
    "ping-interval",
    "max-missed-pings",
    "max-in-flight-bytes",
    "outbox-high-water",
    "outbox-limit",
    "slow-consumer-deadline",
    "max-unregistered-per-address",
    "max-connections-per-address",
    "connect-rate",
    "connect-burst",
    "ipv6-prefix",
    "exempt",
    "rate-limit",
    "rate-burst",
    "flood-grace",
    "require-accounts",
    "registration",
    "mailbox-max-age",
];

/// The settings of the TLS certificate: in force at a reload if the pair
/// they name loads (and a TLS listener is serving), else still the old.
const TLS_KEYS: &[&str] = &["tls-cert", "tls-key"];

/// Reads the certificate and key that `args` name into `tls`, logging
/// what became of it; whether they are in force now.
fn reload_certificate(tls: &TlsAcceptor, args: &crate::Args) -> bool {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        error!("TLS certificate not reloaded, the old one stays: tls-cert and tls-key are needed");
        return false;
    };
    match tls.reload(cert, key) {
        Ok(()) => {
            info!(cert = %cert.display(), "TLS certificate reloaded; new handshakes present it");
            true
        }
        Err(error) => {
            error!("TLS certificate not reloaded, the old one stays: {error}");
            false
        }
    }
}

/// Reloads on every SIGHUP, for as long as the daemon runs.
pub(crate) fn on_sighup(
    filter: FilterHandle,
    mut current: BTreeMap<String, Vec<String>>,
    hub: Hub,
    tls: Option<TlsAcceptor>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use anyhow::Context as _;
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let mut states = vec![NotifyState::Reloading];
            states.extend(NotifyState::monotonic_usec_now());
            let _ = sd_notify::notify(&states);
            match reload(&filter, &current, &hub, tls.as_ref()).await {
                Ok(now) => current = now,
                Err(error) => error!("reload failed, nothing changed: {error:#}"),
            }
            let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status("reloaded")]);
        }
    }))
}

/// Reads the configuration again and applies what can change live;
/// answers the settings now in force (those waiting for a restart keep
/// their old values, so the next reload names them again).
async fn reload(
    filter: &FilterHandle,
    current: &BTreeMap<String, Vec<String>>,
    hub: &Hub,
    tls: Option<&TlsAcceptor>,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    // The command line is the same as at start-up, so this never exits.
    let loaded = config::load()?;
    let new = loaded.effective().clone();
    if current.get("log") != new.get("log") {
        filter.reload(logging::filter(loaded.args.log.as_deref())?)?;
        info!(filter = ?new.get("log"), "log filter changed");
    }
    let reconfigured = hub.reconfigure(crate::hub_config(&loaded.args)).await?;
    let mut in_force = current.clone();
    let certificate = tls.map(|tls| reload_certificate(tls, &loaded.args));
    for (key, value) in &new {
        if current.get(key) == Some(value) {
            continue;
        }
        let tls_key = TLS_KEYS.contains(&key.as_str());
        if tls_key && certificate == Some(false) {
            continue;
        }
        if key == "log" || LIVE.contains(&key.as_str()) || (tls_key && certificate.is_some()) {
            in_force.insert(key.clone(), value.clone());
            if key != "log" {
                info!(setting = %key, value = ?value, "changed in the configuration; in force now");
            }
        } else {
            warn!(setting = %key, value = ?value, "changed in the configuration; takes effect at the next restart");
        }
    }
    info!(
        hub_settings = ?reconfigured.applied,
        "configuration reloaded"
    );
    Ok(in_force)
}
