//! chinwag: a messaging hub on Tokio.
//!
//! This facade re-exports the workspace's crates so that the top-level
//! `tests/` and `examples/` can use all of them:
//!
//! - [`protocol`]: frames, nicknames and the length-delimited codec (no I/O).
//! - [`hub`]: the hub actor, its handle, the TCP front end and in-process sessions.
//! - [`client`]: the async client library (connect, send, events, reconnect).

pub use chinwag_client as client;
pub use chinwag_hub as hub;
pub use chinwag_protocol as protocol;
