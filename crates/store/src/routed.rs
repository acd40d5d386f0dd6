//! What the hub routed and hands to the store together: copies of
//! messages for mailboxes, and what became of reliable sessions' messages.
//!
//! The hub's actor routes a batch of messages and hands it over in one
//! request, which the writer's thread then reads. Held as a `Vec` of
//! [`StoredMessage`] and one of [`SentRecord`], every field of every message
//! was a string of its own, made on the actor's thread: the writer's reads
//! of them were a cache miss each, one after another, and most of the
//! writer's time (`docs/performance.md`). Here the batch's strings are
//! written one after another into one buffer as they are added, where the
//! writer reads them in order, and the copies of one message share its
//! text.

use std::borrow::Cow;
use std::ops::Range;

use crate::message::check_i64;
use crate::{SentRecord, StoreError, StoredMessage};

/// A batch of copies to store and sent records to keep, written in one
/// commit (`MailStore::store_routed`): build it with [`copy`](Self::copy)
/// and [`sent`](Self::sent).
#[derive(Debug, Default, Clone)]
pub struct Routed {
    /// Every string of the batch, one after another.
    strings: String,
    copies: Vec<Copy>,
    sent: Vec<Sent>,
    /// The first number out of SQLite's range, if any: the batch is then
    /// refused whole, as a `Vec` of them was.
    out_of_range: Option<&'static str>,
}

/// A copy to store, from borrowed parts ([`Routed::copy_parts`]): the
/// fields of a [`StoredMessage`], its addressees as its `to_names` column
/// (the names separated by single spaces).
#[derive(Debug, Clone, Copy)]
pub struct CopyParts<'a> {
    /// As [`StoredMessage::recipient`].
    pub recipient: &'a str,
    /// As [`StoredMessage::id`].
    pub id: u64,
    /// As [`StoredMessage::ts_ms`].
    pub ts_ms: u64,
    /// As [`StoredMessage::sender`].
    pub sender: &'a str,
    /// [`StoredMessage::to`], the names separated by single spaces
    /// ([`to_names`](crate::to_names) makes it).
    pub to_names: &'a str,
    /// As [`StoredMessage::text`].
    pub text: &'a str,
    /// As [`StoredMessage::receipt`].
    pub receipt: bool,
    /// As [`StoredMessage::number`].
    pub number: u64,
}

/// One copy, its strings as ranges of the batch's.
#[derive(Debug, Clone)]
struct Copy {
    recipient: Range<usize>,
    sender: Range<usize>,
    to_names: Range<usize>,
    text: Range<usize>,
    id: u64,
    ts_ms: u64,
    receipt: bool,
    number: u64,
    /// For a reliable session that is online: kept in the journal
    /// (`journal.rs`).
    held: bool,
}

/// One sent record, its statuses as their column.
#[derive(Debug, Clone)]
struct Sent {
    sender: Range<usize>,
    statuses: Range<usize>,
    client_id: u64,
    message_id: u64,
    ts_ms: u64,
    delivered: u32,
}

/// A copy as the writer reads it.
pub(crate) struct CopyView<'a> {
    pub(crate) recipient: &'a str,
    pub(crate) id: u64,
    pub(crate) sender: &'a str,
    pub(crate) to_names: Cow<'a, str>,
    pub(crate) ts_ms: u64,
    pub(crate) text: &'a str,
    pub(crate) receipt: bool,
    pub(crate) number: u64,
    pub(crate) held: bool,
}

impl CopyView<'_> {
    /// What it counts against its mailbox's byte quota: as
    /// [`StoredMessage::stored_bytes`].
    pub(crate) fn stored_bytes(&self) -> u64 {
        quota_bytes(self.text, self.sender, &self.to_names)
    }
}

/// What a copy counts against its mailbox's byte quota, from its text,
/// sender and addressees' column (as [`StoredMessage::stored_bytes`]).
pub(crate) fn quota_bytes(text: &str, sender: &str, to_names: &str) -> u64 {
    (text.len() + sender.len() + to_names.len()) as u64
}

/// A sent record as the writer reads it.
pub(crate) struct SentView<'a> {
    pub(crate) sender: &'a str,
    pub(crate) client_id: u64,
    pub(crate) message_id: u64,
    pub(crate) ts_ms: u64,
    pub(crate) delivered: u32,
    pub(crate) statuses: &'a str,
}

