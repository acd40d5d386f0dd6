//! The frames, in both directions, and their payload encodings.
//!
//! Every frame's payload starts with a one-byte opcode. Client frames use
//! `0x01..=0x7f`, hub frames `0x81..=0xff`; `PING` and `PONG` travel both ways.

use bytes::{BufMut, Bytes, BytesMut};

use crate::account::{AccountDone, AccountRequest, MailboxHeader, UserEntry};
use crate::receipt::{Receipt, ReceiptKey, ReceiptKeyRun, ReceiptRun};
use crate::wire::{Reader, put_count, put_nick, put_nicks, put_text};
use crate::{AccountAction, Code, ProtocolError};

/// The protocol version this crate speaks, sent in `HELLO` and `WELCOME`.
pub const PROTOCOL_VERSION: u16 = 1;

/// Opcodes, the first byte of every payload.
pub mod opcode {
    /// Client: register a nickname.
    pub const HELLO: u8 = 0x01;
    /// Client: send a message.
    pub const SEND: u8 = 0x02;
    /// Client: ask who is online.
    pub const WHO: u8 = 0x03;
    /// Client: leave cleanly.
    pub const QUIT: u8 = 0x04;
    /// Either side: are you there?
    pub const PING: u8 = 0x05;
    /// Either side: answer to a ping.
    pub const PONG: u8 = 0x06;
    /// Client: create an account, change its password, or delete it.
    pub const ACCOUNT: u8 = 0x07;
    /// Client: these messages are handled: drop stored ones from the
    /// mailbox, and tell their senders who asked for receipts.
    pub const CONFIRM: u8 = 0x08;
    /// Client (a reliable session): these receipts are handled; the hub
    /// stops keeping them.
    pub const CONFIRM_RECEIPTS: u8 = 0x09;
    /// Client (a reliable session that asked for `RECEIPT_RUNS`): these
    /// runs of receipts are handled, as `CONFIRM_RECEIPTS` would name them
    /// one by one.
    pub const CONFIRM_RECEIPT_RUNS: u8 = 0x0a;
    /// Hub: registration accepted.
    pub const WELCOME: u8 = 0x81;
    /// Hub: a message for you.
    pub const MESSAGE: u8 = 0x82;
    /// Hub: what became of a message you sent.
    pub const ACK: u8 = 0x83;
    /// Hub: someone came online or went offline.
    pub const PRESENCE: u8 = 0x84;
    /// Hub: who is online.
    pub const ROSTER: u8 = 0x85;
    /// Hub: something went wrong.
    pub const ERROR: u8 = 0x86;
    /// Hub: a run of messages, each delivered to everyone it named.
    pub const ACK_RUN: u8 = 0x87;
    /// Hub: an `ACCOUNT` request was carried out.
    pub const ACCOUNT_DONE: u8 = 0x88;
    /// Hub: how many stored messages follow, at login.
    pub const MAILBOX: u8 = 0x89;
    /// Hub: a message that waited in your mailbox.
    pub const STORED_MESSAGE: u8 = 0x8a;
    /// Hub: the table of users, registered and online.
    pub const USERS: u8 = 0x8b;
    /// Hub: a change to the table of users.
    pub const USER: u8 = 0x8c;
    /// Hub: messages you sent, confirmed by their recipients.
    pub const RECEIPT: u8 = 0x8d;
    /// Hub: a message for a reliable session, with its sequence number.
    pub const SEQUENCED: u8 = 0x8e;
    /// Hub: numbers a reliable session will never be given, and why.
    pub const GAP: u8 = 0x8f;
    /// Hub: runs of messages you sent, each confirmed by one recipient at
    /// one time (if asked for).
    pub const RECEIPT_RUNS: u8 = 0x90;
}

