//! The client library against a real hub over real sockets (and, for what
//! a real hub never does, against a scripted one).

mod support;

use std::time::Duration;

use chinwag_client::protocol::{ClientFrame, ErrorFrame, Message, ServerFrame};
use chinwag_client::{
    Backoff, Client, ClientError, ClientOptions, CloseReason, Code, Event, Recipients,
};
use chinwag_hub::HubConfig;
use futures::{FutureExt, SinkExt};
use support::{
    ScriptedHub, TestHub, event_where, next_event, next_event_after_table, next_frame, within,
};

#[tokio::test]
async fn messages_presence_and_acks_flow_between_clients() {
    let hub = TestHub::start().await;
    let (alice, mut alice_events) = Client::connect(hub.addr, "alice").await.unwrap();
    let (bob, mut bob_events) = Client::connect(hub.addr, "bob").await.unwrap();
    assert_eq!(alice.nick(), "alice");
    assert_eq!(bob.welcome().roster, ["alice", "bob"]);

    let Event::Presence(presence) = next_event_after_table(&mut alice_events).await else {
        panic!("expected bob's presence first");
    };
    assert!(presence.online);
    assert_eq!(presence.nick, "bob");

    // To named users: one status per distinct recipient, in order.
    let ack = alice
        .send_to(&["bob", "nobody", "BOB"], "hi bob")
        .await
        .unwrap();
    assert_eq!(ack.delivered(), 1);
    assert!(!ack.is_broadcast());
    assert_eq!(ack.status("Bob"), Some(Code::DELIVERED));
    assert_eq!(ack.status("nobody"), Some(Code::NO_SUCH_USER));
    assert_eq!(ack.statuses().len(), 2);
    assert!(!ack.all_delivered());
    assert_eq!(
        ack.failures().map(|s| s.nick.as_str()).collect::<Vec<_>>(),
        ["nobody"]
    );

    let Event::Message(message) = next_event_after_table(&mut bob_events).await else {
        panic!("expected alice's message");
    };
    assert_eq!(message.from, "alice");
    assert_eq!(message.text, "hi bob");
    assert_eq!(message.id, ack.message_id());
    // Recipients see only the named users that exist.
    assert_eq!(message.to, Recipients::Users(vec!["bob".into()]));

    // To everyone: the sender is left out.
    let ack = bob.broadcast("hello, all").await.unwrap();
    assert!(ack.is_broadcast());
    assert_eq!(ack.delivered(), 1);
    assert!(ack.all_delivered());
    let Event::Message(message) = next_event(&mut alice_events).await else {
        panic!("expected bob's broadcast");
    };
    assert_eq!(message.to, Recipients::Everyone);
    assert_eq!(message.from, "bob");
    assert!(bob_events.try_recv().is_none(), "a broadcast is not echoed");
}

#[tokio::test]
async fn a_client_not_following_presence_gets_no_presence_events() {
    let hub = TestHub::start().await;
    let (alice, mut alice_events) = Client::connect(hub.addr, "alice").await.unwrap();
    let options = ClientOptions::default().presence(false);
    let (quiet, mut quiet_events) = Client::connect_with(hub.addr, "quiet", options)
        .await
        .unwrap();
    assert!(quiet.welcome().roster.is_empty());
    // Alice still sees it arrive, and then bob come and go.
    let (bob, _bob_events) = Client::connect(hub.addr, "bob").await.unwrap();
    bob.quit().await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        if let Event::Presence(p) = next_event(&mut alice_events).await {
            seen.push((p.nick, p.online));
        }
    }
    assert_eq!(
        seen,
        [
            ("quiet".into(), true),
            ("bob".into(), true),
            ("bob".into(), false)
        ]
    );
    // Quiet's first event is alice's message: it heard of neither coming.
    alice.send_to(&["quiet"], "hi").await.unwrap();
    match next_event(&mut quiet_events).await {
        Event::Message(m) => assert_eq!(m.text, "hi"),
        other => panic!("expected alice's message, got {other:?}"),
    }
    assert_eq!(quiet.who().await.unwrap(), ["alice", "quiet"]);
}

