//! The binary front end: length-prefixed frames (`docs/protocol.md`) over
//! any [`Transport`].
//!
//! One task per connection polls two futures: the reader, which decodes
//! frames and hands them to the [`Connection`] (gathering the `SEND`s
//! already read into one command), and the writer (`writer.rs`), which
//! drains the outbox. A reader paused by flow control never stops its own
//! writer.

use std::fmt;
use std::io;

use chinwag_protocol::{Code, FrameCodec, ProtocolError, SendPayload};
use tokio::io::AsyncRead;
use tokio_util::codec::{Decoder, FramedRead};
use tracing::{Instrument, debug, field, info_span};

use super::linger;
use super::reader::{self, StallCodec, StallGuard};
use crate::admission::Ticket;
use crate::command::Command;
use crate::connection::{Connection, Outcome, Quiet, Request};
use crate::front::Front;
use crate::listener::Transport;
use crate::metrics::Metered;
use crate::writer::write_frames;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::Hub;

/// How much one command carries to the actor, in `SEND`s to named users:
/// 256 of them, or 64 to everyone (each counts [`BROADCAST_WEIGHT`]).
/// A message to named users is a step of the actor's; a broadcast is a
/// write to every queue, so a burst of them is bounded as before (64)
/// and holds the actor no longer. 256 named `SEND`s a command rather than
/// 64 (the bound for every `SEND` before): fewer commands, wakes and
/// permits for each message, measured side by side in `docs/performance.md`.
const MAX_GATHER: usize = 256;

/// What a `SEND` to everyone counts against [`MAX_GATHER`].
const BROADCAST_WEIGHT: usize = 4;

/// What `send` counts against [`MAX_GATHER`].
fn weight(send: &SendPayload) -> usize {
    if send.recipients().is_some() {
        1
    } else {
        BROADCAST_WEIGHT
    }
}

/// Serves one accepted connection until it ends. `slot` is its place under
/// the hub's limit of unregistered connections.
pub(crate) fn serve<T: Transport>(
    hub: Hub,
    io: T,
    peer: impl fmt::Debug,
    slot: OwnedSemaphorePermit,
    ticket: Ticket,
) -> impl Future<Output = ()> + Send {
    // A plain function rather than an `async` wrapper: a future that awaits
    // another it was handed holds room for both, and this one lives as long
    // as the connection.
    let connection = Connection::new(hub, slot, ticket, (format!("{peer:?}"), Front::Binary));
    let span = info_span!("conn", ?peer, id = connection.id.0, nick = field::Empty);
    run(connection, io).instrument(span)
}

async fn run<T: Transport>(mut connection: Connection, mut io: T) {
    debug!("accepted");
    let config = connection.config.clone();
    let write_deadline = config.slow_consumer_deadline;
    let (read_half, write_half) = io.split();
    let read_half = Metered::new(read_half, connection.meter.meter.clone());
    let codec = FrameCodec::new(config.max_frame_unregistered);
    let (read_half, codec) = reader::guard(read_half, codec, config.frame_timeout);
    // Small to begin with: an idle connection holds little, and the
    // buffer grows with the traffic (see `reader`).
    let mut reader = FramedRead::with_capacity(read_half, codec, reader::MIN_READ);
    let outbox = connection.outbox.clone();
    let writer = write_frames(&outbox, write_half, write_deadline);
    tokio::pin!(writer);

    let outcome = tokio::select! {
        outcome = read_frames(&mut connection, &mut reader) => outcome,
        result = &mut writer => Outcome::WriterDone(result),
    };
    connection.finish(&outcome, writer).await;
    // Its places under the hub's limits go now, not after the linger: a
    // newcomer waiting for the place of one shed gets it at once.
    drop(connection);
    if matches!(outcome, Outcome::Fatal(_)) {
        linger(reader.get_mut()).await;
    }
    debug!(?outcome, "closed");
}

/// A binary connection's frame reader, with stalled frames timing out.
type FrameReader<R> = FramedRead<StallGuard<R>, StallCodec<FrameCodec<Request>>>;

impl<R> Quiet for FrameReader<R> {
    fn quiet(&mut self) {
        let mut buffer = std::mem::take(self.read_buffer_mut());
        self.decoder_mut().release(&mut buffer);
        *self.read_buffer_mut() = buffer;
    }

    fn last_heard(&self) -> Option<Instant> {
        Some(self.get_ref().last_read())
    }
}

/// The next frame already in `reader`'s buffer, if a whole one is there;
/// reads nothing from the socket.
fn buffered<R>(reader: &mut FrameReader<R>) -> Result<Option<Request>, ProtocolError> {
    let mut buffer = std::mem::take(reader.read_buffer_mut());
    let frame = reader.decoder_mut().decode(&mut buffer);
    *reader.read_buffer_mut() = buffer;
    frame
}

