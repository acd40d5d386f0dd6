//! Hubs for tests: one on an ephemeral TCP port, one whose connections are
//! in-memory pipes.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use chinwag_hub::store::{Store, StoreConfig};
use chinwag_hub::{Hub, HubConfig, Storage};
use tokio::io::DuplexStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::client::RawClient;
use crate::wait::within;

/// A hub serving the binary protocol on `127.0.0.1:0`.
#[derive(Debug)]
pub struct TestHub {
    /// The hub's handle, for its counters, in-process sessions, shutdown.
    pub hub: Hub,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The accept loop, which returns once the hub shuts down.
    pub server: JoinHandle<io::Result<()>>,
}

impl TestHub {
    /// A hub with the default configuration.
    pub async fn start() -> Self {
        Self::with_config(HubConfig::default()).await
    }

    /// A hub with `config`.
    ///
    /// # Panics
    /// If no port can be bound.
    #[expect(
        clippy::unused_async,
        reason = "async as every way to start a hub is; binding itself does not wait"
    )]
    pub async fn with_config(config: HubConfig) -> Self {
        let listener =
            chinwag_hub::bind_tcp(([127, 0, 0, 1], 0).into()).expect("an ephemeral port");
        Self::serve(listener, config)
    }

    /// A hub with `config` keeping accounts and mailboxes in the store
    /// `store` (open on a test's temporary directory).
    ///
    /// # Panics
    /// If no port can be bound, or the store's accounts cannot be read.
    pub async fn with_store(config: HubConfig, store: Store) -> Self {
        let listener =
            chinwag_hub::bind_tcp(([127, 0, 0, 1], 0).into()).expect("an ephemeral port");
        let addr = listener.local_addr().expect("a bound listener");
        let hub = Hub::start_with_storage(config, Storage::sqlite(store))
            .await
            .expect("the store's accounts can be read");
        let server = tokio::spawn({
            let hub = hub.clone();
            async move { hub.serve(listener).await }
        });
        Self { hub, addr, server }
    }

    /// Opens the store in `config.data_dir` off the runtime's threads.
    ///
    /// # Panics
    /// If it cannot be opened.
    pub async fn open_store(config: StoreConfig) -> Store {
        tokio::task::spawn_blocking(move || Store::open(&config))
            .await
            .expect("the opening thread ran")
            .expect("the store opens")
    }

    /// A hub with `config` accepting from `listener` (bound by the test,
    /// for example to a port an earlier hub used).
    ///
    /// # Panics
    /// If the listener has no local address.
    pub fn serve(listener: TcpListener, config: HubConfig) -> Self {
        let addr = listener.local_addr().expect("a bound listener");
        let hub = Hub::start(config);
        let server = tokio::spawn({
            let hub = hub.clone();
            async move { hub.serve(listener).await }
        });
        Self { hub, addr, server }
    }

    /// A raw client connected over TCP, not yet registered.
    pub async fn connect(&self) -> RawClient<TcpStream> {
        RawClient::connect(self.addr).await
    }

    /// A raw client connected over TCP and registered as `nick`, its
    /// `WELCOME` consumed.
    pub async fn register(&self, nick: &str) -> RawClient<TcpStream> {
        self.connect().await.registered(nick).await
    }

    /// Waits until `nick` is online (as the hub's roster says).
    ///
    /// # Panics
    /// If it is not within [`PATIENCE`](crate::PATIENCE).
    pub async fn wait_online(&self, nick: &str) {
        within(&format!("{nick} coming online"), async {
            loop {
                let roster = self.hub.roster().await.expect("the hub is running");
                if roster.iter().any(|n| n.eq_ignore_ascii_case(nick)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Waits until `nick` has left (the hub's roster no longer has it).
    ///
    /// # Panics
    /// If it is still online after [`PATIENCE`](crate::PATIENCE).
    pub async fn wait_offline(&self, nick: &str) {
        within(&format!("{nick} leaving"), async {
            loop {
                let roster = self.hub.roster().await.expect("the hub is running");
                if !roster.iter().any(|n| n.eq_ignore_ascii_case(nick)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Shuts the hub down and checks that `serve` returned `Ok`.
    ///
    /// # Panics
    /// If shutdown or the accept loop's return takes longer than
    /// [`PATIENCE`](crate::PATIENCE), or `serve` failed.
    pub async fn shutdown(self) {
        within("hub shutdown", self.hub.shutdown()).await;
        within("serve() returning", self.server)
            .await
            .expect("the serve task panicked")
            .expect("serve() failed");
    }
}

/// A hub whose connections are in-memory pipes handed to it with
/// [`Hub::serve_connection`]: served exactly as accepted TCP connections
/// are, under the same limits, but with nothing leaving the process, so
/// that a paused clock makes every deadline exact.
#[derive(Debug)]
pub struct PipeHub {
    /// The hub's handle.
    pub hub: Hub,
}

impl PipeHub {
    /// A hub with `config` (no listener).
    pub fn start(config: HubConfig) -> Self {
        Self {
            hub: Hub::start(config),
        }
    }

    /// A raw client over a new pipe, not yet registered.
    pub fn connect(&self) -> RawClient<DuplexStream> {
        RawClient::pipe(&self.hub)
    }

    /// A raw client over a pipe that buffers `bytes` each way: once the
    /// client stops reading, the hub's writes stop after that many bytes,
    /// as they do on a socket whose reader stopped.
    ///
    /// # Panics
    /// If the hub refuses the connection (shutdown, or full).
    pub fn connect_with_buffer(&self, bytes: usize) -> RawClient<DuplexStream> {
        RawClient::pipe_with_buffer(&self.hub, bytes)
    }

    /// A raw client over a pipe, registered as `nick`, its `WELCOME`
    /// consumed.
    pub async fn register(&self, nick: &str) -> RawClient<DuplexStream> {
        self.connect().registered(nick).await
    }

    /// Shuts the hub down.
    ///
    /// # Panics
    /// If that takes longer than [`PATIENCE`](crate::PATIENCE).
    pub async fn shutdown(self) {
        within("hub shutdown", self.hub.shutdown()).await;
    }
}
