//! Accounts, mailboxes and the table of users, from the client's side:
//! against a scripted hub (`support::ScriptedHub`) for what the test must
//! control frame by frame (the order and timing of stored messages, a
//! dropped connection mid-mailbox, a session replaced), and against a real
//! hub with a store for the whole story.

mod support;

use std::time::Duration;

use chinwag_client::protocol::{ClientFrame, ErrorFrame, ServerFrame, options};
use chinwag_client::{
    AccountAction, AccountDone, Backoff, Client, ClientError, ClientOptions, CloseReason, Code,
    Event, MailboxHeader, Message, Recipients, UserEntry, Who, user_flags,
};
use futures::SinkExt;
use support::{ScriptedHub, event_where, next_event, next_frame, next_request, send_all, welcome};

fn stored(id: u64, text: &str) -> ServerFrame {
    ServerFrame::StoredMessage(Message {
        id,
        ts_ms: 1_700_000_000_000 + id,
        from: "carol".into(),
        to: Recipients::Users(vec!["alice".into()]),
        text: text.into(),
    })
}

fn mailbox(count: u32, expired: u32) -> ServerFrame {
    ServerFrame::Mailbox(MailboxHeader { count, expired })
}

/// The texts of the next `count` stored messages among `events`, skipping
/// other events.
async fn stored_texts(events: &mut chinwag_client::Events, count: usize) -> Vec<String> {
    let mut texts = Vec::new();
    while texts.len() < count {
        if let Event::Stored(message) = next_event(events).await {
            texts.push(message.text);
        }
    }
    texts
}

#[tokio::test]
async fn logs_in_with_the_password_and_confirms_the_mailbox_once_handed_over() {
    let scripted = ScriptedHub::start().await;
    let options = ClientOptions::default().password("correct horse");
    let client = tokio::spawn(Client::connect_with(scripted.addr, "alice", options));
    let (mut conn, hello) = scripted.accept_hello().await;
    // The password follows the options, and the table of users is asked for.
    assert_eq!(hello.password.as_deref(), Some("correct horse"));
    let asked = hello.options.unwrap();
    assert_ne!(asked & options::USERS, 0);
    welcome(&mut conn, &hello, options::KNOWN).await;
    let (_alice, mut events) = client.await.unwrap().unwrap();

    send_all(
        &mut conn,
        [mailbox(3, 2), stored(7, "one"), stored(8, "two")],
    )
    .await;
    let Event::Mailbox(header) = next_event(&mut events).await else {
        panic!("expected the mailbox header first");
    };
    assert_eq!(
        header,
        MailboxHeader {
            count: 3,
            expired: 2
        }
    );
    assert_eq!(stored_texts(&mut events, 2).await, ["one", "two"]);
    // Not all three are in: nothing confirmed yet. The last one makes the
    // batch; then a live message, which is never confirmed.
    send_all(&mut conn, [stored(9, "three")]).await;
    assert_eq!(
        next_request(&mut conn).await,
        ClientFrame::Confirm(vec![7, 8, 9])
    );
    assert_eq!(stored_texts(&mut events, 1).await, ["three"]);
}

#[tokio::test]
async fn a_large_mailbox_is_confirmed_every_256_messages() {
    let scripted = ScriptedHub::start().await;
    let options = ClientOptions::default().password("correct horse");
    let (connected, mut conn) = tokio::join!(
        Client::connect_with(scripted.addr, "alice", options),
        scripted.accept_granting(options::KNOWN)
    );
    let (_alice, mut events) = connected.unwrap();
    send_all(&mut conn, [mailbox(300, 0)]).await;
    send_all(&mut conn, (1..=300).map(|id| stored(id, "m"))).await;
    assert_eq!(stored_texts(&mut events, 300).await.len(), 300);
    let first = next_request(&mut conn).await;
    let second = next_request(&mut conn).await;
    assert_eq!(first, ClientFrame::Confirm((1..=256).collect()));
    assert_eq!(second, ClientFrame::Confirm((257..=300).collect()));
}

