//! The bench's connections over WebSocket (`chinwag bench --ws`): the
//! handshake to the hub's web gateway (`/ws`, subprotocol `chinwag.v1`,
//! `docs/protocol.md` section 1.2), and the two halves of the connection
//! as the byte stream the rest of the bench reads and writes, as the
//! hub's gateway does on its side (`crates/web/src/ws_bytes.rs`).
//!
//! ```text
//!  the bench's write batches         masked binary frames, one a chinwag frame
//!  len|frame len|fr ame len|... ->   [hdr|key|len|frame] [hdr|key|len|frame] ...
//!
//!  the hub's binary frames           the bench's decoder (FramedRead)
//!  [hdr|len|frame] [hdr|len|frame] -> len|frame len|frame ...    one byte stream
//! ```
//!
//! The bench is a load generator whose client must cost about what a plain
//! TCP client does, so after the upgrade it does not go through a
//! WebSocket library: fan-out is 100 receivers reading every message, and
//! a message object per frame, copied again into the decoder, and a lock
//! shared by the halves cost as much as the rest of the client together.
//!
//! - **Handshake**: the upgrade request and its response, checked here
//!   (tungstenite makes and checks the key). The bytes after the response
//!   are the first frames' and stay in the read buffer.
//! - **In** (`ReadHalf`): socket bytes are read into the half's own buffer,
//!   and each frame's payload, which is exactly one chinwag frame with its
//!   length prefix, is copied from there into the decoder's buffer: the
//!   2-to-10-byte headers are skipped, nothing is allocated a message.
//!   Pings are answered with a pong, a close is the end of the stream. What
//!   the hub does not send is an error (`InvalidData`), which the receiver
//!   reports: a text, masked or fragmented frame (the bench reassembles no
//!   fragments), a reserved bit or opcode, a payload that is not one
//!   chinwag frame (`ws_frame.rs`).
//! - **Out** (`WriteHalf`): written bytes are cut at frame boundaries by
//!   their 4-byte big-endian length prefix; each whole frame goes out as
//!   one masked binary frame, gathered in a buffer written to the socket
//!   when flushed (the bench flushes after each batch) or when it passes
//!   `WRITE_BUFFER`, so a batch of frames costs one socket write, as on
//!   TCP, and a hub that stops reading stops the bench's writes.
//! - **The halves**: the socket is split as TCP and TLS are (`into_split`,
//!   `tokio::io::split`). The write half's state is behind a mutex that
//!   the read half takes only to answer a ping or a close, never to read.
//! - **Close**: the hub's close (or the socket's end) is the end of the
//!   stream; shutting the write half down sends the bench's close.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::error::SetupError;
use crate::ws_frame::{self, BINARY, CLOSE, Header, MAX_CONTROL_PAYLOAD, Masks, PING, PONG};

/// The WebSocket subprotocol of the chinwag protocol, which the hub
/// requires (`docs/protocol.md` section 1.2).
const SUBPROTOCOL: &str = "chinwag.v1";

/// The gateway's WebSocket endpoint.
const PATH: &str = "/ws";

/// The 4-byte big-endian length prefix of every frame.
const PREFIX_LEN: usize = 4;

/// The smallest read buffer: room for the handshake's response and a
/// control frame, which are taken whole from it (larger messages pass
/// through it a piece at a time).
const MIN_READ_BUFFER: usize = 1024;

/// The most HTTP headers the handshake's response may have.
const MAX_RESPONSE_HEADERS: usize = 32;

/// Frames gathered for the socket past which a write first writes them
/// out: tungstenite's default write buffer, above the sender's batches.
const WRITE_BUFFER: usize = 128 * 1024;

/// The close code the bench sends when it is done (normal closure).
const NORMAL_CLOSURE: [u8; 2] = 1000u16.to_be_bytes();

/// Where the hub's WebSocket endpoint is, made once per run.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `ws://HOST:PORT/ws` (`wss:` over TLS): its host and port are
    /// what the upgrade request's `Host` header says.
    uri: Uri,
}

