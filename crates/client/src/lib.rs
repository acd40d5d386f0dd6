//! chinwag's client library: connect to a hub, register a nickname, send
//! messages and get per-recipient acks, and read what the hub sends as a
//! stream of events. The `chinwag` command-line program in this crate is
//! built on it.
//!
//! - [`Client::connect`] registers and returns a cloneable [`Client`] handle
//!   and the client's [`Events`].
//! - [`Client::send`] (and [`send_to`](Client::send_to),
//!   [`broadcast`](Client::broadcast), [`submit`](Client::submit)) resolve to
//!   the message's [`Ack`]; [`Client::who`] to the roster; [`Client::quit`]
//!   leaves.
//! - [`ClientOptions`] turns on automatic reconnection with a [`Backoff`],
//!   and logs in to a registered nickname with its
//!   [`password`](ClientOptions::password).
//! - Accounts: [`create_account`], [`change_password`], [`delete_account`]
//!   (and [`account`]) without registering; at login, the messages that
//!   waited in the mailbox arrive as [`Event::Mailbox`] then
//!   [`Event::Stored`], and are confirmed to the hub once handed over.
//! - [`Client::users`]: the table of users (registered, online or not, and
//!   guests online), kept up to date; [`Client::who_users`] asks for it.
//! - Receipts: with [`ClientOptions::confirms`] the client confirms each
//!   message it hands to the application, and with
//!   [`ClientOptions::receipts`] it hears, as [`Event::Receipt`], which
//!   recipients' clients confirmed the messages it sent.
//!
//! Layout: `client.rs` (the handle and [`Ack`]), `connection.rs` (the task
//! that owns the socket: it writes requests, routes acks to the requests
//! waiting for them, answers the hub's pings and reconnects), `event.rs`
//! ([`Event`], [`Events`], [`CloseReason`]), `users.rs` (the table of
//! users, [`Who`]), `mailbox.rs` (which stored messages to hand over),
//! `confirm.rs` (when to confirm what was handed over), `account.rs`
//! (account requests without registering), `options.rs`, `error.rs`.
//!
//! ```no_run
//! use chinwag_client::{Client, Event};
//!
//! # async fn demo() -> Result<(), chinwag_client::ClientError> {
//! let (client, mut events) = Client::connect("127.0.0.1:2446", "alice").await?;
//! client.broadcast("hello, everyone").await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Message(m) => println!("<{}> {}", m.from, m.text),
//!         Event::Presence(p) => println!("* {} online: {}", p.nick, p.online),
//!         Event::Closed { reason } => println!("closed: {reason}"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Back-pressure: requests go through a bounded queue, at most
//! [`ClientOptions::max_pending`] messages wait for acks, and events through
//! a queue of [`ClientOptions::event_capacity`]; while that is full the
//! client stops reading from its socket.

mod account;
mod client;
mod confirm;
mod connection;
mod error;
mod event;
mod mailbox;
mod options;
mod outbox;
mod receipts;
mod tls;
mod users;

pub use account::{
    ACCOUNT_TIMEOUT, account, account_with_tls, change_password, create_account, delete_account,
};
pub use client::{Ack, Client, Pending, PendingAck};
pub use error::ClientError;
pub use event::{CloseReason, Event, Events};
pub use options::{Backoff, ClientOptions};
pub use tls::TlsOptions;
pub use users::Who;

pub use chinwag_protocol::{
    AccountAction, AccountDone, AccountRequest, Code, ErrorFrame, Gap, MailboxHeader, Message,
    Presence, Receipt, RecipientStatus, Recipients, UserEntry, Welcome, user_flags,
};

/// The protocol crate, re-exported for its [`text`](chinwag_protocol::text)
/// helpers and frame types.
pub use chinwag_protocol as protocol;

/// rustls, re-exported for [`TlsOptions::client_config`].
pub use tokio_rustls::rustls;
