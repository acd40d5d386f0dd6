//! Running under systemd: readiness, status, the watchdog and socket
//! activation (`dist/systemd/`).
//!
//! Every notification goes to `$NOTIFY_SOCKET` and is nothing when it is
//! unset (run by hand, or `Type=simple`), so the daemon calls these
//! unconditionally:
//!
//! - `READY=1` once the store is open and every listener is bound or taken,
//!   with a `STATUS=` saying where it listens;
//! - `WATCHDOG=1` when systemd asked for it (`WatchdogSec=`, which sets
//!   `$WATCHDOG_USEC`), every half period, and only after a round trip
//!   through the hub's actor came back in time: an actor that is wedged
//!   stops the pings, and systemd restarts the daemon. Each ping carries a
//!   `STATUS=` with the users online;
//! - `STOPPING=1` when shutdown begins.
//!
//! Socket activation: listeners that systemd passes (`$LISTEN_FDS`) are
//! used instead of binding. They are told apart by `FileDescriptorName=`:
//! `binary` for the binary protocol, `text` for the plain-text port; an
//! unnamed first descriptor is the binary protocol's. They must be taken
//! before the runtime starts threads (the crate clears `$LISTEN_FDS` and
//! `$LISTEN_PID`, which is only sound while the process has one thread).

use std::time::Duration;

use anyhow::{Context as _, bail};
use chinwag_hub::Hub;
use listenfd::ListenFd;
use sd_notify::NotifyState;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Listeners handed over by systemd.
#[derive(Debug, Default)]
pub(crate) struct Activated {
    /// For the binary protocol (`FileDescriptorName=binary`, or unnamed).
    pub(crate) binary: Option<std::net::TcpListener>,
    /// For the plain-text port (`FileDescriptorName=text`).
    pub(crate) text: Option<std::net::TcpListener>,
}

/// Takes the listeners systemd passed, if any. Call before starting the
/// runtime.
///
/// # Errors
///
/// A descriptor that is not a listening TCP socket, a name it does not
/// know, or two descriptors for one port: a unit file to fix, said in one
/// line.
pub(crate) fn take_listeners() -> anyhow::Result<Activated> {
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    let mut fds = ListenFd::from_env();
    let mut activated = Activated::default();
    let mut names = names.split(':');
    for index in 0..fds.len() {
        let name = names.next().unwrap_or("");
        let listener = fds
            .take_tcp_listener(index)
            .with_context(|| {
                format!("socket {index} from systemd ({name:?}) is not a TCP listener")
            })?
            .with_context(|| format!("socket {index} from systemd ({name:?}) was already taken"))?;
        let slot = match name {
            "binary" => &mut activated.binary,
            "text" => &mut activated.text,
            // `FileDescriptorName=` unset: systemd names it "unknown" (or,
            // from older tools, nothing); the first is the binary protocol's.
            "" | "unknown" if index == 0 => &mut activated.binary,
            other => bail!(
                "socket {index} from systemd is named {other:?}: name it \"binary\" or \"text\" (FileDescriptorName=)"
            ),
        };
        if slot.replace(listener).is_some() {
            bail!("two sockets from systemd are named {name:?}");
        }
    }
    Ok(activated)
}

/// Makes a std listener from systemd into a tokio one.
pub(crate) fn into_tokio(
    listener: std::net::TcpListener,
) -> anyhow::Result<tokio::net::TcpListener> {
    listener
        .set_nonblocking(true)
        .context("cannot make the socket from systemd non-blocking")?;
    tokio::net::TcpListener::from_std(listener).context("cannot use the socket from systemd")
}

/// Sends `states` to systemd, if it is listening; a failure is logged
/// (systemd going away is no reason to stop serving).
fn notify(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        warn!(%error, "could not notify systemd");
    }
}

/// Startup is done: `READY=1`, with `status`.
pub(crate) fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Shutdown has begun: `STOPPING=1`.
pub(crate) fn stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

/// Starts the watchdog's pings if systemd asked for them: every half period,
/// a round trip through the hub's actor (its roster), and `WATCHDOG=1` only
/// when it came back within that half period.
pub(crate) fn watchdog(hub: Hub) -> Option<JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled()?;
    let every = (period / 2).max(Duration::from_millis(10));
    debug!(?period, "systemd watchdog on");
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match tokio::time::timeout(every, hub.roster()).await {
                Ok(Ok(online)) => {
                    let status = format!("{} users online", online.len());
                    notify(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
                }
                // The hub has stopped: shutdown is under way.
                Ok(Err(_)) => return,
                Err(_) => warn!(
                    ?every,
                    "the hub's actor did not answer in time; no watchdog ping"
                ),
            }
        }
    }))
}
