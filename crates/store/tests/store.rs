//! The store through its handle, on real database files in temporary
//! directories: mailboxes and their limits, accounts, what survives a
//! reopen, and the data directory's lock.

mod support;

use std::thread;
use std::time::Duration;

use chinwag_store::{
    AccountStore, Expired, MailStore, Routed, Store, StoreConfig, StoreError, StoreOutcome,
    StoredMessage,
};
use support::{HASH, T0, accounts, message, message_with, open, open_with};

fn store_one(store: &Store, message: chinwag_store::StoredMessage) -> StoreOutcome {
    store.store_message(message).unwrap().wait().unwrap()
}

fn ids(store: &Store, recipient: &str) -> Vec<u64> {
    let mailbox = store.mailbox(recipient).unwrap().wait().unwrap();
    mailbox.messages.iter().map(|message| message.id).collect()
}

#[test]
fn a_mailbox_reads_back_in_id_order_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&StoreConfig::new(dir.path()), &["Bob", "carol"]);
    // Handed over together without waiting: several group commits' worth.
    let pending: Vec<_> = (1..=300)
        .map(|id| {
            let recipient = if id % 3 == 0 { "CAROL" } else { "bob" };
            store.store_message(message(recipient, id)).unwrap()
        })
        .collect();
    for answer in pending {
        assert_eq!(answer.wait().unwrap(), StoreOutcome::Stored);
    }
    let mailbox = store.mailbox("BOB").unwrap().wait().unwrap();
    assert_eq!(mailbox.messages.len(), 200);
    assert_eq!(mailbox.expired, 0);
    for (read, id) in mailbox
        .messages
        .iter()
        .zip((1..=300).filter(|id| id % 3 != 0))
    {
        // The recipient reads back as registered.
        assert_eq!(*read, message("Bob", id));
    }
    // Reading removes nothing: a crash before the client confirms delivers
    // the same messages, with the same ids, again.
    assert_eq!(ids(&store, "bob").len(), 200);
    assert_eq!(
        ids(&store, "carol"),
        (3..=300).step_by(3).collect::<Vec<_>>()
    );
}

#[test]
fn a_batch_is_answered_per_message_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        mailbox_max_messages: 2,
        ..StoreConfig::new(dir.path())
    };
    let store = open_with(&config, &["bob"]);
    let batch = vec![
        message("bob", 1),
        message("nobody", 2),
        message("bob", 3),
        message("bob", 4),
    ];
    let outcomes = store.store_messages(batch).unwrap().wait().unwrap();
    assert_eq!(
        outcomes,
        [
            StoreOutcome::Stored,
            StoreOutcome::NoSuchAccount,
            StoreOutcome::Stored,
            StoreOutcome::MailboxFull,
        ]
    );
    assert_eq!(ids(&store, "bob"), [1, 3]);
}

#[test]
fn the_quota_counts_messages_and_frees_on_confirm() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        mailbox_max_messages: 3,
        ..StoreConfig::new(dir.path())
    };
    let store = open_with(&config, &["bob", "carol"]);
    for id in 1..=3 {
        assert_eq!(store_one(&store, message("bob", id)), StoreOutcome::Stored);
    }
    assert_eq!(
        store_one(&store, message("bob", 4)),
        StoreOutcome::MailboxFull
    );
    // One full mailbox takes nothing from another.
    assert_eq!(store_one(&store, message("carol", 5)), StoreOutcome::Stored);
    // Storing the same id again is not a second message.
    assert_eq!(store_one(&store, message("carol", 5)), StoreOutcome::Stored);
    assert_eq!(ids(&store, "carol"), [5]);

    assert_eq!(
        store
            .confirm("bob", vec![1], 1)
            .unwrap()
            .wait()
            .unwrap()
            .removed,
        1
    );
    assert_eq!(store_one(&store, message("bob", 6)), StoreOutcome::Stored);
    assert_eq!(ids(&store, "bob"), [2, 3, 6]);
}

