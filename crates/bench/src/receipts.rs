//! Receipts, for `direct --receipts`: what a connection does on both sides
//! of them (`docs/protocol.md`, section 8.10).
//!
//! As a recipient, a connection confirms the hub's id of every data message
//! it receives ([`Receipts::delivered`]), batched: one `CONFIRM` per
//! [`CONFIRM_BATCH`] ids, and whatever is pending when its socket has been
//! quiet for [`CONFIRM_QUIET`] or when the run ends. The receiver task never
//! waits to write: it encodes each `CONFIRM` into a buffer shared with a
//! small task of the connection's own, which writes what has gathered there
//! through the write half the sender also uses, as soon as the sender lets
//! go of it. No confirmation is dropped while the sender holds the write
//! half, and none makes the receiver stop reading.
//!
//! As a sender, it checks every receipt it gets ([`Receipts::receipt`]): it
//! must name the connection's partner and a message id the hub acked to
//! this connection and whose receipt has not come yet. The ids acked and
//! awaiting a receipt are kept in the order sent, and the hub's ids grow in
//! that order; receipts come in that order too (the partner confirms in the
//! order it received), so each one is normally the first awaiting. One that
//! is not is found by binary search, and the ids before it are passed over:
//! set aside, still awaited, in a second queue searched the same way, where
//! a receipt that comes for one is counted as out of order (the protocol
//! allows it). So each receipt costs a constant or a logarithm, even when
//! the hub gives none for some messages (it remembers at most 65,536
//! unconfirmed ones per connection). A receipt for an id not awaiting one is
//! wrong: a duplicate, or for a message this connection was not acked (the
//! bench keeps only the ids still awaiting, so it does not tell the two
//! apart).
//!
//! Its latency is from encoding the `SEND` to reading its receipt, for every
//! [`SAMPLE_EVERY`]th message (sequence numbers that are multiples of it):
//! the partner's receiver copies the send time from those messages'
//! headers, as it receives them, into a table of the sender's
//! ([`SendTimes`]), and the receipt is matched to its sequence number
//! through the ack's message id. (Timing every message would take 8 bytes
//! per message per connection: 80 MB for `--pairs 50 --messages 100000`.)
//!
//! In a reliable session (`direct --reliable`), a connection confirms every
//! `SEQUENCED` it receives, warm-up messages included, so that nothing is
//! left held in its mailbox, and takes the receipts of its own warm-up
//! messages (their ids noted as their acks come) as good but uncounted.
//! Its sender keeps the send times of its own sampled messages, so the
//! latency from `SEND` to `ACK` is recorded too, as each sampled ack comes.
//!
//! Nothing here allocates per message: confirmations are encoded into
//! buffers that keep their capacity, the ids awaiting a receipt sit in a
//! ring that grows only while more are awaiting than ever before, and
//! receipts are read in place ([`ReceiptBatch`](crate::codec::ReceiptBatch)).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{BufMut as _, BytesMut};
use chinwag_protocol::{ClientFrame, DEFAULT_MAX_FRAME, encode_into, opcode};
use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use crate::payload::Header;
use crate::shared_write::SharedWrite;
use crate::unacked::Unacked;

/// Ids confirmed by one `CONFIRM`, unless the socket goes quiet first (the
/// bundled client's batch, `docs/protocol.md` section 8.10).
pub(crate) const CONFIRM_BATCH: usize = 256;

/// Confirmations pending when the socket has been quiet this long go out.
pub(crate) const CONFIRM_QUIET: Duration = Duration::from_millis(5);

/// Receipt latency is recorded for messages whose sequence number is a
/// multiple of this.
pub(crate) const SAMPLE_EVERY: u64 = 16;

/// Latencies buffered before taking the histogram's lock.
const LATENCY_BATCH: usize = 256;

/// The send times of one sender's sampled messages, written by the
/// partner's receiver as they arrive, read by the sender's own receiver as
/// their receipts do. 0: not arrived (yet).
#[derive(Debug)]
pub(crate) struct SendTimes(Box<[AtomicU64]>);