/// Options a client may ask for in `HELLO`, as bits of its `options` field;
/// `WELCOME` answers with those the hub grants.
pub mod options {
    /// Consecutive messages that each reached every user they named may be
    /// acknowledged together, by one `ACK_RUN`, instead of an `ACK` each.
    pub const ACK_RUNS: u32 = 1;
    /// The client does not follow presence: it gets no `PRESENCE` frames,
    /// and its `WELCOME` carries an empty roster (`WHO` still answers in
    /// full). Others still see it come and go. For bots, gateways and the
    /// many idle connections of a benchmark, for whom every arrival told to
    /// everyone would be n^2 frames.
    pub const NO_PRESENCE: u32 = 1 << 1;
    /// The client is not announced: nobody gets `PRESENCE` about it, and it
    /// is left out of every roster (`WELCOME`'s and `WHO`'s, its own
    /// included). Its nickname is still taken while it is connected, and
    /// messages to it are delivered as to anyone. For one-shot commands
    /// (send a message, ask who is online) that should not be seen to come
    /// and go.
    pub const QUIET: u32 = 1 << 2;
    /// The client keeps the table of users: `WELCOME` is followed by a
    /// `USERS` frame (every registered user, online or not, with when each
    /// was last seen, and the guests online), `WHO` is answered with one,
    /// and accounts created or deleted are told as `USER` frames. Comings
    /// and goings are `PRESENCE` frames as for everyone. Not with
    /// `NO_PRESENCE`, which asks for none of it.
    pub const USERS: u32 = 1 << 3;
    /// The client confirms every `MESSAGE` it has handled, not only stored
    /// ones, with `CONFIRM` (batched): the hub turns each confirmation into
    /// a receipt for a sender who asked for one.
    pub const CONFIRMS: u32 = 1 << 4;
    /// The client wants receipts: a `RECEIPT` frame tells it which of its
    /// messages each recipient's client confirmed, and when (only from
    /// recipients whose clients confirm).
    pub const RECEIPTS: u32 = 1 << 5;
    /// A reliable session (an account's login only): every message naming
    /// the account is held in its mailbox until the client confirms it, and
    /// comes as `SEQUENCED`, numbered per recipient, once it is on disk; a
    /// message not confirmed before the connection drops comes again at
    /// the next login. The client confirms as with `CONFIRMS`.
    pub const RELIABLE: u32 = 1 << 6;
    /// Receipts may come as runs: consecutive messages confirmed by one
    /// recipient at one time are told by one entry of a `RECEIPT_RUNS`
    /// frame rather than a `RECEIPT` entry each; and a reliable session may
    /// confirm its receipts by runs, with `CONFIRM_RECEIPT_RUNS`.
    pub const RECEIPT_RUNS: u32 = 1 << 7;
    /// Every option this crate knows.
    pub const KNOWN: u32 =
        ACK_RUNS | NO_PRESENCE | QUIET | USERS | CONFIRMS | RECEIPTS | RELIABLE | RECEIPT_RUNS;
}

/// Target kinds inside a `recipients` field.
pub(crate) mod target {
    pub(crate) const USERS: u8 = 0x00;
    pub(crate) const EVERYONE: u8 = 0x01;
}

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// The named users (at least one when sent by a client).
    Users(Vec<String>),
    /// Every online user but the sender.
    Everyone,
}

impl Recipients {
    fn decode(r: &mut Reader) -> Result<Self, ProtocolError> {
        match r.u8("truncated recipients kind")? {
            target::USERS => Ok(Self::Users(r.nicks()?)),
            target::EVERYONE => Ok(Self::Everyone),
            _ => Err(ProtocolError::Malformed("unknown recipients kind")),
        }
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        match self {
            Self::Users(nicks) => {
                dst.put_u8(target::USERS);
                put_nicks(dst, nicks)
            }
            Self::Everyone => {
                dst.put_u8(target::EVERYONE);
                Ok(())
            }
        }
    }
}

/// `HELLO`: the first frame a client sends.
#[derive(Clone, PartialEq, Eq)]
pub struct Hello {
    /// The protocol version the client speaks.
    pub version: u16,
    /// The nickname as sent, not yet validated: the hub checks it with
    /// [`Nick::parse`](crate::Nick::parse) so that each kind of bad name,
    /// invalid UTF-8 included, gets its own error code.
    pub nick: Bytes,
    /// The [`options`] asked for, if the frame carries the field at all.
    pub options: Option<u32>,
    /// The account's password, to log in to a registered nickname. It may
    /// follow only `options` (send 0 for none): a frame that ends after
    /// `options` is a guest's `HELLO`.
    pub password: Option<String>,
}

/// As [`AccountRequest`]'s: a password is never printed, not even in a
/// debug dump of a frame; only whether there is one.
impl std::fmt::Debug for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hello")
            .field("version", &self.version)
            .field("nick", &self.nick)
            .field("options", &self.options)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// `SEND`: a message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFrame {
    /// Chosen by the client; echoed in the [`Ack`] and in errors about this message.
    pub id: u64,
    /// Who it is for.
    pub to: Recipients,
    /// The message text.
    pub text: String,
}