#[tokio::test]
async fn who_answers_with_the_roster() {
    let hub = TestHub::start().await;
    let (alice, _alice_events) = Client::connect(hub.addr, "alice").await.unwrap();
    let (_carol, _carol_events) = Client::connect(hub.addr, "Carol").await.unwrap();
    assert_eq!(alice.who().await.unwrap(), ["alice", "Carol"]);
}

#[tokio::test]
async fn a_roster_nobody_waits_for_arrives_as_an_event() {
    let hub = TestHub::start().await;
    // Without the table of users, the hub answers WHO with a roster.
    let options = ClientOptions::default().users(false);
    let (alice, mut events) = Client::connect_with(hub.addr, "alice", options)
        .await
        .unwrap();
    // Polled once, the request is queued; then the caller gives up.
    assert!(alice.who().now_or_never().is_none());
    let roster = event_where(&mut events, |event| match event {
        Event::Roster(roster) => Some(roster),
        _ => None,
    })
    .await;
    assert_eq!(roster, ["alice"]);

    // With it, the answer is the table, after the one that followed WELCOME.
    let (carol, mut events) = Client::connect(hub.addr, "carol").await.unwrap();
    assert!(carol.who_users().now_or_never().is_none());
    let mut tables = Vec::new();
    while tables.len() < 2 {
        if let Event::Users(users) = next_event(&mut events).await {
            tables.push(users.into_iter().map(|u| u.nick).collect::<Vec<_>>());
        }
    }
    assert_eq!(tables, [["alice", "carol"], ["alice", "carol"]]);
}

#[tokio::test]
async fn quit_shows_the_others_an_offline_presence_and_closes() {
    let hub = TestHub::start().await;
    let (alice, mut alice_events) = Client::connect(hub.addr, "alice").await.unwrap();
    let (bob, mut bob_events) = Client::connect(hub.addr, "bob").await.unwrap();

    within("quit", bob.quit()).await;
    let (nick, online) = event_where(&mut alice_events, |event| match event {
        Event::Presence(p) if !p.online => Some((p.nick, p.online)),
        _ => None,
    })
    .await;
    assert_eq!((nick.as_str(), online), ("bob", false));

    let Event::Closed { reason } = next_event_after_table(&mut bob_events).await else {
        panic!("expected Closed");
    };
    assert!(matches!(reason, CloseReason::Quit), "{reason:?}");
    assert!(within("end of events", bob_events.recv()).await.is_none());
    assert!(bob.is_closed());
    assert!(matches!(
        bob.broadcast("anyone?").await,
        Err(ClientError::Closed)
    ));
    within("second quit", bob.quit()).await;

    let ack = alice.send_to(&["bob"], "still there?").await.unwrap();
    assert_eq!(ack.status("bob"), Some(Code::NO_SUCH_USER));
}