/// A connection lost before the mailbox was confirmed: the hub hands the
/// same messages out again at the next login; the application sees each
/// once, and the client confirms them all on the new connection.
#[tokio::test]
async fn stored_messages_redelivered_after_a_drop_are_not_shown_twice() {
    let scripted = ScriptedHub::start().await;
    let options = ClientOptions::default()
        .password("correct horse")
        .reconnect(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(10),
        ));
    let (connected, mut conn) = tokio::join!(
        Client::connect_with(scripted.addr, "alice", options),
        scripted.accept_granting(options::KNOWN)
    );
    let (_alice, mut events) = connected.unwrap();
    send_all(
        &mut conn,
        [mailbox(3, 0), stored(1, "one"), stored(2, "two")],
    )
    .await;
    assert_eq!(stored_texts(&mut events, 2).await, ["one", "two"]);
    drop(conn);

    let mut conn = scripted.accept_granting(options::KNOWN).await;
    send_all(
        &mut conn,
        [
            mailbox(3, 0),
            stored(1, "one"),
            stored(2, "two"),
            stored(3, "three"),
        ],
    )
    .await;
    assert_eq!(
        next_request(&mut conn).await,
        ClientFrame::Confirm(vec![1, 2, 3])
    );
    // After the reconnection, only the new one: the header, then "three".
    event_where(&mut events, |event| {
        matches!(event, Event::Reconnected { .. }).then_some(())
    })
    .await;
    let Event::Mailbox(_) = next_event(&mut events).await else {
        panic!("expected the mailbox header");
    };
    let Event::Stored(message) = next_event(&mut events).await else {
        panic!("expected the one new stored message");
    };
    assert_eq!(message.text, "three");
    // And a live message comes next, nothing in between.
    send_all(
        &mut conn,
        [ServerFrame::Message(Message {
            id: 4,
            ts_ms: 0,
            from: "carol".into(),
            to: Recipients::Everyone,
            text: "live".into(),
        })],
    )
    .await;
    let Event::Message(message) = next_event(&mut events).await else {
        panic!("expected the live message");
    };
    assert_eq!(message.text, "live");
}

/// A program that dropped its events never sees the stored messages: the
/// client leaves them in the mailbox rather than confirm what nobody read.
#[tokio::test]
async fn nothing_is_confirmed_when_nobody_reads_the_events() {
    let scripted = ScriptedHub::start().await;
    let options = ClientOptions::default().password("correct horse");
    let (connected, mut conn) = tokio::join!(
        Client::connect_with(scripted.addr, "alice", options),
        scripted.accept_granting(options::KNOWN)
    );
    let (_alice, events) = connected.unwrap();
    drop(events);
    send_all(
        &mut conn,
        [
            mailbox(2, 0),
            stored(1, "one"),
            stored(2, "two"),
            ServerFrame::Ping(9),
        ],
    )
    .await;
    // Frames are acted on in order: a CONFIRM would come before the PONG.
    assert_eq!(next_frame(&mut conn).await, Some(ClientFrame::Pong(9)));
}

fn row(nick: &str, flags: u8, last_seen_ms: u64) -> UserEntry {
    UserEntry {
        flags,
        last_seen_ms,
        nick: nick.into(),
    }
}

