//! The bench's decoder: `ClientCodec`'s framing, with `MESSAGE` and
//! `PRESENCE` frames, nearly everything the bench reads, checked where they
//! lie in the read buffer.
//!
//! Decoding every delivery into a [`ServerFrame`] costs two `String`s and a
//! few reference counts per message: it made the bench spend about 350 ns of
//! CPU per delivery in `fanout`, several times what hubload spends per NATS
//! delivery, and the bench shares the two cores with the hub. So a `MESSAGE`
//! whose fields are well formed and whose text is a bench payload is read
//! in place, yielding only its [`Header`] and the hub's id for it (what a
//! `CONFIRM` names); so is a `SEQUENCED` (a reliable session's `MESSAGE`,
//! `direct --reliable`), yielding its number too. A well-formed `PRESENCE`
//! (the `conns` workload gets one per arrival per connection: 50 million
//! for 10,000 connections) is skipped
//! the same way, and a well-formed `ACK` whose every status is "delivered"
//! (one per message sent) yields only its ids and count. A well-formed
//! `RECEIPT` (`direct --receipts` gets one per message sent, in batches) is
//! checked in place and handed over as its bytes, each receipt read from
//! them where it lies ([`ReceiptBatch`]), rather than as a `String` per
//! receipt. Everything else (other frames, a text that is not a bench
//! payload, an ACK with a failure in it, anything malformed) is split off
//! and decoded by `chinwag_protocol`, whose verdict is the one that counts.
//!
//! Framing is `ClientCodec`'s: a `u32` big-endian length prefix, refused
//! before anything is buffered for it when over the limit.

use bytes::{Buf, Bytes, BytesMut};
use chinwag_protocol::{Code, PREFIX_LEN, ProtocolError, ServerFrame, WireFrame, opcode};
use tokio_util::codec::Decoder;

use crate::payload::{self, Header};

/// What the bench reads from the hub.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A well-formed `MESSAGE` carrying a bench payload of the expected size.
    Delivery {
        /// The hub's id for the message.
        id: u64,
        header: Header,
    },
    /// A well-formed `SEQUENCED` (a reliable session's message) carrying a
    /// bench payload of the expected size.
    Sequenced {
        /// The recipient's number for it.
        seq: u64,
        /// The hub's id for the message (what a `CONFIRM` names).
        id: u64,
        header: Header,
    },
    /// A well-formed `PRESENCE` notice, not otherwise read.
    Presence,
    /// A well-formed `ACK` that says "delivered" for every recipient it
    /// names.
    Delivered {
        client_id: u64,
        /// The hub's id for the message (what its receipts name).
        message_id: u64,
        /// How many recipients the message was queued for.
        delivered: u32,
    },
    /// A well-formed `RECEIPT`.
    Receipts(ReceiptBatch),
    /// Any other frame (including a `MESSAGE` whose text is not a bench
    /// payload), decoded in full.
    Frame(ServerFrame),
}

/// Decodes [`Inbound`]s.
#[derive(Debug, Clone)]
pub(crate) struct BenchCodec {
    /// The `--size` every payload should have.
    size: usize,
    max_frame: usize,
    /// Room made in the read buffer whenever it holds no whole frame, so
    /// that each read takes what the socket has rather than the few bytes
    /// left at the end of the buffer.
    read_chunk: usize,
}

impl BenchCodec {
    pub(crate) fn new(size: usize, max_frame: usize, read_chunk: usize) -> Self {
        Self {
            size,
            max_frame,
            read_chunk,
        }
    }
}

