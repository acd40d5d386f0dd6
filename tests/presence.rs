//! Presence, the roster and liveness over real sockets.

mod support;

use std::time::Duration;

use chinwag::hub::HubConfig;
use chinwag::protocol::{ClientFrame, Code, ServerFrame};
use support::{PATIENCE, TestHub, guard, now_ms, register_all};

#[tokio::test]
async fn others_see_presence_online_when_a_user_registers_but_the_user_does_not() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;
    let before = now_ms();
    let mut carol = hub.register("Carol").await;

    for (client, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let presence = client
            .recv_until(|f| match f {
                ServerFrame::Presence(p) => Some(p),
                _ => None,
            })
            .await;
        assert!(presence.online, "{name}");
        assert_eq!(presence.nick, "Carol", "{name}");
        assert!(
            presence.ts_ms + 60_000 >= before && presence.ts_ms <= now_ms() + 60_000,
            "{name}: ts_ms {} not close to now",
            presence.ts_ms
        );
    }
    // The newcomer learns who is online from WELCOME, not from PRESENCE.
    assert_eq!(carol.sync().await, []);
}

#[tokio::test]
async fn others_see_presence_offline_when_a_user_quits() {
    let hub = TestHub::start().await;
    let [mut alice, mut bob, mut carol] = register_all(&hub, ["alice", "bob", "carol"]).await;
    bob.send(ClientFrame::Quit).await;
    // QUIT gets no answer: the hub just closes.
    bob.expect_eof().await;
    for client in [&mut alice, &mut carol] {
        assert_eq!(client.expect_presence().await, ("bob".to_owned(), false));
    }
    assert_eq!(alice.who().await, ["alice", "carol"]);
}

#[tokio::test]
async fn others_see_presence_offline_when_a_socket_is_dropped() {
    let hub = TestHub::start().await;
    let [mut alice, bob, mut carol] = register_all(&hub, ["alice", "bob", "carol"]).await;
    drop(bob);
    for client in [&mut alice, &mut carol] {
        assert_eq!(client.expect_presence().await, ("bob".to_owned(), false));
    }
    assert_eq!(carol.who().await, ["alice", "carol"]);
}

#[tokio::test]
async fn an_unregistered_connection_coming_and_going_causes_no_presence() {
    let hub = TestHub::start().await;
    let mut alice = hub.register("alice").await;
    let mut anonymous = hub.connect().await;
    assert_eq!(anonymous.sync().await, []);
    drop(anonymous);
    let mut refused = hub.connect().await;
    refused.hello("alice").await;
    refused.expect_next_error().await;
    drop(refused);
    // A later arrival's PRESENCE is the first thing alice sees.
    let _bob = hub.register("bob").await;
    assert_eq!(alice.expect_presence().await, ("bob".to_owned(), true));
    assert_eq!(alice.sync().await, []);
}

#[tokio::test]
async fn who_answers_with_the_roster_sorted_case_insensitively_including_the_asker() {
    let hub = TestHub::start().await;
    let [mut zed, _bob, _alice, carol] = register_all(&hub, ["zed", "bob", "Alice", "carol"]).await;
    assert_eq!(zed.who().await, ["Alice", "bob", "carol", "zed"]);
    drop(carol);
    assert_eq!(zed.expect_presence().await, ("carol".to_owned(), false));
    assert_eq!(zed.who().await, ["Alice", "bob", "zed"]);
}

#[tokio::test]
async fn ping_is_answered_with_the_same_token_before_and_after_registration() {
    let hub = TestHub::start().await;
    let mut client = hub.connect().await;
    let tokens = [0, 1, 0xdead_beef, u64::MAX];
    for token in tokens {
        client.send(ClientFrame::Ping(token)).await;
    }
    for token in tokens {
        assert_eq!(client.recv().await, Some(ServerFrame::Pong(token)));
    }

    client.hello("alice").await;
    client.expect_welcome().await;
    for token in tokens {
        client.send(ClientFrame::Ping(token)).await;
        assert_eq!(client.recv().await, Some(ServerFrame::Pong(token)));
    }
}

#[tokio::test]
async fn an_unsolicited_pong_is_ignored() {
    let hub = TestHub::start().await;
    let mut early = hub.connect().await;
    early.send(ClientFrame::Pong(7)).await;
    assert_eq!(early.sync().await, []);
    let mut alice = hub.register("alice").await;
    alice.send(ClientFrame::Pong(7)).await;
    assert_eq!(alice.sync().await, []);
}