impl Routed {
    /// An empty batch.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for twice what `like` holds, up to a
    /// megabyte of strings and 16,384 copies and records: the next batch of
    /// a steady stream is about the size of the last, and grown from empty
    /// it was copied over at each doubling. Measured with `chinwag bench
    /// direct --reliable`, 8 alternating rounds: 385k -> 452k msgs/s
    /// (medians), the daemon's CPU 1.89 -> 1.74 s a run. Room for only as
    /// much as the last left a batch a little larger to grow, a copy of
    /// the whole (`je_large_ralloc` was a tenth of the actor's samples):
    /// twice as much, 10 alternating runs, 526k -> 581k msgs/s, the
    /// daemon's CPU 1.42 -> 1.29 s a run.
    #[must_use]
    pub fn sized_like(like: &Self) -> Self {
        const MAX_STRINGS: usize = 1 << 20;
        const MAX_ITEMS: usize = 16_384;
        Self {
            strings: String::with_capacity((2 * like.strings.len()).min(MAX_STRINGS)),
            copies: Vec::with_capacity((2 * like.copies.len()).min(MAX_ITEMS)),
            sent: Vec::with_capacity((2 * like.sent.len()).min(MAX_ITEMS)),
            out_of_range: None,
        }
    }

    /// A batch of `messages` and `sent`.
    #[must_use]
    pub fn of(messages: &[StoredMessage], sent: &[SentRecord]) -> Self {
        let mut routed = Self::new();
        for message in messages {
            routed.copy(message);
        }
        for record in sent {
            routed.sent(record);
        }
        routed
    }

    /// Adds a copy to store, after those added before it. A copy of the
    /// same message as the one before it (the same id, sender and text)
    /// shares its strings.
    pub fn copy(&mut self, message: &StoredMessage) {
        self.add_copy(message, false);
    }

    /// As [`copy`](Self::copy), for a reliable session that is online now
    /// and will likely confirm it within moments: the store keeps it in its
    /// journal, one row for the batch's held copies, and writes it to the
    /// mailbox as a row of its own only if it is still unconfirmed a second
    /// later (`docs/durability.md`).
    pub fn copy_held(&mut self, message: &StoredMessage) {
        self.add_copy(message, true);
    }

    fn add_copy(&mut self, message: &StoredMessage, held: bool) {
        let names = message.to_names();
        let copy = CopyParts {
            recipient: &message.recipient,
            id: message.id,
            ts_ms: message.ts_ms,
            sender: &message.sender,
            to_names: &names,
            text: &message.text,
            receipt: message.receipt,
            number: message.number,
        };
        self.copy_parts(&copy, held);
    }

    /// As [`copy`](Self::copy) (`held` false) or
    /// [`copy_held`](Self::copy_held), from borrowed parts: the hub writes
    /// a routed message's copies straight from the frame it routed.
    pub fn copy_parts(&mut self, copy: &CopyParts<'_>, held: bool) {
        self.note(check_i64(copy.id, "message id"));
        self.note(check_i64(copy.ts_ms, "timestamp"));
        let recipient = self.push(copy.recipient);
        let shared = self.copies.last().filter(|last| {
            last.id == copy.id
                && self.strings.get(last.sender.clone()) == Some(copy.sender)
                && self.strings.get(last.text.clone()) == Some(copy.text)
                && self.strings.get(last.to_names.clone()) == Some(copy.to_names)
        });
        let (sender, to_names, text) = match shared {
            Some(last) => (
                last.sender.clone(),
                last.to_names.clone(),
                last.text.clone(),
            ),
            None => (
                self.push(copy.sender),
                self.push(copy.to_names),
                self.push(copy.text),
            ),
        };
        self.copies.push(Copy {
            recipient,
            sender,
            to_names,
            text,
            id: copy.id,
            ts_ms: copy.ts_ms,
            receipt: copy.receipt,
            number: copy.number,
            held,
        });
    }

    /// Adds a record of what became of a reliable session's message. Its
    /// statuses are kept as one column: `nick code` pairs separated by
    /// spaces (nicknames hold no spaces).
    pub fn sent(&mut self, record: &SentRecord) {
        let statuses = (record.statuses.iter()).map(|(nick, code)| (nick.as_str(), *code));
        let ids = (record.client_id, record.message_id);
        self.sent_from(
            &record.sender,
            ids,
            record.ts_ms,
            record.delivered,
            statuses,
        );
    }

    /// As [`sent`](Self::sent), from a record's fields: `ids` are the
    /// client's and the hub's, `statuses` each recipient's name and code.
    pub fn sent_from<'s>(
        &mut self,
        sender: &str,
        (client_id, message_id): (u64, u64),
        ts_ms: u64,
        delivered: u32,
        statuses: impl IntoIterator<Item = (&'s str, u16)>,
    ) {
        self.note(check_i64(client_id, "client id"));
        self.note(check_i64(message_id, "message id"));
        self.note(check_i64(ts_ms, "timestamp"));
        let sender = self.push(sender);
        let start = self.strings.len();
        for (nick, code) in statuses {
            if self.strings.len() > start {
                self.strings.push(' ');
            }
            self.strings.push_str(nick);
            self.strings.push(' ');
            self.strings.push_str(itoa::Buffer::new().format(code));
        }
        self.sent.push(Sent {
            sender,
            statuses: start..self.strings.len(),
            client_id,
            message_id,
            ts_ms,
            delivered,
        });
    }

    /// How many copies it holds (the store answers an outcome for each).
    #[must_use]
    pub fn copies(&self) -> usize {
        self.copies.len()
    }

