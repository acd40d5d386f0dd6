//! What the hub serves connections over: a [`Transport`] is one accepted
//! byte stream, a [`Listener`] hands them out.
//!
//! Every front end runs the same connection code over a read half and a
//! write half, polled by one task, so a transport only has to say how it
//! splits. TCP and Unix sockets split in place, for free; any other stream
//! (TLS, an in-memory pipe, a WebSocket adapted to bytes) goes through
//! [`Split`], which shares it between the halves.
//!
//! The accept loop is written against [`Listener`], modelled on axum's
//! trait of the same name: `TcpListener` and `UnixListener` are listeners,
//! and a TLS acceptor wrapping one can be another.

use std::fmt;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream, tcp};

use crate::admission::Peer;

/// A byte stream the hub can serve a connection over, split into the halves
/// that the connection's reader and writer use at once.
pub trait Transport: Send + 'static {
    /// The read half.
    type Read<'a>: AsyncRead + Send + Unpin
    where
        Self: 'a;
    /// The write half.
    type Write<'a>: AsyncWrite + Send + Unpin
    where
        Self: 'a;

    /// Both halves, borrowed for as long as the connection is served.
    fn split(&mut self) -> (Self::Read<'_>, Self::Write<'_>);
}

impl Transport for TcpStream {
    type Read<'a> = tcp::ReadHalf<'a>;
    type Write<'a> = tcp::WriteHalf<'a>;

    fn split(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        Self::split(self)
    }
}

#[cfg(unix)]
impl Transport for tokio::net::UnixStream {
    type Read<'a> = tokio::net::unix::ReadHalf<'a>;
    type Write<'a> = tokio::net::unix::WriteHalf<'a>;

    fn split(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        Self::split(self)
    }
}

/// Any other byte stream, as a [`Transport`]: split with
/// [`tokio::io::split`], whose halves take turns at the stream behind a
/// lock (never contended: one task polls both).
///
/// ```no_run
/// use chinwag_hub::{Front, Hub, HubConfig, Split};
///
/// # async fn demo() {
/// let hub = Hub::start(HubConfig::default());
/// let (ours, theirs) = tokio::io::duplex(64 * 1024);
/// hub.serve_connection(Split::new(ours), "in-memory", Front::Binary);
/// // `theirs` now speaks the binary protocol to the hub.
/// # drop(theirs);
/// # }
/// ```
pub struct Split<S> {
    read: ReadHalf<S>,
    write: WriteHalf<S>,
}

impl<S: AsyncRead + AsyncWrite> Split<S> {
    /// Wraps `stream`.
    pub fn new(stream: S) -> Self {
        let (read, write) = tokio::io::split(stream);
        Self { read, write }
    }
}

impl<S> fmt::Debug for Split<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Split").finish_non_exhaustive()
    }
}

impl<S> Transport for Split<S>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    type Read<'a> = &'a mut ReadHalf<S>;
    type Write<'a> = &'a mut WriteHalf<S>;

    fn split(&mut self) -> (Self::Read<'_>, Self::Write<'_>) {
        (&mut self.read, &mut self.write)
    }
}

/// Hands out accepted connections to the hub's accept loop
/// ([`Hub::serve`](crate::Hub::serve)).
pub trait Listener: Send + 'static {
    /// An accepted connection.
    type Io: Transport;
    /// Where a connection came from: for the logs, and for the limits per
    /// source address.
    type Addr: Peer;

    /// The next connection. An error is logged and retried after a pause
    /// (running out of file descriptors is the usual one).
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>> + Send;

    /// The address this listener is bound to.
    ///
    /// # Errors
    /// As the socket's own `local_addr`.
    fn local_addr(&self) -> io::Result<Self::Addr>;
}

impl Listener for TcpListener {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> io::Result<(Self::Io, Self::Addr)> {
        let (stream, peer) = Self::accept(self).await?;
        // The writers coalesce frames themselves; Nagle would only add
        // latency.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Self::local_addr(self)
    }
}

#[cfg(unix)]
impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> io::Result<(Self::Io, Self::Addr)> {
        Self::accept(self).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Self::local_addr(self)
    }
}

/// The backlog of connections the kernel completes before the hub accepts
/// them: room for a crowd of thousands reconnecting at once, so that the
/// queue does not overflow and the kernel does not drop a newcomer's `SYN`
/// (which its TCP retries only a second later). The kernel caps it at
/// `net.core.somaxconn` (4,096 on current Linux).
pub const BACKLOG: u32 = 4096;

/// Binds a TCP listener for the hub: `SO_REUSEADDR` (a restarted daemon can
/// bind again at once) and a backlog of [`BACKLOG`]. `TcpListener::bind`
/// works too, with the standard library's smaller backlog.
///
/// # Errors
/// As binding and listening on the socket.
pub fn bind_tcp(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
