//! What the store's test suites share: opening a store on a temporary
//! directory, accounts, and messages whose every field follows from their id.

#![allow(dead_code, unreachable_pub)] // each suite uses its own part of this

use std::path::Path;

use chinwag_store::{
    AccountStore, MailStore, NewAccount, Store, StoreConfig, StoreError, StoredMessage,
};

/// A password hash of the right shape; the store does not look inside.
pub const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

/// When the tests' messages were routed: 2023-11-14, in ms.
pub const T0: u64 = 1_700_000_000_000;

/// Opens a store on `config`, panicking with the error.
pub fn open(config: &StoreConfig) -> Store {
    Store::open(config).unwrap_or_else(|error| panic!("open {config:?}: {error}"))
}

/// Opens a store on `config` with an account for each of `nicks`.
pub fn open_with(config: &StoreConfig, nicks: &[&str]) -> Store {
    let store = open(config);
    accounts(&store, nicks);
    store
}

/// Creates an account for each nickname.
pub fn accounts(store: &Store, nicks: &[&str]) {
    for nick in nicks {
        accounts_result(store, nick).unwrap();
    }
}

/// Creates an account, with the store's answer.
pub fn accounts_result(store: &Store, nick: &str) -> Result<(), StoreError> {
    store
        .create_account(NewAccount {
            nick: nick.to_owned(),
            password_hash: HASH.to_owned(),
            created_ms: T0,
        })?
        .wait()
}

/// Message `id` to `recipient`: its sender, time and text follow from its id,
/// so that a reader can check one it finds without having kept it. Its
/// addressees spell the recipient in lower case, so that the message reads
/// back equal whatever case `recipient` was given in.
pub fn message(recipient: &str, id: u64) -> StoredMessage {
    StoredMessage {
        recipient: recipient.to_owned(),
        id,
        sender: format!("sender{}", id % 5),
        to: vec![recipient.to_ascii_lowercase(), format!("cc{}", id % 3)],
        ts_ms: T0 + id,
        text: format!("message {id}: {}", "x".repeat((id % 17) as usize)),
        receipt: id.is_multiple_of(2),
        number: 0,
    }
}

/// Message `id` with `text` as its text.
pub fn message_with(recipient: &str, id: u64, text: &str) -> StoredMessage {
    StoredMessage {
        text: text.to_owned(),
        ..message(recipient, id)
    }
}

/// Message `id` to `recipient`, numbered `number` for it.
pub fn numbered(recipient: &str, id: u64, number: u64) -> StoredMessage {
    StoredMessage {
        number,
        ..message(recipient, id)
    }
}

/// `recipient`'s mailbox, as a login reads it.
pub fn mailbox(store: &Store, recipient: &str) -> Vec<StoredMessage> {
    store.mailbox(recipient).unwrap().wait().unwrap().messages
}

/// Rows in `table` of the database in `dir`.
pub fn rows(dir: &Path, table: &str) -> i64 {
    rusqlite::Connection::open(dir.join("chinwag.db"))
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .unwrap()
}