#[tokio::test]
async fn the_table_of_users_follows_users_user_and_presence() {
    use user_flags::{ONLINE, REGISTERED};
    let scripted = ScriptedHub::start().await;
    let (connected, mut conn) = tokio::join!(
        Client::connect(scripted.addr, "alice"),
        scripted.accept_granting(options::KNOWN)
    );
    let (alice, mut events) = connected.unwrap();
    let table = vec![
        row("alice", ONLINE, 0),
        row("bob", REGISTERED, 1_000),
        row("carol", REGISTERED | ONLINE, 0),
    ];
    send_all(&mut conn, [ServerFrame::Users(table.clone())]).await;
    let Event::Users(users) = next_event(&mut events).await else {
        panic!("expected the table after WELCOME");
    };
    assert_eq!(users, table);
    assert_eq!(alice.users(), Some(table));

    send_all(
        &mut conn,
        [
            ServerFrame::Presence(chinwag_client::Presence {
                online: true,
                ts_ms: 2_000,
                nick: "bob".into(),
            }),
            ServerFrame::Presence(chinwag_client::Presence {
                online: false,
                ts_ms: 3_000,
                nick: "carol".into(),
            }),
            ServerFrame::User(row("dave", REGISTERED, 0)),
        ],
    )
    .await;
    let Event::User(user) = event_where(&mut events, |event| match event {
        event @ Event::User(_) => Some(event),
        _ => None,
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(user, row("dave", REGISTERED, 0));
    assert_eq!(
        alice.users(),
        Some(vec![
            row("alice", ONLINE, 0),
            row("bob", REGISTERED | ONLINE, 0),
            row("carol", REGISTERED, 3_000),
            row("dave", REGISTERED, 0),
        ])
    );

    // WHO is answered with the table, which replaces the client's.
    let asked = tokio::spawn({
        let alice = alice.clone();
        async move { alice.who_users().await }
    });
    assert_eq!(next_request(&mut conn).await, ClientFrame::Who);
    let fresh = vec![row("alice", ONLINE, 0), row("bob", REGISTERED, 4_000)];
    send_all(&mut conn, [ServerFrame::Users(fresh.clone())]).await;
    assert_eq!(asked.await.unwrap().unwrap(), Who::Users(fresh.clone()));
    assert_eq!(alice.users(), Some(fresh));
    // `who` lists only who is online, from the same answer.
    let online = tokio::spawn({
        let alice = alice.clone();
        async move { alice.who().await }
    });
    assert_eq!(next_request(&mut conn).await, ClientFrame::Who);
    send_all(
        &mut conn,
        [ServerFrame::Users(vec![row("alice", ONLINE, 0)])],
    )
    .await;
    assert_eq!(online.await.unwrap().unwrap(), ["alice"]);
}

#[tokio::test]
async fn a_client_not_following_presence_keeps_no_table() {
    let scripted = ScriptedHub::start().await;
    let options = ClientOptions::default().presence(false);
    let client = tokio::spawn(Client::connect_with(scripted.addr, "bot", options));
    let (mut conn, hello) = scripted.accept_hello().await;
    assert_eq!(hello.options.unwrap() & options::USERS, 0);
    assert_eq!(hello.password, None);
    welcome(&mut conn, &hello, options::KNOWN).await;
    let (bot, _events) = client.await.unwrap().unwrap();
    assert_eq!(bot.users(), None);
}

/// Each refusal of a login is its own error, with nothing to retry
/// automatically but a throttled one.
#[tokio::test]
async fn login_refusals_are_typed_errors() {
    let scripted = ScriptedHub::start().await;
    let cases = [
        (
            Code::NICK_REGISTERED,
            "nickname alice is registered: log in with its password",
        ),
        (Code::BAD_PASSWORD, "wrong password for alice"),
        (
            Code::LOGIN_THROTTLED,
            "too many wrong passwords for alice lately; wait a minute and try again",
        ),
        (Code::NO_SUCH_ACCOUNT, "no account is registered as alice"),
        (
            Code::ACCOUNT_REQUIRED,
            "this hub admits only registered users: log in to an account",
        ),
        (Code::ACCOUNTS_UNAVAILABLE, "this hub keeps no accounts"),
    ];
    for (code, shown) in cases {
        let client = tokio::spawn(Client::connect(scripted.addr, "alice"));
        let (mut conn, _hello) = scripted.accept_hello().await;
        conn.send(ServerFrame::Error(ErrorFrame::new(code, 0)))
            .await
            .unwrap();
        let error = client.await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), shown, "{code:?}");
        assert_eq!(
            error.is_transient(),
            code == Code::LOGIN_THROTTLED,
            "{code:?}"
        );
        let typed = match code {
            Code::NICK_REGISTERED => {
                matches!(&error, ClientError::NickRegistered { nick } if nick == "alice")
            }
            Code::BAD_PASSWORD => {
                matches!(&error, ClientError::BadPassword { nick } if nick == "alice")
            }
            Code::LOGIN_THROTTLED => matches!(&error, ClientError::LoginThrottled { .. }),
            Code::NO_SUCH_ACCOUNT => matches!(&error, ClientError::NoSuchAccount { .. }),
            Code::ACCOUNT_REQUIRED => matches!(&error, ClientError::AccountRequired),
            _ => matches!(&error, ClientError::AccountsUnavailable),
        };
        assert!(typed, "{error:?}");
    }
}