    /// Whether it holds neither copies nor sent records.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.copies.is_empty() && self.sent.is_empty()
    }

    fn push(&mut self, text: &str) -> Range<usize> {
        let start = self.strings.len();
        self.strings.push_str(text);
        start..self.strings.len()
    }

    fn note(&mut self, checked: Result<(), StoreError>) {
        if let (Err(StoreError::OutOfRange(what)), None) = (checked, self.out_of_range) {
            self.out_of_range = Some(what);
        }
    }

    /// Whether every number in it fits SQLite's signed integers.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        self.out_of_range
            .map_or(Ok(()), |what| Err(StoreError::OutOfRange(what)))
    }

    fn str(&self, range: &Range<usize>) -> &str {
        self.strings.get(range.clone()).unwrap_or_default()
    }

    /// The copies, in the order added.
    pub(crate) fn copy_views(&self) -> impl Iterator<Item = CopyView<'_>> {
        self.copies.iter().map(|copy| CopyView {
            recipient: self.str(&copy.recipient),
            id: copy.id,
            sender: self.str(&copy.sender),
            to_names: Cow::Borrowed(self.str(&copy.to_names)),
            ts_ms: copy.ts_ms,
            text: self.str(&copy.text),
            receipt: copy.receipt,
            number: copy.number,
            held: copy.held,
        })
    }

    /// The sent records, in the order added.
    pub(crate) fn sent_views(&self) -> impl Iterator<Item = SentView<'_>> {
        self.sent.iter().map(|sent| SentView {
            sender: self.str(&sent.sender),
            client_id: sent.client_id,
            message_id: sent.message_id,
            ts_ms: sent.ts_ms,
            delivered: sent.delivered,
            statuses: self.str(&sent.statuses),
        })
    }
}

impl StoredMessage {
    /// This copy as the writer reads it.
    pub(crate) fn view(&self) -> CopyView<'_> {
        CopyView {
            recipient: &self.recipient,
            id: self.id,
            sender: &self.sender,
            to_names: self.to_names(),
            ts_ms: self.ts_ms,
            text: &self.text,
            receipt: self.receipt,
            number: self.number,
            held: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(recipient: &str, id: u64, text: &str) -> StoredMessage {
        StoredMessage {
            recipient: recipient.into(),
            id,
            sender: "amy".into(),
            to: vec!["bob".into(), "cy".into()],
            ts_ms: 5,
            text: text.into(),
            receipt: true,
            number: id % 100 + 1,
        }
    }

    #[test]
    fn copies_and_records_read_back_as_added_and_one_message_shares_its_text() {
        let messages = [
            message("bob", 1, "hi"),
            message("cy", 1, "hi"),
            message("bob", 2, "yo"),
        ];
        let record = SentRecord {
            sender: "amy".into(),
            client_id: 7,
            message_id: 1,
            ts_ms: 5,
            delivered: 0,
            statuses: vec![("bob".into(), 31), ("cy".into(), 2)],
        };
        let routed = Routed::of(&messages, std::slice::from_ref(&record));
        assert_eq!(routed.copies(), 3);
        assert!(routed.check().is_ok());
        for (view, message) in routed.copy_views().zip(&messages) {
            let expected = message.view();
            assert_eq!(
                (
                    view.recipient,
                    view.id,
                    view.sender,
                    &*view.to_names,
                    view.text
                ),
                (
                    expected.recipient,
                    expected.id,
                    expected.sender,
                    &*expected.to_names,
                    expected.text
                )
            );
            assert_eq!(
                (view.ts_ms, view.receipt, view.number),
                (5, true, message.number)
            );
            assert_eq!(view.stored_bytes(), message.stored_bytes());
        }
        // "amy" "bob cy" "hi" once for message 1, its second copy's
        // recipient, then message 2's strings.
        assert_eq!(routed.strings.matches("hi").count(), 1);
        let sent: Vec<_> = routed.sent_views().collect();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].statuses, "bob 31 cy 2");
        assert_eq!(
            SentRecord::split_statuses(sent[0].statuses),
            record.statuses
        );
        assert_eq!(
            (sent[0].sender, sent[0].client_id, sent[0].message_id),
            ("amy", 7, 1)
        );
    }

    #[test]
    fn a_number_out_of_range_refuses_the_batch() {
        let mut routed = Routed::new();
        routed.copy(&message("bob", 1, "hi"));
        routed.copy(&message("bob", u64::MAX, "hi"));
        assert!(matches!(
            routed.check(),
            Err(StoreError::OutOfRange("message id"))
        ));
    }

    #[test]
    fn a_batch_sized_like_another_is_empty_with_its_room() {
        let mut routed = Routed::new();
        routed.copy(&message("bob", 1, "hi"));
        routed.copy(&message("carol", 2, "hello"));
        let next = Routed::sized_like(&routed);
        assert!(next.is_empty());
        assert!(next.strings.capacity() >= routed.strings.len());
        assert!(next.copies.capacity() >= 2);
    }
}