#[test]
fn the_quota_counts_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        mailbox_max_bytes: 125,
        ..StoreConfig::new(dir.path())
    };
    let store = open_with(&config, &["bob"]);
    let forty = message_with("bob", 1, &"a".repeat(40));
    let size = forty.stored_bytes();
    // Text, sender and addressees: 40 + "sender1" + "bob cc1".
    assert_eq!(size, 54);
    assert_eq!(store_one(&store, forty), StoreOutcome::Stored);
    assert_eq!(
        store_one(&store, message_with("bob", 2, &"b".repeat(40))),
        StoreOutcome::Stored
    );
    // A third would pass 125 bytes; a small one (14 bytes) still fits.
    assert_eq!(
        store_one(&store, message_with("bob", 3, &"c".repeat(40))),
        StoreOutcome::MailboxFull
    );
    assert_eq!(
        store_one(&store, message_with("bob", 4, "")),
        StoreOutcome::Stored
    );
    let account = store.account("bob").unwrap().wait().unwrap().unwrap();
    assert_eq!(account.mailbox_count, 3);
    assert_eq!(account.mailbox_bytes, 54 + 54 + 14);
}

#[test]
fn confirm_removes_only_the_named_ids_of_that_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&StoreConfig::new(dir.path()), &["bob", "carol"]);
    for id in 1..=5 {
        store_one(&store, message("bob", id));
        store_one(&store, message("carol", id));
    }
    let confirmed = store
        .confirm("Bob", vec![2, 4, 99, u64::MAX], 1)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(confirmed.removed, 2);
    // Messages 2 and 4 asked for receipts (the even ids): their senders are
    // owed one each.
    assert_eq!(
        confirmed.receipts,
        [
            (2, message("bob", 2).sender.into()),
            (4, message("bob", 4).sender.into())
        ]
    );
    assert_eq!(ids(&store, "bob"), [1, 3, 5]);
    assert_eq!(ids(&store, "carol"), [1, 2, 3, 4, 5]);
    // Confirming again removes nothing more, and owes nothing more.
    let again = store.confirm("bob", vec![2, 3], 1).unwrap().wait().unwrap();
    assert_eq!((again.removed, again.receipts), (1, Vec::new()));
}

#[test]
fn expiry_drops_old_messages_and_counts_them_until_told() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&StoreConfig::new(dir.path()), &["Bob", "carol", "dave"]);
    let day = 24 * 60 * 60 * 1000;
    let at = |recipient: &str, id, ts_ms| chinwag_store::StoredMessage {
        ts_ms,
        ..message(recipient, id)
    };
    // Bob: two 31 days old, one fresh. Carol: one 31 days old. Dave: fresh.
    for stored in [
        at("bob", 1, T0),
        at("carol", 2, T0),
        at("bob", 3, T0 + 1),
        at("bob", 4, T0 + 30 * day),
        at("dave", 5, T0 + 31 * day),
    ] {
        assert_eq!(store_one(&store, stored), StoreOutcome::Stored);
    }
    let now = T0 + 31 * day;
    let max_age = StoreConfig::default().max_age;
    assert_eq!(max_age, Duration::from_secs(30 * 24 * 60 * 60));
    let expired = store.expire(now, max_age).unwrap().wait().unwrap();
    assert_eq!(
        expired,
        [
            Expired {
                recipient: "Bob".into(),
                dropped: 2
            },
            Expired {
                recipient: "carol".into(),
                dropped: 1
            },
        ]
    );
    let bob = store.mailbox("bob").unwrap().wait().unwrap();
    assert_eq!(bob.expired, 2);
    assert_eq!(bob.messages.len(), 1);
    assert_eq!(bob.messages[0].id, 4);
    // A second sweep finds nothing new; the untold count stays until told.
    assert!(
        store
            .expire(now, max_age)
            .unwrap()
            .wait()
            .unwrap()
            .is_empty()
    );
    store.clear_expired("bob", 2).unwrap().wait().unwrap();
    assert_eq!(store.mailbox("bob").unwrap().wait().unwrap().expired, 0);
    assert_eq!(store.mailbox("carol").unwrap().wait().unwrap().expired, 1);
    assert_eq!(ids(&store, "dave"), [5]);
    assert!(matches!(
        store.clear_expired("nobody", 1).unwrap().wait(),
        Err(StoreError::NoSuchAccount)
    ));
}

