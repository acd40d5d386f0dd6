//! The web listener: its own accept loop (TCP, or TLS on the hub's
//! certificate), hyper's HTTP/1 on each connection with a deadline on
//! request headers, and the router: the page at `/`, the WebSocket at
//! `/ws`.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use axum::response::Response;
use axum::routing::get;
use chinwag_hub::{Hub, TlsAcceptor, TlsError};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tower_service::Service;
use tracing::{debug, info, warn};

use crate::Origins;
use crate::{assets, upgrade};

/// The ALPN name the web listener offers over TLS: browsers ask for it
/// (and for `h2`, which it does not speak).
const HTTP_ALPN: &[u8] = b"http/1.1";

/// The most bytes of request headers a connection may send: far more than
/// a browser's, and a bound on what a connection holds before it upgrades.
const MAX_HEADERS: usize = 16 * 1024;

/// The page's Content-Security-Policy: nothing by default; its own
/// scripts, styles and images only (no inline ones), connections
/// (`WebSocket`s on `ws:` and `wss:`) to its own host only, and it may not
/// be framed, post forms or change its base address.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How the web listener serves.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WebConfig {
    /// Which pages may open a WebSocket (default: the gateway's own).
    pub origins: Origins,
    /// Serve HTTPS and `wss:` with this acceptor's certificate (the hub's
    /// own: a reload of it is seen here too); plain HTTP when `None`.
    pub tls: Option<TlsAcceptor>,
}

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct Gateway {
    pub(crate) hub: Hub,
    pub(crate) origins: Origins,
    /// The upgrades waiting to be handed to the hub.
    pub(crate) tracker: TaskTracker,
}

/// The router of the web listener: the page at `/`, the WebSocket at
/// `/ws`, every response with `X-Content-Type-Options: nosniff` and the
/// page's Content-Security-Policy. It expects the peer's address in each
/// request as axum's `ConnectInfo<SocketAddr>`.
fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/ws", get(upgrade::upgrade))
        .fallback(get(assets::serve))
        .with_state(gateway)
        .layer(axum::middleware::map_response(secure))
}

async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// Serves the web gateway on `listener` until the hub's shutdown begins:
/// the page at `/`, and the binary protocol over WebSocket at `/ws`, each
/// upgraded connection served by the hub as any other
/// ([`Hub::serve_connection`]), under the same limits.
///
/// Connections still in HTTP (loading the page, or not yet upgraded) are
/// at most the hub's `max_unregistered` at once (one more is closed at
/// once) and must send each request's headers within its
/// `registration_timeout`.
///
/// # Errors
/// If the listener's address cannot be read, or `config.tls` cannot be
/// set up for HTTP; accept errors are retried.
pub async fn serve(hub: Hub, listener: TcpListener, config: WebConfig) -> io::Result<()> {
    let tls = config
        .tls
        .as_ref()
        .map(|tls| tls.with_alpn(&[HTTP_ALPN]))
        .transpose()
        .map_err(|error: TlsError| io::Error::other(error))?;
    let gateway = Arc::new(Gateway {
        hub: hub.clone(),
        origins: config.origins,
        tracker: TaskTracker::new(),
    });
    let router = router(Arc::clone(&gateway));
    let hub_config = hub.config();
    let in_http = Arc::new(Semaphore::new(hub_config.max_unregistered));
    let header_deadline = hub_config.registration_timeout;
    info!(addr = ?listener.local_addr()?, tls = tls.is_some(), "web listening");
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            biased;
            () = hub.shutdown_begun() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::from_millis(10);
                accepted
            }
            Err(error) => {
                warn!(%error, ?backoff, "web accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&in_http).try_acquire_owned() else {
            debug!(%peer, "too many connections in HTTP; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            hub: hub.clone(),
            router: router.clone(),
            peer,
            header_deadline,
            _slot: slot,
        };
        match &tls {
            Some(tls) => gateway.tracker.spawn(connection.serve(tls.accept(stream))),
            None => gateway.tracker.spawn(connection.serve(stream)),
        };
    }
    gateway.tracker.close();
    gateway.tracker.wait().await;
    Ok(())
}

/// One connection while it speaks HTTP.
struct Connection {
    hub: Hub,
    router: Router,
    peer: SocketAddr,
    header_deadline: Duration,
    /// Its place under the cap of connections in HTTP, given back when it
    /// ends or is upgraded (the hub then counts it).
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve<IO>(self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            hub,
            router,
            peer,
            header_deadline,
            _slot,
        } = self;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move { Ok::<_, Infallible>(router.call(request).await.unwrap_or_else(|e| match e {})) }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_deadline)
            .max_buf_size(MAX_HEADERS);
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::select! {
            result = connection => {
                if let Err(error) = result {
                    debug!(%peer, %error, "HTTP connection ended");
                }
            }
            () = hub.shutdown_begun() => {}
        }
    }
}
