//! The bench's error: why a run could not start or go on. A failed check is
//! not one of these: it is in the report, and the run's verdict is `Failed`.

use std::io;
use std::net::SocketAddr;

/// Why a run could not start or go on: a usage or connection problem, not a
/// failed check (those are in the report).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The server address does not resolve.
    #[error("cannot resolve {server}")]
    Resolve {
        /// The address as given.
        server: String,
        /// Why it did not resolve.
        #[source]
        source: io::Error,
    },
    /// Flags that cannot work together, or with this hub.
    #[error("{0}")]
    Usage(String),
    /// A TCP connection could not be opened.
    #[error("cannot connect to {addr} as {nick}")]
    Connect {
        /// The hub's address.
        addr: SocketAddr,
        /// The nickname the connection was for.
        nick: String,
        /// Why it could not be opened.
        #[source]
        source: io::Error,
    },
    /// The hub answered `HELLO` with an error.
    #[error("the hub refused {nick}: {message} (code {code})")]
    Refused {
        /// The nickname refused.
        nick: String,
        /// The `ERROR` frame's code.
        code: u16,
        /// The `ERROR` frame's message.
        message: String,
    },
    /// Registration went wrong otherwise.
    #[error("registering {nick}: {reason}")]
    Handshake {
        /// The nickname being registered.
        nick: String,
        /// What went wrong.
        reason: String,
    },
    /// A task of the bench itself failed.
    #[error("bench task failed: {0}")]
    Task(String),
}
