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
//! publisher's acks are drained like any other traffic. The publisher
//! numbers its messages 1, 2, 3, ... and asks for `ACK_RUNS`, as a client
//! sending runs of messages would, so runs of messages to one user that
//! were delivered are acknowledged by one `ACK_RUN` each.

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes};

use crate::adapter::*;

const HELLO: u8 = 0x01;
const SEND: u8 = 0x02;
const WELCOME: u8 = 0x81;
const MESSAGE: u8 = 0x82;
const ERROR: u8 = 0x86;
/// `HELLO`'s `options` bit asking for `ACK_RUN`s.
const ACK_RUNS: u32 = 1;

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
        w.buf.put_u32(1 + 2 + 1 + nick.len() as u32 + 4);
        w.buf.put_u8(HELLO);
        w.buf.put_u16(1);
        w.buf.put_u8(nick.len() as u8);
        w.buf.put_slice(nick);
        w.buf.put_u32(ACK_RUNS);
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
            if let Some(len) = whole_frame(&self.rd.buf)? {
                self.rd.buf.advance(4);
                let payload = self.rd.buf.split_to(len).freeze();
                return Ok(Some((payload[0], payload.slice(1..))));
            }
            if !self.rd.fill().await? {
                return Ok(None);
            }
        }
    }
}

/// The payload length of the frame at the front of `buf`, if all of it is
/// there.
fn whole_frame(buf: &[u8]) -> io::Result<Option<usize>> {
    let Some(prefix) = buf.first_chunk::<4>() else { return Ok(None) };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len == 0 {
        return Err(proto_err("chinwag: empty frame"));
    }
    Ok((buf.len() >= 4 + len).then_some(len))
}

impl Subscriber for ChinwagSub {
    /// Frames are looked at where they lie in the read buffer, as the nats
    /// adapter does with its lines: a `MESSAGE` gives up only its text, and
    /// anything else but an `ERROR` (acks, presence, pings) is stepped over.
    async fn recv(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            let buf = &mut self.rd.buf;
            let Some(len) = whole_frame(buf)? else {
                if !self.rd.fill().await? {
                    return Ok(None);
                }
                continue;
            };
            match buf[4] {
                MESSAGE => {
                    let (start, text) = message_text(&buf[5..4 + len])
                        .ok_or_else(|| proto_err("chinwag: malformed MESSAGE"))?;
                    buf.advance(5 + start);
                    let text_bytes = buf.split_to(text).freeze();
                    buf.advance(len - 1 - start - text);
                    return Ok(Some(text_bytes));
                }
                ERROR => return Err(proto_err(&format!("chinwag: {}", error_text(&buf[5..4 + len])))),
                _ => buf.advance(4 + len), // ACK, ACK_RUN, PRESENCE, ROSTER, PING...
            }
        }
    }
}

/// Where the text of a `MESSAGE` payload (past the opcode) starts, and how
/// long it is: id, ts, from, recipients, then the text.
fn message_text(p: &[u8]) -> Option<(usize, usize)> {
    let byte = |at: usize| p.get(at).copied();
    let u32_at = |at: usize| Some(u32::from_be_bytes(*p.get(at..)?.first_chunk::<4>()?) as usize);
    let mut at = 16;
    at += 1 + byte(at)? as usize; // from
    let kind = byte(at)?;
    at += 1;
    if kind == 0x00 {
        let count = u32_at(at)?;
        at += 4;
        for _ in 0..count {
            at += 1 + byte(at)? as usize;
        }
    }
    let len = u32_at(at)?;
    at += 4;
    (p.len().checked_sub(at)? == len).then_some((at, len))
}

fn error_text(p: &[u8]) -> String {
    // code u16, reference u64, text.
    let code = p.get(..2).map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
    let text = p.get(14..).map(String::from_utf8_lossy).unwrap_or_default();
    format!("error {code}: {text}")
}
