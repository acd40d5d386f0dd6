//! chinwag's binary protocol (docs/protocol.md) for hubload, the neutral
//! load generator in `../shared/bench/hubload`. To use it, copy hubload,
//! drop this file in as `src/adapters/chinwag.rs`, and add `pub mod chinwag;`,
//! `"chinwag"` in `NAMES`, and a match arm in `src/adapters/mod.rs`'s `run`
//! (docs/performance.md shows the commands).
//!
//! Mapping: a user is a registered nickname; a direct message is `SEND` to
//! that one user; broadcast is `SEND` to everyone (the sender excluded, as
//! in nats with echo=false). Topics are not a chinwag feature. Every frame
//! that is not a `MESSAGE` (acks, presence) is read and skipped, so the
//! publisher's acks are drained like any other traffic.

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes};

use crate::adapter::*;

const HELLO: u8 = 0x01;
const SEND: u8 = 0x02;
const WELCOME: u8 = 0x81;
const MESSAGE: u8 = 0x82;
const ERROR: u8 = 0x86;

pub struct Chinwag {
    pub addr: SocketAddr,
}

pub struct ChinwagPub {
    w: WriteBuf,
    next_id: u64,
}

pub struct ChinwagSub {
    rd: ReadBuf,
}

impl Adapter for Chinwag {
    type Pub = ChinwagPub;
    type Sub = ChinwagSub;

    fn name(&self) -> &'static str {
        "chinwag"
    }

    fn caps(&self) -> Caps {
        Caps { direct: true, topics: false, broadcast: true }
    }

    async fn connect(&self, reg: Registration<'_>) -> io::Result<(ChinwagPub, ChinwagSub)> {
        let nick = reg.user.as_bytes();
        if nick.len() > 32 {
            return Err(proto_err("chinwag: nickname longer than 32"));
        }
        let (rd, wr) = tcp_connect(self.addr).await?;
        let mut w = WriteBuf::new(wr);
        w.buf.put_u32(1 + 2 + 1 + nick.len() as u32);
        w.buf.put_u8(HELLO);
        w.buf.put_u16(1);
        w.buf.put_u8(nick.len() as u8);
        w.buf.put_slice(nick);
        w.flush().await?;
        let mut sub = ChinwagSub { rd: ReadBuf::new(rd) };
        let (op, payload) = sub.frame().await?.ok_or_else(|| proto_err("chinwag: eof before WELCOME"))?;
        match op {
            WELCOME => Ok((ChinwagPub { w, next_id: 0 }, sub)),
            ERROR => Err(proto_err(&format!("chinwag: refused: {}", error_text(&payload)))),
            _ => Err(proto_err("chinwag: expected WELCOME")),
        }
    }
}

impl Publisher for ChinwagPub {
    async fn publish(&mut self, dest: Dest<'_>, payload: &[u8]) -> io::Result<()> {
        self.next_id += 1;
        let b = &mut self.w.buf;
        let target_len = match dest {
            Dest::User(u) => 1 + 4 + 1 + u.len(),
            Dest::All => 1,
            Dest::Topic(_) => return Err(proto_err("chinwag: no topics")),
        };
        b.put_u32((1 + 8 + target_len + 4 + payload.len()) as u32);
        b.put_u8(SEND);
        b.put_u64(self.next_id);
        match dest {
            Dest::User(u) => {
                b.put_u8(0x00);
                b.put_u32(1);
                b.put_u8(u.len() as u8);
                b.put_slice(u.as_bytes());
            }
            _ => b.put_u8(0x01),
        }
        b.put_u32(payload.len() as u32);
        b.put_slice(payload);
        self.w.maybe_flush().await
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.w.flush().await
    }
}

impl ChinwagSub {
    /// The next whole frame: its opcode and the rest of its payload.
    async fn frame(&mut self) -> io::Result<Option<(u8, Bytes)>> {
        loop {
            let buf = &mut self.rd.buf;
            if buf.len() >= 4 {
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if len == 0 {
                    return Err(proto_err("chinwag: empty frame"));
                }
                if buf.len() >= 4 + len {
                    buf.advance(4);
                    let payload = buf.split_to(len).freeze();
                    return Ok(Some((payload[0], payload.slice(1..))));
                }
            }
            if !self.rd.fill().await? {
                return Ok(None);
            }
        }
    }
}

impl Subscriber for ChinwagSub {
    async fn recv(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let Some((op, p)) = self.frame().await? else { return Ok(None) };
            match op {
                MESSAGE => {
                    return message_text(p)
                        .map(Some)
                        .ok_or_else(|| proto_err("chinwag: malformed MESSAGE"));
                }
                ERROR => return Err(proto_err(&format!("chinwag: {}", error_text(&p)))),
                _ => {} // ACK, PRESENCE, ROSTER, PING...
            }
        }
    }
}

/// The text of a `MESSAGE` payload: id, ts, from, recipients, then the text.
fn message_text(mut p: Bytes) -> Option<Bytes> {
    fn skip(p: &mut Bytes, n: usize) -> Option<()> {
        (p.remaining() >= n).then(|| p.advance(n))
    }
    skip(&mut p, 16)?;
    let from = p.try_get_u8().ok()? as usize;
    skip(&mut p, from)?;
    if p.try_get_u8().ok()? == 0x00 {
        for _ in 0..p.try_get_u32().ok()? {
            let n = p.try_get_u8().ok()? as usize;
            skip(&mut p, n)?;
        }
    }
    let len = p.try_get_u32().ok()? as usize;
    (p.remaining() >= len).then(|| p.split_to(len))
}

fn error_text(p: &[u8]) -> String {
    // code u16, reference u64, text.
    let code = p.get(..2).map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
    let text = p.get(14..).map(String::from_utf8_lossy).unwrap_or_default();
    format!("error {code}: {text}")
}
