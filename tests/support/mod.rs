//! Shared harness for the end-to-end tests: a hub on an ephemeral port and a
//! raw protocol client over a real socket.
//!
//! Every wait is bounded by [`PATIENCE`] so that a hub that hangs fails the
//! test instead of stalling the suite; no test asserts how fast anything is.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use chinwag::hub::{Hub, HubConfig};
use chinwag::protocol::{
    Ack, ClientCodec, ClientFrame, Code, ErrorFrame, Hello, Message, PROTOCOL_VERSION,
    ProtocolError, Recipients, SendFrame, ServerFrame, Welcome, encode_frame,
};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

/// How long a test waits for a frame it expects before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Fails the test if `future` does not finish within `limit`; `what` names it.
pub async fn guard<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    let Ok(output) = tokio::time::timeout(limit, future).await else {
        panic!("{what}: not done within {limit:?}");
    };
    output
}

pub struct TestHub {
    pub hub: Hub,
    pub addr: SocketAddr,
    pub server: JoinHandle<std::io::Result<()>>,
}

impl TestHub {
    pub async fn start() -> Self {
        Self::with_config(HubConfig::default()).await
    }

    pub async fn with_config(config: HubConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hub = Hub::start(config);
        let server = tokio::spawn({
            let hub = hub.clone();
            async move { hub.serve(listener).await }
        });
        Self { hub, addr, server }
    }

    pub async fn connect(&self) -> RawClient {
        RawClient::connect(self.addr).await
    }

    /// Connects and registers; returns the client with its WELCOME consumed.
    pub async fn register(&self, nick: &str) -> RawClient {
        let mut client = self.connect().await;
        client.hello(nick).await;
        client.expect_welcome().await;
        client
    }

    /// Shuts the hub down, failing the test if that does not finish in
    /// time, and checks that `serve` returned `Ok`.
    pub async fn shutdown(self) {
        guard(PATIENCE, "hub shutdown", self.hub.shutdown()).await;
        let served = guard(PATIENCE, "serve() returning", self.server).await;
        served
            .expect("the serve task panicked")
            .expect("serve() failed");
    }
}

