//! Load: many clients broadcasting at once, everyone reading concurrently.
//!
//! Kept small enough for every `cargo test` run (a few seconds in debug
//! builds); each client reads in its own task, so nobody is a slow consumer.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chinwag::protocol::{ClientFrame, Recipients, SendFrame, ServerFrame};
use futures::{SinkExt, StreamExt};
use support::{PATIENCE, RawClient, TestHub, guard};
use tokio::sync::Barrier;

const CLIENTS: usize = 200;
const EACH: usize = 20;
/// Failure guard for the whole run; it normally takes a few seconds.
const GUARD: Duration = Duration::from_secs(120);

/// One client: registers, waits for everyone else to have registered,
/// broadcasts `EACH` messages while reading everything, and checks what it
/// read. Returns how many messages it received.
async fn client(addr: SocketAddr, me: usize, everyone_in: Arc<Barrier>) -> usize {
    let mut client = RawClient::connect(addr).await;
    client.hello(&format!("c{me:03}")).await;
    client.expect_welcome().await;
    everyone_in.wait().await;

    let (mut sink, mut stream) = client.framed.split();
    let sending = tokio::spawn(async move {
        for seq in 0..EACH {
            let frame = ClientFrame::Send(SendFrame {
                id: seq as u64 + 1,
                to: Recipients::Everyone,
                text: format!("{me} {seq}"),
            });
            sink.send(frame).await.unwrap();
            tokio::task::yield_now().await;
        }
        sink
    });

    let mut next_seq = vec![0; CLIENTS];
    let mut received = 0;
    let mut acks = 0;
    let mut last_id = 0;
    while received < (CLIENTS - 1) * EACH || acks < EACH {
        let frame = tokio::time::timeout(PATIENCE, stream.next()).await;
        let Ok(Some(Ok(frame))) = frame else {
            panic!("c{me:03}: expected a frame, got {frame:?}");
        };
        match frame {
            ServerFrame::Message(m) => {
                let (from, seq) = m.text.split_once(' ').unwrap();
                let (from, seq): (usize, usize) = (from.parse().unwrap(), seq.parse().unwrap());
                assert_ne!(from, me, "c{me:03} got its own broadcast");
                assert_eq!(m.from, format!("c{from:03}"));
                assert_eq!(seq, next_seq[from], "c{me:03}: c{from:03}'s messages");
                next_seq[from] += 1;
                assert!(m.id > last_id, "c{me:03}: ids not increasing");
                last_id = m.id;
                received += 1;
            }
            ServerFrame::Ack(ack) => {
                acks += 1;
                assert_eq!(ack.client_id, acks as u64, "c{me:03}: acks out of order");
                // Everyone stays online until everyone has read everything.
                assert_eq!(ack.delivered as usize, CLIENTS - 1, "c{me:03}: {ack:?}");
                assert!(ack.statuses.is_empty(), "c{me:03}: {ack:?}");
            }
            ServerFrame::Presence(p) => assert!(p.online, "c{me:03}: {p:?}"),
            other => panic!("c{me:03}: unexpected {other:?}"),
        }
    }
    for (from, &count) in next_seq.iter().enumerate() {
        let expected = if from == me { 0 } else { EACH };
        assert_eq!(count, expected, "c{me:03}: from c{from:03}");
    }

    // Stay online until everyone is done, then check nothing more came.
    let sink = sending.await.unwrap();
    everyone_in.wait().await;
    let mut client = RawClient::from_framed(sink.reunite(stream).unwrap());
    let extra = client.sync().await;
    assert!(
        !extra.iter().any(|f| matches!(f, ServerFrame::Message(_))),
        "c{me:03}: more than was sent: {extra:?}"
    );
    everyone_in.wait().await;
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_broadcasting_at_once_each_get_every_message_exactly_once_in_order() {
    let hub = TestHub::start().await;
    let everyone_in = Arc::new(Barrier::new(CLIENTS));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|me| tokio::spawn(client(hub.addr, me, everyone_in.clone())))
        .collect();
    let total = guard(GUARD, "the load run", async {
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        total
    })
    .await;
    assert_eq!(total, CLIENTS * (CLIENTS - 1) * EACH);
    hub.shutdown().await;
}
