//! In-process sessions: a user of the hub without a socket.

use std::fmt;
use std::sync::Arc;

use chinwag_protocol::{
    Code, Nick, PREFIX_LEN, Recipients, SendFrame, SendPayload, ServerFrame, WireFrame,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::error;

use crate::command::Command;
use crate::hub::InFlightBudget;
use crate::outbox::Outbox;
use crate::registry::ConnId;
use crate::{Hub, HubError};

/// A registered user attached to the hub in-process: it sends and receives
/// the same frames a TCP client does, without a socket.
///
/// Its queue is bounded like a connection's: a session that stops calling
/// [`recv`](Self::recv) while others send to it is cut as a slow consumer.
/// Dropping the session leaves the hub (the others see it go offline).
///
/// ```no_run
/// use chinwag_hub::{Hub, HubConfig};
/// use chinwag_protocol::{Recipients, ServerFrame};
///
/// # async fn demo() -> Result<(), chinwag_hub::HubError> {
/// let hub = Hub::start(HubConfig::default());
/// let mut alice = hub.attach("alice").await?;
/// let mut bob = hub.attach("bob").await?;
/// alice.send(Recipients::Users(vec!["bob".into()]), "hi").await?;
/// while let Some(frame) = bob.recv().await {
///     if let ServerFrame::Message(message) = frame {
///         assert_eq!(message.text, "hi");
///         break;
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct Session {
    hub: Hub,
    id: ConnId,
    nick: Nick,
    outbox: Arc<Outbox>,
    permits: Arc<Semaphore>,
    budget: InFlightBudget,
    next_id: u64,
    left: bool,
    _slot: OwnedSemaphorePermit,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("nick", &self.nick)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Registers `nick` and returns a session attached to this hub. Its first
    /// frame is the `WELCOME`.
    ///
    /// # Errors
    /// [`HubError::Refused`] with a nickname code or `NICK_TAKEN`, or
    /// `SERVER_FULL` at the connection limit; [`HubError::Closed`] once the
    /// hub has shut down.
    pub async fn attach(&self, nick: &str) -> Result<Session, HubError> {
        let nick = Nick::parse(nick.as_bytes()).map_err(|e| HubError::Refused(e.code()))?;
        if self.is_shutting_down() {
            return Err(HubError::Closed);
        }
        let slot = self
            .shared
            .connections
            .clone()
            .try_acquire_owned()
            .map_err(|_| HubError::Refused(chinwag_protocol::Code::SERVER_FULL))?;
        let id = self.next_conn_id();
        let config = self.config();
        let outbox = Self::new_outbox(&config);
        let budget = InFlightBudget::of(&config);
        // If this future is dropped while the join is in flight, the actor
        // may register the nickname anyway; the guard takes it back.
        let guard = LeaveOnDrop {
            hub: self,
            id: Some(id),
        };
        self.join(id, nick.clone(), outbox.clone(), None, None, (None, None))
            .await
            .map_err(|(error, _)| error)?;
        let _ = guard.disarm();
        Ok(Session {
            hub: self.clone(),
            id,
            nick,
            outbox,
            permits: budget.semaphore(),
            budget,
            next_id: 0,
            left: false,
            _slot: slot,
        })
    }
}

impl Session {
    /// The nickname as registered.
    pub fn nick(&self) -> &str {
        self.nick.as_str()
    }

    /// Sends a message and returns the id its `ACK` will carry. Waits while
    /// earlier messages of this session are parked on congested recipients.
    ///
    /// # Errors
    /// [`HubError::Refused`] with `BAD_REQUEST` for a message the protocol
    /// cannot carry (a recipient's name over 255 bytes, say);
    /// [`HubError::Closed`] once the hub has shut down.
    pub async fn send(&mut self, to: Recipients, text: impl Into<String>) -> Result<u64, HubError> {
        let frame = SendFrame {
            id: self.next_id + 1,
            to,
            text: text.into(),
        };
        let send =
            SendPayload::try_from(&frame).map_err(|_| HubError::Refused(Code::BAD_REQUEST))?;
        let cost = self.budget.cost(&send);
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(|_| HubError::Closed)?;
        self.next_id += 1;
        self.hub
            .command(Command::Send {
                id: self.id,
                send,
                permit,
                arrived: tokio::time::Instant::now(),
            })
            .await?;
        Ok(self.next_id)
    }

    /// Asks for the roster; it arrives as a [`ServerFrame::Roster`].
    ///
    /// # Errors
    /// [`HubError::Closed`] once the hub has shut down.
    pub async fn who(&self) -> Result<(), HubError> {
        self.hub.command(Command::Who { id: self.id }).await
    }

    /// The next frame for this session, in the order the hub queued them;
    /// `None` once the session has been closed (after a final
    /// [`ServerFrame::Error`] saying why, if the hub closed it).
    ///
    /// Cancel-safe: a frame is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<ServerFrame> {
        loop {
            let frame = self.outbox.take_one().await?;
            self.outbox.written(frame.len());
            match ServerFrame::decode(frame.slice(PREFIX_LEN.min(frame.len())..)) {
                Ok(frame) => return Some(frame),
                // The hub encoded this frame itself; failing to decode it is
                // a bug, logged rather than passed on.
                Err(err) => error!(%err, "session could not decode a hub frame"),
            }
        }
    }

    /// Leaves the hub cleanly; the others see this user go offline.
    pub async fn quit(mut self) {
        self.left = true;
        let _ = self
            .hub
            .command(Command::Leave {
                id: self.id,
                done: None,
            })
            .await;
        self.outbox.close(None, false);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        self.outbox.close(None, false);
        leave_from_drop(&self.hub, self.id);
    }
}

/// Takes a registration back if `attach` is cancelled halfway.
struct LeaveOnDrop<'a> {
    hub: &'a Hub,
    id: Option<ConnId>,
}

impl LeaveOnDrop<'_> {
    fn disarm(mut self) -> Option<ConnId> {
        self.id.take()
    }
}

impl Drop for LeaveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            leave_from_drop(self.hub, id);
        }
    }
}

/// Tells the actor that `id` is gone, from code that cannot wait.
fn leave_from_drop(hub: &Hub, id: ConnId) {
    let leave = Command::Leave { id, done: None };
    if let Err(tokio::sync::mpsc::error::TrySendError::Full(leave)) =
        hub.shared.commands.try_send(leave)
    {
        // The queue is full right now; say goodbye from a task instead.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let hub = hub.clone();
            runtime.spawn(async move {
                let _ = hub.command(leave).await;
            });
        }
    }
}
