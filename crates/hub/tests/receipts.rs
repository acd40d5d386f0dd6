//! Receipts through real sockets (`docs/protocol.md`, section 8.10): a
//! recipient whose client confirms (`CONFIRMS`) turns each confirmation
//! into a `RECEIPT` for a sender who asked (`RECEIPTS`), for live messages
//! and for stored ones confirmed at a later login, across a restart too;
//! and nobody else sees anything new.

use std::collections::BTreeSet;

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::{
    AccountAction, ClientFrame, Code, Receipt, ReceiptKey, ReceiptKeyRun, Recipients, ServerFrame,
    options,
};
use chinwag_hub::store::StoreConfig;
use chinwag_testkit::{RawClient, TestHub, account, login, send, send_frame};
use tempfile::TempDir;
use tokio::net::TcpStream;

const PASSWORD: &str = "correct horse";

/// Quiet about presence, so that only what a test looks for arrives.
const SENDER: u32 = options::RECEIPTS | options::NO_PRESENCE;
const CONFIRMING: u32 = options::CONFIRMS | options::NO_PRESENCE;

async fn client(hub: &TestHub, nick: &str, options: u32) -> RawClient<TcpStream> {
    let (client, welcome) = hub
        .connect()
        .await
        .registered_with_options(nick, options)
        .await;
    assert_eq!(welcome.options, Some(options), "options granted");
    client
}

/// Reads `MESSAGE`s until `count` have come; answers their ids.
async fn received(client: &mut RawClient<TcpStream>, count: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    while ids.len() < count {
        ids.push(client.expect_message().await.id);
    }
    ids
}

/// Reads `RECEIPT` frames until `count` receipts have come.
async fn receipts(client: &mut RawClient<TcpStream>, count: usize) -> Vec<Receipt> {
    let mut all = Vec::new();
    while all.len() < count {
        let mut batch = client
            .recv_until(|frame| match frame {
                ServerFrame::Receipts(receipts) => Some(receipts),
                _ => None,
            })
            .await;
        all.append(&mut batch);
    }
    all
}

/// (message id, recipient) of each receipt.
fn pairs(receipts: &[Receipt]) -> BTreeSet<(u64, String)> {
    receipts
        .iter()
        .map(|receipt| (receipt.message_id, receipt.recipient.clone()))
        .collect()
}

/// Every frame `client` was sent before the answer to a `WHO` it sends
/// after `after` has had the answer to its own: whatever the hub did
/// because of `after`'s earlier commands is queued for `client` by then
/// (the actor takes commands in order, and queues receipts at the end of
/// the batch that made them).
async fn frames_after(
    client: &mut RawClient<TcpStream>,
    after: &mut RawClient<TcpStream>,
) -> Vec<ServerFrame> {
    after.who().await;
    client.send(ClientFrame::Who).await;
    let mut before = Vec::new();
    loop {
        match client
            .recv()
            .await
            .expect("connection closed while waiting")
        {
            ServerFrame::Roster(_) => return before,
            other => before.push(other),
        }
    }
}

fn has_receipt(frames: &[ServerFrame]) -> bool {
    frames
        .iter()
        .any(|frame| matches!(frame, ServerFrame::Receipts(_)))
}

#[tokio::test]
async fn each_confirmation_is_a_receipt_for_the_sender_who_asked() {
    let hub = TestHub::start().await;
    let mut alice = client(&hub, "alice", SENDER).await;
    let mut bob = client(&hub, "bob", CONFIRMING).await;
    let mut carol = client(&hub, "Carol", CONFIRMING).await;

    let mut sent = Vec::new();
    for n in 1..=3 {
        alice.send(send(n, &["bob", "carol"], "hi")).await;
        let ack = alice.expect_ack(n).await;
        assert!(ack.statuses.iter().all(|s| s.status == Code::DELIVERED));
        sent.push(ack.message_id);
    }
    assert_eq!(received(&mut bob, 3).await, sent);
    assert_eq!(received(&mut carol, 3).await, sent);

    // Bob confirms all three at once, carol the first two; an id nobody
    // owes anything for is ignored.
    bob.send(ClientFrame::Confirm(sent.clone())).await;
    carol
        .send(ClientFrame::Confirm(vec![sent[0], sent[1], 999_999]))
        .await;
    let got = receipts(&mut alice, 5).await;
    let mut want: BTreeSet<(u64, String)> = sent.iter().map(|&id| (id, "bob".to_owned())).collect();
    want.extend(sent[..2].iter().map(|&id| (id, "Carol".to_owned())));
    assert_eq!(pairs(&got), want);
    assert!(got.iter().all(|receipt| receipt.received_ms > 0));

    // Confirming again owes nothing more.
    bob.send(ClientFrame::Confirm(sent.clone())).await;
    assert!(!has_receipt(&frames_after(&mut alice, &mut bob).await));
    hub.shutdown().await;
}