#[test]
fn accounts_are_created_changed_listed_and_deleted_with_their_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&StoreConfig::new(dir.path()), &["Bob", "alice"]);
    assert!(matches!(
        support::accounts_result(&store, "BOB"),
        Err(StoreError::AccountExists)
    ));

    let bob = store.account("bOB").unwrap().wait().unwrap().unwrap();
    assert_eq!(bob.nick, "Bob");
    assert_eq!(bob.password_hash, HASH);
    assert_eq!(bob.created_ms, T0);
    assert_eq!(bob.last_seen_ms, None);

    store
        .set_password("bob", "$argon2id$v=19$new".into())
        .unwrap()
        .wait()
        .unwrap();
    store.set_last_seen("BOB", T0 + 5).unwrap().wait().unwrap();
    let bob = store.account("bob").unwrap().wait().unwrap().unwrap();
    assert_eq!(bob.password_hash, "$argon2id$v=19$new");
    assert_eq!(bob.last_seen_ms, Some(T0 + 5));
    assert!(matches!(
        store.set_password("nobody", "x".into()).unwrap().wait(),
        Err(StoreError::NoSuchAccount)
    ));

    let listed: Vec<String> = store
        .accounts()
        .unwrap()
        .wait()
        .unwrap()
        .into_iter()
        .map(|account| account.nick)
        .collect();
    assert_eq!(listed, ["alice", "Bob"]);

    store_one(&store, message("bob", 1));
    store_one(&store, message("alice", 2));
    store.delete_account("BOB").unwrap().wait().unwrap();
    assert_eq!(store.account("bob").unwrap().wait().unwrap(), None);
    assert!(matches!(
        store.mailbox("bob").unwrap().wait(),
        Err(StoreError::NoSuchAccount)
    ));
    assert!(matches!(
        store.delete_account("bob").unwrap().wait(),
        Err(StoreError::NoSuchAccount)
    ));
    assert_eq!(
        store_one(&store, message("bob", 3)),
        StoreOutcome::NoSuchAccount
    );
    // The mailbox went with the account: a new Bob starts empty.
    accounts(&store, &["bob"]);
    assert!(ids(&store, "bob").is_empty());
    assert_eq!(ids(&store, "alice"), [2]);
}

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    {
        let store = open(&config);
        assert_eq!(store.last_message_id().unwrap().wait().unwrap(), 0);
        accounts(&store, &["bob", "carol"]);
        store_one(&store, message("bob", 10));
        store_one(&store, message("bob", 11));
        store_one(&store, message("carol", 12));
        store.set_last_seen("bob", T0 + 1).unwrap().wait().unwrap();
        let old = chinwag_store::StoredMessage {
            ts_ms: 1,
            ..message("carol", 13)
        };
        store_one(&store, old);
        store
            .expire(T0, Duration::from_secs(60))
            .unwrap()
            .wait()
            .unwrap();
        store.confirm("bob", vec![10], 1).unwrap().wait().unwrap();
    }
    let store = open(&config);
    assert_eq!(store.accounts().unwrap().wait().unwrap().len(), 2);
    let bob = store.account("bob").unwrap().wait().unwrap().unwrap();
    assert_eq!(bob.last_seen_ms, Some(T0 + 1));
    assert_eq!(
        store.mailbox("bob").unwrap().wait().unwrap().messages,
        [message("bob", 11)]
    );
    let carol = store.mailbox("carol").unwrap().wait().unwrap();
    assert_eq!(carol.messages, [message("carol", 12)]);
    assert_eq!(carol.expired, 1);
    // The highest id ever handed over, although its message is gone.
    assert_eq!(store.last_message_id().unwrap().wait().unwrap(), 13);
}

#[test]
fn the_data_directory_is_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("chinwag-data");
    let config = StoreConfig::new(&data_dir);
    let store = open(&config);
    assert!(data_dir.join("lock").exists(), "created if missing");

    let Err(error) = Store::open(&config) else {
        panic!("a second store opened a locked data directory");
    };
    assert!(
        matches!(error, StoreError::Locked { ref dir, holder: Some(pid) }
        if *dir == data_dir && pid == std::process::id())
    );
    let said = error.to_string();
    assert!(
        said.contains(&data_dir.display().to_string()) && said.contains("in use"),
        "{said}"
    );

    // The last handle going releases it.
    let clone = store.clone();
    drop(store);
    assert!(matches!(
        Store::open(&config),
        Err(StoreError::Locked { .. })
    ));
    drop(clone);
    open(&config);
}

#[test]
fn a_full_queue_refuses_at_once_and_everything_taken_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        write_queue: 4,
        ..StoreConfig::new(dir.path())
    };
    let store = open_with(&config, &["bob"]);
    let mut taken = Vec::new();
    let mut refused = 0;
    for id in 1..=2_000 {
        match store.store_message(message("bob", id)) {
            Ok(pending) => taken.push((id, pending)),
            Err(StoreError::Busy) => refused += 1,
            Err(error) => panic!("{error}"),
        }
    }
    assert!(
        refused > 0,
        "2,000 writes in a tight loop never filled a queue of 4"
    );
    let stored: Vec<u64> = taken
        .into_iter()
        .map(|(id, pending)| {
            assert_eq!(pending.wait().unwrap(), StoreOutcome::Stored);
            id
        })
        .collect();
    assert_eq!(ids(&store, "bob"), stored);
}

