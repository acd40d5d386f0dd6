//! A running hub reconfigured (`Hub::reconfigure`, the daemon's SIGHUP),
//! over real sockets: what changes for connections already open, what
//! changes for the next ones, and what waits for a restart.

use std::time::Duration;

use chinwag_hub::protocol::{Code, ServerFrame};
use chinwag_hub::store::StoreConfig;
use chinwag_hub::{HubConfig, RateLimit};
use chinwag_testkit::{RawClient, TestHub, hello, send};

#[tokio::test]
async fn flood_control_turned_on_holds_for_a_connection_already_open() {
    let hub = TestHub::start().await;
    let mut alice = hub.register("alice").await;
    let mut bob = hub.register("bob").await;
    // No flood control yet: a burst goes through whole.
    for id in 1..=20 {
        alice.send(send(id, &["bob"], "before")).await;
    }
    for id in 1..=20 {
        alice.expect_ack(id).await;
    }
    let mut config = (*hub.hub.config()).clone();
    config.rate_limit = Some(RateLimit {
        per_second: 1.0,
        burst: 3,
        grace: Duration::from_secs(60),
    });
    let done = hub.hub.reconfigure(config).await.expect("a running hub");
    assert_eq!(done.applied, ["rate_limit"]);
    assert!(done.at_restart.is_empty());
    // The same connection, its next burst: three go, the rest are refused.
    for id in 21..=30 {
        alice.send(send(id, &["bob"], "after")).await;
    }
    let (mut acked, mut refused) = (0, 0);
    while acked + refused < 10 {
        match alice.recv().await {
            Some(ServerFrame::Ack(_)) => acked += 1,
            Some(ServerFrame::Error(error)) if error.code == Code::RATE_LIMITED => refused += 1,
            Some(_) => {}
            None => panic!("alice was disconnected"),
        }
    }
    assert_eq!((acked, refused), (3, 7));
    for _ in 0..23 {
        bob.expect_message().await;
    }
    assert_eq!(hub.hub.stats().rate_limited, 7);
    hub.hub.shutdown().await;
}

#[tokio::test]
async fn per_address_limits_change_for_the_next_connection() {
    let mut config = HubConfig::default();
    // Loopback is exempt by default; the test's address must count.
    config.addresses.exempt.clear();
    let hub = TestHub::with_config(config).await;
    let _first = hub.connect().await;
    let _second = hub.connect().await;
    let mut config = (*hub.hub.config()).clone();
    config.addresses.unregistered = 2;
    let done = hub.hub.reconfigure(config).await.expect("a running hub");
    assert_eq!(done.applied, ["addresses"]);
    // Two unregistered already: the third is turned away.
    let mut third = hub.connect().await;
    third.expect_fatal(Code::SERVER_FULL).await;
    assert_eq!(hub.hub.stats().address_unregistered_refusals, 1);
    hub.hub.shutdown().await;
}

#[tokio::test]
async fn settings_sized_at_start_are_named_and_keep_their_values() {
    let hub = TestHub::start().await;
    let before = hub.hub.config();
    let mut config = (*before).clone();
    config.max_connections = 5;
    config.max_frame = 1024;
    config.ping_interval = Duration::from_secs(7);
    let done = hub.hub.reconfigure(config).await.expect("a running hub");
    assert_eq!(done.applied, ["ping_interval"]);
    assert_eq!(done.at_restart, ["max_connections", "max_frame"]);
    let now = hub.hub.config();
    assert_eq!(now.max_connections, before.max_connections);
    assert_eq!(now.max_frame, before.max_frame);
    assert_eq!(now.ping_interval, Duration::from_secs(7));
    // Nothing changed: nothing to do.
    let again = hub
        .hub
        .reconfigure((*now).clone())
        .await
        .expect("a running hub");
    assert!(again.applied.is_empty() && again.at_restart.is_empty());
    // Still serving as before.
    let mut alice = hub.register("alice").await;
    let mut bob = hub.register("bob").await;
    alice.send(send(1, &["bob"], "still here")).await;
    assert_eq!(bob.expect_message().await.text, "still here");
    hub.hub.shutdown().await;
}

#[tokio::test]
async fn guests_turned_away_live_when_accounts_become_required() {
    let dir = tempfile::tempdir().expect("a directory");
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let hub = TestHub::with_store(HubConfig::default(), store).await;
    let _guest = hub.register("early").await;
    let mut config = (*hub.hub.config()).clone();
    config.accounts.require_accounts = true;
    let done = hub.hub.reconfigure(config).await.expect("a running hub");
    assert_eq!(done.applied, ["accounts"]);
    let mut late = RawClient::connect(hub.addr).await;
    late.send(hello("late")).await;
    assert_eq!(late.expect_error().await, Code::ACCOUNT_REQUIRED);
    // The guest already in stays.
    assert!(
        hub.hub
            .roster()
            .await
            .expect("a roster")
            .contains(&"early".to_owned())
    );
    hub.hub.shutdown().await;
}
