//! `chinwagd --tls-listen`, over real sockets: library clients chat over
//! TLS, `openssl s_client` (a client nobody here wrote) gets its `WELCOME`,
//! a plain client on the TLS port and a TLS client on the plain port each
//! fail clearly, garbage is closed fast, and SIGHUP swaps the certificate
//! for new connections while old ones keep chatting.

mod support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chinwag_client::rustls::pki_types::pem::PemObject;
use chinwag_client::rustls::pki_types::{CertificateDer, ServerName};
use chinwag_client::{Client, ClientError, ClientOptions, Event, Events, TlsOptions};
use chinwag_protocol::{ClientCodec, ServerFrame, encode_frame};
use chinwag_testkit::{PATIENCE, TestCerts, guard, hello};
use futures::StreamExt;
use support::Daemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

/// A daemon with a TLS port on `certs`, `args` after; its plain and TLS
/// addresses.
async fn start(
    dir: &std::path::Path,
    certs: &TestCerts,
    args: &[&str],
) -> (Daemon, SocketAddr, SocketAddr) {
    let mut all = vec![
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        certs.cert.to_str().unwrap(),
        "--tls-key",
        certs.key.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let mut daemon = Daemon::start(dir, &all);
    let plain = daemon.up().await;
    let tls = daemon.line_after("chinwagd TLS port on ").await;
    (daemon, plain, tls.parse().unwrap())
}

fn tls_options(certs: &TestCerts) -> ClientOptions {
    ClientOptions::default().tls(TlsOptions::with_ca_file("localhost", &certs.ca).unwrap())
}

async fn message(events: &mut Events) -> String {
    guard(PATIENCE, "a message", async {
        loop {
            match events.recv().await {
                Some(Event::Message(message)) => return message.text,
                Some(_) => {}
                None => panic!("events ended"),
            }
        }
    })
    .await
}

/// The certificate a new TLS connection to `addr` is shown.
async fn presented(addr: SocketAddr, certs: &TestCerts) -> CertificateDer<'static> {
    let config = TlsOptions::with_ca_file("localhost", &certs.ca)
        .unwrap()
        .client_config();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&config));
    let name = ServerName::try_from("localhost").unwrap();
    let stream = guard(PATIENCE, "a TLS handshake", connector.connect(name, tcp))
        .await
        .unwrap();
    let (_, connection) = stream.get_ref();
    connection.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// How long until the peer closes `stream`, reading and dropping what it
/// sends; `None` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut scratch = vec![0u8; 64 * 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// How many connections the hub serves, from its admin endpoint's `/connz`.
async fn connections(admin: SocketAddr) -> u64 {
    let (status, body) = chinwag_testkit::http_get(admin, "/connz").await;
    assert_eq!(status, 200, "{body}");
    let connz: serde_json::Value = serde_json::from_str(&body).unwrap();
    connz["total"].as_u64().unwrap()
}

#[tokio::test]
async fn library_clients_chat_over_tls_and_the_name_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(1);
    let (daemon, _, tls) = start(dir.path(), &certs, &[]).await;

    let (alice, _alice_events) = Client::connect_with(tls, "alice", tls_options(&certs))
        .await
        .unwrap();
    let (_bob, mut bob_events) = Client::connect_with(tls, "bob", tls_options(&certs))
        .await
        .unwrap();
    let ack = alice.send_to(&["bob"], "over TLS").await.unwrap();
    assert!(ack.all_delivered(), "{ack:?}");
    assert_eq!(message(&mut bob_events).await, "over TLS");

    // A certificate for localhost and 127.0.0.1 is not one for another name.
    let wrong = ClientOptions::default()
        .tls(TlsOptions::with_ca_file("chat.example.org", &certs.ca).unwrap());
    let refused = Client::connect_with(tls, "carol", wrong).await;
    assert!(
        matches!(refused, Err(ClientError::Tls(_))),
        "{:?}",
        refused.err()
    );
    // Nor is it trusted without the private CA (the system's roots).
    if let Ok(system) = TlsOptions::new("localhost") {
        let refused = Client::connect_with(tls, "dave", ClientOptions::default().tls(system)).await;
        assert!(
            matches!(refused, Err(ClientError::Tls(_))),
            "{:?}",
            refused.err()
        );
    }
    assert!(daemon.terminate().await.success());
}

#[tokio::test]
async fn a_tls_client_on_the_plain_port_is_told_it_is_not_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(1);
    let (daemon, plain, _) = start(dir.path(), &certs, &[]).await;
    let error = Client::connect_with(plain, "alice", tls_options(&certs))
        .await
        .err()
        .unwrap();
    assert!(matches!(error, ClientError::NotTls), "{error:?}");
    assert!(error.to_string().contains("does not speak TLS"), "{error}");
    assert!(daemon.terminate().await.success());
}