#[test]
fn writers_on_many_threads_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&StoreConfig::new(dir.path()), &["bob"]);
    let threads: Vec<_> = (0..8_u64)
        .map(|thread| {
            let store = store.clone();
            thread::spawn(move || {
                for n in 0..50 {
                    let id = 1 + thread + 8 * n;
                    assert_eq!(store_one(&store, message("bob", id)), StoreOutcome::Stored);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(ids(&store, "bob"), (1..=400).collect::<Vec<_>>());
}

#[test]
fn numbers_past_sqlite_integers_are_refused_at_hand_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&StoreConfig::new(dir.path()));
    let past = |id, ts_ms| chinwag_store::StoredMessage {
        id,
        ts_ms,
        ..message("bob", 1)
    };
    assert!(matches!(
        store.store_message(past(u64::MAX, T0)),
        Err(StoreError::OutOfRange("message id"))
    ));
    assert!(matches!(
        store.store_messages(vec![past(1, T0), past(2, 1 << 63)]),
        Err(StoreError::OutOfRange("timestamp"))
    ));
}

#[tokio::test]
async fn answers_are_futures() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&StoreConfig::new(dir.path()));
    store
        .create_account(chinwag_store::NewAccount {
            nick: "bob".into(),
            password_hash: HASH.into(),
            created_ms: T0,
        })
        .unwrap()
        .await
        .unwrap();
    let stored = store.store_message(message("bob", 1)).unwrap().await;
    assert_eq!(stored.unwrap(), StoreOutcome::Stored);
    let mailbox = store.mailbox("bob").unwrap().await.unwrap();
    assert_eq!(mailbox.messages, [message("bob", 1)]);
    // The last handle may be dropped inside a runtime: it waits for the
    // threads, which have nothing left to do.
    drop(store);
}

#[test]
fn the_tables_read_plainly_and_a_backup_opens_as_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path().join("live"));
    let store = open_with(&config, &["Bob"]);
    store_one(&store, message_with("bob", 7, "hello"));
    let backup_dir = dir.path().join("backup");
    std::fs::create_dir(&backup_dir).unwrap();
    let backup = StoreConfig::new(&backup_dir);
    store.backup_into(backup.db_path()).unwrap().wait().unwrap();

    // What `sqlite3 chinwag-data/chinwag.db` shows, with the store running.
    let conn = rusqlite::Connection::open(config.db_path()).unwrap();
    let row: (String, i64, String, String, String) = conn
        .query_row(
            "SELECT recipient, id, sender, to_names, text FROM mailbox",
            [],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "bob".into(),
            7,
            "sender2".into(),
            "bob cc1".into(),
            "hello".into()
        )
    );
    let nick: String = conn
        .query_row("SELECT nick FROM accounts", [], |row| row.get(0))
        .unwrap();
    assert_eq!(nick, "Bob");

    let copy = open(&backup);
    assert_eq!(
        copy.mailbox("bob").unwrap().wait().unwrap().messages,
        [message_with("Bob", 7, "hello")]
    );
}

/// An account's counts agree with its mailbox after every kind of change:
/// stores (a batch with repeats, a duplicate id, a refusal at the quota in
/// mid-batch), confirmations and expiry.
#[test]
fn the_mailbox_counts_follow_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        mailbox_max_messages: 4,
        ..StoreConfig::new(dir.path())
    };
    let store = open_with(&config, &["bob", "carol"]);
    let check = |who: &str| {
        let mailbox = store.mailbox(who).unwrap().wait().unwrap();
        let account = store.account(who).unwrap().wait().unwrap().unwrap();
        let bytes: u64 = mailbox
            .messages
            .iter()
            .map(chinwag_store::StoredMessage::stored_bytes)
            .sum();
        assert_eq!(
            account.mailbox_count,
            mailbox.messages.len() as u64,
            "{who}"
        );
        assert_eq!(account.mailbox_bytes, bytes, "{who}");
    };
    let batch = vec![
        message("bob", 1),
        message("carol", 2),
        message("bob", 3),
        message("bob", 3),
        message("bob", 4),
        message("bob", 5),
        message("bob", 6),
    ];
    let outcomes = store.store_messages(batch).unwrap().wait().unwrap();
    assert_eq!(
        outcomes,
        [
            StoreOutcome::Stored,
            StoreOutcome::Stored,
            StoreOutcome::Stored,
            StoreOutcome::Stored,
            StoreOutcome::Stored,
            StoreOutcome::Stored,
            StoreOutcome::MailboxFull,
        ]
    );
    check("bob");
    check("carol");
    assert_eq!(
        store
            .confirm("bob", vec![1, 3, 99], 1)
            .unwrap()
            .wait()
            .unwrap()
            .removed,
        2
    );
    check("bob");
    let old = chinwag_store::StoredMessage {
        ts_ms: T0 - 40 * 24 * 60 * 60 * 1000,
        ..message("carol", 7)
    };
    assert_eq!(store_one(&store, old), StoreOutcome::Stored);
    store.expire(T0, config.max_age).unwrap().wait().unwrap();
    check("carol");
    assert_eq!(ids(&store, "carol"), [2]);
}

