//! The task that reads one connection and checks every frame on it.
//!
//! Every data message is checked against what this connection should get:
//! which sender, which sequence numbers (a bitmap per connection tells a
//! duplicate from a late arrival), and the exact text. Every `ACK` for a
//! data message must report the expected number of recipients, all
//! delivered, in the order sent. Any `ERROR` frame, and the hub closing the
//! connection, are recorded. Progress that the coordinator watches while the
//! run is going lives in atomics; everything else stays in the task and is
//! returned as a [`Tally`] when it is told to stop.
//!
//! With receipts (`direct --receipts`), the task also confirms every data
//! message it receives, and checks every receipt for the messages its
//! connection sent ([`Receipts`]); while confirmations are pending it waits
//! for the socket with a timer, [`CONFIRM_QUIET`], after which it confirms
//! them. Without, it reads as it always did.
//!
//! The receive path allocates nothing per delivery: bench messages are read
//! in place by the [`BenchCodec`], and latencies are recorded in a fixed
//! buffer and merged into the shared histogram a batch at a time.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use chinwag_protocol::{
    Ack, ClientFrame, Code, ErrorFrame, Gap, Message, ProtocolError, ServerFrame,
};
use futures::{FutureExt as _, StreamExt};
use hdrhistogram::Histogram;
use tokio_util::codec::FramedRead;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::clock::Clock;
use crate::codec::{BenchCodec, Inbound, ReceiptBatch};
use crate::payload::{self, Header, Kind, RELIABLE_WARMUP_ROOM, WARMUP_ID};
use crate::receipts::{CONFIRM_QUIET, ReceiptTally, Receipts, Wrong};
use crate::shared_write::SharedWrite;
use crate::stuck::STUCK_PREFIX;
use crate::transport::ReadHalf;

/// Latencies buffered before taking the histogram's lock.
const LATENCY_BATCH: usize = 256;

/// What one connection should receive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    /// The sender index whose data messages should arrive here; `None` for
    /// a connection that should get no messages.
    pub(crate) from: Option<u32>,
    /// Data messages that sender sends (sequence numbers `0..messages`).
    pub(crate) messages: u64,
    /// The `--size` of every message.
    pub(crate) size: usize,
    /// Latencies are recorded from this sequence number on (the warm-up
    /// seconds of `latency` are not).
    pub(crate) record_from: u64,
    /// Recipients the `ACK` of each data message this connection sends must
    /// report; `None` for a connection that sends no data.
    pub(crate) ack_recipients: Option<u32>,
    /// Stuck readers among those recipients (`stuck.rs`): each may be
    /// counted or not, and may fail, while the hub has yet to cut it.
    pub(crate) stuck: u32,
}

/// What the coordinator watches while a run goes on.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Distinct data messages received.
    pub(crate) delivered: AtomicU64,
    /// [`Clock::now_ns`] of the latest data message.
    pub(crate) last_ns: AtomicU64,
    /// A warm-up message from the expected sender has arrived.
    pub(crate) ready: AtomicBool,
    /// `ACK`s received for data messages.
    pub(crate) acks: AtomicU64,
    /// Good receipts received (with receipts).
    pub(crate) receipts: AtomicU64,
}

/// What one connection saw, counted when its task stopped.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    /// Distinct data messages from the expected sender.
    pub(crate) delivered: u64,
    /// Data messages whose sequence number had already arrived.
    pub(crate) duplicated: u64,
    /// Data messages that arrived after a later one from the same sender.
    pub(crate) out_of_order: u64,
    /// Messages that this bench did not write this way: wrong size or
    /// padding, an unparsable header, an unexpected sender, or a sequence
    /// number out of range.
    pub(crate) corrupt: u64,
    /// `ACK`s of data messages.
    pub(crate) acks: u64,
    /// Of those, acks with the wrong recipient count, a failed status, or
    /// out of order.
    pub(crate) bad_acks: u64,
    /// `ERROR` frames received.
    pub(crate) hub_errors: u64,
    /// Receipts, confirmations, and what was wrong with them (all 0 but
    /// `bad` without receipts).
    pub(crate) receipts: ReceiptTally,
    /// How the connection ended, if not because the bench stopped it.
    pub(crate) cut: Option<String>,
    /// The first thing that went wrong, described.
    pub(crate) first_problem: Option<String>,
}

