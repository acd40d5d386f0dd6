//! A store that cannot write: the database is held to a few pages
//! (`PRAGMA max_page_count`, through `StoreConfig::max_db_bytes`), which
//! SQLite reports exactly as a full disk (`SQLITE_FULL`). Every write that
//! could not commit is answered `Failed`, never `Stored`; what was answered
//! `Stored` is all there after a reopen; and once the ceiling is raised the
//! same store stores again.

mod support;

use std::collections::BTreeSet;

use chinwag_store::{AccountStore, MailStore, StoreConfig, StoreError, StoreOutcome};
use support::{message_with, open, open_with};

/// About a tenth of a page: a few dozen fill the room left.
const TEXT_BYTES: usize = 400;

#[test]
fn a_full_store_fails_writes_never_claims_them_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        // A handful of pages past the empty schema's.
        max_db_bytes: Some(64 * 1024),
        ..StoreConfig::new(dir.path())
    };
    let text = "m".repeat(TEXT_BYTES);
    let mut stored = BTreeSet::new();
    let mut failed = BTreeSet::new();
    {
        let store = open_with(&config, &["bob"]);
        for id in 1..=1_000 {
            match store
                .store_message(message_with("bob", id, &text))
                .unwrap()
                .wait()
            {
                Ok(StoreOutcome::Stored) => assert!(stored.insert(id)),
                Err(StoreError::Failed(error)) => {
                    assert!(
                        error.to_string().contains("full"),
                        "not a full database: {error}"
                    );
                    failed.insert(id);
                    if failed.len() == 20 {
                        break;
                    }
                }
                other => panic!("message {id}: {other:?}"),
            }
        }
        assert!(
            !stored.is_empty() && failed.len() == 20,
            "the ceiling never bit"
        );
        // A batch that cannot commit fails whole; reads go on.
        let batch = (2_000..2_010)
            .map(|id| message_with("bob", id, &text))
            .collect();
        assert!(matches!(
            store.store_messages(batch).unwrap().wait(),
            Err(StoreError::Failed(_))
        ));
        let read = store.mailbox("bob").unwrap().wait().unwrap();
        let read: BTreeSet<u64> = read.messages.iter().map(|message| message.id).collect();
        assert_eq!(
            read, stored,
            "what the store holds is what it said it stored"
        );
        // The failed commits took nothing from the mailbox's counts either
        // (the index's changes were undone with each rolled-back group).
        let bob = store.account("bob").unwrap().wait().unwrap().unwrap();
        assert_eq!(bob.mailbox_count, stored.len() as u64);

        // Room again: the same store, still running, stores.
        let ceiling = store.set_max_db_bytes(None).unwrap().wait().unwrap();
        assert!(ceiling > 1 << 40);
        for id in 3_000..3_020 {
            let outcome = store
                .store_message(message_with("bob", id, &text))
                .unwrap()
                .wait()
                .unwrap();
            assert_eq!(outcome, StoreOutcome::Stored);
            stored.insert(id);
        }
        store.set_last_seen("bob", 1).unwrap().wait().unwrap();
    }
    // After a reopen without the ceiling: every Stored there, no Failed.
    let store = open(&StoreConfig::new(dir.path()));
    let read = store.mailbox("bob").unwrap().wait().unwrap();
    let read: BTreeSet<u64> = read.messages.iter().map(|message| message.id).collect();
    assert_eq!(read, stored);
    assert!(read.is_disjoint(&failed));
    assert!(read.iter().all(|id| !(2_000..2_010).contains(id)));
}

/// A group that fills the disk halfway through: the rows it wrote before
/// the failure are rolled back, and so is what the store had counted of
/// them, so the quota and the mailbox read stay true.
#[test]
fn a_batch_that_fills_the_disk_midway_counts_none_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let ceiling = 64 * 1024;
    let config = StoreConfig {
        max_db_bytes: Some(ceiling),
        ..StoreConfig::new(dir.path())
    };
    // About a page each, so that a few pages of room take a few of them.
    let big = "b".repeat(3_000);
    let store = open_with(&config, &["bob"]);
    let mut stored = 0_u64;
    for id in 1..=1_000 {
        match store
            .store_message(message_with("bob", id, &big))
            .unwrap()
            .wait()
        {
            Ok(StoreOutcome::Stored) => stored += 1,
            Err(StoreError::Failed(_)) => break,
            other => panic!("message {id}: {other:?}"),
        }
    }
    assert!(stored > 0, "nothing fitted under the ceiling");

    // Room for some of the next batch, not all of it.
    store
        .set_max_db_bytes(Some(ceiling + 4 * 4096))
        .unwrap()
        .wait()
        .unwrap();
    let batch = (2_000..2_010)
        .map(|id| message_with("bob", id, &big))
        .collect();
    assert!(matches!(
        store.store_messages(batch).unwrap().wait(),
        Err(StoreError::Failed(_))
    ));
    let bob = store.account("bob").unwrap().wait().unwrap().unwrap();
    assert_eq!(bob.mailbox_count, stored);
    let read = store.mailbox("bob").unwrap().wait().unwrap();
    assert_eq!(read.messages.len() as u64, stored);

    // Room again: the same ids store, each counted once.
    store.set_max_db_bytes(None).unwrap().wait().unwrap();
    let batch = (2_000..2_010)
        .map(|id| message_with("bob", id, &big))
        .collect();
    let outcomes = store.store_messages(batch).unwrap().wait().unwrap();
    assert!(
        outcomes
            .iter()
            .all(|outcome| *outcome == StoreOutcome::Stored)
    );
    let bob = store.account("bob").unwrap().wait().unwrap().unwrap();
    assert_eq!(bob.mailbox_count, stored + 10);
}
