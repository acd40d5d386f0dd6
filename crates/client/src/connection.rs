//! The connection task: the one owner of the socket.
//!
//! [`Client`](crate::Client) handles send [`Request`]s on a bounded queue;
//! the task writes frames, reads frames, routes each `ACK` to the request
//! waiting for it by client id, answers the hub's `PING`s, hands events to the
//! [`Events`](crate::Events) reader, keeps the table of users, confirms the
//! stored messages it handed over and, with `CONFIRMS` granted, the live
//! ones (`confirm.rs` decides when), and reconnects when told to.
//!
//! Everything happens in one `select!` loop whose branches never wait on each
//! other: writing is a cancel-safe `write_buf` on a buffer the loop owns, so
//! a hub that is slow to read never stops this client from reading (and the
//! reverse), and events wait in a short backlog for room in the event queue.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chinwag_protocol::{
    AccountAction, AccountDone, AccountRequest, AckRun, ClientCodec, ClientFrame, Code,
    DEFAULT_MAX_FRAME, Hello, MAX_FRAME_UNREGISTERED, PROTOCOL_VERSION, ProtocolError, Receipt,
    ReceiptKey, ReceiptRun, RecipientStatus, Recipients, SendFrame, Sequenced, ServerFrame,
    Welcome, encode_into, options,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::{Instant, sleep};
use tokio_util::codec::FramedRead;
use tracing::debug;

use crate::confirm::Confirms;
use crate::mailbox::{Arrival, Mailbox};
use crate::outbox::{self, Outbox};
use crate::receipts::SeenReceipts;
use crate::tls::{self, ReadHalf, TlsOptions, WriteHalf};
use crate::users::{SharedTable, Who};
use crate::{Ack, Backoff, ClientError, ClientOptions, CloseReason, Event};

/// Requests are taken from the queue only while less than this is waiting to
/// be written, so a hub that reads slowly slows the senders down instead of
/// growing this buffer (which can still hold one more message beyond it).
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// The client id of the first `SEND`. An `ERROR` about an `ACCOUNT` request
/// carries the action's byte (1 to 3) as its reference where an error about
/// a message carries the message's id; starting above them keeps the two
/// apart.
const FIRST_SEND_ID: u64 = 4;

/// What [`Client`](crate::Client) handles ask of the connection task.
#[derive(Debug)]
pub(crate) enum Request {
    /// Send a message; answer with its ack. `permit` is its slot under
    /// [`ClientOptions::max_pending`], released when the ack arrives.
    Send {
        to: Recipients,
        text: String,
        permit: OwnedSemaphorePermit,
        reply: oneshot::Sender<Result<Ack, ClientError>>,
    },
    /// Ask who is online, or for the table of users.
    Who { reply: WhoReply },
    /// Create an account, change its password or delete it.
    Account {
        request: AccountRequest,
        reply: oneshot::Sender<Result<AccountDone, ClientError>>,
    },
    /// Leave; answer once the connection is closed.
    Quit { reply: oneshot::Sender<()> },
}

impl Request {
    /// Answers the request with `error` (a quit is simply acknowledged).
    fn fail(self, error: ClientError) {
        match self {
            Self::Send { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Self::Who { reply } => reply.fail(error),
            Self::Account { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Self::Quit { reply } => {
                let _ = reply.send(());
            }
        }
    }
}

/// A registered connection: the socket's two halves.
pub(crate) struct Link {
    reader: FramedRead<ReadHalf, ClientCodec>,
    writer: WriteHalf,
    /// The largest payload the hub accepts from us, from its `WELCOME`.
    max_frame: usize,
    /// The hub keeps the table of users for this connection, and sends it
    /// right after `WELCOME`.
    users: bool,
    /// The hub granted `CONFIRMS`: live messages are confirmed too.
    confirms: bool,
    /// The hub granted `RELIABLE`: messages come as `SEQUENCED`, each
    /// handed out once however many times it comes, and confirmed.
    reliable: bool,
    /// The options the hub granted.
    granted: u32,
}

/// An unregistered connection: what [`handshake`] and the account requests
/// of `account.rs` start from.
pub(crate) struct Unregistered {
    pub(crate) reader: FramedRead<ReadHalf, ClientCodec>,
    pub(crate) writer: WriteHalf,
}

impl Unregistered {
    /// Connects to the first of `addrs` that answers, over TLS with `tls`.
    pub(crate) async fn connect(
        addrs: &[SocketAddr],
        tls: Option<&TlsOptions>,
    ) -> Result<Self, ClientError> {
        let stream = connect_any(addrs).await?;
        let (read_half, writer) = tls::open(stream, tls).await?;
        Ok(Self {
            reader: FramedRead::new(read_half, ClientCodec::default()),
            writer,
        })
    }

    /// Writes one frame, within the limit the hub holds unregistered
    /// clients to.
    pub(crate) async fn write(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        let mut out = BytesMut::new();
        encode_into(frame, MAX_FRAME_UNREGISTERED, &mut out)?;
        self.writer.write_all(&out).await?;
        // TLS sends the tail of a write only when flushed.
        self.writer.flush().await?;
        Ok(())
    }

    /// The next frame, with the hub's pings answered on the way; an error
    /// if the connection ends first (`before` says before what).
    pub(crate) async fn next(&mut self, before: &str) -> Result<ServerFrame, ClientError> {
        loop {
            match self.reader.next().await {
                Some(Ok(ServerFrame::Ping(token))) => self.write(&ClientFrame::Pong(token)).await?,
                Some(Ok(frame)) => return Ok(frame),
                Some(Err(error)) => {
                    return Err(
                        not_a_hub(self.reader.read_buffer()).unwrap_or_else(|| error.into())
                    );
                }
                None => {
                    return Err(ClientError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the hub closed the connection before {before}"),
                    )));
                }
            }
        }
    }
}

