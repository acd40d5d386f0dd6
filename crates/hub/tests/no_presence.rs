//! `NO_PRESENCE`: a client that asks for it in `HELLO` is told of no one's
//! comings and goings and gets an empty roster in `WELCOME`, while everyone
//! else still sees it come and go and `WHO` still answers it in full.

mod support;

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::{ClientFrame, ServerFrame, options};
use futures::SinkExt;

use support::{Client, next, register, register_with, send, start};

/// The next presence notice: (nick, online).
async fn presence(client: &mut Client) -> (String, bool) {
    match next(client).await {
        Some(ServerFrame::Presence(p)) => (p.nick, p.online),
        other => panic!("expected PRESENCE, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_not_following_presence_hears_of_no_one_but_is_seen() {
    let (_hub, addr) = start(HubConfig::default()).await;
    let mut alice = register(addr, "alice").await;

    let (mut quiet, welcome) = register_with(addr, "quiet", options::NO_PRESENCE).await;
    assert_eq!(welcome.options, Some(options::NO_PRESENCE));
    assert!(welcome.roster.is_empty(), "roster {:?}", welcome.roster);
    // Others still see it arrive.
    assert_eq!(presence(&mut alice).await, ("quiet".to_owned(), true));

    // Bob comes and goes; only alice hears of it.
    let bob = register(addr, "bob").await;
    assert_eq!(presence(&mut alice).await, ("bob".to_owned(), true));
    drop(bob);
    assert_eq!(presence(&mut alice).await, ("bob".to_owned(), false));

    // So the first frame quiet gets is alice's message, not a notice.
    alice.send(send(1, &["quiet"], "hi")).await.unwrap();
    match next(&mut quiet).await {
        Some(ServerFrame::Message(message)) => {
            assert_eq!(
                (message.from.as_str(), message.text.as_str()),
                ("alice", "hi")
            );
        }
        other => panic!("expected alice's MESSAGE, got {other:?}"),
    }

    // WHO answers in full.
    quiet.send(ClientFrame::Who).await.unwrap();
    match next(&mut quiet).await {
        Some(ServerFrame::Roster(roster)) => assert_eq!(roster, ["alice", "quiet"]),
        other => panic!("expected ROSTER, got {other:?}"),
    }

    // And its own departure is announced.
    drop(quiet);
    loop {
        match next(&mut alice).await {
            Some(ServerFrame::Ack(_)) => {}
            Some(ServerFrame::Presence(p)) => {
                assert_eq!((p.nick.as_str(), p.online), ("quiet", false));
                break;
            }
            other => panic!("expected quiet's PRESENCE, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_in_one_batch_reach_only_those_who_follow_presence() {
    // Many arrivals at once land in one batch of the actor's commands,
    // whose notices go out together: the followers among them hear of
    // those after them, the rest of no one.
    let (_hub, addr) = start(HubConfig::default()).await;
    let mut watcher = register(addr, "watcher").await;
    let joins = (0..40).map(|i| async move {
        let asked = if i % 2 == 0 { options::NO_PRESENCE } else { 0 };
        register_with(addr, &format!("u{i}"), asked).await
    });
    let clients = futures::future::join_all(joins).await;

    let mut seen = Vec::new();
    for _ in 0..40 {
        let (nick, online) = presence(&mut watcher).await;
        assert!(online);
        seen.push(nick);
    }
    seen.sort();
    let mut want: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    want.sort();
    assert_eq!(seen, want);

    // Each one's first frame after WELCOME is the probe below, unless it
    // follows presence, in which case it is the notice of someone later.
    for (i, (mut client, welcome)) in clients.into_iter().enumerate() {
        let quiet = i % 2 == 0;
        let roster = welcome.roster;
        assert_eq!(roster.is_empty(), quiet, "u{i}: roster {roster:?}");
        watcher
            .send(send(i as u64, &[&format!("u{i}")], "probe"))
            .await
            .unwrap();
        loop {
            match next(&mut client).await {
                Some(ServerFrame::Message(m)) => {
                    assert_eq!(m.text, "probe");
                    break;
                }
                Some(ServerFrame::Presence(p)) => {
                    assert!(
                        !quiet,
                        "u{i} does not follow presence yet heard of {}",
                        p.nick
                    );
                }
                other => panic!("u{i}: unexpected {other:?}"),
            }
        }
    }
}
