//! Helpers for the hub crate's tests. What every harness shares comes from
//! `chinwag-testkit`; these tests mostly hold the `Framed` stream of a TCP
//! client themselves, so here are the few functions that hand one out.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::net::SocketAddr;

use chinwag_hub::protocol::{ClientCodec, Welcome};
use chinwag_hub::{Hub, HubConfig};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

pub use chinwag_testkit::{
    PATIENCE, PipeHub, RawClient, TestHub, codes_until_closed, encode_frames, guard, hello,
    hello_with_options, next, raw_frame, send, settle, timed, users, within,
};

pub type Client = Framed<TcpStream, ClientCodec>;

/// Starts a hub serving the binary protocol on `127.0.0.1:0`.
pub async fn start(config: HubConfig) -> (Hub, SocketAddr) {
    let TestHub { hub, addr, .. } = TestHub::with_config(config).await;
    (hub, addr)
}

pub async fn connect(addr: SocketAddr) -> Client {
    RawClient::connect(addr).await.framed
}

/// Connects and registers; the WELCOME is consumed.
pub async fn register(addr: SocketAddr, nick: &str) -> Client {
    RawClient::connect(addr).await.registered(nick).await.framed
}

/// Connects and registers asking for the `HELLO` options `asked`; returns
/// the client and its `WELCOME`.
pub async fn register_with(addr: SocketAddr, nick: &str, asked: u32) -> (Client, Welcome) {
    let (client, welcome) = RawClient::connect(addr)
        .await
        .registered_with_options(nick, asked)
        .await;
    (client.framed, welcome)
}

/// A message's text of `len` bytes that begins with its sequence number,
/// padded with `x` to 8 bytes, as [`read_numbered`] reads them.
pub fn numbered(seq: usize, len: usize) -> String {
    let mut text = format!("{seq:x<8}");
    text.extend(std::iter::repeat_n('x', len.saturating_sub(text.len())));
    text
}

/// Reads `count` [`numbered`] messages, checking that none is lost or out
/// of order; fails the test if the connection ends first, or a message is
/// [`PATIENCE`] in coming.
pub async fn read_numbered(client: &mut Client, count: usize) {
    use chinwag_hub::protocol::ServerFrame;
    use futures::StreamExt;

    let mut next = 0usize;
    while next < count {
        match guard(PATIENCE, "the next message", client.next()).await {
            Some(Ok(ServerFrame::Message(m))) => {
                let seq: usize = m.text[..8].trim_end_matches('x').parse().unwrap();
                assert_eq!(seq, next, "out of order or lost");
                next += 1;
            }
            Some(Ok(_)) => {}
            other => panic!("a reader lost its connection: {other:?}"),
        }
    }
}

/// A figure of `/proc/self/status`, in bytes (Linux).
pub fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}
