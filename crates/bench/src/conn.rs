//! Connecting and registering the bench's connections, many at a time.
//!
//! Each connection is split once registered: its read half goes to a
//! [`receiver`] task that checks everything the hub sends;
//! its write half is shared ([`SharedWrite`]) between whoever sends on it
//! and that task, which answers the hub's `PING`s (and, with receipts, a
//! task that writes its `CONFIRM`s: `receipts.rs`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chinwag_protocol::{
    ClientFrame, Code, DEFAULT_MAX_FRAME, Hello, PROTOCOL_VERSION, ServerFrame, options,
};
use futures::StreamExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::codec::FramedRead;

use crate::bar::Bar;
use crate::codec::{BenchCodec, Inbound};
use crate::context::Ctx;
use crate::error::SetupError;
use crate::mailbox;
use crate::receipts::{ReceiptSpec, Receipts};
use crate::receiver::{self, Expect, Progress, Tally};
use crate::shared_write::{SharedWrite, send_frame};
use crate::transport::{self, ReadHalf, WriteHalf};

/// Registrations in flight at once (hubload's default). Well below the hub's
/// 1,000 unregistered connections, and enough to keep both cores busy.
const CONNECT_CONCURRENCY: usize = 64;

/// Times a taken nickname is asked for again, and how long apart: within
/// the hub's 5 s registration deadline.
const NICK_RETRIES: u32 = 20;
const NICK_RETRY_AFTER: Duration = Duration::from_millis(150);

/// How long one connection may take to be welcomed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Frames the bench accepts from the hub: twice the default limit, as
/// `docs/protocol.md` advises (an `ACK` or a `WELCOME` may exceed the
/// post-registration limit).
const MAX_INBOUND_FRAME: usize = 2 * DEFAULT_MAX_FRAME;

/// Read buffer of a connection that receives a stream of messages.
pub(crate) const STREAM_READ_BUFFER: usize = 64 * 1024;

/// Read buffer of an idle connection: small, there are thousands (it grows
/// for the rare large frame, such as the `WELCOME` with everyone online).
pub(crate) const IDLE_READ_BUFFER: usize = 1024;

/// What one connection should be: its nickname, what it should receive, and
/// the local address to connect from.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) nick: String,
    pub(crate) expect: Expect,
    /// `None`: let the system pick.
    pub(crate) source: Option<IpAddr>,
    /// Initial read buffer: [`STREAM_READ_BUFFER`] for connections that
    /// receive a stream of messages, [`IDLE_READ_BUFFER`] for the thousands
    /// of idle ones of `conns`.
    pub(crate) read_buffer: usize,
    /// Follow presence; `false` asks for `NO_PRESENCE`.
    pub(crate) presence: bool,
    /// Confirm what arrives and check the receipts of what is sent: asks
    /// for `CONFIRMS` and `RECEIPTS` too.
    pub(crate) receipts: Option<ReceiptSpec>,
}

/// One registered connection, with the task reading it.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) nick: String,
    pub(crate) progress: Arc<Progress>,
    pub(crate) write: SharedWrite,
    /// The largest payload the hub accepts from this connection.
    pub(crate) max_frame: usize,
    reader: Option<JoinHandle<Tally>>,
}

