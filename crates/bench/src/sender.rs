//! The sending side of a connection: `SEND` frames encoded back to back into
//! one buffer and written in large chunks.
//!
//! One [`ClientFrame`] is kept for every message, with its id rewritten, and
//! the header at the start of its text is stamped where the frame lies in
//! the buffer once encoded; so sending allocates nothing per message: the
//! only copies are the encoding into the buffer and the kernel's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chinwag_protocol::{ClientFrame, ProtocolError, Recipients, SendFrame, encode_into};
use tokio::io::AsyncWriteExt;

use crate::clock::Clock;
use crate::conn::Peer;
use crate::error::SetupError;
use crate::payload::{self, Header, Kind, RELIABLE_WARMUP_ROOM, WARMUP_ID};
use crate::receipts::SendTimes;
use crate::shared_write::SharedWrite;
use crate::unacked::Unacked;

/// The buffer is written once it holds this much (hubload's chunk).
const FLUSH_AT: usize = 64 * 1024;

/// Room a `MESSAGE` needs beyond its text: opcode, ids, timestamp, the
/// sender's nickname and one recipient's (each at most 1 + 32 bytes), and
/// the lengths.
const MESSAGE_OVERHEAD: usize = 1 + 8 + 8 + 33 + 1 + 4 + 33 + 4;

/// How often warm-up messages go out while waiting for every receiver.
pub(crate) const WARMUP_EVERY: Duration = Duration::from_millis(20);

/// Writes one connection's messages.
#[derive(Debug)]
pub(crate) struct Sender {
    write: SharedWrite,
    buf: BytesMut,
    frame: ClientFrame,
    /// The length of every message's text, which ends each encoded `SEND`.
    text_len: usize,
    index: u32,
    clock: Clock,
    max_frame: usize,
    warmups: u64,
    /// Added to every `SEND` id: 0, or a reliable session's random start
    /// (its ids must be unique for the account across runs).
    id_base: u64,
    /// Where the send times of sampled data messages are kept as they are
    /// encoded, for the connection's own receiver (`direct --reliable`).
    times: Option<Arc<SendTimes>>,
    /// A reliable session's window: data messages wait for room in it.
    window: Option<Arc<Unacked>>,
}

impl Sender {
    /// A sender on `peer`'s connection, whose messages say they come from
    /// sender `index` and go `to`.
    pub(crate) fn new(
        peer: &Peer,
        index: u32,
        to: Recipients,
        size: usize,
        clock: Clock,
    ) -> Result<Self, SetupError> {
        Self::on(peer.write.clone(), peer.max_frame, index, to, size, clock)
    }

    /// A sender on the write half `write` of a connection whose hub takes
    /// payloads of up to `max_frame` bytes (for a workload that reads its
    /// connections itself, without a [`Peer`]).
    pub(crate) fn on(
        write: SharedWrite,
        max_frame: usize,
        index: u32,
        to: Recipients,
        size: usize,
        clock: Clock,
    ) -> Result<Self, SetupError> {
        let text = payload::blank(size);
        if text.len() + MESSAGE_OVERHEAD > max_frame {
            return Err(SetupError::Usage(format!(
                "--size {size} does not fit the hub's frame limit of {max_frame} bytes"
            )));
        }
        Ok(Self {
            write,
            buf: BytesMut::with_capacity(FLUSH_AT + 2 * text.len() + 128),
            text_len: text.len(),
            frame: ClientFrame::Send(SendFrame { id: 0, to, text }),
            index,
            clock,
            max_frame,
            warmups: 0,
            id_base: 0,
            times: None,
            window: None,
        })
    }

    /// The same sender for a reliable session: `SEND` ids counted from
    /// `id_base` (warm-up `n` is `id_base + n`, data message `seq` is
    /// `id_base + RELIABLE_WARMUP_ROOM + seq + 1`: growing, and below 2^63
    /// as the hub requires), keeping the send times of sampled data
    /// messages in `times`.
    pub(crate) fn reliable(
        mut self,
        id_base: u64,
        times: Arc<SendTimes>,
        window: Arc<Unacked>,
    ) -> Self {
        self.id_base = id_base;
        self.times = Some(times);
        self.window = Some(window);
        self
    }

    /// Whether data message `seq` may be encoded now: always, unless a
    /// reliable session's window is full.
    fn has_room(&self, seq: u64) -> bool {
        self.window
            .as_ref()
            .is_none_or(|window| window.has_room(seq))
    }

    /// Waits for room for data message `seq` in the window, writing out
    /// what is buffered first (the acks that make room are for it).
    async fn room(&mut self, seq: u64) -> Result<(), ProtocolError> {
        if !self.has_room(seq) {
            self.flush().await?;
            if let Some(window) = &self.window {
                window.room(seq).await;
            }
        }
        Ok(())
    }

