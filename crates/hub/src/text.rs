//! The plain-text front end: newline-delimited UTF-8, for `nc` and `telnet`.
//!
//! The first line is the nickname; after that, lines use the syntax of
//! [`chinwag_protocol::text`] (`@bob hello`, `/who`, ...), and the hub writes
//! back lines formatted like the `chinwag chat` program's. Each line is
//! turned into the same [`ClientFrame`] a binary client would send and handled
//! by the same [`Connection`] code, and the frames the actor queues are
//! decoded and formatted on the way out: text users are ordinary members of
//! the one registry.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use chinwag_protocol::text::{
    HELP, Input, format_ack_failures, format_message, format_presence, format_roster, parse_line,
    utc_clock,
};
use chinwag_protocol::{
    Hello, PREFIX_LEN, PROTOCOL_VERSION, SendFrame, SendPayload, ServerFrame, WireFrame,
};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::ReadHalf;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::codec::{Decoder, FramedRead};
use tracing::{Instrument, debug, field, info_span};

use crate::Hub;
use crate::connection::{Connection, Outcome, Request, write_deadline};
use crate::outbox::{KEEP_SLOTS, Outbox, frames};

/// Lines the connection itself says (prompts, help, input errors), waiting
/// for the writer; a few at most, since each answers one input line.
const NOTES: usize = 16;

/// Serves one plain-text connection until it ends.
pub(crate) async fn serve(
    hub: Hub,
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
) {
    let mut connection = Connection::new(hub, slot);
    let span = info_span!("text", %peer, id = connection.id.0, nick = field::Empty);
    async move {
        debug!("accepted");
        let outcome = run(&mut connection, stream).await;
        debug!(?outcome, "closed");
    }
    .instrument(span)
    .await;
}

async fn run(connection: &mut Connection, mut stream: TcpStream) -> Outcome {
    let _ = stream.set_nodelay(true);
    let config = &connection.hub.shared.config;
    let deadline = config.slow_consumer_deadline;
    let max_line = config.max_frame;
    let (read_half, write_half) = stream.split();
    // Small, as a binary connection's: people type little, and an idle text
    // user should not hold tokio-util's default 8 KiB. It grows for a long
    // line (up to `max_line`) like any `FramedRead` buffer.
    let mut lines =
        FramedRead::with_capacity(read_half, LineCodec::new(max_line), crate::reader::MIN_READ);
    let (notes, notes_rx) = mpsc::channel(NOTES);
    let outbox = connection.outbox.clone();
    let writer = write_lines(&outbox, notes_rx, write_half, deadline);
    tokio::pin!(writer);

    let _ = notes.try_send("* welcome to chinwag; type your nickname".to_owned());
    let outcome = tokio::select! {
        outcome = read_lines(connection, &mut lines, &notes, max_line) => outcome,
        result = &mut writer => Outcome::WriterDone(result),
    };
    connection.finish(&outcome, writer).await;
    outcome
}

/// A text user's line buffer stays as it is: people type little.
impl crate::connection::Quiet for FramedRead<ReadHalf<'_>, LineCodec> {}

async fn read_lines(
    connection: &mut Connection,
    lines: &mut FramedRead<ReadHalf<'_>, LineCodec>,
    notes: &mpsc::Sender<String>,
    max_line: usize,
) -> Outcome {
    let mut next_id = 0;
    loop {
        // Text users cannot answer pings; TCP tells the hub when they vanish.
        let line = match connection.next_input(lines, false).await {
            Err(outcome) => return outcome,
            Ok(None) => return Outcome::Eof,
            Ok(Some(Err(error))) => return Outcome::Io(error),
            Ok(Some(Ok(line))) => line,
        };
        let note = |text: String| async move {
            let _ = notes.send(text).await;
        };
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong => {
                note(format!(
                    "! error: line longer than {max_line} bytes; ignored"
                ))
                .await;
                continue;
            }
            Line::NotUtf8 => {
                note("! error: line is not valid UTF-8; ignored".to_owned()).await;
                continue;
            }
        };
        let frame = if connection.nick.is_none() {
            let nick = text.trim();
            if nick.is_empty() {
                continue;
            }
            Request::Hello(Hello {
                version: PROTOCOL_VERSION,
                nick: Bytes::copy_from_slice(nick.as_bytes()),
                options: None,
            })
        } else {
            match parse_line(&text) {
                Ok(Input::Send { to, text }) => {
                    next_id += 1;
                    let frame = SendFrame {
                        id: next_id,
                        to,
                        text,
                    };
                    match SendPayload::try_from(&frame) {
                        Ok(send) => Request::Send(send),
                        Err(error) => {
                            note(format!("! error: {error}")).await;
                            continue;
                        }
                    }
                }
                Ok(Input::Who) => Request::Who,
                Ok(Input::Quit) => Request::Quit,
                Ok(Input::Help) => {
                    note(format!("* {HELP}")).await;
                    continue;
                }
                Ok(Input::Nothing) => continue,
                Err(error) => {
                    note(format!("! error: {error}")).await;
                    continue;
                }
            }
        };
        let was_registered = connection.nick.is_some();
        if let Some(outcome) = connection.handle(frame).await {
            return outcome;
        }
        if !was_registered {
            if let Some(nick) = &connection.nick {
                tracing::Span::current().record("nick", nick.as_str());
            }
        }
    }
}

