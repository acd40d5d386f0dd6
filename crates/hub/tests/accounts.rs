//! Accounts and mailboxes through real sockets, with the store on a real
//! database file in a temporary directory: registration, logins and the
//! throttle, offline messages stored and delivered at login, their
//! acknowledgements, the table of users, and all of it across a restart.

use std::time::Duration;

use chinwag_hub::protocol::{
    AccountAction, ClientFrame, Code, Recipients, ServerFrame, UserEntry, options, user_flags,
};
use chinwag_hub::store::StoreConfig;
use chinwag_hub::{AccountPolicy, HubConfig};
use chinwag_testkit::{RawClient, TestHub, account, hello, login, send};
use tempfile::TempDir;
use tokio::net::TcpStream;

const PASSWORD: &str = "correct horse";

/// A hub with a store in `dir`, and the store's configuration.
async fn hub_in(dir: &TempDir, config: HubConfig) -> TestHub {
    hub_with_store(StoreConfig::new(dir.path()), config).await
}

async fn hub_with_store(store: StoreConfig, config: HubConfig) -> TestHub {
    let store = TestHub::open_store(store).await;
    TestHub::with_store(config, store).await
}

/// Sends an `ACCOUNT` request (before or after `HELLO`) and returns the
/// answer: `Ok(nick)` from `ACCOUNT_DONE`, or the refusal's code.
async fn request(
    client: &mut RawClient<TcpStream>,
    action: AccountAction,
    nick: &str,
    password: &str,
    new_password: &str,
) -> Result<String, Code> {
    client
        .send(account(action, nick, password, new_password))
        .await;
    client
        .recv_until(|frame| match frame {
            ServerFrame::AccountDone(done) => {
                assert_eq!(done.action, action);
                Some(Ok(done.nick))
            }
            ServerFrame::Error(error) => {
                assert_eq!(error.reference, u64::from(action.to_u8()));
                Some(Err(error.code))
            }
            _ => None,
        })
        .await
}

async fn create(hub: &TestHub, nick: &str) {
    let mut client = hub.connect().await;
    let created = request(&mut client, AccountAction::Create, nick, PASSWORD, "").await;
    assert_eq!(created.as_deref(), Ok(nick));
}

/// Logs in and reads up to the end of the mailbox: the frames after
/// `WELCOME` (the table of users, if asked, `MAILBOX` and the stored
/// messages).
async fn log_in(
    hub: &TestHub,
    nick: &str,
    options: u32,
) -> (RawClient<TcpStream>, Vec<ServerFrame>) {
    let mut client = hub.connect().await;
    client.send(login(nick, PASSWORD, options)).await;
    client.expect_welcome().await;
    let mut frames = Vec::new();
    let mut left = None;
    while left != Some(0) {
        let frame = client.recv().await.expect("the mailbox follows WELCOME");
        match &frame {
            ServerFrame::Mailbox(header) => left = Some(header.count),
            ServerFrame::StoredMessage(_) => left = left.map(|n| n - 1),
            ServerFrame::Users(_) => {}
            other => panic!("{other:?} before the end of the mailbox"),
        }
        frames.push(frame);
    }
    (client, frames)
}

/// The stored messages among `frames`, as (id, sender, text).
fn stored(frames: &[ServerFrame]) -> Vec<(u64, String, String)> {
    frames
        .iter()
        .filter_map(|frame| match frame {
            ServerFrame::StoredMessage(m) => Some((m.id, m.from.clone(), m.text.clone())),
            _ => None,
        })
        .collect()
}

/// The status of `nick` in an `ACK`.
fn status_of(ack: &chinwag_hub::protocol::Ack, nick: &str) -> Code {
    ack.statuses
        .iter()
        .find(|status| status.nick == nick)
        .map_or_else(|| panic!("{nick} not in {ack:?}"), |status| status.status)
}