    /// As [`push`](Self::push), for one message to `to` rather than to the
    /// sender's own recipients. `to` is swapped in for the encoding and
    /// back out after, so that a sender cycling through recipients
    /// allocates nothing per message.
    pub(crate) fn push_to(
        &mut self,
        kind: Kind,
        seq: u64,
        to: &mut Recipients,
    ) -> Result<(), ProtocolError> {
        if let ClientFrame::Send(send) = &mut self.frame {
            std::mem::swap(&mut send.to, to);
        }
        let pushed = self.push(kind, seq);
        if let ClientFrame::Send(send) = &mut self.frame {
            std::mem::swap(&mut send.to, to);
        }
        pushed
    }

    /// Encodes a frame other than a message (a `PONG`) into the buffer,
    /// to go out with the next write.
    pub(crate) fn push_frame(&mut self, frame: &ClientFrame) -> Result<(), ProtocolError> {
        encode_into(frame, self.max_frame, &mut self.buf)
    }

    /// Encodes one message into the buffer; the timestamp is taken now.
    pub(crate) fn push(&mut self, kind: Kind, seq: u64) -> Result<(), ProtocolError> {
        self.push_at(kind, seq, None)
    }

    /// Encodes one message into the buffer, stamped `sent_ns` (its
    /// scheduled time), or the time now if `None`.
    fn push_at(&mut self, kind: Kind, seq: u64, sent_ns: Option<u64>) -> Result<(), ProtocolError> {
        if let ClientFrame::Send(send) = &mut self.frame {
            send.id = match kind {
                // A reliable session's ids grow (`RELIABLE_WARMUP_ROOM`);
                // its acks are mapped back by the receiver.
                Kind::Data if self.times.is_some() => self.id_base + RELIABLE_WARMUP_ROOM + seq + 1,
                Kind::Data => self.id_base + seq + 1,
                Kind::Warmup => {
                    self.warmups += 1;
                    if self.times.is_some() {
                        self.id_base + self.warmups.min(RELIABLE_WARMUP_ROOM - 1)
                    } else {
                        WARMUP_ID | (self.id_base + self.warmups)
                    }
                }
            };
        }
        encode_into(&self.frame, self.max_frame, &mut self.buf)?;
        let sent_ns = sent_ns.unwrap_or_else(|| self.clock.now_ns());
        if kind == Kind::Data
            && let Some(times) = &self.times
        {
            times.record(seq, sent_ns);
        }
        let header = Header {
            kind,
            sender: self.index,
            seq,
            sent_ns,
        };
        // A `SEND` ends with its text.
        let end = self.buf.len();
        if let Some(text) = self.buf.get_mut(end.saturating_sub(self.text_len)..end) {
            payload::stamp(header, text);
        }
        Ok(())
    }

    /// Encodes one message and writes the buffer if it is full enough.
    pub(crate) async fn send(&mut self, kind: Kind, seq: u64) -> Result<(), ProtocolError> {
        if kind == Kind::Data {
            self.room(seq).await?;
        }
        self.push(kind, seq)?;
        if self.buf.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes whatever is buffered.
    pub(crate) async fn flush(&mut self) -> Result<(), ProtocolError> {
        if !self.buf.is_empty() {
            let mut write = self.write.lock().await;
            write.write_all(&self.buf).await?;
            // TLS keeps the tail of a write it could not send yet until
            // flushed; a plain socket flushes for nothing.
            write.flush().await?;
            drop(write);
            self.buf.clear();
        }
        Ok(())
    }

    /// A [`Sent`] for a sender that sent no data, for `reason`.
    pub(crate) fn stopped(self, reason: String) -> Sent {
        Sent {
            end_ns: self.clock.now_ns(),
            sender: self,
            count: 0,
            error: Some(reason),
        }
    }

    /// Sends a warm-up message every [`WARMUP_EVERY`] until `ready` says
    /// every receiver has seen one, or until `until`. Returns whether they
    /// all did.
    pub(crate) async fn warm_up(
        &mut self,
        until: Instant,
        mut ready: impl FnMut() -> bool,
    ) -> Result<bool, ProtocolError> {
        loop {
            if ready() {
                return Ok(true);
            }
            if Instant::now() >= until {
                return Ok(false);
            }
            self.push(Kind::Warmup, 0)?;
            self.flush().await?;
            tokio::time::sleep(WARMUP_EVERY).await;
        }
    }
}

/// What a sending loop did.
#[derive(Debug)]
pub(crate) struct Sent {
    /// Handed back so that the connection stays open until the end.
    pub(crate) sender: Sender,
    /// Data messages written.
    pub(crate) count: u64,
    /// [`Clock::now_ns`] when the last one was written.
    pub(crate) end_ns: u64,
    /// Why it stopped early.
    pub(crate) error: Option<String>,
}

/// Sends data messages `0..messages` as fast as the hub takes them (the
/// hub's flow control pauses the writes), stopping early at `deadline`.
pub(crate) async fn send_all(mut sender: Sender, messages: u64, deadline: Instant) -> Sent {
    let mut sent = 0;
    let mut error = None;
    for seq in 0..messages {
        if seq % 4096 == 0 && Instant::now() >= deadline {
            error = Some(format!(
                "the deadline stopped sending after {sent} of {messages}"
            ));
            break;
        }
        if let Err(failed) = sender.send(Kind::Data, seq).await {
            error = Some(format!("sending failed after {sent} messages: {failed}"));
            break;
        }
        sent += 1;
    }
    if error.is_none()
        && let Err(failed) = sender.flush().await
    {
        error = Some(format!("sending failed: {failed}"));
    }
    Sent {
        end_ns: sender.clock.now_ns(),
        sender,
        count: sent,
        error,
    }
}

/// When a paced sender's messages are due: `--rate` messages per second
/// over `senders` senders, interleaved, so that together they send one
/// message every `1 / rate` seconds and each sends its share evenly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Messages per second, over every sender.
    pub(crate) rate: u64,
    pub(crate) senders: u32,
    /// This sender's index among them.
    pub(crate) index: u32,
    /// [`Clock::now_ns`] of the start signal: message 0 of sender 0 is due
    /// then.
    pub(crate) start_ns: u64,
}