/// Writes the connection's own notes and the hub's frames, formatted as lines.
async fn write_lines<W>(
    outbox: &Outbox,
    mut notes: mpsc::Receiver<String>,
    mut io: W,
    deadline: Duration,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut batch: Vec<Bytes> = Vec::new();
    let mut out = String::new();
    let mut notes_open = true;
    loop {
        tokio::select! {
            more = outbox.take_all(&mut batch) => {
                if !more {
                    break;
                }
                let mut taken = 0;
                for chunk in batch.drain(..) {
                    taken += chunk.len();
                    for frame in frames(chunk) {
                        render(&frame, &mut out);
                    }
                }
                write_deadline(&mut io, out.as_bytes(), deadline, outbox).await?;
                outbox.written(taken);
                if batch.capacity() > 4 * KEEP_SLOTS {
                    batch = Vec::new();
                }
            }
            note = notes.recv(), if notes_open => match note {
                Some(note) => {
                    out.push_str(&note);
                    out.push('\n');
                    write_deadline(&mut io, out.as_bytes(), deadline, outbox).await?;
                }
                None => notes_open = false,
            },
        }
        out.clear();
    }
    io.shutdown().await
}

/// Appends the lines a text user sees for one hub frame.
fn render(frame: &Bytes, out: &mut String) {
    let Ok(frame) = ServerFrame::decode(frame.slice(PREFIX_LEN.min(frame.len())..)) else {
        return;
    };
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    match frame {
        ServerFrame::Welcome(w) => line(format!(
            "* welcome, {}; online: {}. Type /help for help.",
            w.nick,
            w.roster.join(", ")
        )),
        ServerFrame::Message(m) => line(format_message(&utc_clock(m.ts_ms), &m)),
        ServerFrame::Ack(ack) => format_ack_failures(&ack).into_iter().for_each(line),
        ServerFrame::Presence(p) => line(format_presence(&p)),
        ServerFrame::Roster(roster) => line(format_roster(&roster)),
        ServerFrame::Error(e) => line(format!("! error: {}", e.message)),
        // Text users never ask for runs, and a run holds no failures.
        ServerFrame::AckRun(_) | ServerFrame::Ping(_) | ServerFrame::Pong(_) => {}
    }
}

/// One input line, or why it was refused. A bad line is reported and the
/// connection goes on, which `tokio_util`'s `LinesCodec` would not allow
/// (its stream ends at the first invalid UTF-8).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    Text(String),
    /// Longer than the limit: reported once, then discarded up to its newline.
    TooLong,
    NotUtf8,
}

/// Splits input at `\n` (dropping a `\r` before it), with a length limit.
#[derive(Debug)]
pub(crate) struct LineCodec {
    max: usize,
    /// Where to resume looking for a newline, so a line arriving byte by byte
    /// is scanned once, not once per byte.
    scanned: usize,
    /// Inside an over-long line, dropping bytes until its newline.
    discarding: bool,
}

impl LineCodec {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            scanned: 0,
            discarding: false,
        }
    }
}

impl Decoder for LineCodec {
    type Item = Line;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Line>> {
        loop {
            let newline = src[self.scanned..].iter().position(|&b| b == b'\n');
            match (self.discarding, newline) {
                (true, Some(at)) => {
                    src.advance(self.scanned + at + 1);
                    self.scanned = 0;
                    self.discarding = false;
                }
                (true, None) => {
                    src.clear();
                    self.scanned = 0;
                    return Ok(None);
                }
                (false, Some(at)) => {
                    let end = self.scanned + at;
                    self.scanned = 0;
                    if end > self.max {
                        src.advance(end + 1);
                        return Ok(Some(Line::TooLong));
                    }
                    let raw = src.split_to(end + 1);
                    let raw = raw[..end].strip_suffix(b"\r").unwrap_or(&raw[..end]);
                    return Ok(Some(match std::str::from_utf8(raw) {
                        Ok(text) => Line::Text(text.to_owned()),
                        Err(_) => Line::NotUtf8,
                    }));
                }
                (false, None) if src.len() > self.max => {
                    src.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(Line::TooLong));
                }
                (false, None) => {
                    self.scanned = src.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Line>> {
        if let Some(line) = self.decode(src)? {
            return Ok(Some(line));
        }
        if self.discarding || src.is_empty() {
            src.clear();
            return Ok(None);
        }
        // A last line without a newline still counts.
        src.extend_from_slice(b"\n");
        self.decode(src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut LineCodec, input: &[u8]) -> Vec<Line> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(line) = codec.decode(&mut buf).unwrap() {
            out.push(line);
        }
        while let Some(line) = codec.decode_eof(&mut buf).unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn splits_lines_and_reports_bad_ones_without_stopping() {
        let mut codec = LineCodec::new(8);
        let lines = decode_all(
            &mut codec,
            b"alice\r\nway too long a line\n\xff\xfe\nok\nlast",
        );
        assert_eq!(
            lines,
            [
                Line::Text("alice".into()),
                Line::TooLong,
                Line::NotUtf8,
                Line::Text("ok".into()),
                Line::Text("last".into()),
            ]
        );
    }

    #[test]
    fn an_endless_line_is_reported_once_and_discarded() {
        let mut codec = LineCodec::new(4);
        let mut buf = BytesMut::from(&b"0123456789"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Line::TooLong));
        assert!(buf.is_empty());
        buf.extend_from_slice(b"more garbage\nhi\n");
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Line::Text("hi".into()))
        );
    }
}