/// `WELCOME`: registration accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The protocol version the hub will speak on this connection.
    pub version: u16,
    /// The largest frame payload the hub accepts from this client, in bytes.
    pub max_frame: u32,
    /// The nickname as registered.
    pub nick: String,
    /// Who is online, this client included.
    pub roster: Vec<String>,
    /// The [`options`] granted: present exactly when `HELLO` asked for some.
    pub options: Option<u32>,
}

/// `MESSAGE`: a message delivered to a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The hub's id for this message, increasing in routing order.
    pub id: u64,
    /// When the hub routed it: milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// The sender's nickname.
    pub from: String,
    /// Who it was sent to: the named users, or everyone.
    pub to: Recipients,
    /// The message text.
    pub text: String,
}

/// `SEQUENCED`: a message for a reliable session, numbered per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequenced {
    /// This recipient's sequence number for it: increasing, one more than
    /// the last unless a message in between was lost to the store (a
    /// failed commit); the same message keeps its number when it comes
    /// again after a reconnection.
    pub seq: u64,
    /// The message, as `MESSAGE` carries it.
    pub message: Message,
}

/// `GAP`: a reliable session's sequence numbers it will never be given:
/// of `first..=last`, those it has not had were lost, for `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The first number of the range.
    pub first: u64,
    /// The last, at least `first`.
    pub last: u64,
    /// Why: [`Code::MAILBOX_FULL`], [`Code::STORE_FAILED`] (the message
    /// was never stored), or [`Code::EXPIRED`] (the age limit dropped it
    /// before it was confirmed).
    pub reason: Code,
}

impl Gap {
    fn decode(r: &mut Reader) -> Result<Self, ProtocolError> {
        let first = r.u64("truncated first number")?;
        let last = r.u64("truncated last number")?;
        if last < first {
            return Err(ProtocolError::Malformed("a gap that ends before it starts"));
        }
        let reason = Code(r.u16("truncated reason")?);
        Ok(Self {
            first,
            last,
            reason,
        })
    }
}

impl Message {
    fn decode(r: &mut Reader) -> Result<Self, ProtocolError> {
        Ok(Self {
            id: r.u64("truncated message id")?,
            ts_ms: r.u64("truncated timestamp")?,
            from: r.nick()?,
            to: Recipients::decode(r)?,
            text: r.text()?,
        })
    }
}

/// One recipient's outcome inside an [`Ack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    /// The recipient.
    pub nick: String,
    /// [`Code::DELIVERED`], [`Code::NO_SUCH_USER`], [`Code::UNABLE_TO_DELIVER`],
    /// or for a registered user who is offline [`Code::STORED`],
    /// [`Code::MAILBOX_FULL`] or [`Code::STORE_FAILED`].
    pub status: Code,
}

/// `ACK`: what became of a message, per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The client's id for the message ([`SendFrame::id`]).
    pub client_id: u64,
    /// The hub's id for the message ([`Message::id`]).
    pub message_id: u64,
    /// How many recipients it was queued for.
    pub delivered: u32,
    /// For a message to named users: every distinct recipient, in the order
    /// first named. For a broadcast: only the recipients it could not be
    /// delivered to.
    pub statuses: Vec<RecipientStatus>,
}

/// `ACK_RUN`: `count` consecutive messages, each delivered to every user it
/// named. The `i`-th (from 0) is the client's `SEND` with id
/// `first_client_id + i`, routed as message `first_message_id + i`; its
/// [`Ack`] would have listed each distinct name with
/// [`Code::DELIVERED`], and `delivered` would have been their number.
/// Sent only to a client that asked for [`options::ACK_RUNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckRun {
    /// The client's id for the first message of the run.
    pub first_client_id: u64,
    /// The hub's id for the first message of the run.
    pub first_message_id: u64,
    /// How many messages the run holds: at least 1, and neither id
    /// overflows a `u64` over the run.
    pub count: u32,
}

impl AckRun {
    /// The run of one message.
    #[must_use]
    pub fn one(client_id: u64, message_id: u64) -> Self {
        Self {
            first_client_id: client_id,
            first_message_id: message_id,
            count: 1,
        }
    }

    /// Adds the message that follows the run, if it does: its ids are each
    /// one more than the last message's, and the run is not full.
    pub fn extend(&mut self, client_id: u64, message_id: u64) -> bool {
        let next = u64::from(self.count);
        let follows = self.first_client_id.checked_add(next) == Some(client_id)
            && self.first_message_id.checked_add(next) == Some(message_id);
        match self.count.checked_add(1) {
            Some(count) if follows => {
                self.count = count;
                true
            }
            _ => false,
        }
    }

