//! The interface the hub talks to: mailboxes and accounts.
//!
//! Two small traits, implemented today by the SQLite [`Store`](crate::Store)
//! and later by a clustered backend on a distributed engine. They are
//! object-safe on purpose: every method takes `&self` and hands back a
//! [`Pending`] (a concrete future) rather than being an `async fn`, so the
//! hub can hold an `Arc<dyn MailStore>` chosen at start-up from its flags
//! without a type parameter spreading through `Hub`, its actor and its
//! connections. The cost is one boxed request per call, nothing next to a
//! commit.
//!
//! The contract every backend keeps:
//!
//! - Handing a request over never waits. It is taken (`Ok(Pending)`) or
//!   refused at once (`Err`: [`StoreError::Busy`], [`StoreError::Closed`],
//!   or an argument the backend cannot hold).
//! - A write's answer comes only once the write is durable;
//!   [`StoreOutcome::Stored`] means on disk (or on a quorum of disks).
//! - Every answer reflects every write handed over before its request, by
//!   any handle: a mailbox read after a store sees the stored message.

use std::fmt;
use std::time::Duration;

use crate::{
    Account, Confirmed, Expired, KeptReceipt, LostNumbers, Mailbox, NewAccount, Pending, Routed,
    SentRecord, StoreError, StoreOutcome, StoreStats, StoredMessage, Then,
};

/// Offline mailboxes: messages stored for registered users until their
/// client confirms them.
pub trait MailStore: fmt::Debug + Send + Sync {
    /// Stores one message in its recipient's mailbox.
    ///
    /// The answer is [`StoreOutcome::Stored`] only after the commit holding
    /// it has returned; a failed commit answers [`StoreError::Failed`].
    fn store_message(&self, message: StoredMessage) -> Result<Pending<StoreOutcome>, StoreError>;

    /// Stores several messages (one handed-over batch, for example all the
    /// offline recipients of one batch the hub routed), answered together
    /// with one outcome per message in order. They commit together or not
    /// at all.
    fn store_messages(
        &self,
        messages: Vec<StoredMessage>,
    ) -> Result<Pending<Vec<StoreOutcome>>, StoreError> {
        self.store_routed(Routed::of(&messages, &[]))
    }

    /// As [`store_messages`](Self::store_messages) for the batch's copies
    /// ([`Routed`]), and in the same commit records what became of messages
    /// reliable sessions sent ([`SentRecord`]; one already recorded is left
    /// as it was): a message whose copies are stored is always recognised
    /// when sent again. A number out of range refuses the whole batch.
    fn store_routed(&self, routed: Routed) -> Result<Pending<Vec<StoreOutcome>>, StoreError>;

    /// As [`store_routed`](Self::store_routed), with the answer handed to
    /// `then` rather than through a [`Pending`]: on the store's own thread
    /// as soon as the commit has returned, so that no task has to wait for
    /// it. A request the store refuses at once (invalid, a full queue) is
    /// answered at once, on the caller's thread. `then` must be quick and
    /// must not block.
    fn store_routed_then(&self, routed: Routed, then: Then<Vec<StoreOutcome>>);

    /// A sender's newest [`SENT_WINDOW`](crate::SENT_WINDOW) records of
    /// what became of its messages, oldest first (none for a name with no
    /// account, or none kept). Read at a reliable session's login.
    fn sent(&self, sender: &str) -> Result<Pending<Vec<SentRecord>>, StoreError>;

    /// Takes (reads and deletes, in one commit) the numbers of an
    /// account's messages that will never be delivered, oldest first: a
    /// copy refused for a full mailbox, copies the age limit dropped. Told
    /// to the account's reliable session (`GAP`).
    fn take_gaps(&self, account: &str) -> Result<Pending<Vec<LostNumbers>>, StoreError>;

    /// Records numbers accounts lost outside the store's own refusals:
    /// copies a failed commit did not store, numbered by the hub before
    /// handing them over. Each is then told with the account's other gaps
    /// ([`take_gaps`](Self::take_gaps)) and never given again; a name with
    /// no account is skipped.
    fn lose_numbers(&self, lost: Vec<(String, LostNumbers)>) -> Result<Pending<()>, StoreError>;

    /// Reads a mailbox: every message, oldest first, with the number the age
    /// limit dropped since its owner was last told. Reading removes nothing.
    /// [`StoreError::NoSuchAccount`] if no such account.
    fn mailbox(&self, recipient: &str) -> Result<Pending<Mailbox>, StoreError>;

