//! A client that writes many frames at once: the hub takes the `SEND`s it
//! finds already read together, and must keep every message, their order,
//! and the frames between them, as if they had come one by one.

mod support;

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::{ClientFrame, Code, Recipients, SendFrame, ServerFrame};
use tokio::io::AsyncWriteExt;

use support::{Client, encode_frames, next, register, send, start};

/// The texts of the next `count` messages from `from`; presence notices
/// between them are passed over.
async fn texts(client: &mut Client, count: usize, from: &str) -> Vec<String> {
    let mut texts = Vec::with_capacity(count);
    while texts.len() < count {
        match next(client).await {
            Some(ServerFrame::Message(m)) => {
                assert_eq!(m.from, from);
                texts.push(m.text);
            }
            Some(ServerFrame::Presence(_)) => {}
            other => panic!("expected message {} of {count}, got {other:?}", texts.len()),
        }
    }
    texts
}

/// Reads `count` messages and checks that their texts are `m0..` in order.
async fn expect_messages(client: &mut Client, count: usize, from: &str) {
    let want: Vec<_> = (0..count).map(|n| format!("m{n}")).collect();
    assert_eq!(
        texts(client, count, from).await,
        want,
        "lost or out of order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_written_at_once_arrive_in_order_with_the_frames_between_them() {
    let (_hub, addr) = start(HubConfig::default()).await;
    let mut bob = register(addr, "bob").await;
    let mut alice = register(addr, "alice").await;

    // 200 to bob, a PING, 50 to bob and someone unknown, a WHO, 10 to
    // everyone, then a SEND cut short: one write.
    let mut frames = Vec::new();
    let mut n = 0;
    for _ in 0..200 {
        frames.push(send(n + 1, &["bob"], format!("m{n}")));
        n += 1;
    }
    frames.push(ClientFrame::Ping(7));
    for _ in 0..50 {
        frames.push(send(n + 1, &["BOB", "nobody"], format!("m{n}")));
        n += 1;
    }
    frames.push(ClientFrame::Who);
    for _ in 0..10 {
        frames.push(send(n + 1, &[], format!("m{n}")));
        n += 1;
    }
    let mut wire = encode_frames(&frames);
    wire.extend_from_slice(&[0, 0, 0, 3, 0x02, 0, 0]);
    alice.get_mut().write_all(&wire).await.unwrap();

    expect_messages(&mut bob, 260, "alice").await;

    let (mut acks, mut pong, mut roster) = (0u64, false, false);
    let last = loop {
        match next(&mut alice).await {
            Some(ServerFrame::Ack(ack)) => {
                acks += 1;
                assert_eq!(ack.client_id, acks, "acks out of order");
                assert_eq!(ack.delivered, 1);
                let statuses: Vec<_> = ack
                    .statuses
                    .iter()
                    .map(|s| (s.nick.as_str(), s.status))
                    .collect();
                match acks {
                    1..=200 => assert_eq!(statuses, [("bob", Code::DELIVERED)]),
                    201..=250 => assert_eq!(
                        statuses,
                        [("BOB", Code::DELIVERED), ("nobody", Code::NO_SUCH_USER)]
                    ),
                    _ => assert!(statuses.is_empty(), "{statuses:?}"),
                }
            }
            Some(ServerFrame::Pong(7)) => pong = true,
            Some(ServerFrame::Roster(names)) => {
                assert_eq!(names, ["alice", "bob"]);
                roster = true;
            }
            other => break other,
        }
    };
    assert_eq!(acks, 260, "every message acknowledged before the error");
    assert!(
        pong && roster,
        "the frames between the messages were answered"
    );
    match last {
        Some(ServerFrame::Error(e)) => assert_eq!(e.code, Code::MALFORMED_FRAME),
        other => panic!("expected the error for the cut-short SEND, got {other:?}"),
    }
    assert!(next(&mut alice).await.is_none(), "closed after the error");
}

/// With an in-flight budget of a few messages, a long run of `SEND`s read at
/// once is taken a few at a time, waiting for room, and still all arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_sends_larger_than_the_in_flight_budget_waits_for_room() {
    let mut config = HubConfig::default();
    config.max_in_flight_bytes = 200;
    let (_hub, addr) = start(config).await;
    let mut bob = register(addr, "bob").await;
    let mut alice = register(addr, "alice").await;

    let frames: Vec<_> = (0..500)
        .map(|n| send(n + 1, &["bob"], format!("m{n}")))
        .collect();
    alice
        .get_mut()
        .write_all(&encode_frames(&frames))
        .await
        .unwrap();

    expect_messages(&mut bob, 500, "alice").await;
    for id in 1..=500 {
        match next(&mut alice).await {
            Some(ServerFrame::Ack(ack)) => {
                assert_eq!(ack.client_id, id);
                assert_eq!(ack.delivered, 1);
            }
            other => panic!("expected ack {id}, got {other:?}"),
        }
    }
}