    /// The `(client_id, message_id)` of each message in the run.
    pub fn ids(&self) -> impl Iterator<Item = (u64, u64)> + use<> {
        let Self {
            first_client_id,
            first_message_id,
            count,
        } = *self;
        (0..u64::from(count)).map(move |i| {
            (
                first_client_id.wrapping_add(i),
                first_message_id.wrapping_add(i),
            )
        })
    }
}

/// `PRESENCE`: someone came online or went offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// True when the user came online, false when it left.
    pub online: bool,
    /// When: milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// Who.
    pub nick: String,
}

/// `ERROR`: a request failed, or the connection is about to be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFrame {
    /// What went wrong; [`Code::is_fatal`] says whether the hub closes next.
    pub code: Code,
    /// The [`SendFrame::id`] this error is about, or 0.
    pub reference: u64,
    /// A human-readable explanation.
    pub message: String,
}

impl ErrorFrame {
    /// An error with the code's own description as its message.
    pub fn new(code: Code, reference: u64) -> Self {
        Self {
            code,
            reference,
            message: code.to_string(),
        }
    }
}

/// A frame a client sends to the hub, with its `SEND` held as an owned
/// [`SendFrame`]: what clients build.
pub type ClientFrame = ClientFrameOf<SendFrame>;

/// A frame a client sends to the hub, with its `SEND` held as `S`: an owned
/// [`SendFrame`] ([`ClientFrame`]), or a [`SendPayload`](crate::SendPayload),
/// as the hub reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrameOf<S> {
    /// Register a nickname.
    Hello(Hello),
    /// Send a message.
    Send(S),
    /// Ask who is online; answered with [`ServerFrame::Roster`].
    Who,
    /// Leave cleanly.
    Quit,
    /// Ask the hub to answer with `PONG` carrying the same token.
    Ping(u64),
    /// Answer a hub's `PING`.
    Pong(u64),
    /// Create an account, change its password, or delete it.
    Account(AccountRequest),
    /// Messages handled: their hub ids ([`Message::id`]).
    Confirm(Vec<u64>),
    /// Receipts handled (a reliable session's: the hub keeps each until it
    /// is confirmed).
    ConfirmReceipts(Vec<ReceiptKey>),
    /// Runs of receipts handled, as [`ConfirmReceipts`](Self::ConfirmReceipts)
    /// would name them one by one (only with [`options::RECEIPT_RUNS`]).
    ConfirmReceiptRuns(Vec<ReceiptKeyRun>),
}

/// A frame the hub sends to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// Registration accepted.
    Welcome(Welcome),
    /// A message for this client.
    Message(Message),
    /// The outcome of a message this client sent.
    Ack(Ack),
    /// The outcome of a run of messages this client sent, each delivered to
    /// everyone it named (only with [`options::ACK_RUNS`]).
    AckRun(AckRun),
    /// Someone came online or went offline.
    Presence(Presence),
    /// Who is online.
    Roster(Vec<String>),
    /// Something went wrong.
    Error(ErrorFrame),
    /// Ask the client to answer with `PONG` carrying the same token.
    Ping(u64),
    /// Answer a client's `PING`.
    Pong(u64),
    /// An `ACCOUNT` request was carried out.
    AccountDone(AccountDone),
    /// At login, before the stored messages: how many follow.
    Mailbox(MailboxHeader),
    /// A message that waited in this client's mailbox (the layout of
    /// `MESSAGE`); to be confirmed with `CONFIRM` once handled.
    StoredMessage(Message),
    /// A message for a reliable session ([`options::RELIABLE`]): its
    /// sequence number, then `MESSAGE`'s layout. To be confirmed once
    /// handled; the same number may come again after a reconnection.
    Sequenced(Sequenced),
    /// Sequence numbers a reliable session will never be given, and why.
    Gap(Gap),
    /// The table of users (only with [`options::USERS`]).
    Users(Vec<UserEntry>),
    /// A change to the table of users (only with [`options::USERS`]).
    User(UserEntry),
    /// Messages this client sent, confirmed by their recipients (only with
    /// [`options::RECEIPTS`]).
    Receipts(Vec<Receipt>),
    /// Runs of messages this client sent, each run confirmed by one
    /// recipient at one time (only with [`options::RECEIPTS`] and
    /// [`options::RECEIPT_RUNS`]).
    ReceiptRuns(Vec<ReceiptRun>),
}