/// Opens a connection to the first of `addrs` that answers and registers
/// `nick` as `options` say (the `HELLO` options, the password), all within
/// their `connect_timeout`.
pub(crate) async fn open(
    addrs: &[SocketAddr],
    nick: &str,
    options: &ClientOptions,
) -> Result<(Link, Welcome), ClientError> {
    tokio::time::timeout(options.connect_timeout, handshake(addrs, nick, options))
        .await
        .map_err(|_| ClientError::Timeout)?
}

async fn handshake(
    addrs: &[SocketAddr],
    nick: &str,
    options: &ClientOptions,
) -> Result<(Link, Welcome), ClientError> {
    let mut conn = Unregistered::connect(addrs, options.tls.as_ref()).await?;
    let asked = options.hello_options();
    // With a password, `options` must be present; it always is.
    conn.write(&ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        nick: nick.as_bytes().to_vec().into(),
        options: Some(asked),
        password: options.password.clone(),
    }))
    .await?;

    let welcome = loop {
        match conn.next("registering this client").await? {
            ServerFrame::Welcome(welcome) => break welcome,
            ServerFrame::Error(error) => {
                return Err(ClientError::refusal(error.code, error.message, nick));
            }
            other => debug!(?other, "ignoring a frame before WELCOME"),
        }
    };
    let max_frame = welcome.max_frame as usize;
    // The hub's ACK, ROSTER and USERS frames are not held to `max_frame`
    // (an ACK can be 5/3 of the SEND it answers): accept more than we may
    // send.
    conn.reader
        .decoder_mut()
        .set_max_frame(max_frame.saturating_mul(2).max(DEFAULT_MAX_FRAME));

    // Not waited for here: a hub that grants the option but sends no
    // table (one from before accounts masked the options it was asked for
    // with every bit it knew) would hold the connection up until it timed
    // out.
    let granted = welcome.options.unwrap_or(0);
    let users = granted & options::USERS != 0 && asked & options::NO_PRESENCE == 0;
    let link = Link {
        reader: conn.reader,
        writer: conn.writer,
        max_frame,
        users,
        // Confirming what the hub did not grant would be ignored; not
        // sending it keeps such a client's traffic as it always was.
        confirms: granted & asked & options::CONFIRMS != 0,
        reliable: granted & asked & options::RELIABLE != 0,
        granted,
    };
    Ok((link, welcome))
}

/// What the first bytes from a server that is not a hub's binary port look
/// like, if they are text: a binary hub's first frame starts with a length
/// prefix whose first byte is 0 for any frame under 16 MiB, while text starts
/// with a printable character (the text port's greeting is `* welcome ...`,
/// whose first four bytes read as a length of 706,770,789).
fn not_a_hub(first: &[u8]) -> Option<ClientError> {
    let start = first.get(..4)?;
    if !start.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return None;
    }
    let what = if first.starts_with(b"* ") || first.starts_with(b"! ") {
        "it speaks chinwag's plain-text protocol (is this the --text-listen port?)"
    } else if first.starts_with(b"HTTP/") {
        "it is an HTTP server"
    } else {
        "it sent text, not chinwag frames"
    };
    Some(ClientError::NotAHub(what.to_owned()))
}

pub(crate) async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, ClientError> {
    let mut last = None;
    for &addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(source) => last = Some(ClientError::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| {
        ClientError::Resolve(io::Error::new(
            io::ErrorKind::NotFound,
            "the address resolved to nothing",
        ))
    }))
}

/// Writes what `out` holds (`Some` of how much), or with nothing left to
/// write flushes the stream (`None`). Cancel-safe, as both are.
async fn write_or_flush(writer: &mut WriteHalf, out: &mut BytesMut) -> io::Result<Option<usize>> {
    if out.is_empty() {
        writer.flush().await.map(|()| None)
    } else {
        writer.write_buf(out).await.map(Some)
    }
}

/// Events on their way to the [`Events`](crate::Events) reader.
struct Outlet {
    tx: mpsc::Sender<Event>,
    /// Events waiting for room in the queue. The task reads no frame while
    /// this is non-empty, so it holds at most a few control events beyond
    /// the one frame just read.
    backlog: VecDeque<Event>,
    /// How many of the backlog's events are stored messages.
    stored_waiting: usize,
    /// The messages moved into the queue since the task last took them, to
    /// confirm.
    handed: Vec<Handed>,
    /// Live messages are confirmed too (the current connection was granted
    /// `CONFIRMS`).
    confirm_live: bool,
    /// Receipts are confirmed too (the current connection is a reliable
    /// session, whose receipts the hub keeps until they are).
    confirm_receipts: bool,
    /// The reader dropped [`Events`](crate::Events): discard from now on.
    gone: bool,
}

/// A message (or a reliable session's receipt) moved into the event queue:
/// handed to the application, and to be confirmed.
#[derive(Debug, Clone)]
enum Handed {
    Stored(u64),
    Live(u64),
    Receipt(ReceiptKey),
}

