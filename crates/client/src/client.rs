//! The [`Client`] handle, and the [`Ack`] a message earns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use chinwag_protocol::{
    AccountDone, AccountRequest, Code, Nick, RecipientStatus, Recipients, UserEntry, Welcome,
};
use tokio::net::{ToSocketAddrs, lookup_host};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::connection::{Request, Task, WhoReply, open};
use crate::users::{SharedTable, Who};
use crate::{ClientError, ClientOptions, Events};

/// Requests from all of a client's handles waiting for the connection task.
/// Small: the task takes them as fast as it can encode them, and a full
/// queue makes senders wait, which is the back-pressure we want.
const REQUEST_QUEUE: usize = 64;

/// A reliable session's most messages waiting for an ack: the messages per
/// account a hub remembers to recognise one sent again (the store's
/// `SENT_WINDOW`).
const RELIABLE_MAX_PENDING: usize = 1024;

/// A handle to a connection to a chinwag hub. Cheap to clone; every clone
/// talks over the same connection, which stays open while any clone does
/// (dropping the last one quits).
///
/// ```no_run
/// use chinwag_client::{Client, Event};
///
/// # async fn demo() -> Result<(), chinwag_client::ClientError> {
/// let (client, mut events) = Client::connect("127.0.0.1:2446", "alice").await?;
/// let ack = client.send_to(&["bob"], "hello, bob").await?;
/// if !ack.all_delivered() {
///     eprintln!("bob is not online");
/// }
/// while let Some(event) = events.recv().await {
///     if let Event::Message(message) = event {
///         println!("<{}> {}", message.from, message.text);
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

struct Shared {
    requests: mpsc::Sender<Request>,
    /// One permit per message whose ack has not arrived
    /// ([`ClientOptions::max_pending`]).
    pending: Arc<Semaphore>,
    welcome: Welcome,
    /// The table of users, kept by the connection task.
    users: Arc<SharedTable>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("nick", &self.shared.welcome.nick)
            .field("closed", &self.shared.requests.is_closed())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to the hub at `addr`, registers `nick`, and returns the
    /// client with the stream of its [`Events`]. Uses
    /// [`ClientOptions::default`]: no reconnection.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), chinwag_client::ClientError> {
    /// let (client, events) = chinwag_client::Client::connect("127.0.0.1:2446", "alice").await?;
    /// println!("online: {:?}", client.welcome().roster);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ClientError::InvalidNick`] before anything is sent;
    /// [`ClientError::Resolve`], [`ClientError::Connect`] or
    /// [`ClientError::Timeout`] if the hub cannot be reached;
    /// [`ClientError::NickTaken`] or [`ClientError::Refused`] if the hub
    /// refuses to register this client; for accounts,
    /// [`ClientError::NickRegistered`] (the nickname needs its password:
    /// [`ClientOptions::password`]), [`ClientError::BadPassword`],
    /// [`ClientError::LoginThrottled`], [`ClientError::NoSuchAccount`],
    /// [`ClientError::AccountRequired`] or
    /// [`ClientError::AccountsUnavailable`].
    pub async fn connect(
        addr: impl ToSocketAddrs,
        nick: &str,
    ) -> Result<(Self, Events), ClientError> {
        Self::connect_with(addr, nick, ClientOptions::default()).await
    }

