//! A client that speaks raw frames, over any byte stream.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use chinwag_hub::{Front, Hub, Split};
use chinwag_protocol::{
    Ack, ClientCodec, ClientFrame, Code, ErrorFrame, Message, ProtocolError, Recipients,
    ServerFrame, Welcome,
};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::Framed;

use crate::frames::{hello, hello_bytes, hello_with_options, send_frame, users};
use crate::wait::{PATIENCE, guard};

/// The next frame on a framed client connection; `None` once the hub
/// closed it (or sent what does not decode).
///
/// # Panics
/// If nothing arrives within [`PATIENCE`].
pub async fn next<S>(client: &mut Framed<S, ClientCodec>) -> Option<ServerFrame>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match guard(PATIENCE, "the next frame", client.next()).await {
        Some(Ok(frame)) => Some(frame),
        Some(Err(_)) | None => None,
    }
}

/// Reads until the connection closes; returns the error codes seen on the
/// way.
///
/// # Panics
/// If a frame is not in time (see [`next`]).
pub async fn codes_until_closed<S>(client: &mut Framed<S, ClientCodec>) -> Vec<Code>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut codes = Vec::new();
    while let Some(frame) = next(client).await {
        if let ServerFrame::Error(e) = frame {
            codes.push(e.code);
        }
    }
    codes
}

/// A client that speaks raw frames over `S`: a TCP socket (the default) or
/// one end of an in-memory pipe (see [`PipeHub`](crate::PipeHub)).
///
/// Every read is bounded by its patience ([`PATIENCE`] unless set with
/// [`with_patience`](Self::with_patience)) and panics when it runs out.
/// Methods panic when the connection fails where the test expects it not
/// to; those that expect it to end say so.
#[derive(Debug)]
pub struct RawClient<S = TcpStream> {
    /// The framed stream, for tests that split it or write around it.
    pub framed: Framed<S, ClientCodec>,
    next_id: u64,
    next_token: u64,
    patience: Duration,
}

impl RawClient<TcpStream> {
    /// Connects to `addr` over TCP (no Nagle delay).
    ///
    /// # Panics
    /// If the connection fails.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connecting");
        stream.set_nodelay(true).expect("setting TCP_NODELAY");
        Self::new(stream)
    }

    /// Connects with a small kernel receive buffer, so that a client that
    /// stops reading pushes back on the hub after little data.
    ///
    /// # Panics
    /// If the connection fails.
    pub async fn connect_with_recv_buffer(addr: SocketAddr, bytes: u32) -> Self {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .set_recv_buffer_size(bytes)
            .expect("setting SO_RCVBUF");
        let stream = socket.connect(addr).await.expect("connecting");
        stream.set_nodelay(true).expect("setting TCP_NODELAY");
        Self::new(stream)
    }
}

/// How much an in-memory pipe buffers each way unless a test says
/// otherwise: room for a burst of frames, like a socket's buffers.
const PIPE_BUFFER: usize = 64 * 1024;

impl RawClient<DuplexStream> {
    /// A client over a new in-memory pipe whose other end `hub` serves
    /// with the binary front end ([`Hub::serve_connection`]), exactly as
    /// it would an accepted TCP connection.
    ///
    /// # Panics
    /// If the hub refuses the connection (shutdown, or full).
    pub fn pipe(hub: &Hub) -> Self {
        Self::pipe_with_buffer(hub, PIPE_BUFFER)
    }