impl SendTimes {
    /// Room for the sampled messages among `messages`.
    pub(crate) fn new(messages: u64) -> Self {
        let slots = usize::try_from(messages.div_ceil(SAMPLE_EVERY)).unwrap_or(0);
        Self((0..slots).map(|_| AtomicU64::new(0)).collect())
    }

    fn slot(&self, seq: u64) -> Option<&AtomicU64> {
        if !seq.is_multiple_of(SAMPLE_EVERY) {
            return None;
        }
        self.0.get(usize::try_from(seq / SAMPLE_EVERY).ok()?)
    }

    pub(crate) fn record(&self, seq: u64, sent_ns: u64) {
        if let Some(slot) = self.slot(seq) {
            // The receipt comes after the message arrived (through two
            // sockets and the hub); a sample not yet visible is skipped.
            slot.store(sent_ns.max(1), Ordering::Relaxed);
        }
    }

    pub(crate) fn get(&self, seq: u64) -> Option<u64> {
        let sent_ns = self.slot(seq)?.load(Ordering::Relaxed);
        (sent_ns > 0).then_some(sent_ns)
    }
}

/// What one connection of `direct --receipts` needs to know.
#[derive(Debug, Clone)]
pub(crate) struct ReceiptSpec {
    /// The nickname every receipt must name: the partner's.
    pub(crate) partner: String,
    /// Send times of this connection's own sampled messages.
    pub(crate) own_times: Arc<SendTimes>,
    /// Send times of the partner's, recorded here as they arrive.
    pub(crate) partner_times: Arc<SendTimes>,
    /// SEND to its receipt, in nanoseconds, over every connection.
    pub(crate) latencies: Arc<Mutex<Histogram<u64>>>,
    /// A reliable session (`direct --reliable`): logs in to its account
    /// with `RELIABLE`, confirms every `SEQUENCED` (warm-up messages too,
    /// so that nothing stays held in the mailbox) and takes the receipts
    /// of its warm-up messages as good but uncounted.
    pub(crate) reliable: Option<ReliableSpec>,
    /// A reliable session's window ([`Unacked`]): its receiver counts the
    /// acks of its data messages here, for its sender.
    pub(crate) window: Option<Arc<Unacked>>,
}

/// What a reliable session adds.
#[derive(Debug, Clone)]
pub(crate) struct ReliableSpec {
    /// Added to every `SEND` id of the run (the sender's `id_base`).
    pub(crate) id_base: u64,
    /// SEND to its `ACK`, in nanoseconds, over every connection: the
    /// sender keeps its own send times ([`Sender::reliable`]), so each
    /// sampled ack finds its message's.
    ///
    /// [`Sender::reliable`]: crate::sender::Sender::reliable
    pub(crate) ack_latencies: Arc<Mutex<Histogram<u64>>>,
}

/// What one connection counted about receipts.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReceiptTally {
    /// Receipts for a message awaiting one, naming the partner.
    pub(crate) receipts: u64,
    /// Of those, receipts that came after a later message's.
    pub(crate) out_of_order: u64,
    /// Receipts for an id not awaiting one (a duplicate, or not acked to
    /// this connection), or naming someone other than the partner; or any
    /// receipt on a connection that did not ask for them.
    pub(crate) bad: u64,
    /// Message ids confirmed (written or queued to be).
    pub(crate) confirmed: u64,
    /// Receipts confirmed with `CONFIRM_RECEIPTS` (a reliable session's:
    /// every receipt it got, so that the hub stops keeping them).
    pub(crate) receipts_confirmed: u64,
    /// [`Clock::now_ns`](crate::clock::Clock::now_ns) of the latest good
    /// receipt.
    pub(crate) last_ns: u64,
}

/// Why a receipt is wrong: for the report's first problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrong {
    /// It names someone other than the partner.
    Recipient,
    /// Its id awaits no receipt.
    NotAwaited,
}

