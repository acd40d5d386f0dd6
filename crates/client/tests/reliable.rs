//! Reliable sessions in the library (`ClientOptions::reliable`, issue 18),
//! against the real hub with its store on disk, through a proxy that cuts
//! the recipient's connections at seeded random points (mid-frame too):
//! every message acknowledged to its sender reaches the recipient's
//! application exactly once, in the order sent, however the cuts fall.
//!
//! A reliable sender goes through such a proxy too: each of its messages
//! is acknowledged in the end and reaches its recipient once, in order, or
//! fails on its own after `max_sendings`; and each one's receipt reaches
//! the sender's application once.
//!
//! The cuts come every 150 to 2,000 bytes of a connection. A mailbox many
//! times larger than that gets through too: the hub sends a reliable
//! session's mailbox a window at a time and the client confirms at once,
//! so each connection carries some of it and the next login starts
//! further on.

mod support;

use std::time::Duration;

use chinwag_client::{Backoff, Client, ClientOptions, Event, Events};
use chinwag_hub::protocol::Code;
use chinwag_testkit::{FaultProxy, Faults, within};

const PASSWORD: &str = "correct horse";

/// Rounds of the proxy test, each with its own hub, seed and cuts.
const ROUNDS: u64 = 50;

/// Messages sent to the reliable session in each round.
const MESSAGES: usize = 20;

/// Connects `nick` through `proxy`, reliably, reconnecting after cuts;
/// the first connection may itself be cut before its `WELCOME`, so this
/// tries again until one gets through.
async fn connect_reliably(proxy: &FaultProxy, nick: &str) -> (Client, Events) {
    let options = ClientOptions::default()
        .password(PASSWORD)
        .reliable(true)
        .receipts(true)
        // Cuts come every few hundred bytes: a message may need many
        // connections before one carries its ACK back.
        .max_sendings(1_000)
        .reconnect(Backoff::new(
            Duration::from_millis(2),
            Duration::from_millis(50),
        ));
    within("a first connection through the proxy", async {
        loop {
            if let Ok(connected) = Client::connect_with(proxy.addr(), nick, options.clone()).await {
                return connected;
            }
        }
    })
    .await
}