/// Writes that never pause still let the log start over: checkpoints run
/// beside the writer, and past 16 MiB the writer checkpoints
/// itself, so `chinwag.db-wal` stays near that however much is written.
#[test]
fn the_log_stays_bounded_under_writes_that_never_pause() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        mailbox_max_messages: u64::MAX,
        mailbox_max_bytes: u64::MAX,
        ..StoreConfig::new(dir.path())
    };
    let store = open_with(&config, &["bob"]);
    let text = "w".repeat(4_000);
    // 48 MB in all, 64 messages always queued.
    let mut in_flight = std::collections::VecDeque::new();
    for id in 1..=12_000 {
        in_flight.push_back(store.store_message(message_with("bob", id, &text)).unwrap());
        if in_flight.len() == 64 {
            let answer = in_flight.pop_front().unwrap().wait();
            assert_eq!(answer.unwrap(), StoreOutcome::Stored);
        }
    }
    for pending in in_flight {
        assert_eq!(pending.wait().unwrap(), StoreOutcome::Stored);
    }
    let log = std::fs::metadata(dir.path().join("chinwag.db-wal"))
        .unwrap()
        .len();
    assert!(log < 24 << 20, "the log grew to {log} bytes");
    let bob = store.account("bob").unwrap().wait().unwrap().unwrap();
    assert_eq!(bob.mailbox_count, 12_000);
}

/// Receipts for a sender who is offline wait for its next login: kept
/// across a reopen, taken once, in order; none for a name with no account.
#[test]
fn receipts_kept_for_an_offline_sender_are_taken_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    let receipt = |owner: &str, message_id| chinwag_store::KeptReceipt {
        owner: owner.to_owned(),
        message_id,
        recipient: "bob".to_owned(),
        received_ms: T0 + message_id,
    };
    {
        let store = open_with(&config, &["Alice", "bob"]);
        store
            .keep_receipts(vec![
                receipt("ALICE", 3),
                receipt("nobody", 4),
                receipt("alice", 5),
            ])
            .unwrap()
            .wait()
            .unwrap();
    }
    let store = open(&config);
    let taken = store.take_receipts("alice").unwrap().wait().unwrap();
    assert_eq!(
        taken
            .iter()
            .map(|r| (r.message_id, r.received_ms))
            .collect::<Vec<_>>(),
        [(3, T0 + 3), (5, T0 + 5)]
    );
    assert!(
        store
            .take_receipts("alice")
            .unwrap()
            .wait()
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .take_receipts("nobody")
            .unwrap()
            .wait()
            .unwrap()
            .is_empty()
    );
}

