//! A WebSocket as the byte stream the hub's connection code reads and
//! writes: the same reader, writer, limits and deadlines as a TCP
//! connection, with the WebSocket only the way the bytes travel.
//!
//! ```text
//!  peer's binary messages          the hub's reader (FramedRead)
//!  [len|frame] [len|frame] ... ->  len|frame len|frame ...   one byte stream
//!
//!  the hub's writer's batches       peer's binary messages
//!  len|frame len|fr ame len|... ->  [len|frame] [len|frame] [len|...   one a frame
//! ```
//!
//! - **In**: each binary message must hold exactly one protocol frame, its
//!   4-byte length prefix equal to the bytes after it. Such a message is
//!   handed to the hub's reader as it is, with every message after it that
//!   has already arrived, as far as the reader's buffer holds them (so the
//!   `SEND`s a peer wrote in one batch reach the reader together, as they
//!   do from one TCP read, and go to the hub together), and the reader
//!   decodes them as it would from TCP: a payload over the limit is `FRAME_TOO_LARGE`, a bad
//!   one `MALFORMED_FRAME`. A message that is not one frame (two, half of
//!   one, fewer than 4 bytes) and a text message are malformed input:
//!   the reader is handed, instead, the 4 bytes `00 00 00 00` (a frame
//!   with an empty payload, malformed by the protocol's rule 1), so the
//!   hub answers `ERROR 1 MALFORMED_FRAME` and closes, through the same
//!   code as for TCP. A message over the WebSocket limit (the protocol's
//!   frame limit and its prefix), which tungstenite refuses from its
//!   header before buffering it, is handed over as the prefix
//!   `ff ff ff ff`: `ERROR 2 FRAME_TOO_LARGE`. After any of these the
//!   reader is given the raw socket's bytes, which the hub's linger
//!   discards (so that its last frames are not lost to a reset, as on TCP).
//! - **Out**: the hub's writer writes batches of frames, cut anywhere. The
//!   bytes are gathered until a frame is whole and each whole frame goes
//!   out as one binary message. A write is taken only once every whole
//!   frame before it has been handed to the WebSocket, and the WebSocket
//!   takes one only when its own buffer has room: a peer that stops
//!   reading stops the hub's writes, which its write deadline then cuts
//!   as a slow consumer, exactly as on TCP. What is held here is at most
//!   the bytes of one write and one partial frame.
//! - **Close**: the hub's shutdown of the write side sends a WebSocket
//!   close: code 1000, or the misuse's (1003 for text, 1007 for a message
//!   that is not one frame, 1009 for one too large).
//! - WebSocket pings are answered by tungstenite; the protocol's own
//!   `PING`/`PONG` frames remain the liveness check.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use chinwag_hub::protocol::PREFIX_LEN;
use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

/// How long the WebSocket close may take to go out once the hub has
/// shut its side: the close of a TCP socket never waits for its peer,
/// and neither does the connection's task here for long.
const CLOSE_DEADLINE: Duration = Duration::from_secs(1);

/// What a peer did that the WebSocket binding refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misuse {
    /// A text message: the protocol is binary.
    Text,
    /// A binary message that is not exactly one frame.
    NotOneFrame,
    /// A message over the size limit.
    TooLarge,
}

impl Misuse {
    /// What the hub's reader is handed in its place: bytes its decoder
    /// refuses with the protocol's error for the misuse.
    fn stand_in(self) -> Bytes {
        match self {
            // An empty payload: MALFORMED_FRAME.
            Self::Text | Self::NotOneFrame => Bytes::from_static(&[0; PREFIX_LEN]),
            // A prefix over any limit: FRAME_TOO_LARGE.
            Self::TooLarge => Bytes::from_static(&[0xff; PREFIX_LEN]),
        }
    }

    /// The WebSocket close that ends the connection.
    fn close(self) -> CloseFrame {
        let (code, reason) = match self {
            Self::Text => (CloseCode::Unsupported, "text message: chinwag.v1 is binary"),
            Self::NotOneFrame => (
                CloseCode::Invalid,
                "malformed frame: a binary message holds exactly one frame",
            ),
            Self::TooLarge => (CloseCode::Size, "frame too large"),
        };
        CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }
    }
}