/// `CONFIRM`s encoded by the receiver, waiting for the connection's writer
/// task.
#[derive(Debug, Default)]
struct Outgoing {
    frames: Mutex<BytesMut>,
    wake: Notify,
    /// No more will come: write what is left and end.
    closed: AtomicBool,
}

impl Outgoing {
    /// The frames queued.
    fn lock(&self) -> std::sync::MutexGuard<'_, BytesMut> {
        self.frames.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// One connection's receipts, both sides, held by its receiver task.
#[derive(Debug)]
pub(crate) struct Receipts {
    spec: ReceiptSpec,
    /// Ids received and not yet handed to the writer task.
    pending: Vec<u64>,
    outgoing: Arc<Outgoing>,
    /// (message id, sequence number) of each message acked and awaiting its
    /// receipt, in the order sent, from the first not passed over.
    awaiting: VecDeque<(u64, u64)>,
    /// (message id, sequence number, receipt come since) of each message
    /// passed over by a later message's receipt, in the order sent; the
    /// front is always still awaited.
    passed: VecDeque<(u64, u64, bool)>,
    latencies: Vec<u64>,
    /// With `reliable`: SEND to `ACK` of sampled messages, not yet in the
    /// shared histogram.
    ack_latencies: Vec<u64>,
    /// With `reliable`: the hub's ids of warm-up messages acked and
    /// awaiting their receipt (a few, early in the run).
    warmups: Vec<u64>,
    /// With `reliable`: the receipts to confirm, encoded as
    /// `CONFIRM_RECEIPT_RUNS` names them (runs of message ids, each with its
    /// recipient), how many runs, and how many receipts they hold.
    receipt_keys: BytesMut,
    receipt_runs: u32,
    receipt_count: u32,
    /// The last run in `receipt_keys`, while another may join it.
    last_run: Option<LastRun>,
    pub(crate) tally: ReceiptTally,
}

/// The last run of receipts to confirm: where its count is in the buffer,
/// its recipient's bytes, and the id that would join it.
#[derive(Debug)]
struct LastRun {
    next: u64,
    count: u32,
    count_at: usize,
    recipient: std::ops::Range<usize>,
}

impl Receipts {
    /// The receipts of a connection writing on `write`, whose `CONFIRM`s a
    /// task of its own, started here, writes.
    pub(crate) fn new(spec: ReceiptSpec, write: SharedWrite) -> Self {
        let outgoing = Arc::new(Outgoing::default());
        tokio::spawn(write_confirms(write, Arc::clone(&outgoing)));
        Self {
            spec,
            pending: Vec::with_capacity(CONFIRM_BATCH),
            outgoing,
            awaiting: VecDeque::with_capacity(1024),
            passed: VecDeque::new(),
            latencies: Vec::with_capacity(LATENCY_BATCH),
            ack_latencies: Vec::new(),
            warmups: Vec::new(),
            receipt_keys: BytesMut::new(),
            receipt_runs: 0,
            last_run: None,
            receipt_count: 0,
            tally: ReceiptTally::default(),
        }
    }

    /// What `SEND` ids start from: 0, or a reliable session's random start.
    pub(crate) fn id_base(&self) -> u64 {
        self.spec
            .reliable
            .as_ref()
            .map_or(0, |reliable| reliable.id_base)
    }

    /// Whether this is a reliable session.
    pub(crate) fn reliable(&self) -> bool {
        self.spec.reliable.is_some()
    }

    /// A message that is not a counted data message arrived (a warm-up, or
    /// one already seen): in a reliable session it is confirmed all the
    /// same, so that it leaves the mailbox.
    pub(crate) fn held(&mut self, id: u64) {
        if self.reliable() {
            self.pending.push(id);
            if self.pending.len() >= CONFIRM_BATCH {
                self.confirm();
            }
        }
    }

    /// In a reliable session, this connection's warm-up message was acked
    /// as the hub's `message_id`: its receipt will come, and is good.
    pub(crate) fn warmup_acked(&mut self, message_id: u64) {
        if self.reliable() {
            self.warmups.push(message_id);
        }
    }