/// Another login to the account replaces this session: the client ends,
/// saying so, and does not reconnect even when told to reconnect.
#[tokio::test]
async fn a_replaced_session_ends_the_client_without_reconnecting() {
    let scripted = ScriptedHub::start().await;
    let options = ClientOptions::default()
        .password("correct horse")
        .reconnect(Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(1),
        ));
    let (connected, mut conn) = tokio::join!(
        Client::connect_with(scripted.addr, "alice", options),
        scripted.accept_granting(options::KNOWN)
    );
    let (alice, mut events) = connected.unwrap();
    conn.send(ServerFrame::Error(ErrorFrame::new(
        Code::SESSION_REPLACED,
        0,
    )))
    .await
    .unwrap();
    // Closed straight away: a reconnecting client says Disconnected first.
    let Event::Closed { reason } = next_event(&mut events).await else {
        panic!("expected Closed, not a reconnection");
    };
    assert!(matches!(reason, CloseReason::SessionReplaced), "{reason:?}");
    assert_eq!(
        reason.to_string(),
        "this account logged in from another connection, which replaced this one"
    );
    assert!(alice.is_closed());
}

/// Account requests need no registration: ACCOUNT is the first frame, the
/// answer comes back as `AccountDone` or a `Rejected` error, and the
/// client quits.
#[tokio::test]
async fn account_requests_go_before_any_hello() {
    let scripted = ScriptedHub::start().await;
    let created = tokio::spawn(chinwag_client::create_account(
        scripted.addr,
        "alice",
        "correct horse",
    ));
    let mut conn = scripted.accept_raw().await;
    let Some(ClientFrame::Account(request)) = next_frame(&mut conn).await else {
        panic!("expected ACCOUNT first");
    };
    assert_eq!(request.action, AccountAction::Create);
    assert_eq!(request.nick, "alice");
    assert_eq!(request.password, "correct horse");
    // Pings are answered while waiting.
    conn.send(ServerFrame::Ping(5)).await.unwrap();
    assert_eq!(next_frame(&mut conn).await, Some(ClientFrame::Pong(5)));
    let done = AccountDone {
        action: AccountAction::Create,
        nick: "Alice".into(),
    };
    conn.send(ServerFrame::AccountDone(done.clone()))
        .await
        .unwrap();
    assert_eq!(created.await.unwrap().unwrap(), done);
    assert_eq!(next_frame(&mut conn).await, Some(ClientFrame::Quit));

    let changed = tokio::spawn(chinwag_client::change_password(
        scripted.addr,
        "alice",
        "wrong one",
        "new password",
    ));
    let mut conn = scripted.accept_raw().await;
    let Some(ClientFrame::Account(request)) = next_frame(&mut conn).await else {
        panic!("expected ACCOUNT first");
    };
    assert_eq!(request.action, AccountAction::SetPassword);
    assert_eq!(request.new_password, "new password");
    // A refusal names the action's byte as its reference.
    conn.send(ServerFrame::Error(ErrorFrame::new(Code::BAD_PASSWORD, 2)))
        .await
        .unwrap();
    let error = changed.await.unwrap().unwrap_err();
    assert!(
        matches!(&error, ClientError::Rejected { code, .. } if *code == Code::BAD_PASSWORD),
        "{error:?}"
    );

    // A bad nickname is refused before connecting.
    let error = chinwag_client::delete_account(scripted.addr, "1alice", "x")
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::InvalidNick(_)), "{error:?}");
}