    /// Removes the named messages from a mailbox, once the recipient's client
    /// has confirmed them at `received_ms`; ids not there are ignored.
    /// Answers how many were removed, and who is owed a receipt for which
    /// of them; a receipt owed to an account is kept ([`Confirmed::kept`]),
    /// until [`take_receipts`](Self::take_receipts) or
    /// [`forget_receipts`](Self::forget_receipts). Kept means never lost: a
    /// crash before the store has written the confirmation leaves the
    /// message in the mailbox, to be delivered and confirmed again
    /// (`docs/durability.md`).
    fn confirm(
        &self,
        recipient: &str,
        ids: Vec<u64>,
        received_ms: u64,
    ) -> Result<Pending<Confirmed>, StoreError>;

    /// [`confirm`](Self::confirm) for several mailboxes in one request (a
    /// hub's batch of confirmations): one answer per mailbox, in order.
    fn confirm_all(
        &self,
        confirms: Vec<(String, Vec<u64>)>,
        received_ms: u64,
    ) -> Result<Pending<Vec<Confirmed>>, StoreError>;

    /// Removes confirmed messages from their mailboxes, as
    /// [`confirm_all`](Self::confirm_all) does, but keeps and answers no
    /// receipt for them: the hub told their senders itself. `receipts` are
    /// kept first, in the same commit (each for its owner, while it has an
    /// account, until [`forget_receipts`](Self::forget_receipts) or a
    /// login takes it): those told to a sender who had not confirmed them
    /// in time.
    fn release_all(
        &self,
        releases: Vec<(String, Vec<u64>)>,
        receipts: Vec<KeptReceipt>,
    ) -> Result<Pending<()>, StoreError>;

    /// Deletes every stored message older than `max_age` at `now_ms`, and
    /// answers how many each mailbox lost. Each count is also kept with the
    /// account until [`clear_expired`](Self::clear_expired), so an owner
    /// who is offline during the sweep can be told at login.
    fn expire(&self, now_ms: u64, max_age: Duration) -> Result<Pending<Vec<Expired>>, StoreError>;

    /// Records that a mailbox's owner was told of `told` expired messages
    /// (the [`Mailbox::expired`] they were shown).
    fn clear_expired(&self, recipient: &str, told: u64) -> Result<Pending<()>, StoreError>;

    /// Keeps receipts for senders who are offline, each for its owner's next
    /// login; an owner with no account is skipped, and one already holding
    /// [`MAX_KEPT_RECEIPTS`](crate::MAX_KEPT_RECEIPTS) keeps no more.
    fn keep_receipts(&self, receipts: Vec<KeptReceipt>) -> Result<Pending<()>, StoreError>;

    /// Takes (reads and deletes, in one commit) the receipts kept for
    /// `owner`, oldest first.
    fn take_receipts(&self, owner: &str) -> Result<Pending<Vec<KeptReceipt>>, StoreError>;

    /// Reads the receipts kept for `owner`, oldest first, and leaves them
    /// kept: a reliable session's, which go only when its client confirms
    /// them ([`forget_receipts`](Self::forget_receipts)).
    fn kept_receipts(&self, owner: &str) -> Result<Pending<Vec<KeptReceipt>>, StoreError>;

    /// Deletes receipts kept that their owners' clients confirmed (or that
    /// were handed over): per owner, each receipt named by its message id
    /// and recipient; those not kept are ignored. One request for several
    /// owners (a hub's batch).
    fn forget_receipts(
        &self,
        receipts: Vec<(String, Vec<(u64, String)>)>,
    ) -> Result<Pending<()>, StoreError>;

    /// The highest message id ever handed to the store (0 for none): a
    /// restarted hub hands out ids above it.
    fn last_message_id(&self) -> Result<Pending<u64>, StoreError>;

    /// The backend's figures now, for the operator: commit latencies,
    /// whether it can write, its size on disk. Never waits: a backend that
    /// keeps none answers the default (no figures, writable).
    fn stats(&self) -> StoreStats {
        StoreStats {
            writable: true,
            ..StoreStats::default()
        }
    }
}

/// Registered nicknames and their password hashes.
pub trait AccountStore: fmt::Debug + Send + Sync {
    /// Creates an account; [`StoreError::AccountExists`] if the nickname
    /// (case folded) is taken.
    fn create_account(&self, account: NewAccount) -> Result<Pending<()>, StoreError>;

    /// One account, if it exists.
    fn account(&self, nick: &str) -> Result<Pending<Option<Account>>, StoreError>;

    /// Every account, by case-folded nickname.
    fn accounts(&self) -> Result<Pending<Vec<Account>>, StoreError>;

    /// Replaces an account's password hash.
    fn set_password(&self, nick: &str, password_hash: String) -> Result<Pending<()>, StoreError>;

    /// Records when an account's owner was last seen.
    fn set_last_seen(&self, nick: &str, at_ms: u64) -> Result<Pending<()>, StoreError>;

    /// Deletes an account and its mailbox with it.
    fn delete_account(&self, nick: &str) -> Result<Pending<()>, StoreError>;
}
