//! The sending side of a connection: `SEND` frames encoded back to back into
//! one buffer and written in large chunks.
//!
//! One [`ClientFrame`] is kept for every message, with its id rewritten, and
//! the header at the start of its text is stamped where the frame lies in
//! the buffer once encoded; so sending allocates nothing per message: the
//! only copies are the encoding into the buffer and the kernel's.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use chinwag_protocol::{ClientFrame, ProtocolError, Recipients, SendFrame, encode_into};
use tokio::io::AsyncWriteExt;

use crate::clock::Clock;
use crate::conn::Peer;
use crate::error::SetupError;
use crate::payload::{self, Header, Kind, WARMUP_ID};
use crate::shared_write::SharedWrite;

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
        })
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
        if let ClientFrame::Send(send) = &mut self.frame {
            send.id = match kind {
                Kind::Data => seq + 1,
                Kind::Warmup => {
                    self.warmups += 1;
                    WARMUP_ID | self.warmups
                }
            };
        }
        encode_into(&self.frame, self.max_frame, &mut self.buf)?;
        let header = Header {
            kind,
            sender: self.index,
            seq,
            sent_ns: self.clock.now_ns(),
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