impl Decoder for BenchCodec {
    type Item = Inbound;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, ProtocolError> {
        let Some(prefix) = src.first_chunk::<PREFIX_LEN>() else {
            src.reserve(self.read_chunk);
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > self.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        let frame_len = PREFIX_LEN + len;
        if src.len() < frame_len {
            src.reserve((frame_len - src.len()).max(self.read_chunk));
            return Ok(None);
        }
        let payload = &src[PREFIX_LEN..frame_len];
        if let Some((id, header)) = message_text(payload)
            .and_then(|(id, text)| Some((id, payload::parse(text, self.size)?)))
        {
            src.advance(frame_len);
            return Ok(Some(Inbound::Delivery { id, header }));
        }
        if let Some((seq, id, header)) = sequenced_text(payload)
            .and_then(|(seq, id, text)| Some((seq, id, payload::parse(text, self.size)?)))
        {
            src.advance(frame_len);
            return Ok(Some(Inbound::Sequenced { seq, id, header }));
        }
        if is_presence(payload) {
            src.advance(frame_len);
            return Ok(Some(Inbound::Presence));
        }
        if let Some((client_id, message_id, delivered)) = all_delivered(payload) {
            src.advance(frame_len);
            return Ok(Some(Inbound::Delivered {
                client_id,
                message_id,
                delivered,
            }));
        }
        let runs = is_receipt_runs(payload);
        if runs || is_receipts(payload) {
            let frame = src.split_to(frame_len).freeze();
            return Ok(Some(Inbound::Receipts(ReceiptBatch {
                receipts: frame.slice(PREFIX_LEN + RECEIPTS_AT..),
                runs,
            })));
        }
        let payload = src.split_to(frame_len).freeze().slice(PREFIX_LEN..);
        ServerFrame::decode(payload).map(|frame| Some(Inbound::Frame(frame)))
    }
}

/// The hub's id and the text of a well-formed `MESSAGE` payload (section
/// 5.2 of `docs/protocol.md`); `None` for any other frame, or a malformed
/// one.
fn message_text(payload: &[u8]) -> Option<(u64, &[u8])> {
    let (&op, rest) = payload.split_first()?;
    if op != opcode::MESSAGE {
        return None;
    }
    message_fields(rest)
}

/// The number, the hub's id and the text of a well-formed `SEQUENCED`
/// payload: the opcode, a `u64` number, then `MESSAGE`'s fields.
fn sequenced_text(payload: &[u8]) -> Option<(u64, u64, &[u8])> {
    let (&op, rest) = payload.split_first()?;
    if op != opcode::SEQUENCED {
        return None;
    }
    let (seq, rest) = rest.split_first_chunk::<8>()?;
    let (id, text) = message_fields(rest)?;
    Some((u64::from_be_bytes(*seq), id, text))
}

/// The id and the text of `MESSAGE`'s fields after its opcode, well formed.
fn message_fields(rest: &[u8]) -> Option<(u64, &[u8])> {
    // id (u64), ts_ms (u64)
    let id = u64::from_be_bytes(*rest.first_chunk::<8>()?);
    let mut rest = rest.get(16..)?;
    nick(&mut rest)?;
    let (&kind, after) = rest.split_first()?;
    rest = after;
    match kind {
        // Named users: a u32 count, then that many nicks.
        0x00 => {
            let count = u32::from_be_bytes(*rest.first_chunk::<4>()?);
            rest = &rest[4..];
            for _ in 0..count {
                nick(&mut rest)?;
            }
        }
        // Everyone: nothing follows.
        0x01 => {}
        _ => return None,
    }
    let len = u32::from_be_bytes(*rest.first_chunk::<4>()?) as usize;
    let text = &rest[4..];
    // Exactly the text is left: no truncation, no trailing bytes. (The bench
    // payload's ASCII is valid UTF-8; `payload::parse` checks every byte.)
    (text.len() == len).then_some((id, text))
}

/// Whether `payload` is a well-formed `PRESENCE` (section 5.2 of
/// `docs/protocol.md`): the opcode, an online flag of 0 or 1, a `u64`
/// timestamp, and a nickname, with nothing after it.
fn is_presence(payload: &[u8]) -> bool {
    let Some((&op, rest)) = payload.split_first() else {
        return false;
    };
    let Some((&online, rest)) = rest.split_first() else {
        return false;
    };
    let Some(mut rest) = rest.get(8..) else {
        return false;
    };
    op == opcode::PRESENCE && online <= 1 && nick(&mut rest).is_some() && rest.is_empty()
}

/// The client id, message id and delivered count of a well-formed `ACK`
/// (section 5.4 of `docs/protocol.md`) whose every status is "delivered";
/// `None` for any other frame, a malformed one, or one with a failure to
/// report.
fn all_delivered(payload: &[u8]) -> Option<(u64, u64, u32)> {
    let (&op, rest) = payload.split_first()?;
    if op != opcode::ACK {
        return None;
    }
    // client_id (u64), message_id (u64), delivered (u32), count (u32)
    let client_id = u64::from_be_bytes(*rest.first_chunk::<8>()?);
    let message_id = u64::from_be_bytes(*rest.get(8..)?.first_chunk::<8>()?);
    let delivered = u32::from_be_bytes(*rest.get(16..)?.first_chunk::<4>()?);
    let count = u32::from_be_bytes(*rest.get(20..)?.first_chunk::<4>()?);
    let mut rest = &rest[24..];
    for _ in 0..count {
        nick(&mut rest)?;
        let (code, after) = rest.split_first_chunk::<2>()?;
        if u16::from_be_bytes(*code) != Code::DELIVERED.0 {
            return None;
        }
        rest = after;
    }
    rest.is_empty()
        .then_some((client_id, message_id, delivered))
}

/// Where a `RECEIPT`'s receipts begin: after the opcode and the count.
const RECEIPTS_AT: usize = 1 + 4;

/// The fewest bytes a receipt takes: two `u64`s and a nickname's length.
const RECEIPT_MIN_LEN: usize = 8 + 8 + 1;

/// Whether `payload` is a well-formed `RECEIPT` (section 5.2 of
/// `docs/protocol.md`): the opcode, a count no larger than the frame can
/// hold, and that many receipts (`message_id`, `received_ms`, a UTF-8
/// `recipient`) with nothing after them.
fn is_receipts(payload: &[u8]) -> bool {
    is_list(payload, opcode::RECEIPT, RECEIPT_MIN_LEN, |rest| {
        *rest = rest.get(16..)?;
        nick(rest)
    })
}

/// The fewest bytes a run of receipts takes: a `u64`, a `u32`, a `u64`
/// and a nickname's length.
const RECEIPT_RUN_MIN_LEN: usize = 8 + 4 + 8 + 1;

/// Whether `payload` is a well-formed `RECEIPT_RUNS` (section 5.2 of
/// `docs/protocol.md`): the opcode, a count no larger than the frame can
/// hold, and that many runs (`first_message_id`, a `count` of at least 1
/// that does not pass the last id, `received_ms`, a UTF-8 `recipient`)
/// with nothing after them.
fn is_receipt_runs(payload: &[u8]) -> bool {
    is_list(payload, opcode::RECEIPT_RUNS, RECEIPT_RUN_MIN_LEN, |rest| {
        let (first, after) = rest.split_first_chunk::<8>()?;
        let (run, after) = after.split_first_chunk::<4>()?;
        let run = u64::from(u32::from_be_bytes(*run));
        u64::from_be_bytes(*first).checked_add(run.checked_sub(1)?)?;
        *rest = after.get(8..)?;
        nick(rest)
    })
}

/// Whether `payload` is opcode `op`, a count no larger than the frame can
/// hold at `min_len` bytes an entry, and that many entries (each read off
/// the front by `entry`, `None` if malformed) with nothing after them.
fn is_list(
    payload: &[u8],
    op: u8,
    min_len: usize,
    entry: impl Fn(&mut &[u8]) -> Option<()>,
) -> bool {
    let Some((&first, rest)) = payload.split_first() else {
        return false;
    };
    let Some((count, mut rest)) = rest.split_first_chunk::<4>() else {
        return false;
    };
    let count = u32::from_be_bytes(*count) as usize;
    if first != op || count > rest.len() / min_len {
        return false;
    }
    (0..count).all(|_| entry(&mut rest).is_some()) && rest.is_empty()
}

/// The receipts of a `RECEIPT` or a `RECEIPT_RUNS` the codec has checked,
/// read where they lie.
#[derive(Debug)]
pub(crate) struct ReceiptBatch {
    /// The frame's receipts (or runs), after its count; well formed.
    receipts: Bytes,
    /// A `RECEIPT_RUNS`: each entry a run.
    runs: bool,
}

impl ReceiptBatch {
    /// Each receipt's `message_id` and `recipient` (the hub's time of the
    /// confirmation is not the bench's business: it times receipts by its
    /// own clock); a run's, one after another.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut rest: &[u8] = &self.receipts;
        let runs = self.runs;
        // The run being gone through: its next id, how many are left, its
        // recipient.
        let mut run: (u64, u64, &[u8]) = (0, 0, &[]);
        std::iter::from_fn(move || {
            if run.1 > 0 {
                let id = run.0;
                run = (id.wrapping_add(1), run.1 - 1, run.2);
                return Some((id, run.2));
            }
            let (id, after) = rest.split_first_chunk::<8>()?;
            let id = u64::from_be_bytes(*id);
            // A run's count (u32), then received_ms (u64), then the
            // nickname's length and bytes.
            let (count, after) = if runs {
                let (count, after) = after.split_first_chunk::<4>()?;
                (u64::from(u32::from_be_bytes(*count)), after)
            } else {
                (1, after)
            };
            let (&len, after) = after.get(8..)?.split_first()?;
            let recipient = after.get(..usize::from(len))?;
            rest = &after[usize::from(len)..];
            run = (id.wrapping_add(1), count.saturating_sub(1), recipient);
            Some((id, recipient))
        })
    }
}