/// The length of the whole frame at the start of `bytes` (its prefix
/// included), if its prefix is there.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let prefix: [u8; PREFIX_LEN] = bytes.get(..PREFIX_LEN)?.try_into().ok()?;
    let payload = usize::try_from(u32::from_be_bytes(prefix)).ok()?;
    payload.checked_add(PREFIX_LEN)
}

/// Whether a message is exactly one frame: its prefix says how many bytes
/// follow, and exactly that many do.
fn is_one_frame(message: &[u8]) -> bool {
    frame_len(message) == Some(message.len())
}

/// A WebSocket (of the `chinwag.v1` subprotocol) as a byte stream for the
/// hub: wrap it in [`Split`](chinwag_hub::Split) and hand it to
/// [`Hub::serve_connection`](chinwag_hub::Hub::serve_connection) with
/// [`Front::Binary`](chinwag_hub::Front::Binary). See the module's
/// documentation for what becomes of each kind of message.
pub struct WsBytes<T> {
    ws: WebSocketStream<T>,
    /// The rest of the message the hub's reader is taking, or the stand-in
    /// for a misuse.
    incoming: Bytes,
    /// No more messages: the peer closed, or misused the connection (then
    /// its raw bytes are read, for the hub's linger to discard).
    read_done: bool,
    /// The misuse that ended reading, for the close code.
    misuse: Option<Misuse>,
    /// An error met while the same read had handed over bytes already:
    /// the next read returns it, so those bytes are not lost.
    error: Option<io::Error>,
    /// Bytes from the hub's writer not yet sent: whole frames waiting for
    /// the WebSocket to take them, then at most one partial frame.
    outgoing: BytesMut,
    /// The close has been handed to the WebSocket.
    close_sent: bool,
    /// When the close must have gone out by.
    close_deadline: Option<Pin<Box<Sleep>>>,
}

impl<T> fmt::Debug for WsBytes<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsBytes")
            .field("read_done", &self.read_done)
            .field("misuse", &self.misuse)
            .field("outgoing", &self.outgoing.len())
            .finish_non_exhaustive()
    }
}

impl<T> WsBytes<T> {
    /// Wraps `ws`, whose handshake is done.
    pub fn new(ws: WebSocketStream<T>) -> Self {
        Self {
            ws,
            incoming: Bytes::new(),
            read_done: false,
            misuse: None,
            error: None,
            outgoing: BytesMut::new(),
            close_sent: false,
            close_deadline: None,
        }
    }
}

