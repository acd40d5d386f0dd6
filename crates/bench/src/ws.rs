//! The bench's connections over WebSocket (`chinwag bench --ws`): the
//! handshake to the hub's web gateway (`/ws`, subprotocol `chinwag.v1`,
//! `docs/protocol.md` section 1.2), and the two halves of a WebSocket as
//! the byte stream the rest of the bench reads and writes, as the hub's
//! gateway does on its side (`crates/web/src/ws_bytes.rs`).
//!
//! ```text
//!  the bench's write batches         the hub's binary messages
//!  len|frame len|fr ame len|... ->   [len|frame] [len|frame] [len|...   one a frame
//!
//!  the hub's binary messages         the bench's decoder (FramedRead)
//!  [len|frame] [len|frame] ...  ->   len|frame len|frame ...            one byte stream
//! ```
//!
//! - **Out**: written bytes are cut at frame boundaries by their 4-byte
//!   big-endian length prefix; each whole frame is handed to the WebSocket
//!   as one binary message, and the WebSocket writes what it was handed
//!   when flushed (the bench flushes after each batch), so a batch of
//!   frames costs one socket write, as on TCP. A write is taken only once
//!   every whole frame before it has been handed over: a hub that stops
//!   reading stops the bench's writes, as on TCP. What is held here is the
//!   bytes of one write and at most one partial frame.
//! - **In**: the binary messages are handed to the decoder one after the
//!   other, as many as fit in its buffer in one read. A message that is
//!   not exactly one frame, or a text message, is a broken binding: an
//!   error (`InvalidData`), which the receiver reports.
//! - **Close**: the hub's WebSocket close (or the socket's end) is the end
//!   of the stream; shutting the write half down sends the bench's close.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::{SplitSink, SplitStream};
use futures::{Sink, Stream as _, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::error::SetupError;

/// The WebSocket subprotocol of the chinwag protocol, which the hub
/// requires (`docs/protocol.md` section 1.2).
const SUBPROTOCOL: &str = "chinwag.v1";

/// The gateway's WebSocket endpoint.
const PATH: &str = "/ws";

/// The 4-byte big-endian length prefix of every frame.
const PREFIX_LEN: usize = 4;

/// The smallest read buffer the WebSocket is given: room for a frame
/// header and a small message (tungstenite grows it for larger ones).
const MIN_READ_BUFFER: usize = 512;

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

/// The stream a WebSocket runs over: plain TCP, or TLS for `wss:`.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
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

impl AsyncWrite for Stream {
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

/// A WebSocket error as an I/O error.
fn io_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(error) => error,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

/// Upgrades `stream` (connected, over TLS if the run is) to a WebSocket
/// of the chinwag subprotocol at `endpoint`, reading with a buffer of
/// `read_buffer` bytes, and splits it.
pub(crate) async fn handshake(
    stream: Stream,
    endpoint: &Endpoint,
    read_buffer: usize,
) -> io::Result<(ReadHalf, WriteHalf)> {
    let mut request = endpoint
        .uri
        .clone()
        .into_client_request()
        .map_err(io_error)?;
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    // The read buffer is allocated up front: as small as the bench's own
    // for the thousands of idle connections of `conns`. Writes gather
    // until flushed (the default write buffer, 128 KiB, is above the
    // sender's batches).
    let config = WebSocketConfig::default().read_buffer_size(read_buffer.max(MIN_READ_BUFFER));
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .map_err(|error| {
                io::Error::other(format!(
                    "WebSocket handshake with {} failed (is --server the hub's --web-listen \
                     port?): {error}",
                    endpoint.uri
                ))
            })?;
    let (sink, stream) = ws.split();
    Ok((
        ReadHalf {
            stream,
            incoming: Bytes::new(),
            ended: false,
            error: None,
        },
        WriteHalf {
            sink,
            outgoing: BytesMut::new(),
        },
    ))
}

/// The length of the whole frame at the start of `bytes` (its prefix
/// included), if its prefix is there.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let prefix: [u8; PREFIX_LEN] = bytes.get(..PREFIX_LEN)?.try_into().ok()?;
    let payload = usize::try_from(u32::from_be_bytes(prefix)).ok()?;
    payload.checked_add(PREFIX_LEN)
}

/// A WebSocket's read half as a byte stream: its binary messages, one
/// after the other.
#[derive(Debug)]
pub(crate) struct ReadHalf {
    stream: SplitStream<WebSocketStream<Stream>>,
    /// What is left of the message being read.
    incoming: Bytes,
    /// The hub closed: no more messages.
    ended: bool,
    /// An error met after some bytes were read in the same call: returned
    /// by the next read, so that the bytes before it are not lost.
    error: Option<io::Error>,
}

impl AsyncRead for ReadHalf {
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
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            let next = match Pin::new(&mut this.stream).poll_next(cx) {
                // Whatever was read already is handed over now; the waker
                // is registered for the rest.
                Poll::Pending if read_some => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => next,
            };
            match next {
                Some(Ok(Message::Binary(message))) => {
                    if frame_len(&message) == Some(message.len()) {
                        this.incoming = message;
                    } else {
                        this.error = Some(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "a WebSocket message of {} bytes that is not one frame",
                                message.len()
                            ),
                        ));
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    this.error = Some(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a WebSocket text message (chinwag.v1 is binary)",
                    ));
                }
                // Pings are answered by tungstenite.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_)) | Err(WsError::ConnectionClosed)) | None => {
                    this.ended = true;
                }
                Some(Err(error)) => this.error = Some(io_error(error)),
            }
        }
    }
}

/// A WebSocket's write half as a byte stream: each whole frame written
/// goes out as one binary message.
#[derive(Debug)]
pub(crate) struct WriteHalf {
    sink: SplitSink<WebSocketStream<Stream>, Message>,
    /// Bytes written not yet handed to the WebSocket: whole frames waiting
    /// for it to take them, then at most one partial frame.
    outgoing: BytesMut,
}

impl WriteHalf {
    /// Hands every whole frame in `outgoing` to the WebSocket, one binary
    /// message each; pending while it has no room.
    fn poll_send_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(len) = frame_len(&self.outgoing).filter(|&len| len <= self.outgoing.len()) {
            ready!(Pin::new(&mut self.sink).poll_ready(cx)).map_err(io_error)?;
            // Shares the buffer's allocation: no copy here (the WebSocket
            // copies it once, masked, into its own write buffer).
            let frame = self.outgoing.split_to(len).freeze();
            Pin::new(&mut self.sink)
                .start_send(Message::Binary(frame))
                .map_err(io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Nothing more is taken until what was taken before is out of our
        // hands: this is where a hub that does not read pushes back.
        ready!(this.poll_send_frames(cx))?;
        this.outgoing.extend_from_slice(buf);
        // Whole frames go at once, as far as the WebSocket takes them; the
        // rest waits for the next write or the flush.
        if let Poll::Ready(Err(error)) = this.poll_send_frames(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_frames(cx))?;
        Pin::new(&mut this.sink).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_frames(cx))?;
        match ready!(Pin::new(&mut this.sink).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(error) => Poll::Ready(Err(io_error(error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
