//! chinwag's hub: the actor that owns the nickname registry and routes every
//! message, the handle other tasks hold, the TCP front end, and in-process
//! sessions.
//!
//! - [`Hub::start`] spawns the actor and returns a cloneable [`Hub`] handle;
//!   [`Hub::start_with_storage`] does so with registered nicknames and
//!   offline mailboxes kept in a [`Storage`] (`docs/durability.md`).
//! - [`Hub::serve`] accepts connections from any [`Listener`] (TCP, Unix
//!   sockets), each served by its own task; [`Hub::serve_text`] does the
//!   same for plain-text (netcat) users, and [`Hub::serve_connection`] takes
//!   one accepted elsewhere (any [`Transport`]).
//! - [`Hub::serve_tls`] does so over TLS, with a [`TlsAcceptor`] whose
//!   certificate can be reloaded while it serves.
//! - [`Hub::attach`] gives an in-process [`Session`] (no socket).
//! - [`Hub::shutdown`] stops accepting, flushes every queue and waits.
//!
//! Layout: `hub.rs` (the handle) and `command.rs` (what it asks of the
//! actor); `actor/` (the one task that owns the registry and routes:
//! routing, delivery, gathering, replies and acknowledgements that complete
//! later, presence, message ids, accounts and the mailbox); `accounts.rs`
//! (the store behind accounts, their policy, password hashing and the
//! throttle on wrong passwords); `registry.rs` (who is online); `outbox.rs`
//! (each connection's byte-bounded outbound queue, where flow control
//! happens); `listener.rs` (the transports and listeners the hub serves) and
//! `server.rs` (the accept loop, and connections handed over); `tls.rs`
//! (TLS around any listener, its handshake in the connection's task);
//! `connection.rs` (what every front end shares about a peer); `front/`
//! (the binary and text front ends); `writer.rs` (a connection's writer);
//! `flood.rs` (flood control); `session.rs` (in-process users); `config.rs`
//! (limits); `stats.rs` (counters of limits hit); `metrics.rs` (what the
//! admin endpoint reads: messages by outcome, traffic per connection);
//! `reconfigure.rs` (which settings a running hub can change). `docs/architecture.md`
//! tells the story of one message through them, and `docs/limits.md` lists
//! every limit.
//!
//! ```no_run
//! use chinwag_hub::{Hub, HubConfig};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let hub = Hub::start(HubConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:2446").await?;
//! hub.serve(listener).await
//! # }
//! ```

mod accounts;
mod actor;
mod admission;
mod command;
mod config;
mod connection;
mod error;
mod flood;
mod front;
mod hub;
mod listener;
mod metrics;
mod outbox;
mod reconfigure;
mod registry;
mod server;
mod session;
mod stats;
mod tls;
mod writer;

pub use accounts::{
    AccountPolicy, MAX_PASSWORD, MIN_PASSWORD, Storage, check_new_password, hash_password,
};
pub use admission::{AddressLimits, Peer};
pub use config::{HubConfig, RateLimit};
pub use error::HubError;
pub use front::Front;
pub use hub::Hub;
pub use listener::{BACKLOG, Listener, Split, Transport, bind_tcp};
pub use metrics::{ConnectionInfo, HubMetrics};
pub use reconfigure::Reconfigured;
pub use session::Session;
pub use stats::HubStats;
pub use tls::{TlsAcceptor, TlsError, TlsListener, TlsStream};

/// The protocol crate, re-exported for embedders.
pub use chinwag_protocol as protocol;

/// rustls, re-exported for embedders that build a [`TlsAcceptor`] from
/// certificates in memory ([`TlsAcceptor::from_der`]).
pub use tokio_rustls::rustls;

/// The store crate, re-exported for embedders that keep accounts.
pub use chinwag_store as store;

/// The `ipnet` crate, re-exported for [`AddressLimits::exempt`].
pub use ipnet;