#[tokio::test]
async fn no_receipt_unless_the_sender_asked_and_the_recipient_confirms() {
    let hub = TestHub::start().await;
    let mut asks = client(&hub, "alice", SENDER).await;
    let mut plain = client(&hub, "dave", options::NO_PRESENCE).await;
    let mut confirming = client(&hub, "bob", CONFIRMING).await;
    let mut silent = client(&hub, "erin", options::NO_PRESENCE).await;

    // A recipient without CONFIRMS: its confirmation gives nothing.
    asks.send(send(1, &["erin"], "one")).await;
    asks.expect_ack(1).await;
    let id = silent.expect_message().await.id;
    silent.send(ClientFrame::Confirm(vec![id])).await;
    assert!(!has_receipt(&frames_after(&mut asks, &mut silent).await));

    // A sender without RECEIPTS: a confirming recipient gives it nothing.
    plain.send(send(1, &["bob"], "two")).await;
    plain.expect_ack(1).await;
    let id = confirming.expect_message().await.id;
    confirming.send(ClientFrame::Confirm(vec![id])).await;
    assert!(!has_receipt(
        &frames_after(&mut plain, &mut confirming).await
    ));

    // A message to everyone gets no receipts, even from those who confirm.
    asks.send(send_frame(2, Recipients::Everyone, "all")).await;
    asks.expect_ack(2).await;
    let id = confirming.expect_message().await.id;
    confirming.send(ClientFrame::Confirm(vec![id])).await;
    assert!(!has_receipt(
        &frames_after(&mut asks, &mut confirming).await
    ));
    hub.shutdown().await;
}

#[tokio::test]
async fn a_receipt_goes_to_the_senders_current_connection_and_a_gone_recipient_owes_none() {
    let hub = TestHub::start().await;
    let mut alice = client(&hub, "alice", SENDER).await;
    let mut bob = client(&hub, "bob", CONFIRMING).await;
    let mut carol = client(&hub, "carol", CONFIRMING).await;
    alice.send(send(1, &["bob", "carol"], "hi")).await;
    let message_id = alice.expect_ack(1).await.message_id;
    received(&mut bob, 1).await;
    received(&mut carol, 1).await;

    // Alice reconnects before anyone confirms: her new connection gets it.
    alice.quit().await;
    let mut alice = client(&hub, "alice", SENDER).await;
    bob.send(ClientFrame::Confirm(vec![message_id])).await;
    let got = receipts(&mut alice, 1).await;
    assert_eq!(
        pairs(&got),
        BTreeSet::from([(message_id, "bob".to_owned())])
    );

    // Carol leaves without confirming; back under a new connection, her
    // late confirmation is for a message that connection never had.
    carol.quit().await;
    let mut carol = client(&hub, "carol", CONFIRMING).await;
    carol.send(ClientFrame::Confirm(vec![message_id])).await;
    assert!(!has_receipt(&frames_after(&mut alice, &mut carol).await));
    hub.shutdown().await;
}

/// Creates an account for each of `nicks`.
async fn create(hub: &TestHub, nicks: &[&str]) {
    for nick in nicks {
        let mut creator = hub.connect().await;
        creator
            .send(account(AccountAction::Create, nick, PASSWORD, ""))
            .await;
        creator
            .recv_until(|frame| matches!(frame, ServerFrame::AccountDone(_)).then_some(()))
            .await;
    }
}

