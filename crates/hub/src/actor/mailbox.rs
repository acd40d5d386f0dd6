//! Offline delivery: messages for registered users who are offline handed
//! to the store, their acknowledgement completed once the store has
//! committed them, and the mailbox delivered at login and emptied as its
//! owner confirms.
//!
//! The actor never waits for the store: a write is handed over and its
//! answer comes back later as a [`Command::Answer`]. Meanwhile the
//! sender's acknowledgement waits in `PendingAcks`, and so does every
//! reply the sender is owed after it; the other recipients had their
//! message at once.

use chinwag_protocol::{Code, MailboxHeader, Message, Recipients, ServerFrame};
use chinwag_store::{Mailbox, Pending, StoreError, StoreOutcome, StoredMessage};
use tracing::warn;

use super::accounts::send_answer;
use super::acks::{PendingAck, Replies};
use super::{Actor, encode};
use crate::command::Answer;
use crate::outbox::Pressure;
use crate::registry::ConnId;

/// One message to hand to the store: who sent it, its ids, and for each
/// of its offline registered recipients the index of its status in the
/// `ACK` and its stored copy.
pub(super) struct ForStore {
    pub(super) client_id: u64,
    pub(super) message_id: u64,
    pub(super) delivered: u32,
    /// The `ACK`'s statuses; `None` for the recipients being stored.
    pub(super) statuses: Vec<(String, Option<Code>)>,
    pub(super) copies: Vec<(usize, StoredMessage)>,
}

/// The `ACK` status a store's answer comes to.
fn status(outcome: StoreOutcome) -> Code {
    match outcome {
        StoreOutcome::Stored => Code::STORED,
        StoreOutcome::MailboxFull => Code::MAILBOX_FULL,
        // Deleted since the actor looked: as for any name nobody has.
        StoreOutcome::NoSuchAccount => Code::NO_SUCH_USER,
    }
}

/// Runs a store request whose answer nobody waits for, logging a failure.
pub(super) fn in_background<T: Send + 'static>(
    what: &'static str,
    request: Result<Pending<T>, StoreError>,
) {
    match request {
        Ok(pending) => {
            tokio::spawn(async move {
                if let Err(error) = pending.await {
                    warn!(%error, "{what}");
                }
            });
        }
        Err(error) => warn!(%error, "{what}"),
    }
}

impl Actor {
    /// Hands a message's copies for offline registered users to the store.
    /// Its `ACK` waits for the commit, behind the sender's earlier replies
    /// (in `replies`, queued now) and ahead of its later ones.
    pub(super) fn store_for_offline(
        &mut self,
        from: ConnId,
        message: ForStore,
        replies: &mut Replies,
    ) {
        let ForStore {
            client_id,
            message_id,
            delivered,
            mut statuses,
            copies,
        } = message;
        let (indices, copies): (Vec<usize>, Vec<StoredMessage>) = copies.into_iter().unzip();
        let handed = match &self.accounts.storage {
            Some(storage) => storage.mail.store_messages(copies),
            None => Err(StoreError::Closed),
        };
        let pending = match handed {
            Ok(pending) => pending,
            Err(error) => {
                // Refused at once (a full queue): no wait, no `STORED`.
                warn!(%error, "could not hand messages for offline users to the store");
                for &index in &indices {
                    if let Some((_, slot)) = statuses.get_mut(index) {
                        *slot = Some(Code::STORE_FAILED);
                    }
                }
                let ack = PendingAck::new(client_id, message_id, delivered, statuses);
                replies.frame(&ack.into_frame());
                return;
            }
        };
        let earlier = replies.take();
        self.reply(from, earlier);
        self.acks.wait(
            from,
            PendingAck::new(client_id, message_id, delivered, statuses),
        );
        let answers = self.accounts.answers.clone();
        tokio::spawn(async move {
            let statuses = match pending.await {
                Ok(outcomes) => indices
                    .into_iter()
                    .zip(outcomes.into_iter().map(status))
                    .collect(),
                Err(error) => {
                    warn!(%error, "could not store messages for offline users");
                    indices
                        .into_iter()
                        .map(|index| (index, Code::STORE_FAILED))
                        .collect()
                }
            };
            send_answer(
                &answers,
                Answer::Stored {
                    message_id,
                    statuses,
                },
            )
            .await;
        });
    }

