//! The plain-text front end: newline-delimited UTF-8, for `nc` and `telnet`.
//!
//! The first line is the nickname; after that, lines use the syntax of
//! [`chinwag_protocol::text`] (`@bob hello`, `/who`, ...), and the hub writes
//! back lines formatted like the `chinwag chat` program's. Each line is
//! turned into the same [`ClientFrame`] a binary client would send and handled
//! by the same [`Connection`] code, and the frames the actor queues are
//! decoded and formatted on the way out: text users are ordinary members of
//! the one registry.

use std::fmt;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use chinwag_protocol::text::{
    HELP, Input, format_ack_failures, format_message, format_presence, format_roster, parse_line,
    utc_clock, visible,
};
use chinwag_protocol::{
    Code, Hello, PREFIX_LEN, PROTOCOL_VERSION, SendFrame, SendPayload, ServerFrame, WireFrame,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::codec::FramedRead;
use tracing::{Instrument, debug, field, info_span};

use super::lines::{Line, LineCodec};
use crate::Hub;
use crate::admission::Ticket;
use crate::connection::{Connection, Outcome, Quiet, Request};
use crate::front::Front;
use crate::listener::Transport;
use crate::metrics::Metered;
use crate::outbox::{KEEP_SLOTS, Outbox, frames};
use crate::writer::write_deadline;

/// Lines the connection itself says (prompts, help, input errors), waiting
/// for the writer; a few at most, since each answers one input line.
const NOTES: usize = 16;

/// Serves one plain-text connection until it ends.
pub(crate) async fn serve<T: Transport>(
    hub: Hub,
    io: T,
    peer: impl fmt::Debug,
    slot: OwnedSemaphorePermit,
    ticket: Ticket,
) {
    let mut connection = Connection::new(hub, slot, ticket, (format!("{peer:?}"), Front::Text));
    let span = info_span!("text", ?peer, id = connection.id.0, nick = field::Empty);
    async move {
        debug!("accepted");
        let outcome = run(&mut connection, io).await;
        debug!(?outcome, "closed");
    }
    .instrument(span)
    .await;
}

async fn run<T: Transport>(connection: &mut Connection, mut io: T) -> Outcome {
    let config = connection.config.clone();
    let deadline = config.slow_consumer_deadline;
    let (read_half, write_half) = io.split();
    let read_half = Metered::new(read_half, connection.meter.meter.clone());
    // Small, as a binary connection's: people type little, and an idle text
    // user should not hold tokio-util's default 8 KiB. It grows for a long
    // line like any `FramedRead` buffer: up to the limit before
    // registration (`--max-hello-bytes`, so that an anonymous connection
    // cannot make the hub buffer much), then up to `--max-frame-bytes`.
    let codec = LineCodec::new(config.max_frame_unregistered);
    let mut lines = FramedRead::with_capacity(read_half, codec, super::reader::MIN_READ);
    let (notes, notes_rx) = mpsc::channel(NOTES);
    let outbox = connection.outbox.clone();
    let writer = write_lines(&outbox, notes_rx, write_half, deadline);
    tokio::pin!(writer);

    let _ = notes.try_send("* welcome to chinwag; type your nickname".to_owned());
    let outcome = tokio::select! {
        outcome = read_lines(connection, &mut lines, &notes) => outcome,
        result = &mut writer => Outcome::WriterDone(result),
    };
    connection.finish(&outcome, writer).await;
    outcome
}

/// A text user's line buffer stays as it is: people type little.
impl<R> Quiet for FramedRead<R, LineCodec> {}

async fn read_lines<R: AsyncRead + Unpin>(
    connection: &mut Connection,
    lines: &mut FramedRead<R, LineCodec>,
    notes: &mpsc::Sender<String>,
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
                let max = lines.decoder().max();
                note(format!("! error: line longer than {max} bytes; ignored")).await;
                continue;
            }
            Line::NotUtf8 => {
                note("! error: line is not valid UTF-8; ignored".to_owned()).await;
                continue;
            }
        };
        let frame = if connection.nick().is_none() {
            let nick = text.trim();
            if nick.is_empty() {
                continue;
            }
            Request::Hello(Hello {
                version: PROTOCOL_VERSION,
                nick: Bytes::copy_from_slice(nick.as_bytes()),
                options: None,
                password: None,
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
        let was_registered = connection.registration.is_registered();
        if let Some(outcome) = connection.handle(frame).await {
            return outcome;
        }
        if !was_registered && let Some(nick) = connection.nick() {
            tracing::Span::current().record("nick", nick.as_str());
            let max_line = connection.config.max_frame;
            lines.decoder_mut().set_max(max_line);
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
        // Text users cannot log in: say what to do instead.
        ServerFrame::Error(e) if e.code == Code::NICK_REGISTERED => line(
            "! error: nickname is registered; the text port has no logins, choose another"
                .to_owned(),
        ),
        ServerFrame::Error(e) => line(format!("! error: {}", visible(&e.message))),
        // Text users never ask for runs, and a run holds no failures. They
        // are guests: no account, mailbox or table of users, and they ask
        // for no receipts.
        ServerFrame::AckRun(_)
        | ServerFrame::Receipts(_)
        | ServerFrame::ReceiptRuns(_)
        | ServerFrame::Ping(_)
        | ServerFrame::Pong(_)
        | ServerFrame::AccountDone(_)
        | ServerFrame::Mailbox(_)
        | ServerFrame::StoredMessage(_)
        | ServerFrame::Sequenced(_)
        | ServerFrame::Gap(_)
        | ServerFrame::Users(_)
        | ServerFrame::User(_) => {}
    }
}