    /// As [`connect`](Self::connect), with options, for example to reconnect
    /// automatically or to log in to an account with its password.
    ///
    /// The address is resolved once, here; reconnections go to the same
    /// socket addresses.
    ///
    /// ```no_run
    /// use chinwag_client::{Backoff, Client, ClientOptions};
    ///
    /// # async fn demo() -> Result<(), chinwag_client::ClientError> {
    /// let options = ClientOptions::default()
    ///     .reconnect(Backoff::default())
    ///     .password("correct horse battery");
    /// let (client, events) = Client::connect_with("127.0.0.1:2446", "alice", options).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(
        addr: impl ToSocketAddrs,
        nick: &str,
        options: ClientOptions,
    ) -> Result<(Self, Events), ClientError> {
        Nick::parse(nick.as_bytes())?;
        let addrs: Vec<_> = lookup_host(addr)
            .await
            .map_err(ClientError::Resolve)?
            .collect();
        let (link, welcome) = open(&addrs, nick, &options).await?;

        let (requests, requests_rx) = mpsc::channel(REQUEST_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(options.event_capacity.max(1));
        // A reliable session's unacknowledged messages must stay among the
        // account's newest the hub remembers (`outbox.rs`).
        let max_pending = if options.reliable {
            options.max_pending.min(RELIABLE_MAX_PENDING)
        } else {
            options.max_pending
        };
        let pending = Arc::new(Semaphore::new(max_pending.max(1)));
        let users = Arc::new(SharedTable::default());
        let task = Task::new(
            addrs,
            welcome.nick.clone(),
            options,
            requests_rx,
            events_tx,
            Arc::clone(&users),
        );
        tokio::spawn(task.run(link));
        let client = Self {
            shared: Arc::new(Shared {
                requests,
                pending,
                welcome,
                users,
            }),
        };
        Ok((client, Events { rx: events_rx }))
    }

    /// The nickname as registered.
    pub fn nick(&self) -> &str {
        &self.shared.welcome.nick
    }

    /// The hub's `WELCOME` to the first connection: its frame limit and who
    /// was online then. Later connections report theirs in
    /// [`Event::Reconnected`](crate::Event::Reconnected).
    pub fn welcome(&self) -> &Welcome {
        &self.shared.welcome
    }

    /// The table of users: every registered user, online or not (with when
    /// it was last seen), and every guest online, sorted
    /// case-insensitively; a copy, as of the last frame the client read. It
    /// leaves out clients that are not announced
    /// ([`ClientOptions::quiet`]). `None` until the hub's table arrives,
    /// right after connecting (as [`Event::Users`](crate::Event::Users)),
    /// and when the hub keeps no table for this client
    /// ([`ClientOptions::users`]; a hub without accounts).
    ///
    /// ```no_run
    /// # fn demo(client: chinwag_client::Client) {
    /// for user in client.users().unwrap_or_default() {
    ///     let state = if user.online() { "online" } else { "offline" };
    ///     println!("{} {state}", user.nick);
    /// }
    /// # }
    /// ```
    pub fn users(&self) -> Option<Vec<UserEntry>> {
        self.shared.users.snapshot()
    }

    /// Whether the client has closed for good (quit, gave up, or ended by
    /// the hub). Requests then fail with [`ClientError::Closed`].
    pub fn is_closed(&self) -> bool {
        self.shared.requests.is_closed()
    }

    /// Sends `text` to `to` and waits for the hub's [`Ack`].
    ///
    /// Cancel-safe in this sense: dropped before the message is queued,
    /// nothing is sent; dropped after, the message is sent and its ack is
    /// discarded. To send several messages without waiting for each ack,
    /// use [`submit`](Self::submit).
    ///
    /// ```no_run
    /// use chinwag_client::{Client, Code, Recipients};
    ///
    /// # async fn demo(client: Client) -> Result<(), chinwag_client::ClientError> {
    /// let to = Recipients::Users(vec!["bob".into(), "carol".into()]);
    /// let ack = client.send(to, "lunch?").await?;
    /// assert_eq!(ack.status("carol"), Some(Code::DELIVERED));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ClientError::Rejected`] if the hub refused the message (for example
    /// `BAD_REQUEST` for an empty recipient list);
    /// [`ClientError::Protocol`] if it is too large to send;
    /// [`ClientError::Disconnected`] if the connection was lost before the
    /// ack; [`ClientError::Closed`] once the client is closed.
    pub async fn send(&self, to: Recipients, text: impl Into<String>) -> Result<Ack, ClientError> {
        self.submit(to, text).await?.await
    }

    /// Sends `text` to the named users and waits for the [`Ack`].
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_to<S: AsRef<str>>(
        &self,
        to: impl IntoIterator<Item = S>,
        text: impl Into<String>,
    ) -> Result<Ack, ClientError> {
        let to = to
            .into_iter()
            .map(|nick| nick.as_ref().to_owned())
            .collect();
        self.send(Recipients::Users(to), text).await
    }

    /// Sends `text` to everyone online but this client and waits for the
    /// [`Ack`].
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn broadcast(&self, text: impl Into<String>) -> Result<Ack, ClientError> {
        self.send(Recipients::Everyone, text).await
    }

    /// Queues a message and returns at once with a [`PendingAck`] that
    /// resolves to its ack, so that many messages can be on the wire at
    /// once. Messages go out in the order they were submitted. Waits only
    /// while [`ClientOptions::max_pending`] messages await their acks or the
    /// request queue is full.
    ///
    /// ```no_run
    /// use chinwag_client::{Client, Recipients};
    ///
    /// # async fn demo(client: Client) -> Result<(), chinwag_client::ClientError> {
    /// let mut acks = Vec::new();
    /// for n in 0..10 {
    ///     acks.push(client.submit(Recipients::Everyone, format!("tick {n}")).await?);
    /// }
    /// for ack in acks {
    ///     println!("delivered to {}", ack.await?.delivered());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ClientError::Closed`] once the client is closed; the others of
    /// [`send`](Self::send) come from the [`PendingAck`].
    pub async fn submit(
        &self,
        to: Recipients,
        text: impl Into<String>,
    ) -> Result<PendingAck, ClientError> {
        let permit = Arc::clone(&self.shared.pending)
            .acquire_owned()
            .await
            .map_err(|_| ClientError::Closed)?;
        let (reply, rx) = oneshot::channel();
        let request = Request::Send {
            to,
            text: text.into(),
            permit,
            reply,
        };
        self.shared
            .requests
            .send(request)
            .await
            .map_err(|_| ClientError::Closed)?;
        Ok(Pending { rx })
    }

    /// Who is online, this client included, sorted case-insensitively.
    ///
    /// Cancel-safe: if this is dropped before the answer comes, the answer
    /// arrives as an [`Event::Roster`](crate::Event::Roster) instead.
    ///
    /// # Errors
    /// [`ClientError::Disconnected`] if the connection was lost first;
    /// [`ClientError::Closed`] once the client is closed.
    pub async fn who(&self) -> Result<Vec<String>, ClientError> {
        self.submit_who().await?.await
    }

    /// Queues a `WHO` and returns at once with a [`Pending`] roster, like
    /// [`submit`](Self::submit) does for messages: requests go out in the
    /// order they were submitted, so a script's `/who` sees the hub as it was
    /// between the messages before and after it.
    ///
    /// # Errors
    /// [`ClientError::Closed`] once the client is closed; the others of
    /// [`who`](Self::who) come from the [`Pending`].
    pub async fn submit_who(&self) -> Result<Pending<Vec<String>>, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.queue_who(WhoReply::Names(reply)).await?;
        Ok(Pending { rx })
    }

    /// Queues a `WHO` whose answer goes to `reply`.
    async fn queue_who(&self, reply: WhoReply) -> Result<(), ClientError> {
        self.shared
            .requests
            .send(Request::Who { reply })
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Asks the hub for the table of users ([`Who::Users`]), or who is
    /// online where it keeps no table for this client ([`Who::Roster`]).
    /// The table also replaces the one [`users`](Self::users) returns.
    ///
    /// Cancel-safe: if this is dropped before the answer comes, the answer
    /// arrives as an [`Event::Users`](crate::Event::Users) (or
    /// [`Event::Roster`](crate::Event::Roster)) instead.
    ///
    /// # Errors
    /// As [`who`](Self::who).
    pub async fn who_users(&self) -> Result<Who, ClientError> {
        self.submit_who_users().await?.await
    }

    /// Queues a `WHO` as [`submit_who`](Self::submit_who) does, for the
    /// answer of [`who_users`](Self::who_users).
    ///
    /// # Errors
    /// As [`submit_who`](Self::submit_who).
    pub async fn submit_who_users(&self) -> Result<Pending<Who>, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.queue_who(WhoReply::Table(reply)).await?;
        Ok(Pending { rx })
    }

    /// Sends an account request on this connection and waits for the
    /// answer: for example, creating the account of the nickname this
    /// client registered as a guest, which makes this connection that
    /// account's session. Without a connection,
    /// [`account`](crate::account) does the same.
    ///
    /// Cancel-safe: if this is dropped before the answer comes, the answer
    /// arrives as an [`Event::AccountDone`](crate::Event::AccountDone) (a
    /// refusal as an [`Event::Error`](crate::Event::Error)).
    ///
    /// # Errors
    /// [`ClientError::Rejected`] when the hub refuses it (see
    /// [`account`](crate::account) for the codes);
    /// [`ClientError::Disconnected`] if the connection was lost first;
    /// [`ClientError::Closed`] once the client is closed.
    pub async fn account(&self, request: AccountRequest) -> Result<AccountDone, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .requests
            .send(Request::Account { request, reply })
            .await
            .map_err(|_| ClientError::Closed)?;
        Pending { rx }.await
    }

    /// Leaves: sends `QUIT` and waits until the hub has closed the connection
    /// (at most [`ClientOptions::quit_timeout`]). Others see this client go
    /// offline. Messages that arrived before the close are still delivered
    /// as events, followed by [`Event::Closed`](crate::Event::Closed).
    /// Requests waiting for answers fail with [`ClientError::Disconnected`].
    ///
    /// Returns at once if the client is already closed.
    pub async fn quit(&self) {
        let (reply, rx) = oneshot::channel();
        if self
            .shared
            .requests
            .send(Request::Quit { reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

/// The answer to a request queued with [`Client::submit`] (an [`Ack`]) or
/// [`Client::submit_who`] (a roster), as a future. Dropping it discards the
/// answer, not the request.
#[derive(Debug)]
#[must_use = "a Pending does nothing unless awaited; dropping it discards the answer"]
pub struct Pending<T> {
    rx: oneshot::Receiver<Result<T, ClientError>>,
}

/// The [`Ack`] of a message sent with [`Client::submit`].
pub type PendingAck = Pending<Ack>;

impl<T> Future for Pending<T> {
    type Output = Result<T, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answer = ready!(Pin::new(&mut self.rx).poll(cx));
        Poll::Ready(answer.unwrap_or(Err(ClientError::Closed)))
    }
}

/// What became of a message: for each recipient, whether the hub queued it
/// on that recipient's connection, or stored it in the mailbox of a
/// registered recipient who is offline ([`Code::STORED`]).
///
/// "Delivered" means queued on the recipient's live connection, not read;
/// "stored" means on the hub's disk, to be handed over at the recipient's
/// next login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    frame: chinwag_protocol::Ack,
    broadcast: bool,
}

impl Ack {
    pub(crate) fn new(frame: chinwag_protocol::Ack, broadcast: bool) -> Self {
        Self { frame, broadcast }
    }

    /// The hub's id for the message (the `id` of the
    /// [`Message`](crate::Message) its recipients got).
    pub fn message_id(&self) -> u64 {
        self.frame.message_id
    }

    /// How many recipients the message was queued for.
    pub fn delivered(&self) -> u32 {
        self.frame.delivered
    }

    /// Whether the message was for everyone.
    pub fn is_broadcast(&self) -> bool {
        self.broadcast
    }

    /// The per-recipient outcomes. For a message to named users: every
    /// distinct recipient in the order first named. For a broadcast: only
    /// the recipients it could not be delivered to.
    pub fn statuses(&self) -> &[RecipientStatus] {
        &self.frame.statuses
    }

    /// The outcome for one recipient, named in any case; `None` if it was
    /// not named (or, for a broadcast, if nothing went wrong for it).
    pub fn status(&self, nick: &str) -> Option<Code> {
        self.frame
            .statuses
            .iter()
            .find(|s| s.nick.eq_ignore_ascii_case(nick))
            .map(|s| s.status)
    }

    /// The recipients that did not get the message and will not, with why
    /// (for example `NO_SUCH_USER`, `MAILBOX_FULL`, `STORE_FAILED`): every
    /// status but [`Code::DELIVERED`] and [`Code::STORED`].
    pub fn failures(&self) -> impl Iterator<Item = &RecipientStatus> {
        self.frame
            .statuses
            .iter()
            .filter(|s| s.status != Code::DELIVERED && s.status != Code::STORED)
    }

    /// The recipients that were offline and have the message in their
    /// mailbox ([`Code::STORED`]).
    pub fn stored(&self) -> impl Iterator<Item = &RecipientStatus> {
        self.frame
            .statuses
            .iter()
            .filter(|s| s.status == Code::STORED)
    }

    /// Whether every recipient got the message live (for a broadcast:
    /// everyone online at the time, possibly nobody). A message stored for
    /// an offline recipient is not delivered yet: see [`is_ok`](Self::is_ok).
    pub fn all_delivered(&self) -> bool {
        self.frame
            .statuses
            .iter()
            .all(|s| s.status == Code::DELIVERED)
    }

    /// Whether the message reached every recipient or its mailbox: nothing
    /// in [`failures`](Self::failures). What a sender usually wants to
    /// know.
    pub fn is_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The `ACK` frame as the hub sent it, for example for
    /// [`text::format_ack_failures`](chinwag_protocol::text::format_ack_failures).
    pub fn frame(&self) -> &chinwag_protocol::Ack {
        &self.frame
    }
}
