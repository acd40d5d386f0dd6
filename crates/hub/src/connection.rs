//! One TCP connection: its own spawned task, reading frames and forwarding
//! them to the actor, while writing what the actor queued on its outbox.
//!
//! Reading and writing are two futures polled by the same task, so a reader
//! paused by flow control never stops its own writer.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chinwag_protocol::{
    ClientFrameOf, Code, ErrorFrame, FrameCodec, Hello, Nick, PROTOCOL_VERSION, ProtocolError,
    SendPayload, ServerFrame, encode_frame,
};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::ReadHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::{Instant, Sleep, timeout};
use tokio_util::codec::{Decoder, FramedRead};
use tokio_util::sync::WaitForCancellationFutureOwned;
use tracing::{Instrument, debug, field, info, info_span, warn};

use crate::command::Command;
use crate::config::RateLimit;
use crate::outbox::Outbox;
use crate::reader::{self, StallCodec, StallGuard};
use crate::registry::ConnId;
use crate::{Hub, HubError};

/// Frames up to this size are copied into one buffer and written together;
/// larger ones are written from their own buffer.
const COALESCE_MAX: usize = 16 * 1024;

/// Scheduler turns a writer waits at most for more frames before writing.
const MAX_TURNS: usize = 64;

/// How long a writer holds frames at most, waiting for more: on a busy
/// runtime a turn can be long.
const MAX_HOLD: Duration = Duration::from_millis(1);

/// Bytes after which a writer stops waiting for more and writes, and the
/// most one coalesced write carries.
const WRITE_TARGET: usize = 64 * 1024;

/// Frames written from where they are, with vectored writes of this many
/// buffers at most, rather than copied into one buffer...
const MAX_IOVECS: usize = 16;

/// ...if they average at least this many bytes. Small frames are cheaper
/// to copy than for the kernel to gather: vectored writes of 100-byte frames
/// made fan-out to 100 subscribers a third slower. Large ones are not:
/// copying a busy direct connection's runs of messages (several KiB each,
/// written by the actor on the other core) was a tenth of the hub's time.
const VECTORED_MIN: usize = 1024;

/// A deadline that does not come (about 30 years).
const NEVER: Duration = Duration::from_secs(86_400 * 365 * 30);

/// How long a connection closed for bad input keeps reading (and discarding)
/// so that its error frame is not lost to a TCP reset.
const LINGER: Duration = Duration::from_millis(500);

/// Serves one accepted connection until it ends. `slot` is its place under
/// the hub's limit of unregistered connections.
pub(crate) fn serve(
    hub: Hub,
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
) -> impl Future<Output = ()> {
    // A plain function rather than an `async` wrapper: a future that awaits
    // another it was handed holds room for both, and this one lives as long
    // as the connection.
    let connection = Connection::new(hub, slot);
    let span = info_span!("conn", %peer, id = connection.id.0, nick = field::Empty);
    connection.run(stream).instrument(span)
}

/// The most `SEND`s one command carries to the actor.
const MAX_GATHER: usize = 64;

/// The next frame already in `reader`'s buffer, if a whole one is there;
/// reads nothing from the socket.
fn buffered(reader: &mut FrameReader<'_>) -> Result<Option<Request>, ProtocolError> {
    let mut buffer = std::mem::take(reader.read_buffer_mut());
    let frame = reader.decoder_mut().decode(&mut buffer);
    *reader.read_buffer_mut() = buffer;
    frame
}

/// Tells a connection over the limit that the server is full, and closes it.
pub(crate) async fn refuse(stream: TcpStream, code: Code) {
    let Ok(frame) = encode_frame(&ServerFrame::Error(ErrorFrame::new(code, 0)), usize::MAX) else {
        return;
    };
    refuse_with(stream, &frame).await;
}

/// Writes `last_words` and closes, reading briefly so they are not lost to a reset.
pub(crate) async fn refuse_with(mut stream: TcpStream, last_words: &[u8]) {
    if timeout(LINGER, stream.write_all(last_words)).await.is_ok() {
        let _ = stream.shutdown().await;
        linger(&mut stream).await;
    }
}

/// A client's frame as the hub handles it: a `SEND` is read in place.
pub(crate) type Request = ClientFrameOf<SendPayload>;

