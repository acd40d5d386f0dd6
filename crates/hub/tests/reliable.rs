//! Reliable sessions (`RELIABLE`, issue 18), over real sockets with a store
//! on disk: a message naming an account in a reliable session reaches it
//! as `SEQUENCED` once stored, numbered for that recipient, and comes
//! again at every login until the client confirms it; numbers go on above
//! the last across a restart; a guest is not granted the option.

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::{ClientFrame, Code, Sequenced, ServerFrame, options};
use chinwag_hub::store::StoreConfig;
use chinwag_testkit::{RawClient, TestHub, account, hello_with_options, login, send};
use tokio::net::TcpStream;

const PASSWORD: &str = "correct horse";

async fn create(hub: &TestHub, nick: &str) {
    let mut client = hub.connect().await;
    client
        .send(account(
            chinwag_hub::protocol::AccountAction::Create,
            nick,
            PASSWORD,
            "",
        ))
        .await;
    client
        .recv_until(|frame| matches!(frame, ServerFrame::AccountDone(_)).then_some(()))
        .await;
}

/// Logs `client` in to `nick` asking for a reliable session, and reads
/// its `WELCOME`.
async fn reliable_hello(
    client: &mut RawClient<TcpStream>,
    nick: &str,
) -> chinwag_hub::protocol::Welcome {
    client
        .send(login(
            nick,
            PASSWORD,
            options::RELIABLE | options::NO_PRESENCE,
        ))
        .await;
    client.expect_welcome().await
}

/// A new connection logged in to `nick` in a reliable session, up to its
/// `WELCOME`.
async fn reliable_connect(hub: &TestHub, nick: &str) -> RawClient<TcpStream> {
    let mut client = hub.connect().await;
    reliable_hello(&mut client, nick).await;
    client
}

/// Logs in to `nick` in a reliable session: the options granted, and the
/// messages its mailbox held (as `SEQUENCED`), in the order they came.
async fn reliable_login(hub: &TestHub, nick: &str) -> (RawClient<TcpStream>, u32, Vec<Sequenced>) {
    let mut client = hub.connect().await;
    let welcome = reliable_hello(&mut client, nick).await;
    let mut held = Vec::new();
    let mut left = None;
    while left != Some(0) {
        match client.recv().await.expect("the mailbox follows WELCOME") {
            ServerFrame::Mailbox(header) => left = Some(header.count),
            ServerFrame::Sequenced(sequenced) => {
                held.push(sequenced);
                left = left.map(|n| n - 1);
            }
            other => panic!("{other:?} before the end of the mailbox"),
        }
    }
    (client, welcome.options.unwrap_or(0), held)
}

/// The next `SEQUENCED` frame.
async fn next_sequenced(client: &mut RawClient<TcpStream>) -> Sequenced {
    client
        .recv_until(|frame| match frame {
            ServerFrame::Sequenced(sequenced) => Some(sequenced),
            _ => None,
        })
        .await
}

fn numbers(held: &[Sequenced]) -> Vec<u64> {
    held.iter().map(|sequenced| sequenced.seq).collect()
}

#[tokio::test]
async fn messages_come_numbered_once_stored_and_again_until_confirmed() {
    let dir = tempfile::tempdir().expect("a directory");
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let hub = TestHub::with_store(HubConfig::default(), store).await;
    create(&hub, "bob").await;
    let (mut bob, granted, held) = reliable_login(&hub, "bob").await;
    assert_ne!(granted & options::RELIABLE, 0, "granted to an account");
    assert!(held.is_empty());

    let mut alice = hub.register("alice").await;
    for id in 1..=3 {
        alice.send(send(id, &["bob"], format!("m{id}"))).await;
        let ack = alice.expect_ack(id).await;
        assert_eq!(ack.statuses[0].status, Code::DELIVERED, "{ack:?}");
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_sequenced(&mut bob).await);
    }
    assert_eq!(numbers(&got), [1, 2, 3]);
    let texts: Vec<&str> = got.iter().map(|s| s.message.text.as_str()).collect();
    assert_eq!(texts, ["m1", "m2", "m3"]);

    // Only the first confirmed when the connection drops.
    bob.send(ClientFrame::Confirm(vec![got[0].message.id]))
        .await;
    bob.sync().await;
    drop(bob);
    hub.wait_offline("bob").await;
    let (bob, _, again) = reliable_login(&hub, "bob").await;
    assert_eq!(numbers(&again), [2, 3], "the unconfirmed, same numbers");
    let ids: Vec<u64> = again.iter().map(|s| s.message.id).collect();
    assert_eq!(ids, [got[1].message.id, got[2].message.id], "and ids");
    let mut bob = bob;
    bob.send(ClientFrame::Confirm(ids)).await;
    bob.sync().await;
    drop(bob);
    hub.wait_offline("bob").await;

    // Confirmed: gone. The next message goes on from the last number.
    let (mut bob, _, none) = reliable_login(&hub, "bob").await;
    assert!(none.is_empty(), "{none:?}");
    alice.send(send(4, &["bob"], "m4")).await;
    alice.expect_ack(4).await;
    assert_eq!(next_sequenced(&mut bob).await.seq, 4);
    hub.hub.shutdown().await;
}

