//! The journal (schema version 12): copies held for reliable sessions that
//! are online, one row per batch, on real database files. What reaches
//! `mailbox` as rows of their own is only what was not confirmed in time;
//! a crash with batches unsettled delivers their unconfirmed copies again.
//!
//! These are the batches as rows of SQLite (`StoreConfig::batch_log` off),
//! whose rows the tests count; `batch_log.rs` has them in the batch log.

mod support;

use std::path::Path;

use chinwag_store::{
    AccountStore, KeptReceipt, MailStore, Routed, Store, StoreConfig, StoreOutcome, StoredMessage,
};
use support::{T0, mailbox, numbered, open, open_with, rows};

/// The store's defaults in `dir`, with the batches as rows of SQLite.
fn tables(dir: &Path) -> StoreConfig {
    StoreConfig {
        batch_log: false,
        ..StoreConfig::new(dir)
    }
}

fn store_routed(store: &Store, routed: Routed) -> Vec<StoreOutcome> {
    store.store_routed(routed).unwrap().wait().unwrap()
}

#[test]
fn held_copies_are_one_row_and_only_the_unconfirmed_become_mailbox_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = tables(dir.path());
    let bob: Vec<_> = (1..=4).map(|id| numbered("Bob", id, id)).collect();
    {
        let store = open_with(&config, &["Bob", "carol"]);
        let mut routed = Routed::new();
        for copy in &bob {
            routed.copy_held(copy);
        }
        routed.copy_held(&numbered("carol", 5, 1));
        routed.copy(&numbered("carol", 6, 2));
        assert_eq!(
            store_routed(&store, routed),
            [StoreOutcome::Stored; 6],
            "held copies are stored as any"
        );
        // One journal row for the five held, a row for the other.
        assert_eq!(
            (rows(dir.path(), "journal"), rows(dir.path(), "mailbox")),
            (1, 1)
        );
        // A login reads the held ones from memory, with every field.
        assert_eq!(mailbox(&store, "bob"), bob);
        let carol: Vec<u64> = mailbox(&store, "carol").iter().map(|m| m.id).collect();
        assert_eq!(carol, [5, 6]);
        // They count against the quota like any.
        let account = store.account("bob").unwrap().wait().unwrap().unwrap();
        assert_eq!(account.mailbox_count, 4);
        // Confirmed in time: nothing is written for them.
        let confirmed = store
            .confirm("bob", vec![1, 2], T0)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(confirmed.removed, 2);
        assert_eq!(
            (rows(dir.path(), "journal"), rows(dir.path(), "mailbox")),
            (1, 1)
        );
        let ids: Vec<u64> = mailbox(&store, "bob").iter().map(|m| m.id).collect();
        assert_eq!(ids, [3, 4]);
    }
    // Closing settles the batch: the three unconfirmed become rows.
    assert_eq!(
        (rows(dir.path(), "journal"), rows(dir.path(), "mailbox")),
        (0, 4)
    );
    let store = open(&config);
    assert_eq!(mailbox(&store, "Bob"), bob[2..]);
    let carol: Vec<u64> = mailbox(&store, "carol").iter().map(|m| m.id).collect();
    assert_eq!(carol, [5, 6]);
    // The confirmed numbers are never given again.
    let account = store.account("bob").unwrap().wait().unwrap().unwrap();
    assert_eq!(account.last_number, 4);
}

/// The journal's row is on disk from its commit: a crash (here, a copy of
/// the files taken while the store is open and idle, which is what a crash
/// leaves) delivers every copy in it again but those confirmed, which the
/// release log named in the commit of their confirmation; nothing is lost.
#[test]
fn a_crash_with_a_batch_unsettled_delivers_its_unconfirmed_copies_again() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let config = tables(dir.path());
    let bob: Vec<_> = (1..=3).map(|id| numbered("bob", id, id)).collect();
    {
        let store = open_with(&config, &["bob"]);
        let mut routed = Routed::new();
        for copy in &bob {
            routed.copy_held(copy);
        }
        store_routed(&store, routed);
        store.confirm("bob", vec![1], T0).unwrap().wait().unwrap();
        for file in ["chinwag.db", "chinwag.db-wal"] {
            std::fs::copy(dir.path().join(file), crashed.path().join(file)).unwrap();
        }
    }
    assert_eq!(
        (
            rows(crashed.path(), "journal"),
            rows(crashed.path(), "releases")
        ),
        (1, 1)
    );
    let store = open(&tables(crashed.path()));
    assert_eq!(mailbox(&store, "bob"), bob[1..]);
    drop(store);
    assert_eq!(
        (
            rows(crashed.path(), "journal"),
            rows(crashed.path(), "mailbox"),
            rows(crashed.path(), "releases")
        ),
        (0, 2, 0)
    );
}