    /// A data message arrived, checked: it is to be confirmed, and its send
    /// time kept if it is sampled.
    pub(crate) fn delivered(&mut self, id: u64, header: Header) {
        self.spec.partner_times.record(header.seq, header.sent_ns);
        self.pending.push(id);
        if self.pending.len() >= CONFIRM_BATCH {
            self.confirm();
        }
    }

    /// Whether ids (or a reliable session's receipts) wait to be
    /// confirmed.
    pub(crate) fn pending(&self) -> bool {
        !self.pending.is_empty() || self.receipt_count > 0
    }

    /// Hands the pending ids, as one `CONFIRM`, and a reliable session's
    /// pending receipts, as one `CONFIRM_RECEIPTS`, to the writer task.
    pub(crate) fn confirm(&mut self) {
        self.confirm_receipts();
        if self.pending.is_empty() {
            return;
        }
        let frame = ClientFrame::Confirm(std::mem::take(&mut self.pending));
        // A few hundred bytes: within any frame limit.
        let _ = encode_into(&frame, DEFAULT_MAX_FRAME, &mut self.outgoing.lock());
        if let ClientFrame::Confirm(mut ids) = frame {
            self.tally.confirmed += ids.len() as u64;
            ids.clear();
            self.pending = ids;
        }
        self.outgoing.wake.notify_one();
    }

    /// This connection's message `seq` was acked as the hub's `message_id`:
    /// its receipt is awaited.
    ///
    /// In a reliable session, the latency from its `SEND` to this ack is
    /// recorded for a sampled message (read at `now_ns`, called only then).
    pub(crate) fn acked(&mut self, seq: u64, message_id: u64, now_ns: impl FnOnce() -> u64) {
        self.awaiting.push_back((message_id, seq));
        if let Some(window) = &self.spec.window {
            window.acked();
        }
        if self.spec.reliable.is_some()
            && let Some(sent_ns) = self.spec.own_times.get(seq)
        {
            self.ack_latencies
                .push(now_ns().saturating_sub(sent_ns).max(1));
            if self.ack_latencies.len() == LATENCY_BATCH {
                self.flush_latencies();
            }
        }
    }

    /// A receipt for `message_id`, naming `recipient`, read at `now_ns`.
    pub(crate) fn receipt(
        &mut self,
        message_id: u64,
        recipient: &[u8],
        now_ns: u64,
    ) -> Result<(), Wrong> {
        if self.spec.reliable.is_some() {
            self.handled(message_id, recipient);
        }
        if recipient != self.spec.partner.as_bytes() {
            self.tally.bad += 1;
            return Err(Wrong::Recipient);
        }
        let Some(seq) = self.awaited(message_id) else {
            if let Some(at) = self.warmups.iter().position(|&id| id == message_id) {
                self.warmups.swap_remove(at);
                return Ok(());
            }
            self.tally.bad += 1;
            return Err(Wrong::NotAwaited);
        };
        self.tally.receipts += 1;
        self.tally.last_ns = now_ns;
        if let Some(sent_ns) = self.spec.own_times.get(seq) {
            self.latencies.push(now_ns.saturating_sub(sent_ns).max(1));
            if self.latencies.len() == LATENCY_BATCH {
                self.flush_latencies();
            }
        }
        Ok(())
    }