/// A binary connection's frame reader, with stalled frames timing out.
type FrameReader<'a> = FramedRead<StallGuard<ReadHalf<'a>>, StallCodec<FrameCodec<Request>>>;

/// Input that can give back memory once its peer has gone quiet.
pub(crate) trait Quiet {
    /// The peer has sent nothing for a ping interval.
    fn quiet(&mut self) {}

    /// When the peer's bytes last arrived, for an input that keeps track:
    /// then the connection need not read the clock for every frame.
    fn last_heard(&self) -> Option<Instant> {
        None
    }
}

impl Quiet for FrameReader<'_> {
    fn quiet(&mut self) {
        let mut buffer = std::mem::take(self.read_buffer_mut());
        self.decoder_mut().release(&mut buffer);
        *self.read_buffer_mut() = buffer;
    }

    fn last_heard(&self) -> Option<Instant> {
        Some(self.get_ref().last_read())
    }
}

/// Why a connection ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The peer closed its side.
    Eof,
    /// The peer said `QUIT`.
    Quit,
    /// The hub is shutting down.
    Shutdown,
    /// The peer broke the protocol; it gets this code and is closed.
    Fatal(Code),
    /// The socket failed.
    Io(io::Error),
    /// The writer stopped first: the hub closed the outbox (slow consumer),
    /// or writing failed.
    WriterDone(io::Result<()>),
}

