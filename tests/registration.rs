//! Registration over real sockets: `HELLO`, `WELCOME`, and every way a
//! `HELLO` can be refused.

mod support;

use chinwag::hub::HubConfig;
use chinwag::protocol::{
    ClientFrame, Code, Hello, Nick, PROTOCOL_VERSION, RESERVED_NICKS, SendFrame, ServerFrame,
};
use support::{TestHub, register_all, users};

#[tokio::test]
async fn welcome_reports_version_max_frame_nick_and_a_case_insensitively_sorted_roster() {
    let mut config = HubConfig::default();
    config.max_frame = 300_000;
    let hub = TestHub::with_config(config).await;

    let mut first = hub.connect().await;
    first.hello("bob").await;
    let welcome = first.expect_welcome().await;
    assert_eq!(welcome.version, PROTOCOL_VERSION);
    assert_eq!(welcome.version, 1);
    assert_eq!(welcome.max_frame, 300_000);
    assert_eq!(welcome.nick, "bob");
    assert_eq!(welcome.roster, ["bob"]);

    let _others = register_all(&hub, ["dave", "Alice"]).await;
    let mut carol = hub.connect().await;
    carol.hello("Carol").await;
    let welcome = carol.expect_welcome().await;
    assert_eq!(welcome.nick, "Carol");
    assert_eq!(welcome.roster, ["Alice", "bob", "Carol", "dave"]);
}

#[tokio::test]
async fn taken_nickname_is_refused_and_the_client_may_try_another() {
    let hub = TestHub::start().await;
    let mut alice = hub.register("alice").await;

    let mut late = hub.connect().await;
    late.hello("alice").await;
    let error = late.expect_next_error().await;
    assert_eq!(error.code, Code::NICK_TAKEN);
    assert_eq!(error.reference, 0);

    late.hello("alice2").await;
    let welcome = late.expect_welcome().await;
    assert_eq!(welcome.nick, "alice2");
    assert_eq!(welcome.roster, ["alice", "alice2"]);
    assert_eq!(alice.expect_presence().await, ("alice2".to_owned(), true));
}

#[tokio::test]
async fn nickname_clash_ignores_case() {
    let hub = TestHub::start().await;
    let _alice = hub.register("Alice").await;
    let mut other = hub.connect().await;
    for spelling in ["alice", "ALICE", "aLiCe"] {
        other.hello(spelling).await;
        assert_eq!(
            other.expect_next_error().await.code,
            Code::NICK_TAKEN,
            "{spelling}"
        );
    }
    assert_eq!(other.sync().await, []);
}

#[tokio::test]
async fn reserved_nicknames_are_refused_in_any_case() {
    let hub = TestHub::start().await;
    let mut client = hub.connect().await;
    let mut names: Vec<String> = Vec::new();
    for reserved in RESERVED_NICKS {
        names.push((*reserved).to_owned());
        names.push(reserved.to_ascii_uppercase());
        let mut chars = reserved.chars();
        let first = chars.next().unwrap().to_ascii_uppercase();
        names.push(format!("{first}{}", chars.as_str()));
    }
    for required in [
        "all", "everyone", "server", "hub", "admin", "system", "Admin",
    ] {
        assert!(names.iter().any(|n| n == required), "{required} not tried");
    }
    for name in &names {
        client.hello(name).await;
        let error = client.expect_next_error().await;
        assert_eq!(error.code, Code::NICK_RESERVED, "{name}");
    }
    // Refusals leave the connection open and unregistered.
    client.hello("administrator").await;
    assert_eq!(client.expect_welcome().await.nick, "administrator");
}

#[tokio::test]
async fn bad_nicknames_are_refused_with_their_own_code_and_the_connection_stays_open() {
    let hub = TestHub::start().await;
    let mut client = hub.connect().await;
    let long = "a".repeat(33);
    let cases: [(&[u8], Option<Code>); 9] = [
        (b"", Some(Code::NICK_EMPTY)),
        (long.as_bytes(), Some(Code::NICK_TOO_LONG)),
        (b"al\xffice", Some(Code::NICK_NOT_UTF8)),
        (b"9lives", Some(Code::NICK_BAD_START)),
        // For these the code is whatever `Nick::parse` decides: 23 or 24.
        (b"al ice", None),
        (b"al\x07ice", None),
        ("al\u{200b}ice".as_bytes(), None),
        ("al\u{202e}ice".as_bytes(), None),
        (b" alice", None),
    ];
    for (raw, expected) in cases {
        let parsed = Nick::parse(raw).expect_err("the case must be a bad nickname");
        let expected = expected.unwrap_or_else(|| {
            let code = parsed.code();
            assert!(
                code == Code::NICK_BAD_CHAR || code == Code::NICK_BAD_START,
                "{raw:?}: {code:?}"
            );
            code
        });
        assert_eq!(parsed.code(), expected, "Nick::parse on {raw:?}");

        client.hello_bytes(raw).await;
        let error = client.expect_next_error().await;
        assert_eq!(error.code, expected, "hub on {raw:?}");
        assert_eq!(error.reference, 0);
    }
    client.hello("alice").await;
    assert_eq!(client.expect_welcome().await.roster, ["alice"]);
}