/// The texts of the messages handed to the application (live or from the
/// mailbox) until one reads `last`, in the order handed over.
async fn texts_until(events: &mut Events, last: &str) -> Vec<String> {
    within("every message handed over", async {
        let mut texts = Vec::new();
        loop {
            match events.recv().await.expect("events go on") {
                Event::Message(message) | Event::Stored(message) => {
                    let done = message.text == last;
                    texts.push(message.text);
                    if done {
                        return texts;
                    }
                }
                Event::Closed { reason } => panic!("closed: {reason}"),
                _ => {}
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_reaches_a_reliable_session_once_in_order_through_cuts() {
    let mut cuts = 0;
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().expect("a directory");
        let hub = support::hub_with_store(&dir).await;
        chinwag_client::create_account(hub.addr, "bob", PASSWORD)
            .await
            .expect("an account");
        let faults = Faults::cutting(0x5eed_0000 + round, 150..2_000).chunked(1..64);
        let proxy = FaultProxy::start(hub.addr, faults).expect("a proxy");
        let (_bob, mut events) = connect_reliably(&proxy, "bob").await;
        let (alice, _alice_events) = Client::connect(hub.addr, "alice").await.expect("alice");

        let mut sent = Vec::new();
        for i in 0..MESSAGES {
            let text = format!("round {round} message {i}");
            let ack = alice.send_to(&["bob"], &text).await.expect("an ack");
            let status = ack.status("bob");
            assert!(
                matches!(status, Some(Code::DELIVERED | Code::STORED)),
                "{text}: {status:?}"
            );
            sent.push(text);
        }
        // A last cut of whatever is open, and a message after it: what
        // was not confirmed comes again and must not be shown twice.
        proxy.cut_all();
        let last = format!("round {round} after the last cut");
        alice.send_to(&["bob"], &last).await.expect("an ack");
        sent.push(last.clone());

        let received = texts_until(&mut events, &last).await;
        assert_eq!(received, sent, "round {round}: once each, in order");
        cuts += proxy.cuts();
        hub.hub.shutdown().await;
    }
    assert!(
        cuts >= ROUNDS,
        "the proxy cut {cuts} connections in {ROUNDS} rounds"
    );
    println!(
        "{ROUNDS} rounds, {cuts} cuts, {} messages",
        ROUNDS * (MESSAGES as u64 + 1)
    );
}

/// Rounds of the large mailbox's proxy test, and messages stored in each.
const MAILBOX_ROUNDS: u64 = 10;
const MAILBOX_MESSAGES: usize = 300;

/// A mailbox of 300 messages (about 20 KB of frames), stored while its
/// owner was offline, read through a proxy that cuts every connection
/// after 150 to 2,000 bytes: every message reaches the application once,
/// in order. Before the hub sent a mailbox a window at a time (and the
/// client confirmed it at once), every login got the same first few
/// messages and was cut before its `CONFIRM` left: it never got through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_mailbox_gets_through_a_link_cut_every_few_hundred_bytes() {
    let mut cuts = 0;
    for round in 0..MAILBOX_ROUNDS {
        let dir = tempfile::tempdir().expect("a directory");
        let hub = support::hub_with_store(&dir).await;
        chinwag_client::create_account(hub.addr, "bob", PASSWORD)
            .await
            .expect("an account");
        let (alice, _alice_events) = Client::connect(hub.addr, "alice").await.expect("alice");
        let mut sent = Vec::new();
        for i in 0..MAILBOX_MESSAGES {
            let text = format!("round {round} stored message {i}");
            let ack = alice.send_to(&["bob"], &text).await.expect("an ack");
            assert_eq!(ack.status("bob"), Some(Code::STORED), "{text}");
            sent.push(text);
        }
        let last = sent.last().cloned().unwrap_or_default();
        let faults = Faults::cutting(0x3a11_0000 + round, 150..2_000).chunked(1..64);
        let proxy = FaultProxy::start(hub.addr, faults).expect("a proxy");
        let (_bob, mut events) = connect_reliably(&proxy, "bob").await;
        let received = texts_until(&mut events, &last).await;
        assert_eq!(received, sent, "round {round}: once each, in order");
        cuts += proxy.cuts();
        hub.hub.shutdown().await;
    }
    assert!(
        cuts >= MAILBOX_ROUNDS * 5,
        "the proxy cut {cuts} connections in {MAILBOX_ROUNDS} rounds"
    );
    println!(
        "{MAILBOX_ROUNDS} rounds, {cuts} cuts, {} stored messages",
        MAILBOX_ROUNDS * MAILBOX_MESSAGES as u64
    );
}

/// Rounds of the sender's proxy test, and messages sent in each.
const SENDER_ROUNDS: u64 = 30;
const SENDER_MESSAGES: usize = 100;

/// A reliable session's messages, submitted all at once through a proxy
/// that cuts its connections: each is acknowledged in the end (the client
/// sends again what was not, after each reconnection, with the same id),
/// and each reaches the recipient once, in the order sent (the hub answers
/// one it had routed instead of routing it again). Fails with either side
/// taken out: without the outbox a cut fails sends with `Disconnected`,
/// without the hub's memory a message routed before its `ACK` was lost
/// arrives twice.
///
/// And every receipt reaches the sender's application, once: the hub
/// keeps a reliable session's receipts until its client confirms them, so
/// one sent on a connection that was cut comes again at the next login
/// (and the client shows it once). Without that, the receipts sent on a
/// connection just before its cut are lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reliable_senders_messages_are_acknowledged_and_delivered_once_through_cuts() {
    let (mut cuts, mut sent_total, mut receipts_total) = (0, 0, 0);
    for round in 0..SENDER_ROUNDS {
        let dir = tempfile::tempdir().expect("a directory");
        let hub = support::hub_with_store(&dir).await;
        for nick in ["alice", "bob"] {
            chinwag_client::create_account(hub.addr, nick, PASSWORD)
                .await
                .expect("an account");
        }
        let faults = Faults::cutting(0x5e4d_0000 + round, 150..2_000).chunked(1..64);
        let proxy = FaultProxy::start(hub.addr, faults).expect("a proxy");
        let bob_options = ClientOptions::default()
            .password(PASSWORD)
            .reliable(true)
            .presence(false);
        let (_bob, mut events) = Client::connect_with(hub.addr, "bob", bob_options)
            .await
            .expect("bob");
        let (alice, mut alice_events) = connect_reliably(&proxy, "alice").await;

        let sent: Vec<String> = (0..SENDER_MESSAGES)
            .map(|i| format!("round {round} from alice {i}"))
            .collect();
        let mut acks = Vec::new();
        for text in &sent {
            let to = chinwag_client::Recipients::Users(vec!["bob".into()]);
            acks.push(alice.submit(to, text.clone()).await.expect("submitted"));
        }
        let mut ids = Vec::new();
        for (ack, text) in acks.into_iter().zip(&sent) {
            let ack = within("an ack through the cuts", ack).await;
            let ack = ack.unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(ack.status("bob"), Some(Code::DELIVERED), "{text}");
            ids.push(ack.message_id());
        }
        let last = sent.last().cloned().unwrap_or_default();
        let received = texts_until(&mut events, &last).await;
        assert_eq!(received, sent, "round {round}: once each, in order");
        let receipts = receipts_for(&mut alice_events, &ids).await;
        assert_eq!(receipts, ids.len(), "round {round}: a receipt for each");
        receipts_total += receipts;
        cuts += proxy.cuts();
        sent_total += sent.len();
        hub.hub.shutdown().await;
    }
    assert!(
        cuts >= SENDER_ROUNDS,
        "the proxy cut {cuts} connections in {SENDER_ROUNDS} rounds"
    );
    println!(
        "{SENDER_ROUNDS} rounds, {cuts} cuts, {sent_total} messages, {receipts_total} receipts"
    );
}

/// Reads receipts until there is one from bob for each of `ids`, failing
/// on a receipt handed over twice or for a message not sent; answers how
/// many came.
async fn receipts_for(events: &mut Events, ids: &[u64]) -> usize {
    let mut awaited: std::collections::HashSet<u64> = ids.iter().copied().collect();
    let mut came = 0;
    within("a receipt for every message", async {
        while !awaited.is_empty() {
            match events.recv().await.expect("events go on") {
                Event::Receipt(receipt) => {
                    assert_eq!(receipt.recipient, "bob");
                    assert!(
                        awaited.remove(&receipt.message_id),
                        "a receipt twice, or for no message sent: {receipt:?}"
                    );
                    came += 1;
                }
                Event::Closed { reason } => panic!("closed: {reason}"),
                _ => {}
            }
        }
    })
    .await;
    came
}

/// Past `max_sendings`, a message the hub never acknowledged fails with
/// `Unacknowledged`, reported per message; the others are acknowledged.
/// A link that is cut every 400 to 1,500 bytes leaves many messages needing
/// more than two sendings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_too_many_times_without_an_ack_fails_on_its_own() {
    let dir = tempfile::tempdir().expect("a directory");
    let hub = support::hub_with_store(&dir).await;
    for nick in ["alice", "bob"] {
        chinwag_client::create_account(hub.addr, nick, PASSWORD)
            .await
            .expect("an account");
    }
    let faults = Faults::cutting(0x9a7e, 400..1_500).chunked(1..64);
    let proxy = FaultProxy::start(hub.addr, faults).expect("a proxy");
    let options = ClientOptions::default()
        .password(PASSWORD)
        .reliable(true)
        .max_sendings(2)
        .reconnect(Backoff::new(
            Duration::from_millis(2),
            Duration::from_millis(20),
        ));
    let (alice, _events) = within("a first connection through the proxy", async {
        loop {
            if let Ok(connected) =
                Client::connect_with(proxy.addr(), "alice", options.clone()).await
            {
                return connected;
            }
        }
    })
    .await;
    let mut acks = Vec::new();
    for i in 0..60 {
        let to = chinwag_client::Recipients::Users(vec!["bob".into()]);
        acks.push(alice.submit(to, format!("m{i}")).await.expect("submitted"));
    }
    let (mut acknowledged, mut given_up) = (0, 0);
    for ack in acks {
        match within("each message's end", ack).await {
            Ok(_) => acknowledged += 1,
            Err(chinwag_client::ClientError::Unacknowledged { sendings }) => {
                assert_eq!(sendings, 2);
                given_up += 1;
            }
            Err(error) => panic!("{error}"),
        }
    }
    assert!(given_up > 0, "none given up ({acknowledged} acknowledged)");
    assert!(acknowledged > 0, "none acknowledged ({given_up} given up)");
    println!("{acknowledged} acknowledged, {given_up} given up after 2 sendings");
    hub.hub.shutdown().await;
}
