//! A reliable session's outbox (`docs/protocol.md` 8.11): the messages this
//! client sent and the hub has not acknowledged, kept across a lost
//! connection and sent again on the next one with the same client id. The
//! hub answers a message it had already routed with what became of it
//! then, so none is routed twice; one sent
//! [`max_sendings`](crate::ClientOptions::max_sendings) times without an
//! `ACK` fails with [`ClientError::Unacknowledged`].
//!
//! After a reconnection the outbox is sent a window at a time
//! ([`WINDOW`] messages waiting for their `ACK`), and new messages queue
//! behind it: a link that keeps failing still carries a few messages and
//! their `ACK`s each time, where sending the whole outbox at once could be
//! cut, every time, before the first `ACK` came back.
//!
//! The hub recognises a message by its client id among the account's
//! newest 1,024, so ids must be unique for the account, not only for this
//! client: a new client starts at a random point of the id space
//! ([`first_id`]).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, RandomState};

use chinwag_protocol::Recipients;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::{Ack, ClientError};

/// How many of the outbox's messages may wait for their `ACK` at once.
pub(crate) const WINDOW: usize = 16;

/// A message waiting for its `ACK`, as it is sent again.
pub(crate) struct Unsent {
    pub(crate) to: Recipients,
    pub(crate) text: String,
    /// Its place under [`max_pending`](crate::ClientOptions::max_pending).
    pub(crate) permit: OwnedSemaphorePermit,
    pub(crate) reply: oneshot::Sender<Result<Ack, ClientError>>,
    /// How many times it was sent so far.
    pub(crate) sendings: u32,
}

/// The messages waiting for a connection, by client id.
#[derive(Default)]
pub(crate) struct Outbox {
    unsent: BTreeMap<u64, Unsent>,
}

impl Outbox {
    pub(crate) fn keep(&mut self, id: u64, unsent: Unsent) {
        self.unsent.insert(id, unsent);
    }

    /// Everything kept, in the order it was first sent (ids grow).
    pub(crate) fn take(&mut self) -> BTreeMap<u64, Unsent> {
        std::mem::take(&mut self.unsent)
    }

    /// The first kept, in the order first sent.
    pub(crate) fn pop(&mut self) -> Option<(u64, Unsent)> {
        self.unsent.pop_first()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.unsent.is_empty()
    }

    /// Fails everything kept: the client is closing.
    pub(crate) fn fail(&mut self, error: impl Fn() -> ClientError) {
        for (_, unsent) in self.take() {
            let _ = unsent.reply.send(Err(error()));
        }
    }
}

/// The first client id of a client that asks for a reliable session:
/// random in bits 32 to 62, so that two clients of one account (one after
/// the other, or at once) do not give the same ids, and below 2^63, as
/// the hub's store requires. Above the ids of account requests, which use
/// the numbers below `floor`.
pub(crate) fn first_id(floor: u64) -> u64 {
    let random = RandomState::new().hash_one(std::process::id());
    (random & 0x7fff_ffff_0000_0000) | floor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_ids_are_random_above_the_floor_and_fit_the_store() {
        let ids: Vec<u64> = (0..8).map(|_| first_id(4)).collect();
        for id in &ids {
            assert!(*id >= 4 && i64::try_from(*id).is_ok(), "{id}");
        }
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 1, "{ids:?}");
    }
}