#[tokio::test]
async fn a_registered_nickname_needs_its_password_and_a_guest_gets_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    create(&hub, "Bob").await;

    // A client that knows nothing of accounts, as before: refused, with
    // the code that says why, and still free to pick another nickname.
    let mut guest = hub.connect().await;
    guest.send(hello("bob")).await;
    assert_eq!(guest.expect_next_error().await.code, Code::NICK_REGISTERED);
    guest.send(hello("robert")).await;
    guest.expect_welcome().await;

    let mut wrong = hub.connect().await;
    wrong.send(login("bob", "not the password", 0)).await;
    assert_eq!(wrong.expect_next_error().await.code, Code::BAD_PASSWORD);

    let mut nobody = hub.connect().await;
    nobody.send(login("nobody", PASSWORD, 0)).await;
    assert_eq!(nobody.expect_next_error().await.code, Code::NO_SUCH_ACCOUNT);

    let (mut bob, frames) = log_in(&hub, "BOB", 0).await;
    assert!(
        matches!(frames.as_slice(), [ServerFrame::Mailbox(h)] if h.count == 0 && h.expired == 0),
        "{frames:?}"
    );
    // Registered as spelled at registration.
    assert_eq!(hub.hub.roster().await.unwrap(), ["Bob", "robert"]);
    bob.sync().await;
    hub.shutdown().await;
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_nickname_across_connections() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    create(&hub, "bob").await;
    create(&hub, "carol").await;
    for _ in 0..3 {
        // A new connection each time: reconnecting gains a guesser nothing.
        let mut guesser = hub.connect().await;
        guesser.send(login("bob", "guess", 0)).await;
        assert_eq!(guesser.expect_next_error().await.code, Code::BAD_PASSWORD);
    }
    let mut guesser = hub.connect().await;
    guesser.send(login("bob", PASSWORD, 0)).await;
    assert_eq!(
        guesser.expect_next_error().await.code,
        Code::LOGIN_THROTTLED
    );
    // The throttle guards account requests too.
    let changed = request(
        &mut guesser,
        AccountAction::SetPassword,
        "bob",
        PASSWORD,
        "new password",
    )
    .await;
    assert_eq!(changed, Err(Code::LOGIN_THROTTLED));
    // Another nickname from the same address is not held.
    let (_carol, _) = log_in(&hub, "carol", 0).await;
    hub.shutdown().await;
}

#[tokio::test]
async fn a_message_for_an_offline_account_is_stored_and_delivered_at_login() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    create(&hub, "bob").await;
    let mut carol = hub.register("carol").await;
    let mut alice = hub.register("alice").await;

    alice
        .send(send(1, &["bob", "carol", "dave"], "see you"))
        .await;
    let ack = alice.expect_ack(1).await;
    assert_eq!(status_of(&ack, "bob"), Code::STORED);
    assert_eq!(status_of(&ack, "carol"), Code::DELIVERED);
    assert_eq!(status_of(&ack, "dave"), Code::NO_SUCH_USER);
    assert_eq!(ack.delivered, 1, "only carol had it live");
    let live = carol.expect_message().await;
    // Addressed to those who exist, the offline account included.
    assert_eq!(
        live.to,
        Recipients::Users(vec!["bob".into(), "carol".into()])
    );

    // A broadcast reaches those online only; nothing is stored for it.
    alice.send(send(2, &[], "everyone")).await;
    alice.expect_ack(2).await;

    let (mut bob, frames) = log_in(&hub, "bob", 0).await;
    let [
        ServerFrame::Mailbox(header),
        ServerFrame::StoredMessage(message),
    ] = frames.as_slice()
    else {
        panic!("{frames:?}");
    };
    assert_eq!((header.count, header.expired), (1, 0));
    assert_eq!(message.id, ack.message_id);
    assert_eq!(message.ts_ms, live.ts_ms);
    assert_eq!(message.from, "alice");
    assert_eq!(message.to, live.to);
    assert_eq!(message.text, "see you");

    // Live traffic after the mailbox.
    alice.send(send(3, &["bob"], "now live")).await;
    assert_eq!(
        status_of(&alice.expect_ack(3).await, "bob"),
        Code::DELIVERED
    );
    assert_eq!(bob.expect_message().await.text, "now live");

    // Not confirmed: it comes again, with the same id.
    drop(bob);
    let (mut bob, frames) = log_in_again(&hub, "bob").await;
    assert_eq!(
        stored(&frames),
        [(ack.message_id, "alice".into(), "see you".into())]
    );
    bob.send(ClientFrame::Confirm(vec![ack.message_id])).await;
    bob.sync().await;
    drop(bob);

    // Confirmed: gone.
    let (_bob, frames) = log_in_again(&hub, "bob").await;
    assert!(stored(&frames).is_empty(), "{frames:?}");
    hub.shutdown().await;
}

/// Logs in once the previous session of `nick` is gone (a replaced
/// session would otherwise be the outcome, which is fine too, but these
/// tests want a plain login).
async fn log_in_again(hub: &TestHub, nick: &str) -> (RawClient<TcpStream>, Vec<ServerFrame>) {
    wait_offline(hub, nick).await;
    log_in(hub, nick, 0).await
}