impl Peer {
    /// Whether the receiver task has ended (the hub closed the connection,
    /// or reading failed) before being told to stop.
    pub(crate) fn ended(&self) -> bool {
        self.reader.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the receiver task (which the caller has told to stop) and
    /// returns what it counted.
    pub(crate) async fn tally(&mut self) -> Tally {
        let Some(mut reader) = self.reader.take() else {
            return Tally::problem("receiver already collected");
        };
        match tokio::time::timeout(Duration::from_secs(5), &mut reader).await {
            Ok(Ok(tally)) => tally,
            Ok(Err(error)) => Tally::problem(format!("receiver task failed: {error}")),
            Err(_) => {
                reader.abort();
                Tally::problem("receiver did not stop")
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Dropping the task drops the read half; the write half goes with the
        // last clone of `write`.
        if let Some(reader) = &self.reader {
            reader.abort();
        }
    }
}

/// Connects and registers every spec, at most [`CONNECT_CONCURRENCY`] at a
/// time, starting each one's receiver as soon as it is welcomed (so that it
/// reads the presence notices of those that come after it). The result is in
/// the order of `specs`. The first failure stops the rest.
pub(crate) async fn connect_many(
    ctx: &Ctx,
    specs: Vec<Spec>,
    bar: &mut Bar,
) -> Result<Vec<Peer>, SetupError> {
    let admission = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = JoinSet::new();
    let count = specs.len();
    for (index, spec) in specs.into_iter().enumerate() {
        let admission = Arc::clone(&admission);
        let ctx = ctx.clone();
        tasks.spawn(async move {
            // The semaphore is never closed.
            let _permit = admission.acquire_owned().await.ok();
            let peer = connect(&ctx, spec).await?;
            Ok::<_, SetupError>((index, peer))
        });
    }
    let mut slots: Vec<Option<Peer>> = (0..count).map(|_| None).collect();
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (index, peer) = joined.map_err(|error| SetupError::Task(error.to_string()))??;
        slots[index] = Some(peer);
        done += 1;
        bar.set(done);
    }
    Ok(slots.into_iter().flatten().collect())
}

/// Connects one spec and registers it.
pub(crate) async fn connect(ctx: &Ctx, spec: Spec) -> Result<Peer, SetupError> {
    let Spec {
        nick,
        expect,
        source,
        read_buffer,
        presence,
        receipts,
    } = spec;
    // Receipts as runs, as the client library asks for them.
    let receipt_options = options::CONFIRMS | options::RECEIPTS | options::RECEIPT_RUNS;
    let options = match &receipts {
        Some(spec) if spec.reliable.is_some() => receipt_options | options::RELIABLE,
        Some(_) => receipt_options,
        None => 0,
    };
    // A reliable session is an account's login.
    let password = (options & options::RELIABLE != 0).then_some(mailbox::PASSWORD);
    let Registered {
        frames,
        write,
        max_frame,
    } = register(
        ctx,
        &nick,
        source,
        read_buffer,
        expect.size,
        presence,
        options,
        password,
    )
    .await?;
    let progress = Arc::new(Progress::default());
    let receipts = receipts.map(|spec| Receipts::new(spec, Arc::clone(&write)));
    let reader = tokio::spawn(receiver::run(receiver::Receiver {
        nick: nick.clone(),
        frames,
        write: Arc::clone(&write),
        expect,
        progress: Arc::clone(&progress),
        clock: ctx.clock,
        latencies: Arc::clone(&ctx.latencies),
        stop: ctx.stop.clone(),
        receipts,
    }));
    Ok(Peer {
        nick,
        progress,
        write,
        max_frame,
        reader: Some(reader),
    })
}

/// A registered connection not yet handed to a reader: for a workload
/// that reads its connections itself (`store`).
#[derive(Debug)]
pub(crate) struct Registered {
    pub(crate) frames: Frames,
    pub(crate) write: SharedWrite,
    /// The largest payload the hub accepts from this connection.
    pub(crate) max_frame: usize,
}

/// A connection's read half, framed by the bench's decoder.
pub(crate) type Frames = FramedRead<ReadHalf, BenchCodec>;

/// Opens a connection (from `source`, if given) and registers it as the
/// guest `nick`, reading messages of `size` bytes with a `read_buffer`
/// buffer. `options` are asked for besides `ACK_RUNS` (and `NO_PRESENCE`
/// without `presence`); the hub must grant them. With a `password`, it
/// logs in to the account `nick` instead.
#[expect(
    clippy::too_many_arguments,
    reason = "each is one thing about the connection; a struct would only name them again"
)]
pub(crate) async fn register(
    ctx: &Ctx,
    nick: &str,
    source: Option<IpAddr>,
    read_buffer: usize,
    size: usize,
    presence: bool,
    options: u32,
    password: Option<&str>,
) -> Result<Registered, SetupError> {
    let (read, write) = open_split(ctx, nick, source, read_buffer).await?;
    let mut frames = framed(read, size, read_buffer);
    let write = Arc::new(Mutex::new(write));
    let max_frame = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake(nick, presence, options, password, &mut frames, &write),
    )
    .await
    .map_err(|_| SetupError::Handshake {
        nick: nick.to_owned(),
        reason: format!("not welcomed within {} s", HANDSHAKE_TIMEOUT.as_secs()),
    })??;
    // The `WELCOME` lists everyone online, so with thousands of connections
    // it grew the read buffer to tens of KiB, and what is left of the buffer
    // still shares that allocation: start again from the size asked for.
    let buffer = frames.read_buffer_mut();
    let mut fresh = BytesMut::with_capacity(read_buffer.max(buffer.len()));
    fresh.extend_from_slice(buffer);
    *buffer = fresh;
    Ok(Registered {
        frames,
        write,
        max_frame,
    })
}