/// Receipts a reliable session has not confirmed stay kept until it
/// confirms each one by message and recipient: read without being taken,
/// forgotten one by one, found again after a reopen (the index is rebuilt
/// from the table), and gone with their owner's account.
#[test]
fn kept_receipts_are_forgotten_one_by_one_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    let receipt = |message_id, recipient: &str| chinwag_store::KeptReceipt {
        owner: "amy".to_owned(),
        message_id,
        recipient: recipient.to_owned(),
        received_ms: T0 + message_id,
    };
    let kept = |store: &Store| -> Vec<(u64, String)> {
        let kept = store.kept_receipts("Amy").unwrap().wait().unwrap();
        kept.into_iter()
            .map(|r| (r.message_id, r.recipient))
            .collect()
    };
    let forget = |store: &Store, keys: &[(u64, &str)]| {
        let keys = keys
            .iter()
            .map(|(id, who)| (*id, (*who).to_owned()))
            .collect();
        store
            .forget_receipts(vec![("AMY".to_owned(), keys)])
            .unwrap()
            .wait()
            .unwrap();
    };
    {
        let store = open_with(&config, &["amy", "bob", "carol"]);
        store
            .keep_receipts(vec![
                receipt(3, "bob"),
                receipt(3, "carol"),
                receipt(5, "bob"),
            ])
            .unwrap()
            .wait()
            .unwrap();
        forget(&store, &[(3, "bob"), (5, "carol"), (9, "bob")]);
        assert_eq!(kept(&store), [(3, "carol".into()), (5, "bob".into())]);
        // Reading leaves them kept.
        assert_eq!(kept(&store).len(), 2);
    }
    let store = open(&config);
    assert_eq!(kept(&store), [(3, "carol".into()), (5, "bob".into())]);
    forget(&store, &[(3, "carol")]);
    assert_eq!(kept(&store), [(5, "bob".into())]);
    store.delete_account("amy").unwrap().wait().unwrap();
    let rows: i64 = rusqlite::Connection::open(dir.path().join("chinwag.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM receipts", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}

/// Deleting an account takes what it sent with it: a new account of the
/// same name, before and after a reopen, reads none of the old records
/// (those past the window stay on disk until the sweep, ignored), only
/// its own.
#[test]
fn a_deleted_accounts_sent_records_are_not_a_new_accounts_of_its_name() {
    use chinwag_store::{NewAccount, SENT_WINDOW, SentRecord};
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    let record = |message_id: u64, ts_ms: u64| SentRecord {
        sender: "alice".to_owned(),
        client_id: message_id,
        message_id,
        ts_ms,
        delivered: 1,
        statuses: Vec::new(),
    };
    let later = T0 + 1_000_000;
    {
        let store = open_with(&config, &["alice"]);
        let old: Vec<_> = (1..=SENT_WINDOW as u64 + 5)
            .map(|id| record(id, T0 + id))
            .collect();
        store
            .store_routed(Routed::of(&[], &old))
            .unwrap()
            .wait()
            .unwrap();
        store.delete_account("alice").unwrap().wait().unwrap();
        let again = NewAccount {
            nick: "Alice".to_owned(),
            password_hash: support::HASH.to_owned(),
            created_ms: later,
        };
        store.create_account(again).unwrap().wait().unwrap();
        assert!(store.sent("alice").unwrap().wait().unwrap().is_empty());
    }
    let store = open(&config);
    assert!(store.sent("alice").unwrap().wait().unwrap().is_empty());
    let new = record(5_000, later + 1);
    (store.store_routed(Routed::of(&[], std::slice::from_ref(&new))))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(store.sent("alice").unwrap().wait().unwrap(), [new]);
}

/// A confirmed message whose sender asked for a receipt, and has an
/// account, keeps that receipt for the sender (a guest's is not kept).
/// The message's row goes at once; the receipt is in the commit's batch of
/// the receipt log (one row of `receipt_batches`): read back, and forgotten
/// once the sender confirms it. Written to `receipts` when the sweep runs
/// (which does not count the message as expired) or the store closes, so a
/// reopened store reads it and does not deliver the message again.
#[test]
fn a_receipt_kept_at_a_confirmation_waits_for_its_sender_then_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // The receipt log's batches as rows of SQLite, which it counts.
    let config = StoreConfig {
        batch_log: false,
        ..StoreConfig::new(dir.path())
    };
    let from = |sender: &str, id, receipt| StoredMessage {
        sender: sender.to_owned(),
        receipt,
        ..message("bob", id)
    };
    let kept = |store: &Store| -> Vec<(u64, String, u64)> {
        let kept = store.kept_receipts("amy").unwrap().wait().unwrap();
        kept.into_iter()
            .map(|r| (r.message_id, r.recipient, r.received_ms))
            .collect()
    };
    let rows = |table: &str| -> i64 {
        rusqlite::Connection::open(dir.path().join("chinwag.db"))
            .unwrap()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap()
    };
    let by_bob = |id| (id, "Bob".to_owned(), T0 + 100);
    {
        let store = open_with(&config, &["amy", "Bob"]);
        let messages = vec![
            from("Amy", 1, true),
            from("Amy", 2, false),
            from("Amy", 3, true),
            from("guest", 4, true),
        ];
        store.store_messages(messages).unwrap().wait().unwrap();
        let confirmed = store
            .confirm("Bob", vec![1, 2, 3, 4], T0 + 100)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(confirmed.removed, 4);
        assert_eq!(confirmed.kept, [(1, "amy".into()), (3, "amy".into())]);
        assert_eq!(confirmed.receipts, [(4, "guest".into())]);
        assert!(ids(&store, "bob").is_empty());
        assert_eq!(kept(&store), [by_bob(1), by_bob(3)]);
        let all = || (rows("mailbox"), rows("receipts"), rows("receipt_batches"));
        // The messages gone, their receipts in one batch.
        assert_eq!(all(), (0, 0, 1));
        let forget = vec![("amy".to_owned(), vec![(1, "Bob".to_owned())])];
        store.forget_receipts(forget).unwrap().wait().unwrap();
        assert_eq!(kept(&store), [by_bob(3)]);
        assert_eq!(all(), (0, 0, 1));
        // The sweep settles the batch first (the receipt still owed
        // becomes a row), and counts nothing confirmed as expired.
        let far = T0 + 400 * 24 * 60 * 60 * 1000;
        store.expire(far, config.max_age).unwrap().wait().unwrap();
        assert_eq!(all(), (0, 1, 0));
        assert_eq!(store.mailbox("bob").unwrap().wait().unwrap().expired, 0);
        // In a batch when the store closes.
        store
            .store_messages(vec![from("Amy", 5, true)])
            .unwrap()
            .wait()
            .unwrap();
        store
            .confirm("Bob", vec![5], T0 + 100)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(all(), (0, 1, 1));
    }
    assert_eq!((rows("mailbox"), rows("receipts")), (0, 2));
    assert_eq!(rows("receipt_batches"), 0);
    let store = open(&config);
    assert_eq!(kept(&store), [by_bob(3), by_bob(5)]);
    assert!(ids(&store, "bob").is_empty());
}