/// A held copy confirmed, its sender owed a receipt: the copy is released
/// from its batch at once, and the receipt is kept apart, in the receipt
/// log (`receipt_batches`); settled as the store closes, it is a row of
/// `receipts`, and comes to its owner after a reopen.
#[test]
fn a_receipt_for_a_held_copy_is_kept_apart_and_written_when_settled() {
    let dir = tempfile::tempdir().unwrap();
    let config = tables(dir.path());
    let tables = |dir: &Path| {
        (
            rows(dir, "journal"),
            rows(dir, "mailbox"),
            rows(dir, "receipts"),
            rows(dir, "receipt_batches"),
        )
    };
    {
        let store = open_with(&config, &["amy", "bob"]);
        let mut routed = Routed::new();
        routed.copy_held(&StoredMessage {
            sender: "Amy".to_owned(),
            receipt: true,
            ..numbered("bob", 1, 1)
        });
        store_routed(&store, routed);
        let confirmed = store
            .confirm("bob", vec![1], T0 + 5)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(confirmed.kept, [(1, "amy".into())]);
        assert_eq!(tables(dir.path()), (1, 0, 0, 1));
        // The next commit deletes the spent journal batch.
        store.set_last_seen("bob", T0).unwrap().wait().unwrap();
        assert_eq!(tables(dir.path()), (0, 0, 0, 1));
    }
    assert_eq!(tables(dir.path()), (0, 0, 1, 0));
    let store = open(&config);
    let kept = store.kept_receipts("amy").unwrap().wait().unwrap();
    let kept: Vec<_> = (kept.iter())
        .map(|r| (r.message_id, r.recipient.as_str(), r.received_ms))
        .collect();
    assert_eq!(kept, [(1, "bob", T0 + 5)]);
}

/// Held copies released (`release_all`), their senders told by the hub:
/// nothing of the receipts is kept, but for those named to keep (told and
/// not confirmed in time), kept in the same commit as the releases; the
/// journal batch, spent, goes at the next commit.
#[test]
fn held_copies_released_keep_only_the_receipts_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = tables(dir.path());
    {
        let store = open_with(&config, &["amy", "bob"]);
        let mut routed = Routed::new();
        for id in 1..=3 {
            routed.copy_held(&StoredMessage {
                sender: "Amy".to_owned(),
                receipt: true,
                ..numbered("bob", id, id)
            });
        }
        store_routed(&store, routed);
        let late = KeptReceipt {
            owner: "amy".to_owned(),
            message_id: 3,
            recipient: "bob".to_owned(),
            received_ms: T0 + 7,
        };
        store
            .release_all(vec![("Bob".to_owned(), vec![1, 2, 3, 99])], vec![late])
            .unwrap()
            .wait()
            .unwrap();
        assert!(mailbox(&store, "bob").is_empty(), "every copy released");
        let kept = store.kept_receipts("amy").unwrap().wait().unwrap();
        let kept: Vec<_> = (kept.iter())
            .map(|r| (r.message_id, r.recipient.as_str(), r.received_ms))
            .collect();
        assert_eq!(kept, [(3, "bob", T0 + 7)], "only the one named");
        store.set_last_seen("bob", T0).unwrap().wait().unwrap();
        assert_eq!(rows(dir.path(), "journal"), 0, "the spent batch is gone");
    }
    // And so after a reopen: the release is on disk.
    let store = open(&config);
    assert!(mailbox(&store, "bob").is_empty());
    assert_eq!(store.kept_receipts("amy").unwrap().wait().unwrap().len(), 1);
}