/// Pings every half second rather than 30 s: a client on a loaded machine
/// still answers within the interval. When exactly the hub pings and
/// closes is `crates/hub/tests/deadlines.rs`'s to say, on a paused clock.
fn pinging_config() -> HubConfig {
    let mut config = HubConfig::default();
    config.ping_interval = Duration::from_millis(500);
    config.max_missed_pings = 2;
    config
}

#[tokio::test]
async fn silent_client_is_pinged_then_closed_with_ping_timeout_and_seen_leaving() {
    let hub = TestHub::with_config(pinging_config()).await;
    let mut silent = hub.register("silent").await;
    // In-process sessions are not pinged, so this one can watch quietly.
    let mut watcher = hub.hub.attach("watcher").await.unwrap();

    let mut pings = 0;
    loop {
        match silent.recv().await {
            Some(ServerFrame::Ping(_)) => pings += 1,
            Some(ServerFrame::Presence(_)) => {}
            Some(ServerFrame::Error(e)) => {
                assert_eq!(e.code, Code::PING_TIMEOUT);
                break;
            }
            other => panic!("expected PINGs then ERROR 11, got {other:?}"),
        }
    }
    assert_eq!(pings, 2, "closed after max_missed_pings unanswered PINGs");
    silent.expect_eof().await;

    let left = guard(PATIENCE, "watcher seeing silent leave", async {
        loop {
            if let Some(ServerFrame::Presence(p)) = watcher.recv().await
                && !p.online
            {
                return p.nick;
            }
        }
    })
    .await;
    assert_eq!(left, "silent");
}

#[tokio::test]
async fn client_that_answers_pings_stays_connected() {
    let hub = TestHub::with_config(pinging_config()).await;
    let mut alice = hub.register("alice").await;
    for _ in 0..3 {
        match alice.recv().await {
            Some(ServerFrame::Ping(token)) => alice.send(ClientFrame::Pong(token)).await,
            other => panic!("expected a PING, got {other:?}"),
        }
    }
    assert_eq!(alice.who().await, ["alice"]);
}

/// Reads presence notices until `known` is `until`, checking each against it:
/// an arrival must be new, a departure must be someone known, and nobody
/// hears of themselves.
async fn follow_presence(
    client: &mut support::RawClient,
    me: &str,
    known: &mut std::collections::BTreeSet<String>,
    until: &std::collections::BTreeSet<String>,
) {
    while known != until {
        match client.recv().await.expect("connection closed") {
            ServerFrame::Presence(p) => {
                assert_ne!(p.nick, me, "{me} heard of itself");
                if p.online {
                    assert!(
                        known.insert(p.nick.clone()),
                        "{me}: {} arrived twice",
                        p.nick
                    );
                } else {
                    assert!(known.remove(&p.nick), "{me}: {} left unknown", p.nick);
                }
            }
            other => panic!("{me}: expected PRESENCE, got {other:?}"),
        }
    }
}

/// Many users arriving and leaving at once (the hub queues one batch's
/// notices together): each newcomer's roster plus the notices after it add
/// up to exactly who is online, with nothing twice and nothing missed.
#[tokio::test]
async fn a_storm_of_joins_and_leaves_leaves_everyone_with_the_exact_roster() {
    const N: usize = 48;
    let hub = TestHub::start().await;
    let names: Vec<String> = (0..N).map(|i| format!("user{i:02}")).collect();
    let everyone: std::collections::BTreeSet<String> = names.iter().cloned().collect();
    let mut clients = Vec::new();
    for _ in 0..N {
        clients.push(hub.connect().await);
    }
    // Every HELLO at once.
    let joining: Vec<_> = clients
        .into_iter()
        .zip(names.clone())
        .map(|(mut client, me)| {
            let everyone = everyone.clone();
            tokio::spawn(async move {
                client.hello(&me).await;
                let welcome = client.expect_welcome().await;
                let mut known = welcome.roster.into_iter().collect();
                follow_presence(&mut client, &me, &mut known, &everyone).await;
                (client, me)
            })
        })
        .collect();
    let mut joined = Vec::new();
    for task in joining {
        joined.push(guard(PATIENCE, "the storm of joins", task).await.unwrap());
    }

    // The first half leaves at once; the others hear of each departure once.
    let mut stay = joined.split_off(N / 2);
    let remaining: std::collections::BTreeSet<String> =
        stay.iter().map(|(_, me)| me.clone()).collect();
    drop(joined);
    for (client, me) in &mut stay {
        let mut known = everyone.clone();
        follow_presence(client, me, &mut known, &remaining).await;
        assert_eq!(client.sync().await, [], "{me}: anything more");
    }
    hub.shutdown().await;
}
