//! The web gateway over real sockets: a hub on TCP and the gateway beside
//! it, WebSocket clients (tokio-tungstenite) talking to plain TCP clients
//! through the same hub, and each misuse of the WebSocket binding
//! (`docs/protocol.md`, section 1.2) answered as documented.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use chinwag_hub::protocol::{ClientCodec, ClientFrame, Code, ServerFrame};
use chinwag_hub::{HubConfig, TlsAcceptor};
use chinwag_testkit::{PATIENCE, RawClient, TestHub, encode, guard, hello, send, settle};
use chinwag_web::{Origins, SUBPROTOCOL, WebConfig};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::codec::Decoder;

/// A hub on TCP and its web gateway.
struct Gateway {
    hub: TestHub,
    web: SocketAddr,
}

async fn start(config: HubConfig, web: WebConfig) -> Gateway {
    let hub = TestHub::with_config(config).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(chinwag_web::serve(hub.hub.clone(), listener, web));
    Gateway { hub, web: addr }
}

/// An upgrade request to `/ws` with these headers.
fn request(
    addr: SocketAddr,
    origin: Option<&str>,
    protocol: Option<&str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    let headers = request.headers_mut();
    if let Some(origin) = origin {
        headers.insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    if let Some(protocol) = protocol {
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).unwrap(),
        );
    }
    request
}

type Ws<S = TcpStream> = WebSocketStream<S>;

/// Opens a WebSocket over `stream` with `request`; the handshake's error
/// if refused.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> Result<Ws<S>, WsError> {
    let (ws, response) = guard(
        PATIENCE,
        "the handshake",
        tokio_tungstenite::client_async(request, stream),
    )
    .await?;
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        SUBPROTOCOL
    );
    Ok(ws)
}

/// A WebSocket to the gateway, as a browser's page on it opens one.
async fn connect(addr: SocketAddr) -> Ws {
    let origin = format!("http://{addr}");
    let stream = TcpStream::connect(addr).await.unwrap();
    handshake(stream, request(addr, Some(&origin), Some(SUBPROTOCOL)))
        .await
        .unwrap()
}

/// Sends `frame` as one binary message.
async fn put(ws: &mut Ws<impl AsyncRead + AsyncWrite + Unpin>, frame: &ClientFrame) {
    ws.send(Message::binary(encode(frame))).await.unwrap();
}

/// What the hub sent next: a frame (each binary message must be exactly
/// one), or how it closed.
#[derive(Debug, PartialEq)]
enum Next {
    Frame(ServerFrame),
    Closed(Option<CloseCode>),
}

async fn next(ws: &mut Ws<impl AsyncRead + AsyncWrite + Unpin>) -> Next {
    loop {
        match guard(PATIENCE, "a message", ws.next()).await {
            Some(Ok(Message::Binary(bytes))) => {
                let mut buffer = BytesMut::from(&bytes[..]);
                let frame = ClientCodec::default().decode(&mut buffer).unwrap();
                assert!(buffer.is_empty(), "a message holds more than one frame");
                return Next::Frame(frame.expect("a message holds a whole frame"));
            }
            Some(Ok(Message::Close(close))) => return Next::Closed(close.map(|c| c.code)),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(other)) => panic!("unexpected {other:?}"),
            Some(Err(_)) | None => return Next::Closed(None),
        }
    }
}

/// Registers `nick` on `ws`.
async fn register(ws: &mut Ws<impl AsyncRead + AsyncWrite + Unpin>, nick: &str) {
    put(ws, &hello(nick)).await;
    loop {
        match next(ws).await {
            Next::Frame(ServerFrame::Welcome(_)) => return,
            Next::Frame(_) => {}
            closed @ Next::Closed(_) => panic!("{nick} not registered: {closed:?}"),
        }
    }
}

/// Reads until the hub's `ERROR`, then expects the close that follows it.
async fn expect_fatal(ws: &mut Ws, code: Code, close: CloseCode) {
    loop {
        match next(ws).await {
            Next::Frame(ServerFrame::Error(error)) => {
                assert_eq!(error.code, code, "{error:?}");
                break;
            }
            Next::Frame(_) => {}
            closed @ Next::Closed(_) => panic!("closed before the ERROR {code}: {closed:?}"),
        }
    }
    assert_eq!(next(ws).await, Next::Closed(Some(close)));
}

