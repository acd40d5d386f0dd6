//! In-process sessions (`Hub::attach`) talking with TCP clients.

mod support;

use chinwag::hub::{HubError, Session};
use chinwag::protocol::{Code, Message, Recipients, ServerFrame};
use support::{PATIENCE, TestHub, guard, users};

async fn next(session: &mut Session) -> Option<ServerFrame> {
    guard(PATIENCE, "a frame for the session", session.recv()).await
}

async fn next_message(session: &mut Session) -> Message {
    loop {
        match next(session).await {
            Some(ServerFrame::Message(m)) => return m,
            Some(_) => {}
            None => panic!("the session was closed"),
        }
    }
}

async fn next_ack(session: &mut Session, id: u64) -> chinwag::protocol::Ack {
    loop {
        match next(session).await {
            Some(ServerFrame::Ack(a)) if a.client_id == id => return a,
            Some(_) => {}
            None => panic!("the session was closed"),
        }
    }
}

#[tokio::test]
async fn session_first_receives_welcome_with_the_roster() {
    let hub = TestHub::start().await;
    let _bob = hub.register("bob").await;
    let mut alice = hub.hub.attach("Alice").await.unwrap();
    assert_eq!(alice.nick(), "Alice");
    match next(&mut alice).await {
        Some(ServerFrame::Welcome(w)) => {
            assert_eq!(w.version, 1);
            assert_eq!(w.nick, "Alice");
            assert_eq!(w.roster, ["Alice", "bob"]);
        }
        other => panic!("expected WELCOME first, got {other:?}"),
    }
}

#[tokio::test]
async fn session_and_tcp_client_exchange_direct_and_broadcast_messages_both_ways() {
    let hub = TestHub::start().await;
    let mut bob = hub.register("bob").await;
    let mut alice = hub.hub.attach("alice").await.unwrap();
    assert_eq!(bob.expect_presence().await, ("alice".to_owned(), true));

    // Session to TCP, direct.
    let id = alice.send(users(&["bob"]), "hi bob").await.unwrap();
    let ack = next_ack(&mut alice, id).await;
    assert_eq!(ack.delivered, 1);
    assert_eq!(ack.statuses[0].status, Code::DELIVERED);
    let m = bob.expect_message().await;
    assert_eq!((m.from.as_str(), m.text.as_str()), ("alice", "hi bob"));
    assert_eq!(m.to, users(&["bob"]));
    assert_eq!(m.id, ack.message_id);

    // Session to everyone.
    let id = alice.send(Recipients::Everyone, "hi all").await.unwrap();
    assert_eq!(next_ack(&mut alice, id).await.delivered, 1);
    let m = bob.expect_message().await;
    assert_eq!((m.text.as_str(), &m.to), ("hi all", &Recipients::Everyone));

    // TCP to session, direct and to everyone.
    let id = bob.send_to(&["ALICE"], "hi alice").await;
    assert_eq!(bob.expect_ack(id).await.delivered, 1);
    let m = next_message(&mut alice).await;
    assert_eq!((m.from.as_str(), m.text.as_str()), ("bob", "hi alice"));
    let id = bob.broadcast("hi everyone").await;
    assert_eq!(bob.expect_ack(id).await.delivered, 1);
    let m = next_message(&mut alice).await;
    assert_eq!(
        (m.text.as_str(), &m.to),
        ("hi everyone", &Recipients::Everyone)
    );

    // Sessions and TCP users share one roster.
    alice.who().await.unwrap();
    loop {
        match next(&mut alice).await {
            Some(ServerFrame::Roster(r)) => {
                assert_eq!(r, ["alice", "bob"]);
                break;
            }
            Some(_) => {}
            None => panic!("closed"),
        }
    }
    assert_eq!(hub.hub.roster().await.unwrap(), ["alice", "bob"]);
}

#[tokio::test]
async fn attach_with_a_taken_nickname_is_refused_either_way() {
    let hub = TestHub::start().await;
    let _bob = hub.register("bob").await;
    assert_eq!(
        hub.hub.attach("BOB").await.unwrap_err(),
        HubError::Refused(Code::NICK_TAKEN)
    );
    let _carol = hub.hub.attach("carol").await.unwrap();
    let mut tcp = hub.connect().await;
    tcp.hello("Carol").await;
    assert_eq!(tcp.expect_next_error().await.code, Code::NICK_TAKEN);
}

#[tokio::test]
async fn attach_with_a_bad_nickname_is_refused_with_its_code() {
    let hub = TestHub::start().await;
    for (nick, code) in [
        ("", Code::NICK_EMPTY),
        ("9lives", Code::NICK_BAD_START),
        ("al ice", Code::NICK_BAD_CHAR),
        ("Admin", Code::NICK_RESERVED),
    ] {
        assert_eq!(
            hub.hub.attach(nick).await.unwrap_err(),
            HubError::Refused(code),
            "{nick:?}"
        );
    }
}

#[tokio::test]
async fn dropping_a_session_makes_others_see_it_go_offline_and_frees_the_nickname() {
    let hub = TestHub::start().await;
    let mut bob = hub.register("bob").await;
    let alice = hub.hub.attach("alice").await.unwrap();
    assert_eq!(bob.expect_presence().await, ("alice".to_owned(), true));
    drop(alice);
    assert_eq!(bob.expect_presence().await, ("alice".to_owned(), false));
    assert_eq!(bob.who().await, ["bob"]);
    let _again = hub.register("alice").await;
}

#[tokio::test]
async fn quitting_a_session_makes_others_see_it_go_offline() {
    let hub = TestHub::start().await;
    let mut bob = hub.register("bob").await;
    let alice = hub.hub.attach("alice").await.unwrap();
    assert_eq!(bob.expect_presence().await, ("alice".to_owned(), true));
    alice.quit().await;
    assert_eq!(bob.expect_presence().await, ("alice".to_owned(), false));
    let id = bob.send_to(&["alice"], "gone?").await;
    assert_eq!(
        bob.expect_ack(id).await.statuses[0].status,
        Code::NO_SUCH_USER
    );
}

#[tokio::test]
async fn shutdown_closes_sessions_and_refuses_new_ones() {
    let hub = TestHub::start().await;
    let mut alice = hub.hub.attach("alice").await.unwrap();
    let handle = hub.hub.clone();
    hub.shutdown().await;
    let mut last = None;
    while let Some(frame) = next(&mut alice).await {
        last = Some(frame);
    }
    match last {
        Some(ServerFrame::Error(e)) => assert_eq!(e.code, Code::SHUTTING_DOWN),
        other => panic!("expected ERROR 7 last, got {other:?}"),
    }
    assert_eq!(handle.attach("bob").await.unwrap_err(), HubError::Closed);
}
