//! `RECEIPT`: a recipient's client confirmed a message, told to its sender.

use bytes::{BufMut, BytesMut};

use crate::ProtocolError;
use crate::frame::nick_len;
use crate::wire::{Reader, put_nick};

/// One receipt: `recipient`'s client confirmed (handled) message
/// `message_id` at `received_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The hub's id of the message, as its `ACK` gave it to the sender.
    pub message_id: u64,
    /// When the hub had the confirmation, in milliseconds since the Unix
    /// epoch.
    pub received_ms: u64,
    /// Who confirmed it.
    pub recipient: String,
}

impl Receipt {
    /// The fewest bytes one receipt takes in a `RECEIPT` frame: two `u64`s
    /// and an empty nick's length byte.
    pub(crate) const MIN_LEN: usize = 8 + 8 + 1;

    /// The bytes this receipt takes in a `RECEIPT` frame: what a hub counts
    /// to keep a batch within its frame limit.
    pub fn encoded_len(&self) -> usize {
        8 + 8 + nick_len(self.recipient.as_bytes())
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        dst.put_u64(self.message_id);
        dst.put_u64(self.received_ms);
        put_nick(dst, self.recipient.as_bytes())
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, ProtocolError> {
        Ok(Self {
            message_id: r.u64("truncated receipt message id")?,
            received_ms: r.u64("truncated receipt time")?,
            recipient: r.nick()?,
        })
    }
}

/// Which receipt a reliable session confirms with `CONFIRM_RECEIPTS`: the
/// message and the recipient of a [`Receipt`] it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiptKey {
    /// The receipt's [`Receipt::message_id`].
    pub message_id: u64,
    /// The receipt's [`Receipt::recipient`].
    pub recipient: String,
}

impl ReceiptKey {
    /// The fewest bytes one key takes: a `u64` and an empty nick's length
    /// byte.
    pub(crate) const MIN_LEN: usize = 8 + 1;

    /// The key of `receipt`.
    pub fn of(receipt: &Receipt) -> Self {
        Self {
            message_id: receipt.message_id,
            recipient: receipt.recipient.clone(),
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        8 + nick_len(self.recipient.as_bytes())
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        dst.put_u64(self.message_id);
        put_nick(dst, self.recipient.as_bytes())
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, ProtocolError> {
        Ok(Self {
            message_id: r.u64("truncated receipt message id")?,
            recipient: r.nick()?,
        })
    }
}
