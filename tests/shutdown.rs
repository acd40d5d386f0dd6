//! Shutdown over real sockets: what was sent is delivered, every client is
//! told `SHUTTING_DOWN` and closed, and nobody new gets in.

mod support;

use std::time::Duration;

use chinwag::protocol::{ClientFrame, Code, ServerFrame};
use support::{PATIENCE, RawClient, TestHub, guard, register_all};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The next frame must be `ERROR SHUTTING_DOWN`, and then the connection
/// must end.
async fn expect_shutting_down(client: &mut RawClient, who: &str) {
    match client.recv().await {
        Some(ServerFrame::Error(e)) => assert_eq!(e.code, Code::SHUTTING_DOWN, "{who}"),
        other => panic!("{who}: expected ERROR 7, got {other:?}"),
    }
    client.expect_eof().await;
}

/// After shutdown, a new connection is refused, or accepted by nobody and
/// closed without a word.
async fn assert_nobody_answers(addr: std::net::SocketAddr) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let mut buf = [0u8; 64];
    let read = guard(
        PATIENCE,
        "the late connection closing",
        stream.read(&mut buf),
    )
    .await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "a connection after shutdown got {read:?}"
    );
}

#[tokio::test]
async fn shutdown_delivers_what_was_sent_then_says_shutting_down_and_closes_everyone() {
    let hub = TestHub::start().await;
    let addr = hub.addr;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;
    let mut anonymous = hub.connect().await;
    assert_eq!(anonymous.sync().await, []);

    // Routed and queued for bob, who has not read it yet.
    let id = alice.send_to(&["bob"], "before shutdown").await;
    assert_eq!(alice.expect_ack(id).await.delivered, 1);

    hub.shutdown().await;

    match bob.recv().await {
        Some(ServerFrame::Message(m)) => assert_eq!(m.text, "before shutdown"),
        other => panic!("bob: expected the message first, got {other:?}"),
    }
    expect_shutting_down(&mut bob, "bob").await;
    expect_shutting_down(&mut alice, "alice").await;
    expect_shutting_down(&mut anonymous, "the unregistered client").await;
    assert_nobody_answers(addr).await;
}

#[tokio::test]
async fn every_acked_message_is_delivered_before_shutting_down() {
    const COUNT: usize = 500;
    let hub = TestHub::start().await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;
    // Small frames: all of them fit in the socket buffers, so sending
    // cannot block once the hub stops reading.
    for seq in 0..COUNT {
        alice.send_to(&["bob"], &format!("{seq}")).await;
    }
    // Shut down part-way through (or after) routing them.
    alice.expect_ack(10).await;
    hub.hub.begin_shutdown();

    let mut acked = (1..=10).collect::<Vec<u64>>();
    loop {
        match alice.recv().await.expect("alice closed before ERROR 7") {
            ServerFrame::Ack(ack) => {
                assert_eq!(ack.delivered, 1);
                acked.push(ack.client_id);
            }
            ServerFrame::Error(e) => {
                assert_eq!(e.code, Code::SHUTTING_DOWN);
                break;
            }
            other => panic!("alice got {other:?}"),
        }
    }
    alice.expect_eof().await;

    let mut delivered = Vec::new();
    loop {
        match bob.recv().await.expect("bob closed before ERROR 7") {
            ServerFrame::Message(m) => delivered.push(m.text.parse::<u64>().unwrap() + 1),
            ServerFrame::Error(e) => {
                assert_eq!(e.code, Code::SHUTTING_DOWN);
                break;
            }
            other => panic!("bob got {other:?}"),
        }
    }
    bob.expect_eof().await;
    // What was acked was delivered, in order; nothing unacked was.
    assert_eq!(delivered, acked);
    hub.shutdown().await;
}

#[tokio::test]
async fn shutdown_with_nobody_connected_completes_and_serve_returns_ok() {
    let hub = TestHub::start().await;
    let addr = hub.addr;
    assert!(!hub.hub.is_shutting_down());
    let handle = hub.hub.clone();
    hub.shutdown().await;
    assert!(handle.is_shutting_down());
    // A second shutdown is harmless.
    guard(PATIENCE, "second shutdown", handle.shutdown()).await;
    assert_nobody_answers(addr).await;
}

#[tokio::test]
async fn clients_that_keep_talking_during_shutdown_are_still_closed() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;
    let (under_way, chatting) = tokio::sync::oneshot::channel();
    let mut under_way = Some(under_way);
    let chatter = tokio::spawn(async move {
        // Keep sending until the hub closes the connection under us.
        for seq in 0u64.. {
            if seq == 10 {
                let _ = under_way.take().map(|tx| tx.send(()));
            }
            let frame = ClientFrame::Ping(seq);
            if futures::SinkExt::send(&mut alice.framed, frame)
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    guard(PATIENCE, "the chatter under way", chatting)
        .await
        .unwrap();
    let addr = hub.addr;
    hub.shutdown().await;
    bob.expect_fatal(Code::SHUTTING_DOWN).await;
    guard(PATIENCE, "the chatty client noticing", chatter)
        .await
        .unwrap();
    assert_nobody_answers(addr).await;
}