async fn read_frames<R: AsyncRead + Unpin>(
    connection: &mut Connection,
    reader: &mut FrameReader<R>,
) -> Outcome {
    // A frame read while gathering `SEND`s, to be handled next.
    let mut held = None;
    loop {
        let next = match held.take() {
            Some(frame) => Some(frame),
            None => match connection.next_input(reader, true).await {
                Ok(next) => next,
                Err(outcome) => return outcome,
            },
        };
        let frame = match next {
            None => return Outcome::Eof,
            Some(Ok(frame)) => frame,
            Some(Err(ProtocolError::Io(error))) if error.kind() == io::ErrorKind::TimedOut => {
                debug!("frame stalled midway; closing");
                return Outcome::Fatal(Code::FRAME_TIMEOUT);
            }
            Some(Err(ProtocolError::Io(error))) => return Outcome::Io(error),
            Some(Err(error)) => {
                debug!(%error, "bad frame; closing");
                return Outcome::Fatal(error.code());
            }
        };
        let was_registered = connection.registration.is_registered();
        let outcome = match frame {
            // Without flood control every `SEND` is taken as it comes,
            // so those already read can go together.
            Request::Send(send) if was_registered && connection.bucket.is_none() => {
                send_buffered(connection, send, reader, &mut held).await
            }
            frame => connection.handle(frame).await,
        };
        if let Some(outcome) = outcome {
            return outcome;
        }
        if !was_registered && connection.registration.is_registered() {
            let max_frame = connection.config.max_frame;
            reader.decoder_mut().inner.set_max_frame(max_frame);
        }
    }
}

/// Sends `first`, and the `SEND`s already read behind it, to the actor
/// as one command: a busy sender's read of many messages then takes one
/// slot of the actor's queue rather than one per message, and one
/// permit. Gathering stops at the first frame that is not a `SEND` (or
/// does not decode), which is left in `held`, at one that the in-flight
/// budget has no room for, which waits in `held` as usual, and at one
/// past [`MAX_GATHER`], which waits in `held` for the next command.
/// Nothing is read from the socket for it.
async fn send_buffered<R: AsyncRead + Unpin>(
    connection: &mut Connection,
    first: SendPayload,
    reader: &mut FrameReader<R>,
    held: &mut Option<Result<Request, ProtocolError>>,
) -> Option<Outcome> {
    let mut permit = match connection.in_flight(&first).await {
        Ok(permit) => permit,
        Err(outcome) => return outcome,
    };
    let mut load = weight(&first);
    // `first` alone, until a second comes.
    let mut first = Some(first);
    let mut sends = Vec::new();
    // Only this task takes from `permits` (the actor only gives back),
    // so what is available now stays available: the gathered `SEND`s
    // are counted against it and taken in one go, not one by one.
    let mut room = connection.permits.available_permits();
    let mut cost = 0;
    while load < MAX_GATHER {
        let next = match buffered(reader) {
            Ok(Some(Request::Send(send))) => send,
            Ok(Some(other)) => {
                *held = Some(Ok(other));
                break;
            }
            Ok(None) => break,
            Err(error) => {
                *held = Some(Err(error));
                break;
            }
        };
        let heavier = load + weight(&next);
        if heavier > MAX_GATHER {
            *held = Some(Ok(Request::Send(next)));
            break;
        }
        let more = connection.budget.cost(&next) as usize;
        if cost + more > room {
            room = connection.permits.available_permits();
            if cost + more > room {
                *held = Some(Ok(Request::Send(next)));
                break;
            }
        }
        cost += more;
        load = heavier;
        if let Some(first) = first.take() {
            // Room for a run like its first: a run of broadcasts is
            // bounded at a quarter as many.
            sends.reserve_exact(MAX_GATHER / weight(&first));
            sends.push(first);
        }
        sends.push(next);
    }
    if cost > 0 {
        // At most `room`, which came from a `u32`; and there at once.
        let cost = u32::try_from(cost).unwrap_or(u32::MAX);
        match connection.permits_for(cost).await {
            Ok(more) => permit.merge(more),
            Err(outcome) => return outcome,
        }
    }
    // When the bytes were read: no clock read of its own.
    let arrived = reader.get_ref().last_read();
    let command = match first {
        Some(send) => Command::Send {
            id: connection.id,
            send,
            permit,
            arrived,
        },
        None => Command::SendMany {
            id: connection.id,
            sends,
            permit,
            arrived,
        },
    };
    if connection.hub.try_command(command).await.is_err() {
        return Some(Outcome::Shutdown);
    }
    None
}