#[tokio::test]
async fn a_plain_client_on_the_tls_port_is_closed_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(1);
    let (daemon, _, tls) = start(dir.path(), &certs, &["--registration-timeout", "1s"]).await;

    // A HELLO in the clear is not a TLS record: closed at once.
    let mut speaks = TcpStream::connect(tls).await.unwrap();
    let bytes = encode_frame(&hello("alice"), usize::MAX).unwrap();
    speaks.write_all(&bytes).await.unwrap();
    let after = closed_within(&mut speaks, Duration::from_secs(5)).await;
    let after = after.expect("a plain HELLO on the TLS port was not closed");
    assert!(after < Duration::from_millis(900), "closed after {after:?}");

    // A silent one is closed at the deadline (plus the half-second linger
    // of a connection closed for a limit).
    let mut silent = TcpStream::connect(tls).await.unwrap();
    let after = closed_within(&mut silent, Duration::from_secs(5)).await;
    let after = after.expect("a silent client on the TLS port was not closed");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "closed after {after:?}"
    );
    assert!(daemon.terminate().await.success());
}

#[tokio::test]
async fn garbage_on_the_tls_port_is_closed_fast_and_harms_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(1);
    let all = [
        "--admin-listen",
        "127.0.0.1:0",
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        certs.cert.to_str().unwrap(),
        "--tls-key",
        certs.key.to_str().unwrap(),
    ];
    let mut daemon = Daemon::start(dir.path(), &all);
    daemon.up().await;
    let admin: SocketAddr = daemon
        .line_after("chinwagd admin endpoint on http://")
        .await
        .parse()
        .unwrap();
    let tls: SocketAddr = daemon
        .line_after("chinwagd TLS port on ")
        .await
        .parse()
        .unwrap();
    let (alice, _alice_events) = Client::connect_with(tls, "alice", tls_options(&certs))
        .await
        .unwrap();
    let (_bob, mut bob_events) = Client::connect_with(tls, "bob", tls_options(&certs))
        .await
        .unwrap();

    let garbage: [&[u8]; 3] = [
        // Not a TLS record type at all.
        &[0xff; 4096],
        // A handshake record announcing more than a record may hold.
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0],
        // A handshake record holding a message that is not a ClientHello.
        &[0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00],
    ];
    for bytes in garbage {
        let mut stream = TcpStream::connect(tls).await.unwrap();
        // The hub may close before it has read everything: a reset then.
        let _ = stream.write_all(bytes).await;
        let after = closed_within(&mut stream, Duration::from_secs(5)).await;
        let after = after.unwrap_or_else(|| panic!("{bytes:02x?} was not closed"));
        // The registration deadline is 5 s: this is the handshake failing.
        assert!(after < Duration::from_secs(2), "closed after {after:?}");
    }
    // And the hub let go of them as fast (not at the registration
    // deadline): only alice and bob are left. Each look is a round trip
    // through the admin endpoint.
    let start = Instant::now();
    while connections(admin).await != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the hub held on to the garbage"
        );
    }
    alice.send_to(&["bob"], "still here").await.unwrap();
    assert_eq!(message(&mut bob_events).await, "still here");
    assert!(daemon.terminate().await.success());
}

#[tokio::test]
async fn sighup_presents_a_new_certificate_and_keeps_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut certs = TestCerts::new(1);
    let (daemon, _, tls) = start(dir.path(), &certs, &[]).await;
    let first = CertificateDer::from_pem_file(&certs.cert).unwrap();
    assert_eq!(presented(tls, &certs).await, first);
    let (alice, _alice_events) = Client::connect_with(tls, "alice", tls_options(&certs))
        .await
        .unwrap();
    let (_bob, mut bob_events) = Client::connect_with(tls, "bob", tls_options(&certs))
        .await
        .unwrap();

    certs.issue(2);
    let second = CertificateDer::from_pem_file(&certs.cert).unwrap();
    assert_ne!(first, second);
    daemon.hangup().await;
    // Each try is a whole handshake: the reload is seen by the first one
    // after the daemon handled the signal.
    guard(PATIENCE, "the new certificate", async {
        while presented(tls, &certs).await != second {}
    })
    .await;

    // The connections made under the old certificate go on.
    let ack = alice.send_to(&["bob"], "after the reload").await.unwrap();
    assert!(ack.all_delivered(), "{ack:?}");
    assert_eq!(message(&mut bob_events).await, "after the reload");
    assert!(daemon.terminate().await.success());
}

/// `openssl s_client`, which nobody here wrote, checks the certificate
/// against the CA and the name, and carries a HELLO frame's bytes to the
/// hub and its WELCOME back.
#[tokio::test]
async fn openssl_s_client_is_welcomed() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED openssl_s_client_is_welcomed: no `openssl` program on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::new(1);
    let (daemon, _, tls) = start(dir.path(), &certs, &[]).await;
    let mut child = tokio::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error"])
        .args(["-connect", &tls.to_string()])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args(["-alpn", "chinwag"])
        .arg("-CAfile")
        .arg(&certs.ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bytes = encode_frame(&hello("openssl"), usize::MAX).unwrap();
    stdin.write_all(&bytes).await.unwrap();
    stdin.flush().await.unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut frames = FramedRead::new(stdout, ClientCodec::default());
    let first = guard(PATIENCE, "WELCOME through openssl", frames.next()).await;
    match first {
        Some(Ok(ServerFrame::Welcome(welcome))) => assert_eq!(welcome.nick, "openssl"),
        other => {
            drop(stdin);
            let output = child.wait_with_output().await.unwrap();
            panic!(
                "expected WELCOME, got {other:?}; openssl said: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    drop(stdin);
    assert!(daemon.terminate().await.success());
}