#[tokio::test]
async fn numbers_go_on_above_the_last_across_a_restart_and_offline() {
    let dir = tempfile::tempdir().expect("a directory");
    let config = StoreConfig::new(dir.path());
    {
        let store = TestHub::open_store(config.clone()).await;
        let hub = TestHub::with_store(HubConfig::default(), store).await;
        create(&hub, "bob").await;
        let (mut bob, _, _) = reliable_login(&hub, "bob").await;
        let mut alice = hub.register("alice").await;
        alice.send(send(1, &["bob"], "before")).await;
        alice.expect_ack(1).await;
        let first = next_sequenced(&mut bob).await;
        assert_eq!(first.seq, 1);
        bob.send(ClientFrame::Confirm(vec![first.message.id])).await;
        bob.sync().await;
        hub.hub.shutdown().await;
    }
    let store = TestHub::open_store(config).await;
    let hub = TestHub::with_store(HubConfig::default(), store).await;
    // Offline now: stored, numbered on, and given numbered at the login.
    let mut alice = hub.register("alice").await;
    alice.send(send(1, &["bob"], "while away")).await;
    let ack = alice.expect_ack(1).await;
    assert_eq!(ack.statuses[0].status, Code::STORED);
    let (_bob, _, held) = reliable_login(&hub, "bob").await;
    assert_eq!(numbers(&held), [2]);
    assert_eq!(held[0].message.text, "while away");
    assert_eq!(held[0].message.from, "alice");
    hub.hub.shutdown().await;
}

#[tokio::test]
async fn a_guest_is_not_granted_a_reliable_session_and_gets_messages_as_before() {
    let dir = tempfile::tempdir().expect("a directory");
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let hub = TestHub::with_store(HubConfig::default(), store).await;
    let mut guest = hub.connect().await;
    guest
        .send(hello_with_options("guest", options::RELIABLE))
        .await;
    let welcome = guest.expect_welcome().await;
    assert_eq!(welcome.options.unwrap_or(0) & options::RELIABLE, 0);
    let mut alice = hub.register("alice").await;
    alice.send(send(1, &["guest"], "live")).await;
    assert_eq!(
        alice.expect_ack(1).await.statuses[0].status,
        Code::DELIVERED
    );
    assert_eq!(guest.expect_message().await.text, "live");
    hub.hub.shutdown().await;
}

/// The statuses of an `ACK`, by name.
fn statuses(ack: &chinwag_hub::protocol::Ack) -> Vec<(String, Code)> {
    (ack.statuses.iter())
        .map(|status| (status.nick.clone(), status.status))
        .collect()
}

