//! One connection code for every transport: a connection accepted elsewhere
//! and handed over (`Hub::serve_connection`), in-memory pipes, a Unix
//! socket and TCP all reach the same registry, under the same limits.

mod support;

use chinwag_hub::protocol::{ClientCodec, Code, ServerFrame};
use chinwag_hub::{Front, Hub, HubConfig, HubError, Split};
use futures::SinkExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::time::timeout;
use tokio_util::codec::Framed;

use support::{PATIENCE, RawClient, hello, next, send};

/// A binary-protocol client over one end of an in-memory pipe whose other
/// end the hub serves.
fn pipe_client(hub: &Hub) -> Framed<DuplexStream, ClientCodec> {
    RawClient::pipe(hub).framed
}

async fn message_text<S>(client: &mut Framed<S, ClientCodec>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match next(client).await {
            Some(ServerFrame::Message(message)) => return message.text,
            Some(_) => {}
            None => panic!("closed before a message"),
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_handed_over_pipe_a_tcp_client_and_a_unix_socket_client_talk_through_one_hub() {
    let (hub, addr) = support::start(HubConfig::default()).await;
    let dir = std::env::temp_dir().join(format!("chinwag-transports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hub.sock");
    let _ = std::fs::remove_file(&path);
    let unix = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn({
        let hub = hub.clone();
        async move { hub.serve(unix).await }
    });

    let mut piped = pipe_client(&hub);
    piped.send(hello("piped")).await.unwrap();
    assert!(matches!(
        next(&mut piped).await,
        Some(ServerFrame::Welcome(_))
    ));
    let mut tcp = support::register(addr, "tcp").await;
    let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    let mut local = Framed::new(stream, ClientCodec::default());
    local.send(hello("local")).await.unwrap();
    assert!(matches!(
        next(&mut local).await,
        Some(ServerFrame::Welcome(_))
    ));

    piped
        .send(send(1, &["tcp", "local"], "over a pipe"))
        .await
        .unwrap();
    assert_eq!(message_text(&mut tcp).await, "over a pipe");
    assert_eq!(message_text(&mut local).await, "over a pipe");
    local
        .send(send(1, &["piped"], "over a socket file"))
        .await
        .unwrap();
    assert_eq!(message_text(&mut piped).await, "over a socket file");

    hub.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_handed_over_text_connection_is_a_text_user() {
    let (hub, addr) = support::start(HubConfig::default()).await;
    let (ours, theirs) = tokio::io::duplex(4096);
    hub.serve_connection(Split::new(theirs), "text pipe", Front::Text)
        .unwrap();
    let (read, mut write) = tokio::io::split(ours);
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"typist\n").await.unwrap();
    let mut bob = support::register(addr, "bob").await;
    write.write_all(b"@bob typed by hand\n").await.unwrap();
    assert_eq!(message_text(&mut bob).await, "typed by hand");
    bob.send(send(1, &["typist"], "read by eye")).await.unwrap();
    let line = timeout(PATIENCE, async {
        loop {
            let line = lines.next_line().await.unwrap().expect("open");
            if line.contains("read by eye") {
                return line;
            }
        }
    })
    .await
    .expect("the line in time");
    assert!(line.contains("<bob>"), "{line}");
    hub.shutdown().await;
}

#[tokio::test]
async fn a_handed_over_connection_counts_against_the_limits_and_is_told_when_full() {
    let mut config = HubConfig::default();
    config.max_unregistered = 1;
    config.max_connections = 2;
    let hub = Hub::start(config);
    let mut waiting = pipe_client(&hub);
    assert_eq!(hub.connection_count(), 1);

    // The unregistered pool is full: a newcomer sheds the one waiting,
    // which is told so, and takes its place.
    let mut second = pipe_client(&hub);
    match next(&mut waiting).await {
        Some(ServerFrame::Error(error)) => assert_eq!(error.code, Code::SERVER_FULL),
        other => panic!("expected SERVER_FULL, got {other:?}"),
    }
    second.send(hello("second")).await.unwrap();
    assert!(matches!(
        next(&mut second).await,
        Some(ServerFrame::Welcome(_))
    ));
    let mut third = pipe_client(&hub);
    third.send(hello("third")).await.unwrap();
    assert!(matches!(
        next(&mut third).await,
        Some(ServerFrame::Welcome(_))
    ));
    assert_eq!(hub.stats().shed_unregistered, 1);

    // The registered pool is full: nobody is shed, a newcomer is refused
    // at once and told so.
    let (ours, theirs) = tokio::io::duplex(4096);
    let refused = hub.serve_connection(Split::new(theirs), "fourth pipe", Front::Binary);
    assert_eq!(refused, Err(HubError::Refused(Code::SERVER_FULL)));
    let mut fourth = Framed::new(ours, ClientCodec::default());
    match next(&mut fourth).await {
        Some(ServerFrame::Error(error)) => assert_eq!(error.code, Code::SERVER_FULL),
        other => panic!("expected SERVER_FULL, got {other:?}"),
    }

    hub.begin_shutdown();
    let (_, theirs) = tokio::io::duplex(64);
    assert_eq!(
        hub.serve_connection(Split::new(theirs), "late", Front::Binary),
        Err(HubError::Closed)
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn message_ids_of_a_restarted_hub_begin_above_the_last_run() {
    let mut last = 0;
    for run in 0..3 {
        let hub = Hub::start(HubConfig::default());
        let mut alice = hub.attach("alice").await.unwrap();
        let mut bob = hub.attach("bob").await.unwrap();
        let mut ids = Vec::new();
        for i in 0..200 {
            alice
                .send(
                    chinwag_hub::protocol::Recipients::Users(vec!["bob".into()]),
                    format!("run {run} message {i}"),
                )
                .await
                .unwrap();
        }
        while ids.len() < 200 {
            match timeout(PATIENCE, bob.recv()).await.expect("in time") {
                Some(ServerFrame::Message(message)) => ids.push(message.id),
                Some(_) => {}
                None => panic!("bob's session closed"),
            }
        }
        assert!(ids[0] > last, "run {run} began at {} after {last}", ids[0]);
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        last = ids[ids.len() - 1];
        drop((alice, bob));
        hub.shutdown().await;
    }
}
