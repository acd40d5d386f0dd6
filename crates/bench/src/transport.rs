//! How the bench's connections travel: plain TCP, TLS (`chinwag --tls
//! bench ...`), or WebSocket over either (`chinwag bench --ws ...`, the
//! adapter in `ws.rs`). Each connection's handshakes, and the halves every
//! workload reads and writes, without a cost to the plain ones beyond a
//! branch.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::error::SetupError;
use crate::ws::{self, Endpoint, Stream};

/// TLS as the `chinwag` program's `--tls`, `--ca` and `--tls-server-name`
/// set it up.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The rustls configuration: roots to check the hub's certificate with.
    pub config: Arc<ClientConfig>,
    /// The name the hub's certificate must carry.
    pub server_name: String,
}

/// [`Tls`] ready to connect with, made once per run.
#[derive(Clone)]
pub(crate) struct Connector {
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The ALPN protocol a WebSocket over TLS asks for: the hub's web
/// gateway speaks HTTP/1.1 only, and refuses a handshake that names no
/// protocol it speaks (`docs/protocol.md` section 1.2).
const HTTP_ALPN: &[u8] = b"http/1.1";

impl Connector {
    /// The connector of a run, for the web gateway's `wss:` with `ws`.
    pub(crate) fn new(tls: Tls, ws: bool) -> Result<Self, SetupError> {
        let server_name = ServerName::try_from(tls.server_name.clone()).map_err(|_| {
            SetupError::Usage(format!(
                "{:?} is not a DNS name or an IP address for TLS",
                tls.server_name
            ))
        })?;
        let config = if ws {
            let mut config = ClientConfig::clone(&tls.config);
            config.alpn_protocols = vec![HTTP_ALPN.to_vec()];
            Arc::new(config)
        } else {
            tls.config
        };
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(config),
            server_name,
        })
    }
}

/// A connection's read half.
#[derive(Debug)]
pub(crate) enum ReadHalf {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
    Ws(ws::ReadHalf),
}

/// A connection's write half.
#[derive(Debug)]
pub(crate) enum WriteHalf {
    Tcp(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
    Ws(ws::WriteHalf),
}

/// `stream` split into halves, after a TLS handshake on it with `tls`
/// and, with `ws`, a WebSocket handshake (reading with a buffer of
/// `read_buffer` bytes).
pub(crate) async fn split(
    stream: TcpStream,
    tls: Option<&Connector>,
    ws: Option<&Endpoint>,
    read_buffer: usize,
) -> io::Result<(ReadHalf, WriteHalf)> {
    Ok(match (tls, ws) {
        (None, None) => {
            let (read, write) = stream.into_split();
            (ReadHalf::Tcp(read), WriteHalf::Tcp(write))
        }
        (Some(tls), None) => {
            let (read, write) = tokio::io::split(tls.connect(stream).await?);
            (ReadHalf::Tls(read), WriteHalf::Tls(write))
        }
        (tls, Some(endpoint)) => {
            let stream = match tls {
                None => Stream::Tcp(stream),
                Some(tls) => Stream::Tls(Box::new(tls.connect(stream).await?)),
            };
            let (read, write) = ws::handshake(stream, endpoint, read_buffer).await?;
            (ReadHalf::Ws(read), WriteHalf::Ws(write))
        }
    })
}

impl Connector {
    /// The TLS handshake on `stream`.
    async fn connect(&self, stream: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        self.connector
            .connect(self.server_name.clone(), stream)
            .await
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(read) => Pin::new(read).poll_read(cx, buf),
            Self::Tls(read) => Pin::new(read).poll_read(cx, buf),
            Self::Ws(read) => Pin::new(read).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(write) => Pin::new(write).poll_write(cx, buf),
            Self::Tls(write) => Pin::new(write).poll_write(cx, buf),
            Self::Ws(write) => Pin::new(write).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(write) => Pin::new(write).poll_write_vectored(cx, bufs),
            Self::Tls(write) => Pin::new(write).poll_write_vectored(cx, bufs),
            Self::Ws(write) => Pin::new(write).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(write) => write.is_write_vectored(),
            Self::Tls(write) => write.is_write_vectored(),
            Self::Ws(write) => write.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(write) => Pin::new(write).poll_flush(cx),
            Self::Tls(write) => Pin::new(write).poll_flush(cx),
            Self::Ws(write) => Pin::new(write).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(write) => Pin::new(write).poll_shutdown(cx),
            Self::Tls(write) => Pin::new(write).poll_shutdown(cx),
            Self::Ws(write) => Pin::new(write).poll_shutdown(cx),
        }
    }
}
