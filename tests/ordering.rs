//! Ordering: what one sender sends arrives in order, and every recipient
//! sees messages in the hub's routing order (the order of message ids).
//!
//! Recipients read in tasks of their own, concurrently with the sender, as
//! real clients would.

mod support;

use std::time::Duration;

use chinwag::protocol::{Ack, Code, Message, Recipients};
use support::{RawClient, TestHub, guard, register_all, users};
use tokio::task::JoinHandle;

const COUNT: usize = 1_000;

/// Generous: a hub that loses a message makes the reader wait for this.
const GUARD: Duration = Duration::from_secs(30);

fn read_messages(mut client: RawClient, count: usize) -> JoinHandle<Vec<Message>> {
    tokio::spawn(async move {
        let mut got = Vec::with_capacity(count);
        while got.len() < count {
            got.push(client.expect_message().await);
        }
        // Nothing beyond what was sent.
        let extra: Vec<_> = client.sync().await;
        assert!(
            !extra
                .iter()
                .any(|f| matches!(f, chinwag::protocol::ServerFrame::Message(_))),
            "more messages than were sent: {extra:?}"
        );
        got
    })
}

async fn read_acks(sender: &mut RawClient, ids: &[u64]) -> Vec<Ack> {
    let mut acks = Vec::with_capacity(ids.len());
    for &id in ids {
        // Acks come in routing order, which for one sender is sending order:
        // the next ACK must be for the next id, with no other ACK between.
        let ack = sender
            .recv_until(|f| match f {
                chinwag::protocol::ServerFrame::Ack(a) => Some(a),
                _ => None,
            })
            .await;
        assert_eq!(ack.client_id, id, "acks out of order");
        acks.push(ack);
    }
    acks
}

fn assert_in_sending_order(name: &str, got: &[Message], acks: &[Ack], to: &Recipients) {
    assert_eq!(got.len(), acks.len(), "{name}");
    for (seq, (message, ack)) in got.iter().zip(acks).enumerate() {
        assert_eq!(message.text, format!("seq {seq}"), "{name}: out of order");
        assert_eq!(message.from, "sender", "{name}");
        assert_eq!(&message.to, to, "{name}");
        assert_eq!(
            message.id, ack.message_id,
            "{name}: id differs from the ack's"
        );
    }
    assert!(
        got.windows(2).all(|w| w[0].id < w[1].id),
        "{name}: ids not strictly increasing"
    );
}

async fn one_sender_to_three(to: Recipients) {
    let hub = TestHub::start().await;
    let [mut sender, r1, r2, r3] = register_all(&hub, ["sender", "r1", "r2", "r3"]).await;
    let readers: Vec<_> = [r1, r2, r3]
        .into_iter()
        .map(|r| read_messages(r, COUNT))
        .collect();

    let mut ids = Vec::with_capacity(COUNT);
    for seq in 0..COUNT {
        ids.push(sender.send_message(to.clone(), &format!("seq {seq}")).await);
    }
    let acks = guard(GUARD, "acks", read_acks(&mut sender, &ids)).await;
    for ack in &acks {
        assert_eq!(ack.delivered, 3);
        assert!(
            ack.statuses.iter().all(|s| s.status == Code::DELIVERED),
            "{ack:?}"
        );
    }
    assert!(acks.windows(2).all(|w| w[0].message_id < w[1].message_id));

    for (reader, name) in readers.into_iter().zip(["r1", "r2", "r3"]) {
        let got = guard(GUARD, name, reader).await.unwrap();
        assert_in_sending_order(name, &got, &acks, &to);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_direct_messages_arrive_in_order_at_each_of_three_recipients() {
    one_sender_to_three(users(&["r1", "r2", "r3"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_broadcasts_arrive_in_order_at_each_of_three_recipients() {
    one_sender_to_three(Recipients::Everyone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipient_sees_concurrent_senders_in_the_same_routing_order() {
    const EACH: usize = 300;
    let hub = TestHub::start().await;
    let [alice, bob, carol, dave] = register_all(&hub, ["alice", "bob", "carol", "dave"]).await;
    let readers = [
        read_messages(carol, 2 * EACH),
        read_messages(dave, 2 * EACH),
    ];

    let senders = [alice, bob].map(|mut sender| {
        tokio::spawn(async move {
            let mut last = 0;
            for seq in 0..EACH {
                last = sender
                    .send_to(&["carol", "dave"], &format!("seq {seq}"))
                    .await;
                if seq % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            sender.expect_ack(last).await;
            sender
        })
    });
    for sender in senders {
        guard(GUARD, "sender", sender).await.unwrap();
    }

    let mut orders = Vec::new();
    for (reader, name) in readers.into_iter().zip(["carol", "dave"]) {
        let got = guard(GUARD, name, reader).await.unwrap();
        assert!(
            got.windows(2).all(|w| w[0].id < w[1].id),
            "{name}: ids not strictly increasing"
        );
        for from in ["alice", "bob"] {
            let texts: Vec<&str> = got
                .iter()
                .filter(|m| m.from == from)
                .map(|m| m.text.as_str())
                .collect();
            let expected: Vec<String> = (0..EACH).map(|seq| format!("seq {seq}")).collect();
            assert_eq!(texts, expected, "{name}: {from}'s messages");
        }
        orders.push(got.iter().map(|m| m.id).collect::<Vec<_>>());
    }
    assert_eq!(orders[0], orders[1], "carol and dave saw different orders");
}