/// The receipt log's row is on disk from its commit: a crash (a copy of
/// the files taken while the store is open) keeps every receipt in it.
#[test]
fn a_crash_with_receipts_in_their_batch_keeps_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let config = tables(dir.path());
    {
        let store = open_with(&config, &["amy", "bob"]);
        let mut routed = Routed::new();
        for id in 1..=3 {
            routed.copy_held(&StoredMessage {
                sender: "amy".to_owned(),
                receipt: true,
                ..numbered("bob", id, id)
            });
        }
        store_routed(&store, routed);
        store
            .confirm("bob", vec![1, 2], T0)
            .unwrap()
            .wait()
            .unwrap();
        // Amy confirms one of the receipts before the crash.
        let forget = vec![("amy".to_owned(), vec![(1, "bob".to_owned())])];
        store.forget_receipts(forget).unwrap().wait().unwrap();
        for file in ["chinwag.db", "chinwag.db-wal"] {
            std::fs::copy(dir.path().join(file), crashed.path().join(file)).unwrap();
        }
    }
    assert_eq!(rows(crashed.path(), "receipt_batches"), 1);
    let store = open(&tables(crashed.path()));
    // The journal's batch was not settled: its unconfirmed copy is
    // delivered again (`a_crash_with_a_batch_unsettled_...` above).
    let ids: Vec<u64> = mailbox(&store, "bob").iter().map(|m| m.id).collect();
    assert_eq!(ids, [3]);
    // The receipt Amy did not confirm is kept; the one she did is not
    // sent again: the release log named it.
    let kept = store.kept_receipts("amy").unwrap().wait().unwrap();
    let kept: Vec<u64> = kept.iter().map(|r| r.message_id).collect();
    assert_eq!(kept, [2]);
    drop(store);
    assert_eq!(rows(crashed.path(), "receipt_batches"), 0);
}

/// Deleting an account settles the journal first, in its transaction: its
/// held copies go with it, and the others' become rows.
#[test]
fn deleting_an_account_takes_its_held_copies_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let config = tables(dir.path());
    let store = open_with(&config, &["bob", "carol"]);
    let mut routed = Routed::new();
    routed.copy_held(&numbered("bob", 1, 1));
    routed.copy_held(&numbered("carol", 1, 1));
    store_routed(&store, routed);
    store.delete_account("bob").unwrap().wait().unwrap();
    assert_eq!(
        (rows(dir.path(), "journal"), rows(dir.path(), "mailbox")),
        (0, 1)
    );
    let carol: Vec<u64> = mailbox(&store, "carol").iter().map(|m| m.id).collect();
    assert_eq!(carol, [1]);
}

/// A batch none of whose copies is needed any more (confirmed) is deleted
/// by the next commit, without waiting for its time, and the release log's
/// rows naming it with it.
#[test]
fn a_batch_confirmed_whole_goes_with_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let config = tables(dir.path());
    let store = open_with(&config, &["bob"]);
    let mut routed = Routed::new();
    routed.copy_held(&numbered("bob", 1, 1));
    routed.copy_held(&numbered("bob", 2, 2));
    store_routed(&store, routed);
    store.confirm("bob", vec![1], T0).unwrap().wait().unwrap();
    store.set_last_seen("bob", T0).unwrap().wait().unwrap();
    assert_eq!(
        (rows(dir.path(), "journal"), rows(dir.path(), "releases")),
        (1, 1),
        "one copy still needed, one named confirmed"
    );
    store.confirm("bob", vec![2], T0).unwrap().wait().unwrap();
    store.set_last_seen("bob", T0).unwrap().wait().unwrap();
    // The release log's rows go with the last batch they name.
    assert_eq!(
        (
            rows(dir.path(), "journal"),
            rows(dir.path(), "mailbox"),
            rows(dir.path(), "releases")
        ),
        (0, 0, 0)
    );
}

