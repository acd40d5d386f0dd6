//! chinwag's wire protocol: frames, nicknames and a length-delimited codec.
//!
//! This crate knows bytes and frames, not sockets or runtimes: nothing here
//! does I/O, and its tests need no Tokio runtime. `docs/protocol.md` at the
//! root of the repository is the byte-exact specification, with test vectors
//! that the tests of this crate check.
//!
//! - [`ClientFrame`] and [`ServerFrame`]: what each side sends; [`SendPayload`],
//!   a `SEND` read in place, as the hub reads them.
//! - [`Nick`]: a validated nickname, equal to another case-insensitively.
//! - [`Code`]: the numeric codes of errors and per-recipient statuses.
//! - [`FrameCodec`] ([`HubCodec`], [`ClientCodec`]): a `u32` big-endian length
//!   prefix, then the payload; built on `tokio_util`'s `LengthDelimitedCodec`.
//! - [`text`]: the `@bob hello` syntax people type and the lines they read.

mod account;
mod code;
mod codec;
mod error;
mod frame;
mod nick;
mod receipt;
mod send;
pub mod text;
mod view;
mod wire;

pub use account::{
    AccountAction, AccountDone, AccountRequest, MailboxHeader, UserEntry, user_flags,
};
pub use code::Code;
pub use codec::{
    ClientCodec, DEFAULT_MAX_FRAME, FrameCodec, HubCodec, MAX_FRAME_UNREGISTERED, PREFIX_LEN,
    TLS_ALPN, encode_frame, encode_into,
};
pub use error::ProtocolError;
pub use frame::{
    Ack, AckRun, ClientFrame, ClientFrameOf, Encode, ErrorFrame, Gap, Hello, Message,
    PROTOCOL_VERSION, Presence, RecipientStatus, Recipients, SendBody, SendFrame, Sequenced,
    ServerFrame, Welcome, WireFrame, opcode, options,
};
pub use nick::{MAX_NICK_LEN, Nick, NickError, RESERVED_NICKS};
pub use receipt::{Receipt, ReceiptKey, ReceiptKeyRun, ReceiptRun};
pub use send::{Names, SendPayload};
pub use view::{AckView, MessageView, SequencedView, Utf8};
