//! `chinwagd --web-listen`, end to end: the daemon's web gateway serves its
//! page and a WebSocket client that chats with a plain TCP client; its
//! origins come from the configuration file, and `--print-config` shows
//! them.

mod support;

use chinwag_protocol::{ClientCodec, ServerFrame};
use chinwag_testkit::{PATIENCE, RawClient, encode, guard, hello, http_get, send};
use futures::{SinkExt, StreamExt};
use support::Daemon;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

/// The next frame the hub sent over `ws`.
async fn frame(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>) -> ServerFrame {
    loop {
        match guard(PATIENCE, "a message", ws.next()).await {
            Some(Ok(Message::Binary(bytes))) => {
                let mut buffer = BytesMut::from(&bytes[..]);
                let frame = ClientCodec::default().decode(&mut buffer).unwrap().unwrap();
                assert!(buffer.is_empty());
                return frame;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_daemon_serves_the_page_and_websocket_clients_chat_with_tcp_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chinwagd.toml");
    std::fs::write(
        &config,
        "web-listen = \"127.0.0.1:0\"\nweb-origin = [\"https://chat.example\"]\n",
    )
    .unwrap();
    let mut daemon = Daemon::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let plain = daemon.up().await;
    let web = daemon.line_after("chinwagd web gateway on http://").await;
    let web: std::net::SocketAddr = web.parse().unwrap();

    let (status, body) = http_get(web, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html"), "{body}");

    let mut tcp = RawClient::connect(plain).await.registered("tcp").await;
    let connect = |origin: &'static str| async move {
        let mut request = format!("ws://{web}/ws").into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("chinwag.v1"),
        );
        headers.insert("origin", HeaderValue::from_static(origin));
        let stream = TcpStream::connect(web).await.unwrap();
        tokio_tungstenite::client_async(request, stream).await
    };
    // The file's origin only.
    match connect("http://elsewhere.example").await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
        other => panic!("expected 403, got {other:?}"),
    }
    let (mut ws, _) = connect("https://chat.example").await.unwrap();
    ws.send(Message::binary(encode(&hello("web"))))
        .await
        .unwrap();
    assert!(matches!(frame(&mut ws).await, ServerFrame::Welcome(_)));
    ws.send(Message::binary(encode(&send(
        1,
        &["tcp"],
        "hi from the web",
    ))))
    .await
    .unwrap();
    assert_eq!(tcp.expect_message().await.text, "hi from the web");
    tcp.send_to(&["web"], "hi back").await;
    loop {
        if let ServerFrame::Message(message) = frame(&mut ws).await {
            assert_eq!(
                (message.from.as_str(), message.text.as_str()),
                ("tcp", "hi back")
            );
            break;
        }
    }
    assert!(daemon.terminate().await.success());
}

#[test]
fn print_config_shows_the_web_settings_and_web_tls_needs_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let output = std::process::Command::new(support::BIN)
        .args([
            "--web-listen",
            "127.0.0.1:2450",
            "--web-origin",
            "https://a.example,https://b.example",
            "--print-config",
        ])
        .env("CHINWAGD_CONFIG", &empty)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("web-listen = \"127.0.0.1:2450\""), "{text}");
    assert!(text.contains("https://a.example"), "{text}");
    assert!(text.contains("web-tls = false"), "{text}");

    let output = std::process::Command::new(support::BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
            "--web-tls",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--web-tls needs --tls-cert and --tls-key"),
        "{stderr}"
    );
}