/// A login to `nick`'s account asking for `options`, past its `WELCOME`.
async fn logged_in(hub: &TestHub, nick: &str, options: u32) -> RawClient<TcpStream> {
    let mut client = hub.connect().await;
    client.send(login(nick, PASSWORD, options)).await;
    client.expect_welcome().await;
    client
}

async fn hub_in(dir: &TempDir) -> TestHub {
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    TestHub::with_store(HubConfig::default(), store).await
}

#[tokio::test]
async fn a_stored_message_gives_its_receipt_when_confirmed_at_a_later_login_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir).await;
    create(&hub, &["alice", "bob"]).await;
    let mut alice = logged_in(&hub, "alice", SENDER).await;
    alice.send(send(1, &["bob"], "while you were away")).await;
    let ack = alice.expect_ack(1).await;
    assert_eq!(ack.statuses[0].status, Code::STORED);
    // A guest's stored message without a receipt asked for, beside it.
    let mut guest = client(&hub, "guest", options::NO_PRESENCE).await;
    guest.send(send(1, &["bob"], "no receipt wanted")).await;
    let unwanted = guest.expect_ack(1).await.message_id;
    drop(alice);
    hub.shutdown().await;

    // Days later, as far as the hub can tell: a new process on the same
    // data directory.
    let hub = hub_in(&dir).await;
    let mut alice = logged_in(&hub, "alice", SENDER).await;
    let mut bob = logged_in(&hub, "bob", CONFIRMING).await;
    let mut ids = Vec::new();
    while ids.len() < 2 {
        if let ServerFrame::StoredMessage(message) = bob.recv().await.expect("the mailbox") {
            ids.push(message.id);
        }
    }
    assert_eq!(ids, [ack.message_id, unwanted]);
    bob.send(ClientFrame::Confirm(ids)).await;
    let got = receipts(&mut alice, 1).await;
    assert_eq!(
        pairs(&got),
        BTreeSet::from([(ack.message_id, "bob".to_owned())])
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn receipts_for_a_sender_who_went_offline_wait_for_its_next_login() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir).await;
    create(&hub, &["alice"]).await;
    let mut alice = logged_in(&hub, "alice", SENDER).await;
    let mut bob = client(&hub, "bob", CONFIRMING).await;
    alice.send(send(1, &["bob"], "read this later")).await;
    let message_id = alice.expect_ack(1).await.message_id;
    assert_eq!(received(&mut bob, 1).await, [message_id]);

    // Alice leaves; bob confirms while she is away, then the hub restarts.
    alice.quit().await;
    bob.send(ClientFrame::Confirm(vec![message_id])).await;
    bob.who().await;
    hub.shutdown().await;

    let hub = hub_in(&dir).await;
    // A login that does not ask for receipts leaves them kept...
    let mut alice = hub.connect().await;
    alice
        .send(login("alice", PASSWORD, options::NO_PRESENCE))
        .await;
    alice.expect_welcome().await;
    alice.quit().await;
    // ...for the next that does, which gets them once.
    let mut alice = logged_in(&hub, "alice", SENDER).await;
    let got = receipts(&mut alice, 1).await;
    assert_eq!(
        pairs(&got),
        BTreeSet::from([(message_id, "bob".to_owned())])
    );
    alice.quit().await;
    let mut alice = logged_in(&hub, "alice", SENDER).await;
    let mut other = client(&hub, "other", options::NO_PRESENCE).await;
    assert!(!has_receipt(&frames_after(&mut alice, &mut other).await));
    hub.shutdown().await;
}

/// A stored message confirmed the moment the hub shuts down still gives
/// its receipt: the store's answer may come after the actor has stopped,
/// and then the receipt is kept for the sender's next login.
#[tokio::test]
async fn a_confirmation_just_before_shutdown_keeps_its_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir).await;
    create(&hub, &["alice", "bob"]).await;
    let mut alice = logged_in(&hub, "alice", SENDER).await;
    alice.send(send(1, &["bob"], "stored")).await;
    let message_id = alice.expect_ack(1).await.message_id;
    alice.quit().await;

    let mut bob = logged_in(&hub, "bob", CONFIRMING).await;
    let id = bob
        .recv_until(|frame| match frame {
            ServerFrame::StoredMessage(message) => Some(message.id),
            _ => None,
        })
        .await;
    bob.send(ClientFrame::Confirm(vec![id])).await;
    bob.who().await;
    hub.shutdown().await;

    let hub = hub_in(&dir).await;
    let mut alice = logged_in(&hub, "alice", SENDER).await;
    let got = receipts(&mut alice, 1).await;
    assert_eq!(
        pairs(&got),
        BTreeSet::from([(message_id, "bob".to_owned())])
    );
    hub.shutdown().await;
}

