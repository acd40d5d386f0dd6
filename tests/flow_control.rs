//! Flow control over real sockets, with shrunken limits: a fast publisher is
//! paused rather than its reader cut, and a reader that stops reading is cut
//! without holding up anyone else.
//!
//! Readers with a small kernel receive buffer make back-pressure reach the
//! hub's queues after little data.

mod support;

use std::time::Duration;

use chinwag::hub::{HubConfig, Session};
use chinwag::protocol::{ClientFrame, Code, Recipients, SendFrame, ServerFrame};
use futures::{FutureExt, SinkExt, StreamExt};
use support::{PATIENCE, RawClient, TestHub, guard, register_all};
use tokio::sync::watch;

/// Failure guard for whole scenarios; each normally takes about a second.
const GUARD: Duration = Duration::from_secs(60);

fn shrunk_config() -> HubConfig {
    let mut config = HubConfig::default();
    config.outbox_high_water = 64 * 1024;
    config.outbox_limit = 1024 * 1024;
    config.slow_consumer_deadline = Duration::from_secs(2);
    config
}

fn numbered(seq: usize, size: usize) -> String {
    let mut text = format!("{seq:08} ");
    text.extend(std::iter::repeat_n('.', size - text.len()));
    text
}

fn seq_of(text: &str) -> usize {
    text[..8].parse().unwrap()
}

fn send_frame(id: u64, to: Recipients, text: String) -> ClientFrame {
    ClientFrame::Send(SendFrame { id, to, text })
}

/// 5,000 messages of 4 KiB (20 MiB, more than the kernel's socket buffers
/// and the 1 MiB queue limit together) to a reader that keeps reading, more
/// slowly than the publisher sends: the hub must pause the publisher (stop
/// reading its socket) instead of letting the reader's queue overflow. With
/// pausing disabled (`max_in_flight_bytes` huge) this test fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_publisher_is_paused_and_its_reader_gets_everything_in_order() {
    const COUNT: usize = 5_000;
    const SIZE: usize = 4096;
    let hub = TestHub::with_config(shrunk_config()).await;
    let mut reader = RawClient::connect_with_recv_buffer(hub.addr, 16 * 1024).await;
    reader.hello("reader").await;
    reader.expect_welcome().await;
    let publisher = hub.register("publisher").await;
    assert_eq!(
        reader.expect_presence().await,
        ("publisher".to_owned(), true)
    );

    let reading = tokio::spawn(async move {
        for seq in 0..COUNT {
            let message = reader.expect_message().await;
            assert_eq!(seq_of(&message.text), seq, "out of order or lost");
            assert_eq!(message.text.len(), SIZE);
            // Slower than the publisher, but never stopping for long.
            if seq % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        assert!(
            !reader
                .sync()
                .await
                .iter()
                .any(|f| matches!(f, ServerFrame::Message(_))),
            "more messages than were sent"
        );
    });

    let (mut sink, mut stream) = publisher.framed.split();
    let acking = tokio::spawn(async move {
        for id in 1..=COUNT as u64 {
            let frame = tokio::time::timeout(PATIENCE, stream.next()).await;
            let Ok(Some(Ok(ServerFrame::Ack(ack)))) = frame else {
                panic!("expected the ACK for {id}, got {frame:?}");
            };
            assert_eq!(ack.client_id, id);
            assert_eq!(ack.delivered, 1, "{ack:?}");
            assert_eq!(ack.statuses[0].status, Code::DELIVERED);
        }
    });
    let to = Recipients::Users(vec!["reader".to_owned()]);
    for seq in 0..COUNT {
        let frame = send_frame(seq as u64 + 1, to.clone(), numbered(seq, SIZE));
        guard(PATIENCE, "publishing", sink.send(frame))
            .await
            .unwrap();
    }

    guard(GUARD, "the reader", reading).await.unwrap();
    guard(GUARD, "the acks", acking).await.unwrap();
}

/// What a normal reader saw: message sequence numbers in arrival order and
/// whether it saw the stuck client go offline.
struct Seen {
    client: RawClient,
    seqs: Vec<usize>,
    saw_stuck_leave: bool,
}

