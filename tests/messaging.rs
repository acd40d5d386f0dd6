//! Messages over real sockets: direct, to several users, to everyone; what
//! the recipients get and what the sender's ACK says.
//!
//! "Exactly once" is checked with [`RawClient::sync`]: once the sender holds
//! its ACK the hub has queued every copy, so a recipient's PING is answered
//! behind all of them.

mod support;

use chinwag::protocol::{Code, Message, RecipientStatus, Recipients, ServerFrame};
use support::{RawClient, TestHub, now_ms, register_all, users};

fn status(nick: &str, status: Code) -> RecipientStatus {
    RecipientStatus {
        nick: nick.to_owned(),
        status,
    }
}

fn messages(frames: &[ServerFrame]) -> Vec<&Message> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// Asserts `client` has no further MESSAGE queued.
async fn assert_no_more_messages(client: &mut RawClient, who: &str) {
    let frames = client.sync().await;
    assert!(
        messages(&frames).is_empty(),
        "{who} got an unexpected message: {frames:?}"
    );
}

#[tokio::test]
async fn direct_message_reaches_only_the_named_user() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob, mut carol] = register_all(&hub, ["alice", "bob", "carol"]).await;

    let id = alice.send_to(&["bob"], "hi bob").await;
    let (before_ack, ack) = alice.frames_until_ack(id).await;
    assert!(messages(&before_ack).is_empty(), "{before_ack:?}");
    assert_eq!(ack.delivered, 1);
    assert_eq!(ack.statuses, [status("bob", Code::DELIVERED)]);

    let message = bob.expect_message().await;
    assert_eq!(message.from, "alice");
    assert_eq!(message.to, users(&["bob"]));
    assert_eq!(message.text, "hi bob");
    assert_eq!(message.id, ack.message_id);
    assert_no_more_messages(&mut bob, "bob").await;
    assert_no_more_messages(&mut carol, "carol").await;
    assert_no_more_messages(&mut alice, "alice").await;
}

#[tokio::test]
async fn message_to_two_users_reaches_each_once_and_acks_both_in_the_order_named() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob, mut carol, mut dave] =
        register_all(&hub, ["alice", "bob", "carol", "dave"]).await;

    // Named in non-alphabetical order, so that "the order named" is visible.
    let id = alice.send_to(&["carol", "bob"], "hi both").await;
    let ack = alice.expect_ack(id).await;
    assert_eq!(ack.delivered, 2);
    assert_eq!(
        ack.statuses,
        [
            status("carol", Code::DELIVERED),
            status("bob", Code::DELIVERED)
        ]
    );

    for (client, name) in [(&mut bob, "bob"), (&mut carol, "carol")] {
        let message = client.expect_message().await;
        assert_eq!(message.text, "hi both", "{name}");
        assert_eq!(message.to, users(&["carol", "bob"]), "{name}");
        assert_eq!(message.id, ack.message_id, "{name}");
        assert_no_more_messages(client, name).await;
    }
    assert_no_more_messages(&mut dave, "dave").await;
    assert_no_more_messages(&mut alice, "alice").await;
}

#[tokio::test]
async fn broadcast_reaches_every_other_user_and_not_the_sender() {
    let hub = TestHub::start().await;
    let mut clients = register_all(&hub, ["alice", "bob", "carol", "dave"]).await;

    let id = clients[0].broadcast("hello all").await;
    let (before_ack, ack) = clients[0].frames_until_ack(id).await;
    assert!(
        messages(&before_ack).is_empty(),
        "the sender got its own broadcast: {before_ack:?}"
    );
    assert_eq!(ack.delivered, 3);
    assert!(ack.statuses.is_empty(), "{:?}", ack.statuses);
    assert_no_more_messages(&mut clients[0], "alice").await;

    for (client, name) in clients[1..].iter_mut().zip(["bob", "carol", "dave"]) {
        let message = client.expect_message().await;
        assert_eq!(message.from, "alice", "{name}");
        assert_eq!(message.to, Recipients::Everyone, "{name}");
        assert_eq!(message.text, "hello all", "{name}");
        assert_eq!(message.id, ack.message_id, "{name}");
        assert_no_more_messages(client, name).await;
    }
}

#[tokio::test]
async fn broadcast_with_nobody_else_online_is_acked_with_zero_delivered() {
    let hub = TestHub::start().await;
    let mut alice = hub.register("alice").await;
    let id = alice.broadcast("anyone?").await;
    let (before_ack, ack) = alice.frames_until_ack(id).await;
    assert!(messages(&before_ack).is_empty(), "{before_ack:?}");
    assert_eq!(ack.delivered, 0);
    assert!(ack.statuses.is_empty());
}

#[tokio::test]
async fn unknown_recipient_is_no_such_user_while_the_others_are_delivered() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;

    let id = alice.send_to(&["nobody", "bob", "not a nick!"], "hi").await;
    let ack = alice.expect_ack(id).await;
    assert_eq!(ack.delivered, 1);
    assert_eq!(
        ack.statuses,
        [
            status("nobody", Code::NO_SUCH_USER),
            status("bob", Code::DELIVERED),
            status("not a nick!", Code::NO_SUCH_USER),
        ]
    );
    let message = bob.expect_message().await;
    // Recipients see only the names that exist.
    assert_eq!(message.to, users(&["bob"]));
    assert_no_more_messages(&mut bob, "bob").await;
}

