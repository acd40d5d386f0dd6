//! The handle everyone else holds: a cheap clone that talks to the actor
//! through its bounded command queue, and the state the hub's tasks share.
//!
//! The actor itself (one task that owns the registry and routes every
//! message) is in `actor/`; what the handle can ask of it is `command.rs`.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use chinwag_protocol::{Nick, SendPayload};
use chinwag_store::{MailStore, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::Storage;
use crate::actor::{Actor, Loaded};
use crate::admission::Admission;
use crate::command::{Command, Join};
use crate::metrics::Meters;
use crate::outbox::Outbox;
use crate::registry::ConnId;
use crate::stats::Counters;
use crate::{HubConfig, HubError, HubStats};

/// A handle to a running hub. Cheap to clone; every clone talks to the same
/// actor.
///
/// ```no_run
/// use chinwag_hub::{Hub, HubConfig};
/// use tokio::net::TcpListener;
///
/// # async fn demo() -> std::io::Result<()> {
/// let hub = Hub::start(HubConfig::default());
/// let listener = TcpListener::bind("127.0.0.1:2446").await?;
/// let server = tokio::spawn({
///     let hub = hub.clone();
///     async move { hub.serve(listener).await }
/// });
/// // ... later:
/// hub.shutdown().await;
/// server.await??;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Hub {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) commands: mpsc::Sender<Command>,
    /// The configuration in force: replaced whole by
    /// [`Hub::reconfigure`] (`reconfigure.rs`).
    pub(crate) config: RwLock<Arc<HubConfig>>,
    /// Bumped by each reconfiguration: a connection that sees it changed
    /// takes the new configuration at its next frame.
    pub(crate) generation: AtomicU64,
    /// Cancelled when shutdown begins: stop accepting and reading.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled when the actor has routed everything it was sent and exited.
    pub(crate) actor_done: CancellationToken,
    /// Every task of this hub: the actor and each connection.
    pub(crate) tracker: TaskTracker,
    /// One permit per registered user (connection or session).
    pub(crate) connections: Arc<Semaphore>,
    /// One permit per connection that has not registered yet.
    pub(crate) unregistered: Arc<Semaphore>,
    /// Limits per source address, and the unregistered connections that
    /// could be shed to make room.
    pub(crate) admission: Arc<Admission>,
    /// Limits breached, for logs and stats.
    pub(crate) counters: Counters,
    /// Every connection's meter (the admin endpoint).
    pub(crate) meters: Arc<Meters>,
    /// The mailboxes' store, for its figures (`Hub::metrics`).
    pub(crate) mail: Option<Arc<dyn MailStore>>,
    next_conn: AtomicU64,
}

impl Shared {
    /// The configuration in force now.
    pub(crate) fn config(&self) -> Arc<HubConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One connection's or session's budget of in-flight bytes, fixed when it
/// begins (see `HubConfig::max_in_flight_bytes`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlightBudget(u32);

impl InFlightBudget {
    /// The budget as permits: at least one, at most what one acquisition
    /// can take.
    pub(crate) fn of(config: &HubConfig) -> Self {
        let budget = config.max_in_flight_bytes;
        Self(u32::try_from(budget).unwrap_or(u32::MAX).max(1))
    }

