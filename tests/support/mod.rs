//! Shared harness for the end-to-end tests: a hub on an ephemeral port and a
//! raw protocol client over a real socket.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use chinwag::hub::{Hub, HubConfig};
use chinwag::protocol::{
    Ack, ClientCodec, ClientFrame, Code, Hello, Message, PROTOCOL_VERSION, Recipients, SendFrame,
    ServerFrame, Welcome,
};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

/// How long a test waits for a frame it expects before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

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
}

/// A client that speaks raw frames over a real socket.
pub struct RawClient {
    pub framed: Framed<TcpStream, ClientCodec>,
    next_id: u64,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            framed: Framed::new(stream, ClientCodec::default()),
            next_id: 0,
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

    pub async fn hello(&mut self, nick: &str) {
        self.send(ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            nick: nick.as_bytes().to_vec().into(),
        }))
        .await;
    }

    /// Sends to the named users; returns the client id used.
    pub async fn send_to(&mut self, to: &[&str], text: &str) -> u64 {
        self.next_id += 1;
        let to = Recipients::Users(to.iter().map(|s| (*s).to_owned()).collect());
        self.send(ClientFrame::Send(SendFrame {
            id: self.next_id,
            to,
            text: text.to_owned(),
        }))
        .await;
        self.next_id
    }

    pub async fn broadcast(&mut self, text: &str) -> u64 {
        self.next_id += 1;
        self.send(ClientFrame::Send(SendFrame {
            id: self.next_id,
            to: Recipients::Everyone,
            text: text.to_owned(),
        }))
        .await;
        self.next_id
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

    /// The next ERROR frame's code, skipping other frames.
    pub async fn expect_error(&mut self) -> Code {
        self.recv_until(|f| match f {
            ServerFrame::Error(e) => Some(e.code),
            _ => None,
        })
        .await
    }

    /// The next PRESENCE event, skipping other frames.
    pub async fn expect_presence(&mut self) -> (String, bool) {
        self.recv_until(|f| match f {
            ServerFrame::Presence(p) => Some((p.nick, p.online)),
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
}