#[tokio::test]
async fn dropping_every_handle_quits() {
    let hub = TestHub::start().await;
    let (alice, mut alice_events) = Client::connect(hub.addr, "alice").await.unwrap();
    let (bob, mut bob_events) = Client::connect(hub.addr, "bob").await.unwrap();
    let bob_too = bob.clone();
    drop(bob);
    drop(bob_too);

    event_where(&mut alice_events, |event| match event {
        Event::Presence(p) if !p.online && p.nick == "bob" => Some(()),
        _ => None,
    })
    .await;
    let reason = event_where(&mut bob_events, |event| match event {
        Event::Closed { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(matches!(reason, CloseReason::Quit), "{reason:?}");
    drop(alice);
}

#[tokio::test]
async fn a_taken_nickname_is_a_typed_error() {
    let hub = TestHub::start().await;
    let (_alice, _events) = Client::connect(hub.addr, "alice").await.unwrap();
    let error = Client::connect(hub.addr, "ALICE").await.unwrap_err();
    assert!(
        matches!(&error, ClientError::NickTaken { nick } if nick == "ALICE"),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn a_bad_nickname_is_refused_before_connecting() {
    // Nothing listens there: the nickname is judged first.
    let error = Client::connect(support::CLOSED_PORT, "9lives")
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::InvalidNick(_)), "{error:?}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn an_unreachable_hub_is_a_connect_error() {
    let error = Client::connect(support::CLOSED_PORT, "alice")
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
}

/// Pointed at a hub's plain-text port, or at something that is not a hub,
/// the client says so rather than "frame of 706770789 bytes".
#[tokio::test]
async fn the_text_port_or_an_http_server_is_named_as_not_a_hub() {
    let hub = chinwag_hub::Hub::start(HubConfig::default());
    let text = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let text_addr = text.local_addr().unwrap();
    tokio::spawn({
        let hub = hub.clone();
        async move { hub.serve_text(text).await }
    });
    let error = Client::connect(text_addr, "alice").await.unwrap_err();
    assert!(matches!(error, ClientError::NotAHub(_)), "{error:?}");
    assert!(error.to_string().contains("text-listen"), "{error}");
    assert!(!error.is_transient());

    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = http.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut stream, _) = http.accept().await.unwrap();
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
    });
    let error = Client::connect(http_addr, "alice").await.unwrap_err();
    assert!(error.to_string().contains("HTTP"), "{error}");
    hub.shutdown().await;
}

#[tokio::test]
async fn refused_messages_fail_alone_and_the_connection_goes_on() {
    let mut config = HubConfig::default();
    config.max_frame = 1024;
    let hub = TestHub::with_config(config).await;
    let (alice, _events) = Client::connect(hub.addr, "alice").await.unwrap();

    // The hub refuses an empty recipient list.
    let error = alice
        .send(Recipients::Users(Vec::new()), "to nobody")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Rejected { code, .. } if *code == Code::BAD_REQUEST),
        "{error:?}"
    );
    // Too large for the hub's limit: refused here, before sending.
    let error = alice.broadcast("x".repeat(2000)).await.unwrap_err();
    assert!(matches!(error, ClientError::Protocol(_)), "{error:?}");

    let ack = alice.send_to(&["alice"], "note to self").await.unwrap();
    assert!(ack.all_delivered());
}

#[tokio::test]
async fn submitted_messages_are_pipelined_and_arrive_in_order() {
    let hub = TestHub::start().await;
    let options = ClientOptions::default().max_pending(8);
    let (alice, _alice_events) = Client::connect_with(hub.addr, "alice", options)
        .await
        .unwrap();
    let (_bob, mut bob_events) = Client::connect(hub.addr, "bob").await.unwrap();

    let sender = tokio::spawn(async move {
        let mut pending = Vec::new();
        for n in 0..200 {
            let to = Recipients::Users(vec!["bob".into()]);
            pending.push(alice.submit(to, format!("m{n}")).await.unwrap());
        }
        let mut ids = Vec::new();
        for ack in pending {
            let ack = ack.await.unwrap();
            assert!(ack.all_delivered());
            ids.push(ack.message_id());
        }
        ids
    });
    for n in 0..200 {
        let Event::Message(message) = next_event_after_table(&mut bob_events).await else {
            panic!("expected message {n}");
        };
        assert_eq!(message.text, format!("m{n}"));
    }
    let ids = within("acks", sender).await.unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "acks out of order");
}

