//! Receipts from the client's side (`docs/protocol.md`, section 8.10):
//! against a real hub, a client that confirms (`ClientOptions::confirms`)
//! gives a sender that asked (`ClientOptions::receipts`) an
//! `Event::Receipt` per message, and nobody else gives or gets any; against
//! a scripted hub, exactly which `CONFIRM`s the client sends, and when.

mod support;

use std::collections::BTreeSet;

use chinwag_client::protocol::{ClientFrame, Message, Recipients, ServerFrame, options};
use chinwag_client::{Client, ClientOptions, Code, Event, Events, Receipt};
use support::{
    ScriptedConn, ScriptedHub, TestHub, event_where, hub_with_store, next_event, next_request,
    send_all, welcome,
};

fn confirming() -> ClientOptions {
    ClientOptions::default().confirms(true)
}

fn asking_for_receipts() -> ClientOptions {
    ClientOptions::default().receipts(true)
}

/// The next `count` receipts among `events`, other events skipped.
async fn receipts(events: &mut Events, count: usize) -> Vec<Receipt> {
    let mut all = Vec::new();
    while all.len() < count {
        all.push(
            event_where(events, |event| match event {
                Event::Receipt(receipt) => Some(receipt),
                _ => None,
            })
            .await,
        );
    }
    all
}

/// (message id, recipient) of each receipt.
fn pairs(receipts: &[Receipt]) -> BTreeSet<(u64, String)> {
    receipts
        .iter()
        .map(|receipt| (receipt.message_id, receipt.recipient.clone()))
        .collect()
}

/// Returns once every receipt that `CONFIRM`s already in the hub's queue
/// will give `client` is among its events. The hub's actor takes commands
/// in order, in batches, and queues receipts at the end of the batch that
/// made them: the answer to a first `WHO` can come before those of its own
/// batch, but a second `WHO`, sent after that answer came, is taken in a
/// later batch, and answered after them. Events come in the order their
/// frames did.
async fn settle(client: &Client) {
    client.who().await.unwrap();
    client.who().await.unwrap();
}