/// A registered client's account requests are told apart from its
/// messages: an error naming action byte 1 is the account request's, not
/// the first message's.
#[tokio::test]
async fn a_registered_client_can_make_account_requests() {
    let scripted = ScriptedHub::start().await;
    let (connected, mut conn) = tokio::join!(
        Client::connect(scripted.addr, "alice"),
        scripted.accept_granting(options::KNOWN)
    );
    let (alice, _events) = connected.unwrap();
    let sent = tokio::spawn({
        let alice = alice.clone();
        async move { alice.send_to(["bob"], "hi").await }
    });
    let Some(ClientFrame::Send(message)) = next_frame(&mut conn).await else {
        panic!("expected SEND");
    };
    let request = chinwag_client::AccountRequest {
        action: AccountAction::Create,
        nick: "alice".into(),
        password: "correct horse".into(),
        new_password: String::new(),
    };
    let account = tokio::spawn({
        let alice = alice.clone();
        async move { alice.account(request).await }
    });
    let Some(ClientFrame::Account(_)) = next_frame(&mut conn).await else {
        panic!("expected ACCOUNT");
    };
    conn.send(ServerFrame::Error(ErrorFrame::new(Code::NICK_TAKEN, 1)))
        .await
        .unwrap();
    let error = account.await.unwrap().unwrap_err();
    assert!(
        matches!(&error, ClientError::Rejected { code, .. } if *code == Code::NICK_TAKEN),
        "{error:?}"
    );
    conn.send(ServerFrame::Ack(chinwag_client::protocol::Ack {
        client_id: message.id,
        message_id: 1,
        delivered: 0,
        statuses: vec![chinwag_client::RecipientStatus {
            nick: "bob".into(),
            status: Code::STORED,
        }],
    }))
    .await
    .unwrap();
    // A message stored for an offline registered user went through.
    let ack = sent.await.unwrap().unwrap();
    assert!(ack.is_ok());
    assert!(!ack.all_delivered());
    assert_eq!(
        ack.stored().map(|s| s.nick.as_str()).collect::<Vec<_>>(),
        ["bob"]
    );
    assert_eq!(ack.failures().count(), 0);
}

// Against the real hub, with its store on a temporary directory.

const PASSWORD: &str = "correct horse";

fn logged_in() -> ClientOptions {
    ClientOptions::default().password(PASSWORD)
}

/// Skips events up to the mailbox header.
async fn read_mailbox_header(events: &mut chinwag_client::Events) -> MailboxHeader {
    event_where(events, |event| match event {
        Event::Mailbox(header) => Some(header),
        _ => None,
    })
    .await
}

/// Reads events up to the end of the mailbox: its header and the texts of
/// its stored messages.
async fn read_mailbox(events: &mut chinwag_client::Events) -> (MailboxHeader, Vec<String>) {
    let header = read_mailbox_header(events).await;
    let texts = stored_texts(events, header.count as usize).await;
    (header, texts)
}

#[tokio::test]
async fn accounts_log_in_with_their_password_only() {
    let dir = tempfile::tempdir().unwrap();
    let hub = support::hub_with_store(&dir).await;
    let done = chinwag_client::create_account(hub.addr, "Bob", PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        done,
        AccountDone {
            action: AccountAction::Create,
            nick: "Bob".into()
        }
    );
    let again = chinwag_client::create_account(hub.addr, "bob", PASSWORD).await;
    assert!(
        matches!(&again, Err(ClientError::Rejected { code, .. }) if *code == Code::ACCOUNT_EXISTS),
        "{again:?}"
    );

    // A guest may not take it; a wrong password is refused; the right one
    // logs in, and the mailbox header comes even when empty.
    let guest = Client::connect(hub.addr, "bob").await;
    assert!(
        matches!(guest, Err(ClientError::NickRegistered { .. })),
        "{guest:?}"
    );
    let options = ClientOptions::default().password("not the password");
    let wrong = Client::connect_with(hub.addr, "bob", options).await;
    assert!(
        matches!(wrong, Err(ClientError::BadPassword { .. })),
        "{wrong:?}"
    );
    let (bob, mut events) = Client::connect_with(hub.addr, "bob", logged_in())
        .await
        .unwrap();
    assert_eq!(bob.nick(), "Bob");
    let (header, texts) = read_mailbox(&mut events).await;
    assert_eq!(
        header,
        MailboxHeader {
            count: 0,
            expired: 0
        }
    );
    assert!(texts.is_empty());

    // A password for a nickname nobody registered.
    let options = ClientOptions::default().password(PASSWORD);
    let nobody = Client::connect_with(hub.addr, "nobody", options).await;
    assert!(
        matches!(nobody, Err(ClientError::NoSuchAccount { .. })),
        "{nobody:?}"
    );

    // Changing the password from another program: the old one stops working.
    chinwag_client::change_password(hub.addr, "bob", PASSWORD, "a new password")
        .await
        .unwrap();
    bob.quit().await;
    let old = Client::connect_with(hub.addr, "bob", logged_in()).await;
    assert!(
        matches!(old, Err(ClientError::BadPassword { .. })),
        "{old:?}"
    );
}