/// A batched receipt whose owner never confirms it is written as a row
/// once its batch has waited the grace (2 s) even if the store is asked
/// nothing more: by a commit of its own, not at the next request's, which
/// may be hours away. The test waits, with a deadline, for the rows on
/// disk to change.
#[test]
fn a_batched_receipt_is_written_when_due_though_nothing_else_comes() {
    let dir = tempfile::tempdir().unwrap();
    // The receipt log's batches as rows of SQLite, which it counts.
    let config = StoreConfig {
        batch_log: false,
        ..StoreConfig::new(dir.path())
    };
    let rows = || -> (i64, i64) {
        let conn = rusqlite::Connection::open(dir.path().join("chinwag.db")).unwrap();
        let count = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .unwrap()
        };
        (count("receipt_batches"), count("receipts"))
    };
    let store = open_with(&config, &["amy", "bob"]);
    let message = StoredMessage {
        sender: "amy".to_owned(),
        receipt: true,
        ..message("bob", 1)
    };
    store.store_messages(vec![message]).unwrap().wait().unwrap();
    let confirmed = store.confirm("bob", vec![1], T0).unwrap().wait().unwrap();
    assert_eq!(confirmed.kept, [(1, "amy".into())]);
    // In its batch, then written as a row (the message's row went at
    // once).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = rows();
    while seen != (0, 1) {
        assert_eq!(
            seen,
            (1, 0),
            "the receipt in its batch or in a row, never both or neither"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the batched receipt was not written: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        seen = rows();
    }
    let kept = store.kept_receipts("amy").unwrap().wait().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].message_id, kept[0].recipient.as_str()), (1, "bob"));
}

