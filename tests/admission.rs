//! Admission over real sockets: the connection limit and the registration
//! deadline. When exactly the deadline fires, and that registered clients
//! are not subject to it, is `crates/hub/tests/deadlines.rs`'s to say, on a
//! paused clock; here it is shortened to a few seconds and no time is
//! asserted.

mod support;

use std::time::Duration;

use chinwag::hub::HubConfig;
use chinwag::protocol::{ClientFrame, Code, ServerFrame};
use support::{PATIENCE, RawClient, TestHub, guard, register_all};

/// Connects until the hub accepts the connection (answers a PING instead of
/// refusing with `SERVER_FULL`), for limits that are released
/// asynchronously after a client leaves.
async fn connect_when_admitted(hub: &TestHub) -> RawClient {
    guard(PATIENCE, "a connection being admitted", async {
        loop {
            let mut client = hub.connect().await;
            client.send(ClientFrame::Ping(1)).await;
            match client.recv().await {
                Some(ServerFrame::Pong(1)) => return client,
                Some(ServerFrame::Error(e)) if e.code == Code::SERVER_FULL => {
                    client.expect_eof().await;
                }
                other => panic!("expected PONG or SERVER_FULL, got {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Shorter than the default 5 s, and still long enough that a client on a
/// loaded machine gets its `PING` answered before it passes.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test]
async fn connection_over_the_limit_gets_server_full_at_once_and_is_closed() {
    let mut config = HubConfig::default();
    config.max_connections = 2;
    let hub = TestHub::with_config(config).await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;

    // Refused before it says anything.
    let mut third = hub.connect().await;
    let error = third.expect_next_error().await;
    assert_eq!(error.code, Code::SERVER_FULL);
    assert_eq!(error.reference, 0);
    third.expect_eof().await;

    // The two inside are unaffected.
    let id = alice.send_to(&["bob"], "still fine").await;
    assert_eq!(alice.expect_ack(id).await.delivered, 1);
    assert_eq!(bob.expect_message().await.text, "still fine");

    // Once one leaves, a newcomer gets in.
    alice.send(ClientFrame::Quit).await;
    alice.expect_eof().await;
    let mut carol = connect_when_admitted(&hub).await;
    carol.hello("carol").await;
    assert_eq!(carol.expect_welcome().await.roster, ["bob", "carol"]);
    assert_eq!(bob.expect_presence().await, ("alice".to_owned(), false));
    assert_eq!(bob.expect_presence().await, ("carol".to_owned(), true));
}

#[tokio::test]
async fn dropped_connection_frees_its_place_under_the_limit() {
    let mut config = HubConfig::default();
    config.max_connections = 1;
    let hub = TestHub::with_config(config).await;
    let alice = hub.register("alice").await;
    let mut refused = hub.connect().await;
    assert_eq!(refused.expect_next_error().await.code, Code::SERVER_FULL);
    drop(alice);
    let mut bob = connect_when_admitted(&hub).await;
    bob.hello("bob").await;
    assert_eq!(bob.expect_welcome().await.roster, ["bob"]);
}

#[tokio::test]
async fn hello_that_finds_the_registered_places_taken_gets_server_full() {
    let mut config = HubConfig::default();
    config.max_connections = 1;
    let hub = TestHub::with_config(config).await;
    // Both admitted while a registered place is still free...
    let mut first = hub.connect().await;
    let mut second = hub.connect().await;
    assert_eq!(first.sync().await, []);
    assert_eq!(second.sync().await, []);
    // ...but only one can register.
    first.hello("first").await;
    first.expect_welcome().await;
    second.hello("second").await;
    second.expect_fatal(Code::SERVER_FULL).await;
    assert_eq!(first.who().await, ["first"]);
}

#[tokio::test]
async fn unregistered_connections_are_capped_apart_from_registered_users() {
    let mut config = HubConfig::default();
    config.max_unregistered = 1;
    let hub = TestHub::with_config(config).await;
    let mut alice = hub.register("alice").await;

    let mut idle = hub.connect().await;
    assert_eq!(idle.sync().await, []);
    let mut crowd = hub.connect().await;
    crowd.expect_fatal(Code::SERVER_FULL).await;

    // Registered users are not affected, and registering frees the place.
    let id = alice.send_to(&["alice"], "fine").await;
    assert_eq!(alice.expect_ack(id).await.delivered, 1);
    idle.hello("bob").await;
    idle.expect_welcome().await;
    let mut carol = connect_when_admitted(&hub).await;
    carol.hello("carol").await;
    assert_eq!(
        carol.expect_welcome().await.roster,
        ["alice", "bob", "carol"]
    );
}

#[tokio::test]
async fn connection_without_hello_gets_registration_timeout_and_is_closed() {
    let mut config = HubConfig::default();
    config.registration_timeout = REGISTRATION_TIMEOUT;
    let hub = TestHub::with_config(config).await;
    let mut alice = hub.register("alice").await;
    let mut silent = hub.connect().await;
    silent.expect_fatal(Code::REGISTRATION_TIMEOUT).await;
    // Nobody else noticed.
    assert_eq!(alice.sync().await, []);
}

#[tokio::test]
async fn pings_and_refused_hellos_do_not_count_as_registering() {
    let mut config = HubConfig::default();
    config.registration_timeout = REGISTRATION_TIMEOUT;
    let hub = TestHub::with_config(config).await;
    let mut pinging = hub.connect().await;
    pinging.send(ClientFrame::Ping(1)).await;
    assert_eq!(pinging.recv().await, Some(ServerFrame::Pong(1)));
    let mut refused = hub.connect().await;
    refused.hello("9lives").await;
    assert_eq!(refused.expect_next_error().await.code, Code::NICK_BAD_START);

    for client in [&mut pinging, &mut refused] {
        client.expect_fatal(Code::REGISTRATION_TIMEOUT).await;
    }
}
