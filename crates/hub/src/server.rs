//! The TCP front end: accepts connections and spawns a task for each.

use std::io;
use std::time::Duration;

use chinwag_protocol::Code;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::{Hub, connection};

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
        let shared = &self.shared;
        info!(addr = %listener.local_addr()?, "listening");
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
            if let Ok(slot) = shared.connections.clone().try_acquire_owned() {
                let connection = connection::serve(self.clone(), stream, peer, slot);
                shared.tracker.spawn(connection);
            } else {
                warn!(%peer, "server full; refusing connection");
                shared
                    .tracker
                    .spawn(connection::refuse(stream, Code::SERVER_FULL));
            }
        }
    }
}