/// A message's number for its recipient is stored with it, read back with
/// the mailbox, and raises the account's last number, which stays when the
/// message is confirmed and gone, across a reopening: a number a client saw
/// is never handed out again.
#[test]
fn numbers_are_kept_with_messages_and_the_last_outlives_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    {
        let store = open_with(&config, &["bob"]);
        let numbered = |id, number| StoredMessage {
            number,
            ..message("bob", id)
        };
        let outcomes = store
            .store_messages(vec![numbered(10, 7), numbered(11, 8)])
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(outcomes, [StoreOutcome::Stored, StoreOutcome::Stored]);
        let mailbox = store.mailbox("bob").unwrap().wait().unwrap();
        let numbers: Vec<u64> = mailbox.messages.iter().map(|m| m.number).collect();
        assert_eq!(numbers, [7, 8]);
        assert_eq!(
            store
                .confirm("bob", vec![10, 11], 1)
                .unwrap()
                .wait()
                .unwrap()
                .removed,
            2
        );
        // An unnumbered message leaves the last number as it was.
        store
            .store_message(message("bob", 12))
            .unwrap()
            .wait()
            .unwrap();
    }
    let store = open(&config);
    let bob = store.account("bob").unwrap().wait().unwrap().unwrap();
    assert_eq!(bob.last_number, 8);
    let mailbox = store.mailbox("bob").unwrap().wait().unwrap();
    assert_eq!(mailbox.messages.len(), 1);
    assert_eq!(mailbox.messages[0].number, 0);

    // Still stored: the mailbox's highest is the last, in the list of
    // accounts too. Dropped by the age limit: the account keeps it.
    let numbered = StoredMessage {
        number: 9,
        ..message("bob", 13)
    };
    store.store_message(numbered).unwrap().wait().unwrap();
    let listed = store.accounts().unwrap().wait().unwrap();
    assert_eq!(listed[0].last_number, 9);
    let far_future = T0 + 365 * 24 * 3_600_000;
    store
        .expire(far_future, Duration::from_secs(1))
        .unwrap()
        .wait()
        .unwrap();
    assert!(
        store
            .mailbox("bob")
            .unwrap()
            .wait()
            .unwrap()
            .messages
            .is_empty()
    );
    drop(store);
    let store = open(&config);
    assert_eq!(store.accounts().unwrap().wait().unwrap()[0].last_number, 9);
}

/// What became of a reliable session's messages: recorded in the commit
/// that stores their copies (or alone), read back newest window first in
/// order, kept across a reopen, swept after a day, gone with the account.
#[test]
fn sent_records_are_kept_with_their_copies_and_read_back_per_sender() {
    use chinwag_store::{SENT_MAX_AGE, SENT_WINDOW, SentRecord};
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    let record = |client_id: u64, message_id: u64| SentRecord {
        sender: "Alice".to_owned(),
        client_id,
        message_id,
        ts_ms: T0 + message_id,
        delivered: 1,
        statuses: vec![("bob".to_owned(), 31), ("carol".to_owned(), 0)],
    };
    {
        let store = open_with(&config, &["alice", "bob", "carol"]);
        // With a copy for an offline recipient, and alone.
        let outcomes = store
            .store_routed(Routed::of(&[message("bob", 1)], &[record(100, 1)]))
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(outcomes, [StoreOutcome::Stored]);
        let batch: Vec<_> = (2..=SENT_WINDOW as u64 + 5)
            .map(|id| record(100 + id, id))
            .collect();
        store
            .store_routed(Routed::of(&[], &batch))
            .unwrap()
            .wait()
            .unwrap();
        // Recorded again (a resend that raced): the first record stands.
        let mut again = record(100, 1);
        again.delivered = 9;
        store
            .store_routed(Routed::of(&[], &[again]))
            .unwrap()
            .wait()
            .unwrap();
    }
    let store = open(&config);
    // Any case finds them (the sender reads back as asked for).
    assert_eq!(
        store.sent("ALICE").unwrap().wait().unwrap().len(),
        SENT_WINDOW
    );
    let sent = store.sent("Alice").unwrap().wait().unwrap();
    assert_eq!(sent.len(), SENT_WINDOW);
    // The newest window, oldest first, every field as written.
    assert_eq!(sent[0], record(106, 6));
    assert_eq!(
        sent[SENT_WINDOW - 1],
        record(105 + SENT_WINDOW as u64, SENT_WINDOW as u64 + 5)
    );
    assert!(store.sent("bob").unwrap().wait().unwrap().is_empty());

    // A day after, the sweep takes them, a batch of them once its newest
    // is a day old (none is swept early).
    let day = u64::try_from(SENT_MAX_AGE.as_millis()).unwrap();
    let sweep = |now: u64| {
        (store.expire(now, Duration::from_secs(365 * 24 * 3600)))
            .unwrap()
            .wait()
            .unwrap();
        store.sent("alice").unwrap().wait().unwrap()
    };
    let newest = SENT_WINDOW as u64 + 5;
    assert_eq!(sweep(T0 + 500 + day).len(), SENT_WINDOW);
    assert_eq!(sweep(T0 + newest + day).len(), SENT_WINDOW);
    assert!(sweep(T0 + newest + 1 + day).is_empty());
    // And the account's deletion takes the rest.
    (store.store_routed(Routed::of(&[], &[record(9_000, 9_000)])))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(store.sent("alice").unwrap().wait().unwrap().len(), 1);
    store.delete_account("alice").unwrap().wait().unwrap();
    assert!(store.sent("alice").unwrap().wait().unwrap().is_empty());
}