/// Anything that can be written as one frame's payload: the frames
/// themselves, and [`MessageView`](crate::MessageView) and [`AckView`](crate::AckView), which write a hub's
/// frames from borrowed parts.
pub trait Encode {
    /// Appends this frame's payload (without the length prefix) to `dst`.
    ///
    /// # Errors
    /// [`ProtocolError::TooLong`] if a field does not fit its length field.
    fn encode_payload(&self, dst: &mut BytesMut) -> Result<(), ProtocolError>;

    /// As [`encode_payload`](Self::encode_payload), given what
    /// [`payload_len`](Self::payload_len) returns, which an implementation
    /// may use rather than work it out again ([`encode_into`](crate::encode_into)
    /// has it already).
    ///
    /// # Errors
    /// As [`encode_payload`](Self::encode_payload).
    fn encode_payload_len(&self, dst: &mut BytesMut, len: usize) -> Result<(), ProtocolError> {
        let _ = len;
        self.encode_payload(dst)
    }

    /// The exact length of the payload [`encode_payload`](Self::encode_payload)
    /// writes, so that a frame is encoded into one allocation of the right size.
    fn payload_len(&self) -> usize;
}

/// A frame type that can be carried by [`FrameCodec`](crate::FrameCodec).
pub trait WireFrame: Encode + Sized {
    /// Parses one payload (the bytes after the length prefix).
    ///
    /// # Errors
    /// [`ProtocolError::Malformed`] (or another decoding error) for a
    /// payload that is not a valid frame of this type.
    fn decode(payload: Bytes) -> Result<Self, ProtocolError>;
}

/// A counted list of entries, each at least `min_each` bytes (a count the
/// rest of the frame cannot hold is refused before anything is allocated).
fn list<T>(
    r: &mut Reader,
    min_each: usize,
    decode: fn(&mut Reader) -> Result<T, ProtocolError>,
) -> Result<Vec<T>, ProtocolError> {
    let count = r.count_of(min_each)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(decode(r)?);
    }
    Ok(entries)
}

/// `PING` and `PONG`, the same both ways: an opcode and a token.
fn put_token(dst: &mut BytesMut, opcode: u8, token: u64) {
    dst.put_u8(opcode);
    dst.put_u64(token);
}

/// Encoded lengths of the field types (`docs/protocol.md`, section 2).
pub(crate) fn nick_len(nick: &[u8]) -> usize {
    1 + nick.len()
}

/// An optional trailing `u32`: `HELLO`'s and `WELCOME`'s `options`.
fn options_len(options: Option<u32>) -> usize {
    if options.is_some() { 4 } else { 0 }
}

fn text_len(text: &str) -> usize {
    4 + text.len()
}

fn nicks_len<S: AsRef<str>>(nicks: &[S]) -> usize {
    4 + nicks
        .iter()
        .map(|n| nick_len(n.as_ref().as_bytes()))
        .sum::<usize>()
}

impl Recipients {
    fn encoded_len(&self) -> usize {
        match self {
            Self::Users(nicks) => 1 + nicks_len(nicks),
            Self::Everyone => 1,
        }
    }
}

/// What a [`ClientFrameOf::Send`] can hold: a `SEND` payload, opcode
/// included, that can be parsed and written back.
pub trait SendBody: Encode + Sized {
    /// Parses a `SEND` payload, its opcode included.
    ///
    /// # Errors
    /// As [`WireFrame::decode`].
    fn decode_send(payload: Bytes) -> Result<Self, ProtocolError>;
}

impl Encode for SendFrame {
    fn payload_len(&self) -> usize {
        1 + 8 + self.to.encoded_len() + text_len(&self.text)
    }

    fn encode_payload(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        dst.put_u8(opcode::SEND);
        dst.put_u64(self.id);
        self.to.encode(dst)?;
        put_text(dst, &self.text)
    }
}

impl SendBody for SendFrame {
    fn decode_send(payload: Bytes) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        r.u8("empty frame")?;
        let send = Self {
            id: r.u64("truncated message id")?,
            to: Recipients::decode(&mut r)?,
            text: r.text()?,
        };
        r.finish()?;
        Ok(send)
    }
}

impl<S: SendBody> Encode for ClientFrameOf<S> {
    fn payload_len(&self) -> usize {
        self.payload_len_()
    }