    /// As [`pipe`](Self::pipe), over a pipe that buffers `bytes` each way:
    /// once the client stops reading, the hub's writes stop after that
    /// many bytes, as they do on a socket whose reader stopped.
    ///
    /// # Panics
    /// If the hub refuses the connection (shutdown, or full).
    pub fn pipe_with_buffer(hub: &Hub, bytes: usize) -> Self {
        let (ours, theirs) = tokio::io::duplex(bytes);
        hub.serve_connection(Split::new(theirs), "pipe", Front::Binary)
            .expect("the hub takes the connection");
        Self::new(ours)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawClient<S> {
    /// A client over `stream`, already connected.
    pub fn new(stream: S) -> Self {
        Self::from_framed(Framed::new(stream, ClientCodec::default()))
    }

    /// Wraps a framed stream again, for example one put back together
    /// after `split`. Client ids start over at 1.
    pub fn from_framed(framed: Framed<S, ClientCodec>) -> Self {
        Self {
            framed,
            next_id: 0,
            next_token: 0,
            patience: PATIENCE,
        }
    }

    /// The same client, waiting up to `patience` for each frame: for tests
    /// on a paused clock whose deadlines are longer than [`PATIENCE`].
    #[must_use]
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// Sends `HELLO` and consumes the `WELCOME`.
    pub async fn registered(mut self, nick: &str) -> Self {
        self.hello(nick).await;
        self.expect_welcome().await;
        self
    }

    /// Sends `HELLO` asking for the options `options`; returns the client
    /// and its `WELCOME`.
    pub async fn registered_with_options(mut self, nick: &str, options: u32) -> (Self, Welcome) {
        self.send(hello_with_options(nick, options)).await;
        let welcome = self.expect_welcome().await;
        (self, welcome)
    }

    /// Sends a frame.
    ///
    /// # Panics
    /// If the write fails.
    pub async fn send(&mut self, frame: ClientFrame) {
        self.framed.send(frame).await.expect("sending a frame");
    }

    /// Writes raw bytes, bypassing the codec.
    ///
    /// # Panics
    /// If the write fails.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.write_raw_lossy(bytes).await.expect("writing bytes");
    }

    /// Writes raw bytes and reports a failed write instead of panicking,
    /// for input after which the hub may close mid-write.
    pub async fn write_raw_lossy(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stream = self.framed.get_mut();
        stream.write_all(bytes).await?;
        stream.flush().await
    }

    /// Sends `HELLO` without options.
    pub async fn hello(&mut self, nick: &str) {
        self.send(hello(nick)).await;
    }

    /// `HELLO` with a nickname that need not be valid UTF-8.
    pub async fn hello_bytes(&mut self, nick: &[u8]) {
        self.send(hello_bytes(nick, None)).await;
    }

    /// Sends `text` to `to` with a fresh client id, which it returns.
    pub async fn send_message(&mut self, to: Recipients, text: &str) -> u64 {
        self.next_id += 1;
        self.send(send_frame(self.next_id, to, text)).await;
        self.next_id
    }

    /// Sends to the named users; returns the client id used.
    pub async fn send_to(&mut self, to: &[&str], text: &str) -> u64 {
        self.send_message(users(to), text).await
    }

    /// Sends to everyone; returns the client id used.
    pub async fn broadcast(&mut self, text: &str) -> u64 {
        self.send_message(Recipients::Everyone, text).await
    }

    /// The next frame; `None` means the hub closed the connection.
    ///
    /// # Panics
    /// If none arrives in time, or what arrives does not decode.
    pub async fn recv(&mut self) -> Option<ServerFrame> {
        let Ok(next) = tokio::time::timeout(self.patience, self.framed.next()).await else {
            panic!("no frame from the hub within {:?}", self.patience);
        };
        match next {
            Some(Ok(frame)) => Some(frame),
            Some(Err(e)) => panic!("decode error from hub: {e}"),
            None => None,
        }
    }

    /// Skips frames until one for which `pick` returns `Some`.
    ///
    /// # Panics
    /// If the connection closes first.
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(ServerFrame) -> Option<T>) -> T {
        loop {
            let frame = self.recv().await.expect("connection closed while waiting");
            if let Some(found) = pick(frame) {
                return found;
            }
        }
    }

    /// The very next frame, which must be a `WELCOME`.
    pub async fn expect_welcome(&mut self) -> Welcome {
        match self.recv().await {
            Some(ServerFrame::Welcome(w)) => w,
            other => panic!("expected WELCOME, got {other:?}"),
        }
    }

    /// The next `MESSAGE`, skipping presence and other frames.
    pub async fn expect_message(&mut self) -> Message {
        self.recv_until(|f| match f {
            ServerFrame::Message(m) => Some(m),
            _ => None,
        })
        .await
    }

    /// The `ACK` for client id `id`, skipping other frames.
    pub async fn expect_ack(&mut self, id: u64) -> Ack {
        self.recv_until(|f| match f {
            ServerFrame::Ack(a) if a.client_id == id => Some(a),
            _ => None,
        })
        .await
    }