/// The bench's decoder on a read half, for messages of `size` bytes.
pub(crate) fn framed(read: ReadHalf, size: usize, read_buffer: usize) -> Frames {
    let codec = BenchCodec::new(size, MAX_INBOUND_FRAME, read_buffer);
    FramedRead::with_capacity(read, codec, read_buffer)
}

/// A TCP connection to the hub for `nick`, from `source` if given; a
/// failure is a setup error naming them.
pub(crate) async fn open(
    ctx: &Ctx,
    nick: &str,
    source: Option<IpAddr>,
) -> Result<TcpStream, SetupError> {
    open_socket(ctx.addr, source)
        .await
        .map_err(|error| SetupError::Connect {
            addr: ctx.addr,
            nick: nick.to_owned(),
            source: error,
        })
}

/// A connection to the hub for `nick` as [`open`], over TLS and over
/// WebSocket (reading with a `read_buffer` buffer) when the run is, split.
pub(crate) async fn open_split(
    ctx: &Ctx,
    nick: &str,
    source: Option<IpAddr>,
    read_buffer: usize,
) -> Result<(ReadHalf, WriteHalf), SetupError> {
    let stream = open(ctx, nick, source).await?;
    transport::split(stream, ctx.tls.as_ref(), ctx.ws.as_ref(), read_buffer)
        .await
        .map_err(|error| SetupError::Connect {
            addr: ctx.addr,
            nick: nick.to_owned(),
            source: error,
        })
}

/// A TCP connection to `addr`, from `source` if given. Binding each source
/// address before connecting is what lets `conns` hold more connections than
/// one address has ephemeral ports.
async fn open_socket(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let stream = match source {
        None => TcpStream::connect(addr).await?,
        Some(ip) => {
            let socket = if ip.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(addr).await?
        }
    };
    // Frames are written in large batches; small ones (pongs) should not wait.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends `HELLO` and waits for `WELCOME`; returns the hub's frame limit.
/// A nickname still taken (by the connection of a run that just ended, which
/// the hub has not seen go yet) is asked for again a few times. `extra`
/// options must be granted.
async fn handshake(
    nick: &str,
    presence: bool,
    extra: u32,
    password: Option<&str>,
    frames: &mut Frames,
    write: &SharedWrite,
) -> Result<usize, SetupError> {
    let fail = |reason: String| SetupError::Handshake {
        nick: nick.to_owned(),
        reason,
    };
    let hello = ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        nick: Bytes::copy_from_slice(nick.as_bytes()),
        // What a client sending runs of messages asks for.
        options: Some(options::ACK_RUNS | extra | if presence { 0 } else { options::NO_PRESENCE }),
        password: password.map(str::to_owned),
    });
    let mut retries = 0;
    send_frame(write, &hello)
        .await
        .map_err(|error| fail(error.to_string()))?;
    loop {
        match frames.next().await {
            Some(Ok(Inbound::Frame(ServerFrame::Welcome(welcome)))) => {
                let granted = welcome.options.unwrap_or(0);
                if extra & options::RELIABLE != 0 && granted & options::RELIABLE == 0 {
                    return Err(fail(format!(
                        "logged in, but the hub did not grant RELIABLE (options {granted:#x}): \
                         a hub without reliable sessions?"
                    )));
                }
                if granted & extra != extra {
                    return Err(fail(format!(
                        "the hub granted options {granted:#x}, not all of {extra:#x} (too old a hub?)"
                    )));
                }
                return Ok(usize::try_from(welcome.max_frame).unwrap_or(usize::MAX));
            }
            Some(Ok(Inbound::Frame(ServerFrame::Error(error))))
                if error.code == Code::NICK_TAKEN && retries < NICK_RETRIES =>
            {
                retries += 1;
                tokio::time::sleep(NICK_RETRY_AFTER).await;
                send_frame(write, &hello)
                    .await
                    .map_err(|error| fail(error.to_string()))?;
            }
            Some(Ok(Inbound::Frame(ServerFrame::Error(error)))) => {
                return Err(SetupError::Refused {
                    nick: nick.to_owned(),
                    code: error.code.0,
                    message: error.message,
                });
            }
            Some(Ok(Inbound::Frame(ServerFrame::Ping(token)))) => {
                send_frame(write, &ClientFrame::Pong(token))
                    .await
                    .map_err(|error| fail(error.to_string()))?;
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(fail(error.to_string())),
            None => return Err(fail("the hub closed the connection".to_owned())),
        }
    }
}