/// What every front end (binary or text) keeps about one peer, and the
/// handling of its requests, which is the same whatever they arrived as.
pub(crate) struct Connection {
    pub(crate) hub: Hub,
    pub(crate) id: ConnId,
    pub(crate) outbox: Arc<Outbox>,
    /// In-flight bytes of this connection's messages (see `HubConfig::max_in_flight_bytes`).
    permits: Arc<Semaphore>,
    pub(crate) nick: Option<Nick>,
    /// Its place under the limit of unregistered connections, then, once
    /// registered, under the limit of registered ones.
    slot: OwnedSemaphorePermit,
    /// Flood control, when the hub has it turned on.
    bucket: Option<TokenBucket>,
    /// Pings sent and not answered since the client was last heard from.
    missed_pings: u32,
    /// When the client last sent a frame (unless its input keeps that
    /// itself: see [`Quiet::last_heard`]), or was last pinged.
    heard: Instant,
    /// The registration deadline, then the next liveness check.
    timer: Pin<Box<Sleep>>,
    /// Resolves when the hub begins to shut down.
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl Connection {
    pub(crate) fn new(hub: Hub, slot: OwnedSemaphorePermit) -> Self {
        let config = &hub.shared.config;
        Self {
            permits: hub.new_in_flight(),
            bucket: config.rate_limit.map(TokenBucket::new),
            outbox: hub.new_outbox(),
            id: hub.next_conn_id(),
            nick: None,
            slot,
            missed_pings: 0,
            heard: Instant::now(),
            timer: Box::pin(tokio::time::sleep(config.registration_timeout)),
            shutdown: Box::pin(hub.shared.shutdown.clone().cancelled_owned()),
            hub,
        }
    }

    async fn run(mut self, mut stream: TcpStream) {
        debug!("accepted");
        // We coalesce frames ourselves; Nagle would only add latency.
        let _ = stream.set_nodelay(true);
        let config = &self.hub.shared.config;
        let write_deadline = config.slow_consumer_deadline;
        let (read_half, write_half) = stream.split();
        let codec = FrameCodec::new(config.max_frame_unregistered);
        let (read_half, codec) = reader::guard(read_half, codec, config.frame_timeout);
        // Small to begin with: an idle connection holds little, and the
        // buffer grows with the traffic (see `reader`).
        let mut reader = FramedRead::with_capacity(read_half, codec, reader::MIN_READ);
        let outbox = self.outbox.clone();
        let writer = write_frames(&outbox, write_half, write_deadline);
        tokio::pin!(writer);

        let outcome = tokio::select! {
            outcome = self.read_frames(&mut reader) => outcome,
            result = &mut writer => Outcome::WriterDone(result),
        };
        self.finish(&outcome, writer).await;
        if matches!(outcome, Outcome::Fatal(_)) {
            linger(reader.get_mut()).await;
        }
        debug!(?outcome, "closed");
    }

    /// Ends a connection whose reader or writer has stopped: says goodbye to
    /// the actor, closes the outbox the way `outcome` calls for, and lets the
    /// writer flush what is left.
    pub(crate) async fn finish<F>(&mut self, outcome: &Outcome, writer: std::pin::Pin<&mut F>)
    where
        F: Future<Output = io::Result<()>>,
    {
        let counters = &self.hub.shared.counters;
        match outcome {
            Outcome::Io(error) => debug!(%error, "read failed"),
            Outcome::Fatal(code) => {
                warn!(%code, "closing the connection");
                counters.record(*code);
            }
            Outcome::WriterDone(result) => {
                if let Err(error) = result {
                    debug!(%error, "write failed");
                }
            }
            Outcome::Eof | Outcome::Quit | Outcome::Shutdown => {}
        }
        if self.outbox.reason() == Some(Code::SLOW_CONSUMER) {
            warn!("disconnected as a slow consumer");
            counters.record_slow_consumer(self.nick.as_ref().map(Nick::as_str));
        }

        // Say goodbye first, so that nothing more is routed here. Always,
        // even when `nick` is unset: if the reader was dropped while its
        // `Join` was in flight, the actor may have registered us anyway, and
        // a `Leave` for an id it does not know is a no-op.
        if let Outcome::Shutdown = outcome {
            // The actor drains its queue and closes our outbox itself.
            self.hub.shared.actor_done.cancelled().await;
        } else {
            let (done, routed) = oneshot::channel();
            let leave = Command::Leave {
                id: self.id,
                done: Some(done),
            };
            if self.hub.command(leave).await.is_ok() {
                let _ = routed.await;
            }
        }
        match outcome {
            // The writer has stopped: nothing more can be written.
            Outcome::WriterDone(_) => return,
            Outcome::Eof | Outcome::Quit => self.outbox.close(None, true),
            Outcome::Shutdown => self.outbox.close(Some(Code::SHUTTING_DOWN), true),
            Outcome::Fatal(code) => self.outbox.close(Some(*code), true),
            Outcome::Io(_) => self.outbox.close(None, false),
        }
        if let Err(error) = writer.await {
            debug!(%error, "final write failed");
        }
    }

    /// The next item from `input`, unless shutdown begins or (before
    /// registration) the registration deadline passes first.
    ///
    /// With `pings` (binary clients), a registered client that stays silent
    /// is sent `PING`s every `ping_interval`, and closed once
    /// `max_missed_pings` of them in a row went unanswered. Anything the
    /// client sends counts as an answer.
    ///
    /// One timer serves both deadlines and is not touched per frame: when it
    /// fires, it checks when the peer was last heard from and re-arms.
    pub(crate) async fn next_input<S: futures::Stream + Quiet + Unpin>(
        &mut self,
        input: &mut S,
        pings: bool,
    ) -> Result<Option<S::Item>, Outcome> {
        let config = &self.hub.shared.config;
        let interval = config.ping_interval;
        let max_missed = config.max_missed_pings;
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.as_mut() => return Err(Outcome::Shutdown),
                next = input.next() => {
                    if input.last_heard().is_none() {
                        self.heard = Instant::now();
                    }
                    self.missed_pings = 0;
                    return Ok(next);
                }
                () = self.timer.as_mut() => {
                    if self.nick.is_none() {
                        info!("no HELLO before the registration deadline");
                        return Err(Outcome::Fatal(Code::REGISTRATION_TIMEOUT));
                    }
                    let now = Instant::now();
                    if !pings {
                        self.timer.as_mut().reset(now + NEVER);
                        continue;
                    }
                    // Since the last frame or ping, whichever is later.
                    let heard = input.last_heard().map_or(self.heard, |read| read.max(self.heard));
                    let due = heard + interval;
                    if due > now {
                        self.timer.as_mut().reset(due);
                        continue;
                    }
                    input.quiet();
                    if self.missed_pings >= max_missed {
                        info!(missed = self.missed_pings, "peer stopped answering pings");
                        return Err(Outcome::Fatal(Code::PING_TIMEOUT));
                    }
                    self.missed_pings += 1;
                    self.reply_frame(&ServerFrame::Ping(u64::from(self.missed_pings)));
                    self.heard = now;
                    self.timer.as_mut().reset(now + interval);
                }
            }
        }
    }

    async fn read_frames(&mut self, reader: &mut FrameReader<'_>) -> Outcome {
        // A frame read while gathering `SEND`s, to be handled next.
        let mut held = None;
        loop {
            let next = match held.take() {
                Some(frame) => Some(frame),
                None => match self.next_input(reader, true).await {
                    Ok(next) => next,
                    Err(outcome) => return outcome,
                },
            };
            let frame = match next {
                None => return Outcome::Eof,
                Some(Ok(frame)) => frame,
                Some(Err(ProtocolError::Io(error))) if error.kind() == io::ErrorKind::TimedOut => {
                    info!("frame stalled midway; closing");
                    return Outcome::Fatal(Code::FRAME_TIMEOUT);
                }
                Some(Err(ProtocolError::Io(error))) => return Outcome::Io(error),
                Some(Err(error)) => {
                    info!(%error, "bad frame; closing");
                    return Outcome::Fatal(error.code());
                }
            };
            let was_registered = self.nick.is_some();
            let outcome = match frame {
                // Without flood control every `SEND` is taken as it comes,
                // so those already read can go together.
                Request::Send(send) if was_registered && self.bucket.is_none() => {
                    self.send_buffered(send, reader, &mut held).await
                }
                frame => self.handle(frame).await,
            };
            if let Some(outcome) = outcome {
                return outcome;
            }
            if !was_registered && self.nick.is_some() {
                let max_frame = self.hub.shared.config.max_frame;
                reader.decoder_mut().inner.set_max_frame(max_frame);
            }
        }
    }

    /// Sends `first`, and the `SEND`s already read behind it, to the actor
    /// as one command: a busy sender's read of many messages then takes one
    /// slot of the actor's queue rather than one per message, and one
    /// permit. Gathering stops at the first frame that is not a `SEND` (or
    /// does not decode), which is left in `held`, at one that the in-flight
    /// budget has no room for, which waits in `held` as usual, and at
    /// [`MAX_GATHER`]. Nothing is read from the socket for it.
    async fn send_buffered(
        &mut self,
        first: SendPayload,
        reader: &mut FrameReader<'_>,
        held: &mut Option<Result<Request, ProtocolError>>,
    ) -> Option<Outcome> {
        let mut permit = match self.in_flight(&first).await {
            Ok(permit) => permit,
            Err(outcome) => return outcome,
        };
        // `first` alone, until a second comes.
        let mut first = Some(first);
        let mut sends = Vec::new();
        // Only this task takes from `permits` (the actor only gives back),
        // so what is available now stays available: the gathered `SEND`s
        // are counted against it and taken in one go, not one by one.
        let mut room = self.permits.available_permits();
        let mut cost = 0;
        while sends.len() < MAX_GATHER {
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
            let more = self.hub.in_flight_cost(&next) as usize;
            if cost + more > room {
                room = self.permits.available_permits();
                if cost + more > room {
                    *held = Some(Ok(Request::Send(next)));
                    break;
                }
            }
            cost += more;
            if let Some(first) = first.take() {
                sends.reserve_exact(MAX_GATHER);
                sends.push(first);
            }
            sends.push(next);
        }
        if cost > 0 {
            // At most `room`, which came from a `u32`; and there at once.
            let cost = u32::try_from(cost).unwrap_or(u32::MAX);
            match self.permits_for(cost).await {
                Ok(more) => permit.merge(more),
                Err(outcome) => return outcome,
            }
        }
        let command = match first {
            Some(send) => Command::Send {
                id: self.id,
                send,
                permit,
            },
            None => Command::SendMany {
                id: self.id,
                sends,
                permit,
            },
        };
        if self.hub.try_command(command).await.is_err() {
            return Some(Outcome::Shutdown);
        }
        None
    }

    /// This connection's in-flight permit for `send`. It waits while earlier
    /// messages of ours sit parked on congested recipients' queues; usually
    /// a permit is free: no waiting, no timer.
    async fn in_flight(
        &mut self,
        send: &SendPayload,
    ) -> Result<OwnedSemaphorePermit, Option<Outcome>> {
        self.permits_for(self.hub.in_flight_cost(send)).await
    }

    /// `cost` in-flight permits, waiting for them if need be.
    async fn permits_for(&mut self, cost: u32) -> Result<OwnedSemaphorePermit, Option<Outcome>> {
        if let Ok(permit) = self.permits.clone().try_acquire_many_owned(cost) {
            return Ok(permit);
        }
        tokio::select! {
            biased;
            () = self.shutdown.as_mut() => Err(Some(Outcome::Shutdown)),
            permit = self.permits.clone().acquire_many_owned(cost) => permit.map_err(|_| None),
        }
    }

    /// Acts on one frame; `Some` ends the connection.
    pub(crate) async fn handle(&mut self, frame: Request) -> Option<Outcome> {
        match frame {
            // Boxed, as is everything rare that awaits: a future's state
            // is as large as its largest await, and this one lives in every
            // connection's task for the connection's whole life.
            Request::Hello(hello) => return Box::pin(self.register(hello)).await,
            Request::Send(send) => {
                if self.nick.is_none() {
                    self.reply(ErrorFrame::new(Code::NOT_REGISTERED, send.id()));
                    return None;
                }
                if let Some(bucket) = &mut self.bucket {
                    match bucket.take(Instant::now()) {
                        Verdict::Pass => {}
                        Verdict::Refuse => {
                            self.hub.shared.counters.record(Code::RATE_LIMITED);
                            debug!(id = send.id(), "rate limited");
                            self.reply(ErrorFrame::new(Code::RATE_LIMITED, send.id()));
                            return None;
                        }
                        Verdict::Disconnect => return Some(Outcome::Fatal(Code::FLOODING)),
                    }
                }
                let permit = match self.in_flight(&send).await {
                    Ok(permit) => permit,
                    Err(outcome) => return outcome,
                };
                let command = Command::Send {
                    id: self.id,
                    send,
                    permit,
                };
                if self.hub.try_command(command).await.is_err() {
                    return Some(Outcome::Shutdown);
                }
            }
            Request::Who => {
                if self.nick.is_none() {
                    self.reply(ErrorFrame::new(Code::NOT_REGISTERED, 0));
                } else if Box::pin(self.hub.command(Command::Who { id: self.id }))
                    .await
                    .is_err()
                {
                    return Some(Outcome::Shutdown);
                }
            }
            Request::Quit => return Some(Outcome::Quit),
            Request::Ping(token) => self.reply_frame(&ServerFrame::Pong(token)),
            Request::Pong(_) => {}
        }
        None
    }

    /// Registers the nickname a `HELLO` asks for; `Some` ends the connection.
    async fn register(&mut self, hello: Hello) -> Option<Outcome> {
        if self.nick.is_some() {
            self.reply(ErrorFrame::new(Code::ALREADY_REGISTERED, 0));
            return None;
        }
        if hello.version != PROTOCOL_VERSION {
            info!(version = hello.version, "unsupported protocol version");
            return Some(Outcome::Fatal(Code::UNSUPPORTED_VERSION));
        }
        let nick = match Nick::parse(&hello.nick) {
            Ok(nick) => nick,
            Err(error) => {
                debug!(%error, "nickname refused");
                self.reply(ErrorFrame {
                    code: error.code(),
                    reference: 0,
                    message: error.to_string(),
                });
                return None;
            }
        };
        // Move from the unregistered pool to the registered one. The actor
        // lets go of the unregistered place as it registers the nickname
        // (before the WELCOME), or hands it back with a refusal.
        let Ok(registered) = self.hub.shared.connections.clone().try_acquire_owned() else {
            return Some(Outcome::Fatal(Code::SERVER_FULL));
        };
        let unregistered = std::mem::replace(&mut self.slot, registered);
        let joined = self.hub.join(
            self.id,
            nick.clone(),
            self.outbox.clone(),
            hello.options,
            Some(unregistered),
        );
        match joined.await {
            Ok(()) => {
                tracing::Span::current().record("nick", nick.as_str());
                info!("registered");
                self.nick = Some(nick);
            }
            Err((HubError::Refused(code), unregistered)) => {
                if let Some(unregistered) = unregistered {
                    // Back to the unregistered pool; the registered place goes.
                    self.slot = unregistered;
                }
                self.reply(ErrorFrame::new(code, 0));
            }
            Err((HubError::Closed, _)) => return Some(Outcome::Shutdown),
        }
        None
    }

    pub(crate) fn reply(&self, error: ErrorFrame) {
        self.reply_frame(&ServerFrame::Error(error));
    }

    /// Queues a frame for this connection only. A reply that does not fit is
    /// the same as any other frame that does not: this connection is cut.
    fn reply_frame(&self, frame: &ServerFrame) {
        if let Ok(bytes) = encode_frame(frame, usize::MAX) {
            let _ = self.outbox.push(bytes);
        }
    }
}