    /// Frames up to and including the `ACK` for client id `id`.
    pub async fn frames_until_ack(&mut self, id: u64) -> (Vec<ServerFrame>, Ack) {
        let mut before = Vec::new();
        loop {
            match self.recv().await.expect("connection closed while waiting") {
                ServerFrame::Ack(a) if a.client_id == id => return (before, a),
                other => before.push(other),
            }
        }
    }

    /// The next `ERROR` frame's code, skipping other frames.
    pub async fn expect_error(&mut self) -> Code {
        self.recv_until(|f| match f {
            ServerFrame::Error(e) => Some(e.code),
            _ => None,
        })
        .await
    }

    /// The very next frame, which must be an `ERROR`.
    pub async fn expect_next_error(&mut self) -> ErrorFrame {
        match self.recv().await {
            Some(ServerFrame::Error(e)) => e,
            other => panic!("expected ERROR, got {other:?}"),
        }
    }

    /// The next `PRESENCE` event as (nickname, online), skipping other
    /// frames.
    pub async fn expect_presence(&mut self) -> (String, bool) {
        self.recv_until(|f| match f {
            ServerFrame::Presence(p) => Some((p.nick, p.online)),
            _ => None,
        })
        .await
    }

    /// Sends `PING` with a fresh token and returns every frame that arrived
    /// before the matching `PONG`. The hub queues the `PONG` behind whatever
    /// it had already queued for this connection, so once a sender has its
    /// `ACK`, a recipient's `sync` returns every copy of that message it
    /// will ever get.
    pub async fn sync(&mut self) -> Vec<ServerFrame> {
        self.next_token += 1;
        let token = 0x5eed_0000_0000_0000 | self.next_token;
        self.send(ClientFrame::Ping(token)).await;
        let mut before = Vec::new();
        loop {
            match self.recv().await.expect("connection closed while waiting") {
                ServerFrame::Pong(t) if t == token => return before,
                other => before.push(other),
            }
        }
    }

    /// `WHO`, answered with the roster (other frames skipped).
    pub async fn who(&mut self) -> Vec<String> {
        self.send(ClientFrame::Who).await;
        self.recv_until(|f| match f {
            ServerFrame::Roster(r) => Some(r),
            _ => None,
        })
        .await
    }

    /// Says `QUIT` and waits for the hub to close the connection.
    pub async fn quit(&mut self) {
        self.send(ClientFrame::Quit).await;
        self.expect_closed().await;
    }

    /// Asserts the hub closes the connection (after any frames still
    /// queued, which are skipped).
    pub async fn expect_closed(&mut self) {
        loop {
            let Ok(next) = tokio::time::timeout(self.patience, self.framed.next()).await else {
                panic!("connection still open after {:?}", self.patience);
            };
            if !matches!(next, Some(Ok(_))) {
                return;
            }
        }
    }

    /// Asserts that the connection ends next: no further frame, just EOF
    /// (or a reset).
    pub async fn expect_eof(&mut self) {
        let Ok(next) = tokio::time::timeout(self.patience, self.framed.next()).await else {
            panic!("connection still open after {:?}", self.patience);
        };
        match next {
            None | Some(Err(ProtocolError::Io(_))) => {}
            Some(other) => panic!("expected the connection to end, got {other:?}"),
        }
    }

    /// Asserts the hub sends `ERROR code` (skipping earlier frames) and then
    /// closes the connection with nothing after it.
    pub async fn expect_fatal(&mut self, code: Code) {
        let got = self.expect_error().await;
        assert_eq!(got, code, "wrong fatal error code");
        self.expect_eof().await;
    }

    /// Reads raw bytes until EOF (or reset), for at most its patience;
    /// returns them.
    pub async fn read_to_close(self) -> BytesMut {
        let mut parts = self.framed.into_parts();
        let mut buf = parts.read_buf;
        let _ = tokio::time::timeout(self.patience, async {
            loop {
                match parts.io.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        buf
    }

    /// Like [`read_to_close`](Self::read_to_close), but fails the test if
    /// the hub has not closed the connection within `limit`. Returns how
    /// many bytes were drained.
    pub async fn drain_until_closed(self, limit: Duration) -> usize {
        let mut parts = self.framed.into_parts();
        let mut total = parts.read_buf.len();
        let mut scratch = vec![0u8; 64 * 1024];
        guard(limit, "the hub closing the connection", async {
            loop {
                match parts.io.read(&mut scratch).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        })
        .await;
        total
    }
}