#[tokio::test]
async fn messages_to_an_offline_account_wait_in_its_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let hub = support::hub_with_store(&dir).await;
    chinwag_client::create_account(hub.addr, "bob", PASSWORD)
        .await
        .unwrap();
    let (carol, _carol_events) = Client::connect(hub.addr, "carol").await.unwrap();
    for text in ["see you", "bring cake"] {
        let ack = carol.send_to(["bob"], text).await.unwrap();
        assert!(ack.is_ok(), "{ack:?}");
        assert!(!ack.all_delivered());
        assert_eq!(ack.stored().count(), 1);
        assert_eq!(ack.delivered(), 0);
    }

    let (bob, mut events) = Client::connect_with(hub.addr, "bob", logged_in())
        .await
        .unwrap();
    let (header, texts) = read_mailbox(&mut events).await;
    assert_eq!(
        header,
        MailboxHeader {
            count: 2,
            expired: 0
        }
    );
    assert_eq!(texts, ["see you", "bring cake"]);
    // Live traffic after.
    carol.send_to(["bob"], "hello, live").await.unwrap();
    let Event::Message(live) = next_event(&mut events).await else {
        panic!("expected the live message");
    };
    assert_eq!(live.text, "hello, live");
    bob.quit().await;

    // They were confirmed: the next login finds the mailbox empty.
    let (_bob, mut events) = Client::connect_with(hub.addr, "bob", logged_in())
        .await
        .unwrap();
    let (header, _) = read_mailbox(&mut events).await;
    assert_eq!(header.count, 0);
}

/// The hub restarts while stored messages are being handed over: the
/// client reconnects, the hub hands the unconfirmed ones out again, and
/// the application sees each exactly once.
#[tokio::test]
async fn a_mailbox_redelivered_after_a_restart_is_seen_once() {
    let dir = tempfile::tempdir().unwrap();
    let hub = support::hub_with_store(&dir).await;
    let addr = hub.addr;
    chinwag_client::create_account(addr, "bob", PASSWORD)
        .await
        .unwrap();
    let (carol, _carol_events) = Client::connect(addr, "carol").await.unwrap();
    for text in ["one", "two", "three"] {
        carol.send_to(["bob"], text).await.unwrap();
    }
    carol.quit().await;

    // Room for one event: once "one" is read, "two" fills the queue and
    // "three" waits, so the client reads no more and confirms nothing.
    let options = logged_in().event_capacity(1).reconnect(Backoff::new(
        Duration::from_millis(20),
        Duration::from_millis(20),
    ));
    let (_bob, mut events) = Client::connect_with(addr, "bob", options).await.unwrap();
    let mut texts = stored_texts(&mut events, 1).await;
    hub.shutdown().await;
    let hub = support::restart_with_store(addr, &dir).await;

    // "two" and "three" from the first connection, then after the
    // reconnection the mailbox again, all three of its messages hidden.
    let (carol, _carol_events) = Client::connect(addr, "carol").await.unwrap();
    texts.extend(stored_texts(&mut events, 2).await);
    assert_eq!(texts, ["one", "two", "three"]);
    event_where(&mut events, |event| {
        matches!(event, Event::Reconnected { .. }).then_some(())
    })
    .await;
    let header = read_mailbox_header(&mut events).await;
    assert_eq!(header.count, 3, "nothing was confirmed before the restart");
    carol.send_to(["bob"], "live").await.unwrap();
    let next = event_where(&mut events, |event| match event {
        Event::Stored(message) => Some(format!("stored {}", message.text)),
        Event::Message(message) => Some(message.text),
        _ => None,
    })
    .await;
    assert_eq!(next, "live", "no stored message shown twice");

    // And all three were confirmed on the new connection.
    drop(events);
    let (_again, mut events) = Client::connect_with(addr, "bob", logged_in())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let (header, _) = read_mailbox(&mut events).await;
    assert_eq!(header.count, 0);
    hub.shutdown().await;
}