/// Writes everything the outbox hands over, coalescing small frames so that a
/// busy connection makes one write for many frames. Returns once the outbox
/// is closed and drained (after shutting down the write side), or on a write
/// error or a write that made no progress within `deadline`.
async fn write_frames<W>(outbox: &Outbox, mut io: W, deadline: Duration) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut batch: Vec<Bytes> = Vec::new();
    let mut buf = BytesMut::new();
    // Whether frames were already waiting when the last write ended.
    let mut flowing = false;
    while outbox.take_all(&mut batch).await {
        // Under a flood (frames were already waiting when the last write
        // ended), let the tasks that were woken with us run first: they
        // often have more frames for this connection, and one write then
        // carries them all instead of a write each. Go on doing so while
        // each turn brings more, up to a point: the writes grow (fewer
        // system calls here and in every reader). A connection that had
        // caught up writes what woke it at once, one frame or a burst: at a
        // steady trickle (a few messages each millisecond to a hundred
        // readers) waiting for more only added latency, and a burst is
        // already as large as it will get.
        let mut taken: usize = batch.iter().map(Bytes::len).sum();
        let first = std::time::Instant::now();
        let turns = if flowing && batch.len() > 1 {
            MAX_TURNS
        } else {
            0
        };
        for _ in 0..turns {
            tokio::task::yield_now().await;
            let before = batch.len();
            outbox.take_ready(&mut batch);
            taken += batch[before..].iter().map(Bytes::len).sum::<usize>();
            if batch.len() == before || taken >= WRITE_TARGET || first.elapsed() >= MAX_HOLD {
                break;
            }
        }
        if let [frame] = batch.as_slice() {
            // Nothing to coalesce: write it from where it is.
            write_deadline(&mut io, frame, deadline, outbox).await?;
        } else if taken >= batch.len() * VECTORED_MIN {
            // Large buffers (runs of messages, their replies): written from
            // where they are, sixteen to a call, rather than copied first.
            write_vectored_deadline(&mut io, &batch, deadline, outbox).await?;
        } else {
            if buf.capacity() == 0 {
                // One allocation of the right size rather than a doubling chain.
                buf.reserve(taken.min(WRITE_TARGET));
            }
            for frame in &batch {
                if frame.len() > COALESCE_MAX {
                    write_deadline(&mut io, &buf, deadline, outbox).await?;
                    buf.clear();
                    write_deadline(&mut io, frame, deadline, outbox).await?;
                } else {
                    buf.extend_from_slice(frame);
                    if buf.len() >= WRITE_TARGET {
                        write_deadline(&mut io, &buf, deadline, outbox).await?;
                        buf.clear();
                    }
                }
            }
            write_deadline(&mut io, &buf, deadline, outbox).await?;
            buf.clear();
        }
        batch.clear();
        outbox.written(taken);
        // A connection between bursts keeps no buffer at all: allocating
        // once per burst costs little next to the write itself, and an idle
        // connection is then only its task and its socket.
        flowing = !outbox.is_empty();
        if !flowing {
            buf = BytesMut::new();
            batch = Vec::new();
        }
    }
    io.shutdown().await
}