impl Tally {
    /// A tally that only reports a problem with the task itself.
    pub(crate) fn problem(what: impl Into<String>) -> Self {
        Self {
            cut: Some(what.into()),
            ..Self::default()
        }
    }

    fn note(&mut self, problem: impl FnOnce() -> String) {
        if self.first_problem.is_none() {
            self.first_problem = Some(problem());
        }
    }
}

/// Everything the task needs.
#[derive(Debug)]
pub(crate) struct Receiver {
    pub(crate) nick: String,
    pub(crate) frames: FramedRead<ReadHalf, BenchCodec>,
    pub(crate) write: SharedWrite,
    pub(crate) expect: Expect,
    pub(crate) progress: Arc<Progress>,
    pub(crate) clock: Clock,
    pub(crate) latencies: Arc<Mutex<Histogram<u64>>>,
    pub(crate) stop: CancellationToken,
    /// With receipts: confirming what arrives, checking what comes back.
    pub(crate) receipts: Option<Receipts>,
}

/// Which sequence numbers have arrived, one bit each; and the order of
/// what arrives: the last ack's id, and the last `SEQUENCED` number.
#[derive(Debug)]
struct Seen {
    bits: Vec<u64>,
    /// One past the highest sequence number seen.
    next: u64,
    /// The `SEND` id of the last ack (as the connection counts them).
    last_ack: u64,
    /// The number of the last `SEQUENCED` (a reliable session's), 0 before
    /// the first.
    last_number: u64,
}

impl Seen {
    fn new(messages: u64) -> Self {
        let words = usize::try_from(messages.div_ceil(64)).unwrap_or(0);
        Self {
            bits: vec![0; words],
            next: 0,
            last_ack: 0,
            last_number: 0,
        }
    }

    /// Marks `seq`; false if it was already marked.
    fn mark(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        let mask = 1 << bit;
        let fresh = self.bits[word] & mask == 0;
        self.bits[word] |= mask;
        fresh
    }
}

/// Reads until told to stop or until the connection ends; returns the tally.
pub(crate) async fn run(mut r: Receiver) -> Tally {
    let mut tally = Tally::default();
    let mut seen = Seen::new(r.expect.from.map_or(0, |_| r.expect.messages));
    // Allocated on the first latency: `conns` holds thousands of receivers
    // that never record one.
    let mut batch: Vec<u64> = Vec::new();
    let mut last_error: Option<ErrorFrame> = None;
    let mut receipts = r.receipts.take();
    let stop = r.stop.clone();
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let Some(frame) = next_frame(&mut r.frames, receipts.as_mut(), stopped.as_mut()).await
        else {
            break;
        };
        match frame {
            Some(Ok(Inbound::Delivery { id, header })) => {
                if on_delivery(&r, header, &mut seen, &mut tally, &mut batch) {
                    confirm(receipts.as_mut(), id, header);
                }
            }
            Some(Ok(Inbound::Sequenced { seq, id, header })) => {
                let (receipts, message) = (receipts.as_mut(), (seq, id, header));
                on_sequenced(&r, receipts, message, &mut seen, &mut tally, &mut batch);
            }
            Some(Ok(Inbound::Frame(ServerFrame::Message(message)))) => {
                if let Some(header) = on_message(&r, &message, &mut seen, &mut tally, &mut batch) {
                    confirm(receipts.as_mut(), message.id, header);
                }
            }
            Some(Ok(Inbound::Delivered {
                client_id,
                message_id,
                delivered,
            })) => {
                let (rs, ids) = (receipts.as_mut(), (client_id, message_id));
                acked(&r, rs, ids, delivered, None, &mut seen, &mut tally);
            }
            Some(Ok(Inbound::Frame(ServerFrame::Ack(ack)))) => {
                let (rs, ids) = (receipts.as_mut(), (ack.client_id, ack.message_id));
                acked(
                    &r,
                    rs,
                    ids,
                    ack.delivered,
                    Some(&ack),
                    &mut seen,
                    &mut tally,
                );
            }
            Some(Ok(Inbound::Frame(ServerFrame::AckRun(run)))) => {
                // A run holds messages to named users, each delivered to
                // every name; the bench names one user per such message.
                for ids in run.ids() {
                    acked(&r, receipts.as_mut(), ids, 1, None, &mut seen, &mut tally);
                }
            }
            Some(Ok(Inbound::Frame(ServerFrame::Gap(gap)))) => on_gap(&r, &gap, &mut tally),
            Some(Ok(Inbound::Receipts(list))) => {
                on_receipts(&r, &list, receipts.as_mut(), &mut tally);
            }
            Some(Ok(Inbound::Frame(ServerFrame::Error(error)))) => {
                tally.hub_errors += 1;
                tally.note(|| {
                    format!(
                        "{}: the hub sent error {}: {}",
                        r.nick, error.code.0, error.message
                    )
                });
                last_error = Some(error);
            }
            Some(Ok(Inbound::Frame(ServerFrame::Ping(token)))) => pong(&r.write, token),
            // Presence notices of the other connections, and anything else
            // the hub may add, are not the bench's business.
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                tally.cut = Some(format!("{}: reading failed: {error}", r.nick));
                break;
            }
            None => {
                tally.cut = Some(match &last_error {
                    Some(error) if error.code.is_fatal() || error.code == Code::SLOW_CONSUMER => {
                        format!(
                            "{}: cut by the hub: {} (code {})",
                            r.nick, error.message, error.code.0
                        )
                    }
                    _ => format!("{}: the hub closed the connection", r.nick),
                });
                break;
            }
        }
    }
    flush_latencies(&r.latencies, &mut batch);
    if let Some(receipts) = receipts {
        let bad = tally.receipts.bad;
        tally.receipts = receipts.finish();
        tally.receipts.bad += bad;
    }
    tally
}

