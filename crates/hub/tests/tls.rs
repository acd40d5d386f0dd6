//! The TLS transport through the hub's one connection code, over an
//! in-memory pipe: what the hub writes reaches a TLS client whole even when
//! the pipe is narrower than the write, and a reloaded acceptor that fails
//! keeps its certificate.

use std::sync::Arc;

use chinwag_client::TlsOptions;
use chinwag_client::rustls::pki_types::pem::PemObject;
use chinwag_client::rustls::pki_types::{CertificateDer, ServerName};
use chinwag_hub::protocol::Recipients;
use chinwag_hub::{Front, Hub, HubConfig, Split, TlsAcceptor};
use chinwag_testkit::{RawClient, TestCerts};
use tokio::io::{AsyncRead, AsyncWrite};

/// A TLS client registered as `nick` over a pipe of `width` bytes each way,
/// served by `hub` through `acceptor`, and the certificate it was shown.
async fn client_over_pipe(
    hub: &Hub,
    acceptor: &TlsAcceptor,
    certs: &TestCerts,
    width: usize,
    nick: &str,
) -> (
    RawClient<impl AsyncRead + AsyncWrite + Unpin>,
    CertificateDer<'static>,
) {
    let (ours, theirs) = tokio::io::duplex(width);
    hub.serve_connection(Split::new(acceptor.accept(ours)), "pipe", Front::Binary)
        .unwrap();
    let config = TlsOptions::with_ca_file("localhost", &certs.ca)
        .unwrap()
        .client_config();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&config));
    let name = ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, theirs).await.unwrap();
    let shown = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    (RawClient::new(stream).registered(nick).await, shown)
}

/// A 32 KiB message through a 4 KiB pipe: rustls takes all of it at once
/// and the pipe a little, so the rest reaches the reader only because the
/// hub's writer flushes the stream (without, it waits in rustls for a next
/// write that never comes).
#[tokio::test]
async fn a_write_wider_than_the_pipe_arrives_whole() {
    let hub = Hub::start(HubConfig::default());
    let certs = TestCerts::new(1);
    let acceptor = TlsAcceptor::from_pem_files(&certs.cert, &certs.key).unwrap();
    let (mut bob, _) = client_over_pipe(&hub, &acceptor, &certs, 4096, "bob").await;
    let mut alice = hub.attach("alice").await.unwrap();
    let text = "x".repeat(32 * 1024);
    alice
        .send(Recipients::Users(vec!["bob".into()]), text.clone())
        .await
        .unwrap();
    let message = bob.expect_message().await;
    assert_eq!(message.text.len(), text.len());
    hub.shutdown().await;
}

/// A reload whose files do not load changes nothing: the acceptor goes on
/// presenting the certificate it had.
#[tokio::test]
async fn a_failed_reload_keeps_the_certificate() {
    let hub = Hub::start(HubConfig::default());
    let mut certs = TestCerts::new(1);
    let acceptor = TlsAcceptor::from_pem_files(&certs.cert, &certs.key).unwrap();
    let first = CertificateDer::from_pem_file(&certs.cert).unwrap();
    std::fs::write(&certs.cert, "not a certificate").unwrap();
    let error = acceptor.reload(&certs.cert, &certs.key).unwrap_err();
    assert!(error.to_string().contains("cert.pem"), "{error}");
    // A key that is not the certificate's is refused too.
    let key = std::fs::read(&certs.key).unwrap();
    certs.issue(2);
    std::fs::write(&certs.key, key).unwrap();
    let error = acceptor.reload(&certs.cert, &certs.key).unwrap_err();
    assert!(error.to_string().contains("key.pem"), "{error}");
    // Still served, with the first certificate.
    let (mut bob, shown) = client_over_pipe(&hub, &acceptor, &certs, 64 * 1024, "bob").await;
    assert_eq!(shown, first);
    bob.send_to(&["bob"], "still here").await;
    assert_eq!(bob.expect_message().await.text, "still here");
    hub.shutdown().await;
}