impl Pace {
    /// When message `seq` is due, in [`Clock::now_ns`] nanoseconds: the
    /// `(seq × senders + index)`th message of the whole run.
    fn due(self, seq: u64) -> u64 {
        let nth = u128::from(seq) * u128::from(self.senders) + u128::from(self.index);
        let offset = nth * 1_000_000_000 / u128::from(self.rate.max(1));
        self.start_ns
            .saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
    }
}

/// Sends data messages `0..messages` on the schedule of `pace`: each is
/// stamped with the time it was due, not the time it was encoded, so that
/// a sender running late (the timer waking it late, the hub's flow control
/// holding up a write) shows in the latencies instead of hiding it (no
/// coordinated omission). Each time it wakes it encodes every message due
/// by then and writes them in one go, then sleeps until the next one is
/// due; so it keeps to the schedule however long a sleep or a write took.
/// Stops early at `deadline`.
pub(crate) async fn send_paced(
    mut sender: Sender,
    messages: u64,
    pace: Pace,
    deadline: Instant,
) -> Sent {
    let mut sent = 0;
    let mut error = None;
    while sent < messages {
        if Instant::now() >= deadline {
            error = Some(format!(
                "the deadline stopped sending after {sent} of {messages}"
            ));
            break;
        }
        if let Err(failed) = sender.room(sent).await {
            error = Some(format!("sending failed after {sent} messages: {failed}"));
            break;
        }
        let now = sender.clock.now_ns();
        let mut pushed = Ok(());
        // A sender far behind writes a chunk at a time, within its window.
        while sent < messages
            && pace.due(sent) <= now
            && sender.buf.len() < FLUSH_AT
            && sender.has_room(sent)
        {
            pushed = sender.push_at(Kind::Data, sent, Some(pace.due(sent)));
            if pushed.is_err() {
                break;
            }
            sent += 1;
        }
        let written = match pushed {
            Ok(()) => sender.flush().await,
            Err(failed) => Err(failed),
        };
        if let Err(failed) = written {
            error = Some(format!("sending failed after {sent} messages: {failed}"));
            break;
        }
        if sent < messages {
            tokio::time::sleep_until(sender.clock.at(pace.due(sent)).into()).await;
        }
    }
    Sent {
        end_ns: sender.clock.now_ns(),
        sender,
        count: sent,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_senders_take_turns_at_the_rate() {
        // 4 senders at 1,000 messages/s: one message every millisecond, each
        // sender every 4.
        let pace = |index| Pace {
            rate: 1_000,
            senders: 4,
            index,
            start_ns: 5,
        };
        assert_eq!(pace(0).due(0), 5);
        assert_eq!(pace(1).due(0), 5 + 1_000_000);
        assert_eq!(pace(3).due(0), 5 + 3_000_000);
        assert_eq!(pace(0).due(1), 5 + 4_000_000);
        assert_eq!(pace(2).due(250), 5 + 1_002_000_000);
    }
}