impl Endpoint {
    /// The endpoint of the hub at `server` (`HOST:PORT`, as the user gave
    /// it), over TLS with `tls`.
    pub(crate) fn new(server: &str, tls: bool) -> Result<Self, SetupError> {
        let scheme = if tls { "wss" } else { "ws" };
        let uri = format!("{scheme}://{server}{PATH}")
            .parse()
            .map_err(|error| {
                SetupError::Usage(format!(
                    "--ws: {server:?} does not make a WebSocket URL: {error}"
                ))
            })?;
        Ok(Self { uri })
    }
}

/// The handshake's failure, with what the user may have got wrong.
fn handshake_failed(endpoint: &Endpoint, why: &str) -> io::Error {
    io::Error::other(format!(
        "WebSocket handshake with {} failed (is --server the hub's --web-listen port?): {why}",
        endpoint.uri
    ))
}

/// The length of the handshake's response head at the start of `bytes`
/// if it is all there, once checked to accept the upgrade asked for with
/// `key`.
fn parse_response(bytes: &[u8], key: &str) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(format!("a malformed response: {error}")),
    };
    if response.code != Some(101) {
        return Err(format!(
            "answered {} {} instead of switching protocols",
            response.code.unwrap_or_default(),
            response.reason.unwrap_or_default()
        ));
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
    };
    if !header("upgrade").is_some_and(|value| value.eq_ignore_ascii_case(b"websocket")) {
        return Err("the response upgrades to something else than websocket".to_owned());
    }
    if header("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
        return Err("the response's Sec-WebSocket-Accept is not the key's".to_owned());
    }
    if header("sec-websocket-protocol") != Some(SUBPROTOCOL.as_bytes()) {
        return Err(format!(
            "the hub did not accept the subprotocol {SUBPROTOCOL}"
        ));
    }
    Ok(Some(len))
}

/// Upgrades `stream` (connected, over TLS if the run is) to a WebSocket
/// of the chinwag subprotocol at `endpoint`, reading with a buffer of
/// `read_buffer` bytes, and splits it.
pub(crate) async fn handshake(
    mut stream: Stream,
    endpoint: &Endpoint,
    read_buffer: usize,
) -> io::Result<(ReadHalf, WriteHalf)> {
    let key = generate_key();
    let host = endpoint
        .uri
        .authority()
        .map_or("", |authority| authority.as_str());
    let request = format!(
        "GET {PATH} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\
         Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    // The read buffer is allocated up front: as small as the bench's own
    // for the thousands of idle connections of `conns`.
    let mut inbound = InBuffer::new(read_buffer.max(MIN_READ_BUFFER));
    loop {
        match parse_response(inbound.data(), &key) {
            Ok(Some(len)) => {
                // What follows the response is the hub's first frames'.
                inbound.consume(len);
                break;
            }
            Ok(None) if inbound.is_full() => {
                return Err(handshake_failed(endpoint, "a response too long"));
            }
            Ok(None) => {}
            Err(why) => return Err(handshake_failed(endpoint, &why)),
        }
        if std::future::poll_fn(|cx| inbound.poll_fill(&mut stream, cx)).await? == 0 {
            return Err(handshake_failed(endpoint, "the connection closed"));
        }
    }
    let (read, write) = match stream {
        Stream::Tcp(stream) => {
            let (read, write) = stream.into_split();
            (ReadStream::Tcp(read), WriteStream::Tcp(write))
        }
        Stream::Tls(stream) => {
            let (read, write) = tokio::io::split(*stream);
            (ReadStream::Tls(read), WriteStream::Tls(write))
        }
    };
    Ok(halves(read, write, inbound))
}

/// The halves of a WebSocket over `read` and `write`, with what was read
/// already in `inbound`.
fn halves<R, W>(read: R, write: W, inbound: InBuffer) -> (FrameReader<R, W>, FrameWriter<W>) {
    let writer = Arc::new(Mutex::new(Writer {
        io: write,
        out: BytesMut::new(),
        masks: Masks::new(),
        parked: false,
        close_sent: false,
    }));
    (
        FrameReader {
            io: read,
            inbound,
            payload_left: 0,
            ended: false,
            error: None,
            owes_answer: false,
            writer: Arc::clone(&writer),
        },
        FrameWriter {
            writer,
            partial: BytesMut::new(),
        },
    )
}

/// The length of the whole frame at the start of `bytes` (its prefix
/// included), if its prefix is there.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let prefix: [u8; PREFIX_LEN] = bytes.get(..PREFIX_LEN)?.try_into().ok()?;
    let payload = usize::try_from(u32::from_be_bytes(prefix)).ok()?;
    payload.checked_add(PREFIX_LEN)
}