#[tokio::test]
async fn message_to_a_user_who_left_is_no_such_user() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;
    bob.send(chinwag::protocol::ClientFrame::Quit).await;
    assert_eq!(alice.expect_presence().await, ("bob".to_owned(), false));

    let id = alice.send_to(&["bob"], "still there?").await;
    let ack = alice.expect_ack(id).await;
    assert_eq!(ack.delivered, 0);
    assert_eq!(ack.statuses, [status("bob", Code::NO_SUCH_USER)]);
}

#[tokio::test]
async fn repeated_recipients_in_any_case_are_delivered_and_acked_once() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob, mut carol] = register_all(&hub, ["alice", "bob", "carol"]).await;

    let id = alice
        .send_to(&["Bob", "bob", "carol", "BOB", "CAROL", "bOb"], "once each")
        .await;
    let ack = alice.expect_ack(id).await;
    assert_eq!(ack.delivered, 2);
    // One status per distinct name, first spelling kept.
    assert_eq!(
        ack.statuses,
        [
            status("Bob", Code::DELIVERED),
            status("carol", Code::DELIVERED)
        ]
    );
    for (client, name) in [(&mut bob, "bob"), (&mut carol, "carol")] {
        let message = client.expect_message().await;
        // As registered, whatever spelling the sender used.
        assert_eq!(message.to, users(&["bob", "carol"]), "{name}");
        assert_eq!(message.text, "once each");
        assert_no_more_messages(client, name).await;
    }
}

#[tokio::test]
async fn naming_yourself_delivers_to_yourself() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;

    let id = alice.send_to(&["ALICE"], "note to self").await;
    let (before_ack, ack) = alice.frames_until_ack(id).await;
    let got = messages(&before_ack);
    assert_eq!(got.len(), 1, "{before_ack:?}");
    assert_eq!(got[0].from, "alice");
    assert_eq!(got[0].to, users(&["alice"]));
    assert_eq!(got[0].text, "note to self");
    assert_eq!(got[0].id, ack.message_id);
    assert_eq!(ack.delivered, 1);
    assert_eq!(ack.statuses, [status("ALICE", Code::DELIVERED)]);
    assert_no_more_messages(&mut alice, "alice").await;
    assert_no_more_messages(&mut bob, "bob").await;

    // Yourself and someone else: both get it, each once.
    let id = alice.send_to(&["bob", "alice"], "both of us").await;
    let (before_ack, ack) = alice.frames_until_ack(id).await;
    assert_eq!(messages(&before_ack).len(), 1, "{before_ack:?}");
    assert_eq!(ack.delivered, 2);
    assert_eq!(bob.expect_message().await.text, "both of us");
    assert_no_more_messages(&mut bob, "bob").await;
}

#[tokio::test]
async fn empty_recipient_list_is_a_bad_request_and_the_connection_stays_usable() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;

    alice.send_to(&["bob"], "first").await;
    let empty = alice
        .send_message(Recipients::Users(vec![]), "to nobody")
        .await;
    let error = alice
        .recv_until(|f| match f {
            ServerFrame::Error(e) => Some(e),
            _ => None,
        })
        .await;
    assert_eq!(error.code, Code::BAD_REQUEST);
    assert_eq!(error.reference, empty);
    assert_eq!(bob.expect_message().await.text, "first");
    assert_no_more_messages(&mut bob, "bob").await;

    // Still registered and still routed.
    let id = alice.send_to(&["bob"], "after").await;
    assert_eq!(alice.expect_ack(id).await.delivered, 1);
    assert_eq!(bob.expect_message().await.text, "after");
}

#[tokio::test]
async fn message_carries_sender_recipients_timestamp_and_increasing_ids() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob] = register_all(&hub, ["Alice", "bob"]).await;

    let before = now_ms();
    let direct = alice.send_to(&["BOB", "nobody", "bob"], "one").await;
    let everyone = alice.broadcast("two").await;
    let third = alice.send_to(&["bob"], "three").await;
    let after = now_ms();
    let acks = [
        alice.expect_ack(direct).await,
        alice.expect_ack(everyone).await,
        alice.expect_ack(third).await,
    ];

    let got = [
        bob.expect_message().await,
        bob.expect_message().await,
        bob.expect_message().await,
    ];
    // `from` is the registered spelling, `to` the sender's, deduplicated.
    assert!(got.iter().all(|m| m.from == "Alice"), "{got:?}");
    assert_eq!(got[0].to, users(&["bob"]));
    assert_eq!(got[1].to, Recipients::Everyone);
    assert_eq!(got[2].to, users(&["bob"]));
    let texts: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);

    for (message, ack) in got.iter().zip(&acks) {
        assert_eq!(message.id, ack.message_id);
        // The hub's clock is this machine's clock; allow a minute either way.
        assert!(
            message.ts_ms + 60_000 >= before && message.ts_ms <= after + 60_000,
            "ts_ms {} is not close to now ({before}..{after})",
            message.ts_ms
        );
    }
    assert!(got[0].id < got[1].id && got[1].id < got[2].id, "{got:?}");
}

#[tokio::test]
async fn message_text_arrives_unchanged() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;
    let texts = [
        String::new(),
        "héllo ☃\nsecond line\t\u{0}end".to_owned(),
        "x".repeat(100_000),
    ];
    for text in &texts {
        alice.send_to(&["bob"], text).await;
    }
    for text in &texts {
        assert_eq!(&bob.expect_message().await.text, text);
    }
}
