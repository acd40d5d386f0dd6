//! TLS to a hub's TLS port (`chinwagd --tls-listen`), and the socket the
//! connection task reads and writes: plain TCP or TLS over it.
//!
//! The server's certificate is checked against the system's roots (the
//! operating system's store, through `rustls-native-certs`) or, with
//! [`TlsOptions::with_ca_file`], against a private CA's certificates only;
//! and it must name the server: the name given to [`TlsOptions::new`]
//! (the CLI takes the host of `--server`, or `--tls-server-name`).

use std::fmt;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chinwag_protocol::TLS_ALPN;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, version};

use crate::ClientError;

/// How to speak TLS to a hub's TLS port:
/// [`ClientOptions::tls`](crate::ClientOptions::tls).
///
/// ```no_run
/// use chinwag_client::{Client, ClientOptions, TlsOptions};
///
/// # async fn demo() -> Result<(), chinwag_client::ClientError> {
/// // The system's roots, and the certificate must name chat.example.org.
/// let tls = TlsOptions::new("chat.example.org")?;
/// let options = ClientOptions::default().tls(tls);
/// let (client, events) = Client::connect_with("chat.example.org:2449", "alice", options).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsOptions {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsOptions {
    /// TLS to a server whose certificate names `server_name` (a DNS name
    /// or an IP address) and chains to one of the system's roots.
    ///
    /// # Errors
    /// [`ClientError::TlsSetup`] for a name that is neither, or when the
    /// system has no roots that load.
    pub fn new(server_name: &str) -> Result<Self, ClientError> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map_or_else(|| "none found".to_owned(), ToString::to_string);
            return Err(ClientError::TlsSetup(format!(
                "no system root certificates ({why}); give a CA file"
            )));
        }
        Self::with_roots(server_name, roots)
    }

    /// TLS to a server whose certificate names `server_name` and chains to
    /// one of the certificates in `ca` (PEM): a private CA, or the server's
    /// own self-signed certificate. The system's roots are not trusted.
    ///
    /// # Errors
    /// [`ClientError::TlsSetup`] when the file cannot be read, holds no
    /// certificate, or the name is not a DNS name or an IP address.
    pub fn with_ca_file(server_name: &str, ca: &Path) -> Result<Self, ClientError> {
        let setup = |error: &dyn fmt::Display| {
            ClientError::TlsSetup(format!("CA file {}: {error}", ca.display()))
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).map_err(|error| setup(&error))? {
            let cert = cert.map_err(|error| setup(&error))?;
            roots.add(cert).map_err(|error| setup(&error))?;
        }
        if roots.is_empty() {
            return Err(setup(&"no certificate in the file"));
        }
        Self::with_roots(server_name, roots)
    }

    fn with_roots(server_name: &str, roots: RootCertStore) -> Result<Self, ClientError> {
        let server_name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            ClientError::TlsSetup(format!(
                "{server_name:?} is not a DNS name or an IP address to check the certificate against"
            ))
        })?;
        let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(&[&version::TLS13, &version::TLS12])
            .map_err(|error| ClientError::TlsSetup(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![TLS_ALPN.to_vec()];
        Ok(Self {
            config: Arc::new(config),
            server_name,
        })
    }

    /// The rustls configuration these options connect with (for a program
    /// that opens TLS connections of its own, as `chinwag bench` does).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The name the server's certificate must carry.
    pub fn server_name(&self) -> String {
        self.server_name.to_str().into_owned()
    }

    /// TLS over `tcp`, its handshake done.
    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, ClientError> {
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(handshake_error)
    }
}

/// What a failed handshake means: bytes that are not TLS (a plain port
/// answered with a chinwag frame), the server's certificate refused, or
/// the connection lost.
fn handshake_error(error: io::Error) -> ClientError {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidMessage(_)) => ClientError::NotTls,
        Some(_) => ClientError::Tls(error),
        None => ClientError::Io(error),
    }
}

/// The read side of a connection to the hub.
#[derive(Debug)]
pub(crate) enum ReadHalf {
    Tcp(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
}

/// The write side of a connection to the hub.
#[derive(Debug)]
pub(crate) enum WriteHalf {
    Tcp(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
}

/// Opens a connection on `tcp`, over TLS with `tls`, and splits it.
pub(crate) async fn open(
    tcp: TcpStream,
    tls: Option<&TlsOptions>,
) -> Result<(ReadHalf, WriteHalf), ClientError> {
    // Frames are written whole and at once; Nagle would only add latency.
    let _ = tcp.set_nodelay(true);
    Ok(match tls {
        None => {
            let (read, write) = tcp.into_split();
            (ReadHalf::Tcp(read), WriteHalf::Tcp(write))
        }
        Some(tls) => {
            let (read, write) = tokio::io::split(tls.connect(tcp).await?);
            (ReadHalf::Tls(read), WriteHalf::Tls(write))
        }
    })
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
        }
    }
}

impl WriteHalf {
    /// Whether a write can leave bytes behind that only a flush sends
    /// (TLS, when the socket would block); a TCP socket's never does.
    pub(crate) fn buffers(&self) -> bool {
        matches!(self, Self::Tls(_))
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
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(write) => write.is_write_vectored(),
            Self::Tls(write) => write.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(write) => Pin::new(write).poll_flush(cx),
            Self::Tls(write) => Pin::new(write).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(write) => Pin::new(write).poll_shutdown(cx),
            Self::Tls(write) => Pin::new(write).poll_shutdown(cx),
        }
    }
}
