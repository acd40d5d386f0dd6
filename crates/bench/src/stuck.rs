//! Stuck readers: registered connections that never read after their
//! `WELCOME`, with a small kernel receive buffer, as a phone on a dead
//! network would be. `latency --stuck N` adds them to a broadcast's audience
//! to measure what they cost the readers that keep up.

use std::net::SocketAddr;

use bytes::BytesMut;
use chinwag_protocol::{ClientCodec, ClientFrame, Hello, PROTOCOL_VERSION, ServerFrame};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::{Encoder, FramedRead};

use crate::context::Ctx;
use crate::error::SetupError;

/// The nickname of stuck reader `i` begins with this, so that checks can
/// tell them from the readers that keep up.
pub(crate) const STUCK_PREFIX: &str = "stuck";

/// The kernel receive buffer a stuck reader asks for.
const RECEIVE_BUFFER: u32 = 4096;

/// Connects and registers `count` stuck readers (`stuck0`, `stuck1`, ...),
/// each of which reads its `WELCOME` and nothing more. They stay stuck
/// until the streams are dropped, or the hub cuts them.
pub(crate) async fn connect(ctx: &Ctx, count: u32) -> Result<Vec<TcpStream>, SetupError> {
    // A stuck reader's small kernel buffer is set on the socket it
    // registers through; over TLS or WebSocket that would need a handshake
    // of its own.
    if ctx.tls.is_some() && count > 0 {
        return Err(SetupError::Usage(
            "latency --stuck is not supported over TLS (--tls): run it on the plain port".into(),
        ));
    }
    if ctx.ws.is_some() && count > 0 {
        return Err(SetupError::Usage(
            "latency --stuck is not supported over WebSocket (--ws): run it on the plain port"
                .into(),
        ));
    }
    let mut stuck = Vec::new();
    for i in 0..count {
        let nick = format!("{STUCK_PREFIX}{i}");
        stuck.push(
            register(ctx.addr, &nick)
                .await
                .map_err(|source| SetupError::Connect {
                    addr: ctx.addr,
                    nick,
                    source,
                })?,
        );
    }
    Ok(stuck)
}

async fn register(addr: SocketAddr, nick: &str) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_recv_buffer_size(RECEIVE_BUFFER)?;
    let mut stream = socket.connect(addr).await?;
    let hello = ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        nick: nick.as_bytes().to_vec().into(),
        options: None,
        password: None,
    });
    let mut out = BytesMut::new();
    ClientCodec::default()
        .encode(&hello, &mut out)
        .map_err(std::io::Error::other)?;
    stream.write_all(&out).await?;
    // Its WELCOME, or why not; then nothing more is read.
    let mut frames = FramedRead::new(&mut stream, ClientCodec::default());
    match frames.next().await {
        Some(Ok(ServerFrame::Welcome(_))) => {}
        Some(Ok(ServerFrame::Error(error))) => {
            return Err(std::io::Error::other(format!("refused: {}", error.message)));
        }
        Some(Ok(other)) => {
            return Err(std::io::Error::other(format!(
                "expected WELCOME, got {other:?}"
            )));
        }
        Some(Err(error)) => return Err(std::io::Error::other(error)),
        None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
    }
    // Anything read behind the WELCOME goes with the reader: from now on
    // nothing is read at all.
    drop(frames);
    Ok(stream)
}