/// Reads until the final message, recording sequence numbers, publishing
/// how many it has on `received`, and announcing the stuck client's
/// departure on `gone`.
fn normal_reader(
    mut client: RawClient,
    received: watch::Sender<usize>,
    gone: watch::Sender<bool>,
) -> tokio::task::JoinHandle<Seen> {
    tokio::spawn(async move {
        let mut seqs = Vec::new();
        let mut saw_stuck_leave = false;
        loop {
            match client.recv().await.expect("normal reader was disconnected") {
                ServerFrame::Message(m) if m.text == "end" => break,
                ServerFrame::Message(m) => {
                    seqs.push(seq_of(&m.text));
                    received.send_replace(seqs.len());
                }
                ServerFrame::Presence(p) if p.nick == "stuck" && !p.online => {
                    saw_stuck_leave = true;
                    gone.send_replace(true);
                }
                ServerFrame::Error(e) => panic!("normal reader got {e:?}"),
                _ => {}
            }
        }
        Seen {
            client,
            seqs,
            saw_stuck_leave,
        }
    })
}

/// One client never reads its socket while a publisher broadcasts 16 KiB
/// messages to it and to two normal readers. The normal readers get every
/// message; the stuck one is disconnected (and seen to go offline); the hub
/// keeps working.
///
/// The publisher sends in rounds and lets the normal readers catch up
/// between rounds, so that they are never far behind each other: see
/// `publisher_stays_paused_until_every_congested_recipient_has_drained` for
/// why that matters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_reader_is_disconnected_while_normal_readers_get_every_message() {
    /// Far more than kernel buffers and the queue limit can absorb.
    const MAX: usize = 2_000;
    /// 512 KiB per round, half the queue limit.
    const ROUND: usize = 32;
    const END_ID: u64 = u64::MAX;
    let hub = TestHub::with_config(shrunk_config()).await;
    let mut stuck = RawClient::connect_with_recv_buffer(hub.addr, 8 * 1024).await;
    stuck.hello("stuck").await;
    stuck.expect_welcome().await;
    let [publisher, r1, r2] = register_all(&hub, ["publisher", "r1", "r2"]).await;
    // From here on `stuck` is never polled until the end.

    let (gone_tx, gone) = watch::channel(false);
    let (r1_count, mut r1_progress) = watch::channel(0);
    let (r2_count, mut r2_progress) = watch::channel(0);
    let readers = [
        normal_reader(r1, r1_count, gone_tx.clone()),
        normal_reader(r2, r2_count, gone_tx),
    ];

    let (mut sink, mut stream) = publisher.framed.split();
    let acking = tokio::spawn(async move {
        let mut acks = Vec::new();
        loop {
            let frame = tokio::time::timeout(PATIENCE, stream.next()).await;
            match frame {
                Ok(Some(Ok(ServerFrame::Ack(ack)))) => {
                    let end = ack.client_id == END_ID;
                    acks.push(ack);
                    if end {
                        return (acks, stream);
                    }
                }
                Ok(Some(Ok(ServerFrame::Presence(_)))) => {}
                other => panic!("publisher expected ACKs, got {other:?}"),
            }
        }
    });

    let mut sent = 0;
    while sent < MAX && !*gone.borrow() {
        for _ in 0..ROUND {
            let text = numbered(sent, 16 * 1024);
            let frame = send_frame(sent as u64 + 1, Recipients::Everyone, text);
            guard(PATIENCE, "publishing", sink.send(frame))
                .await
                .unwrap();
            sent += 1;
        }
        for progress in [&mut r1_progress, &mut r2_progress] {
            let caught_up = progress.wait_for(|&n| n >= sent);
            guard(GUARD, "a normal reader catching up", caught_up)
                .await
                .unwrap();
        }
    }
    assert!(
        *gone.borrow(),
        "the stuck client was not disconnected after {MAX} messages of 16 KiB"
    );
    // Sent after the readers saw the stuck client leave.
    let end = send_frame(END_ID, Recipients::Everyone, "end".to_owned());
    guard(PATIENCE, "publishing", sink.send(end)).await.unwrap();

    let (acks, stream) = guard(GUARD, "the acks", acking).await.unwrap();
    assert_eq!(acks.len(), sent + 1);
    for (i, ack) in acks[..sent].iter().enumerate() {
        assert_eq!(ack.client_id, i as u64 + 1);
        let to_all = ack.delivered == 3 && ack.statuses.is_empty();
        let stuck_refused = ack.delivered == 2
            && ack
                .statuses
                .iter()
                .all(|s| s.nick == "stuck" && s.status == Code::UNABLE_TO_DELIVER);
        assert!(to_all || stuck_refused, "{ack:?}");
    }
    let last = &acks[sent];
    assert_eq!((last.delivered, last.statuses.len()), (2, 0), "{last:?}");

    let expected: Vec<usize> = (0..sent).collect();
    let mut clients = Vec::new();
    for (reader, name) in readers.into_iter().zip(["r1", "r2"]) {
        let seen = guard(GUARD, name, reader).await.unwrap();
        assert!(seen.saw_stuck_leave, "{name} did not see stuck go offline");
        assert!(seen.seqs == expected, "{name} lost or reordered messages");
        clients.push(seen.client);
    }

    // The stuck connection was closed: draining what the kernel buffered
    // for it reaches the end.
    let drained = stuck.drain_until_closed(GUARD).await;
    assert!(drained > 0);

    // The hub still works.
    let mut publisher = RawClient::from_framed(sink.reunite(stream).unwrap());
    assert_eq!(publisher.who().await, ["publisher", "r1", "r2"]);
    let [r1, r2] = &mut clients[..] else {
        unreachable!()
    };
    let id = r1.send_to(&["r2"], "after").await;
    assert_eq!(r1.expect_ack(id).await.delivered, 1);
    assert_eq!(r2.expect_message().await.text, "after");
    let _newcomer = hub.register("stuck").await;
}

