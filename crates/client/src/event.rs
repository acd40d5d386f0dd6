//! What the hub tells a client without being asked, and how the client ends.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use chinwag_protocol::{
    AccountDone, ErrorFrame, MailboxHeader, Message, Presence, ProtocolError, Receipt, UserEntry,
    Welcome,
};
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
    /// A message that waited in this account's mailbox while it was
    /// offline: handle it as a [`Message`](Event::Message) (its `ts_ms` is
    /// when it was sent, possibly days ago). Stored messages come right
    /// after [`Event::Mailbox`], oldest first, before any live traffic.
    ///
    /// The client confirms it to the hub (which then drops it from the
    /// mailbox) once it is in this event queue, so a program that
    /// ignores this variant loses it. One the hub hands out again (its
    /// confirmation was lost with a dropped connection) is not repeated.
    /// Nothing is confirmed once [`Events`] is dropped.
    Stored(Message),
    /// At login to an account: how many stored messages follow as
    /// [`Event::Stored`], and how many expired unread (the hub keeps them
    /// 30 days) since the owner was last told. Sent at every login, even
    /// for an empty mailbox.
    Mailbox(MailboxHeader),
    /// In a reliable session: messages for this account that will never
    /// come. Of the numbers `first..=last`, those not handed over already
    /// were lost, for `reason`: `MAILBOX_FULL` or `STORE_FAILED` (never
    /// stored), `EXPIRED` (the age limit dropped them unconfirmed).
    Gap(chinwag_protocol::Gap),
    /// Someone came online or went offline.
    Presence(Presence),
    /// The table of users: right after connecting (and reconnecting), when
    /// the hub keeps it for this client ([`ClientOptions::users`](crate::ClientOptions::users)),
    /// and when it answers a `WHO` nobody waits for any more. The client
    /// keeps the table itself: [`Client::users`](crate::Client::users).
    Users(Vec<UserEntry>),
    /// A change to the table of users (an account created or deleted),
    /// already applied to [`Client::users`](crate::Client::users). A row
    /// neither online nor registered is removed: an account deleted while
    /// its owner was offline.
    User(UserEntry),
    /// A recipient's client received a message this client sent: its
    /// `message_id` is the [`Ack::message_id`](crate::Ack::message_id) the
    /// message's ack gave, `recipient` whose client confirmed it, and
    /// `received_ms` when the hub had the confirmation (milliseconds since
    /// the Unix epoch, hub clock).
    ///
    /// Only with [`ClientOptions::receipts`](crate::ClientOptions::receipts)
    /// granted, for messages to named users (a broadcast gets none), from
    /// recipients whose clients confirm
    /// ([`ClientOptions::confirms`](crate::ClientOptions::confirms)): one
    /// per message per such recipient, usually within 50 ms of the
    /// delivery. A message stored for an offline recipient gets its receipt
    /// when the recipient logs in and handles it, possibly days later. A
    /// receipt goes to whichever connection holds this nickname then; for
    /// an account offline then, the hub keeps it and hands it over right
    /// after the next login that asks for receipts (once: a connection lost
    /// at once may lose it). So `message_id` may name a message sent by an
    /// earlier connection, or by another program.
    Receipt(Receipt),
    /// The answer to an account request that nobody was waiting for.
    AccountDone(AccountDone),
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
    /// The client connected again and re-registered its nickname (logged in
    /// again, with a password). The table of users
    /// ([`Client::users`](crate::Client::users)) is the new connection's.
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
    /// Someone logged in to this account from another connection, which
    /// replaced this one (`SESSION_REPLACED`). The client does not
    /// reconnect after it, even with
    /// [`ClientOptions::reconnect`](crate::ClientOptions::reconnect): it
    /// would only take the account back from the other session.
    SessionReplaced,
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
            Self::SessionReplaced => f.write_str(
                "this account logged in from another connection, which replaced this one",
            ),
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