    fn encode_payload(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        match self {
            Self::Hello(hello) => {
                dst.put_u8(opcode::HELLO);
                dst.put_u16(hello.version);
                put_nick(dst, &hello.nick)?;
                match (hello.options, &hello.password) {
                    (None, None) => {}
                    (options, password) => {
                        dst.put_u32(options.unwrap_or(0));
                        if let Some(password) = password {
                            put_text(dst, password)?;
                        }
                    }
                }
            }
            Self::Send(send) => send.encode_payload(dst)?,
            Self::Who => dst.put_u8(opcode::WHO),
            Self::Quit => dst.put_u8(opcode::QUIT),
            Self::Ping(token) => put_token(dst, opcode::PING, *token),
            Self::Pong(token) => put_token(dst, opcode::PONG, *token),
            Self::Account(request) => {
                dst.put_u8(opcode::ACCOUNT);
                request.encode(dst)?;
            }
            Self::Confirm(ids) => {
                dst.put_u8(opcode::CONFIRM);
                put_count(dst, ids.len())?;
                for &id in ids {
                    dst.put_u64(id);
                }
            }
            Self::ConfirmReceipts(keys) => {
                dst.put_u8(opcode::CONFIRM_RECEIPTS);
                put_count(dst, keys.len())?;
                for key in keys {
                    key.encode(dst)?;
                }
            }
            Self::ConfirmReceiptRuns(runs) => {
                dst.put_u8(opcode::CONFIRM_RECEIPT_RUNS);
                put_count(dst, runs.len())?;
                for run in runs {
                    run.encode(dst)?;
                }
            }
        }
        Ok(())
    }
}

impl<S: SendBody> WireFrame for ClientFrameOf<S> {
    fn decode(payload: Bytes) -> Result<Self, ProtocolError> {
        if payload.first() == Some(&opcode::SEND) {
            return S::decode_send(payload).map(Self::Send);
        }
        let mut r = Reader::new(payload);
        let frame = match r.u8("empty frame")? {
            opcode::HELLO => {
                let version = r.u16("truncated version")?;
                let nick = r.nick_bytes()?;
                let options = r.optional_u32("truncated options")?;
                let password = if r.remaining() == 0 {
                    None
                } else {
                    Some(r.text()?)
                };
                Self::Hello(Hello {
                    version,
                    nick,
                    options,
                    password,
                })
            }
            opcode::ACCOUNT => Self::Account(AccountRequest::decode(&mut r)?),
            opcode::CONFIRM => {
                let count = r.count_of(8)?;
                let mut ids = Vec::with_capacity(count);
                for _ in 0..count {
                    ids.push(r.u64("truncated message id")?);
                }
                Self::Confirm(ids)
            }
            opcode::CONFIRM_RECEIPTS => {
                Self::ConfirmReceipts(list(&mut r, ReceiptKey::MIN_LEN, ReceiptKey::decode)?)
            }
            opcode::CONFIRM_RECEIPT_RUNS => Self::ConfirmReceiptRuns(list(
                &mut r,
                ReceiptKeyRun::MIN_LEN,
                ReceiptKeyRun::decode,
            )?),
            opcode::WHO => Self::Who,
            opcode::QUIT => Self::Quit,
            opcode::PING => Self::Ping(r.u64("truncated ping token")?),
            opcode::PONG => Self::Pong(r.u64("truncated pong token")?),
            other => return Err(ProtocolError::UnknownOpcode(other)),
        };
        r.finish()?;
        Ok(frame)
    }
}

impl<S: SendBody> ClientFrameOf<S> {
    fn payload_len_(&self) -> usize {
        1 + match self {
            Self::Hello(hello) => {
                let password = hello.password.as_deref().map_or(0, text_len);
                let options = if hello.password.is_some() {
                    4
                } else {
                    options_len(hello.options)
                };
                2 + nick_len(&hello.nick) + options + password
            }
            Self::Account(request) => request.payload_len(),
            Self::Confirm(ids) => 4 + 8 * ids.len(),
            Self::ConfirmReceipts(keys) => {
                4 + keys.iter().map(ReceiptKey::encoded_len).sum::<usize>()
            }
            Self::ConfirmReceiptRuns(runs) => {
                4 + runs.iter().map(ReceiptKeyRun::encoded_len).sum::<usize>()
            }
            // The body counts its opcode itself.
            Self::Send(send) => return send.payload_len(),
            Self::Who | Self::Quit => 0,
            Self::Ping(_) | Self::Pong(_) => 8,
        }
    }
}

