//! `ACK_RUNS`: a client that asks for it in `HELLO` has runs of messages
//! that reached everyone they named acknowledged by one `ACK_RUN`, and
//! everything else (failures, broadcasts, errors) as before, in order.

mod support;

use std::collections::HashMap;

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::{
    AckRun, ClientFrame, Code, Recipients, SendFrame, ServerFrame, options,
};
use futures::SinkExt;
use tokio::io::AsyncWriteExt;

use support::{Client, connect, encode_frames, next, register, register_with, send, start};

/// What a sender heard about one of its messages.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// Acknowledged inside an `ACK_RUN`: its message id.
    InRun(u64),
    /// Its own `ACK`: message id, delivered, statuses.
    Ack(u64, u32, Vec<(String, Code)>),
    /// An `ERROR` about it.
    Error(Code),
}

/// Reads replies until `count` messages are accounted for, in the order
/// they came; also returns how many `ACK_RUN` frames carried them.
async fn replies(client: &mut Client, count: usize) -> (Vec<(u64, Reply)>, usize) {
    let (mut got, mut runs) = (Vec::new(), 0);
    while got.len() < count {
        match next(client).await {
            Some(ServerFrame::AckRun(run)) => {
                runs += 1;
                got.extend(
                    run.ids()
                        .map(|(client, message)| (client, Reply::InRun(message))),
                );
            }
            Some(ServerFrame::Ack(ack)) => {
                let statuses = ack
                    .statuses
                    .into_iter()
                    .map(|s| (s.nick, s.status))
                    .collect();
                got.push((
                    ack.client_id,
                    Reply::Ack(ack.message_id, ack.delivered, statuses),
                ));
            }
            Some(ServerFrame::Error(error)) => {
                got.push((error.reference, Reply::Error(error.code)));
            }
            Some(ServerFrame::Presence(_)) => {}
            other => panic!("expected a reply, got {other:?}"),
        }
    }
    (got, runs)
}

/// The hub's message id of each text `client` receives, until `count`.
async fn message_ids(client: &mut Client, count: usize) -> HashMap<String, u64> {
    let mut ids = HashMap::new();
    while ids.len() < count {
        match next(client).await {
            Some(ServerFrame::Message(m)) => {
                ids.insert(m.text, m.id);
            }
            Some(ServerFrame::Presence(_)) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_grants_the_options_it_knows_and_only_when_asked() {
    let (_hub, addr) = start(HubConfig::default()).await;
    let (_a, welcome) = register_with(addr, "alice", u32::MAX).await;
    assert_eq!(
        welcome.options,
        Some(
            options::ACK_RUNS
                | options::NO_PRESENCE
                | options::QUIET
                | options::USERS
                | options::CONFIRMS
                | options::RECEIPTS
                | options::RECEIPT_RUNS
        ),
        "unknown bits are not granted"
    );
    let (_b, welcome) = register_with(addr, "bob", 0).await;
    assert_eq!(
        welcome.options,
        Some(0),
        "asking for nothing is still answered"
    );

    // A HELLO without the field gets a WELCOME without it.
    let mut carol = connect(addr).await;
    carol.send(support::hello("carol")).await.unwrap();
    match next(&mut carol).await {
        Some(ServerFrame::Welcome(welcome)) => assert_eq!(welcome.options, None),
        other => panic!("expected WELCOME, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_acknowledge_delivered_messages_and_the_rest_keep_their_acks_in_order() {
    let (_hub, addr) = start(HubConfig::default()).await;
    let mut bob = register(addr, "bob").await;
    let mut carol = register(addr, "carol").await;
    let (mut alice, welcome) = register_with(addr, "alice", options::ACK_RUNS).await;
    assert_eq!(welcome.options, Some(options::ACK_RUNS));

    // One write: 100 to bob (ids 1-100), one naming someone unknown (101),
    // 20 to bob and carol with a repeat (102-121), a broadcast (122), an
    // empty list (123), 30 more to bob (124-153), then 3 to bob whose ids
    // skip (200, 202, 204).
    let mut frames = Vec::new();
    let mut texts_to_bob = Vec::new();
    for id in 1..=100 {
        frames.push(send(id, &["bob"], format!("m{id}")));
        texts_to_bob.push(id);
    }
    frames.push(send(101, &["bob", "nobody"], "m101"));
    texts_to_bob.push(101);
    for id in 102..=121 {
        frames.push(send(id, &["bob", "Carol", "BOB"], format!("m{id}")));
        texts_to_bob.push(id);
    }
    frames.push(send(122, &[], "m122"));
    texts_to_bob.push(122);
    frames.push(ClientFrame::Send(SendFrame {
        id: 123,
        to: Recipients::Users(Vec::new()),
        text: "x".to_owned(),
    }));
    for id in (124..=153).chain([200, 202, 204]) {
        frames.push(send(id, &["bob"], format!("m{id}")));
        texts_to_bob.push(id);
    }
    alice
        .get_mut()
        .write_all(&encode_frames(&frames))
        .await
        .unwrap();

    let ids = message_ids(&mut bob, texts_to_bob.len()).await;
    let (got, runs) = replies(&mut alice, frames.len()).await;

    // Every message answered once, in the order sent.
    let order: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    let sent: Vec<u64> = (1..=153).chain([200, 202, 204]).collect();
    assert_eq!(order, sent);

    for (client_id, reply) in got {
        let message_id = |id: u64| ids[&format!("m{id}")];
        match client_id {
            // Delivered to everyone named: in a run, with the id bob saw.
            1..=100 | 102..=121 | 124..=153 | 200 | 202 | 204 => {
                assert_eq!(
                    reply,
                    Reply::InRun(message_id(client_id)),
                    "message {client_id}"
                );
            }
            101 => assert_eq!(
                reply,
                Reply::Ack(
                    message_id(101),
                    1,
                    vec![
                        ("bob".to_owned(), Code::DELIVERED),
                        ("nobody".to_owned(), Code::NO_SUCH_USER),
                    ]
                )
            ),
            122 => assert_eq!(reply, Reply::Ack(message_id(122), 2, Vec::new())),
            123 => assert_eq!(reply, Reply::Error(Code::BAD_REQUEST)),
            other => panic!("a reply about message {other}, never sent"),
        }
    }
    // The 150 delivered messages with consecutive ids came in far fewer
    // frames than one each; the three whose ids skip came in one each.
    assert!(runs < 3 + 150 / 2, "{runs} ACK_RUN frames for 153 messages");

    // carol got the 20 that named her, once each.
    let to_carol = message_ids(&mut carol, 21).await;
    assert!((102..=122).all(|id| to_carol.contains_key(&format!("m{id}"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_a_run_of_one_for_a_client_sending_one_at_a_time() {
    let (_hub, addr) = start(HubConfig::default()).await;
    let mut bob = register(addr, "bob").await;
    let (mut alice, _) = register_with(addr, "alice", options::ACK_RUNS).await;
    for id in 1..=3 {
        alice.send(send(id, &["bob"], "hi")).await.unwrap();
        let message_id = message_ids(&mut bob, 1).await["hi"];
        assert_eq!(
            next(&mut alice).await,
            Some(ServerFrame::AckRun(AckRun::one(id, message_id)))
        );
    }
}
