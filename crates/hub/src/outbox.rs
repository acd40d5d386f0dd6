//! A connection's outbound queue: encoded frames waiting to be written.
//!
//! The actor pushes into it without ever waiting; the connection's writer (or
//! an in-process [`Session`](crate::Session)) takes from it. It is bounded in
//! bytes, and it is where fast publishers are paused: the actor parks a
//! publisher's in-flight permit here while the queue is above its high-water
//! mark, and the permit is released once the queue has drained to half of it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use chinwag_protocol::{Code, ErrorFrame, PREFIX_LEN, ServerFrame, encode_frame};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The connection is closing or closed.
    Closed,
    /// The frame would have taken the queue past its byte limit: the
    /// connection has just been cut as a slow consumer.
    Overflow,
}

/// How full the queue is after a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pressure {
    Normal,
    /// Above the high-water mark: the publisher should be paused.
    Congested,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the consumer when frames arrive or the queue closes.
    ready: Notify,
    high_water: usize,
    limit: usize,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Bytes>,
    /// Bytes pushed and not yet written: those in `frames` plus those the
    /// writer has taken and is still writing.
    bytes: usize,
    /// Since when `bytes` has been above the high-water mark.
    congested_since: Option<Instant>,
    /// Permits of publishers paused on this queue. A permit is shared by
    /// every queue its message congested, and released when all have let go.
    held: Vec<Arc<OwnedSemaphorePermit>>,
    /// Set once: no more pushes; the consumer drains what is left and stops.
    closing: bool,
    /// Why the hub closed it, if it did.
    reason: Option<Code>,
    /// While a login's stored messages are read: frames pushed meanwhile
    /// wait here, behind what was queued before, until the stored messages
    /// are put in front of them ([`Outbox::unpark`]).
    parked: Option<VecDeque<Bytes>>,
    /// Bytes the writer has written, ever (for the admin endpoint).
    written: u64,
}

/// Queue slots an outbox keeps between bursts. A queue never shrinks by
/// itself, so without this every connection would keep room for the largest
/// burst it ever saw (a presence storm leaves thousands of slots behind).
/// Shrinking costs a busy connection one reallocation per burst, next to at
/// least one write; keeping 64 slots cost every idle one 2 KiB.
pub(crate) const KEEP_SLOTS: usize = 8;

impl State {
    /// Takes `bytes` off the count, and releases paused publishers once the
    /// queue is at or below half of `high_water`.
    fn uncount(&mut self, bytes: usize, high_water: usize) {
        self.bytes = self.bytes.saturating_sub(bytes);
        if self.bytes <= high_water / 2 {
            self.congested_since = None;
            self.held.clear();
        } else if self.bytes <= high_water {
            self.congested_since = None;
        }
    }

    /// Queues a frame for the consumer, or behind the parked ones; returns
    /// whether the consumer may be waiting.
    fn append(&mut self, frame: Bytes) -> bool {
        if let Some(parked) = &mut self.parked {
            parked.push_back(frame);
            return false;
        }
        let was_empty = self.frames.is_empty();
        self.frames.push_back(frame);
        was_empty
    }

    fn shrink(&mut self) {
        if self.frames.capacity() > KEEP_SLOTS {
            self.frames.shrink_to(KEEP_SLOTS);
        }
    }
}