/// Registers one client per name, in order, and consumes the PRESENCE each
/// later arrival causes at the earlier ones, so every client's next frame is
/// fresh.
pub async fn register_all<const N: usize>(hub: &TestHub, names: [&str; N]) -> [RawClient; N] {
    let mut clients = Vec::with_capacity(N);
    for name in names {
        clients.push(hub.register(name).await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        for joined in &names[i + 1..] {
            assert_eq!(client.expect_presence().await, ((*joined).to_owned(), true));
        }
    }
    clients.try_into().ok().unwrap()
}

/// Named recipients.
pub fn users(names: &[&str]) -> Recipients {
    Recipients::Users(names.iter().map(|s| (*s).to_owned()).collect())
}

/// A frame as it goes on the wire: the length prefix, then `payload`.
pub fn raw_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// A client frame, encoded with its length prefix.
pub fn encode(frame: &ClientFrame) -> Vec<u8> {
    encode_frame(frame, usize::MAX).unwrap().to_vec()
}

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A tiny deterministic generator (xorshift64), so that "random" input is
/// the same on every run.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// A client that speaks raw frames over a real socket.
pub struct RawClient {
    pub framed: Framed<TcpStream, ClientCodec>,
    next_id: u64,
    next_token: u64,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::from_stream(stream)
    }

    /// Connects with a small kernel receive buffer, so that a client that
    /// stops reading pushes back on the hub after little data.
    pub async fn connect_with_recv_buffer(addr: SocketAddr, bytes: u32) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        Self::from_stream(stream)
    }

    fn from_stream(stream: TcpStream) -> Self {
        stream.set_nodelay(true).unwrap();
        Self::from_framed(Framed::new(stream, ClientCodec::default()))
    }

    /// Wraps a framed stream again, for example one put back together
    /// after `split`. Client ids start over at 1.
    pub fn from_framed(framed: Framed<TcpStream, ClientCodec>) -> Self {
        Self {
            framed,
            next_id: 0,
            next_token: 0,
        }
    }

    pub async fn send(&mut self, frame: ClientFrame) {
        self.framed.send(frame).await.unwrap();
    }

    /// Writes raw bytes, bypassing the codec.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let stream = self.framed.get_mut();
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
    }

    /// Writes raw bytes and reports a failed write instead of panicking,
    /// for input after which the hub may close mid-write.
    pub async fn write_raw_lossy(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stream = self.framed.get_mut();
        stream.write_all(bytes).await?;
        stream.flush().await
    }

    pub async fn hello(&mut self, nick: &str) {
        self.hello_bytes(nick.as_bytes()).await;
    }

    /// `HELLO` with a nickname that need not be valid UTF-8.
    pub async fn hello_bytes(&mut self, nick: &[u8]) {
        self.send(ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            nick: nick.to_vec().into(),
            options: None,
        }))
        .await;
    }

    /// Sends `text` to `to` with a fresh client id, which it returns.
    pub async fn send_message(&mut self, to: Recipients, text: &str) -> u64 {
        self.next_id += 1;
        self.send(ClientFrame::Send(SendFrame {
            id: self.next_id,
            to,
            text: text.to_owned(),
        }))
        .await;
        self.next_id
    }

    /// Sends to the named users; returns the client id used.
    pub async fn send_to(&mut self, to: &[&str], text: &str) -> u64 {
        self.send_message(users(to), text).await
    }

    pub async fn broadcast(&mut self, text: &str) -> u64 {
        self.send_message(Recipients::Everyone, text).await
    }

    /// The next frame; panics if none arrives in time. `None` means the hub
    /// closed the connection.
    pub async fn recv(&mut self) -> Option<ServerFrame> {
        let Ok(next) = tokio::time::timeout(PATIENCE, self.framed.next()).await else {
            panic!("no frame from the hub within {PATIENCE:?}");
        };
        match next {
            Some(Ok(frame)) => Some(frame),
            Some(Err(e)) => panic!("decode error from hub: {e}"),
            None => None,
        }
    }

    /// Skips frames until one for which `pick` returns `Some`.
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(ServerFrame) -> Option<T>) -> T {
        loop {
            let frame = self.recv().await.expect("connection closed while waiting");
            if let Some(found) = pick(frame) {
                return found;
            }
        }
    }

    pub async fn expect_welcome(&mut self) -> Welcome {
        match self.recv().await {
            Some(ServerFrame::Welcome(w)) => w,
            other => panic!("expected WELCOME, got {other:?}"),
        }
    }

    /// The next MESSAGE, skipping presence and other frames.
    pub async fn expect_message(&mut self) -> Message {
        self.recv_until(|f| match f {
            ServerFrame::Message(m) => Some(m),
            _ => None,
        })
        .await
    }

    /// The ACK for client id `id`, skipping other frames.
    pub async fn expect_ack(&mut self, id: u64) -> Ack {
        self.recv_until(|f| match f {
            ServerFrame::Ack(a) if a.client_id == id => Some(a),
            _ => None,
        })
        .await
    }

    /// Frames up to and including the ACK for client id `id`.
    pub async fn frames_until_ack(&mut self, id: u64) -> (Vec<ServerFrame>, Ack) {
        let mut before = Vec::new();
        loop {
            match self.recv().await.expect("connection closed while waiting") {
                ServerFrame::Ack(a) if a.client_id == id => return (before, a),
                other => before.push(other),
            }
        }
    }

    /// The next ERROR frame's code, skipping other frames.
    pub async fn expect_error(&mut self) -> Code {
        self.recv_until(|f| match f {
            ServerFrame::Error(e) => Some(e.code),
            _ => None,
        })
        .await
    }

    /// The very next frame, which must be an ERROR.
    pub async fn expect_next_error(&mut self) -> ErrorFrame {
        match self.recv().await {
            Some(ServerFrame::Error(e)) => e,
            other => panic!("expected ERROR, got {other:?}"),
        }
    }

    /// The next PRESENCE event, skipping other frames.
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

    /// Asserts the hub closes the connection (after any frames still queued).
    pub async fn expect_closed(&mut self) {
        loop {
            let Ok(next) = tokio::time::timeout(PATIENCE, self.framed.next()).await else {
                panic!("connection still open after {PATIENCE:?}");
            };
            if !matches!(next, Some(Ok(_))) {
                return;
            }
        }
    }

    /// Asserts that the connection ends next: no further frame, just EOF
    /// (or a reset).
    pub async fn expect_eof(&mut self) {
        let Ok(next) = tokio::time::timeout(PATIENCE, self.framed.next()).await else {
            panic!("connection still open after {PATIENCE:?}");
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

    /// Reads raw bytes until EOF (or reset); returns them.
    pub async fn read_to_close(self) -> BytesMut {
        let mut parts = self.framed.into_parts();
        let mut buf = parts.read_buf;
        let _ = tokio::time::timeout(PATIENCE, async {
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