/// A read half's own buffer: bytes read from the socket and not yet
/// taken, at `start..end`.
#[derive(Debug)]
struct InBuffer {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
}

impl InBuffer {
    fn new(capacity: usize) -> Self {
        Self {
            bytes: vec![0; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn is_full(&self) -> bool {
        self.end - self.start == self.bytes.len()
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads what `io` has after the bytes held, which are first moved to
    /// the front (they are at most an incomplete header and a control
    /// frame's payload: the reader takes all else before it reads).
    fn poll_fill<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let mut buf = ReadBuf::new(&mut self.bytes[self.end..]);
        ready!(Pin::new(io).poll_read(cx, &mut buf))?;
        let n = buf.filled().len();
        self.end += n;
        Poll::Ready(Ok(n))
    }
}

/// What the write half holds, shared with the read half for its answers
/// to pings and closes.
#[derive(Debug)]
struct Writer<W> {
    io: W,
    /// Masked frames not yet written to the socket.
    out: BytesMut,
    masks: Masks,
    /// The write half is waiting for the socket, its waker registered:
    /// the read half then leaves `out` to it rather than register its own
    /// waker in its place (a socket keeps one writer's waker).
    parked: bool,
    /// A close was sent (or queued): nothing is sent after it.
    close_sent: bool,
}

/// The writer's state, whether or not a holder panicked.
fn lock<W>(writer: &Mutex<Writer<W>>) -> MutexGuard<'_, Writer<W>> {
    writer.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// Writes `out` to the socket and flushes it.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        self.out.clear();
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// `poll_drain` by the write half, which is parked while pending.
    fn poll_drain_parked(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = self.poll_drain(cx);
        self.parked = poll.is_pending();
        poll
    }

    /// Queues the frame of `opcode` with `payload`, unless a close went.
    fn queue(&mut self, opcode: u8, payload: &[u8]) {
        if self.close_sent {
            return;
        }
        self.close_sent = opcode == CLOSE;
        self.masks.encode(opcode, payload, &mut self.out);
    }

    /// Queues every whole chinwag frame at the start of `bytes`, each as
    /// one binary frame; returns how many bytes they were.
    fn queue_frames(&mut self, bytes: &[u8]) -> usize {
        let mut taken = 0;
        while let Some(len) = frame_len(&bytes[taken..]).filter(|&len| len <= bytes.len() - taken) {
            self.queue(BINARY, &bytes[taken..taken + len]);
            taken += len;
        }
        taken
    }
}

/// A WebSocket's read half as a byte stream: the payloads of its binary
/// frames, one after the other.
#[derive(Debug)]
pub(crate) struct FrameReader<R, W> {
    io: R,
    inbound: InBuffer,
    /// What is left of the payload of the binary frame being read.
    payload_left: u64,
    /// The hub closed: no more frames.
    ended: bool,
    /// An error met after some bytes were read in the same call: returned
    /// by the next read, so that the bytes before it are not lost.
    error: Option<io::Error>,
    /// An answer was queued and not yet written.
    owes_answer: bool,
    writer: Arc<Mutex<Writer<W>>>,
}

/// The read half of a connection over WebSocket.
pub(crate) type ReadHalf = FrameReader<ReadStream, WriteStream>;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> FrameReader<R, W> {
    /// Queues the answer to a ping or a close, and writes it unless the
    /// write half will.
    fn answer(&mut self, opcode: u8, payload: &[u8], cx: &mut Context<'_>) -> io::Result<()> {
        lock(&self.writer).queue(opcode, payload);
        self.owes_answer = true;
        self.poll_write_answers(cx)
    }

    /// Writes the answers queued, unless the write half waits for the
    /// socket (it writes them when it may). Pending keeps them owed: this
    /// half's waker is registered, and the next read tries again.
    fn poll_write_answers(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let mut writer = lock(&self.writer);
        if writer.parked {
            self.owes_answer = false;
            return Ok(());
        }
        match writer.poll_drain(cx) {
            Poll::Ready(result) => {
                self.owes_answer = false;
                result
            }
            Poll::Pending => Ok(()),
        }
    }

    /// Fills `out` with payload bytes, as many as are there; pending only
    /// if there are none.
    fn poll_payloads(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.owes_answer {
            self.poll_write_answers(cx)?;
        }
        let start = out.filled().len();
        loop {
            if out.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let data = self.inbound.data();
            if self.payload_left > 0 {
                if !data.is_empty() {
                    let n = usize::try_from(self.payload_left)
                        .unwrap_or(usize::MAX)
                        .min(data.len())
                        .min(out.remaining());
                    out.put_slice(&data[..n]);
                    self.inbound.consume(n);
                    self.payload_left -= n as u64;
                    continue;
                }
            } else if self.ended {
                return Poll::Ready(Ok(()));
            } else if let Some(header) = ws_frame::parse(data)?
                && self.take_frame(header, cx)?
            {
                continue;
            }
            // More bytes are needed; what was read already is handed over
            // first.
            if out.filled().len() > start {
                return Poll::Ready(Ok(()));
            }
            if ready!(self.inbound.poll_fill(&mut self.io, cx))? == 0 {
                if self.payload_left > 0 || !self.inbound.data().is_empty() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the WebSocket ended in the middle of a frame",
                    )));
                }
                self.ended = true;
            }
        }
    }

    /// Takes the frame of `header` at the start of the buffer if enough
    /// of it is there: the header of a binary frame (once its chinwag
    /// frame's prefix is there too, to check it is one frame), a control
    /// frame whole. Returns whether it was taken.
    fn take_frame(&mut self, header: Header, cx: &mut Context<'_>) -> io::Result<bool> {
        let data = self.inbound.data();
        if header.opcode == BINARY {
            let Some(prefix) = data.get(header.len..header.len + PREFIX_LEN) else {
                if header.payload < PREFIX_LEN as u64 {
                    return Err(not_one_frame(header.payload));
                }
                return Ok(false);
            };
            if frame_len(prefix).map(|len| len as u64) != Some(header.payload) {
                return Err(not_one_frame(header.payload));
            }
            self.inbound.consume(header.len);
            self.payload_left = header.payload;
            return Ok(true);
        }
        // A control frame's payload is at most 125 bytes.
        let end = header.len + header.payload as usize;
        let Some(payload) = data.get(header.len..end) else {
            return Ok(false);
        };
        let mut copy = [0; MAX_CONTROL_PAYLOAD];
        let copy = &mut copy[..payload.len()];
        copy.copy_from_slice(payload);
        self.inbound.consume(end);
        match header.opcode {
            PING => self.answer(PONG, copy, cx)?,
            CLOSE => {
                // The close is echoed with its code, as RFC 6455 section
                // 5.5.1 asks.
                self.ended = true;
                let code = copy.get(..2).unwrap_or_default();
                self.answer(CLOSE, code, cx)?;
            }
            // PONG: the bench sends no pings.
            _ => {}
        }
        Ok(true)
    }
}