/// The receipts among the events queued now.
fn receipts_queued(events: &mut Events) -> Vec<Receipt> {
    std::iter::from_fn(|| events.try_recv())
        .filter_map(|event| match event {
            Event::Receipt(receipt) => Some(receipt),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn each_message_gets_a_receipt_from_each_confirming_recipient() {
    let hub = TestHub::start().await;
    let (alice, mut alice_events) = Client::connect_with(hub.addr, "alice", asking_for_receipts())
        .await
        .unwrap();
    let (_bob, mut bob_events) = Client::connect_with(hub.addr, "bob", confirming())
        .await
        .unwrap();
    let (_carol, _carol_events) = Client::connect_with(hub.addr, "Carol", confirming())
        .await
        .unwrap();
    assert_eq!(
        alice
            .welcome()
            .options
            .map(|granted| granted & options::RECEIPTS),
        Some(options::RECEIPTS)
    );

    let mut sent = Vec::new();
    for n in 1..=3 {
        let ack = alice
            .send_to(&["bob", "carol"], format!("message {n}"))
            .await
            .unwrap();
        assert!(ack.all_delivered());
        sent.push(ack.message_id());
    }
    // Nobody reads carol's events: a message handed to the application's
    // queue counts as received.
    let got = receipts(&mut alice_events, 6).await;
    let want: BTreeSet<(u64, String)> = sent
        .iter()
        .flat_map(|&id| [(id, "bob".to_owned()), (id, "Carol".to_owned())])
        .collect();
    assert_eq!(pairs(&got), want, "one per message per recipient: {got:?}");
    // After the message was routed, by the hub's clock.
    let first = event_where(&mut bob_events, |event| match event {
        Event::Message(message) => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(first.id, sent[0]);
    assert!(got.iter().all(|receipt| receipt.received_ms >= first.ts_ms));

    // A broadcast gets none. Each recipient's client confirms in the order
    // it was handed its messages: once the message after the broadcast has
    // both its receipts, the broadcast was confirmed too.
    alice.broadcast("hello, all").await.unwrap();
    let after = alice
        .send_to(&["bob", "carol"], "after the broadcast")
        .await
        .unwrap();
    let got = receipts(&mut alice_events, 2).await;
    let want: BTreeSet<(u64, String)> = [
        (after.message_id(), "bob".to_owned()),
        (after.message_id(), "Carol".to_owned()),
    ]
    .into();
    assert_eq!(pairs(&got), want);
    // And nothing more: none twice.
    settle(&alice).await;
    let more = receipts_queued(&mut alice_events);
    assert!(more.is_empty(), "{more:?}");
}

#[tokio::test]
async fn a_recipient_that_does_not_confirm_gives_no_receipt() {
    let hub = TestHub::start().await;
    let (alice, mut alice_events) = Client::connect_with(hub.addr, "alice", asking_for_receipts())
        .await
        .unwrap();
    let (_bob, _bob_events) = Client::connect_with(hub.addr, "bob", confirming())
        .await
        .unwrap();
    // Dave asks for nothing: the client library's default.
    let (dave, mut dave_events) = Client::connect(hub.addr, "dave").await.unwrap();

    let ack = alice.send_to(&["bob", "dave"], "hi both").await.unwrap();
    assert!(ack.all_delivered());
    let got = receipts(&mut alice_events, 1).await;
    assert_eq!(pairs(&got), [(ack.message_id(), "bob".to_owned())].into());

    // Dave has it, and leaves: a client confirms what it handed over
    // before its QUIT, so whatever dave's client would confirm is in the
    // hub's queue once dave is gone.
    let message = event_where(&mut dave_events, |event| match event {
        Event::Message(message) => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(message.id, ack.message_id());
    dave.quit().await;
    settle(&alice).await;
    let more = receipts_queued(&mut alice_events);
    assert!(more.is_empty(), "{more:?}");
}

#[tokio::test]
async fn a_sender_that_asked_for_nothing_gets_no_receipts() {
    let hub = TestHub::start().await;
    let (alice, mut alice_events) = Client::connect(hub.addr, "alice").await.unwrap();
    let (carol, mut carol_events) = Client::connect_with(hub.addr, "carol", asking_for_receipts())
        .await
        .unwrap();
    let (_bob, _bob_events) = Client::connect_with(hub.addr, "bob", confirming())
        .await
        .unwrap();

    let from_alice = alice.send_to(&["bob"], "from alice").await.unwrap();
    let from_carol = carol.send_to(&["bob"], "from carol").await.unwrap();
    assert!(from_alice.message_id() < from_carol.message_id());
    // Bob's client confirms in the order it was handed the messages: once
    // carol has her receipt, bob has confirmed alice's message too.
    let got = receipts(&mut carol_events, 1).await;
    assert_eq!(
        pairs(&got),
        [(from_carol.message_id(), "bob".to_owned())].into()
    );
    settle(&alice).await;
    let more = receipts_queued(&mut alice_events);
    assert!(more.is_empty(), "{more:?}");
}

/// A message stored for an offline account gets its receipt when its owner
/// logs in and the client hands it over, confirming it as it always has
/// (whether or not it confirms live messages).
#[tokio::test]
async fn a_stored_message_gets_its_receipt_when_its_owner_reads_it() {
    const PASSWORD: &str = "correct horse";
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_store(&dir).await;
    chinwag_client::create_account(hub.addr, "bob", PASSWORD)
        .await
        .unwrap();
    let (alice, mut alice_events) = Client::connect_with(hub.addr, "alice", asking_for_receipts())
        .await
        .unwrap();
    let ack = alice.send_to(&["bob"], "see you").await.unwrap();
    assert_eq!(ack.status("bob"), Some(Code::STORED));

    let options = ClientOptions::default().password(PASSWORD);
    let (_bob, mut bob_events) = Client::connect_with(hub.addr, "bob", options)
        .await
        .unwrap();
    let stored = event_where(&mut bob_events, |event| match event {
        Event::Stored(message) => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(stored.id, ack.message_id());
    let got = receipts(&mut alice_events, 1).await;
    assert_eq!(pairs(&got), [(ack.message_id(), "bob".to_owned())].into());
}

/// A receipt that comes while its sender's account is offline is kept by
/// the hub and handed over after the sender's next login that asks for
/// receipts, as an event like any other. Bob's client confirms alice's
/// message only once it hands it over, which it cannot while his events
/// queue is full: it is handed over, and confirmed, after alice left.
#[tokio::test]
async fn a_receipt_kept_for_an_offline_sender_comes_after_its_next_login() {
    const PASSWORD: &str = "correct horse";
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_store(&dir).await;
    chinwag_client::create_account(hub.addr, "alice", PASSWORD)
        .await
        .unwrap();
    let alice_options = asking_for_receipts().password(PASSWORD);
    let (alice, _alice_events) = Client::connect_with(hub.addr, "alice", alice_options.clone())
        .await
        .unwrap();
    // The table of users fills bob's queue of one event.
    let (bob, mut bob_events) =
        Client::connect_with(hub.addr, "bob", confirming().event_capacity(1))
            .await
            .unwrap();
    let ack = alice.send_to(&["bob"], "read this later").await.unwrap();
    assert!(ack.all_delivered());
    alice.quit().await;

    let message = event_where(&mut bob_events, |event| match event {
        Event::Message(message) => Some(message),
        _ => None,
    })
    .await;
    assert_eq!(message.id, ack.message_id());
    // Its CONFIRM goes before the QUIT, and the hub takes them in order.
    bob.quit().await;

    let (_alice, mut alice_events) = Client::connect_with(hub.addr, "alice", alice_options)
        .await
        .unwrap();
    let got = receipts(&mut alice_events, 1).await;
    assert_eq!(pairs(&got), [(ack.message_id(), "bob".to_owned())].into());
}

fn message(id: u64) -> ServerFrame {
    ServerFrame::Message(Message {
        id,
        ts_ms: 1_700_000_000_000 + id,
        from: "carol".into(),
        to: Recipients::Users(vec!["alice".into()]),
        text: format!("message {id}"),
    })
}

/// Connects to `scripted` with `options`; the hub grants what was asked
/// among `grant`. Answers the options asked for too.
async fn connect(
    scripted: &ScriptedHub,
    options: ClientOptions,
    grant: u32,
) -> (Client, Events, ScriptedConn, u32) {
    let client = tokio::spawn(Client::connect_with(scripted.addr, "alice", options));
    let (mut conn, hello) = scripted.accept_hello().await;
    welcome(&mut conn, &hello, grant).await;
    let (client, events) = client.await.unwrap().unwrap();
    (client, events, conn, hello.options.unwrap_or(0))
}

/// Live messages are confirmed 256 at a time, and what is left after
/// 50 ms (the test cannot tell 50 ms from longer, only that they come
/// without more traffic).
#[tokio::test]
async fn live_messages_are_confirmed_in_batches_of_256_or_when_due() {
    let scripted = ScriptedHub::start().await;
    let (_alice, mut events, mut conn, asked) =
        connect(&scripted, confirming(), options::KNOWN).await;
    assert_eq!(asked & options::CONFIRMS, options::CONFIRMS);
    assert_eq!(asked & options::RECEIPTS, 0);

    send_all(&mut conn, (1..=270).map(message)).await;
    assert_eq!(
        next_request(&mut conn).await,
        ClientFrame::Confirm((1..=256).collect())
    );
    assert_eq!(
        next_request(&mut conn).await,
        ClientFrame::Confirm((257..=270).collect())
    );
    // The application got them all, in order.
    for id in 1..=270 {
        match next_event(&mut events).await {
            Event::Message(message) => assert_eq!(message.id, id),
            other => panic!("expected message {id}, got {other:?}"),
        }
    }
    // One alone goes too.
    send_all(&mut conn, [message(271)]).await;
    assert_eq!(
        next_request(&mut conn).await,
        ClientFrame::Confirm(vec![271])
    );
}

/// What was handed over is confirmed before the client's `QUIT`, however
/// soon it quits.
#[tokio::test]
async fn quitting_confirms_what_was_handed_over_first() {
    let scripted = ScriptedHub::start().await;
    let (alice, mut events, mut conn, _) = connect(&scripted, confirming(), options::KNOWN).await;
    send_all(&mut conn, [message(5)]).await;
    let Event::Message(received) = next_event(&mut events).await else {
        panic!("expected the message");
    };
    assert_eq!(received.id, 5);
    let quit = tokio::spawn(async move { alice.quit().await });
    // Within 50 ms the timer may have sent it already: either way it comes
    // first, and alone.
    assert_eq!(next_request(&mut conn).await, ClientFrame::Confirm(vec![5]));
    assert_eq!(next_request(&mut conn).await, ClientFrame::Quit);
    drop(conn);
    quit.await.unwrap();
}

/// A client that did not ask to confirm, or was not granted it, confirms
/// no live message: its next frame after one it was handed is its `QUIT`
/// (which would come after any `CONFIRM` it had in hand, as above).
#[tokio::test]
async fn no_live_message_is_confirmed_unless_confirms_was_granted() {
    let scripted = ScriptedHub::start().await;
    for (options, grant) in [
        // Asked for neither.
        (ClientOptions::default(), options::KNOWN),
        // Asked, not granted (a hub from before receipts).
        (confirming().receipts(true), 0),
    ] {
        let (alice, mut events, mut conn, asked) = connect(&scripted, options, grant).await;
        if grant != 0 {
            assert_eq!(asked & (options::CONFIRMS | options::RECEIPTS), 0);
        }
        send_all(&mut conn, [message(1), message(2)]).await;
        for id in 1..=2 {
            match next_event(&mut events).await {
                Event::Message(message) => assert_eq!(message.id, id),
                other => panic!("expected message {id}, got {other:?}"),
            }
        }
        let quit = tokio::spawn(async move { alice.quit().await });
        assert_eq!(next_request(&mut conn).await, ClientFrame::Quit);
        drop(conn);
        quit.await.unwrap();
    }
}

/// Receipts reach the application as they come, one event each, several in
/// a frame included.
#[tokio::test]
async fn each_receipt_of_a_frame_is_an_event() {
    let scripted = ScriptedHub::start().await;
    let (_alice, mut events, mut conn, asked) =
        connect(&scripted, asking_for_receipts(), options::KNOWN).await;
    assert_eq!(asked & options::RECEIPTS, options::RECEIPTS);
    let receipt = |message_id, recipient: &str| Receipt {
        message_id,
        received_ms: 1_700_000_000_000,
        recipient: recipient.into(),
    };
    let frame = vec![receipt(7, "bob"), receipt(7, "Carol"), receipt(8, "bob")];
    send_all(&mut conn, [ServerFrame::Receipts(frame.clone())]).await;
    assert_eq!(receipts(&mut events, 3).await, frame);
}
