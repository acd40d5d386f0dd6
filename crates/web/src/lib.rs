//! chinwag's web gateway: the binary protocol over WebSocket, and a web
//! page that speaks it, on one port.
//!
//! - [`serve`] runs the web listener for a [`Hub`](chinwag_hub::Hub):
//!   the page at `/` (compiled in, with a Content-Security-Policy), and at
//!   `/ws` the WebSocket endpoint of the `chinwag.v1` subprotocol
//!   ([`SUBPROTOCOL`]), checked against an [`Origins`] allow-list. Over
//!   TLS when [`WebConfig::tls`] is set.
//! - [`WsBytes`] turns an upgraded WebSocket into the byte stream the
//!   hub's connection code reads and writes, one protocol frame to a
//!   binary message: every limit, deadline and slow-consumer rule of the
//!   hub holds over WebSocket through the same code as over TCP.
//!
//! Layout: `server.rs` (the accept loop, HTTP on each connection, the
//! router), `upgrade.rs` (the WebSocket handshake and the hand-over to
//! the hub), `ws_bytes.rs` (the WebSocket as bytes), `origin.rs` (the
//! allow-list), `assets.rs` (the page). `docs/protocol.md` section 1.2 is
//! the binding's specification.
//!
//! ```no_run
//! use chinwag_hub::{Hub, HubConfig};
//! use chinwag_web::WebConfig;
//!
//! # async fn demo() -> std::io::Result<()> {
//! let hub = Hub::start(HubConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:2450").await?;
//! chinwag_web::serve(hub, listener, WebConfig::default()).await
//! # }
//! ```

mod assets;
mod origin;
mod server;
mod upgrade;
mod ws_bytes;

pub use origin::{OriginError, Origins};
pub use server::{WebConfig, serve};
pub use upgrade::SUBPROTOCOL;
pub use ws_bytes::WsBytes;
