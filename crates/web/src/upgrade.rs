//! `/ws`: the WebSocket handshake, checked (a WebSocket upgrade, an
//! allowed `Origin`, the `chinwag.v1` subprotocol), answered, and the
//! upgraded connection handed to the hub.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chinwag_hub::{Front, Split};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::debug;

use crate::WsBytes;
use crate::server::Gateway;

/// The WebSocket subprotocol of the chinwag binary protocol, version 1:
/// a client must offer it, and the gateway answers with it.
pub const SUBPROTOCOL: &str = "chinwag.v1";

/// tungstenite's read buffer, allocated for each connection for its whole
/// life: small, as the hub's own reader's starts (messages larger than it
/// are read in several reads).
const READ_BUFFER: usize = 4 * 1024;

/// What tungstenite gathers before writing to the socket: one of the hub
/// writer's batches (its flush sends what is left).
const WRITE_BUFFER: usize = 64 * 1024;

/// The WebSocket settings for a hub whose largest frame payload is
/// `max_frame`: a message (or a WebSocket frame of one) holds one protocol
/// frame, its 4-byte prefix and its payload, so larger is refused from its
/// header, before it is buffered.
pub(crate) fn ws_config(max_frame: usize) -> WebSocketConfig {
    let max_message = max_frame.saturating_add(chinwag_hub::protocol::PREFIX_LEN);
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// A refusal, with a line saying why.
fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

/// Whether the comma-separated header `name` holds `token`
/// (case-insensitively when `any_case`).
fn lists(headers: &HeaderMap, name: header::HeaderName, token: &str, any_case: bool) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| {
            let item = item.trim();
            if any_case {
                item.eq_ignore_ascii_case(token)
            } else {
                item == token
            }
        })
}

/// `GET /ws`.
pub(crate) async fn upgrade(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let headers = request.headers();
    let is_upgrade = lists(headers, header::CONNECTION, "upgrade", true)
        && lists(headers, header::UPGRADE, "websocket", true);
    if !is_upgrade {
        let mut response = refuse(
            StatusCode::UPGRADE_REQUIRED,
            "this is the chinwag WebSocket endpoint: connect with a WebSocket\n",
        );
        response
            .headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return response;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        let mut response = refuse(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key\n");
    };
    if !gateway.origins.allows(headers) {
        debug!(%peer, origin = ?headers.get(header::ORIGIN), "WebSocket from an origin not allowed");
        return refuse(StatusCode::FORBIDDEN, "origin not allowed\n");
    }
    if !lists(headers, header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL, false) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the chinwag.v1 WebSocket subprotocol is required\n",
        );
    }
    let accept = derive_accept_key(key.as_bytes());
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded\n",
        );
    };

    let hub = gateway.hub.clone();
    gateway.tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                debug!(%peer, %error, "WebSocket upgrade failed");
                return;
            }
        };
        let config = ws_config(hub.config().max_frame);
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        // Admitted, or refused in the protocol's words, like any
        // connection: the peer is the TCP peer, for the limits per address.
        let _ = hub.serve_connection(Split::new(WsBytes::new(ws)), peer, Front::Binary);
    });

    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}
