//! What the hub tells a client without being asked, and how the client ends.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use chinwag_protocol::{ErrorFrame, Message, Presence, ProtocolError, Welcome};
use futures::Stream;
use tokio::sync::mpsc;

use crate::ClientError;

/// Something that happened on the connection, in the order it happened.
///
/// [`Event::Closed`] is always the last event; after it,
/// [`Events::recv`] returns `None`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A message for this client: sent to it by name, or to everyone.
    Message(Message),
    /// Someone came online or went offline.
    Presence(Presence),
    /// A roster that no [`Client::who`](crate::Client::who) was waiting for
    /// (its caller gave up before the answer came).
    Roster(Vec<String>),
    /// An error from the hub that is not about a pending request and does not
    /// end the connection.
    Error(ErrorFrame),
    /// The connection was lost and the client is reconnecting (only with
    /// [`ClientOptions::reconnect`](crate::ClientOptions::reconnect)).
    /// Requests fail with [`ClientError::Disconnected`] until
    /// [`Event::Reconnected`].
    Disconnected {
        /// Why the connection was lost.
        reason: CloseReason,
    },
    /// The client connected again and re-registered its nickname.
    Reconnected {
        /// How long the client was disconnected: from noticing the loss to
        /// being registered again. Messages sent to it meanwhile were
        /// answered `NO_SUCH_USER` and are not replayed.
        after: Duration,
        /// How many attempts it took.
        attempts: u32,
        /// The hub's welcome on the new connection, with who is online now.
        welcome: Welcome,
    },
    /// The client has closed for good; nothing follows.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// This client quit ([`Client::quit`](crate::Client::quit), or every
    /// [`Client`](crate::Client) handle was dropped).
    Quit,
    /// The hub closed the connection without saying why.
    HubClosed,
    /// The hub ended the connection with a fatal error, such as
    /// `SHUTTING_DOWN` or `SLOW_CONSUMER`.
    Hub(ErrorFrame),
    /// The hub sent no frame for two keepalive periods.
    PingTimeout,
    /// The socket failed.
    Io(io::Error),
    /// The hub sent bytes that are not a valid frame.
    Protocol(ProtocolError),
    /// Reconnection was abandoned: the attempts ran out, or the last error
    /// cannot get better by retrying (a nickname the hub's rules refuse).
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: ClientError,
    },
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Quit => f.write_str("quit"),
            Self::HubClosed => f.write_str("the hub closed the connection"),
            Self::Hub(error) => write!(f, "the hub closed the connection: {}", error.message),
            Self::PingTimeout => f.write_str("the hub stopped answering"),
            Self::Io(error) => write!(f, "connection failed: {error}"),
            Self::Protocol(error) => write!(f, "the hub sent a bad frame: {error}"),
            Self::GaveUp { attempts, last } => {
                write!(f, "gave up reconnecting after {attempts} attempts: {last}")?;
                let mut source = std::error::Error::source(last);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
        }
    }
}

/// The events of one [`Client`](crate::Client), in order; also a
/// [`Stream`].
///
/// Read them promptly: the queue is bounded
/// ([`ClientOptions::event_capacity`](crate::ClientOptions::event_capacity)),
/// and while it is full the client stops reading from its socket, so acks
/// and rosters wait behind the events too. A program that does not care
/// about events drops this; they are then discarded.
#[derive(Debug)]
pub struct Events {
    pub(crate) rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` after [`Event::Closed`].
    ///
    /// Cancel-safe: an event is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is queued now, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}
