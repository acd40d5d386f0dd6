//! What chinwag's test harnesses share, so that each is written once: the
//! end-to-end tests of the facade (`tests/support`), the hub crate's tests
//! and the client crate's tests all depend on this crate (dev-only, never
//! published).
//!
//! Every helper panics when what the test expects does not happen (a frame
//! that does not come within [`PATIENCE`], a connection that fails).
//!
//! - `wait.rs`: [`PATIENCE`], the bound on every wait, and the waits built
//!   on it ([`within`], [`guard`], [`settle`]), plus [`timed`] for tests
//!   that run on a paused clock and assert when a deadline fires.
//! - `hubs.rs`: a hub on an ephemeral TCP port ([`TestHub`]) and one whose
//!   connections are in-memory pipes ([`PipeHub`]).
//! - `frames.rs`: client frames as tests build them ([`hello`], [`send`],
//!   [`encode_frames`], [`raw_frame`], ...).
//! - `client.rs`: [`RawClient`], a client that speaks raw frames over any
//!   byte stream (a TCP socket or one end of a pipe) with the `expect_*`
//!   helpers, and [`next`] / [`codes_until_closed`] for tests that hold the
//!   `Framed` stream themselves.
//! - `certs.rs`: [`TestCerts`], a private CA and a server certificate for
//!   the TLS tests, as PEM files.
//! - `proxy.rs`: [`FaultProxy`], a TCP proxy that cuts connections at
//!   seeded random points (mid-frame too), for tests of reconnection.
//! - `http.rs`: [`http_get`], for the tests of the admin endpoint.
//! - `generated.rs`: [`assert_generated`], which holds the manual pages
//!   and shell completions committed under `dist/` to what the programs
//!   print now (or rewrites them, with [`REGENERATE`] set).
//!
//! Over pipes nothing leaves the process, so a test on a paused clock
//! (`#[tokio::test(start_paused = true)]`) sees the hub's deadlines fire at
//! exactly their configured time, with no real waiting:
//!
//! ```no_run
//! use std::time::Duration;
//! use chinwag_hub::HubConfig;
//! use chinwag_protocol::Code;
//! use chinwag_testkit::{PipeHub, timed};
//!
//! # async fn demo() {
//! let hub = PipeHub::start(HubConfig::default());
//! let mut silent = hub.connect();
//! let ((), after) = timed(silent.expect_fatal(Code::REGISTRATION_TIMEOUT)).await;
//! assert_eq!(after, Duration::from_secs(5));
//! # }
//! ```

// Every helper here panics when what the test expects does not happen:
// that is how a test fails. The crate doc says so once, rather than a
// `# Panics` section on each of them.
#![allow(clippy::missing_panics_doc)]

mod certs;
mod client;
mod forgeries;
mod frames;
mod generated;
mod http;
mod hubs;
mod proxy;
mod wait;

pub use certs::TestCerts;
pub use client::{RawClient, codes_until_closed, next};
pub use forgeries::FORGERIES;
pub use frames::{
    account, encode, encode_frames, hello, hello_bytes, hello_with_options, login, raw_frame, send,
    send_frame, users,
};
pub use generated::{REGENERATE, REGENERATE_COMMAND, assert_generated};
pub use http::http_get;
pub use hubs::{PipeHub, TestHub};
pub use proxy::{Cut, CutPoints, FaultProxy, Faults, LINGER};
pub use wait::{PATIENCE, guard, settle, timed, within};
