//! What a mailbox holds, and what storing a message can come to.

use std::borrow::Cow;
use std::sync::Arc;

use crate::StoreError;

/// One message for one recipient, as stored and as read back.
///
/// A message to several offline users is stored once per recipient, each
/// copy with the same hub `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Whose mailbox it goes to: a registered nickname, any case (the store
    /// folds ASCII case, as the hub's registry does). Read back, the
    /// account's spelling as registered.
    pub recipient: String,
    /// The hub's message id: the same id the message is delivered with, at
    /// every delivery. Below 2^63.
    pub id: u64,
    /// The sender's nickname as the hub routed it.
    pub sender: String,
    /// Whom the message was addressed to, as its `MESSAGE` frame names them
    /// (empty: everyone). Nicknames hold no spaces; the store keeps the
    /// names separated by one.
    pub to: Vec<String>,
    /// When the hub routed it, in milliseconds since the Unix epoch. Below
    /// 2^63. The age limit counts from it.
    pub ts_ms: u64,
    /// The text.
    pub text: String,
    /// Its sender asked for a receipt (`RECEIPTS`): confirming it answers
    /// who is owed one ([`Confirmed::receipts`]).
    pub receipt: bool,
    /// Its number for its recipient (a reliable session's `SEQUENCED`),
    /// given by the hub; 0 for none. Storing it raises the account's last
    /// number ([`Account::last_number`](crate::Account::last_number)) to at
    /// least this, in the same commit.
    pub number: u64,
}

/// Addressees as a stored copy keeps them in one column
/// ([`CopyParts::to_names`](crate::CopyParts::to_names)): separated by
/// single spaces (nicknames hold none), borrowed when there is one name.
pub fn to_names<'a>(names: impl Iterator<Item = &'a str> + Clone) -> Cow<'a, str> {
    let mut first_two = names.clone();
    match (first_two.next(), first_two.next()) {
        (Some(one), None) => Cow::Borrowed(one),
        (None, _) => Cow::Borrowed(""),
        (Some(_), Some(_)) => Cow::Owned(names.collect::<Vec<_>>().join(" ")),
    }
}

impl StoredMessage {
    /// What the message counts against its mailbox's byte quota: its text,
    /// its sender's name and its addressees' names.
    pub fn stored_bytes(&self) -> u64 {
        let to: usize = self.to.iter().map(|name| name.len() + 1).sum();
        (self.text.len() + self.sender.len() + to.saturating_sub(1)) as u64
    }

    /// The addressees as one column (borrowed when there is one name).
    pub(crate) fn to_names(&self) -> Cow<'_, str> {
        to_names(self.to.iter().map(String::as_str))
    }

    /// The addressees from their column.
    pub(crate) fn split_names(names: &str) -> Vec<String> {
        names
            .split(' ')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Checks the numbers fit SQLite's signed integers, before the message
    /// is queued, so that a message the store cannot hold is refused at once
    /// rather than failing the group commit it would have joined.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        check_i64(self.id, "message id")?;
        check_i64(self.ts_ms, "timestamp")
    }
}

/// Refuses a number SQLite's signed 64-bit integers cannot hold.
pub(crate) fn check_i64(value: u64, what: &'static str) -> Result<(), StoreError> {
    if i64::try_from(value).is_ok() {
        Ok(())
    } else {
        Err(StoreError::OutOfRange(what))
    }
}

/// What became of a message handed to the store, once the transaction that
/// held it has committed. A write that failed is an error instead
/// ([`StoreError::Failed`]): `STORE_FAILED`, never `STORED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOutcome {
    /// On disk: the commit that holds it has returned (`STORED`). A message
    /// already in that mailbox with the same id counts as stored.
    Stored,
    /// The recipient's mailbox is at its quota of messages or bytes
    /// (`MAILBOX_FULL`); nothing was stored.
    MailboxFull,
    /// No account by that name (deleted since the hub looked it up).
    NoSuchAccount,
}

/// What confirming messages came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmed {
    /// How many left the mailbox.
    pub removed: u64,
    /// Of those, the ones whose sender asked for a receipt and has no
    /// account (a guest): each message's id and its sender's nickname,
    /// case folded (one `Arc` shared by a sender's), in the order
    /// confirmed. Not kept: the hub tells the sender if it is online.
    pub receipts: Vec<(u64, Arc<str>)>,
    /// The ones whose sender asked for a receipt and has an account: their
    /// receipts are kept (at most
    /// [`MAX_KEPT_RECEIPTS`](crate::MAX_KEPT_RECEIPTS) an account), so a
    /// crash after the answer loses none (before the confirmation is on
    /// disk, the message is; it comes again, and so does its receipt);
    /// each message's id and its sender's nickname, case folded.
    pub kept: Vec<(u64, Arc<str>)>,
}