/// A reliable session's message sent again (the same client id: on the
/// same connection, after a new login, and after a restart of the hub on
/// the same store) is answered with the first `ACK`, the same hub id, and
/// is not routed again: the recipients' next message is the one after.
#[tokio::test]
async fn a_message_sent_again_is_answered_as_before_and_not_routed_twice() {
    let dir = tempfile::tempdir().expect("a directory");
    let config = StoreConfig::new(dir.path());
    let first = {
        let store = TestHub::open_store(config.clone()).await;
        let hub = TestHub::with_store(HubConfig::default(), store).await;
        create(&hub, "alice").await;
        create(&hub, "carol").await;
        let mut bob = hub.register("bob").await;
        let (mut alice, _, _) = reliable_login(&hub, "alice").await;
        alice.send(send(7, &["bob", "carol"], "once")).await;
        let first = alice.expect_ack(7).await;
        assert_eq!(
            statuses(&first),
            [
                ("bob".to_owned(), Code::DELIVERED),
                ("carol".to_owned(), Code::STORED)
            ]
        );
        // Again on the same connection, then after a new login.
        alice.send(send(7, &["bob", "carol"], "once")).await;
        assert_eq!(alice.expect_ack(7).await, first);
        drop(alice);
        hub.wait_offline("alice").await;
        let (mut alice, _, _) = reliable_login(&hub, "alice").await;
        alice.send(send(7, &["bob", "carol"], "once")).await;
        assert_eq!(alice.expect_ack(7).await, first);
        alice.send(send(8, &["bob"], "next")).await;
        alice.expect_ack(8).await;
        assert_eq!(bob.expect_message().await.text, "once");
        assert_eq!(bob.expect_message().await.text, "next");
        hub.hub.shutdown().await;
        first
    };
    // A restarted hub reads it back at the login.
    let store = TestHub::open_store(config).await;
    let hub = TestHub::with_store(HubConfig::default(), store).await;
    let mut bob = hub.register("bob").await;
    let (mut alice, _, _) = reliable_login(&hub, "alice").await;
    alice.send(send(7, &["bob", "carol"], "once")).await;
    assert_eq!(alice.expect_ack(7).await, first);
    alice.send(send(9, &["bob"], "after the restart")).await;
    alice.expect_ack(9).await;
    assert_eq!(bob.expect_message().await.text, "after the restart");
    // Carol's mailbox holds it once.
    let (_carol, _, held) = reliable_login(&hub, "carol").await;
    let texts: Vec<&str> = held.iter().map(|s| s.message.text.as_str()).collect();
    assert_eq!(texts, ["once"]);
    hub.hub.shutdown().await;
}

/// The next `GAP` frame.
async fn next_gap(client: &mut RawClient<TcpStream>) -> chinwag_hub::protocol::Gap {
    client
        .recv_until(|frame| match frame {
            ServerFrame::Gap(gap) => Some(gap),
            _ => None,
        })
        .await
}

/// Logs in to `nick` reliably and reads up to the end of its mailbox: the
/// `GAP`s that came with it, and the numbers of its messages.
async fn login_with_gaps(hub: &TestHub, nick: &str) -> (Vec<(u64, u64, Code)>, Vec<u64>) {
    let mut client = reliable_connect(hub, nick).await;
    let (mut gaps, mut numbers, mut left) = (Vec::new(), Vec::new(), None);
    while left != Some(0) {
        match client.recv().await.expect("the mailbox follows WELCOME") {
            ServerFrame::Mailbox(header) => left = Some(header.count),
            ServerFrame::Gap(gap) => gaps.push((gap.first, gap.last, gap.reason)),
            ServerFrame::Sequenced(sequenced) => {
                numbers.push(sequenced.seq);
                left = left.map(|n| n - 1);
            }
            other => panic!("{other:?} before the end of the mailbox"),
        }
    }
    (gaps, numbers)
}