/// Held copies on a full disk (the database held to a few pages): a batch
/// that cannot commit is answered `Failed` and leaves nothing behind, in
/// the journal's memory or the mailbox's counts; what was answered `Stored`
/// is read back, and once there is room again the batches are settled into
/// rows.
#[test]
fn held_copies_on_a_full_disk_fail_whole_and_settle_once_there_is_room() {
    use std::collections::BTreeSet;

    use chinwag_store::StoreError;

    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_db_bytes: Some(64 * 1024),
        ..tables(dir.path())
    };
    let text = "h".repeat(3_000);
    let held = |id: u64| StoredMessage {
        text: text.clone(),
        ..numbered("bob", id, id)
    };
    let mut stored = BTreeSet::new();
    let mut failed = BTreeSet::new();
    {
        let store = open_with(&config, &["bob"]);
        for id in 1..=1_000 {
            let mut routed = Routed::new();
            routed.copy_held(&held(id));
            match store.store_routed(routed).unwrap().wait() {
                Ok(outcomes) => {
                    assert_eq!(outcomes, [StoreOutcome::Stored]);
                    stored.insert(id);
                }
                Err(StoreError::Failed(_)) => {
                    failed.insert(id);
                    if failed.len() == 5 {
                        break;
                    }
                }
                other => panic!("message {id}: {other:?}"),
            }
        }
        assert!(
            !stored.is_empty() && failed.len() == 5,
            "the ceiling never bit"
        );
        let read: BTreeSet<u64> = mailbox(&store, "bob").iter().map(|m| m.id).collect();
        assert_eq!(read, stored, "what it holds is what it said it stored");
        let bob = store.account("bob").unwrap().wait().unwrap().unwrap();
        assert_eq!(bob.mailbox_count, stored.len() as u64);
        // Room again: a sweep settles every batch first, into rows.
        store.set_max_db_bytes(None).unwrap().wait().unwrap();
        let year = std::time::Duration::from_secs(365 * 24 * 60 * 60);
        store.expire(T0, year).unwrap().wait().unwrap();
        assert_eq!(
            (rows(dir.path(), "journal"), rows(dir.path(), "mailbox")),
            (0, i64::try_from(stored.len()).unwrap())
        );
    }
    assert_eq!(rows(dir.path(), "journal"), 0);
    let store = open(&tables(dir.path()));
    let read: BTreeSet<u64> = mailbox(&store, "bob").iter().map(|m| m.id).collect();
    assert_eq!(read, stored);
    assert!(read.is_disjoint(&failed));
}

/// Receipts on a full disk: a confirmation whose batch of receipts cannot
/// be written fails whole. The copies are still held (read back, counted),
/// no receipt is kept, and once there is room the same confirmation keeps
/// every receipt and takes every copy.
#[test]
fn a_confirmation_whose_receipts_cannot_be_written_fails_whole() {
    use chinwag_store::StoreError;

    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_db_bytes: Some(1024 * 1024),
        ..tables(dir.path())
    };
    let store = open_with(&config, &["amy", "bob"]);
    let held = |id: u64| StoredMessage {
        sender: "amy".to_owned(),
        receipt: true,
        text: "r".repeat(200),
        ..numbered("bob", id, id)
    };
    // Held copies in batches of 50 until the ceiling bites.
    let mut stored = Vec::new();
    'fill: for first in (1..).step_by(50).take(1_000) {
        let mut routed = Routed::new();
        for id in first..first + 50 {
            routed.copy_held(&held(id));
        }
        match store.store_routed(routed).unwrap().wait() {
            Ok(_) => stored.extend(first..first + 50),
            Err(StoreError::Failed(_)) => break 'fill,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(
        stored.len() >= 1_000,
        "the ceiling bit too soon: {}",
        stored.len()
    );
    // Every receipt at once: a batch of tens of kilobytes, with no room.
    let confirm = || store.confirm("bob", stored.clone(), T0).unwrap().wait();
    assert!(
        matches!(confirm(), Err(StoreError::Failed(_))),
        "the receipts' batch found room"
    );
    let read: Vec<u64> = mailbox(&store, "bob").iter().map(|m| m.id).collect();
    assert_eq!(read, stored, "the copies are still held");
    let bob = store.account("bob").unwrap().wait().unwrap().unwrap();
    assert_eq!(bob.mailbox_count, stored.len() as u64);
    assert!(
        store
            .kept_receipts("amy")
            .unwrap()
            .wait()
            .unwrap()
            .is_empty()
    );
    // Room again.
    store.set_max_db_bytes(None).unwrap().wait().unwrap();
    let confirmed = confirm().unwrap();
    assert_eq!(confirmed.removed, stored.len() as u64);
    assert_eq!(confirmed.kept.len(), stored.len());
    let kept: Vec<u64> = (store.kept_receipts("amy").unwrap().wait().unwrap())
        .iter()
        .map(|r| r.message_id)
        .collect();
    assert_eq!(kept, stored);
    assert!(mailbox(&store, "bob").is_empty());
    drop(store);
    // Closed: the receipts are rows, the batches gone.
    assert_eq!(
        (
            rows(dir.path(), "receipts"),
            rows(dir.path(), "receipt_batches"),
            rows(dir.path(), "journal")
        ),
        (i64::try_from(stored.len()).unwrap(), 0, 0)
    );
}
