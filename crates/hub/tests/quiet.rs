//! `QUIET`: a client that asks for it in `HELLO` comes and goes unannounced
//! and is in no roster, while its nickname is taken and messages reach it:
//! what one-shot commands (`chinwag send`, `chinwag who`) ask for.

mod support;

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::{ClientFrame, Code, ServerFrame, options};
use futures::SinkExt;

use support::{next, register, register_with, send, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_client_is_neither_announced_nor_listed_but_holds_its_name() {
    let (hub, addr) = start(HubConfig::default()).await;
    let mut alice = register(addr, "alice").await;

    let (mut quiet, welcome) = register_with(addr, "oneshot", options::QUIET).await;
    assert_eq!(welcome.options, Some(options::QUIET));
    assert_eq!(welcome.roster, ["alice"]);
    // Its name is taken while it is connected.
    let mut again = support::connect(addr).await;
    again.send(support::hello("ONESHOT")).await.unwrap();
    match next(&mut again).await {
        Some(ServerFrame::Error(e)) => assert_eq!(e.code, Code::NICK_TAKEN),
        other => panic!("expected NICK_TAKEN, got {other:?}"),
    }
    // Messages reach it.
    alice.send(send(1, &["oneshot"], "psst")).await.unwrap();
    match next(&mut quiet).await {
        Some(ServerFrame::Message(m)) => assert_eq!(m.text, "psst"),
        other => panic!("expected the message, got {other:?}"),
    }
    // No roster lists it.
    alice.send(ClientFrame::Who).await.unwrap();
    loop {
        match next(&mut alice).await {
            Some(ServerFrame::Roster(roster)) => {
                assert_eq!(roster, ["alice"]);
                break;
            }
            Some(ServerFrame::Ack(_)) => {}
            other => panic!("alice got {other:?}"),
        }
    }
    assert_eq!(hub.roster().await.unwrap(), ["alice"]);

    // It leaves unannounced: the next thing alice hears of is bob, who is
    // announced as anyone.
    drop(quiet);
    support::settle("connections", || hub.connection_count(), 2).await;
    let _bob = register(addr, "bob").await;
    match next(&mut alice).await {
        Some(ServerFrame::Presence(p)) => assert_eq!((p.nick.as_str(), p.online), ("bob", true)),
        other => panic!("expected bob's arrival, got {other:?}"),
    }
}