/// Both ends in reliable sessions: the sender asks for receipts, the
/// recipient confirms.
const RELIABLE_SENDER: u32 = options::RELIABLE | options::RECEIPTS | options::NO_PRESENCE;
const RELIABLE_CONFIRMING: u32 = options::RELIABLE | options::CONFIRMS | options::NO_PRESENCE;

/// A reliable login to `nick`, past its (empty) mailbox.
async fn reliable_in(hub: &TestHub, nick: &str, options: u32) -> RawClient<TcpStream> {
    let mut client = logged_in(hub, nick, options).await;
    let header = client
        .recv_until(|frame| match frame {
            ServerFrame::Mailbox(header) => Some(header),
            _ => None,
        })
        .await;
    assert_eq!(header.count, 0, "{nick}'s mailbox is empty");
    client
}

/// `alice` sends `bob` one message, which `bob` confirms: answers its id,
/// once `alice` has its receipt.
async fn sent_and_confirmed(
    alice: &mut RawClient<TcpStream>,
    bob: &mut RawClient<TcpStream>,
    client_id: u64,
) -> u64 {
    alice.send(send(client_id, &["bob"], "hello")).await;
    let message_id = alice.expect_ack(client_id).await.message_id;
    let sequenced = bob
        .recv_until(|frame| match frame {
            ServerFrame::Sequenced(sequenced) => Some(sequenced),
            _ => None,
        })
        .await;
    assert_eq!(sequenced.message.id, message_id);
    bob.send(ClientFrame::Confirm(vec![message_id])).await;
    let got = receipts(alice, 1).await;
    assert_eq!(
        pairs(&got),
        BTreeSet::from([(message_id, "bob".to_owned())])
    );
    message_id
}

/// What the store holds for `alice` (receipts kept) and `bob` (messages).
async fn kept_in(dir: &TempDir) -> (usize, usize) {
    use chinwag_hub::store::MailStore;
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let kept = (store.kept_receipts("alice").expect("a read"))
        .await
        .expect("the receipts kept");
    let mailbox = (store.mailbox("bob").expect("a read"))
        .await
        .expect("the mailbox");
    (kept.len(), mailbox.messages.len())
}

/// The hub tells a reliable sender its receipt as the recipient confirms,
/// and holds the confirmation until the sender confirms the receipt: then
/// the copy leaves the mailbox and nothing of the receipt is kept.
#[tokio::test]
async fn a_receipt_a_reliable_sender_confirms_leaves_nothing_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir).await;
    create(&hub, &["alice", "bob"]).await;
    let mut alice = reliable_in(&hub, "alice", RELIABLE_SENDER).await;
    let mut bob = reliable_in(&hub, "bob", RELIABLE_CONFIRMING).await;
    let message_id = sent_and_confirmed(&mut alice, &mut bob, 1).await;
    alice
        .send(ClientFrame::ConfirmReceipts(vec![ReceiptKey {
            message_id,
            recipient: "bob".to_owned(),
        }]))
        .await;
    alice.who().await;
    hub.shutdown().await;
    assert_eq!(kept_in(&dir).await, (0, 0), "no receipt kept, no copy left");
}

