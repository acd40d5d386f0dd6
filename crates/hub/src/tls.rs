//! TLS on any of the hub's listeners: the binary (or text) protocol
//! unchanged inside TLS 1.2 or 1.3, through rustls.
//!
//! - [`TlsAcceptor`] holds the server's configuration and its certificate,
//!   which [`TlsAcceptor::reload`] replaces in place: the next handshake
//!   uses the new one, connections already open keep theirs.
//! - [`TlsListener`] wraps any byte-stream [`Listener`] (TCP, Unix):
//!   what it accepts is a [`TlsStream`] whose handshake has not begun, so
//!   the accept loop never waits on a handshake.
//! - [`TlsStream`] does its handshake when the connection's task first
//!   reads from it, after the connection was admitted under the hub's
//!   limits like any other. Until the handshake is done it is an
//!   unregistered connection: the registration deadline bounds the
//!   handshake and the `HELLO` after it together, and it can be shed. A
//!   write before the handshake is done (the hub's last words to a
//!   connection it closes: a timeout, `SERVER_FULL`, shutdown) fails at
//!   once instead of waiting for a peer that never completes it.
//!
//! Bytes that are not TLS fail the handshake at the first record (rustls
//! reads a record header of 5 bytes and refuses a bad one), and what a
//! handshake can hold is bounded by rustls: one record of at most 16 KiB
//! plus its header, and handshake messages of at most 64 KiB.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, ready};

use chinwag_protocol::TLS_ALPN;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig, version};
use tokio_rustls::{Accept, server};

use crate::listener::{Listener, Split};
use crate::{Front, Hub};

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{}: no certificate in the file", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key cannot be used: a kind rustls does not sign with, or not the
    /// key of the certificate.
    #[error("{}: {source}", path.display())]
    Key {
        /// The key's file.
        path: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// The server's side of TLS: a rustls configuration (TLS 1.2 and 1.3 only,
/// `ring`'s cryptography, the ALPN name `chinwag`) and the certificate it
/// presents. Cheap to clone: clones share the certificate, so a
/// [`reload`](Self::reload) through any of them is seen by all.
///
/// ```no_run
/// use chinwag_hub::{Hub, HubConfig, TlsAcceptor};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let hub = Hub::start(HubConfig::default());
/// let tls = TlsAcceptor::from_pem_files("cert.pem".as_ref(), "key.pem".as_ref())?;
/// let listener = chinwag_hub::bind_tcp("127.0.0.1:2449".parse()?)?;
/// hub.serve_tls(listener, tls).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    acceptor: tokio_rustls::TlsAcceptor,
    certificate: Arc<Certificate>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor").finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// An acceptor presenting the certificate chain in `cert` (PEM, the
    /// server's own certificate first) with the private key in `key` (PEM:
    /// PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`TlsError`] saying which file and why.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let certified = load(cert, key, &provider)?;
        Self::with_key(certified, provider)
    }

    /// An acceptor presenting `chain` (the server's certificate first) with
    /// `key`, already in DER.
    ///
    /// # Errors
    /// [`TlsError::Key`] when the key cannot be used with the certificate.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let certified =
            CertifiedKey::from_der(chain, key, &provider).map_err(|source| TlsError::Key {
                path: PathBuf::from("(key given in DER)"),
                source,
            })?;
        Self::with_key(certified, provider)
    }

    fn with_key(certified: CertifiedKey, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let certificate = Arc::new(Certificate {
            current: RwLock::new(Arc::new(certified)),
        });
        Self::sharing(certificate, provider, &[TLS_ALPN])
    }

    /// An acceptor presenting `certificate`, offering `alpn`.
    fn sharing(
        certificate: Arc<Certificate>,
        provider: Arc<CryptoProvider>,
        alpn: &[&[u8]],
    ) -> Result<Self, TlsError> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&version::TLS13, &version::TLS12])
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        config.alpn_protocols = alpn.iter().map(|name| name.to_vec()).collect();
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            certificate,
            provider,
        })
    }

    /// An acceptor for another protocol on the same certificate: it offers
    /// the ALPN names `alpn` instead of `chinwag` (the web gateway's
    /// `http/1.1`, which browsers ask for), and shares this one's
    /// certificate, so that a [`reload`](Self::reload) through either is
    /// seen by both.
    ///
    /// # Errors
    /// [`TlsError::Config`] if rustls refuses the configuration.
    pub fn with_alpn(&self, alpn: &[&[u8]]) -> Result<Self, TlsError> {
        Self::sharing(
            Arc::clone(&self.certificate),
            Arc::clone(&self.provider),
            alpn,
        )
    }

    /// Reads `cert` and `key` again and presents them from the next
    /// handshake on; connections already open are not touched. On an
    /// error the certificate in force stays.
    ///
    /// # Errors
    /// As [`from_pem_files`](Self::from_pem_files).
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let certified = load(cert, key, &self.provider)?;
        *self
            .certificate
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
        Ok(())
    }

    /// Begins serving TLS on `io`: the handshake is done when the stream is
    /// first read (see [`TlsStream`]).
    pub fn accept<IO>(&self, io: IO) -> TlsStream<IO>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        TlsStream {
            state: State::Handshaking(self.acceptor.accept(io)),
        }
    }
}