#[tokio::test]
async fn the_table_lists_accounts_online_or_not_and_guests_online() {
    use user_flags::{ONLINE, REGISTERED};
    let dir = tempfile::tempdir().unwrap();
    let hub = support::hub_with_store(&dir).await;
    for nick in ["alice", "bob"] {
        chinwag_client::create_account(hub.addr, nick, PASSWORD)
            .await
            .unwrap();
    }
    let (bob, _bob_events) = Client::connect_with(hub.addr, "bob", logged_in())
        .await
        .unwrap();
    let (alice, _alice_events) = Client::connect_with(hub.addr, "alice", logged_in())
        .await
        .unwrap();
    alice.quit().await;
    let (carol, mut events) = Client::connect(hub.addr, "carol").await.unwrap();
    let Event::Users(table) = event_where(&mut events, |event| {
        matches!(event, Event::Users(_)).then_some(event)
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(carol.users(), Some(table.clone()));
    let flags: Vec<(&str, u8)> = table.iter().map(|u| (u.nick.as_str(), u.flags)).collect();
    assert_eq!(
        flags,
        [
            ("alice", REGISTERED),
            ("bob", REGISTERED | ONLINE),
            ("carol", ONLINE)
        ]
    );
    assert_ne!(table[0].last_seen_ms, 0, "alice was seen");

    // Bob leaves: still in the table, last seen now; WHO says the same.
    bob.quit().await;
    let left = event_where(&mut events, |event| match event {
        Event::Presence(p) if p.nick == "bob" && !p.online => Some(p),
        _ => None,
    })
    .await;
    let users = carol.users().unwrap();
    assert_eq!(
        users[1],
        UserEntry {
            flags: REGISTERED,
            last_seen_ms: left.ts_ms,
            nick: "bob".into()
        }
    );
    let Who::Users(answer) = carol.who_users().await.unwrap() else {
        panic!("a hub with accounts answers with the table");
    };
    assert_eq!(answer, users);
    assert_eq!(carol.who().await.unwrap(), ["carol"]);

    // An account created is told as a USER change.
    chinwag_client::create_account(hub.addr, "dave", PASSWORD)
        .await
        .unwrap();
    let Event::User(user) = event_where(&mut events, |event| {
        matches!(event, Event::User(_)).then_some(event)
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(user.nick, "dave");
    assert!(user.registered() && !user.online());
    assert_eq!(carol.users().unwrap().len(), 4);
}

/// A second login to the account replaces the first session, which ends
/// for good even though it would otherwise reconnect.
#[tokio::test]
async fn a_second_login_replaces_the_first_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let hub = support::hub_with_store(&dir).await;
    chinwag_client::create_account(hub.addr, "bob", PASSWORD)
        .await
        .unwrap();
    let options = logged_in().reconnect(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(1),
    ));
    let (first, mut first_events) = Client::connect_with(hub.addr, "bob", options)
        .await
        .unwrap();
    let (_second, _second_events) = Client::connect_with(hub.addr, "bob", logged_in())
        .await
        .unwrap();
    let reason = event_where(&mut first_events, |event| match event {
        Event::Closed { reason } => Some(reason),
        Event::Disconnected { reason } => panic!("reconnecting after {reason}"),
        _ => None,
    })
    .await;
    assert!(matches!(reason, CloseReason::SessionReplaced), "{reason:?}");
    assert!(first.is_closed());
}
