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

/// A run of receipts in a `RECEIPT_RUNS` frame: `recipient`'s client
/// confirmed messages `first_message_id`, `first_message_id + 1`, ... (`count`
/// of them), all at `received_ms`. Stands for the [`Receipt`]s
/// [`receipts`](Self::receipts) gives. Sent only to a client that asked
/// for [`options::RECEIPT_RUNS`](crate::options::RECEIPT_RUNS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRun {
    /// The hub's id of the run's first message.
    pub first_message_id: u64,
    /// How many messages the run holds: at least 1, and the id does not
    /// overflow a `u64` over the run.
    pub count: u32,
    /// When the hub had the confirmations, in milliseconds since the Unix
    /// epoch.
    pub received_ms: u64,
    /// Who confirmed them.
    pub recipient: String,
}

impl ReceiptRun {
    /// The fewest bytes one run takes: a `u64`, a `u32`, a `u64` and an
    /// empty nick's length byte.
    pub(crate) const MIN_LEN: usize = 8 + 4 + 8 + 1;

    /// The run of `receipt` alone.
    pub fn of(receipt: &Receipt) -> Self {
        Self {
            first_message_id: receipt.message_id,
            count: 1,
            received_ms: receipt.received_ms,
            recipient: receipt.recipient.clone(),
        }
    }

    /// Adds `receipt` if it follows the run: the next message id, the same
    /// recipient and time, and the run not full.
    pub fn extend(&mut self, receipt: &Receipt) -> bool {
        let follows = self.first_message_id.checked_add(u64::from(self.count))
            == Some(receipt.message_id)
            && self.received_ms == receipt.received_ms
            && self.recipient == receipt.recipient;
        match self.count.checked_add(1) {
            Some(count) if follows => {
                self.count = count;
                true
            }
            _ => false,
        }
    }

    /// The receipts it stands for, in id order.
    pub fn receipts(&self) -> impl Iterator<Item = Receipt> + '_ {
        message_ids(self.first_message_id, self.count).map(|message_id| Receipt {
            message_id,
            received_ms: self.received_ms,
            recipient: self.recipient.clone(),
        })
    }

    /// The bytes this run takes in a `RECEIPT_RUNS` frame.
    pub fn encoded_len(&self) -> usize {
        8 + 4 + 8 + nick_len(self.recipient.as_bytes())
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        dst.put_u64(self.first_message_id);
        dst.put_u32(self.count);
        dst.put_u64(self.received_ms);
        put_nick(dst, self.recipient.as_bytes())
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, ProtocolError> {
        let first_message_id = r.u64("truncated receipt run message id")?;
        let count = run_count(first_message_id, r.u32("truncated receipt run count")?)?;
        Ok(Self {
            first_message_id,
            count,
            received_ms: r.u64("truncated receipt run time")?,
            recipient: r.nick()?,
        })
    }
}

/// A run of receipts a reliable session confirms with
/// `CONFIRM_RECEIPT_RUNS`: those of messages `first_message_id`,
/// `first_message_id + 1`, ... (`count` of them) by `recipient`, as
/// [`ReceiptKey`]s ([`keys`](Self::keys)) would name them one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptKeyRun {
    /// The receipts' first [`Receipt::message_id`].
    pub first_message_id: u64,
    /// How many receipts the run holds: at least 1, and the id does not
    /// overflow a `u64` over the run.
    pub count: u32,
    /// The receipts' [`Receipt::recipient`].
    pub recipient: String,
}

impl ReceiptKeyRun {
    /// The fewest bytes one run takes: a `u64`, a `u32` and an empty
    /// nick's length byte.
    pub(crate) const MIN_LEN: usize = 8 + 4 + 1;

    /// The run of `key` alone.
    pub fn of(key: ReceiptKey) -> Self {
        Self {
            first_message_id: key.message_id,
            count: 1,
            recipient: key.recipient,
        }
    }

    /// Adds the receipt of `message_id` by `recipient` if it follows the
    /// run: the next message id, the same recipient, and the run not full.
    pub fn extend(&mut self, message_id: u64, recipient: &str) -> bool {
        let follows = self.first_message_id.checked_add(u64::from(self.count)) == Some(message_id)
            && self.recipient == recipient;
        match self.count.checked_add(1) {
            Some(count) if follows => {
                self.count = count;
                true
            }
            _ => false,
        }
    }

    /// The message ids it names, in order.
    pub fn message_ids(&self) -> impl Iterator<Item = u64> + use<> {
        message_ids(self.first_message_id, self.count)
    }

    /// The keys it stands for, in id order.
    pub fn keys(&self) -> impl Iterator<Item = ReceiptKey> + '_ {
        self.message_ids().map(|message_id| ReceiptKey {
            message_id,
            recipient: self.recipient.clone(),
        })
    }

    pub(crate) fn encoded_len(&self) -> usize {
        8 + 4 + nick_len(self.recipient.as_bytes())
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        dst.put_u64(self.first_message_id);
        dst.put_u32(self.count);
        put_nick(dst, self.recipient.as_bytes())
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, ProtocolError> {
        let first_message_id = r.u64("truncated receipt run message id")?;
        Ok(Self {
            first_message_id,
            count: run_count(first_message_id, r.u32("truncated receipt run count")?)?,
            recipient: r.nick()?,
        })
    }
}

/// A run's count, checked: at least 1, and the ids it names within a
/// `u64`.
fn run_count(first: u64, count: u32) -> Result<u32, ProtocolError> {
    if count == 0 {
        return Err(ProtocolError::Malformed("empty receipt run"));
    }
    if first.checked_add(u64::from(count) - 1).is_none() {
        return Err(ProtocolError::Malformed("receipt run passes the last id"));
    }
    Ok(count)
}

/// `count` ids from `first`, stopping at the last `u64` (a run decoded is
/// checked not to pass it).
fn message_ids(first: u64, count: u32) -> impl Iterator<Item = u64> {
    (0..u64::from(count)).map_while(move |i| first.checked_add(i))
}
