//! Direct messages gathered into one buffer per recipient while a command
//! is routed, and queued when it is done.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chinwag_protocol::{Encode, ProtocolError, encode_into};

use crate::outbox::{Outbox, Pressure, PushError};
use crate::registry::ConnId;

/// The `MESSAGE`s of the command being handled that have a single
/// recipient, one buffer per recipient, queued when the command is done.
/// A busy sender's command carries a run of messages, often to the same
/// user; its frames then take one allocation and one queue slot, not one
/// each. Their room in each queue is reserved as they are written, so each
/// message's status is known at once, as for any other; while the queue is
/// well below its high-water mark, room for the rest of the run is set
/// aside with the first, so that the rest need not take the queue's lock.
///
/// Order is kept: nothing else is queued for anyone while messages are
/// gathered (a message for several users, or for everyone, flushes them
/// first), and they are queued before the command's replies.
#[derive(Debug, Default)]
pub(super) struct Gathered {
    chunks: Vec<Chunk>,
    /// The room a new buffer starts with, and the most set aside in a queue
    /// for it.
    pub(super) room: usize,
}

/// One recipient's messages in the command being handled.
#[derive(Debug)]
pub(super) struct Chunk {
    id: ConnId,
    outbox: Arc<Outbox>,
    pub(super) frames: BytesMut,
    /// Bytes set aside in the outbox and not yet used.
    ahead: usize,
}

impl Chunk {
    /// Reserves room in the queue for `len` more bytes, from what was set
    /// aside if it is enough, setting aside up to `ahead` more if not.
    pub(super) fn reserve(&mut self, len: usize, ahead: usize) -> Result<Pressure, PushError> {
        if len <= self.ahead {
            self.ahead -= len;
            return Ok(Pressure::Normal);
        }
        let (reserved, set_aside) = self.outbox.reserve(len, ahead);
        self.ahead += set_aside;
        reserved
    }
}

/// Recipients gathered for at once, at most; one more flushes them.
const GATHER_RECIPIENTS: usize = 8;

impl Gathered {
    /// The buffer for `id`'s messages.
    pub(super) fn chunk(
        &mut self,
        id: ConnId,
        outbox: &Arc<Outbox>,
        wakes: &mut Vec<Arc<Outbox>>,
    ) -> &mut Chunk {
        if let Some(at) = self.chunks.iter().position(|chunk| chunk.id == id) {
            return &mut self.chunks[at];
        }
        if self.chunks.len() == GATHER_RECIPIENTS {
            self.flush(wakes);
        }
        let at = self.chunks.len();
        self.chunks.push(Chunk {
            id,
            outbox: outbox.clone(),
            frames: BytesMut::with_capacity(self.room),
            ahead: 0,
        });
        &mut self.chunks[at]
    }

    /// Writes `frame` into the buffer of `id`'s messages and reserves its
    /// room in `id`'s queue, answering what the queue said (the frame taken
    /// out again if it had no room), or the error if the frame cannot be
    /// encoded within `max_frame` (nothing written then).
    pub(super) fn push<F: Encode + ?Sized>(
        &mut self,
        (id, outbox): (ConnId, &Arc<Outbox>),
        wakes: &mut Vec<Arc<Outbox>>,
        frame: &F,
        max_frame: usize,
    ) -> Result<Result<Pressure, PushError>, ProtocolError> {
        let room = self.room;
        let chunk = self.chunk(id, outbox, wakes);
        let start = chunk.frames.len();
        encode_into(frame, max_frame, &mut chunk.frames)?;
        let reserved = chunk.reserve(chunk.frames.len() - start, room);
        if reserved.is_err() {
            chunk.frames.truncate(start);
        }
        Ok(reserved)
    }

    /// Queues everything gathered, and gives back the room set aside and
    /// not used.
    pub(super) fn flush(&mut self, wakes: &mut Vec<Arc<Outbox>>) {
        for chunk in self.chunks.drain(..) {
            let Chunk {
                id: _,
                outbox,
                frames,
                ahead,
            } = chunk;
            // A buffer made room for the whole run but given a few of its
            // messages is copied out rather than queued: a queued buffer
            // keeps all of its allocation until it is written, and a queue's
            // limits count only what it holds.
            let frames = if frames.capacity() > 2 * frames.len() {
                Bytes::copy_from_slice(&frames)
            } else {
                frames.freeze()
            };
            if outbox.push_reserved(frames, ahead) {
                wakes.push(outbox);
            }
        }
    }
}
