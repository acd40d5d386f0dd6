//! The TCP front end: accepts connections and spawns a task for each.

use std::io;
use std::time::Duration;

use chinwag_protocol::Code;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::{Hub, connection, text};

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy)]
enum Front {
    Binary,
    Text,
}

impl Hub {
    /// Accepts connections on `listener` until shutdown begins, serving each
    /// in a task of its own. A hub can serve several listeners at once.
    ///
    /// A connection over [`HubConfig::max_connections`](crate::HubConfig)
    /// gets a `SERVER_FULL` error and is closed. A failed `accept` (for
    /// example when the process is out of file descriptors) is logged and
    /// retried after a pause that doubles up to one second, instead of
    /// spinning.
    ///
    /// # Errors
    /// Only if the listener's local address cannot be read; accept errors are
    /// retried.
    pub async fn serve(&self, listener: TcpListener) -> io::Result<()> {
        self.accept_loop(listener, Front::Binary).await
    }

    /// Accepts plain-text connections on `listener` until shutdown begins:
    /// newline-delimited UTF-8 whose first line is the nickname and whose
    /// other lines use the `@nick text` syntax, so that `nc` or `telnet` is a
    /// working client. Text users share the registry with everyone else.
    ///
    /// # Errors
    /// As [`serve`](Self::serve).
    pub async fn serve_text(&self, listener: TcpListener) -> io::Result<()> {
        self.accept_loop(listener, Front::Text).await
    }

    async fn accept_loop(&self, listener: TcpListener, front: Front) -> io::Result<()> {
        let shared = &self.shared;
        info!(addr = %listener.local_addr()?, ?front, "listening");
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                biased;
                () = shared.shutdown.cancelled() => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(10);
                    accepted
                }
                Err(error) => {
                    warn!(%error, ?backoff, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            // New connections wait for HELLO in a pool of their own; they
            // are refused at once when that pool, or the registered one, is full.
            let slot = if shared.connections.available_permits() > 0 {
                shared.unregistered.clone().try_acquire_owned().ok()
            } else {
                None
            };
            if let Some(slot) = slot {
                let hub = self.clone();
                match front {
                    Front::Binary => shared
                        .tracker
                        .spawn(connection::serve(hub, stream, peer, slot)),
                    Front::Text => shared.tracker.spawn(text::serve(hub, stream, peer, slot)),
                };
            } else {
                warn!(%peer, "server full; refusing connection");
                shared.counters.record(Code::SERVER_FULL);
                match front {
                    Front::Binary => shared
                        .tracker
                        .spawn(connection::refuse(stream, Code::SERVER_FULL)),
                    Front::Text => shared
                        .tracker
                        .spawn(connection::refuse_with(stream, b"! error: server full\n")),
                };
            }
        }
    }
}