impl Outbox {
    pub(crate) fn new(high_water: usize, limit: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            high_water,
            limit: limit.max(high_water),
        }
    }

    // A poisoned lock means a panic mid-update of plain counters; the queue is
    // still usable, so carry on rather than spread the panic.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues one encoded frame and wakes the consumer if it may be waiting.
    /// Never waits.
    pub(crate) fn push(&self, frame: Bytes) -> Result<Pressure, PushError> {
        let (pressure, wake) = self.push_quiet(frame)?;
        if wake {
            self.wake();
        }
        Ok(pressure)
    }

    /// Queues one encoded frame without waking the consumer. The second
    /// value says whether the queue was empty, in which case the consumer
    /// may be waiting and the caller must [`wake`](Self::wake) it (the actor
    /// does so once per batch of commands, not once per frame). A consumer
    /// that is busy finds the frame when it next looks, so a queue that was
    /// not empty needs no wake-up.
    pub(crate) fn push_quiet(&self, frame: Bytes) -> Result<(Pressure, bool), PushError> {
        let mut state = self.lock();
        if state.closing {
            return Err(PushError::Closed);
        }
        if state.bytes + frame.len() > self.limit {
            drop(state);
            self.close(Some(Code::SLOW_CONSUMER), false);
            return Err(PushError::Overflow);
        }
        state.bytes += frame.len();
        let was_empty = state.append(frame);
        let pressure = if state.bytes > self.high_water {
            state.congested_since.get_or_insert_with(Instant::now);
            Pressure::Congested
        } else {
            Pressure::Normal
        };
        Ok((pressure, was_empty))
    }

    /// Counts `len` bytes that the actor will queue with
    /// [`push_reserved`](Self::push_reserved) before its batch ends: the
    /// queue's limit and high-water mark apply to them now, as to a push.
    /// Never waits.
    ///
    /// Also sets aside room for up to `ahead` more bytes of the same batch,
    /// if the queue stays at or below its high-water mark with them, and
    /// returns how much: frames that fit in it need not take the lock to
    /// learn what a reservation would have told them (room, no pressure).
    /// What is left of it is given back by `push_reserved`.
    pub(crate) fn reserve(&self, len: usize, ahead: usize) -> (Result<Pressure, PushError>, usize) {
        let mut state = self.lock();
        if state.closing {
            return (Err(PushError::Closed), 0);
        }
        if state.bytes + len > self.limit {
            drop(state);
            self.close(Some(Code::SLOW_CONSUMER), false);
            return (Err(PushError::Overflow), 0);
        }
        state.bytes += len;
        if state.bytes > self.high_water {
            state.congested_since.get_or_insert_with(Instant::now);
            return (Ok(Pressure::Congested), 0);
        }
        let ahead = if state.bytes + ahead <= self.high_water {
            ahead
        } else {
            0
        };
        state.bytes += ahead;
        (Ok(Pressure::Normal), ahead)
    }

    /// Queues frames whose bytes were [`reserve`](Self::reserve)d, without
    /// waking the consumer, and gives back `unused` bytes set aside for
    /// frames that did not come; returns whether the consumer may need
    /// waking, as [`push_quiet`](Self::push_quiet) does. A queue closed
    /// since is left as it is.
    pub(crate) fn push_reserved(&self, frames: Bytes, unused: usize) -> bool {
        let mut state = self.lock();
        // Publishers paused while the room was set aside may go on now.
        state.uncount(unused, self.high_water);
        if state.closing || frames.is_empty() {
            return false;
        }
        state.append(frames)
    }

    /// Holds back every frame pushed from now on, behind those already
    /// queued, until [`unpark`](Self::unpark): a login's `WELCOME` goes
    /// out while its stored messages are read, and live traffic waits for
    /// them. Never waits.
    pub(crate) fn park(&self) {
        let mut state = self.lock();
        if !state.closing && state.parked.is_none() {
            state.parked = Some(VecDeque::new());
        }
    }

    /// Queues `first` (the stored messages), then what was held back since
    /// [`park`](Self::park), and wakes the consumer. `first` is not held to
    /// the queue's limit (the mailbox's quota bounds it) but counts toward
    /// it and the high-water mark like any frame; returns the pressure.
    pub(crate) fn unpark(&self, first: Vec<Bytes>) -> Pressure {
        let mut state = self.lock();
        let parked = state.parked.take().unwrap_or_default();
        if state.closing {
            return Pressure::Normal;
        }
        state.bytes += first.iter().map(Bytes::len).sum::<usize>();
        state.frames.extend(first);
        state.frames.extend(parked);
        let pressure = if state.bytes > self.high_water {
            state.congested_since.get_or_insert_with(Instant::now);
            Pressure::Congested
        } else {
            Pressure::Normal
        };
        drop(state);
        self.ready.notify_one();
        pressure
    }

    /// Wakes the consumer.
    pub(crate) fn wake(&self) {
        self.ready.notify_one();
    }

    /// Keeps a paused publisher's permit until the queue drains (or closes).
    pub(crate) fn hold(&self, permit: Arc<OwnedSemaphorePermit>) {
        let mut state = self.lock();
        // Messages routed together share one permit: hold it once.
        let again = state
            .held
            .last()
            .is_some_and(|last| Arc::ptr_eq(last, &permit));
        if !state.closing && state.bytes > self.high_water / 2 && !again {
            state.held.push(permit);
        }
    }

    /// How long the queue has been above its high-water mark, if it is.
    pub(crate) fn congested_since(&self) -> Option<Instant> {
        self.lock().congested_since
    }

    /// Stops the queue. `reason` is sent to the peer as a final `ERROR` frame;
    /// `flush` says whether what is queued is still written first (shutdown)
    /// or dropped (slow consumer). Only the first call has any effect.
    pub(crate) fn close(&self, reason: Option<Code>, flush: bool) {
        let mut state = self.lock();
        if state.closing {
            return;
        }
        state.closing = true;
        state.reason = reason;
        state.held.clear();
        let parked = state.parked.take().unwrap_or_default();
        if flush {
            state.frames.extend(parked);
        } else {
            let dropped: usize = (state.frames.drain(..).chain(parked))
                .map(|f| f.len())
                .sum();
            state.bytes -= dropped;
        }
        if let Some(code) = reason {
            let error = ServerFrame::Error(ErrorFrame::new(code, 0));
            // Encoding a short error frame cannot fail; if it somehow did, the
            // peer still sees the connection close.
            if let Ok(frame) = encode_frame(&error, usize::MAX) {
                state.bytes += frame.len();
                state.frames.push_back(frame);
            }
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Why the queue was closed, if the hub closed it with an error.
    pub(crate) fn reason(&self) -> Option<Code> {
        self.lock().reason
    }

    /// Waits for frames and moves all of them into `batch`. Returns false once
    /// the queue is closed and nothing is left to take.
    pub(crate) async fn take_all(&self, batch: &mut Vec<Bytes>) -> bool {
        loop {
            {
                let mut state = self.lock();
                if !state.frames.is_empty() {
                    batch.extend(state.frames.drain(..));
                    state.shrink();
                    return true;
                }
                if state.closing {
                    return false;
                }
            }
            // `notify_one` stores a permit when nobody waits, so a push between
            // the check above and this await is not missed.
            self.ready.notified().await;
        }
    }

    /// Whether no frame is waiting to be taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().frames.is_empty()
    }

    /// Moves whatever frames are queued into `batch`, without waiting.
    pub(crate) fn take_ready(&self, batch: &mut Vec<Bytes>) {
        let mut state = self.lock();
        batch.extend(state.frames.drain(..));
        state.shrink();
    }

    /// Waits for the next frame; `None` once closed and drained.
    pub(crate) async fn take_one(&self) -> Option<Bytes> {
        loop {
            {
                let mut state = self.lock();
                if let Some(front) = state.frames.front_mut() {
                    // The actor may queue several frames as one buffer.
                    let len = frame_len(front);
                    if len < front.len() {
                        return Some(front.split_to(len));
                    }
                    return state.frames.pop_front();
                }
                if state.closing {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }

    /// Records that `bytes` taken from the queue have been written, releasing
    /// paused publishers once the queue is at or below half its high-water mark.
    pub(crate) fn written(&self, bytes: usize) {
        let mut state = self.lock();
        state.written += bytes as u64;
        state.uncount(bytes, self.high_water);
    }

    /// Bytes written ever, and bytes queued (or being written) now.
    pub(crate) fn traffic(&self) -> (u64, u64) {
        let state = self.lock();
        (state.written, state.bytes as u64)
    }
}

/// The length, prefix included, of the first frame in `chunk`, which holds
/// one or more whole frames the hub encoded.
pub(crate) fn frame_len(chunk: &[u8]) -> usize {
    match chunk.first_chunk::<PREFIX_LEN>() {
        Some(prefix) => {
            let payload = usize::try_from(u32::from_be_bytes(*prefix)).unwrap_or(usize::MAX);
            PREFIX_LEN.saturating_add(payload).min(chunk.len())
        }
        None => chunk.len(),
    }
}

/// The frames in a chunk the hub queued, one by one.
pub(crate) fn frames(mut chunk: Bytes) -> impl Iterator<Item = Bytes> {
    std::iter::from_fn(move || {
        if chunk.is_empty() {
            return None;
        }
        let len = frame_len(&chunk);
        Some(chunk.split_to(len))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    /// A well-formed frame of `n` bytes, prefix included.
    fn frame(n: usize) -> Bytes {
        let mut bytes = vec![0; n];
        let payload = u32::try_from(n - PREFIX_LEN).unwrap();
        bytes[..PREFIX_LEN].copy_from_slice(&payload.to_be_bytes());
        Bytes::from(bytes)
    }

    #[tokio::test]
    async fn take_one_splits_a_chunk_of_frames() {
        let outbox = Outbox::new(1000, 2000);
        let chunk = [frame(10), frame(7), frame(12)].concat();
        outbox.push(Bytes::from(chunk)).unwrap();
        outbox.push(frame(5)).unwrap();
        let mut lens = Vec::new();
        outbox.close(None, true);
        while let Some(one) = outbox.take_one().await {
            lens.push(one.len());
        }
        assert_eq!(lens, [10, 7, 12, 5]);
    }

    #[test]
    fn frames_walks_a_chunk_and_survives_a_lying_prefix() {
        let chunk = Bytes::from([frame(6), frame(9)].concat());
        let lens: Vec<usize> = frames(chunk).map(|f| f.len()).collect();
        assert_eq!(lens, [6, 9]);
        // A prefix claiming more than there is yields the rest, once.
        let mut bad = frame(8).to_vec();
        bad[3] = 200;
        let lens: Vec<usize> = frames(Bytes::from(bad)).map(|f| f.len()).collect();
        assert_eq!(lens, [8]);
    }

    #[tokio::test]
    async fn congestion_holds_permits_until_drained() {
        let outbox = Outbox::new(100, 1000);
        let permits = Arc::new(Semaphore::new(1));
        assert_eq!(outbox.push(frame(60)), Ok(Pressure::Normal));
        assert_eq!(outbox.push(frame(60)), Ok(Pressure::Congested));
        assert!(outbox.congested_since().is_some());
        outbox.hold(Arc::new(permits.clone().acquire_owned().await.unwrap()));
        assert_eq!(permits.available_permits(), 0);

        let mut batch = Vec::new();
        assert!(outbox.take_all(&mut batch).await);
        assert_eq!(batch.len(), 2);
        outbox.written(60);
        assert_eq!(
            permits.available_permits(),
            0,
            "70 bytes left is above half"
        );
        outbox.written(60);
        assert_eq!(permits.available_permits(), 1);
        assert!(outbox.congested_since().is_none());
    }

    #[tokio::test]
    async fn room_set_aside_counts_until_given_back_and_then_releases_publishers() {
        let outbox = Outbox::new(100, 1000);
        let permits = Arc::new(Semaphore::new(1));
        assert_eq!(outbox.push(frame(40)), Ok(Pressure::Normal));
        // Room is set aside only while the queue stays under its mark with it.
        assert_eq!(outbox.reserve(10, 60), (Ok(Pressure::Normal), 0));
        assert_eq!(outbox.reserve(10, 35), (Ok(Pressure::Normal), 35));
        // 40 + 10 + 10 + 35: 20 more is over the mark.
        assert_eq!(outbox.push(frame(20)), Ok(Pressure::Congested));
        outbox.hold(Arc::new(permits.clone().acquire_owned().await.unwrap()));
        let mut batch = Vec::new();
        assert!(outbox.take_all(&mut batch).await);
        outbox.written(60);
        assert_eq!(
            permits.available_permits(),
            0,
            "the room set aside still counts"
        );
        // The batch used none of it: 20 reserved bytes queued, 35 given back.
        assert!(outbox.push_reserved(Bytes::from([frame(10), frame(10)].concat()), 35));
        assert_eq!(permits.available_permits(), 1);
        assert!(outbox.congested_since().is_none());
        // A closed queue still gives room back, but queues nothing.
        assert_eq!(outbox.reserve(5, 10), (Ok(Pressure::Normal), 10));
        outbox.close(None, false);
        assert!(!outbox.push_reserved(frame(5), 10));
    }

    #[tokio::test]
    async fn overflow_cuts_the_consumer_and_drops_its_queue() {
        let outbox = Outbox::new(100, 200);
        outbox.push(frame(150)).unwrap();
        assert_eq!(outbox.push(frame(100)), Err(PushError::Overflow));
        assert_eq!(outbox.push(frame(4)), Err(PushError::Closed));
        assert_eq!(outbox.reason(), Some(Code::SLOW_CONSUMER));
        // Only the error frame is left.
        let last = outbox.take_one().await.unwrap();
        assert_eq!(last[4], chinwag_protocol::opcode::ERROR);
        assert_eq!(outbox.take_one().await, None);
    }

    #[tokio::test]
    async fn flushing_close_keeps_queued_frames_before_the_error() {
        let outbox = Outbox::new(100, 200);
        outbox.push(frame(10)).unwrap();
        outbox.close(Some(Code::SHUTTING_DOWN), true);
        outbox.close(Some(Code::SLOW_CONSUMER), false);
        assert_eq!(outbox.take_one().await.unwrap().len(), 10);
        assert!(outbox.take_one().await.is_some());
        assert_eq!(outbox.reason(), Some(Code::SHUTTING_DOWN));
        assert!(outbox.take_one().await.is_none());
    }

    #[tokio::test]
    async fn unparking_puts_the_given_frames_before_those_held_back() {
        let outbox = Outbox::new(1000, 2000);
        outbox.push(frame(10)).unwrap();
        outbox.park();
        outbox.push(frame(40)).unwrap();
        let mut taken = Vec::new();
        outbox.take_ready(&mut taken);
        let lens = |frames: &[Bytes]| frames.iter().map(Bytes::len).collect::<Vec<_>>();
        // Only what came before the park is there to take.
        assert_eq!(lens(&taken), [frame(10).len()]);
        assert_eq!(outbox.unpark(vec![frame(20), frame(30)]), Pressure::Normal);
        taken.clear();
        assert!(outbox.take_all(&mut taken).await);
        assert_eq!(
            lens(&taken),
            [frame(20).len(), frame(30).len(), frame(40).len()]
        );
    }
}