#[tokio::test]
async fn a_websocket_client_and_a_tcp_client_chat() {
    let gateway = start(HubConfig::default(), WebConfig::default()).await;
    let mut tcp = RawClient::connect(gateway.hub.addr)
        .await
        .registered("tcp")
        .await;
    let mut web = connect(gateway.web).await;
    register(&mut web, "web").await;

    put(&mut web, &send(1, &["tcp"], "hello from the browser")).await;
    let message = tcp.expect_message().await;
    assert_eq!(
        (message.from.as_str(), message.text.as_str()),
        ("web", "hello from the browser")
    );

    tcp.send_to(&["web"], "hello from the terminal").await;
    loop {
        match next(&mut web).await {
            Next::Frame(ServerFrame::Message(message)) => {
                assert_eq!(message.from, "tcp");
                assert_eq!(message.text, "hello from the terminal");
                break;
            }
            Next::Frame(_) => {}
            closed @ Next::Closed(_) => panic!("{closed:?}"),
        }
    }
    // A batch of frames written at once by the hub's writer arrives one
    // frame to a message (`next` checks): many messages to the browser.
    for i in 0..200 {
        tcp.send_to(&["web"], &format!("burst {i}")).await;
    }
    let mut seen = 0;
    while seen < 200 {
        if let Next::Frame(ServerFrame::Message(message)) = next(&mut web).await {
            assert_eq!(message.text, format!("burst {seen}"));
            seen += 1;
        }
    }
    // And the hub says goodbye in a close.
    put(&mut web, &ClientFrame::Quit).await;
    loop {
        match next(&mut web).await {
            Next::Closed(code) => {
                assert_eq!(code, Some(CloseCode::Normal));
                break;
            }
            Next::Frame(_) => {}
        }
    }
}