    /// A reliable session's receipt, checked: to be confirmed, so that the
    /// hub stops keeping it (every one, good or not: the hub ignores those
    /// it does not keep). It joins the last run when it follows it (the
    /// next id, the same recipient), or starts the next, written as
    /// `CONFIRM_RECEIPT_RUNS` names it (first id, count, recipient), into a
    /// buffer that keeps its capacity: nothing allocated per receipt.
    fn handled(&mut self, message_id: u64, recipient: &[u8]) {
        self.receipt_count += 1;
        let keys = &mut self.receipt_keys;
        let joined = self.last_run.as_mut().is_some_and(|run| {
            let follows = run.next == message_id
                && keys.get(run.recipient.clone()) == Some(recipient)
                && run.count < u32::MAX;
            if follows {
                run.count += 1;
                run.next = message_id.wrapping_add(1);
                if let Some(count) = keys.get_mut(run.count_at..run.count_at + 4) {
                    count.copy_from_slice(&run.count.to_be_bytes());
                }
            }
            follows
        });
        if !joined {
            keys.put_u64(message_id);
            let count_at = keys.len();
            keys.put_u32(1);
            // A nickname is at most 32 bytes (the codec checked its
            // length byte).
            keys.put_u8(recipient.len() as u8);
            let start = keys.len();
            keys.put_slice(recipient);
            self.receipt_runs += 1;
            // A run never passes the last id (the hub's ids stop there).
            self.last_run = message_id.checked_add(1).map(|next| LastRun {
                next,
                count: 1,
                count_at,
                recipient: start..keys.len(),
            });
        }
        if self.receipt_count as usize >= CONFIRM_BATCH {
            self.confirm_receipts();
        }
    }

    /// Hands the pending receipts, as one `CONFIRM_RECEIPTS` (opcode, count,
    /// then each message id and recipient), to the writer task.
    fn confirm_receipts(&mut self) {
        if self.receipt_count == 0 {
            return;
        }
        let mut frames = self.outgoing.lock();
        // At most 64 runs of 45 bytes: within any frame limit.
        let len = 1 + 4 + self.receipt_keys.len();
        frames.put_u32(len as u32);
        frames.put_u8(opcode::CONFIRM_RECEIPT_RUNS);
        frames.put_u32(self.receipt_runs);
        frames.put_slice(&self.receipt_keys);
        drop(frames);
        self.tally.receipts_confirmed += u64::from(self.receipt_count);
        self.receipt_keys.clear();
        self.receipt_count = 0;
        self.receipt_runs = 0;
        self.last_run = None;
        self.outgoing.wake.notify_one();
    }

    /// Takes `message_id` off the messages awaiting a receipt: its sequence
    /// number, or `None` if it was not awaiting one.
    fn awaited(&mut self, message_id: u64) -> Option<u64> {
        if let Some(&(id, seq)) = self.awaiting.front()
            && id == message_id
        {
            self.awaiting.pop_front();
            return Some(seq);
        }
        if let Ok(at) = (self.awaiting).binary_search_by_key(&message_id, |&(id, _)| id) {
            // Each id is passed over at most once.
            let over = self.awaiting.drain(..at).map(|(id, seq)| (id, seq, false));
            self.passed.extend(over);
            return self.awaiting.pop_front().map(|(_, seq)| seq);
        }
        let at = (self.passed).binary_search_by_key(&message_id, |&(id, ..)| id);
        let (_, seq, received) = self.passed.get_mut(at.ok()?)?;
        if *received {
            return None;
        }
        *received = true;
        let seq = *seq;
        self.tally.out_of_order += 1;
        while self.passed.front().is_some_and(|&(.., received)| received) {
            self.passed.pop_front();
        }
        Some(seq)
    }

    fn flush_latencies(&mut self) {
        if !self.latencies.is_empty() {
            let mut histogram =
                (self.spec.latencies.lock()).unwrap_or_else(PoisonError::into_inner);
            for latency in self.latencies.drain(..) {
                histogram.saturating_record(latency);
            }
        }
        if let Some(reliable) = &self.spec.reliable
            && !self.ack_latencies.is_empty()
        {
            let mut histogram =
                (reliable.ack_latencies.lock()).unwrap_or_else(PoisonError::into_inner);
            for latency in self.ack_latencies.drain(..) {
                histogram.saturating_record(latency);
            }
        }
    }

