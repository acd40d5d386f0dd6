//! Shared helpers for the hub crate's end-to-end tests: a hub on an
//! ephemeral port and a raw binary-protocol client.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use chinwag_hub::protocol::{
    ClientCodec, ClientFrame, Code, Hello, PROTOCOL_VERSION, Recipients, SendFrame, ServerFrame,
    Welcome,
};
use chinwag_hub::{Hub, HubConfig};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::codec::{Encoder, Framed};

/// How long a test waits for something it expects before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub type Client = Framed<TcpStream, ClientCodec>;

/// Starts a hub serving the binary protocol on `127.0.0.1:0`.
pub async fn start(config: HubConfig) -> (Hub, SocketAddr) {
    let hub = Hub::start(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let h = hub.clone();
    tokio::spawn(async move { h.serve(listener).await });
    (hub, addr)
}

pub fn hello(nick: &str) -> ClientFrame {
    ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        nick: nick.as_bytes().to_vec().into(),
        options: None,
    })
}

/// A `SEND` to the named users, or to everyone if `to` is empty.
pub fn send(id: u64, to: &[&str], text: impl Into<String>) -> ClientFrame {
    ClientFrame::Send(SendFrame {
        id,
        to: if to.is_empty() {
            Recipients::Everyone
        } else {
            Recipients::Users(to.iter().map(|&n| n.to_owned()).collect())
        },
        text: text.into(),
    })
}

/// Frames encoded one after another, to be written at once.
pub fn encode(frames: &[ClientFrame]) -> BytesMut {
    let mut out = BytesMut::new();
    for frame in frames {
        ClientCodec::default().encode(frame, &mut out).unwrap();
    }
    out
}

pub async fn connect(addr: SocketAddr) -> Client {
    Framed::new(
        TcpStream::connect(addr).await.unwrap(),
        ClientCodec::default(),
    )
}

/// Connects and registers; the WELCOME is consumed.
pub async fn register(addr: SocketAddr, nick: &str) -> Client {
    let mut client = connect(addr).await;
    client.send(hello(nick)).await.unwrap();
    let frame = next(&mut client).await;
    assert!(matches!(frame, Some(ServerFrame::Welcome(_))), "{frame:?}");
    client
}

/// Connects and registers asking for the `HELLO` options `asked`; returns
/// the client and its `WELCOME`.
pub async fn register_with(addr: SocketAddr, nick: &str, asked: u32) -> (Client, Welcome) {
    let mut client = connect(addr).await;
    let hello = ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        nick: nick.as_bytes().to_vec().into(),
        options: Some(asked),
    });
    client.send(hello).await.unwrap();
    match next(&mut client).await {
        Some(ServerFrame::Welcome(welcome)) => (client, welcome),
        other => panic!("expected WELCOME, got {other:?}"),
    }
}

/// Waits until `current()` is `want`, which something else brings about
/// (a connection task ending, a counter it records); fails the test if it
/// is not so within [`PATIENCE`].
pub async fn settle<T: PartialEq + std::fmt::Debug>(
    what: &str,
    mut current: impl FnMut() -> T,
    want: T,
) {
    let settled = timeout(PATIENCE, async {
        while current() != want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "{what} stuck at {:?} (want {want:?})",
        current()
    );
}

/// The next frame; `None` once the hub closed the connection.
pub async fn next(client: &mut Client) -> Option<ServerFrame> {
    match timeout(PATIENCE, client.next())
        .await
        .expect("no frame in time")
    {
        Some(Ok(frame)) => Some(frame),
        Some(Err(_)) | None => None,
    }
}

/// Reads until the connection closes; returns the error codes seen on the way.
pub async fn codes_until_closed(client: &mut Client) -> Vec<Code> {
    let mut codes = Vec::new();
    while let Some(frame) = next(client).await {
        if let ServerFrame::Error(e) = frame {
            codes.push(e.code);
        }
    }
    codes
}