#[tokio::test]
async fn an_origin_not_allowed_gets_403_and_never_reaches_the_hub() {
    let gateway = start(HubConfig::default(), WebConfig::default()).await;
    let addr = gateway.web;
    let refused = handshake(
        TcpStream::connect(addr).await.unwrap(),
        request(addr, Some("http://evil.example"), Some(SUBPROTOCOL)),
    )
    .await;
    match refused {
        Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
        other => panic!("expected 403, got {other:?}"),
    }
    assert_eq!(gateway.hub.hub.connection_count(), 0);
    // A program sends no Origin: allowed.
    let mut program = handshake(
        TcpStream::connect(addr).await.unwrap(),
        request(addr, None, Some(SUBPROTOCOL)),
    )
    .await
    .unwrap();
    register(&mut program, "program").await;

    // With a list, only what it names.
    let mut web = WebConfig::default();
    web.origins = Origins::allow(["https://chat.example"]).unwrap();
    let listed = start(HubConfig::default(), web).await;
    let addr = listed.web;
    let same_host = format!("http://{addr}");
    for (origin, allowed) in [("https://chat.example", true), (same_host.as_str(), false)] {
        let result = handshake(
            TcpStream::connect(addr).await.unwrap(),
            request(addr, Some(origin), Some(SUBPROTOCOL)),
        )
        .await;
        match result {
            Ok(_) => assert!(allowed, "{origin} let in"),
            Err(WsError::Http(response)) => {
                assert!(!allowed, "{origin} refused");
                assert_eq!(response.status(), StatusCode::FORBIDDEN);
            }
            Err(other) => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn an_upgrade_without_the_subprotocol_is_refused() {
    let gateway = start(HubConfig::default(), WebConfig::default()).await;
    let addr = gateway.web;
    let origin = format!("http://{addr}");
    for protocol in [None, Some("chat"), Some("chinwag.v2, graphql-ws")] {
        let result = handshake(
            TcpStream::connect(addr).await.unwrap(),
            request(addr, Some(&origin), protocol),
        )
        .await;
        match result {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{protocol:?}");
            }
            other => panic!("{protocol:?}: expected 400, got {other:?}"),
        }
    }
    // Offered among others, it is chosen.
    handshake(
        TcpStream::connect(addr).await.unwrap(),
        request(addr, Some(&origin), Some("chat, chinwag.v1")),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_text_message_is_closed_with_malformed_frame_and_1003() {
    let gateway = start(HubConfig::default(), WebConfig::default()).await;
    let mut web = connect(gateway.web).await;
    register(&mut web, "web").await;
    web.send(Message::text("hello")).await.unwrap();
    expect_fatal(&mut web, Code::MALFORMED_FRAME, CloseCode::Unsupported).await;
    settle(
        "malformed frames",
        || gateway.hub.hub.stats().malformed_frames,
        1,
    )
    .await;
}

#[tokio::test]
async fn a_message_that_is_not_exactly_one_frame_is_malformed() {
    let gateway = start(HubConfig::default(), WebConfig::default()).await;
    let two = [encode(&ClientFrame::Who), encode(&ClientFrame::Who)].concat();
    let whole = encode(&send(1, &["web"], "a message cut in half"));
    let half = whole[..whole.len() / 2].to_vec();
    let mut and_a_byte = encode(&ClientFrame::Who);
    and_a_byte.push(0);
    for (what, bytes) in [
        ("two frames", two),
        ("half a frame", half),
        ("a frame and a byte", and_a_byte),
        ("three bytes", vec![0, 0, 0]),
    ] {
        let mut web = connect(gateway.web).await;
        register(&mut web, "web").await;
        web.send(Message::binary(bytes)).await.unwrap();
        eprintln!("{what}");
        expect_fatal(&mut web, Code::MALFORMED_FRAME, CloseCode::Invalid).await;
    }
}

#[tokio::test]
async fn a_message_over_the_frame_limit_is_closed_with_frame_too_large() {
    let mut config = HubConfig::default();
    config.max_frame = 1024;
    let gateway = start(config, WebConfig::default()).await;
    let mut web = connect(gateway.web).await;
    register(&mut web, "web").await;
    // Within the limit, it goes through.
    put(&mut web, &send(1, &["web"], "x".repeat(900))).await;
    loop {
        if let Next::Frame(ServerFrame::Ack(_)) = next(&mut web).await {
            break;
        }
    }
    let mut big = encode(&send(2, &["web"], "x".repeat(2000)));
    big.truncate(big.len());
    web.send(Message::binary(big)).await.unwrap();
    expect_fatal(&mut web, Code::FRAME_TOO_LARGE, CloseCode::Size).await;
}

/// A WebSocket frame that announces a gigabyte is refused from its header:
/// the hub answers at once, without waiting for (or buffering) the rest.
#[tokio::test]
async fn a_frame_announcing_a_gigabyte_is_refused_from_its_header() {
    let gateway = start(HubConfig::default(), WebConfig::default()).await;
    let addr = gateway.web;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let upgrade = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: chinwag.v1\r\n\r\n"
    );
    stream.write_all(upgrade.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let byte = guard(PATIENCE, "the 101", stream.read_u8()).await.unwrap();
        response.push(byte);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    // FIN + binary; masked, 64-bit length 2^30; the mask; not one byte more.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    stream.write_all(&header).await.unwrap();
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Client, None).await;
    expect_fatal(&mut ws, Code::FRAME_TOO_LARGE, CloseCode::Size).await;
}

#[tokio::test]
async fn a_fragmented_message_holding_one_frame_is_taken_whole() {
    let gateway = start(HubConfig::default(), WebConfig::default()).await;
    let mut tcp = RawClient::connect(gateway.hub.addr)
        .await
        .registered("tcp")
        .await;
    let mut web = connect(gateway.web).await;
    let hello = encode(&hello("web"));
    let (first, rest) = hello.split_at(3);
    web.send(Message::Frame(Frame::message(
        first.to_vec(),
        OpCode::Data(Data::Binary),
        false,
    )))
    .await
    .unwrap();
    web.send(Message::Frame(Frame::message(
        rest.to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .unwrap();
    assert!(matches!(
        next(&mut web).await,
        Next::Frame(ServerFrame::Welcome(_))
    ));
    // Three fragments of a SEND.
    let message = encode(&send(1, &["tcp"], "in three pieces"));
    let (a, rest) = message.split_at(2);
    let (b, c) = rest.split_at(10);
    for (bytes, op, fin) in [
        (a, OpCode::Data(Data::Binary), false),
        (b, OpCode::Data(Data::Continue), false),
        (c, OpCode::Data(Data::Continue), true),
    ] {
        web.send(Message::Frame(Frame::message(bytes.to_vec(), op, fin)))
            .await
            .unwrap();
    }
    assert_eq!(tcp.expect_message().await.text, "in three pieces");
}

/// A WebSocket client that never reads is cut as a slow consumer, as a TCP
/// one is: the gateway takes the hub's writes only as fast as the socket
/// does, so the hub's write deadline (or its queue's) applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_never_reads_is_cut_as_a_slow_consumer() {
    let mut config = HubConfig::default();
    config.slow_consumer_deadline = Duration::from_secs(1);
    let gateway = start(config, WebConfig::default()).await;
    let hub = gateway.hub.hub.clone();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(gateway.web).await.unwrap();
    let origin = format!("http://{}", gateway.web);
    let mut stuck = handshake(
        stream,
        request(gateway.web, Some(&origin), Some(SUBPROTOCOL)),
    )
    .await
    .unwrap();
    register(&mut stuck, "stuck").await;

    // 8 MiB for it, under its queue's limit (16 MiB): what paces the
    // publisher is the queue above its mark; what cuts the reader is the
    // write that makes no progress, or the queue that stays above the mark.
    let mut publisher = hub.attach("publisher").await.unwrap();
    let publishing = tokio::spawn(async move {
        let text = "x".repeat(16 * 1024);
        for _ in 0..512 {
            if publisher
                .send(chinwag_testkit::users(&["stuck"]), text.as_str())
                .await
                .is_err()
            {
                break;
            }
        }
        publisher
    });
    settle("slow consumers", || hub.stats().slow_consumers, 1).await;
    let roster = hub.roster().await.unwrap();
    assert!(!roster.iter().any(|nick| nick == "stuck"), "{roster:?}");
    publishing.abort();
    drop(stuck);
}

/// The peer the hub admits is the TCP peer: the limits per address apply
/// to WebSocket connections (here, one unregistered connection per
/// address, loopback not exempt).
#[tokio::test]
async fn the_limits_per_address_apply_to_the_tcp_peer() {
    let mut config = HubConfig::default();
    config.addresses.unregistered = 1;
    config.addresses.exempt = Vec::new();
    let gateway = start(config, WebConfig::default()).await;
    let _first = connect(gateway.web).await;
    settle("connections", || gateway.hub.hub.connection_count(), 1).await;
    let mut second = connect(gateway.web).await;
    match next(&mut second).await {
        Next::Frame(ServerFrame::Error(error)) => assert_eq!(error.code, Code::SERVER_FULL),
        other => panic!("expected SERVER_FULL, got {other:?}"),
    }
}

/// A plain GET, the response's head (status line and headers, lowercase
/// names) and body.
async fn get(addr: SocketAddr, path: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    guard(PATIENCE, "the response", stream.read_to_end(&mut response))
        .await
        .unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers, response[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test]
async fn the_page_is_served_with_its_content_types_and_policy() {
    let gateway = start(HubConfig::default(), WebConfig::default()).await;
    for (path, content_type, file) in [
        (
            "/",
            "text/html; charset=utf-8",
            &include_bytes!("../assets/index.html")[..],
        ),
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../assets/app.js"),
        ),
        (
            "/chinwag.js",
            "text/javascript; charset=utf-8",
            include_bytes!("../assets/chinwag.js"),
        ),
        (
            "/style.css",
            "text/css; charset=utf-8",
            include_bytes!("../assets/style.css"),
        ),
    ] {
        let (status, headers, body) = get(gateway.web, path).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status}");
        assert_eq!(
            header(&headers, "content-type"),
            Some(content_type),
            "{path}"
        );
        assert_eq!(
            header(&headers, "content-security-policy"),
            Some(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            ),
            "{path}"
        );
        assert_eq!(
            header(&headers, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(body, file, "{path}");
    }
    let (status, headers, _) = get(gateway.web, "/nothing-here").await;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    // /ws without an upgrade says what it is.
    let (status, _, _) = get(gateway.web, "/ws").await;
    assert!(status.starts_with("HTTP/1.1 426"), "{status}");
}

/// A connection that sends nothing is closed at the registration deadline,
/// before it is upgraded as after.
#[tokio::test]
async fn a_silent_http_connection_is_closed_at_the_registration_deadline() {
    let mut config = HubConfig::default();
    config.registration_timeout = Duration::from_millis(300);
    let gateway = start(config, WebConfig::default()).await;
    let mut silent = TcpStream::connect(gateway.web).await.unwrap();
    let mut byte = [0; 1];
    let read = guard(Duration::from_secs(5), "the close", silent.read(&mut byte)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn the_websocket_is_served_over_tls_on_the_hubs_certificate() {
    use std::sync::Arc;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    let certs = chinwag_testkit::TestCerts::new(1);
    let tls = TlsAcceptor::from_pem_files(&certs.cert, &certs.key).unwrap();
    let mut web = WebConfig::default();
    web.tls = Some(tls);
    let gateway = start(HubConfig::default(), web).await;

    let mut roots = RootCertStore::empty();
    let ca = std::fs::read(&certs.ca).unwrap();
    for cert in rustls_pemfile_certs(&ca) {
        roots.add(cert).unwrap();
    }
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // As a browser asks.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(gateway.web).await.unwrap();
    let name = "localhost".try_into().unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut request = format!("wss://localhost:{}/ws", gateway.web.port())
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let mut ws = Box::pin(handshake(stream, request)).await.unwrap();
    register(&mut ws, "secure").await;
    let mut tcp = RawClient::connect(gateway.hub.addr)
        .await
        .registered("tcp")
        .await;
    put(&mut ws, &send(1, &["tcp"], "over wss")).await;
    assert_eq!(tcp.expect_message().await.text, "over wss");
}

/// The certificates in a PEM file.
fn rustls_pemfile_certs(
    pem: &[u8],
) -> Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}
