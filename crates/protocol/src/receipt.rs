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
        let same = self.received_ms == receipt.received_ms && self.recipient == receipt.recipient;
        grow(
            self.first_message_id,
            &mut self.count,
            receipt.message_id,
            same,
        )
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
        let same = self.recipient == recipient;
        grow(self.first_message_id, &mut self.count, message_id, same)
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

/// Counts `message_id` into the run from `first` of `count`, if it is the
/// next id, `same` says the rest matches, and the run is not full.
fn grow(first: u64, count: &mut u32, message_id: u64, same: bool) -> bool {
    let follows = same && first.checked_add(u64::from(*count)) == Some(message_id);
    match count.checked_add(1) {
        Some(next) if follows => {
            *count = next;
            true
        }
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(message_id: u64, received_ms: u64, recipient: &str) -> Receipt {
        Receipt {
            message_id,
            received_ms,
            recipient: recipient.to_owned(),
        }
    }

    #[test]
    fn a_run_takes_only_the_next_id_of_the_same_recipient_and_time() {
        let mut run = ReceiptRun::of(&receipt(7, 1, "bob"));
        assert!(run.extend(&receipt(8, 1, "bob")));
        assert!(!run.extend(&receipt(10, 1, "bob")), "a gap");
        assert!(!run.extend(&receipt(9, 2, "bob")), "another time");
        assert!(!run.extend(&receipt(9, 1, "carol")), "another recipient");
        assert!(run.extend(&receipt(9, 1, "bob")));
        let ids: Vec<u64> = run.receipts().map(|r| r.message_id).collect();
        assert_eq!(ids, [7, 8, 9]);

        let mut last = ReceiptRun::of(&receipt(u64::MAX, 1, "bob"));
        assert!(!last.extend(&receipt(0, 1, "bob")), "past the last id");
        assert_eq!(last.receipts().count(), 1);
    }

    #[test]
    fn a_run_of_keys_names_what_its_keys_would() {
        let mut run = ReceiptKeyRun::of(ReceiptKey {
            message_id: 12,
            recipient: "bob".to_owned(),
        });
        assert!(run.extend(13, "bob"));
        assert!(!run.extend(14, "carol"));
        assert!(!run.extend(15, "bob"));
        let keys: Vec<(u64, String)> = run.keys().map(|k| (k.message_id, k.recipient)).collect();
        assert_eq!(keys, [(12, "bob".to_owned()), (13, "bob".to_owned())]);
        assert!(run_count(u64::MAX, 1).is_ok());
        assert!(run_count(u64::MAX, 2).is_err());
        assert!(run_count(0, 0).is_err());
    }
}