/// The replies to a run of messages (acks, and errors for the bad ones among
/// them) come back in the order of the messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_a_run_keep_its_order_errors_included() {
    let (_hub, addr) = start(HubConfig::default()).await;
    let mut bob = register(addr, "bob").await;
    let mut alice = register(addr, "alice").await;

    // Every tenth message names nobody at all: a BAD_REQUEST for it.
    let frames: Vec<_> = (1..=100u64)
        .map(|id| {
            if id % 10 == 0 {
                ClientFrame::Send(SendFrame {
                    id,
                    to: Recipients::Users(Vec::new()),
                    text: "to no one".into(),
                })
            } else {
                send(id, &["bob"], format!("m{id}"))
            }
        })
        .collect();
    alice
        .get_mut()
        .write_all(&encode_frames(&frames))
        .await
        .unwrap();

    for id in 1..=100u64 {
        match next(&mut alice).await {
            Some(ServerFrame::Ack(ack)) if id % 10 != 0 => assert_eq!(ack.client_id, id),
            Some(ServerFrame::Error(e)) if id % 10 == 0 => {
                assert_eq!((e.code, e.reference), (Code::BAD_REQUEST, id));
            }
            other => panic!("expected the reply to message {id}, got {other:?}"),
        }
    }
    let want: Vec<_> = (1..=100u64)
        .filter(|id| id % 10 != 0)
        .map(|id| format!("m{id}"))
        .collect();
    assert_eq!(texts(&mut bob, want.len(), "alice").await, want);
}

/// A run to several users in turn, with broadcasts among them and messages
/// to the sender itself: each user gets what was meant for them in the
/// order sent, and the sender sees a message to itself before its ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_to_several_users_in_turn_keeps_each_ones_order() {
    let (_hub, addr) = start(HubConfig::default()).await;
    let mut bob = register(addr, "bob").await;
    let mut carol = register(addr, "carol").await;
    let mut alice = register(addr, "alice").await;

    let targets: Vec<&[&str]> = vec![&["bob"], &["carol"], &["alice"], &[], &["carol"], &["bob"]];
    let mut frames = Vec::new();
    let mut expected: [Vec<String>; 3] = Default::default(); // bob, carol, alice
    for n in 0..120usize {
        let to = targets[n % targets.len()];
        let text = format!("m{n}");
        let reaches: &[usize] = match to {
            [] => &[0, 1],
            ["bob"] => &[0],
            ["carol"] => &[1],
            _ => &[2],
        };
        for &who in reaches {
            expected[who].push(text.clone());
        }
        frames.push(send(n as u64 + 1, to, text));
    }
    alice
        .get_mut()
        .write_all(&encode_frames(&frames))
        .await
        .unwrap();

    assert_eq!(
        texts(&mut bob, expected[0].len(), "alice").await,
        expected[0]
    );
    assert_eq!(
        texts(&mut carol, expected[1].len(), "alice").await,
        expected[1]
    );
    let mut acked = 0u64;
    let mut to_self = Vec::new();
    while acked < 120 {
        match next(&mut alice).await {
            Some(ServerFrame::Ack(ack)) => {
                acked += 1;
                assert_eq!(ack.client_id, acked);
                if targets[(acked as usize - 1) % targets.len()] == ["alice"] {
                    assert!(
                        to_self.contains(&format!("m{}", acked - 1)),
                        "the message to itself comes before its ack"
                    );
                }
            }
            Some(ServerFrame::Message(m)) => to_self.push(m.text),
            other => panic!("expected an ack or a message, got {other:?}"),
        }
    }
    assert_eq!(to_self, expected[2]);
}
