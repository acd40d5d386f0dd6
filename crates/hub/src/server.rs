//! The accept loop, over any [`Listener`], and the way in for a connection
//! accepted elsewhere; both admit a connection under the hub's limits and
//! spawn its task.

use std::io;
use std::time::Duration;

use chinwag_protocol::Code;
use tracing::{info, warn};

use crate::admission::Peer;
use crate::front::Front;
use crate::listener::{Listener, Transport};
use crate::{Hub, HubError};

impl Hub {
    /// Accepts binary-protocol connections on `listener` until shutdown
    /// begins, serving each in a task of its own. A hub can serve several
    /// listeners at once.
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
    pub async fn serve<L: Listener>(&self, listener: L) -> io::Result<()> {
        self.serve_front(listener, Front::Binary).await
    }

    /// Accepts plain-text connections on `listener` until shutdown begins:
    /// newline-delimited UTF-8 whose first line is the nickname and whose
    /// other lines use the `@nick text` syntax, so that `nc` or `telnet` is a
    /// working client. Text users share the registry with everyone else.
    ///
    /// # Errors
    /// As [`serve`](Self::serve).
    pub async fn serve_text<L: Listener>(&self, listener: L) -> io::Result<()> {
        self.serve_front(listener, Front::Text).await
    }

    /// Accepts connections that speak `front` on `listener` until shutdown
    /// begins; [`serve`](Self::serve) and [`serve_text`](Self::serve_text)
    /// are this with each front end.
    ///
    /// # Errors
    /// As [`serve`](Self::serve).
    pub async fn serve_front<L: Listener>(&self, mut listener: L, front: Front) -> io::Result<()> {
        let shutdown = &self.shared.shutdown;
        info!(addr = ?listener.local_addr()?, ?front, "listening");
        let mut backoff = Duration::from_millis(10);
        // One descriptor held in reserve: when accept fails for want of
        // descriptors, it is let go for a moment, so that the connection
        // waiting can be accepted, told SERVER_FULL and closed, rather than
        // left hanging in the backlog.
        let mut reserve = reserve_descriptor();
        loop {
            let accepted = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((io, peer)) => {
                    backoff = Duration::from_millis(10);
                    // Refused or closing: said and logged where it happens.
                    let _ = self.serve_connection(io, peer, front);
                }
                Err(error) if out_of_descriptors(&error) && reserve.is_some() => {
                    drop(reserve.take());
                    let accepted = tokio::select! {
                        biased;
                        () = shutdown.cancelled() => return Ok(()),
                        accepted = listener.accept() => accepted,
                    };
                    if let Ok((io, peer)) = accepted {
                        if let Some(held) = self.shared.counters.gate.pass() {
                            warn!(
                                ?peer,
                                lines_held_back = held,
                                "out of file descriptors; refusing connection"
                            );
                        }
                        self.shared.counters.record(Code::SERVER_FULL);
                        // Closed at once (no linger), so that the reserve
                        // can be taken again.
                        let _ = tokio::time::timeout(OUT_OF_FILES_WRITE, front.refuse_at_once(io))
                            .await;
                    }
                    reserve = reserve_descriptor();
                }
                Err(error) => {
                    warn!(%error, ?backoff, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Serves a connection accepted elsewhere (by an embedder's own
    /// listener, a TLS acceptor, an in-memory pipe wrapped in
    /// [`Split`](crate::Split)) as if the hub had accepted it: under the same
    /// limits, in a task of its own that [`shutdown`](Self::shutdown) waits
    /// for. Returns at once. `peer` names it in the logs. A TCP stream is
    /// best handed over with `TCP_NODELAY` set, as the hub's own accept
    /// loop sets it: the writers coalesce frames themselves.
    ///
    /// # Errors
    /// [`HubError::Refused`] with `SERVER_FULL` when the hub is at its
    /// connection limit: the peer has been told so (in its front end's
    /// words) and the connection is being closed. [`HubError::Closed`] once
    /// shutdown has begun: the connection is dropped.
    pub fn serve_connection<T: Transport>(
        &self,
        io: T,
        peer: impl Peer,
        front: Front,
    ) -> Result<(), HubError> {
        let shared = &self.shared;
        if shared.shutdown.is_cancelled() {
            return Err(HubError::Closed);
        }
        // Limits per source address first: an address over them is refused
        // before it takes anything shared.
        let ticket = match shared.admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                shared.counters.record_refusal(refusal);
                shared.tracker.spawn(front.refuse(io));
                return Err(HubError::Refused(Code::SERVER_FULL));
            }
        };
        // New connections wait for HELLO in a pool of their own. When the
        // registered pool is full, the newcomer is refused at once.
        if shared.connections.available_permits() > 0 {
            if let Ok(slot) = shared.unregistered.clone().try_acquire_owned() {
                front.spawn(self, io, peer, slot, ticket);
                return Ok(());
            }
            // The unregistered pool is full: the one shed gives its place
            // back as its task ends, and the newcomer waits a moment for
            // it. With none to shed (every place is held by one trying to
            // register, or changing hands), it waits all the same, and is
            // refused if none comes free.
            if shared.admission.shed_one() {
                shared.counters.record_shed();
            }
            shared
                .tracker
                .spawn(front.serve_when_room(self.clone(), io, peer, ticket));
            return Ok(());
        }
        if let Some(held) = shared.counters.gate.pass() {
            warn!(
                ?peer,
                lines_held_back = held,
                "server full; refusing connection"
            );
        }
        shared.counters.record(Code::SERVER_FULL);
        shared.tracker.spawn(front.refuse(io));
        Err(HubError::Refused(Code::SERVER_FULL))
    }
}

/// How long the accept loop waits at most to tell a connection it accepted
/// on its reserve descriptor that the server is full.
const OUT_OF_FILES_WRITE: Duration = Duration::from_millis(100);

/// A descriptor to hold in reserve (`None` where there is no `/dev/null`).
fn reserve_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Whether `error` says the process (`EMFILE`) or the system (`ENFILE`) is
/// out of file descriptors.
fn out_of_descriptors(error: &io::Error) -> bool {
    cfg!(unix) && matches!(error.raw_os_error(), Some(23 | 24))
}