impl ServerFrame {
    fn payload_len_(&self) -> usize {
        1 + match self {
            Self::Welcome(w) => {
                2 + 4 + nick_len(w.nick.as_bytes()) + nicks_len(&w.roster) + options_len(w.options)
            }
            // The views count their opcode themselves.
            Self::Message(m) | Self::StoredMessage(m) => return m.view().payload_len(),
            Self::Sequenced(s) => {
                let view = crate::SequencedView {
                    seq: s.seq,
                    message: s.message.view(),
                };
                return view.payload_len();
            }
            Self::Ack(a) => return a.view().payload_len(),
            Self::AckRun(_) => 8 + 8 + 4,
            Self::Gap(_) => 8 + 8 + 2,
            Self::Presence(p) => 1 + 8 + nick_len(p.nick.as_bytes()),
            Self::Roster(nicks) => nicks_len(nicks),
            Self::Error(e) => 2 + 8 + text_len(&e.message),
            // A token; a `MAILBOX`'s two counts.
            Self::Ping(_) | Self::Pong(_) | Self::Mailbox(_) => 8,
            Self::AccountDone(done) => 1 + nick_len(done.nick.as_bytes()),
            Self::Users(users) => 4 + users.iter().map(UserEntry::encoded_len).sum::<usize>(),
            Self::User(user) => user.encoded_len(),
            Self::Receipts(receipts) => {
                4 + receipts.iter().map(Receipt::encoded_len).sum::<usize>()
            }
            Self::ReceiptRuns(runs) => 4 + runs.iter().map(ReceiptRun::encoded_len).sum::<usize>(),
        }
    }
}

impl Encode for ServerFrame {
    fn payload_len(&self) -> usize {
        self.payload_len_()
    }

    fn encode_payload(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        match self {
            Self::Welcome(w) => {
                dst.put_u8(opcode::WELCOME);
                dst.put_u16(w.version);
                dst.put_u32(w.max_frame);
                put_nick(dst, w.nick.as_bytes())?;
                put_nicks(dst, &w.roster)?;
                if let Some(options) = w.options {
                    dst.put_u32(options);
                }
            }
            Self::Message(m) => m.view().encode_payload(dst)?,
            Self::Ack(a) => a.view().encode_payload(dst)?,
            Self::AckRun(run) => {
                dst.put_u8(opcode::ACK_RUN);
                dst.put_u64(run.first_client_id);
                dst.put_u64(run.first_message_id);
                dst.put_u32(run.count);
            }
            Self::Presence(p) => {
                dst.put_u8(opcode::PRESENCE);
                dst.put_u8(u8::from(p.online));
                dst.put_u64(p.ts_ms);
                put_nick(dst, p.nick.as_bytes())?;
            }
            Self::Roster(nicks) => {
                dst.put_u8(opcode::ROSTER);
                put_nicks(dst, nicks)?;
            }
            Self::Error(e) => {
                dst.put_u8(opcode::ERROR);
                dst.put_u16(e.code.0);
                dst.put_u64(e.reference);
                put_text(dst, &e.message)?;
            }
            Self::Ping(token) => put_token(dst, opcode::PING, *token),
            Self::Pong(token) => put_token(dst, opcode::PONG, *token),
            Self::AccountDone(done) => {
                dst.put_u8(opcode::ACCOUNT_DONE);
                dst.put_u8(done.action.to_u8());
                put_nick(dst, done.nick.as_bytes())?;
            }
            Self::Mailbox(header) => {
                dst.put_u8(opcode::MAILBOX);
                dst.put_u32(header.count);
                dst.put_u32(header.expired);
            }
            Self::Gap(gap) => {
                dst.put_u8(opcode::GAP);
                dst.put_u64(gap.first);
                dst.put_u64(gap.last);
                dst.put_u16(gap.reason.0);
            }
            Self::StoredMessage(m) => {
                // `MESSAGE`'s layout under its own opcode.
                let at = dst.len();
                m.view().encode_payload(dst)?;
                if let Some(first) = dst.get_mut(at) {
                    *first = opcode::STORED_MESSAGE;
                }
            }
            Self::Sequenced(s) => {
                let view = crate::SequencedView {
                    seq: s.seq,
                    message: s.message.view(),
                };
                view.encode_payload(dst)?;
            }
            Self::Users(users) => {
                dst.put_u8(opcode::USERS);
                put_count(dst, users.len())?;
                for user in users {
                    user.encode(dst)?;
                }
            }
            Self::User(user) => {
                dst.put_u8(opcode::USER);
                user.encode(dst)?;
            }
            Self::Receipts(receipts) => {
                dst.put_u8(opcode::RECEIPT);
                put_count(dst, receipts.len())?;
                for receipt in receipts {
                    receipt.encode(dst)?;
                }
            }
            Self::ReceiptRuns(runs) => {
                dst.put_u8(opcode::RECEIPT_RUNS);
                put_count(dst, runs.len())?;
                for run in runs {
                    run.encode(dst)?;
                }
            }
        }
        Ok(())
    }
}