/// As [`write_deadline`], for several buffers written with vectored writes.
async fn write_vectored_deadline<W>(
    io: &mut W,
    frames: &[Bytes],
    deadline: Duration,
    outbox: &Outbox,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    for group in frames.chunks(MAX_IOVECS) {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        for (slice, frame) in slices.iter_mut().zip(group) {
            *slice = IoSlice::new(frame);
        }
        let mut left = &mut slices[..group.len()];
        while !left.is_empty() {
            let Ok(written) = timeout(deadline, io.write_vectored(left)).await else {
                return Err(no_progress(outbox));
            };
            match written? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                written => IoSlice::advance_slices(&mut left, written),
            }
        }
    }
    Ok(())
}

/// A write that made no progress before the deadline: the peer is cut as a
/// slow consumer.
fn no_progress(outbox: &Outbox) -> io::Error {
    outbox.close(Some(Code::SLOW_CONSUMER), false);
    io::Error::new(
        io::ErrorKind::TimedOut,
        "write made no progress before the deadline",
    )
}

pub(crate) async fn write_deadline<W>(
    io: &mut W,
    bytes: &[u8],
    deadline: Duration,
    outbox: &Outbox,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    if bytes.is_empty() {
        return Ok(());
    }
    match timeout(deadline, io.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(no_progress(outbox)),
    }
}