/// A WebSocket error as an I/O error.
fn io_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(error) => error,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> WsBytes<T> {
    /// Ends reading for `misuse`: the reader gets its stand-in next.
    fn refuse(&mut self, misuse: Misuse) {
        self.misuse = Some(misuse);
        self.incoming = misuse.stand_in();
        self.read_done = true;
    }

    /// Hands every whole frame in `outgoing` to the WebSocket, one binary
    /// message each; pending while it has no room.
    fn poll_send_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(len) = frame_len(&self.outgoing).filter(|&len| len <= self.outgoing.len()) {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io_error)?;
            let frame = self.outgoing.split_to(len).freeze();
            Pin::new(&mut self.ws)
                .start_send(Message::Binary(frame))
                .map_err(io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsBytes<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let start = buf.filled().len();
        loop {
            if !this.incoming.is_empty() {
                let n = this.incoming.len().min(buf.remaining());
                buf.put_slice(&this.incoming[..n]);
                this.incoming.advance(n);
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            let read_some = buf.filled().len() > start;
            if let Some(error) = this.error.take() {
                if read_some {
                    this.error = Some(error);
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(error));
            }
            if this.read_done {
                if this.misuse.is_some() && !read_some {
                    // What the peer sends after its misuse, raw, for the
                    // hub's linger to discard.
                    return Pin::new(this.ws.get_mut()).poll_read(cx, buf);
                }
                return Poll::Ready(Ok(()));
            }
            let next = match Pin::new(&mut this.ws).poll_next(cx) {
                // What was read already goes now; the waker is registered
                // for the rest.
                Poll::Pending if read_some => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => next,
            };
            match next {
                Some(Ok(Message::Binary(message))) => {
                    if is_one_frame(&message) {
                        this.incoming = message;
                    } else {
                        this.refuse(Misuse::NotOneFrame);
                    }
                }
                Some(Ok(Message::Text(_))) => this.refuse(Misuse::Text),
                // Answered by tungstenite, or nothing to answer.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                // The peer's close: the end of its stream (tungstenite
                // answers it), after what was read.
                Some(Ok(Message::Close(_))) | None => this.read_done = true,
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                    this.refuse(Misuse::TooLarge);
                }
                Some(Err(error)) => {
                    this.read_done = true;
                    this.error = Some(io_error(error));
                }
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsBytes<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Nothing more is taken until what was taken before is out of
        // our hands: this is where a peer that does not read pushes back.
        ready!(this.poll_send_frames(cx))?;
        if this.close_sent {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        this.outgoing.extend_from_slice(buf);
        // Whole frames go at once, as far as the WebSocket takes them; the
        // rest waits for the next write or flush.
        if let Poll::Ready(Err(error)) = this.poll_send_frames(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_frames(cx))?;
        Pin::new(&mut this.ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let deadline = this
            .close_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(CLOSE_DEADLINE)));
        if deadline.as_mut().poll(cx).is_ready() {
            // The peer takes nothing: it gets no more.
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_send_frames(cx))?;
        if !this.close_sent {
            ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(io_error)?;
            let close = this.misuse.map_or(
                CloseFrame {
                    code: CloseCode::Normal,
                    reason: Utf8Bytes::from_static(""),
                },
                Misuse::close,
            );
            // Refused when the peer closed first: its close was answered.
            let _ = Pin::new(&mut this.ws).start_send(Message::Close(Some(close)));
            this.close_sent = true;
        }
        match ready!(Pin::new(&mut this.ws).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(error) => Poll::Ready(Err(io_error(error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_is_its_prefix_and_exactly_the_bytes_it_announces() {
        assert!(is_one_frame(&[0, 0, 0, 1, 3]));
        assert!(is_one_frame(&[0, 0, 0, 0]));
        // Half a frame, a frame and a byte, two frames, no prefix.
        assert!(!is_one_frame(&[0, 0, 0, 2, 3]));
        assert!(!is_one_frame(&[0, 0, 0, 1, 3, 3]));
        assert!(!is_one_frame(&[0, 0, 0, 1, 3, 0, 0, 0, 1, 3]));
        assert!(!is_one_frame(&[0, 0, 0]));
        assert!(!is_one_frame(&[]));
        assert!(!is_one_frame(&[0xff, 0xff, 0xff, 0xff]));
    }

    #[test]
    fn the_stand_ins_are_what_the_decoder_refuses_with_each_code() {
        use chinwag_hub::protocol::{ClientFrameOf, Code, FrameCodec, SendPayload};
        use tokio_util::codec::Decoder;
        for (misuse, code) in [
            (Misuse::Text, Code::MALFORMED_FRAME),
            (Misuse::NotOneFrame, Code::MALFORMED_FRAME),
            (Misuse::TooLarge, Code::FRAME_TOO_LARGE),
        ] {
            // As the hub's reader decodes (the limit after registration).
            let mut codec = FrameCodec::<ClientFrameOf<SendPayload>>::new(1 << 20);
            let mut bytes = BytesMut::from(&misuse.stand_in()[..]);
            match codec.decode(&mut bytes) {
                Err(error) => assert_eq!(error.code(), code, "{misuse:?}: {error}"),
                Ok(frame) => panic!("{misuse:?}: decoded {frame:?}"),
            }
        }
    }
}