/// Numbers a reliable session will never get are told (`GAP`), not left
/// silent: a copy refused for a full mailbox, at once to the session online
/// and at the next login to one offline; copies the age limit dropped
/// unconfirmed, at the next login. Each is told once.
#[tokio::test]
async fn lost_numbers_are_told_as_gaps_once() {
    let dir = tempfile::tempdir().expect("a directory");
    let config = StoreConfig {
        mailbox_max_messages: 2,
        ..StoreConfig::new(dir.path())
    };
    {
        let store = TestHub::open_store(config.clone()).await;
        let hub = TestHub::with_store(HubConfig::default(), store).await;
        create(&hub, "bob").await;
        let (mut bob, _, _) = reliable_login(&hub, "bob").await;
        let mut alice = hub.register("alice").await;
        for id in 1..=3 {
            alice.send(send(id, &["bob"], format!("m{id}"))).await;
        }
        let statuses: Vec<Code> = [1, 2, 3]
            .iter()
            .map(|_| Code::DELIVERED)
            .take(2)
            .chain([Code::MAILBOX_FULL])
            .collect();
        for (id, want) in (1..=3).zip(statuses) {
            assert_eq!(alice.expect_ack(id).await.statuses[0].status, want);
        }
        // Online: the third's number is told lost at once.
        let gap = next_gap(&mut bob).await;
        assert_eq!(
            (gap.first, gap.last, gap.reason),
            (3, 3, Code::MAILBOX_FULL)
        );
        drop(bob);
        hub.wait_offline("bob").await;
        // Offline: refused again (1 and 2 are still unconfirmed).
        alice.send(send(4, &["bob"], "m4")).await;
        assert_eq!(
            alice.expect_ack(4).await.statuses[0].status,
            Code::MAILBOX_FULL
        );
        let (gaps, numbers) = login_with_gaps(&hub, "bob").await;
        assert_eq!(
            gaps,
            [(4, 4, Code::MAILBOX_FULL)],
            "told once, at the login"
        );
        assert_eq!(numbers, [1, 2]);
        hub.hub.shutdown().await;
    }
    // The age limit drops 1 and 2 unconfirmed.
    let store = TestHub::open_store(config.clone()).await;
    let far = u64::MAX / 4;
    tokio::task::spawn_blocking(move || {
        use chinwag_hub::store::MailStore as _;
        store
            .expire(far, std::time::Duration::from_secs(1))
            .expect("handed over")
            .wait()
            .expect("expired");
    })
    .await
    .expect("the sweep ran");
    let store = TestHub::open_store(config).await;
    let hub = TestHub::with_store(HubConfig::default(), store).await;
    let (gaps, numbers) = login_with_gaps(&hub, "bob").await;
    assert_eq!(gaps, [(1, 2, Code::EXPIRED)]);
    assert!(numbers.is_empty());
    let (gaps, _) = login_with_gaps(&hub, "bob").await;
    assert!(gaps.is_empty(), "told once: {gaps:?}");
    hub.hub.shutdown().await;
}