/// Reads and discards for a moment, so that the peer reads our last frame
/// before the close instead of a reset caused by its unread bytes.
pub(crate) async fn linger<R: AsyncRead + Unpin>(io: &mut R) {
    // On the heap: an array here would make every connection's task, which
    // holds this future's state for its whole life, 4 KiB larger.
    let mut scratch = vec![0u8; 4096];
    let until = Instant::now() + LINGER;
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, io.read(&mut scratch)).await {
        if n == 0 {
            break;
        }
    }
}

/// Flood control: a token bucket on messages, and a count of refusals per
/// grace period to tell a burst from a flood.
#[derive(Debug)]
struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
    /// Start of the current grace period of refusals, and refusals in it.
    flood: Option<(Instant, f64)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Refuse,
    Disconnect,
}

impl TokenBucket {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            refilled: Instant::now(),
            flood: None,
        }
    }

    fn take(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Pass;
        }
        let grace = self.limit.grace;
        let (since, refused) = match self.flood {
            Some((since, refused)) if now.saturating_duration_since(since) <= grace => {
                (since, refused + 1.0)
            }
            _ => (now, 1.0),
        };
        self.flood = Some((since, refused));
        if refused > self.limit.per_second * grace.as_secs_f64() {
            Verdict::Disconnect
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate_then_cuts_a_flood() {
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3,
            grace: Duration::from_secs(5),
        };
        let mut bucket = TokenBucket::new(limit);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Verdict::Pass);
        }
        assert_eq!(bucket.take(start), Verdict::Refuse);
        // Half a second later one token has come back.
        let later = start + Duration::from_millis(500);
        assert_eq!(bucket.take(later), Verdict::Pass);
        assert_eq!(bucket.take(later), Verdict::Refuse);
        // Flooding: 10 refusals (2/s x 5 s) in one grace period are
        // tolerated, the 11th is not. Two have happened already.
        let mut verdicts = Vec::new();
        for _ in 0..8 {
            verdicts.push(bucket.take(later));
        }
        assert!(verdicts.iter().all(|v| *v == Verdict::Refuse));
        assert_eq!(bucket.take(later), Verdict::Disconnect);
    }

    /// Writes everything queued on an outbox through a pipe that takes a
    /// few bytes at a time, and returns what came out.
    async fn written_through_a_narrow_pipe(frames: &[Bytes]) -> Vec<u8> {
        let outbox = Outbox::new(usize::MAX / 2, usize::MAX / 2);
        for frame in frames {
            assert!(outbox.push(frame.clone()).is_ok());
        }
        outbox.close(None, true);
        let (ours, mut theirs) = tokio::io::duplex(777);
        let reading = tokio::spawn(async move {
            let mut out = Vec::new();
            theirs.read_to_end(&mut out).await.map(|_| out)
        });
        let written = write_frames(&outbox, ours, Duration::from_secs(5)).await;
        assert!(written.is_ok(), "{written:?}");
        match reading.await {
            Ok(Ok(out)) => out,
            other => panic!("reading failed: {other:?}"),
        }
    }

    #[tokio::test]
    async fn many_large_buffers_and_many_small_frames_arrive_whole_and_in_order() {
        // Large ones go out vectored, sixteen to a call, with partial writes
        // in between; small ones are copied together.
        let large: Vec<Bytes> = (0..40u8)
            .map(|i| Bytes::from(vec![i; 1024 + 97 * usize::from(i)]))
            .collect();
        let small: Vec<Bytes> = (0..300u16)
            .map(|i| Bytes::from(i.to_be_bytes().repeat(20)))
            .collect();
        let mixed: Vec<Bytes> = large.iter().chain(&small).cloned().collect();
        for frames in [large, small, mixed] {
            assert_eq!(
                written_through_a_narrow_pipe(&frames).await,
                frames.concat()
            );
        }
    }
}