    /// The end of the run: what is pending is confirmed, the writer task
    /// told to write it and end, and the latencies recorded.
    pub(crate) fn finish(mut self) -> ReceiptTally {
        self.confirm();
        self.flush_latencies();
        self.tally.clone()
    }
}

impl Drop for Receipts {
    /// However the receiver ends (even aborted), the writer task ends too,
    /// letting go of the write half.
    fn drop(&mut self) {
        self.outgoing.close();
    }
}

/// The writer task: each time it is woken, writes whatever `CONFIRM`s have
/// gathered, until told there will be no more. It takes them only once it
/// holds the write half, so that those queued while the sender was writing
/// go out in the same system call; and it swaps buffers with the receiver,
/// so that neither allocates. A failed write ends it; the read side sees
/// the connection end.
async fn write_confirms(write: SharedWrite, outgoing: Arc<Outgoing>) {
    let mut frames = BytesMut::with_capacity(4096);
    loop {
        // Read before looking at the frames: whatever was queued before the
        // close is written below.
        let closed = outgoing.closed.load(Ordering::Acquire);
        if !outgoing.lock().is_empty() {
            let mut half = write.lock().await;
            std::mem::swap(&mut *outgoing.lock(), &mut frames);
            // TLS sends the tail of a write only when flushed.
            if half.write_all(&frames).await.is_err() || half.flush().await.is_err() {
                return;
            }
            drop(half);
            frames.clear();
        }
        if closed {
            return;
        }
        outgoing.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use chinwag_protocol::{ClientFrame, HubCodec};
    use futures::StreamExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::codec::FramedRead;

    use super::*;
    use crate::payload::Kind;

    /// Receipts on one end of a loopback connection, and the other end,
    /// reading what it writes.
    async fn connected(partner: &str) -> (Receipts, FramedRead<TcpStream, HubCodec>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (ours, theirs) = tokio::join!(
            TcpStream::connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        let (_, write) = ours.unwrap().into_split();
        let write = crate::transport::WriteHalf::Tcp(write);
        let spec = ReceiptSpec {
            partner: partner.to_owned(),
            own_times: Arc::new(SendTimes::new(100)),
            partner_times: Arc::new(SendTimes::new(100)),
            latencies: Arc::new(Mutex::new(Histogram::new(3).unwrap())),
            reliable: None,
            window: None,
        };
        let receipts = Receipts::new(spec, Arc::new(tokio::sync::Mutex::new(write)));
        let frames = FramedRead::new(theirs.unwrap().0, HubCodec::default());
        (receipts, frames)
    }

    fn data(seq: u64) -> Header {
        Header {
            kind: Kind::Data,
            sender: 1,
            seq,
            sent_ns: 1_000 + seq,
        }
    }

    #[tokio::test]
    async fn confirms_go_out_in_batches_and_the_rest_at_the_end() {
        let (mut receipts, mut frames) = connected("b0").await;
        let batch = CONFIRM_BATCH as u64;
        for id in 0..2 * batch + 2 {
            receipts.delivered(100 + id, data(id));
        }
        assert!(receipts.pending());
        let tally = receipts.finish();
        assert_eq!(tally.confirmed, 2 * batch + 2);
        let mut batches = Vec::new();
        while let Some(frame) = frames.next().await {
            let Ok(ClientFrame::Confirm(ids)) = frame else {
                panic!("not a CONFIRM: {frame:?}");
            };
            batches.push(ids);
        }
        // The writer task ended, and the connection with it.
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [CONFIRM_BATCH, CONFIRM_BATCH, 2]);
        let ids: Vec<u64> = batches.concat();
        assert_eq!(ids, (100..102 + 2 * batch).collect::<Vec<u64>>());
    }

    #[tokio::test]
    async fn receipts_are_checked_against_the_acks() {
        let (mut receipts, _frames) = connected("b0").await;
        // Sequence numbers 0..8 acked as ids 10, 12, ..., 24.
        for seq in 0..8 {
            receipts.acked(seq, 10 + 2 * seq, || 0);
        }
        receipts.spec.own_times.record(0, 500);
        assert_eq!(receipts.receipt(10, b"b0", 2_000), Ok(()));
        assert_eq!(receipts.receipt(10, b"b0", 2_001), Err(Wrong::NotAwaited));
        assert_eq!(receipts.receipt(12, b"a0", 2_002), Err(Wrong::Recipient));
        // 16 passes over 12 and 14, which are still awaited, out of order.
        assert_eq!(receipts.receipt(16, b"b0", 2_003), Ok(()));
        assert_eq!(receipts.receipt(14, b"b0", 2_004), Ok(()));
        assert_eq!(receipts.receipt(14, b"b0", 2_005), Err(Wrong::NotAwaited));
        assert_eq!(receipts.receipt(18, b"b0", 2_006), Ok(()));
        // 24 passes over 20 and 22; 12 never comes.
        assert_eq!(receipts.receipt(24, b"b0", 2_007), Ok(()));
        assert_eq!(receipts.receipt(22, b"b0", 2_008), Ok(()));
        assert_eq!(receipts.receipt(20, b"b0", 2_009), Ok(()));
        assert_eq!(receipts.receipt(13, b"b0", 2_010), Err(Wrong::NotAwaited));
        assert_eq!(receipts.receipt(99, b"b0", 2_011), Err(Wrong::NotAwaited));
        let (passed, awaiting) = (receipts.passed.clone(), receipts.awaiting.clone());
        let tally = receipts.finish();
        assert_eq!(
            (tally.receipts, tally.out_of_order, tally.bad, tally.last_ns),
            (7, 3, 5, 2_009)
        );
        // Only 12 is left, at the front of those passed over.
        assert!(awaiting.is_empty());
        assert_eq!(passed.front(), Some(&(12, 1, false)));
        assert!(passed.iter().skip(1).all(|&(.., received)| received));
    }

    #[tokio::test]
    async fn a_reliable_session_confirms_every_receipt_in_batches() {
        let (mut receipts, mut frames) = connected("b0").await;
        receipts.spec.reliable = Some(ReliableSpec {
            id_base: 0,
            ack_latencies: Arc::new(Mutex::new(Histogram::new(3).unwrap())),
        });
        let batch = CONFIRM_BATCH as u64;
        for seq in 0..batch + 6 {
            receipts.acked(seq, 100 + seq, || 0);
        }
        for seq in 0..batch + 6 {
            assert_eq!(receipts.receipt(100 + seq, b"b0", 1_000), Ok(()));
        }
        // A wrong one is confirmed too: the hub ignores what it does not keep.
        assert!(receipts.receipt(5, "é".as_bytes(), 1_001).is_err());
        assert!(receipts.pending());
        let tally = receipts.finish();
        assert_eq!(
            (tally.receipts, tally.receipts_confirmed),
            (batch + 6, batch + 7)
        );
        let mut batches = Vec::new();
        while let Some(frame) = frames.next().await {
            let Ok(ClientFrame::ConfirmReceiptRuns(runs)) = frame else {
                panic!("not a CONFIRM_RECEIPT_RUNS: {frame:?}");
            };
            batches.push(runs);
        }
        // A batch of receipts, as runs: 100 on, then the next 6 and the
        // wrong one, a run of its own.
        let runs: Vec<Vec<(u64, u32, &str)>> = (batches.iter())
            .map(|runs| {
                (runs.iter())
                    .map(|run| (run.first_message_id, run.count, run.recipient.as_str()))
                    .collect()
            })
            .collect();
        assert_eq!(
            runs,
            [
                vec![(100, CONFIRM_BATCH as u32, "b0")],
                vec![(100 + batch, 6, "b0"), (5, 1, "é")]
            ]
        );
    }

    #[test]
    fn send_times_keep_every_sampled_message() {
        let times = SendTimes::new(40);
        for seq in 0..40 {
            times.record(seq, 7 + seq);
        }
        assert_eq!(times.get(0), Some(7));
        assert_eq!(times.get(SAMPLE_EVERY), Some(7 + SAMPLE_EVERY));
        assert_eq!(times.get(32), Some(39));
        assert_eq!(times.get(1), None, "not sampled");
        assert_eq!(times.get(48), None, "beyond the messages");
        assert_eq!(SendTimes::new(40).get(0), None, "not arrived");
    }
}