/// The library asks for `ACK_RUNS`; each message of a run still gets the
/// `Ack` the hub would have sent alone: every distinct name, first spelling
/// kept, delivered, with the id its recipients saw.
#[tokio::test]
async fn acks_rebuilt_from_runs_match_what_recipients_saw() {
    let hub = TestHub::start().await;
    let (alice, _alice_events) = Client::connect(hub.addr, "alice").await.unwrap();
    // And the table of users, since it follows presence.
    let (ack_runs, users) = (
        chinwag_client::protocol::options::ACK_RUNS,
        chinwag_client::protocol::options::USERS,
    );
    assert_eq!(alice.welcome().options, Some(ack_runs | users));
    let (_bob, mut bob_events) = Client::connect(hub.addr, "bob").await.unwrap();
    let (_carol, _carol_events) = Client::connect(hub.addr, "Carol").await.unwrap();

    let sender = tokio::spawn(async move {
        let mut pending = Vec::new();
        for n in 0..100 {
            let names = if n % 2 == 0 {
                vec!["Bob"]
            } else {
                vec!["bob", "carol", "BOB"]
            };
            let to = Recipients::Users(names.into_iter().map(String::from).collect());
            pending.push(alice.submit(to, format!("m{n}")).await.unwrap());
        }
        let mut acks = Vec::new();
        for ack in pending {
            acks.push(ack.await.unwrap());
        }
        acks
    });
    let mut seen = Vec::new();
    while seen.len() < 100 {
        if let Event::Message(message) = next_event(&mut bob_events).await {
            seen.push(message.id);
        }
    }
    let acks = within("acks", sender).await.unwrap();
    for (n, ack) in acks.iter().enumerate() {
        let statuses: Vec<_> = ack
            .statuses()
            .iter()
            .map(|s| (s.nick.as_str(), s.status))
            .collect();
        if n % 2 == 0 {
            assert_eq!(statuses, [("Bob", Code::DELIVERED)], "message {n}");
            assert_eq!(ack.delivered(), 1);
        } else {
            let want = [("bob", Code::DELIVERED), ("carol", Code::DELIVERED)];
            assert_eq!(statuses, want, "message {n}");
            assert_eq!(ack.delivered(), 2);
        }
        assert!(!ack.is_broadcast());
        assert_eq!(ack.message_id(), seen[n], "message {n}");
    }
}