impl WireFrame for ServerFrame {
    fn decode(payload: Bytes) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let frame = match r.u8("empty frame")? {
            opcode::WELCOME => Self::Welcome(Welcome {
                version: r.u16("truncated version")?,
                max_frame: r.u32("truncated max frame")?,
                nick: r.nick()?,
                roster: r.nicks()?,
                options: r.optional_u32("truncated options")?,
            }),
            opcode::MESSAGE => Self::Message(Message::decode(&mut r)?),
            opcode::STORED_MESSAGE => Self::StoredMessage(Message::decode(&mut r)?),
            opcode::SEQUENCED => Self::Sequenced(Sequenced {
                seq: r.u64("truncated sequence number")?,
                message: Message::decode(&mut r)?,
            }),
            opcode::ACCOUNT_DONE => {
                let action = AccountAction::from_u8(r.u8("truncated account action")?)
                    .ok_or(ProtocolError::Malformed("unknown account action"))?;
                Self::AccountDone(AccountDone {
                    action,
                    nick: r.nick()?,
                })
            }
            opcode::GAP => Self::Gap(Gap::decode(&mut r)?),
            opcode::MAILBOX => Self::Mailbox(MailboxHeader {
                count: r.u32("truncated stored count")?,
                expired: r.u32("truncated expired count")?,
            }),
            // Each entry takes at least ten bytes.
            opcode::USERS => Self::Users(list(&mut r, 10, UserEntry::decode)?),
            opcode::USER => Self::User(UserEntry::decode(&mut r)?),
            opcode::RECEIPT => Self::Receipts(list(&mut r, Receipt::MIN_LEN, Receipt::decode)?),
            opcode::RECEIPT_RUNS => {
                Self::ReceiptRuns(list(&mut r, ReceiptRun::MIN_LEN, ReceiptRun::decode)?)
            }
            opcode::ACK => {
                let client_id = r.u64("truncated client id")?;
                let message_id = r.u64("truncated message id")?;
                let delivered = r.u32("truncated delivered count")?;
                let count = r.u32("truncated status count")? as usize;
                // Each status takes at least three bytes.
                if count > r.remaining() / 3 {
                    return Err(ProtocolError::Malformed("status count exceeds the frame"));
                }
                let mut statuses = Vec::with_capacity(count);
                for _ in 0..count {
                    statuses.push(RecipientStatus {
                        nick: r.nick()?,
                        status: Code(r.u16("truncated status")?),
                    });
                }
                Self::Ack(Ack {
                    client_id,
                    message_id,
                    delivered,
                    statuses,
                })
            }
            opcode::ACK_RUN => {
                let run = AckRun {
                    first_client_id: r.u64("truncated client id")?,
                    first_message_id: r.u64("truncated message id")?,
                    count: r.u32("truncated run length")?,
                };
                let last = u64::from(run.count).checked_sub(1);
                let fits = last.is_some_and(|last| {
                    run.first_client_id.checked_add(last).is_some()
                        && run.first_message_id.checked_add(last).is_some()
                });
                if !fits {
                    return Err(ProtocolError::Malformed("empty or overflowing ack run"));
                }
                Self::AckRun(run)
            }
            opcode::PRESENCE => {
                let online = match r.u8("truncated presence state")? {
                    0 => false,
                    1 => true,
                    _ => return Err(ProtocolError::Malformed("unknown presence state")),
                };
                Self::Presence(Presence {
                    online,
                    ts_ms: r.u64("truncated timestamp")?,
                    nick: r.nick()?,
                })
            }
            opcode::ROSTER => Self::Roster(r.nicks()?),
            opcode::ERROR => Self::Error(ErrorFrame {
                code: Code(r.u16("truncated error code")?),
                reference: r.u64("truncated error reference")?,
                message: r.text()?,
            }),
            opcode::PING => Self::Ping(r.u64("truncated ping token")?),
            opcode::PONG => Self::Pong(r.u64("truncated pong token")?),
            other => return Err(ProtocolError::UnknownOpcode(other)),
        };
        r.finish()?;
        Ok(frame)
    }
}