impl Outlet {
    fn push(&mut self, event: Event) {
        if !self.gone {
            if matches!(event, Event::Stored(_)) {
                self.stored_waiting += 1;
            }
            self.backlog.push_back(event);
        }
    }

    fn waiting(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Waits for room in the queue and moves one event into it. Cancel-safe:
    /// the event leaves the backlog only once it is in the queue.
    async fn flush_one(&mut self) {
        if let Ok(permit) = self.tx.reserve().await {
            if let Some(event) = self.backlog.pop_front() {
                match &event {
                    Event::Stored(message) => {
                        self.stored_waiting = self.stored_waiting.saturating_sub(1);
                        self.handed.push(Handed::Stored(message.id));
                    }
                    Event::Message(message) if self.confirm_live => {
                        self.handed.push(Handed::Live(message.id));
                    }
                    Event::Receipt(receipt) if self.confirm_receipts => {
                        self.handed.push(Handed::Receipt(ReceiptKey::of(receipt)));
                    }
                    _ => {}
                }
                permit.send(event);
            }
        } else {
            // Nothing discarded here is confirmed: a stored message stays
            // in the mailbox, and a live one's sender gets no receipt.
            self.gone = true;
            self.backlog.clear();
            self.stored_waiting = 0;
            self.handed.clear();
        }
    }

    /// Hands over everything left, for as long as the reader is there.
    async fn drain(&mut self) {
        while let Some(event) = self.backlog.pop_front() {
            if self.tx.send(event).await.is_err() {
                break;
            }
        }
    }
}

/// A message on the wire, waiting for its ack.
struct Pending {
    reply: oneshot::Sender<Result<Ack, ClientError>>,
    /// The names it was sent to; `None` for everyone.
    to: Option<Vec<String>>,
    /// Released when the ack arrives, or the connection is lost and the
    /// message is not kept to be sent again.
    permit: OwnedSemaphorePermit,
    /// In a reliable session: the message as it is sent again after a
    /// lost connection, and how many times it was sent.
    again: Option<(Recipients, String, u32)>,
}

/// Answers each message of an `ACK_RUN` with the `Ack` the hub would
/// otherwise have sent: every distinct name (the first spelling of those
/// equal but for ASCII case, as the hub matches them) delivered.
fn on_ack_run(run: AckRun, conn: &mut Conn) {
    // A run longer than what is pending names messages that are not: no
    // need to look for each of up to 2^32 of them.
    let pending = conn.pending.len();
    for (client_id, message_id) in run.ids().take(pending) {
        let Some(pending) = conn.pending.remove(&client_id) else {
            debug!(client_id, "ack run for no pending message");
            continue;
        };
        let mut statuses: Vec<RecipientStatus> = Vec::new();
        for name in pending.to.unwrap_or_default() {
            if !statuses.iter().any(|s| s.nick.eq_ignore_ascii_case(&name)) {
                statuses.push(RecipientStatus {
                    nick: name,
                    status: Code::DELIVERED,
                });
            }
        }
        let ack = chinwag_protocol::Ack {
            client_id,
            message_id,
            delivered: u32::try_from(statuses.len()).unwrap_or(u32::MAX),
            statuses,
        };
        let _ = pending.reply.send(Ok(Ack::new(ack, false)));
    }
}

/// How one connection ended.
enum Ended {
    /// We quit; answer the quitter (none when every handle was dropped).
    Quit(Option<oneshot::Sender<()>>),
    /// The connection was lost.
    Lost(CloseReason),
}

/// How a reconnection ended.
enum Reconnect {
    Done {
        /// Boxed: the other outcomes are small, and this one is rare.
        link: Box<Link>,
        welcome: Welcome,
        attempts: u32,
    },
    Quit(Option<oneshot::Sender<()>>),
    GaveUp {
        attempts: u32,
        last: ClientError,
    },
}

/// Who waits for the answer to a `WHO`.
#[derive(Debug)]
pub(crate) enum WhoReply {
    /// [`Client::who`](crate::Client::who): the names online.
    Names(oneshot::Sender<Result<Vec<String>, ClientError>>),
    /// [`Client::who_users`](crate::Client::who_users): the table if there is one.
    Table(oneshot::Sender<Result<Who, ClientError>>),
}

impl WhoReply {
    /// Answers; gives the answer back if its caller gave up waiting.
    fn answer(self, who: Who) -> Option<Who> {
        match self {
            Self::Names(reply) => {
                let online = who.online();
                reply.send(Ok(online)).err().map(|_| who)
            }
            Self::Table(reply) => reply.send(Ok(who)).err().and_then(Result::ok),
        }
    }