/// A binary frame whose payload of `len` bytes is not one chinwag frame.
fn not_one_frame(len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a WebSocket message of {len} bytes that is not one frame"),
    )
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> AsyncRead for FrameReader<R, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(error) = this.error.take() {
            return Poll::Ready(Err(error));
        }
        let start = buf.filled().len();
        match this.poll_payloads(cx, buf) {
            Poll::Ready(Err(error)) if buf.filled().len() > start => {
                this.error = Some(error);
                Poll::Ready(Ok(()))
            }
            poll => poll,
        }
    }
}

/// A WebSocket's write half as a byte stream: each whole frame written
/// goes out as one masked binary frame.
#[derive(Debug)]
pub(crate) struct FrameWriter<W> {
    writer: Arc<Mutex<Writer<W>>>,
    /// The start of a chinwag frame written, waiting for its rest.
    partial: BytesMut,
}

/// The write half of a connection over WebSocket.
pub(crate) type WriteHalf = FrameWriter<WriteStream>;

impl<W: AsyncWrite + Unpin> AsyncWrite for FrameWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut writer = lock(&this.writer);
        // Nothing more is taken while the socket has not taken what was
        // gathered: this is where a hub that does not read pushes back.
        if writer.out.len() >= WRITE_BUFFER {
            ready!(writer.poll_drain_parked(cx))?;
        }
        writer.parked = false;
        if this.partial.is_empty() {
            let taken = writer.queue_frames(buf);
            this.partial.extend_from_slice(&buf[taken..]);
        } else {
            this.partial.extend_from_slice(buf);
            let taken = writer.queue_frames(&this.partial);
            this.partial.advance(taken);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.writer).poll_drain_parked(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut writer = lock(&self.writer);
        writer.queue(CLOSE, &NORMAL_CLOSURE);
        ready!(writer.poll_drain_parked(cx))?;
        Pin::new(&mut writer.io).poll_shutdown(cx)
    }
}