/// The next frame, or `None` once told to stop. Frames first: the stop
/// signal only matters once the socket is quiet, and checking it costs
/// nothing while frames keep coming. With confirmations pending: a frame
/// already there, or else one within [`CONFIRM_QUIET`], or else they are
/// confirmed and it waits on (the timer is made only once the socket has
/// nothing to read).
async fn next_frame(
    frames: &mut FramedRead<ReadHalf, BenchCodec>,
    receipts: Option<&mut Receipts>,
    mut stopped: Pin<&mut WaitForCancellationFuture<'_>>,
) -> Option<Option<Result<Inbound, ProtocolError>>> {
    if let Some(pending) = receipts.filter(|receipts| receipts.pending()) {
        if let Some(frame) = frames.next().now_or_never() {
            return Some(frame);
        }
        tokio::select! {
            biased;
            frame = frames.next() => return Some(frame),
            () = tokio::time::sleep(CONFIRM_QUIET) => pending.confirm(),
            () = &mut stopped => return None,
        }
    }
    tokio::select! {
        biased;
        frame = frames.next() => Some(frame),
        () = stopped => None,
    }
}

/// A `MESSAGE` the codec did not read in place: it is not a bench payload
/// of the expected size (the codec hands over every one that is). Its
/// header if it is a data message counted, as [`on_delivery`].
fn on_message(
    r: &Receiver,
    message: &Message,
    seen: &mut Seen,
    tally: &mut Tally,
    batch: &mut Vec<u64>,
) -> Option<Header> {
    if let Some(header) = payload::parse(message.text.as_bytes(), r.expect.size) {
        return on_delivery(r, header, seen, tally, batch).then_some(header);
    }
    tally.corrupt += 1;
    tally.note(|| {
        format!(
            "{}: a message from {} is not a bench payload of {} bytes",
            r.nick, message.from, r.expect.size
        )
    });
    None
}