/// A receipt kept for a sender who was offline when the recipient's client
/// confirmed the message, until the sender's next login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReceipt {
    /// The sender owed it: an account's nickname, any case.
    pub owner: String,
    /// The hub's id of the message.
    pub message_id: u64,
    /// Who confirmed it.
    pub recipient: String,
    /// When, in milliseconds since the Unix epoch.
    pub received_ms: u64,
}

/// What became of a message a reliable session sent: kept so that the
/// same message sent again (its client id the same, after a lost
/// connection or a hub restart) is answered with this outcome instead of
/// being routed twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    /// The sender: an account's nickname, any case (read back as the
    /// reader asked for it).
    pub sender: String,
    /// The id the sender's client gave the message (`SEND`'s `id`).
    pub client_id: u64,
    /// The hub's id for it.
    pub message_id: u64,
    /// When the hub routed it, in milliseconds since the Unix epoch. The
    /// record is kept for [`SENT_MAX_AGE`](crate::SENT_MAX_AGE) after.
    pub ts_ms: u64,
    /// How many recipients it was queued for.
    pub delivered: u32,
    /// Each recipient's status code in the `ACK`, in its order.
    pub statuses: Vec<(String, u16)>,
}

impl SentRecord {
    /// The statuses from their column; a pair that does not read is
    /// skipped.
    pub(crate) fn split_statuses(column: &str) -> Vec<(String, u16)> {
        let words: Vec<&str> = column.split(' ').filter(|word| !word.is_empty()).collect();
        words
            .chunks(2)
            .filter_map(|pair| match pair {
                [nick, code] => Some(((*nick).to_owned(), code.parse().ok()?)),
                _ => None,
            })
            .collect()
    }
}

/// Numbers of a reliable session's messages that will never be delivered:
/// of `first..=last`, those its owner was not given were lost, for
/// `reason` (the protocol's code: 33 mailbox full, 35 expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostNumbers {
    /// The first number of the range.
    pub first: u64,
    /// The last, at least `first`.
    pub last: u64,
    /// Why, as the protocol's code.
    pub reason: u16,
}

/// A mailbox as read at login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailbox {
    /// Every stored message, oldest (lowest id) first.
    pub messages: Vec<StoredMessage>,
    /// Messages the age limit dropped from this mailbox that its owner has
    /// not been told of ([`MailStore::clear_expired`](crate::MailStore::clear_expired)
    /// once told).
    pub expired: u64,
}

/// How many messages the age limit dropped from one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The mailbox's owner, as registered.
    pub recipient: String,
    /// Messages dropped from it by this sweep.
    pub dropped: u64,
}

/// The key the store files a nickname under: ASCII case folded, the hub
/// registry's rule (`Nick::folded`).
pub(crate) fn fold(nick: &str) -> Cow<'_, str> {
    if nick.bytes().any(|byte| byte.is_ascii_uppercase()) {
        Cow::Owned(nick.to_ascii_lowercase())
    } else {
        Cow::Borrowed(nick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_counts_text_and_names() {
        let message = StoredMessage {
            recipient: "bob".into(),
            id: 1,
            sender: "alice".into(),
            to: vec!["bob".into(), "carol".into()],
            ts_ms: 0,
            text: "hello".into(),
            receipt: false,
            number: 0,
        };
        assert_eq!(message.stored_bytes(), 5 + 5 + "bob carol".len() as u64);
        assert_eq!(message.to_names(), "bob carol");
        assert_eq!(StoredMessage::split_names("bob carol"), ["bob", "carol"]);
        assert!(StoredMessage::split_names("").is_empty());
    }

    #[test]
    fn numbers_past_i64_are_refused() {
        assert!(check_i64(i64::MAX as u64, "id").is_ok());
        assert!(matches!(
            check_i64(i64::MAX as u64 + 1, "id"),
            Err(StoreError::OutOfRange("id"))
        ));
    }

    #[test]
    fn addressees_are_one_column_borrowed_for_one_name() {
        assert!(matches!(
            to_names(["bob"].into_iter()),
            Cow::Borrowed("bob")
        ));
        assert_eq!(to_names(std::iter::empty()), "");
        assert_eq!(
            to_names(["bob", "Carol", "dave"].into_iter()),
            "bob Carol dave"
        );
    }
}
