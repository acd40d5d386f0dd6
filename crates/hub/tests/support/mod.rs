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