/// A reliable session's mailbox comes a window at a time, more as it is
/// confirmed; a session that confirms none of what it was sent within the
/// slow-consumer deadline is cut as a slow consumer (the hub holds the rest
/// of its mailbox in memory meanwhile), and its next login has it all.
#[tokio::test]
async fn a_mailbox_comes_a_window_at_a_time_and_a_session_that_never_confirms_is_cut() {
    let dir = tempfile::tempdir().expect("a directory");
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let mut config = HubConfig::default();
    config.slow_consumer_deadline = std::time::Duration::from_millis(300);
    let hub = TestHub::with_store(config, store).await;
    create(&hub, "bob").await;
    let mut alice = hub.register("alice").await;
    for id in 1..=100 {
        alice.send(send(id, &["bob"], format!("m{id}"))).await;
        assert_eq!(alice.expect_ack(id).await.statuses[0].status, Code::STORED);
    }
    let mut bob = reliable_connect(&hub, "bob").await;
    // The first window, then nothing until a confirmation.
    let mut numbers = Vec::new();
    let error = loop {
        match bob.recv().await.expect("frames until the cut") {
            ServerFrame::Mailbox(header) => assert_eq!(header.count, 100),
            ServerFrame::Sequenced(sequenced) => numbers.push(sequenced.seq),
            ServerFrame::Error(error) => break error,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(numbers, (1..=16).collect::<Vec<u64>>(), "one window");
    assert_eq!(error.code, Code::SLOW_CONSUMER);
    bob.expect_closed().await;
    hub.wait_offline("bob").await;
    // A session that confirms as it reads gets the whole mailbox, in order.
    let mut bob = reliable_connect(&hub, "bob").await;
    let mut numbers = Vec::new();
    while numbers.len() < 100 {
        let sequenced = next_sequenced(&mut bob).await;
        numbers.push(sequenced.seq);
        bob.send(ClientFrame::Confirm(vec![sequenced.message.id]))
            .await;
    }
    assert_eq!(numbers, (1..=100).collect::<Vec<u64>>());
    hub.hub.shutdown().await;
}

/// A copy for an account that is offline, numbered, whose commit failed
/// (a full disk) will never come: its number is told at the account's
/// next reliable login (`GAP` with `STORE_FAILED`), once, and the numbers
/// go on after it.
#[tokio::test]
async fn a_number_lost_to_a_failed_commit_offline_is_told_at_the_next_login() {
    let dir = tempfile::tempdir().expect("a directory");
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let hub = TestHub::with_store(HubConfig::default(), store.clone()).await;
    create(&hub, "bob").await;
    let mut alice = hub.register("alice").await;
    alice.send(send(1, &["bob"], "before")).await;
    assert_eq!(alice.expect_ack(1).await.statuses[0].status, Code::STORED);
    // The database may not grow: as a full disk, to SQLite.
    store.set_max_db_bytes(Some(1)).unwrap().await.unwrap();
    let big = "x".repeat(60_000);
    let mut stored = 1;
    for id in 2..=40 {
        alice.send(send(id, &["bob"], big.as_str())).await;
        match alice.expect_ack(id).await.statuses[0].status {
            Code::STORED => stored += 1,
            Code::STORE_FAILED => break,
            other => panic!("{other:?}"),
        }
        assert!(id < 40, "a full disk fails a store");
    }
    // The copy that failed had number `stored + 1`.
    let lost = stored + 1;
    store.set_max_db_bytes(None).unwrap().await.unwrap();
    alice.send(send(100, &["bob"], "room again")).await;
    assert_eq!(alice.expect_ack(100).await.statuses[0].status, Code::STORED);
    let (gaps, numbers) = login_with_gaps(&hub, "bob").await;
    assert_eq!(gaps, [(lost, lost, Code::STORE_FAILED)]);
    let mut expected: Vec<u64> = (1..=stored).collect();
    expected.push(lost + 1);
    assert_eq!(numbers, expected);
    let (gaps, _) = login_with_gaps(&hub, "bob").await;
    assert!(gaps.is_empty(), "told once: {gaps:?}");
    drop(store);
    hub.hub.shutdown().await;
}

/// A reliable session online whose unconfirmed messages the age limit
/// drops is told their numbers by the sweep that drops them, not only at
/// its next login; and told once.
#[tokio::test]
async fn a_session_online_is_told_the_numbers_a_sweep_dropped() {
    let dir = tempfile::tempdir().expect("a directory");
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let mut config = HubConfig::default();
    // Everything is past the limit at the first sweep, a second in.
    config.accounts.mailbox_max_age = std::time::Duration::from_millis(1);
    config.accounts.sweep_every = std::time::Duration::from_secs(1);
    let hub = TestHub::with_store(config, store).await;
    create(&hub, "bob").await;
    let (mut bob, _, _) = reliable_login(&hub, "bob").await;
    let mut alice = hub.register("alice").await;
    for id in 1..=2 {
        alice.send(send(id, &["bob"], format!("m{id}"))).await;
        assert_eq!(
            alice.expect_ack(id).await.statuses[0].status,
            Code::DELIVERED
        );
    }
    // Bob does not confirm them: the sweep drops both.
    let gap = next_gap(&mut bob).await;
    assert_eq!((gap.first, gap.last, gap.reason), (1, 2, Code::EXPIRED));
    drop(bob);
    hub.wait_offline("bob").await;
    let (gaps, numbers) = login_with_gaps(&hub, "bob").await;
    assert!(gaps.is_empty(), "told once: {gaps:?}");
    assert!(numbers.is_empty());
    hub.hub.shutdown().await;
}

/// A reliable session's `SEND` whose id the store cannot keep (2^63 or
/// more) is refused alone, with `BAD_REQUEST`; it does not fail the store's
/// batch, so another sender's message stored beside it is `STORED`.
#[tokio::test]
async fn an_id_the_store_cannot_keep_is_refused_alone() {
    let dir = tempfile::tempdir().expect("a directory");
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let hub = TestHub::with_store(HubConfig::default(), store).await;
    for nick in ["alice", "carol"] {
        create(&hub, nick).await;
    }
    let (mut alice, _, _) = reliable_login(&hub, "alice").await;
    let mut dave = hub.register("dave").await;
    let huge = 1 << 63;
    alice.send(send(huge, &["carol"], "too big an id")).await;
    dave.send(send(1, &["carol"], "beside it")).await;
    let error = alice.expect_next_error().await;
    assert_eq!((error.code, error.reference), (Code::BAD_REQUEST, huge));
    assert_eq!(dave.expect_ack(1).await.statuses[0].status, Code::STORED);
    alice.send(send(2, &["carol"], "a good id")).await;
    assert_eq!(alice.expect_ack(2).await.statuses[0].status, Code::STORED);
    hub.hub.shutdown().await;
}

/// A message to a reliable session online is routed as if to someone
/// offline (no `MESSAGE` is made for it: the session gets `SEQUENCED` once
/// it is stored), and is held to the same limit all the same: refused if
/// its `MESSAGE` would exceed `max_frame`, as for a recipient online.
#[tokio::test]
async fn a_message_to_a_reliable_session_has_the_size_limit_of_any_other() {
    let dir = tempfile::tempdir().expect("a directory");
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let mut config = HubConfig::default();
    config.max_frame = 4096;
    let hub = TestHub::with_store(config, store).await;
    create(&hub, "bob").await;
    let (mut bob, _, _) = reliable_login(&hub, "bob").await;
    let mut alice = hub.register("alice").await;
    // A `MESSAGE` is its text and 36 bytes here: the opcode, id, time,
    // sender ("alice"), the one recipient ("bob") and the lengths.
    let over = "y".repeat(4096 - 36 + 1);
    alice.send(send(1, &["bob"], over)).await;
    let error = alice.expect_next_error().await;
    assert_eq!((error.code, error.reference), (Code::BAD_REQUEST, 1));
    let within = "y".repeat(4000);
    alice.send(send(2, &["bob"], within.clone())).await;
    assert_eq!(
        alice.expect_ack(2).await.statuses[0].status,
        Code::DELIVERED
    );
    let got = next_sequenced(&mut bob).await;
    assert_eq!((got.seq, got.message.text), (1, within));
    hub.hub.shutdown().await;
}

/// A reliable session that asked for `ACK_RUNS` has its messages that
/// reached everyone they named, acknowledged after their commit,
/// acknowledged by runs, as a guest's are at once; a message with a copy
/// stored for someone offline keeps its own `ACK` (`STORED`), in order.
/// (A reliable session without the option gets an `ACK` each: the tests
/// above.)
#[tokio::test]
async fn a_reliable_sender_that_asked_for_runs_is_acknowledged_by_runs_after_the_commit() {
    let dir = tempfile::tempdir().expect("a directory");
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let hub = TestHub::with_store(HubConfig::default(), store).await;
    for nick in ["alice", "bob", "carol"] {
        create(&hub, nick).await;
    }
    let (mut bob, _, _) = reliable_login(&hub, "bob").await;
    let mut alice = hub.connect().await;
    let asked = options::RELIABLE | options::ACK_RUNS | options::NO_PRESENCE;
    alice.send(login("alice", PASSWORD, asked)).await;
    let granted = alice.expect_welcome().await.options.unwrap_or(0);
    assert_eq!(granted & asked, asked, "granted {granted:#x}");
    alice
        .recv_until(|frame| matches!(frame, ServerFrame::Mailbox(_)).then_some(()))
        .await;

    // In one write: 1-5 to bob (online, reliable), 6 to carol (offline:
    // stored), 7-9 to bob.
    let sends: Vec<ClientFrame> = (1..=9)
        .map(|id| {
            send(
                id,
                &[if id == 6 { "carol" } else { "bob" }],
                format!("m{id}"),
            )
        })
        .collect();
    alice
        .send_raw(&chinwag_testkit::encode_frames(&sends))
        .await;
    let (mut acknowledged, mut runs) = (Vec::new(), 0);
    while acknowledged.len() < 9 {
        match alice.recv().await.expect("the replies come") {
            ServerFrame::AckRun(run) => {
                runs += 1;
                acknowledged.extend(run.ids().map(|(client_id, _)| (client_id, None)));
            }
            ServerFrame::Ack(ack) => acknowledged.push((ack.client_id, Some(statuses(&ack)))),
            other => panic!("expected a reply, got {other:?}"),
        }
    }
    let stored = Some(vec![("carol".to_owned(), Code::STORED)]);
    let expected: Vec<_> = (1..=9)
        .map(|id| (id, if id == 6 { stored.clone() } else { None }))
        .collect();
    assert_eq!(acknowledged, expected, "in order, 6 alone");
    assert!(runs >= 2, "the run breaks at 6: {runs}");
    // Bob has the eight, numbered.
    let mut got = Vec::new();
    for _ in 0..8 {
        got.push(next_sequenced(&mut bob).await);
    }
    assert_eq!(numbers(&got), (1..=8).collect::<Vec<u64>>());
    hub.hub.shutdown().await;
}
