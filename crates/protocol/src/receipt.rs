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