    fn fail(self, error: ClientError) {
        match self {
            Self::Names(reply) => {
                let _ = reply.send(Err(error));
            }
            Self::Table(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// The state of one live connection, apart from the socket.
struct Conn {
    /// Bytes encoded and not yet written.
    out: BytesMut,
    max_frame: usize,
    /// Messages sent, by client id.
    pending: HashMap<u64, Pending>,
    /// `WHO`s sent, in order: the hub answers them in order.
    whos: VecDeque<WhoReply>,
    /// The table of users that follows `WELCOME` has not come yet: the
    /// first `USERS` is that table, not the answer to a `WHO`.
    table_due: bool,
    /// Account requests sent, in order. The hub may answer them out of
    /// order (passwords are checked off its actor), so an answer goes to
    /// the first one of its action.
    accounts: VecDeque<(
        AccountAction,
        oneshot::Sender<Result<AccountDone, ClientError>>,
    )>,
    /// Messages handed over and not yet confirmed.
    confirms: Confirms,
    /// `QUIT` is queued: nothing may follow it (the hub closes the
    /// connection on it, and a write to a closed socket would turn a quit
    /// into a failure).
    quit_sent: bool,
    /// The hub granted `RELIABLE`: what is sent is kept until acknowledged.
    reliable: bool,
}

impl Conn {
    fn queue(&mut self, frame: &ClientFrame) -> Result<(), ProtocolError> {
        encode_into(frame, self.max_frame, &mut self.out)
    }

    /// Queues a `SEND` with client id `id`, sent `sendings` times before,
    /// to wait for its ack; in a reliable session it is kept to be sent
    /// again should the connection be lost first.
    fn send(
        &mut self,
        id: u64,
        to: Recipients,
        text: String,
        permit: OwnedSemaphorePermit,
        reply: oneshot::Sender<Result<Ack, ClientError>>,
        sendings: u32,
    ) {
        let again = self.reliable.then(|| (to.clone(), text.clone()));
        let frame = ClientFrame::Send(SendFrame { id, to, text });
        if let Err(error) = self.queue(&frame) {
            let _ = reply.send(Err(error.into()));
            return;
        }
        let ClientFrame::Send(SendFrame { to, .. }) = frame else {
            return;
        };
        let to = match to {
            Recipients::Users(names) => Some(names),
            Recipients::Everyone => None,
        };
        let again = again.map(|(to, text)| (to, text, sendings + 1));
        self.pending.insert(
            id,
            Pending {
                reply,
                to,
                permit,
                again,
            },
        );
    }

    fn queue_confirm(&mut self, ids: Vec<u64>) {
        if self.quit_sent {
            return;
        }
        if let Err(error) = self.queue(&ClientFrame::Confirm(ids)) {
            // 256 ids always fit a frame; left unconfirmed, stored messages
            // would only come again at the next login, and live ones give
            // no receipt.
            debug!(%error, "cannot encode a CONFIRM");
        }
    }

    fn queue_confirm_receipts(&mut self, keys: Vec<ReceiptKey>) {
        if self.quit_sent {
            return;
        }
        let frame = self.confirms.receipts_frame(keys);
        if let Err(error) = self.queue(&frame) {
            // 64 receipts always fit a frame; left unconfirmed, they only
            // come again at the next login.
            debug!(%error, "cannot encode a CONFIRM_RECEIPTS");
        }
    }

    /// Fails every request still waiting for an answer.
    fn abandon(&mut self) {
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.send(Err(ClientError::Disconnected));
        }
        for who in self.whos.drain(..) {
            who.fail(ClientError::Disconnected);
        }
        for (_, reply) in self.accounts.drain(..) {
            let _ = reply.send(Err(ClientError::Disconnected));
        }
    }

    /// Queues `QUIT`, after a `CONFIRM` of what was handed over and not yet
    /// confirmed (the hub takes frames in order).
    fn quit(&mut self) {
        while let Some(ids) = self.confirms.take() {
            self.queue_confirm(ids);
        }
        while let Some(keys) = self.confirms.take_receipts() {
            self.queue_confirm_receipts(keys);
        }
        let _ = self.queue(&ClientFrame::Quit);
        self.quit_sent = true;
    }

    /// The account request waiting for an answer about `action`, if any.
    fn take_account(
        &mut self,
        action: AccountAction,
    ) -> Option<oneshot::Sender<Result<AccountDone, ClientError>>> {
        let at = self.accounts.iter().position(|(a, _)| *a == action)?;
        self.accounts.remove(at).map(|(_, reply)| reply)
    }
}

/// The task that owns the connection. Created by
/// [`Client::connect_with`](crate::Client::connect_with) after the first
/// successful registration.
pub(crate) struct Task {
    pub(crate) addrs: Vec<SocketAddr>,
    /// The nickname as registered, reused to register again.
    pub(crate) nick: String,
    pub(crate) options: ClientOptions,
    pub(crate) requests: mpsc::Receiver<Request>,
    outlet: Outlet,
    /// The table of users, shared with the [`Client`](crate::Client) handles.
    users: Arc<SharedTable>,
    /// Stored messages handed out over the client's life, and how much of
    /// the current connection's mailbox has been read.
    mailbox: Mailbox,
    /// The next client id for a `SEND`; never reused, even across
    /// reconnections, so a late ack cannot be mistaken for another's.
    next_id: u64,
    /// The next token for a keepalive `PING`.
    next_ping: u64,
    /// A reliable session's messages waiting for a connection.
    outbox: Outbox,
    /// The receipts handed over, across connections.
    seen_receipts: SeenReceipts,
    /// The last connection was a reliable session: a message sent while
    /// disconnected waits in the outbox instead of failing.
    reliable: bool,
}

impl Task {
    pub(crate) fn new(
        addrs: Vec<SocketAddr>,
        nick: String,
        options: ClientOptions,
        requests: mpsc::Receiver<Request>,
        events: mpsc::Sender<Event>,
        users: Arc<SharedTable>,
    ) -> Self {
        // Unique for the account in a reliable session (`outbox.rs`).
        let next_id = if options.reliable {
            outbox::first_id(FIRST_SEND_ID)
        } else {
            FIRST_SEND_ID
        };
        Self {
            addrs,
            nick,
            options,
            requests,
            outlet: Outlet {
                tx: events,
                backlog: VecDeque::new(),
                stored_waiting: 0,
                handed: Vec::new(),
                confirm_live: false,
                confirm_receipts: false,
                gone: false,
            },
            users,
            mailbox: Mailbox::default(),
            seen_receipts: SeenReceipts::default(),
            next_id,
            next_ping: 1,
            outbox: Outbox::default(),
            reliable: false,
        }
    }

    /// Serves `link`, and the ones that replace it, until the client closes.
    pub(crate) async fn run(mut self, mut link: Link) {
        let (reason, quitter) = loop {
            let reason = match self.serve(&mut link).await {
                Ended::Quit(quitter) => break (CloseReason::Quit, quitter),
                Ended::Lost(reason) => reason,
            };
            debug!(%reason, "connection lost");
            // Reconnecting would only take the account back from the
            // session that replaced this one, which would do the same.
            if matches!(reason, CloseReason::SessionReplaced) {
                break (reason, None);
            }
            let Some(backoff) = self.options.reconnect.clone() else {
                break (reason, None);
            };
            let lost_at = Instant::now();
            self.outlet.push(Event::Disconnected { reason });
            match self.reconnect(&backoff).await {
                Reconnect::Done {
                    link: new_link,
                    welcome,
                    attempts,
                } => {
                    link = *new_link;
                    debug!(attempts, "reconnected");
                    self.outlet.push(Event::Reconnected {
                        after: lost_at.elapsed(),
                        attempts,
                        welcome,
                    });
                }
                Reconnect::Quit(quitter) => break (CloseReason::Quit, quitter),
                Reconnect::GaveUp { attempts, last } => {
                    break (CloseReason::GaveUp { attempts, last }, None);
                }
            }
        };
        drop(link);
        self.outbox.fail(|| ClientError::Closed);
        self.outlet.push(Event::Closed { reason });
        // No more requests; those already queued fail now rather than when
        // the task ends (which waits for the events reader below).
        self.requests.close();
        while let Ok(request) = self.requests.try_recv() {
            request.fail(ClientError::Closed);
        }
        if let Some(quitter) = quitter {
            let _ = quitter.send(());
        }
        self.outlet.drain().await;
    }

    /// The state of a new connection, with the client's made ready for it.
    fn start(&mut self, link: &Link) -> Conn {
        // What was handed out but not confirmed on the last connection is
        // redelivered on this one, then recognised and confirmed (stored
        // messages); the hub forgot the live ones with the connection.
        self.mailbox.new_connection();
        self.outlet.handed.clear();
        // A reliable session confirms what it is handed: that is what
        // takes a message out of the mailbox.
        self.outlet.confirm_live = link.confirms || link.reliable;
        self.outlet.confirm_receipts = link.reliable;
        // The last connection's table stays until this one's arrives.
        if !link.users {
            self.users.set(None);
        }
        self.reliable = link.reliable;
        let mut conn = Conn {
            out: BytesMut::new(),
            max_frame: link.max_frame,
            pending: HashMap::new(),
            whos: VecDeque::new(),
            table_due: link.users,
            accounts: VecDeque::new(),
            confirms: Confirms::new(link.reliable, link.granted & options::RECEIPT_RUNS != 0),
            quit_sent: false,
            reliable: link.reliable,
        };
        self.send_again(&mut conn);
        conn
    }

    /// Sends what the outbox kept, in the order first sent, while fewer
    /// than [`outbox::WINDOW`] messages wait for their ack; what was sent
    /// [`max_sendings`](ClientOptions::max_sendings) times already fails
    /// instead (and everything, on a connection that is not reliable).
    fn send_again(&mut self, conn: &mut Conn) {
        while conn.pending.len() < outbox::WINDOW || !conn.reliable {
            let Some((id, unsent)) = self.outbox.pop() else {
                return;
            };
            if unsent.sendings >= self.options.max_sendings || !conn.reliable {
                let error = if conn.reliable {
                    ClientError::Unacknowledged {
                        sendings: unsent.sendings,
                    }
                } else {
                    ClientError::Disconnected
                };
                let _ = unsent.reply.send(Err(error));
                continue;
            }
            let outbox::Unsent {
                to,
                text,
                permit,
                reply,
                sendings,
            } = unsent;
            conn.send(id, to, text, permit, reply, sendings);
        }
    }

    /// Keeps what a reliable session sent and the hub did not acknowledge,
    /// to send it again on the next connection.
    fn keep_unacknowledged(&mut self, conn: &mut Conn) {
        let kept: Vec<u64> = (conn.pending.iter())
            .filter(|(_, pending)| pending.again.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in kept {
            let Some(pending) = conn.pending.remove(&id) else {
                continue;
            };
            let Some((to, text, sendings)) = pending.again else {
                continue;
            };
            let unsent = outbox::Unsent {
                to,
                text,
                permit: pending.permit,
                reply: pending.reply,
                sendings,
            };
            self.outbox.keep(id, unsent);
        }
    }

    /// Serves one registered connection until it ends.
    async fn serve(&mut self, link: &mut Link) -> Ended {
        let mut conn = self.start(link);
        let keepalive = self.options.keepalive;
        // Fires one keepalive period after the last frame heard (checked
        // when it fires, so that traffic does not reset a timer per frame).
        let far = Duration::from_secs(86_400 * 365);
        let mut last_heard = Instant::now();
        let mut ping_outstanding = false;
        let ping_timer = sleep(keepalive.unwrap_or(far));
        tokio::pin!(ping_timer);
        let mut quitting: Option<Option<oneshot::Sender<()>>> = None;
        let quit_timer = sleep(far);
        tokio::pin!(quit_timer);
        // Fires when the live messages handed over must be confirmed; set
        // to each new deadline (`armed`) as it appears.
        let confirm_timer = sleep(far);
        tokio::pin!(confirm_timer);
        let mut armed = None;
        // Over TLS, what the last write left in the TLS buffer (the socket
        // would block) goes out only when flushed: once the buffer of
        // frames has been written, the stream is flushed too.
        let mut unflushed = false;

        let ended = loop {
            if let Some(due) = conn.confirms.due()
                && armed != Some(due)
            {
                confirm_timer.as_mut().reset(due);
                armed = Some(due);
            }
            tokio::select! {
                () = self.outlet.flush_one(), if self.outlet.waiting() => {
                    self.take_handed(&mut conn);
                }
                () = &mut confirm_timer, if conn.confirms.due().is_some() => {
                    self.confirm(&mut conn);
                }
                written = write_or_flush(&mut link.writer, &mut conn.out),
                    if !conn.out.is_empty() || unflushed =>
                {
                    match written {
                        Ok(Some(0)) => {
                            let error = io::Error::from(io::ErrorKind::WriteZero);
                            break Ended::Lost(CloseReason::Io(error));
                        }
                        Ok(Some(_)) => unflushed = link.writer.buffers(),
                        Ok(None) => unflushed = false,
                        Err(error) => break Ended::Lost(CloseReason::Io(error)),
                    }
                }
                // Read only when the events reader has kept up.
                next = link.reader.next(), if !self.outlet.waiting() => {
                    last_heard = Instant::now();
                    ping_outstanding = false;
                    let frame = match next {
                        Some(Ok(frame)) => frame,
                        _ if quitting.is_some() => break Ended::Quit(quitting.take().flatten()),
                        None => break Ended::Lost(CloseReason::HubClosed),
                        Some(Err(ProtocolError::Io(error))) => break Ended::Lost(CloseReason::Io(error)),
                        Some(Err(error)) => break Ended::Lost(CloseReason::Protocol(error)),
                    };
                    if let Some(reason) = self.on_frame_and_refill(frame, &mut conn) {
                        break Ended::Lost(reason);
                    }
                }
                request = self.requests.recv(),
                    if quitting.is_none() && conn.out.len() < WRITE_HIGH_WATER =>
                {
                    let quitter = match request {
                        Some(Request::Quit { reply }) => Some(reply),
                        Some(request) => {
                            self.on_request(request, &mut conn);
                            continue;
                        }
                        // Every handle is gone: nobody can send any more.
                        None => None,
                    };
                    // QUIT, then wait for the hub to close the connection.
                    conn.quit();
                    quitting = Some(quitter);
                    quit_timer.as_mut().reset(Instant::now() + self.options.quit_timeout);
                }
                () = &mut quit_timer, if quitting.is_some() => {
                    debug!("the hub did not close the connection after QUIT; closing it");
                    break Ended::Quit(quitting.take().flatten());
                }
                () = &mut ping_timer, if keepalive.is_some() && quitting.is_none() => {
                    let period = keepalive.unwrap_or(far);
                    if self.outlet.waiting() {
                        // We are not reading, because our own events reader
                        // is behind: the silence is ours, not the hub's.
                        last_heard = Instant::now();
                        ping_outstanding = false;
                    }
                    if last_heard.elapsed() < period {
                        ping_timer.as_mut().reset(last_heard + period);
                    } else if ping_outstanding {
                        break Ended::Lost(CloseReason::PingTimeout);
                    } else {
                        let _ = conn.queue(&ClientFrame::Ping(self.next_ping));
                        self.next_ping += 1;
                        ping_outstanding = true;
                        last_heard = Instant::now();
                        ping_timer.as_mut().reset(last_heard + period);
                    }
                }
            }
        };
        self.end(conn, &ended);
        ended
    }

    /// Acts on a frame, then sends from the outbox as far as the acks it
    /// brought made room in its window.
    fn on_frame_and_refill(&mut self, frame: ServerFrame, conn: &mut Conn) -> Option<CloseReason> {
        let ended = self.on_frame(frame, conn);
        if !self.outbox.is_empty() {
            self.send_again(conn);
        }
        ended
    }

    /// A connection's end: a reliable session keeps what was not
    /// acknowledged for the next connection if the connection was lost;
    /// every other request still waiting fails.
    fn end(&mut self, mut conn: Conn, ended: &Ended) {
        if matches!(ended, Ended::Lost(_)) {
            self.keep_unacknowledged(&mut conn);
        }
        conn.abandon();
    }

    fn on_request(&mut self, request: Request, conn: &mut Conn) {
        match request {
            Request::Send {
                to,
                text,
                permit,
                reply,
            } => {
                let id = self.next_id;
                self.next_id += 1;
                if self.outbox.is_empty() {
                    conn.send(id, to, text, permit, reply, 0);
                } else {
                    // Behind what waits to be sent again, in order.
                    let unsent = outbox::Unsent {
                        to,
                        text,
                        permit,
                        reply,
                        sendings: 0,
                    };
                    self.outbox.keep(id, unsent);
                    self.send_again(conn);
                }
            }
            Request::Who { reply } => match conn.queue(&ClientFrame::Who) {
                Ok(()) => conn.whos.push_back(reply),
                Err(error) => reply.fail(error.into()),
            },
            Request::Account { request, reply } => {
                let action = request.action;
                match conn.queue(&ClientFrame::Account(request)) {
                    Ok(()) => conn.accounts.push_back((action, reply)),
                    Err(error) => {
                        let _ = reply.send(Err(error.into()));
                    }
                }
            }
            Request::Quit { reply } => {
                // Handled by the loop; kept total for safety.
                let _ = reply.send(());
            }
        }
    }

    /// Takes the messages the outlet handed over to be confirmed, and
    /// queues the `CONFIRM`s that are due.
    fn take_handed(&mut self, conn: &mut Conn) {
        if self.outlet.handed.is_empty() {
            return;
        }
        let now = Instant::now();
        for handed in self.outlet.handed.drain(..) {
            match handed {
                Handed::Stored(id) => conn.confirms.stored(id, now),
                Handed::Live(id) => conn.confirms.live(id, now),
                Handed::Receipt(key) => conn.confirms.receipt(key, now),
            }
        }
        self.confirm(conn);
    }

    /// Queues the `CONFIRM`s that [`Confirms::next`] says are due.
    fn confirm(&mut self, conn: &mut Conn) {
        if conn.confirms.is_empty() {
            return;
        }
        let read = self.mailbox.read(self.outlet.stored_waiting > 0);
        let now = Instant::now();
        while let Some(ids) = conn.confirms.next(read, now) {
            conn.queue_confirm(ids);
        }
        while let Some(keys) = conn.confirms.next_receipts(now) {
            conn.queue_confirm_receipts(keys);
        }
    }

    /// Answers the first `WHO` waiting, or reports the answer as an event.
    fn on_who(&mut self, who: Who, conn: &mut Conn) {
        let unclaimed = match conn.whos.pop_front() {
            Some(reply) => reply.answer(who),
            None => Some(who),
        };
        match unclaimed {
            Some(Who::Roster(roster)) => self.outlet.push(Event::Roster(roster)),
            Some(Who::Users(users)) => self.outlet.push(Event::Users(users)),
            None => {}
        }
    }

    /// A message for a reliable session: part of the mailbox while the
    /// `MAILBOX` header's count has not all arrived (handed out as stored),
    /// live after; either way handed out once in this client's life, and a
    /// copy seen before is confirmed again, not shown.
    fn on_sequenced(&mut self, message: chinwag_protocol::Message, conn: &mut Conn) {
        if !self.mailbox.read(false) {
            return self.on_frame_stored(message, conn);
        }
        match self.mailbox.live(message.id, self.outlet.gone) {
            Some(Arrival::HandOut) => self.outlet.push(Event::Message(message)),
            Some(Arrival::Duplicate) => {
                debug!(id = message.id, "numbered message handed out before");
                conn.confirms.live(message.id, Instant::now());
                self.confirm(conn);
            }
            None => {}
        }
    }

    /// Receipts: handed out, each once in this client's life (the hub may
    /// send one again: a reliable session's after a reconnection, until
    /// confirmed). In a reliable session, one handed out before is
    /// confirmed again.
    fn on_receipts(&mut self, receipts: Vec<Receipt>, conn: &mut Conn) {
        for receipt in receipts {
            let key = ReceiptKey::of(&receipt);
            if self.seen_receipts.first_time(&key) {
                self.outlet.push(Event::Receipt(receipt));
            } else if conn.reliable {
                debug!(id = key.message_id, "receipt handed out before");
                conn.confirms.receipt(key, Instant::now());
            }
        }
        self.confirm(conn);
    }

    /// A message from the mailbox, at login.
    fn on_frame_stored(&mut self, message: chinwag_protocol::Message, conn: &mut Conn) {
        match self.mailbox.arrived(message.id, self.outlet.gone) {
            Some(Arrival::HandOut) => self.outlet.push(Event::Stored(message)),
            Some(Arrival::Duplicate) => {
                debug!(id = message.id, "stored message handed out before");
                conn.confirms.stored(message.id, Instant::now());
            }
            None => debug!(id = message.id, "stored message left for the next login"),
        }
        self.confirm(conn);
    }

    /// The table of users: kept, and handed out as the table after
    /// connecting or as the answer to a `WHO`.
    fn on_users(&mut self, users: Vec<chinwag_protocol::UserEntry>, conn: &mut Conn) {
        self.users.set(Some(users.clone()));
        if conn.table_due {
            conn.table_due = false;
            self.outlet.push(Event::Users(users));
        } else {
            self.on_who(Who::Users(users), conn);
        }
    }

    /// Acts on one frame from the hub; `Some` ends the connection. (A
    /// `SEQUENCED` comes only to a reliable session, which this library
    /// does not ask for yet: it is handed out as any message.)
    fn on_frame(&mut self, frame: ServerFrame, conn: &mut Conn) -> Option<CloseReason> {
        match frame {
            ServerFrame::Message(message) => self.outlet.push(Event::Message(message)),
            ServerFrame::Sequenced(Sequenced { message, .. }) => self.on_sequenced(message, conn),
            ServerFrame::Gap(gap) => self.outlet.push(Event::Gap(gap)),
            ServerFrame::Presence(presence) => {
                self.users.update(|table| table.apply_presence(&presence));
                self.outlet.push(Event::Presence(presence));
            }
            ServerFrame::Mailbox(header) => {
                self.mailbox.announced(header.count);
                self.outlet.push(Event::Mailbox(header));
                self.confirm(conn);
            }
            ServerFrame::StoredMessage(message) => self.on_frame_stored(message, conn),
            ServerFrame::Users(users) => self.on_users(users, conn),
            ServerFrame::User(user) => {
                self.users.update(|table| table.apply_user(user.clone()));
                self.outlet.push(Event::User(user));
            }
            ServerFrame::Receipts(receipts) => self.on_receipts(receipts, conn),
            ServerFrame::ReceiptRuns(runs) => {
                let receipts = runs.iter().flat_map(ReceiptRun::receipts).collect();
                self.on_receipts(receipts, conn);
            }
            ServerFrame::AccountDone(done) => match conn.take_account(done.action) {
                Some(reply) => {
                    if let Err(Ok(done)) = reply.send(Ok(done)) {
                        self.outlet.push(Event::AccountDone(done));
                    }
                }
                None => self.outlet.push(Event::AccountDone(done)),
            },
            ServerFrame::Ack(ack) => {
                if let Some(pending) = conn.pending.remove(&ack.client_id) {
                    let broadcast = pending.to.is_none();
                    let _ = pending.reply.send(Ok(Ack::new(ack, broadcast)));
                } else {
                    debug!(client_id = ack.client_id, "ack for no pending message");
                }
            }
            ServerFrame::AckRun(run) => on_ack_run(run, conn),
            ServerFrame::Roster(roster) => self.on_who(Who::Roster(roster), conn),
            ServerFrame::Error(error) if error.code == Code::SESSION_REPLACED => {
                return Some(CloseReason::SessionReplaced);
            }
            ServerFrame::Error(error) if error.code.is_fatal() => {
                return Some(CloseReason::Hub(error));
            }
            ServerFrame::Error(error) => {
                // References below the first message id name account actions.
                let account = u8::try_from(error.reference)
                    .ok()
                    .filter(|_| error.reference < FIRST_SEND_ID)
                    .and_then(AccountAction::from_u8)
                    .and_then(|action| conn.take_account(action));
                if let Some(reply) = account {
                    let _ = reply.send(Err(ClientError::Rejected {
                        code: error.code,
                        message: error.message,
                    }));
                    return None;
                }
                let pending = if error.reference == 0 {
                    None
                } else {
                    conn.pending.remove(&error.reference)
                };
                match pending {
                    Some(pending) => {
                        let _ = pending.reply.send(Err(ClientError::Rejected {
                            code: error.code,
                            message: error.message,
                        }));
                    }
                    None => self.outlet.push(Event::Error(error)),
                }
            }
            ServerFrame::Ping(token) => {
                let _ = conn.queue(&ClientFrame::Pong(token));
            }
            ServerFrame::Pong(_) => {}
            ServerFrame::Welcome(_) => debug!("ignoring a second WELCOME"),
        }
        None
    }

    /// Connects and registers again, with backoff, while failing requests
    /// (the client is disconnected) and passing events on.
    async fn reconnect(&mut self, backoff: &Backoff) -> Reconnect {
        let mut attempts = 0;
        loop {
            attempts += 1;
            if let Err(quit) = self.idle(sleep(backoff.delay(attempts))).await {
                return quit;
            }
            // `idle` needs `self`; an attempt is rare enough to clone for.
            let (addrs, nick) = (self.addrs.clone(), self.nick.clone());
            let options = self.options.clone();
            match self
                .idle(async move { open(&addrs, &nick, &options).await })
                .await
            {
                Err(quit) => return quit,
                Ok(Ok((link, welcome))) => {
                    return Reconnect::Done {
                        link: Box::new(link),
                        welcome,
                        attempts,
                    };
                }
                Ok(Err(last)) => {
                    debug!(error = %last, attempts, "reconnection attempt failed");
                    let exhausted = backoff.max_attempts.is_some_and(|max| attempts >= max);
                    if exhausted || !last.is_transient() {
                        return Reconnect::GaveUp { attempts, last };
                    }
                }
            }
        }
    }

    /// Runs `work` while no connection is up: requests fail at once with
    /// [`ClientError::Disconnected`], and a quit interrupts the work.
    async fn idle<F: Future>(&mut self, work: F) -> Result<F::Output, Reconnect> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                output = &mut work => return Ok(output),
                () = self.outlet.flush_one(), if self.outlet.waiting() => {}
                request = self.requests.recv() => match request {
                    Some(Request::Quit { reply }) => return Err(Reconnect::Quit(Some(reply))),
                    // A reliable session's message waits for the next connection.
                    Some(Request::Send { to, text, permit, reply }) if self.reliable => {
                        let id = self.next_id;
                        self.next_id += 1;
                        let unsent = outbox::Unsent { to, text, permit, reply, sendings: 0 };
                        self.outbox.keep(id, unsent);
                    }
                    Some(request) => request.fail(ClientError::Disconnected),
                    None => return Err(Reconnect::Quit(None)),
                },
            }
        }
    }
}