/// Skips a `nick` field that must be UTF-8.
fn nick(rest: &mut &[u8]) -> Option<()> {
    let (&len, after) = rest.split_first()?;
    let name = after.get(..usize::from(len))?;
    std::str::from_utf8(name).ok()?;
    *rest = &after[usize::from(len)..];
    Some(())
}

#[cfg(test)]
mod tests {
    use chinwag_protocol::{
        Ack, DEFAULT_MAX_FRAME, Message, Presence, Receipt, ReceiptRun, RecipientStatus,
        Recipients, Sequenced, encode_frame,
    };

    use super::*;
    use crate::payload::{Kind, blank, stamp};

    fn message(to: Recipients, text: String) -> BytesMut {
        let frame = ServerFrame::Message(Message {
            id: 9,
            ts_ms: 1_700_000_000_000,
            from: "pub".to_owned(),
            to,
            text,
        });
        BytesMut::from(&encode_frame(&frame, DEFAULT_MAX_FRAME).unwrap()[..])
    }

    fn bench_text(seq: u64) -> (Header, String) {
        let header = Header {
            kind: Kind::Data,
            sender: 3,
            seq,
            sent_ns: 42,
        };
        let mut text = blank(64).into_bytes();
        stamp(header, &mut text);
        (header, String::from_utf8(text).unwrap())
    }