    /// A semaphore holding the whole budget.
    pub(crate) fn semaphore(self) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(self.0 as usize))
    }

    /// What sending `send` takes from the budget: about the bytes it will
    /// occupy, and never more than the whole budget, so that a message
    /// larger than the budget waits for the others and then goes alone.
    pub(crate) fn cost(self, send: &SendPayload) -> u32 {
        let bytes = u32::try_from(send.len() + 32).unwrap_or(u32::MAX);
        bytes.clamp(1, self.0)
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.shared.config())
            .field("shutting_down", &self.shared.shutdown.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Spawns the hub's actor on the current Tokio runtime and returns a
    /// handle to it.
    ///
    /// # Panics
    /// If called outside a Tokio runtime.
    pub fn start(config: HubConfig) -> Self {
        Self::spawn(config, None)
    }

    /// Spawns the hub's actor with accounts and mailboxes kept in
    /// `storage`: registered nicknames, messages stored for their offline
    /// owners, and message ids that continue above the highest it stored.
    /// Reads every account first (the actor keeps them in memory, and never
    /// waits on the store afterwards).
    ///
    /// # Errors
    /// The store's, if it cannot read its accounts.
    ///
    /// # Panics
    /// If called outside a Tokio runtime.
    pub async fn start_with_storage(
        config: HubConfig,
        storage: Storage,
    ) -> Result<Self, StoreError> {
        let accounts = storage.accounts.accounts()?.await?;
        let last_message_id = storage.mail.last_message_id()?.await?;
        let loaded = Loaded {
            storage,
            accounts,
            last_message_id,
        };
        Ok(Self::spawn(config, Some(loaded)))
    }

    fn spawn(config: HubConfig, loaded: Option<Loaded>) -> Self {
        let (commands, rx) = mpsc::channel(config.command_queue.max(1));
        let actor_config = config.clone();
        let shared = Arc::new(Shared {
            commands,
            connections: Arc::new(Semaphore::new(config.max_connections)),
            unregistered: Arc::new(Semaphore::new(config.max_unregistered)),
            admission: Arc::new(Admission::new(config.addresses.clone())),
            counters: Counters::default(),
            meters: Arc::default(),
            mail: loaded.as_ref().map(|loaded| loaded.storage.mail.clone()),
            shutdown: CancellationToken::new(),
            actor_done: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            config: RwLock::new(Arc::new(config)),
            generation: AtomicU64::new(0),
        });
        let actor = Actor::new(
            &actor_config,
            shared.commands.downgrade(),
            shared.tracker.clone(),
            loaded,
        );
        shared
            .tracker
            .spawn(actor.run(rx, shared.shutdown.clone(), shared.actor_done.clone()));
        Self { shared }
    }

    /// The configuration this hub runs with now (as
    /// [`reconfigure`](Self::reconfigure) last left it).
    pub fn config(&self) -> Arc<HubConfig> {
        self.shared.config()
    }

    /// Who is online, sorted case-insensitively.
    ///
    /// # Errors
    /// [`HubError::Closed`] once the hub has shut down.
    pub async fn roster(&self) -> Result<Vec<String>, HubError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Roster { reply }).await?;
        answer.await.map_err(|_| HubError::Closed)
    }

    /// A test hook: blocks the actor's thread for `duration`, as an actor
    /// stuck in a bug would be, so that a test can see what notices (the
    /// daemon's systemd watchdog). Never call it otherwise.
    ///
    /// # Errors
    /// [`HubError::Closed`] once the hub has shut down.
    #[doc(hidden)]
    pub async fn wedge_actor_for_tests(
        &self,
        duration: std::time::Duration,
    ) -> Result<(), HubError> {
        self.command(Command::Wedge(duration)).await
    }

    /// Begins shutdown without waiting for it: stop accepting, stop reading,
    /// route what was already sent, flush every queue, and tell each client
    /// with a `SHUTTING_DOWN` error.
    pub fn begin_shutdown(&self) {
        self.shared.shutdown.cancel();
        self.shared.tracker.close();
    }

    /// Shuts down and waits until every connection has been flushed and
    /// closed and the actor has exited. A peer that stops reading can delay
    /// this by up to [`HubConfig::slow_consumer_deadline`]; callers that need
    /// a harder bound wrap this in a timeout.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        self.shared.tracker.wait().await;
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }

    /// Resolves once shutdown has begun: for an accept loop kept outside
    /// the hub (the web gateway's), which stops when the hub's own do.
    pub async fn shutdown_begun(&self) {
        self.shared.shutdown.cancelled().await;
    }

    /// Connections and sessions being served right now, registered or not.
    pub fn connection_count(&self) -> usize {
        // Both limits are set once, at start (`reconfigure.rs`).
        let config = self.config();
        (config.max_connections - self.shared.connections.available_permits())
            + (config.max_unregistered - self.shared.unregistered.available_permits())
    }

    /// How often each limit has been hit since the hub started.
    pub fn stats(&self) -> HubStats {
        self.shared.counters.snapshot()
    }

    pub(crate) fn next_conn_id(&self) -> ConnId {
        ConnId(self.shared.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// As [`command`](Self::command), without an `.await` when the queue has room.
    pub(crate) async fn try_command(&self, command: Command) -> Result<(), HubError> {
        match self.shared.commands.try_send(command) {
            Ok(()) => Ok(()),
            // Boxed: the slow path's state would otherwise sit in every
            // connection's task for its whole life.
            Err(mpsc::error::TrySendError::Full(command)) => Box::pin(self.command(command)).await,
            Err(mpsc::error::TrySendError::Closed(_)) => Err(HubError::Closed),
        }
    }

    pub(crate) async fn command(&self, command: Command) -> Result<(), HubError> {
        self.shared
            .commands
            .send(command)
            .await
            .map_err(|_| HubError::Closed)
    }

    /// Registers `nick` for connection `id`. On success the actor has already
    /// queued `WELCOME` on `outbox` and told everyone else, and has dropped
    /// `unregistered`; a refusal hands it back.
    pub(crate) async fn join(
        &self,
        id: ConnId,
        nick: Nick,
        outbox: Arc<Outbox>,
        options: Option<u32>,
        unregistered: Option<OwnedSemaphorePermit>,
        credentials: (Option<String>, Option<IpAddr>),
    ) -> Result<(), (HubError, Option<OwnedSemaphorePermit>)> {
        let (reply, answer) = oneshot::channel();
        let (password, address) = credentials;
        self.command(Command::Join(Join {
            id,
            nick,
            outbox,
            options,
            unregistered,
            password,
            address,
            reply,
        }))
        .await
        .map_err(|error| (error, None))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((code, unregistered))) => Err((HubError::Refused(code), unregistered)),
            Err(_) => Err((HubError::Closed, None)),
        }
    }

    pub(crate) fn new_outbox(config: &HubConfig) -> Arc<Outbox> {
        Arc::new(Outbox::new(config.outbox_high_water, config.outbox_limit))
    }
}