/// Checks a bench message; true if it is a data message, counted (the
/// expected sender, a sequence number in range and not seen before).
fn on_delivery(
    r: &Receiver,
    header: Header,
    seen: &mut Seen,
    tally: &mut Tally,
    batch: &mut Vec<u64>,
) -> bool {
    if r.expect.from != Some(header.sender) {
        tally.corrupt += 1;
        tally.note(|| {
            format!(
                "{}: a message from sender {}, expected {}",
                r.nick,
                header.sender,
                r.expect
                    .from
                    .map_or_else(|| "none".to_owned(), |from| from.to_string())
            )
        });
        return false;
    }
    match header.kind {
        Kind::Warmup => {
            if !r.progress.ready.load(Relaxed) {
                r.progress.ready.store(true, Relaxed);
            }
            false
        }
        Kind::Data => {
            let now = r.clock.now_ns();
            if header.seq >= r.expect.messages {
                tally.corrupt += 1;
                tally.note(|| {
                    format!(
                        "{}: sequence number {} beyond the {} sent",
                        r.nick, header.seq, r.expect.messages
                    )
                });
                return false;
            }
            if !seen.mark(header.seq) {
                tally.duplicated += 1;
                tally.note(|| format!("{}: message {} arrived twice", r.nick, header.seq));
                return false;
            }
            if header.seq < seen.next {
                tally.out_of_order += 1;
                tally.note(|| {
                    format!(
                        "{}: message {} arrived after {}",
                        r.nick,
                        header.seq,
                        seen.next - 1
                    )
                });
            }
            seen.next = seen.next.max(header.seq + 1);
            tally.delivered += 1;
            r.progress.delivered.store(tally.delivered, Relaxed);
            r.progress.last_ns.store(now, Relaxed);
            if header.seq >= r.expect.record_from {
                if batch.capacity() == 0 {
                    batch.reserve_exact(LATENCY_BATCH);
                }
                batch.push(now.saturating_sub(header.sent_ns).max(1));
                if batch.len() == LATENCY_BATCH {
                    flush_latencies(&r.latencies, batch);
                }
            }
            true
        }
    }
}

/// With receipts, a data message counted is to be confirmed.
fn confirm(receipts: Option<&mut Receipts>, id: u64, header: Header) {
    if let Some(receipts) = receipts {
        receipts.delivered(id, header);
    }
}

/// The ack of the message sent with `client_id` (a reliable session's ids
/// start at a random point, its data messages [`RELIABLE_WARMUP_ROOM`]
/// after its warm-ups, both taken off here: a data message's is then its
/// sequence number plus one; its warm-ups are marked as the others'), as the hub's `message_id`: checked
/// ([`on_ack`]), and with receipts, a data message's receipt is awaited
/// (in a reliable session a warm-up's too).
fn acked(
    r: &Receiver,
    receipts: Option<&mut Receipts>,
    (client_id, message_id): (u64, u64),
    delivered: u32,
    ack: Option<&Ack>,
    seen: &mut Seen,
    tally: &mut Tally,
) {
    let client_id = match &receipts {
        Some(receipts) if receipts.reliable() => {
            let past_base = client_id.wrapping_sub(receipts.id_base());
            if past_base > RELIABLE_WARMUP_ROOM {
                past_base - RELIABLE_WARMUP_ROOM
            } else {
                WARMUP_ID | client_id
            }
        }
        _ => client_id,
    };
    let data = on_ack(r, client_id, delivered, ack, &mut seen.last_ack, tally);
    if let Some(receipts) = receipts {
        if data {
            receipts.acked(client_id.wrapping_sub(1), message_id, || r.clock.now_ns());
        } else {
            receipts.warmup_acked(message_id);
        }
    }
}

/// A `SEQUENCED` bench message, read in place (number, hub id, header):
/// its number checked ([`on_number`]), then as a delivery
/// ([`on_delivery`]); every one is confirmed, not only counted data
/// messages, so that nothing stays held in the mailbox.
fn on_sequenced(
    r: &Receiver,
    receipts: Option<&mut Receipts>,
    (number, id, header): (u64, u64, Header),
    seen: &mut Seen,
    tally: &mut Tally,
    batch: &mut Vec<u64>,
) {
    on_number(r, number, &mut seen.last_number, tally);
    let counted = on_delivery(r, header, seen, tally, batch);
    if let Some(receipts) = receipts {
        if counted {
            receipts.delivered(id, header);
        } else {
            receipts.held(id);
        }
    }
}

/// A `GAP`: numbers the hub will never send, so messages lost.
fn on_gap(r: &Receiver, gap: &Gap, tally: &mut Tally) {
    tally.hub_errors += 1;
    tally.note(|| {
        format!(
            "{}: the hub says numbers {} to {} will never come (code {})",
            r.nick, gap.first, gap.last, gap.reason.0
        )
    });
}

/// Checks a `SEQUENCED` frame's number: one more than the last (the
/// bench's accounts are fresh, and every copy is stored; a gap or a number
/// again is a message the hub lost or sent twice).
fn on_number(r: &Receiver, number: u64, last: &mut u64, tally: &mut Tally) {
    if *last != 0 && number != *last + 1 {
        tally.corrupt += 1;
        tally.note(|| format!("{}: SEQUENCED number {number} after {}", r.nick, *last));
    }
    *last = number;
}