/// A 1 KiB message. The in-flight budget is counted in bytes, so "paused"
/// means that no message of the size that filled it fits any more; the
/// probes below send the same size.
fn filler() -> String {
    "x".repeat(1024)
}

/// Broadcasts 1 KiB messages from `publisher`, waiting for each ACK (by
/// then the hub has either dropped or parked the message's in-flight
/// permit), until a send finds no permit left: the publisher is paused.
/// Returns how many messages were sent.
async fn fill_until_paused(publisher: &mut Session) -> usize {
    let text = filler();
    let mut sent = 0;
    loop {
        let Some(sending) = publisher
            .send(Recipients::Everyone, text.as_str())
            .now_or_never()
        else {
            return sent;
        };
        let id = sending.unwrap();
        loop {
            match guard(PATIENCE, "the ACK", publisher.recv()).await {
                Some(ServerFrame::Ack(ack)) if ack.client_id == id => break,
                Some(_) => {}
                None => panic!("the publisher was closed"),
            }
        }
        sent += 1;
        assert!(sent < 1_000, "the publisher was never paused");
    }
}

/// Takes `count` messages from `session`, leaving its queue empty.
async fn drain(session: &mut Session, count: usize) {
    let mut got = 0;
    while got < count {
        match guard(PATIENCE, "a message", session.recv()).await {
            Some(ServerFrame::Message(_)) => got += 1,
            Some(ServerFrame::Welcome(_) | ServerFrame::Presence(_)) => {}
            other => panic!("{} got {other:?}", session.nick()),
        }
    }
}