#[tokio::test]
async fn without_reconnect_a_lost_connection_closes_the_client() {
    let hub = TestHub::start().await;
    let (alice, mut events) = Client::connect(hub.addr, "alice").await.unwrap();
    hub.shutdown().await;
    let reason = event_where(&mut events, |event| match event {
        Event::Closed { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(
        matches!(&reason, CloseReason::Hub(error) if error.code == Code::SHUTTING_DOWN),
        "{reason:?}"
    );
    assert!(matches!(alice.who().await, Err(ClientError::Closed)));
}

#[tokio::test]
async fn reconnects_to_a_restarted_hub_and_reports_the_gap() {
    let first = TestHub::start().await;
    let addr = first.addr;
    let backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(200));
    let options = ClientOptions::default().reconnect(backoff);
    let (alice, mut events) = Client::connect_with(addr, "alice", options).await.unwrap();

    first.shutdown().await;
    let reason = event_where(&mut events, |event| match event {
        Event::Disconnected { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(
        matches!(&reason, CloseReason::Hub(error) if error.code == Code::SHUTTING_DOWN),
        "{reason:?}"
    );
    // No hub is listening: requests fail at once, and the client is not closed.
    assert!(matches!(
        alice.broadcast("anyone?").await,
        Err(ClientError::Disconnected)
    ));
    assert!(!alice.is_closed());

    let second = support::start_on(addr).await;
    let (after, attempts, welcome) = event_where(&mut events, |event| match event {
        Event::Reconnected {
            after,
            attempts,
            welcome,
        } => Some((after, attempts, welcome)),
        _ => None,
    })
    .await;
    assert!(after > Duration::ZERO);
    assert!(attempts >= 1);
    assert_eq!(welcome.nick, "alice");
    assert_eq!(welcome.roster, ["alice"]);
    second.wait_online("alice").await;

    let (bob, _bob_events) = Client::connect(addr, "bob").await.unwrap();
    let ack = bob.send_to(&["alice"], "welcome back").await.unwrap();
    assert!(ack.all_delivered());
    let message = event_where(&mut events, |event| match event {
        Event::Message(m) => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(message.text, "welcome back");
    assert!(
        alice
            .send_to(&["bob"], "thanks")
            .await
            .unwrap()
            .all_delivered()
    );
}

#[tokio::test]
async fn reconnection_gives_up_after_its_attempts() {
    let hub = TestHub::start().await;
    let backoff =
        Backoff::new(Duration::from_millis(10), Duration::from_millis(20)).max_attempts(3);
    let options = ClientOptions::default().reconnect(backoff);
    let (_alice, mut events) = Client::connect_with(hub.addr, "alice", options)
        .await
        .unwrap();
    hub.shutdown().await;
    let reason = event_where(&mut events, |event| match event {
        Event::Closed { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(
        matches!(
            &reason,
            CloseReason::GaveUp {
                attempts: 3,
                last: ClientError::Connect { .. }
            }
        ),
        "{reason:?}"
    );
}

#[tokio::test]
async fn answers_hub_pings_and_reports_unsolicited_frames() {
    let scripted = ScriptedHub::start().await;
    let (connected, mut conn) =
        tokio::join!(Client::connect(scripted.addr, "alice"), scripted.accept());
    let (_alice, mut events) = connected.unwrap();

    conn.send(ServerFrame::Ping(42)).await.unwrap();
    assert_eq!(next_frame(&mut conn).await, Some(ClientFrame::Pong(42)));

    conn.send(ServerFrame::Error(ErrorFrame::new(Code::RATE_LIMITED, 0)))
        .await
        .unwrap();
    let Event::Error(error) = next_event(&mut events).await else {
        panic!("expected an error event");
    };
    assert_eq!(error.code, Code::RATE_LIMITED);

    conn.send(ServerFrame::Roster(vec!["alice".into(), "zed".into()]))
        .await
        .unwrap();
    let Event::Roster(roster) = next_event(&mut events).await else {
        panic!("expected a roster event");
    };
    assert_eq!(roster, ["alice", "zed"]);

    conn.send(ServerFrame::Error(ErrorFrame::new(Code::SLOW_CONSUMER, 0)))
        .await
        .unwrap();
    let Event::Closed { reason } = next_event(&mut events).await else {
        panic!("expected Closed");
    };
    assert!(
        matches!(&reason, CloseReason::Hub(error) if error.code == Code::SLOW_CONSUMER),
        "{reason:?}"
    );
}

#[tokio::test]
async fn keepalive_pings_a_quiet_hub_and_gives_up_on_a_silent_one() {
    let scripted = ScriptedHub::start().await;
    let options = ClientOptions::default().keepalive(Some(Duration::from_millis(100)));
    let (connected, mut conn) = tokio::join!(
        Client::connect_with(scripted.addr, "alice", options),
        scripted.accept()
    );
    let (_alice, mut events) = connected.unwrap();

    let Some(ClientFrame::Ping(_)) = next_frame(&mut conn).await else {
        panic!("expected a keepalive ping");
    };
    // Never answered: the client gives the connection up.
    let Event::Closed { reason } = next_event(&mut events).await else {
        panic!("expected Closed");
    };
    assert!(matches!(reason, CloseReason::PingTimeout), "{reason:?}");
}

#[tokio::test]
async fn a_slow_events_reader_is_not_mistaken_for_a_silent_hub() {
    let scripted = ScriptedHub::start().await;
    let options = ClientOptions::default()
        .keepalive(Some(Duration::from_millis(50)))
        .event_capacity(1);
    let (connected, mut conn) = tokio::join!(
        Client::connect_with(scripted.addr, "alice", options),
        scripted.accept()
    );
    let (_alice, mut events) = connected.unwrap();
    for n in 0..3 {
        conn.send(ServerFrame::Message(Message {
            id: n,
            ts_ms: 0,
            from: "zed".into(),
            to: Recipients::Everyone,
            text: format!("m{n}"),
        }))
        .await
        .unwrap();
    }
    // Many keepalive periods without reading events: the client stops
    // reading its socket meanwhile, and must not blame the hub for that.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 0..3 {
        let event = next_event(&mut events).await;
        assert!(
            matches!(&event, Event::Message(m) if m.text == format!("m{n}")),
            "{event:?}"
        );
    }
}