/// The stream a WebSocket runs over: plain TCP, or TLS for `wss:`.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The read half of a [`Stream`].
#[derive(Debug)]
pub(crate) enum ReadStream {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
}

/// The write half of a [`Stream`].
#[derive(Debug)]
pub(crate) enum WriteStream {
    Tcp(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncRead for ReadStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Self::Tls(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

/// `AsyncWrite` for an enum of streams, each variant passed through.
macro_rules! write_through {
    ($ty:ty) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
                    Self::Tls(stream) => Pin::new(stream).poll_write(cx, buf),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(stream) => Pin::new(stream).poll_flush(cx),
                    Self::Tls(stream) => Pin::new(stream).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
                    Self::Tls(stream) => Pin::new(stream).poll_shutdown(cx),
                }
            }
        }
    };
}

write_through!(Stream);
write_through!(WriteStream);

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use tokio::io::AsyncReadExt;

    use super::*;

    /// A socket that hands over its bytes in the pieces given, then ends.
    struct Pieces(VecDeque<Vec<u8>>);

    impl AsyncRead for Pieces {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if let Some(mut piece) = this.0.pop_front() {
                let n = piece.len().min(buf.remaining());
                buf.put_slice(&piece[..n]);
                if n < piece.len() {
                    this.0.push_front(piece.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    /// A frame from the hub (unmasked) of `opcode` carrying `payload`, its
    /// length in 64 bits if `long`.
    fn from_hub(opcode: u8, payload: &[u8], long: bool) -> Vec<u8> {
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            _ if long => {
                frame.push(127);
                frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
            }
            len @ 0..=125 => frame.push(len as u8),
            len @ 126..=0xFFFF => {
                frame.push(126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        frame
    }

    /// A chinwag frame of `len` bytes after its prefix.
    fn chinwag(len: usize, fill: u8) -> Vec<u8> {
        let mut frame = u32::try_from(len).unwrap().to_be_bytes().to_vec();
        frame.resize(PREFIX_LEN + len, fill);
        frame
    }

    /// The halves over `pieces` in (an empty piece is no read: it would
    /// be the end), and a vector out.
    fn over(pieces: Vec<Vec<u8>>) -> (FrameReader<Pieces, Vec<u8>>, FrameWriter<Vec<u8>>) {
        halves(
            Pieces(
                pieces
                    .into_iter()
                    .filter(|piece| !piece.is_empty())
                    .collect(),
            ),
            Vec::new(),
            InBuffer::new(MIN_READ_BUFFER),
        )
    }

    /// Everything read until the end or an error.
    async fn read_all<R: AsyncRead + Unpin>(read: &mut R) -> (Vec<u8>, io::Result<usize>) {
        let mut bytes = Vec::new();
        let result = read.read_to_end(&mut bytes).await;
        (bytes, result)
    }

    /// The frames the bench wrote, each `(opcode, unmasked payload)`.
    fn sent(writer: &FrameWriter<Vec<u8>>) -> Vec<(u8, Vec<u8>)> {
        let mut bytes = lock(&writer.writer).io.clone();
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            assert_eq!(bytes[1] & 0x80, 0x80, "a client's frame is masked");
            let mut unmasked = bytes.clone();
            unmasked[1] &= 0x7F;
            let header = ws_frame::parse(&unmasked).unwrap().unwrap();
            let key: [u8; 4] = bytes[header.len..header.len + 4].try_into().unwrap();
            let start = header.len + 4;
            let end = start + usize::try_from(header.payload).unwrap();
            let mut payload = bytes[start..end].to_vec();
            ws_frame::mask(&mut payload, key);
            frames.push((header.opcode, payload));
            bytes.drain(..end);
        }
        frames
    }

    #[tokio::test]
    async fn payloads_of_7_16_and_64_bit_lengths_are_read_in_order() {
        let frames = [
            chinwag(6, 1),
            chinwag(300, 2),
            chinwag(70_000, 3),
            chinwag(0, 4),
        ];
        let mut wire = from_hub(BINARY, &frames[0], false);
        wire.extend(from_hub(BINARY, &frames[1], false));
        wire.extend(from_hub(BINARY, &frames[2], false));
        wire.extend(from_hub(BINARY, &frames[3], true));
        let (mut read, _write) = over(vec![wire]);
        let (bytes, result) = read_all(&mut read).await;
        result.unwrap();
        assert_eq!(bytes, frames.concat());
    }

    #[tokio::test]
    async fn a_stream_split_across_reads_at_every_byte_reads_the_same() {
        let frames = [chinwag(3, 7), chinwag(200, 8)];
        let mut wire = from_hub(BINARY, &frames[0], false);
        wire.extend(from_hub(PING, b"are you there", false));
        wire.extend(from_hub(BINARY, &frames[1], false));
        wire.extend(from_hub(BINARY, &frames[0], true));
        let expected = [&frames[0][..], &frames[1], &frames[0]].concat();
        for at in 0..=wire.len() {
            let (mut read, write) = over(vec![wire[..at].to_vec(), wire[at..].to_vec()]);
            let (bytes, result) = read_all(&mut read).await;
            result.unwrap();
            assert_eq!(bytes, expected, "split at {at}");
            assert_eq!(sent(&write), [(PONG, b"are you there".to_vec())]);
        }
        let one_by_one = wire.iter().map(|&byte| vec![byte]).collect();
        let (mut read, _write) = over(one_by_one);
        assert_eq!(read_all(&mut read).await.0, expected);
    }

    #[tokio::test]
    async fn a_ping_is_answered_with_a_masked_pong_of_its_payload() {
        let mut wire = from_hub(PING, b"\x01\x02\x03", false);
        wire.extend(from_hub(BINARY, &chinwag(1, 9), false));
        let (mut read, write) = over(vec![wire]);
        let (bytes, result) = read_all(&mut read).await;
        result.unwrap();
        assert_eq!(bytes, chinwag(1, 9));
        assert_eq!(sent(&write), [(PONG, vec![1, 2, 3])]);
    }

    #[tokio::test]
    async fn a_close_ends_the_stream_and_is_echoed_once() {
        let mut wire = from_hub(BINARY, &chinwag(2, 5), false);
        wire.extend(from_hub(CLOSE, &1001u16.to_be_bytes(), false));
        wire.extend(from_hub(BINARY, &chinwag(2, 6), false));
        let (mut read, mut write) = over(vec![wire]);
        let (bytes, result) = read_all(&mut read).await;
        result.unwrap();
        assert_eq!(bytes, chinwag(2, 5));
        write.shutdown().await.unwrap();
        assert_eq!(sent(&write), [(CLOSE, 1001u16.to_be_bytes().to_vec())]);
    }

    #[tokio::test]
    async fn what_the_hub_does_not_send_ends_in_an_error_after_what_came_before() {
        let good = chinwag(4, 1);
        let mut masked = from_hub(BINARY, &good, false);
        masked[1] |= 0x80;
        let mut not_one_frame = chinwag(4, 1);
        not_one_frame.push(0);
        for (bad, kind) in [
            (from_hub(0x1, b"text", false), io::ErrorKind::InvalidData),
            (masked, io::ErrorKind::InvalidData),
            (
                from_hub(BINARY, &[0, 0, 0], false),
                io::ErrorKind::InvalidData,
            ),
            (
                from_hub(BINARY, &not_one_frame, false),
                io::ErrorKind::InvalidData,
            ),
            (
                from_hub(BINARY, &good, false)[..5].to_vec(),
                io::ErrorKind::UnexpectedEof,
            ),
        ] {
            let mut wire = from_hub(BINARY, &good, false);
            wire.extend(&bad);
            let (mut read, _write) = over(vec![wire]);
            let (bytes, result) = read_all(&mut read).await;
            assert_eq!(bytes, good, "{bad:?}");
            assert_eq!(result.unwrap_err().kind(), kind, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn written_frames_go_out_as_one_masked_binary_frame_each() {
        let frames = [chinwag(1, 1), chinwag(130, 2), chinwag(0, 3)];
        let bytes = frames.concat();
        let (_read, mut write) = over(Vec::new());
        // Cut anywhere: a frame goes once it is whole.
        write.write_all(&bytes[..2]).await.unwrap();
        write.write_all(&bytes[2..50]).await.unwrap();
        write.write_all(&bytes[50..]).await.unwrap();
        write.flush().await.unwrap();
        let expected: Vec<_> = frames.iter().map(|frame| (BINARY, frame.clone())).collect();
        assert_eq!(sent(&write), expected);
        write.shutdown().await.unwrap();
        assert_eq!(sent(&write).last(), Some(&(CLOSE, NORMAL_CLOSURE.to_vec())));
    }

    #[test]
    fn the_response_must_accept_the_key_and_the_subprotocol() {
        let key = generate_key();
        let accept = derive_accept_key(key.as_bytes());
        let response = |status: &str, accept: &str, protocol: &str| {
            format!(
                "HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
            )
        };
        let good = response("101 Switching Protocols", &accept, SUBPROTOCOL);
        let mut with_a_frame = good.clone().into_bytes();
        with_a_frame.extend(from_hub(BINARY, &chinwag(1, 1), false));
        assert_eq!(parse_response(&with_a_frame, &key), Ok(Some(good.len())));
        assert_eq!(
            parse_response(&good.as_bytes()[..good.len() - 1], &key),
            Ok(None)
        );
        for bad in [
            response("400 Bad Request", &accept, SUBPROTOCOL),
            response("101 Switching Protocols", "bm90IHRoZSBrZXk=", SUBPROTOCOL),
            response("101 Switching Protocols", &accept, "chinwag.v2"),
        ] {
            assert!(parse_response(bad.as_bytes(), &key).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_frame_is_its_prefix_and_the_bytes_it_announces() {
        assert_eq!(frame_len(&[0, 0, 0, 1, 3]), Some(5));
        assert_eq!(frame_len(&[0, 0, 0, 0]), Some(4));
        assert_eq!(frame_len(&[0, 0, 1, 0]), Some(260));
        assert_eq!(frame_len(&[0, 0, 0]), None);
        assert_eq!(frame_len(&[]), None);
    }

    #[test]
    fn the_endpoint_is_the_servers_ws_path() {
        let plain = Endpoint::new("127.0.0.1:2450", false).unwrap();
        assert_eq!(plain.uri.to_string(), "ws://127.0.0.1:2450/ws");
        let tls = Endpoint::new("chat.example.org:2450", true).unwrap();
        assert_eq!(tls.uri.to_string(), "wss://chat.example.org:2450/ws");
        let v6 = Endpoint::new("[::1]:2450", false).unwrap();
        assert_eq!(v6.uri.to_string(), "ws://[::1]:2450/ws");
        assert!(Endpoint::new("not a host", false).is_err());
    }
}