/// docs/limits.md: "publishers filling that queue stop being read until it
/// drains to half". When a broadcast leaves two recipients congested, the
/// publisher must stay paused until both have drained, not only one of
/// them. In-process sessions make this deterministic: nothing is buffered
/// outside the hub's queues, and a session's queue drains only when it
/// calls `recv`.
#[tokio::test]
async fn publisher_stays_paused_until_every_congested_recipient_has_drained() {
    let mut config = shrunk_config();
    config.slow_consumer_deadline = Duration::from_secs(60);
    let hub = TestHub::with_config(config).await;
    let mut a = hub.hub.attach("a").await.unwrap();
    let mut b = hub.hub.attach("b").await.unwrap();
    let mut publisher = hub.hub.attach("publisher").await.unwrap();

    // Round one: both recipients congested; drain `a` only.
    let sent = fill_until_paused(&mut publisher).await;
    drain(&mut a, sent).await;
    assert!(
        publisher
            .send(Recipients::Everyone, filler())
            .now_or_never()
            .is_none(),
        "round 1: the publisher resumed while b was still congested"
    );
    drain(&mut b, sent).await;
    assert!(
        publisher
            .send(Recipients::Everyone, filler())
            .now_or_never()
            .is_some()
    );
    drain(&mut a, 1).await;
    drain(&mut b, 1).await;

    // Round two, the other way round. Whichever recipient the hub parked
    // the publisher on, one of the two rounds drains the other one first.
    let sent = fill_until_paused(&mut publisher).await;
    drain(&mut b, sent).await;
    assert!(
        publisher
            .send(Recipients::Everyone, filler())
            .now_or_never()
            .is_none(),
        "round 2: the publisher resumed while a was still congested"
    );
}

/// An in-process session that never calls `recv` is cut like a TCP client:
/// its queue is dropped and replaced by `ERROR SLOW_CONSUMER`, it leaves the
/// registry at once (the message that overflowed it is acked
/// `UNABLE_TO_DELIVER` for it; later ones no longer count it), and the
/// normal reader gets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_session_is_cut_as_a_slow_consumer() {
    const MAX: usize = 500;
    let mut config = shrunk_config();
    config.slow_consumer_deadline = Duration::from_secs(2);
    let hub = TestHub::with_config(config).await;
    let mut stuck = hub.hub.attach("stuck").await.unwrap();
    let [mut publisher, reader] = register_all(&hub, ["publisher", "reader"]).await;
    let (count_tx, count) = watch::channel(0);
    let (gone_tx, _gone) = watch::channel(false);
    let reading = normal_reader(reader, count_tx, gone_tx);

    let mut sent = 0;
    loop {
        assert!(sent < MAX, "the stuck session was never cut");
        let text = numbered(sent, 16 * 1024);
        let id = publisher.send_message(Recipients::Everyone, &text).await;
        sent += 1;
        let ack = publisher.expect_ack(id).await;
        if ack.delivered == 1 {
            // Cut by this message (overflow), or earlier by the deadline.
            if let [status] = ack.statuses.as_slice() {
                assert_eq!(status.nick, "stuck");
                assert_eq!(status.status, Code::UNABLE_TO_DELIVER);
            } else {
                assert!(ack.statuses.is_empty(), "{ack:?}");
            }
            break;
        }
        assert_eq!((ack.delivered, ack.statuses.len()), (2, 0), "{ack:?}");
    }
    // Gone from the registry at once, though the session itself still exists.
    assert_eq!(hub.hub.roster().await.unwrap(), ["publisher", "reader"]);

    // Its queue was dropped; the error is what is left.
    let mut frames = Vec::new();
    while let Some(frame) = guard(PATIENCE, "the session's queue", stuck.recv()).await {
        frames.push(frame);
    }
    match frames.as_slice() {
        [ServerFrame::Error(e)] => assert_eq!(e.code, Code::SLOW_CONSUMER),
        other => panic!(
            "expected only ERROR 8, got {} frames: {:?}",
            other.len(),
            other.last()
        ),
    }

    let mut count = count;
    guard(GUARD, "the reader", count.wait_for(|&n| n >= sent))
        .await
        .unwrap();
    drop(stuck);
    publisher.broadcast("end").await;
    let seen = guard(GUARD, "the reader", reading).await.unwrap();
    assert!(
        seen.seqs == (0..sent).collect::<Vec<_>>(),
        "the reader lost messages"
    );
    assert!(
        seen.saw_stuck_leave,
        "the reader did not see the session go"
    );
}