    #[test]
    fn bench_messages_are_read_in_place_whatever_their_recipients() {
        let mut codec = BenchCodec::new(64, DEFAULT_MAX_FRAME, 1024);
        let (first, text) = bench_text(1);
        let mut buf = message(Recipients::Everyone, text);
        let (second, text) = bench_text(2);
        buf.extend_from_slice(&message(
            Recipients::Users(vec!["b0".into(), "é".into()]),
            text,
        ));
        let Some(Inbound::Delivery { id, header }) = codec.decode(&mut buf).unwrap() else {
            panic!("not a delivery");
        };
        assert_eq!((id, header), (9, first));
        let Some(Inbound::Delivery { id, header }) = codec.decode(&mut buf).unwrap() else {
            panic!("not a delivery");
        };
        assert_eq!((id, header), (9, second));
        assert!(buf.is_empty());
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn sequenced_bench_messages_are_read_in_place() {
        let mut codec = BenchCodec::new(64, DEFAULT_MAX_FRAME, 1024);
        let (header, text) = bench_text(4);
        let frame = ServerFrame::Sequenced(Sequenced {
            seq: 77,
            message: Message {
                id: 9,
                ts_ms: 1_700_000_000_000,
                from: "a0".to_owned(),
                to: Recipients::Users(vec!["b0".into()]),
                text,
            },
        });
        let mut buf = BytesMut::from(&encode_frame(&frame, DEFAULT_MAX_FRAME).unwrap()[..]);
        let Some(Inbound::Sequenced {
            seq,
            id,
            header: read,
        }) = codec.decode(&mut buf).unwrap()
        else {
            panic!("not read in place");
        };
        assert_eq!((seq, id, read), (77, 9, header));
        assert!(buf.is_empty());
        // Another text is decoded in full.
        let ServerFrame::Sequenced(mut other) = frame else {
            unreachable!()
        };
        other.message.text = "hello".to_owned();
        let encoded = encode_frame(&ServerFrame::Sequenced(other), DEFAULT_MAX_FRAME).unwrap();
        let mut buf = BytesMut::from(&encoded[..]);
        assert!(matches!(
            codec.decode(&mut buf).unwrap(),
            Some(Inbound::Frame(ServerFrame::Sequenced(_)))
        ));
    }

    #[test]
    fn a_partial_frame_waits_for_the_rest() {
        let mut codec = BenchCodec::new(64, DEFAULT_MAX_FRAME, 1024);
        let (_, text) = bench_text(0);
        let whole = message(Recipients::Everyone, text);
        let mut buf = BytesMut::from(&whole[..whole.len() - 1]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&whole[whole.len() - 1..]);
        assert!(matches!(
            codec.decode(&mut buf).unwrap(),
            Some(Inbound::Delivery { .. })
        ));
    }

    #[test]
    fn acks_saying_delivered_are_read_in_place_and_others_decoded_in_full() {
        let mut codec = BenchCodec::new(64, DEFAULT_MAX_FRAME, 1024);
        let ack = |statuses: Vec<RecipientStatus>| {
            let frame = ServerFrame::Ack(Ack {
                client_id: 11,
                message_id: 12,
                delivered: 1,
                statuses,
            });
            BytesMut::from(&encode_frame(&frame, DEFAULT_MAX_FRAME).unwrap()[..])
        };
        let status = |nick: &str, status| RecipientStatus {
            nick: nick.to_owned(),
            status,
        };
        for statuses in [vec![], vec![status("b0", Code::DELIVERED)]] {
            let mut buf = ack(statuses);
            assert!(matches!(
                codec.decode(&mut buf).unwrap(),
                Some(Inbound::Delivered {
                    client_id: 11,
                    message_id: 12,
                    delivered: 1
                })
            ));
            assert!(buf.is_empty());
        }
        // A failure is decoded in full, so that the bench can name it.
        let mut buf = ack(vec![
            status("b0", Code::DELIVERED),
            status("zed", Code::NO_SUCH_USER),
        ]);
        let Some(Inbound::Frame(ServerFrame::Ack(full))) = codec.decode(&mut buf).unwrap() else {
            panic!("not decoded in full");
        };
        assert_eq!(full.statuses[1].status, Code::NO_SUCH_USER);
        // So is a malformed one, which the full decoder refuses: here a
        // status count claiming one more than there is.
        let mut buf = ack(vec![status("b0", Code::DELIVERED)]);
        buf[PREFIX_LEN + 1 + 8 + 8 + 4 + 3] = 2;
        assert!(codec.decode(&mut buf).is_err());
    }

    #[test]
    fn receipts_are_read_in_place_and_malformed_ones_refused() {
        let mut codec = BenchCodec::new(64, DEFAULT_MAX_FRAME, 1024);
        let receipt = |message_id, recipient: &str| Receipt {
            message_id,
            received_ms: 1_700_000_000_000,
            recipient: recipient.to_owned(),
        };
        let frame = |receipts| {
            let frame = ServerFrame::Receipts(receipts);
            BytesMut::from(&encode_frame(&frame, DEFAULT_MAX_FRAME).unwrap()[..])
        };
        let mut buf = frame(vec![
            receipt(7, "b0"),
            receipt(8, "é"),
            receipt(u64::MAX, ""),
        ]);
        buf.extend_from_slice(&frame(vec![]));
        let Some(Inbound::Receipts(batch)) = codec.decode(&mut buf).unwrap() else {
            panic!("not read in place");
        };
        let read: Vec<(u64, &[u8])> = batch.iter().collect();
        assert_eq!(
            read,
            [(7, &b"b0"[..]), (8, "é".as_bytes()), (u64::MAX, &b""[..])]
        );
        let Some(Inbound::Receipts(empty)) = codec.decode(&mut buf).unwrap() else {
            panic!("not read in place");
        };
        assert_eq!(empty.iter().count(), 0);
        assert!(buf.is_empty());
        // Malformed ones go to the full decoder, which refuses them: a count
        // claiming one more than there is, a recipient that is not UTF-8,
        // and a byte after the last receipt.
        let count_at = PREFIX_LEN + 1 + 3;
        let mut more = frame(vec![receipt(7, "b0")]);
        more[count_at] = 2;
        let mut not_utf8 = frame(vec![receipt(7, "b0")]);
        let last = not_utf8.len() - 1;
        not_utf8[last] = 0xff;
        let mut trailing = frame(vec![receipt(7, "b0")]);
        trailing.extend_from_slice(b"x");
        let len = u32::try_from(trailing.len() - PREFIX_LEN).unwrap();
        trailing[..PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
        for mut bad in [more, not_utf8, trailing] {
            assert!(codec.decode(&mut bad).is_err());
        }
    }

    #[test]
    fn receipt_runs_are_read_in_place_one_receipt_each_and_bad_runs_refused() {
        let mut codec = BenchCodec::new(64, DEFAULT_MAX_FRAME, 1024);
        let run = |first_message_id, count, recipient: &str| ReceiptRun {
            first_message_id,
            count,
            received_ms: 1_700_000_000_000,
            recipient: recipient.to_owned(),
        };
        let frame = |runs| {
            let frame = ServerFrame::ReceiptRuns(runs);
            BytesMut::from(&encode_frame(&frame, DEFAULT_MAX_FRAME).unwrap()[..])
        };
        let mut buf = frame(vec![run(7, 3, "b0"), run(20, 1, "é"), run(u64::MAX, 1, "")]);
        let Some(Inbound::Receipts(batch)) = codec.decode(&mut buf).unwrap() else {
            panic!("not read in place");
        };
        let read: Vec<(u64, &[u8])> = batch.iter().collect();
        assert_eq!(
            read,
            [
                (7, &b"b0"[..]),
                (8, &b"b0"[..]),
                (9, &b"b0"[..]),
                (20, "é".as_bytes()),
                (u64::MAX, &b""[..])
            ]
        );
        assert!(buf.is_empty());
        // A run of none, and one passing the last id, go to the full
        // decoder, which refuses them.
        let count_at = PREFIX_LEN + 1 + 4 + 8;
        let mut empty = frame(vec![run(7, 1, "b0")]);
        empty[count_at + 3] = 0;
        let mut past = frame(vec![run(u64::MAX, 1, "b0")]);
        past[count_at + 3] = 2;
        for mut bad in [empty, past] {
            assert!(codec.decode(&mut bad).is_err());
        }
    }

    #[test]
    fn other_texts_and_frames_are_decoded_in_full() {
        let mut codec = BenchCodec::new(64, DEFAULT_MAX_FRAME, 1024);
        let mut buf = message(Recipients::Everyone, "hello".to_owned());
        let Some(Inbound::Frame(ServerFrame::Message(message))) = codec.decode(&mut buf).unwrap()
        else {
            panic!("not a message frame");
        };
        assert_eq!(message.text, "hello");
        let mut buf =
            BytesMut::from(&encode_frame(&ServerFrame::Ping(7), DEFAULT_MAX_FRAME).unwrap()[..]);
        assert!(matches!(
            codec.decode(&mut buf).unwrap(),
            Some(Inbound::Frame(ServerFrame::Ping(7)))
        ));
    }

    #[test]
    fn presence_notices_are_skipped_in_place() {
        let mut codec = BenchCodec::new(64, DEFAULT_MAX_FRAME, 1024);
        let presence = ServerFrame::Presence(Presence {
            online: true,
            ts_ms: 5,
            nick: "c42".to_owned(),
        });
        let encoded = encode_frame(&presence, DEFAULT_MAX_FRAME).unwrap();
        let mut buf = BytesMut::from(&encoded[..]);
        assert!(matches!(
            codec.decode(&mut buf).unwrap(),
            Some(Inbound::Presence)
        ));
        assert!(buf.is_empty());
        // A bad online flag is left to the full decoder, which refuses it.
        let mut buf = BytesMut::from(&encoded[..]);
        buf[PREFIX_LEN + 1] = 2;
        assert!(codec.decode(&mut buf).is_err());
    }

    #[test]
    fn malformed_and_oversized_frames_are_errors() {
        let mut codec = BenchCodec::new(64, DEFAULT_MAX_FRAME, 1024);
        let (_, text) = bench_text(0);
        // One trailing byte after the text, the length prefix counting it.
        let mut buf = message(Recipients::Everyone, text);
        buf.extend_from_slice(b"x");
        let len = u32::try_from(buf.len() - PREFIX_LEN).unwrap();
        buf[..PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(
            codec.decode(&mut buf),
            Err(ProtocolError::Malformed(_))
        ));

        let mut small = BenchCodec::new(64, 16, 1024);
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x11"[..]);
        assert!(matches!(
            small.decode(&mut buf),
            Err(ProtocolError::FrameTooLarge { len: 17, max: 16 })
        ));
    }
}
