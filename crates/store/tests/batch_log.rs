//! The batch log (`StoreConfig::batch_log`, the default): the reliable
//! path's batches in a log of the store's own instead of rows of SQLite,
//! on real files. Nothing of them is a row until a copy goes unconfirmed
//! past its grace; a crash with batches in the log delivers their
//! unconfirmed copies again, and none whose confirmation committed.

mod support;

use std::path::Path;

use chinwag_store::{MailStore, Routed, Store, StoreConfig, StoreOutcome, StoredMessage};
use support::{T0, mailbox, numbered, open, open_with, rows};

/// The batch log's segment files in `dir`.
fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("batch-log")).map_or(0, Iterator::count)
}

fn hold(store: &Store, copies: &[StoredMessage]) {
    let mut routed = Routed::new();
    for copy in copies {
        routed.copy_held(copy);
    }
    let outcomes = store.store_routed(routed).unwrap().wait().unwrap();
    assert_eq!(outcomes, vec![StoreOutcome::Stored; copies.len()]);
}

#[test]
fn held_copies_are_in_the_batch_log_and_only_the_unconfirmed_become_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    assert!(config.batch_log, "the batch log is the default");
    let bob: Vec<_> = (1..=4).map(|id| numbered("bob", id, id)).collect();
    {
        let store = open_with(&config, &["bob"]);
        hold(&store, &bob);
        // Read at login from the writer's memory, like any stored copy.
        assert_eq!(mailbox(&store, "bob"), bob);
        store
            .confirm("bob", vec![1, 3], T0)
            .unwrap()
            .wait()
            .unwrap();
        // Nothing of them is a row of SQLite.
        assert_eq!(
            (rows(dir.path(), "journal"), rows(dir.path(), "mailbox")),
            (0, 0)
        );
        assert!(segments(dir.path()) >= 1, "no segment of the batch log");
    }
    // Closing settles the batch: the two unconfirmed copies are rows now.
    assert_eq!(rows(dir.path(), "mailbox"), 2);
    let store = open(&config);
    assert_eq!(mailbox(&store, "bob"), [bob[1].clone(), bob[3].clone()]);
}

/// A crash (the files taken while the store is open and idle, which is what
/// a crash leaves) delivers every copy of the log's batches again but those
/// whose confirmation committed, which the log's release entries name.
#[test]
fn a_crash_with_a_batch_in_the_log_delivers_its_unconfirmed_copies_again() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(dir.path());
    let bob: Vec<_> = (1..=3).map(|id| numbered("bob", id, id)).collect();
    let carol = numbered("carol", 4, 1);
    {
        let store = open_with(&config, &["bob", "carol"]);
        hold(&store, &bob);
        store.confirm("bob", vec![1], T0).unwrap().wait().unwrap();
        // An ordinary stored message beside them: a row of SQLite.
        let stored = store.store_message(carol.clone()).unwrap().wait().unwrap();
        assert_eq!(stored, StoreOutcome::Stored);
        copy_dir(dir.path(), crashed.path());
    }
    let store = open(&StoreConfig::new(crashed.path()));
    assert_eq!(mailbox(&store, "bob"), bob[1..]);
    assert_eq!(mailbox(&store, "carol"), [carol]);
    store.confirm("bob", vec![2], T0).unwrap().wait().unwrap();
    drop(store);
    // Handed over once: opening again delivers what is left, once.
    let store = open(&StoreConfig::new(crashed.path()));
    assert_eq!(mailbox(&store, "bob"), bob[2..]);
    assert_eq!(rows(crashed.path(), "journal"), 0);
}

/// A group whose frame reached the batch log but whose SQLite transaction
/// did not commit (the crash came between the two) is not recovered at
/// all: neither its held copies nor its rows. The crash is made by taking
/// the database's files before the group and the log's after it.
#[test]
fn a_group_whose_tables_did_not_commit_is_not_taken_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let bob: Vec<_> = (1..=2).map(|id| numbered("bob", id, id)).collect();
    let carol = numbered("carol", 3, 0);
    {
        let store = open_with(&StoreConfig::new(dir.path()), &["bob", "carol"]);
        // A first group, committed whole.
        hold(&store, &bob[..1]);
        for file in ["chinwag.db", "chinwag.db-wal"] {
            std::fs::copy(dir.path().join(file), crashed.path().join(file)).unwrap();
        }
        // A group with a held copy (the log) and a row (SQLite).
        let mut routed = Routed::new();
        routed.copy_held(&bob[1]);
        routed.copy(&carol);
        let outcomes = store.store_routed(routed).unwrap().wait().unwrap();
        assert_eq!(outcomes, [StoreOutcome::Stored; 2]);
        std::fs::create_dir_all(crashed.path().join("batch-log")).unwrap();
        copy_dir(
            &dir.path().join("batch-log"),
            &crashed.path().join("batch-log"),
        );
    }
    let store = open(&StoreConfig::new(crashed.path()));
    assert_eq!(mailbox(&store, "bob"), bob[..1]);
    assert!(mailbox(&store, "carol").is_empty());
}

/// A store without the batch log still hands over what a crash left in
/// one (it was on before).
#[test]
fn a_store_without_the_batch_log_recovers_one_a_crash_left() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let bob: Vec<_> = (1..=2).map(|id| numbered("bob", id, id)).collect();
    {
        let store = open_with(&StoreConfig::new(dir.path()), &["bob"]);
        hold(&store, &bob);
        copy_dir(dir.path(), crashed.path());
    }
    let tables = StoreConfig {
        batch_log: false,
        ..StoreConfig::new(crashed.path())
    };
    let store = open(&tables);
    assert_eq!(mailbox(&store, "bob"), bob);
}

/// Copies the data directory's files (the lock's too) as they are.
fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "lock" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