/// A receipt told to a reliable sender that leaves before confirming it
/// comes again at its next login, and the copy it owed is not delivered
/// again; confirmed then, it is kept no more.
#[tokio::test]
async fn a_receipt_told_and_not_confirmed_comes_again_at_the_senders_next_login() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir).await;
    create(&hub, &["alice", "bob"]).await;
    let mut alice = reliable_in(&hub, "alice", RELIABLE_SENDER).await;
    let mut bob = reliable_in(&hub, "bob", RELIABLE_CONFIRMING).await;
    let message_id = sent_and_confirmed(&mut alice, &mut bob, 1).await;
    alice.quit().await;

    let mut alice = logged_in(&hub, "alice", RELIABLE_SENDER).await;
    let got = receipts(&mut alice, 1).await;
    assert_eq!(
        pairs(&got),
        BTreeSet::from([(message_id, "bob".to_owned())])
    );
    bob.quit().await;
    let _bob = reliable_in(&hub, "bob", RELIABLE_CONFIRMING).await;
    alice
        .send(ClientFrame::ConfirmReceipts(vec![ReceiptKey {
            message_id,
            recipient: "bob".to_owned(),
        }]))
        .await;
    alice.who().await;
    hub.shutdown().await;
    assert_eq!(
        kept_in(&dir).await,
        (0, 0),
        "confirmed at last, and released"
    );
}

/// A confirmation held for its receipt when the hub shuts down: the copy
/// leaves the mailbox and the receipt is kept for the sender's next login.
#[tokio::test]
async fn a_confirmation_held_at_shutdown_releases_its_copy_and_keeps_its_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir).await;
    create(&hub, &["alice", "bob"]).await;
    let mut alice = reliable_in(&hub, "alice", RELIABLE_SENDER).await;
    let mut bob = reliable_in(&hub, "bob", RELIABLE_CONFIRMING).await;
    let message_id = sent_and_confirmed(&mut alice, &mut bob, 1).await;
    hub.shutdown().await;
    assert_eq!(
        kept_in(&dir).await,
        (1, 0),
        "the receipt kept, no copy left"
    );

    let hub = hub_in(&dir).await;
    let mut alice = logged_in(&hub, "alice", RELIABLE_SENDER).await;
    let got = receipts(&mut alice, 1).await;
    assert_eq!(
        pairs(&got),
        BTreeSet::from([(message_id, "bob".to_owned())])
    );
    hub.shutdown().await;
}

/// A reliable sender that asked for `RECEIPT_RUNS` is told the receipts of
/// a run of its messages, confirmed together, as one run of a
/// `RECEIPT_RUNS` frame, and its `CONFIRM_RECEIPT_RUNS` of them releases
/// every copy with nothing kept, as `CONFIRM_RECEIPTS` naming each does.
#[tokio::test]
async fn receipts_come_and_are_confirmed_by_runs_for_a_sender_that_asked() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_in(&dir).await;
    create(&hub, &["alice", "bob"]).await;
    let runs = RELIABLE_SENDER | options::ACK_RUNS | options::RECEIPT_RUNS;
    let mut alice = reliable_in(&hub, "alice", runs).await;
    let mut bob = reliable_in(&hub, "bob", RELIABLE_CONFIRMING).await;
    let sends: Vec<ClientFrame> = (1..=5).map(|id| send(id, &["bob"], "hi")).collect();
    alice
        .send_raw(&chinwag_testkit::encode_frames(&sends))
        .await;
    let mut ids = Vec::new();
    while ids.len() < 5 {
        let sequenced = bob
            .recv_until(|frame| match frame {
                ServerFrame::Sequenced(sequenced) => Some(sequenced),
                _ => None,
            })
            .await;
        ids.push(sequenced.message.id);
    }
    assert!(ids.windows(2).all(|pair| pair[1] == pair[0] + 1), "{ids:?}");
    bob.send(ClientFrame::Confirm(ids.clone())).await;
    let told = alice
        .recv_until(|frame| match frame {
            ServerFrame::ReceiptRuns(runs) => Some(runs),
            ServerFrame::Receipts(receipts) => panic!("not as runs: {receipts:?}"),
            _ => None,
        })
        .await;
    let [run] = told.as_slice() else {
        panic!("one run: {told:?}");
    };
    assert_eq!(
        (run.first_message_id, run.count, run.recipient.as_str()),
        (ids[0], 5, "bob")
    );
    let keys = ReceiptKeyRun {
        first_message_id: run.first_message_id,
        count: run.count,
        recipient: run.recipient.clone(),
    };
    alice
        .send(ClientFrame::ConfirmReceiptRuns(vec![keys]))
        .await;
    alice.who().await;
    hub.shutdown().await;
    assert_eq!(kept_in(&dir).await, (0, 0), "no receipt kept, no copy left");
}