/// Checks each receipt of a `RECEIPT` frame. Without receipts, any is
/// wrong: the connection did not ask for them.
fn on_receipts(
    r: &Receiver,
    list: &ReceiptBatch,
    receipts: Option<&mut Receipts>,
    tally: &mut Tally,
) {
    let Some(receipts) = receipts else {
        let count = list.iter().count() as u64;
        tally.receipts.bad += count;
        tally.note(|| format!("{}: {count} receipts, never asked for", r.nick));
        return;
    };
    let now = r.clock.now_ns();
    for (message_id, recipient) in list.iter() {
        if let Err(wrong) = receipts.receipt(message_id, recipient, now) {
            tally.note(|| match wrong {
                Wrong::Recipient => format!(
                    "{}: the receipt of message id {message_id} names {}",
                    r.nick,
                    String::from_utf8_lossy(recipient)
                ),
                Wrong::NotAwaited => format!(
                    "{}: a receipt for message id {message_id}, which awaits none (a duplicate, or not acked here)",
                    r.nick
                ),
            });
        }
    }
    r.progress.receipts.store(receipts.tally.receipts, Relaxed);
}

/// Checks the ack of message `client_id`; `ack` is the whole frame when it
/// was decoded in full (it may name failures), `None` when every status in
/// it said "delivered". True for a data message's ack (whatever it says).
fn on_ack(
    r: &Receiver,
    client_id: u64,
    delivered: u32,
    ack: Option<&Ack>,
    last_ack: &mut u64,
    tally: &mut Tally,
) -> bool {
    if client_id & WARMUP_ID != 0 {
        return false;
    }
    tally.acks += 1;
    r.progress.acks.store(tally.acks, Relaxed);
    let in_order = client_id == *last_ack + 1;
    *last_ack = client_id;
    let all_delivered = ack.is_none_or(|ack| {
        (ack.statuses.iter())
            .all(|s| s.status == Code::DELIVERED || s.nick.starts_with(STUCK_PREFIX))
    });
    let counted = r.expect.ack_recipients.is_some_and(|healthy| {
        (healthy..=healthy.saturating_add(r.expect.stuck)).contains(&delivered)
    });
    if counted && all_delivered && in_order {
        return true;
    }
    tally.bad_acks += 1;
    tally.note(|| {
        let failed: Vec<String> = ack
            .iter()
            .flat_map(|ack| &ack.statuses)
            .filter(|s| s.status != Code::DELIVERED)
            .map(|s| format!("{} {}", s.nick, s.status))
            .collect();
        format!(
            "{}: ack of message {} says delivered to {} (expected {}){}{}",
            r.nick,
            client_id,
            delivered,
            r.expect
                .ack_recipients
                .map_or_else(|| "no ack".to_owned(), |n| n.to_string()),
            if in_order { "" } else { ", out of order" },
            if failed.is_empty() {
                String::new()
            } else {
                format!(", failed: {}", failed.join(", "))
            },
        )
    });
    true
}

fn flush_latencies(histogram: &Mutex<Histogram<u64>>, batch: &mut Vec<u64>) {
    if batch.is_empty() {
        return;
    }
    // A panic elsewhere while holding the lock leaves counts that are still
    // counts: keep recording.
    let mut histogram = histogram.lock().unwrap_or_else(PoisonError::into_inner);
    for latency in batch.drain(..) {
        histogram.saturating_record(latency);
    }
}

/// Answers a hub's `PING` if the write half is free. When it is not, the
/// sender is writing, and any frame counts as an answer to the hub.
fn pong(write: &SharedWrite, token: u64) {
    let Ok(guard) = Arc::clone(write).try_lock_owned() else {
        return;
    };
    tokio::spawn(async move {
        let mut guard = guard;
        let mut buf = bytes::BytesMut::with_capacity(16);
        if chinwag_protocol::encode_into(&ClientFrame::Pong(token), 64, &mut buf).is_ok() {
            // A failed write shows up as the connection ending, on the read side.
            if tokio::io::AsyncWriteExt::write_all(&mut *guard, &buf)
                .await
                .is_ok()
            {
                // TLS sends the tail of a write only when flushed.
                let _ = tokio::io::AsyncWriteExt::flush(&mut *guard).await;
            }
        }
    });
}
