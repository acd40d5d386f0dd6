//! chinwag's admin HTTP endpoint: what an operator's monitoring reads.
//!
//! - `GET /metrics`: the hub's figures in the `OpenMetrics` text format,
//!   which Prometheus scrapes (`metrics.rs`; every metric is listed in
//!   `docs/operations.md`).
//! - `GET /healthz`: `200` while the hub's actor answers (within
//!   [`HEALTH_DEADLINE`]), `503` otherwise.
//! - `GET /readyz`: `200` once the embedder says the hub is ready
//!   ([`Readiness::set_ready`]: the daemon does so once every listener is
//!   bound and the store is open) and as long as it is not draining and
//!   its store can write; `503` with the reason otherwise.
//! - `GET /connz`: every connection as JSON, with paging and sorting in the
//!   manner of NATS's `/connz` (`connz.rs`).
//!
//! Nothing here is on the hub's hot path: each request asks the hub for a
//! snapshot ([`Hub::metrics`], [`Hub::connections`]) and formats it.
//!
//! ```no_run
//! use chinwag_admin::Readiness;
//! use chinwag_hub::{Hub, HubConfig};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let hub = Hub::start(HubConfig::default());
//! let readiness = Readiness::default();
//! let admin = tokio::net::TcpListener::bind("127.0.0.1:9446").await?;
//! tokio::spawn(chinwag_admin::serve(admin, hub.clone(), readiness.clone()));
//! // ... bind the hub's listeners, then:
//! readiness.set_ready(true);
//! # Ok(())
//! # }
//! ```

mod connz;
mod metrics;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chinwag_hub::Hub;
use tokio::net::TcpListener;
use tracing::info;

pub use connz::{Connz, ConnzEntry, ConnzQuery, DEFAULT_LIMIT, MAX_LIMIT, SortBy};

/// How long `/healthz` waits for the hub's actor to answer before saying
/// it is not healthy.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(2);

/// Whether the hub is ready for traffic as far as its embedder knows: set
/// once its listeners are bound and its store is open. `/readyz` also says
/// no while the hub drains or its store cannot write.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Says the hub is ready (or, with `false`, no longer).
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Whether [`set_ready`](Self::set_ready) last said yes.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct Admin {
    hub: Hub,
    readiness: Readiness,
}

/// The admin endpoint's routes, for an embedder that serves them itself.
pub fn router(hub: Hub, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/connz", get(connz::connz))
        .with_state(Admin { hub, readiness })
}

/// Serves the admin endpoint on `listener` until the hub has shut down.
///
/// # Errors
/// If the listener's address cannot be read; errors of single requests are
/// their own responses.
pub async fn serve(listener: TcpListener, hub: Hub, readiness: Readiness) -> io::Result<()> {
    info!(addr = %listener.local_addr()?, "admin endpoint listening");
    axum::serve(listener, router(hub, readiness)).await
}

/// Serves the admin endpoint on a thread of its own, with a runtime of its
/// own, until the process exits: `/healthz` must answer (that the hub does
/// not) even when the hub's runtime is stuck, its workers blocked by a
/// wedged actor. It reaches the hub through the same channels as any task.
/// `listener` is bound by the caller (in non-blocking mode, as
/// `tokio::net::TcpListener::into_std` leaves it).
///
/// # Errors
/// If the thread or its runtime cannot be started; errors of the server
/// itself end the thread, logged.
pub fn serve_on_own_thread(
    listener: std::net::TcpListener,
    hub: Hub,
    readiness: Readiness,
) -> io::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("chinwag-admin".to_owned())
        .spawn(move || {
            let served = runtime.block_on(async move {
                serve(TcpListener::from_std(listener)?, hub, readiness).await
            });
            if let Err(error) = served {
                tracing::error!(%error, "the admin endpoint stopped");
            }
        })
}

/// A plain-text response.
fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

async fn metrics(State(admin): State<Admin>) -> Response {
    let Ok(figures) = admin.hub.metrics().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "the hub has shut down\n");
    };
    match metrics::encode(figures, admin.readiness.is_ready()) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded\n",
        ),
    }
}

async fn healthz(State(admin): State<Admin>) -> Response {
    match tokio::time::timeout(HEALTH_DEADLINE, admin.hub.roster()).await {
        Ok(Ok(_)) => text(StatusCode::OK, "ok\n"),
        Ok(Err(_)) => text(StatusCode::SERVICE_UNAVAILABLE, "the hub has shut down\n"),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the hub's actor did not answer in time\n",
        ),
    }
}

async fn readyz(State(admin): State<Admin>) -> Response {
    let not_ready = |why: &str| {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
    };
    if admin.hub.is_shutting_down() {
        return not_ready("draining");
    }
    if !admin.readiness.is_ready() {
        return not_ready("starting");
    }
    let store = admin.hub.store_stats();
    if store.is_some_and(|store| !store.writable) {
        return not_ready("the store cannot write");
    }
    text(StatusCode::OK, "ready\n")
}