/// The certificate presented, replaced whole by a reload.
#[derive(Debug)]
struct Certificate {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// The chain in `cert` and the key in `key`, checked to belong together.
fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let pem = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Pem { path, source }
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(pem(cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem(cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(pem(key))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|source| TlsError::Key {
        path: key.to_owned(),
        source,
    })
}

/// A connection served over TLS, its handshake done on first use: the
/// first read drives it (so it runs in the connection's own task, under
/// its deadlines), and a write before it is done fails at once with
/// `NotConnected`.
pub struct TlsStream<IO> {
    state: State<IO>,
}

enum State<IO> {
    Handshaking(Accept<IO>),
    Open(server::TlsStream<IO>),
    Failed,
}

impl<IO> fmt::Debug for TlsStream<IO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Handshaking(_) => "handshaking",
            State::Open(_) => "open",
            State::Failed => "failed",
        };
        f.debug_struct("TlsStream").field("state", &state).finish()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsStream<IO> {
    /// Drives the handshake until it is done or fails.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let State::Handshaking(accept) = &mut self.state else {
            return Poll::Ready(Ok(()));
        };
        match ready!(Pin::new(accept).poll(cx)) {
            Ok(stream) => {
                self.state = State::Open(stream);
                Poll::Ready(Ok(()))
            }
            Err(error) => {
                self.state = State::Failed;
                Poll::Ready(Err(io::Error::new(
                    error.kind(),
                    format!("TLS handshake failed: {error}"),
                )))
            }
        }
    }

    /// The stream, once the handshake is done; an error for a write
    /// before then.
    fn open_for_write(&mut self) -> io::Result<Pin<&mut server::TlsStream<IO>>> {
        match &mut self.state {
            State::Open(stream) => Ok(Pin::new(stream)),
            State::Handshaking(_) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake not complete",
            )),
            State::Failed => Err(failed()),
        }
    }
}

fn failed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "TLS handshake failed")
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_handshake(cx))?;
        match &mut this.state {
            State::Open(stream) => Pin::new(stream).poll_read(cx, buf),
            _ => Poll::Ready(Err(failed())),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().open_for_write() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().open_for_write() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Open(stream) => Pin::new(stream).poll_flush(cx),
            // Nothing of ours was written.
            State::Handshaking(_) | State::Failed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Open(stream) => Pin::new(stream).poll_shutdown(cx),
            State::Handshaking(accept) => match accept.get_mut() {
                Some(io) => Pin::new(io).poll_shutdown(cx),
                None => Poll::Ready(Ok(())),
            },
            State::Failed => Poll::Ready(Ok(())),
        }
    }
}

/// A listener whose connections speak TLS: each accepted stream is handed
/// out at once as a [`TlsStream`] whose handshake its connection's task
/// will do, so one slow or silent peer never holds up the accept loop.
#[derive(Debug)]
pub struct TlsListener<L> {
    inner: L,
    acceptor: TlsAcceptor,
}

impl<L> TlsListener<L> {
    /// Wraps `inner`, serving TLS with `acceptor` on what it accepts.
    pub fn new(inner: L, acceptor: TlsAcceptor) -> Self {
        Self { inner, acceptor }
    }
}

impl<L> Listener for TlsListener<L>
where
    L: Listener,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send,
{
    type Io = Split<TlsStream<L::Io>>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> io::Result<(Self::Io, Self::Addr)> {
        let (io, peer) = self.inner.accept().await?;
        Ok((Split::new(self.acceptor.accept(io)), peer))
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl Hub {
    /// Accepts binary-protocol connections over TLS on `listener` until
    /// shutdown begins, as [`serve`](Self::serve) does over plain TCP:
    /// each handshake is done in its connection's task, under the same
    /// admission limits and deadlines (the registration deadline bounds
    /// the handshake). `acceptor` can be [reloaded](TlsAcceptor::reload)
    /// meanwhile.
    ///
    /// # Errors
    /// As [`serve`](Self::serve).
    pub async fn serve_tls<L>(&self, listener: L, acceptor: TlsAcceptor) -> io::Result<()>
    where
        L: Listener,
        L::Io: AsyncRead + AsyncWrite + Unpin + Send,
    {
        self.serve_front(TlsListener::new(listener, acceptor), Front::Binary)
            .await
    }
}