    /// The store's answer for a message's offline recipients.
    pub(super) fn stored(&mut self, message_id: u64, statuses: Vec<(usize, Code)>) {
        for (index, status) in statuses {
            self.settle(message_id, index, status);
        }
    }

    /// A login to an account: its outbox holds live traffic back (after
    /// the `WELCOME` already queued) while the mailbox is read.
    pub(super) fn read_mailbox(&mut self, id: ConnId) {
        let Some(member) = self.registry.member(id) else {
            return;
        };
        let Some(storage) = &self.accounts.storage else {
            return;
        };
        member.outbox.park();
        match storage.mail.mailbox(member.nick.as_str()) {
            Ok(pending) => {
                let answers = self.accounts.answers.clone();
                tokio::spawn(async move {
                    let mailbox = pending.await;
                    send_answer(&answers, Answer::Mailbox { id, mailbox }).await;
                });
            }
            Err(error) => self.mailbox_read(id, Err(error)),
        }
    }

    /// A login's mailbox, read: `MAILBOX`, then each stored message, go in
    /// front of the live traffic held back meanwhile. A mailbox that could
    /// not be read is announced as empty; its messages wait for the next
    /// login.
    pub(super) fn mailbox_read(&mut self, id: ConnId, mailbox: Result<Mailbox, StoreError>) {
        let Some(member) = self.registry.member(id) else {
            return;
        };
        let mailbox = mailbox.unwrap_or_else(|error| {
            warn!(%error, nick = %member.nick, "could not read a mailbox at login");
            Mailbox::default()
        });
        let header = ServerFrame::Mailbox(MailboxHeader {
            count: u32::try_from(mailbox.messages.len()).unwrap_or(u32::MAX),
            expired: u32::try_from(mailbox.expired).unwrap_or(u32::MAX),
        });
        let mut frames = Vec::with_capacity(mailbox.messages.len() + 1);
        frames.extend(encode(&header));
        for stored in mailbox.messages {
            let to = if stored.to.is_empty() {
                Recipients::Everyone
            } else {
                Recipients::Users(stored.to)
            };
            let message = ServerFrame::StoredMessage(Message {
                id: stored.id,
                ts_ms: stored.ts_ms,
                from: stored.sender,
                to,
                text: stored.text,
            });
            frames.extend(encode(&message));
        }
        if member.outbox.unpark(frames) == Pressure::Congested {
            self.congested.insert(id);
        }
        if mailbox.expired > 0
            && let Some(storage) = &self.accounts.storage
        {
            in_background(
                "could not record that expired messages were told",
                storage
                    .mail
                    .clear_expired(member.nick.as_str(), mailbox.expired),
            );
        }
    }

    /// Stored messages member `id` has handled leave its mailbox.
    pub(super) fn confirm(&mut self, id: ConnId, ids: Vec<u64>) {
        let Some(member) = self.registry.member(id) else {
            return;
        };
        if !member.account || ids.is_empty() {
            return;
        }
        if let Some(storage) = &self.accounts.storage {
            in_background(
                "could not remove confirmed messages from a mailbox",
                storage.mail.confirm(member.nick.as_str(), ids),
            );
        }
    }

    /// Drops stored messages past the age limit; their owners are told how
    /// many at their next login.
    pub(super) fn expire(&mut self) {
        let Some(storage) = &self.accounts.storage else {
            return;
        };
        let max_age = self.accounts.policy.mailbox_max_age;
        in_background(
            "could not drop expired messages",
            storage.mail.expire(self.now_ms, max_age),
        );
    }
}