#[tokio::test]
async fn the_longest_valid_nickname_is_accepted() {
    let hub = TestHub::start().await;
    let nick = format!("a{}", "b-_.9".repeat(7))
        .chars()
        .take(32)
        .collect::<String>();
    assert_eq!(nick.len(), 32);
    let mut client = hub.connect().await;
    client.hello(&nick).await;
    assert_eq!(client.expect_welcome().await.nick, nick);
}

#[tokio::test]
async fn unsupported_protocol_version_is_fatal() {
    let hub = TestHub::start().await;
    let mut watcher = hub.register("watcher").await;
    for version in [0, 2, u16::MAX] {
        // The version is judged before the nickname, so even an empty one
        // gets UNSUPPORTED_VERSION.
        for nick in ["alice", ""] {
            let mut client = hub.connect().await;
            client
                .send(ClientFrame::Hello(Hello {
                    version,
                    nick: nick.as_bytes().to_vec().into(),
                    options: None,
                    password: None,
                }))
                .await;
            client.expect_fatal(Code::UNSUPPORTED_VERSION).await;
        }
    }
    // Nobody registered; the hub is fine.
    assert_eq!(watcher.who().await, ["watcher"]);
}

#[tokio::test]
async fn send_or_who_before_hello_is_not_registered_and_the_connection_stays_open() {
    let hub = TestHub::start().await;
    let mut bob = hub.register("bob").await;
    let mut early = hub.connect().await;

    early
        .send(ClientFrame::Send(SendFrame {
            id: 42,
            to: users(&["bob"]),
            text: "too early".to_owned(),
        }))
        .await;
    let error = early.expect_next_error().await;
    assert_eq!(error.code, Code::NOT_REGISTERED);
    assert_eq!(error.reference, 42);

    early.send(ClientFrame::Who).await;
    let error = early.expect_next_error().await;
    assert_eq!(error.code, Code::NOT_REGISTERED);
    assert_eq!(error.reference, 0);

    early.hello("early").await;
    early.expect_welcome().await;
    // The early SEND was not delivered; only the arrival is seen.
    let frames = bob.sync().await;
    assert!(
        frames
            .iter()
            .all(|f| matches!(f, ServerFrame::Presence(p) if p.nick == "early" && p.online)),
        "{frames:?}"
    );
    let id = early.send_to(&["bob"], "now").await;
    assert_eq!(early.expect_ack(id).await.delivered, 1);
    assert_eq!(bob.expect_message().await.text, "now");
}

#[tokio::test]
async fn second_hello_is_already_registered_and_the_connection_stays_open() {
    let hub = TestHub::start().await;
    let mut alice = hub.register("alice").await;
    for nick in ["alice", "other"] {
        alice.hello(nick).await;
        let error = alice.expect_next_error().await;
        assert_eq!(error.code, Code::ALREADY_REGISTERED, "{nick}");
    }
    // Still registered as alice, and "other" was not registered.
    assert_eq!(alice.who().await, ["alice"]);
    let id = alice.send_to(&["alice"], "still me").await;
    assert_eq!(alice.expect_message().await.from, "alice");
    assert_eq!(alice.expect_ack(id).await.delivered, 1);
}

#[tokio::test]
async fn nickname_is_freed_when_its_owner_quits() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;
    alice.send(ClientFrame::Quit).await;
    alice.expect_eof().await;
    assert_eq!(bob.expect_presence().await, ("alice".to_owned(), false));

    let mut again = hub.connect().await;
    again.hello("ALICE").await;
    let welcome = again.expect_welcome().await;
    assert_eq!(welcome.nick, "ALICE");
    assert_eq!(welcome.roster, ["ALICE", "bob"]);
}

#[tokio::test]
async fn nickname_is_freed_when_its_owner_drops_the_socket() {
    let hub = TestHub::start().await;
    let [alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;
    drop(alice);
    assert_eq!(bob.expect_presence().await, ("alice".to_owned(), false));

    let again = hub.register("alice").await;
    drop(again);
    assert_eq!(bob.expect_presence().await, ("alice".to_owned(), true));
}

/// Messages to a name go to whoever holds it now: after its owner leaves
/// and someone else registers it, the newcomer gets them, not nobody.
#[tokio::test]
async fn messages_to_a_freed_and_retaken_name_reach_its_new_owner() {
    let hub = TestHub::start().await;
    let [mut alice, bob] = register_all(&hub, ["alice", "bob"]).await;
    let id = alice.send_to(&["bob"], "to the first bob").await;
    assert_eq!(alice.expect_ack(id).await.delivered, 1);
    drop(bob);
    assert_eq!(alice.expect_presence().await, ("bob".to_owned(), false));

    let id = alice.send_to(&["bob"], "to nobody").await;
    let ack = alice.expect_ack(id).await;
    assert_eq!(
        (ack.delivered, ack.statuses[0].status),
        (0, Code::NO_SUCH_USER)
    );

    let mut new_bob = hub.register("BOB").await;
    assert_eq!(alice.expect_presence().await, ("BOB".to_owned(), true));
    let id = alice.send_to(&["bob"], "to the new bob").await;
    assert_eq!(alice.expect_ack(id).await.delivered, 1);
    assert_eq!(new_bob.expect_message().await.text, "to the new bob");
}