/// Waits until the hub has handled `nick`'s departure.
async fn wait_offline(hub: &TestHub, nick: &str) {
    chinwag_testkit::within("a session to leave", async {
        while hub
            .hub
            .roster()
            .await
            .unwrap()
            .iter()
            .any(|online| online.eq_ignore_ascii_case(nick))
        {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_senders_replies_keep_their_order_behind_a_stored_message() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    create(&hub, "bob").await;
    let mut carol = hub.register("carol").await;
    let mut alice = hub.register("alice").await;
    for id in 1..=50 {
        let to: &[&str] = if id % 5 == 0 { &["bob"] } else { &["carol"] };
        alice.send(send(id, to, format!("m{id}"))).await;
    }
    let mut acked = Vec::new();
    while acked.len() < 50 {
        match alice.recv().await.expect("acks") {
            ServerFrame::Ack(ack) => {
                let expected = if ack.client_id % 5 == 0 {
                    Code::STORED
                } else {
                    Code::DELIVERED
                };
                assert_eq!(ack.statuses[0].status, expected, "{ack:?}");
                acked.push(ack.client_id);
            }
            ServerFrame::AckRun(run) => acked.extend(run.ids().map(|(client, _)| client)),
            _ => {}
        }
    }
    assert_eq!(acked, (1..=50).collect::<Vec<_>>());
    carol.sync().await;
    hub.shutdown().await;
}

#[tokio::test]
async fn a_second_login_replaces_the_first_which_is_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    create(&hub, "bob").await;
    let mut watcher = hub.register("watcher").await;
    let (mut first, _) = log_in(&hub, "bob", 0).await;
    assert_eq!(watcher.expect_presence().await, ("bob".into(), true));
    let (mut second, _) = log_in(&hub, "bob", 0).await;
    first.expect_fatal(Code::SESSION_REPLACED).await;
    // Everyone saw the old session go, then the new one come.
    assert_eq!(watcher.expect_presence().await, ("bob".into(), false));
    assert_eq!(watcher.expect_presence().await, ("bob".into(), true));
    watcher.send(send(1, &["bob"], "to the new one")).await;
    assert_eq!(second.expect_message().await.text, "to the new one");

    // A one-shot command (QUIET) does not end its owner's chat.
    let mut one_shot = hub.connect().await;
    one_shot.send(login("bob", PASSWORD, options::QUIET)).await;
    assert_eq!(one_shot.expect_next_error().await.code, Code::NICK_TAKEN);
    watcher.send(send(2, &["bob"], "still there")).await;
    assert_eq!(second.expect_message().await.text, "still there");
    hub.shutdown().await;
}

#[tokio::test]
async fn a_password_change_and_an_account_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    create(&hub, "bob").await;
    let mut client = hub.connect().await;
    let short = request(
        &mut client,
        AccountAction::SetPassword,
        "bob",
        PASSWORD,
        "short",
    )
    .await;
    assert_eq!(short, Err(Code::BAD_REQUEST));
    let changed = request(
        &mut client,
        AccountAction::SetPassword,
        "bob",
        PASSWORD,
        "battery staple",
    )
    .await;
    assert_eq!(changed.as_deref(), Ok("bob"));
    client.send(login("bob", PASSWORD, 0)).await;
    assert_eq!(client.expect_next_error().await.code, Code::BAD_PASSWORD);

    // Something waits for bob; deleting the account takes it along.
    let mut alice = hub.register("alice").await;
    alice.send(send(1, &["bob"], "gone with it")).await;
    assert_eq!(status_of(&alice.expect_ack(1).await, "bob"), Code::STORED);
    let deleted = request(
        &mut client,
        AccountAction::Delete,
        "bob",
        "battery staple",
        "",
    )
    .await;
    assert_eq!(deleted.as_deref(), Ok("bob"));
    // The nickname is free again, for a guest, and bob is nobody now.
    client.send(hello("bob")).await;
    client.expect_welcome().await;
    client.send(send(1, &["alice"], "hi")).await;
    client.expect_ack(1).await;
    drop(client);
    hub.wait_online("alice").await;
    alice.send(send(2, &["BOB"], "anyone?")).await;
    let status = status_of(&alice.expect_ack(2).await, "BOB");
    assert!(
        status == Code::NO_SUCH_USER || status == Code::DELIVERED,
        "{status:?}"
    );
    // Created again, its mailbox starts empty.
    let mut fresh = hub.connect().await;
    let created = request(&mut fresh, AccountAction::Create, "bob", PASSWORD, "").await;
    assert!(
        created.is_ok() || created == Err(Code::NICK_TAKEN),
        "{created:?}"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn accounts_and_mailboxes_survive_a_restart_and_ids_go_on_rising() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    create(&hub, "bob").await;
    let mut alice = hub.register("alice").await;
    alice.send(send(1, &["bob"], "kept")).await;
    let ack = alice.expect_ack(1).await;
    assert_eq!(status_of(&ack, "bob"), Code::STORED);
    drop(alice);
    // Online when the hub stops, without confirming: both are kept.
    let (_bob, frames) = log_in(&hub, "bob", 0).await;
    assert_eq!(stored(&frames).len(), 1);
    hub.shutdown().await;

    let hub = hub_in(&dir, HubConfig::default()).await;
    let (mut watcher, _) = hub
        .connect()
        .await
        .registered_with_options("watcher", options::USERS)
        .await;
    let table = users_table(&mut watcher).await;
    assert!(
        table
            .iter()
            .any(|row| row.nick == "bob" && row.last_seen_ms > 0),
        "bob was last seen when the hub stopped: {table:?}"
    );
    let mut guest = hub.connect().await;
    guest.send(hello("bob")).await;
    assert_eq!(guest.expect_next_error().await.code, Code::NICK_REGISTERED);
    let (_bob, frames) = log_in(&hub, "bob", 0).await;
    assert_eq!(
        stored(&frames),
        [(ack.message_id, "alice".into(), "kept".into())]
    );
    let mut alice = hub.register("alice").await;
    alice.send(send(1, &["alice"], "to myself")).await;
    assert!(alice.expect_ack(1).await.message_id > ack.message_id);
    hub.shutdown().await;
}

#[tokio::test]
async fn the_data_directory_is_locked_while_a_hub_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    let second = tokio::task::spawn_blocking({
        let config = StoreConfig::new(dir.path());
        move || chinwag_hub::store::Store::open(&config)
    })
    .await
    .unwrap();
    let error = second.expect_err("a second store on the same directory");
    assert!(
        matches!(error, chinwag_hub::store::StoreError::Locked { .. }),
        "{error}"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn closed_registration_and_required_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::default();
    config.accounts = AccountPolicy {
        require_accounts: true,
        registration_open: false,
        ..AccountPolicy::default()
    };
    let hub = hub_in(&dir, config).await;
    let mut client = hub.connect().await;
    let created = request(&mut client, AccountAction::Create, "bob", PASSWORD, "").await;
    assert_eq!(created, Err(Code::REGISTRATION_CLOSED));
    client.send(hello("guest")).await;
    assert_eq!(
        client.expect_next_error().await.code,
        Code::ACCOUNT_REQUIRED
    );
    hub.shutdown().await;

    // Without a store, a hub keeps no accounts and says so.
    let hub = TestHub::start().await;
    let mut client = hub.connect().await;
    let created = request(&mut client, AccountAction::Create, "bob", PASSWORD, "").await;
    assert_eq!(created, Err(Code::ACCOUNTS_UNAVAILABLE));
    client.send(login("bob", PASSWORD, 0)).await;
    assert_eq!(
        client.expect_next_error().await.code,
        Code::ACCOUNTS_UNAVAILABLE
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn a_full_mailbox_is_refused_with_its_own_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = StoreConfig::new(dir.path());
    store.mailbox_max_messages = 2;
    let hub = hub_with_store(store, HubConfig::default()).await;
    create(&hub, "bob").await;
    let mut alice = hub.register("alice").await;
    let mut statuses = Vec::new();
    for id in 1..=3 {
        alice.send(send(id, &["bob"], "fill")).await;
        statuses.push(status_of(&alice.expect_ack(id).await, "bob"));
    }
    assert_eq!(statuses, [Code::STORED, Code::STORED, Code::MAILBOX_FULL]);
    hub.shutdown().await;
}

#[tokio::test]
async fn a_full_disk_fails_the_store_not_the_chat_and_storing_resumes_with_room() {
    let dir = tempfile::tempdir().unwrap();
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let hub = TestHub::with_store(HubConfig::default(), store.clone()).await;
    create(&hub, "bob").await;
    let mut carol = hub.register("carol").await;
    let mut alice = hub.register("alice").await;
    // The database may not grow: as a full disk, to SQLite.
    store.set_max_db_bytes(Some(1)).unwrap().await.unwrap();
    let big = "x".repeat(60_000);
    let mut failed = None;
    for id in 1..=20 {
        alice.send(send(id, &["bob", "carol"], big.as_str())).await;
        let ack = alice.expect_ack(id).await;
        // Online chat goes on whatever the disk does.
        assert_eq!(status_of(&ack, "carol"), Code::DELIVERED);
        assert_eq!(carol.expect_message().await.id, ack.message_id);
        match status_of(&ack, "bob") {
            Code::STORED => {}
            Code::STORE_FAILED => {
                failed = Some(id);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let failed = failed.expect("a full disk fails a store");
    store.set_max_db_bytes(None).unwrap().await.unwrap();
    alice.send(send(100, &["bob"], "room again")).await;
    assert_eq!(status_of(&alice.expect_ack(100).await, "bob"), Code::STORED);
    // Nothing that failed is there; all that was stored is.
    let (_bob, frames) = log_in(&hub, "bob", 0).await;
    let texts: Vec<String> = stored(&frames)
        .into_iter()
        .map(|(_, _, text)| text)
        .collect();
    assert_eq!(texts.len(), usize::try_from(failed).unwrap());
    assert_eq!(texts.last().map(String::as_str), Some("room again"));
    drop(store);
    hub.shutdown().await;
}

#[tokio::test]
async fn the_table_of_users_lists_accounts_and_guests_and_follows_changes() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    create(&hub, "bob").await;
    create(&hub, "dave").await;
    let (dave, _) = log_in(&hub, "dave", 0).await;
    drop(dave);
    wait_offline(&hub, "dave").await;
    let _guest = hub.register("carol").await;
    let (mut alice, welcome) = hub
        .connect()
        .await
        .registered_with_options("alice", options::USERS)
        .await;
    assert_eq!(welcome.options, Some(options::USERS));
    let table = users_table(&mut alice).await;
    let rows: Vec<(&str, u8)> = table
        .iter()
        .map(|row| (row.nick.as_str(), row.flags))
        .collect();
    assert_eq!(
        rows,
        [
            ("alice", user_flags::ONLINE),
            ("bob", user_flags::REGISTERED),
            ("carol", user_flags::ONLINE),
            ("dave", user_flags::REGISTERED),
        ]
    );
    // dave was seen; bob never.
    assert!(
        table[3].last_seen_ms > 0 && table[1].last_seen_ms == 0,
        "{table:?}"
    );

    // An account created is pushed as a change, and so is one deleted.
    create(&hub, "erin").await;
    let change = next_user(&mut alice).await;
    assert_eq!(
        change,
        UserEntry {
            flags: user_flags::REGISTERED,
            last_seen_ms: 0,
            nick: "erin".into()
        }
    );
    let mut client = hub.connect().await;
    let deleted = request(&mut client, AccountAction::Delete, "erin", PASSWORD, "").await;
    assert_eq!(deleted.as_deref(), Ok("erin"));
    assert_eq!(next_user(&mut alice).await.flags, 0);

    // WHO answers with the table too.
    alice.send(ClientFrame::Who).await;
    let again = users_table(&mut alice).await;
    assert_eq!(again.len(), 4, "{again:?}");

    // Those who asked for none of it get none of it.
    let (mut quiet, _) = hub
        .connect()
        .await
        .registered_with_options("quiet", options::USERS | options::NO_PRESENCE)
        .await;
    create(&hub, "frank").await;
    let frames = quiet.sync().await;
    assert!(
        frames
            .iter()
            .all(|frame| !matches!(frame, ServerFrame::Users(_) | ServerFrame::User(_))),
        "{frames:?}"
    );
    hub.shutdown().await;
}

/// The next `USERS` table, skipping other frames.
async fn users_table(client: &mut RawClient<TcpStream>) -> Vec<UserEntry> {
    client
        .recv_until(|frame| match frame {
            ServerFrame::Users(users) => Some(users),
            _ => None,
        })
        .await
}

async fn next_user(client: &mut RawClient<TcpStream>) -> UserEntry {
    client
        .recv_until(|frame| match frame {
            ServerFrame::User(user) => Some(user),
            _ => None,
        })
        .await
}

#[tokio::test]
async fn a_guest_registers_its_own_nickname_and_becomes_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    let mut bob = hub.register("bob").await;
    let mut other = hub.connect().await;
    // Someone else cannot register a nickname a guest is using.
    let taken = request(&mut other, AccountAction::Create, "bob", PASSWORD, "").await;
    assert_eq!(taken, Err(Code::NICK_TAKEN));
    let created = request(&mut bob, AccountAction::Create, "bob", PASSWORD, "").await;
    assert_eq!(created.as_deref(), Ok("bob"));
    drop(bob);
    wait_offline(&hub, "bob").await;
    // Its departure is remembered as an account holder's.
    let (mut alice, _) = hub
        .connect()
        .await
        .registered_with_options("alice", options::USERS)
        .await;
    let table = users_table(&mut alice).await;
    let bob = table.iter().find(|row| row.nick == "bob");
    assert!(
        bob.is_some_and(|row| row.flags == user_flags::REGISTERED && row.last_seen_ms > 0),
        "{table:?}"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn expired_messages_are_dropped_and_their_owner_told_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HubConfig::default();
    config.accounts.mailbox_max_age = Duration::from_millis(1);
    config.accounts.sweep_every = Duration::from_secs(1);
    let hub = hub_in(&dir, config).await;
    create(&hub, "bob").await;
    let mut alice = hub.register("alice").await;
    alice.send(send(1, &["bob"], "old news")).await;
    assert_eq!(status_of(&alice.expect_ack(1).await, "bob"), Code::STORED);
    // The sweeper runs each second; wait for it to have dropped the
    // message (at most a couple of sweeps).
    let mut told = None;
    for _ in 0..60 {
        let (bob, frames) = log_in(&hub, "bob", 0).await;
        drop(bob);
        if let Some(ServerFrame::Mailbox(header)) = frames.first()
            && header.expired == 1
        {
            assert_eq!(header.count, 0);
            told = Some(frames.len());
            break;
        }
        wait_offline(&hub, "bob").await;
        // The sweeper's period, not a synchronisation: nothing to wait on
        // but its timer.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(told, Some(1), "the expired message was never told");
    // Told once.
    let (_bob, frames) = log_in_again(&hub, "bob").await;
    assert!(
        matches!(frames.first(), Some(ServerFrame::Mailbox(h)) if h.expired == 0),
        "{frames:?}"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn a_text_user_is_told_a_registered_nickname_is_not_for_the_text_port() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir, HubConfig::default()).await;
    create(&hub, "bob").await;
    let listener = chinwag_hub::bind_tcp(([127, 0, 0, 1], 0).into()).unwrap();
    let text_addr = listener.local_addr().unwrap();
    tokio::spawn({
        let hub = hub.hub.clone();
        async move { hub.serve_text(listener).await }
    });
    let (read, mut write) = TcpStream::connect(text_addr).await.unwrap().into_split();
    let mut lines = BufReader::new(read).lines();
    let mut next = async || {
        chinwag_testkit::within("a line", lines.next_line())
            .await
            .unwrap()
            .unwrap()
    };
    // The greeting, then the answer to a registered name.
    next().await;
    write.write_all(b"Bob\n").await.unwrap();
    assert_eq!(
        next().await,
        "! error: nickname is registered; the text port has no logins, choose another"
    );
    write.write_all(b"robert\n").await.unwrap();
    assert!(next().await.starts_with("* welcome, robert"));
    hub.shutdown().await;
}

#[tokio::test]
async fn a_table_larger_than_a_frame_comes_as_users_then_user_frames() {
    use chinwag_hub::protocol::{Encode, ServerFrame as Frame};
    use chinwag_hub::store::{AccountStore, NewAccount};

    let dir = tempfile::tempdir().unwrap();
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    for n in 0..100 {
        let account = NewAccount {
            nick: format!("member-{n:03}"),
            password_hash: "not a hash: nobody logs in".into(),
            created_ms: 1,
        };
        store.create_account(account).unwrap().await.unwrap();
    }
    let mut config = HubConfig::default();
    config.max_frame = 512;
    let hub = TestHub::with_store(config, store).await;
    let (mut alice, _) = hub
        .connect()
        .await
        .registered_with_options("alice", options::USERS)
        .await;
    let first = users_table(&mut alice).await;
    let size = Frame::Users(first.clone()).payload_len();
    assert!(size <= 512, "a USERS frame of {size} bytes");
    let mut rows: Vec<String> = first.into_iter().map(|row| row.nick).collect();
    while rows.len() < 101 {
        rows.push(next_user(&mut alice).await.nick);
    }
    let mut expected: Vec<String> = (0..100).map(|n| format!("member-{n:03}")).collect();
    expected.insert(0, "alice".into());
    assert_eq!(rows, expected, "every row once, in order");
    hub.shutdown().await;
}
