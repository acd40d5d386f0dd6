//! Stored messages: which to hand to the application, and when to confirm
//! them to the hub.
//!
//! At login to an account the hub sends `MAILBOX {count, expired}` and then
//! `count` `STORED_MESSAGE`s. A stored message leaves the mailbox only once
//! the client confirms it (`CONFIRM {ids}`); the client confirms those it
//! has put in the application's event queue, in batches: every
//! [`CONFIRM_BATCH`], and whatever is left once all `count` have arrived
//! and been handed over. Unconfirmed messages come again at the next login
//! with the same ids (a connection dropped before its `CONFIRM` reached the
//! hub), and the ones this client already handed out are not handed out
//! again, only confirmed.

use std::collections::{HashSet, VecDeque};

/// Stored messages confirmed in one `CONFIRM` at most, so that a large
/// mailbox is confirmed as it is read rather than all at the end (a
/// connection lost at message 9,000 of 10,000 then costs at most this many
/// redeliveries).
pub(crate) const CONFIRM_BATCH: usize = 64;

/// How many stored message ids a client remembers having handed out. More
/// than a mailbox holds (the hub's quota is 10,000 messages), so that a
/// full mailbox redelivered after a dropped connection is still recognised;
/// the oldest are forgotten first. About a megabyte at most.
pub(crate) const REMEMBERED_IDS: usize = 16 * 1024;

/// The ids of stored messages handed out, the oldest forgotten past a bound.
#[derive(Debug)]
struct SeenIds {
    ids: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl SeenIds {
    fn new(capacity: usize) -> Self {
        Self {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn contains(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }

    fn insert(&mut self, id: u64) {
        if !self.ids.insert(id) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
    }
}

/// What to do with a stored message that just arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// New: hand it to the application (then report it with
    /// [`Mailbox::handed`]).
    HandOut,
    /// Handed out before, in this client's life: hidden, and queued to be
    /// confirmed again.
    Duplicate,
}

/// A client's stored-message bookkeeping: the ids it handed out over its
/// whole life, and, for the current connection, what the `MAILBOX` header
/// announced and what waits to be confirmed.
#[derive(Debug)]
pub(crate) struct Mailbox {
    seen: SeenIds,
    /// Stored messages the current connection's `MAILBOX` announced.
    announced: u32,
    /// Stored messages that arrived on the current connection.
    arrived: u32,
    /// Ids to confirm on the current connection.
    to_confirm: Vec<u64>,
}

impl Default for Mailbox {
    fn default() -> Self {
        Self::with_memory(REMEMBERED_IDS)
    }
}

impl Mailbox {
    /// A mailbox that remembers `capacity` ids handed out.
    pub(crate) fn with_memory(capacity: usize) -> Self {
        Self {
            seen: SeenIds::new(capacity),
            announced: 0,
            arrived: 0,
            to_confirm: Vec::new(),
        }
    }

    /// A new connection: nothing announced yet, nothing to confirm on it
    /// (what was handed out but not confirmed on the old one is
    /// redelivered, then recognised and confirmed).
    pub(crate) fn new_connection(&mut self) {
        self.announced = 0;
        self.arrived = 0;
        self.to_confirm.clear();
    }

    /// The `MAILBOX` header: `count` stored messages follow.
    pub(crate) fn announced(&mut self, count: u32) {
        self.announced = count;
        self.arrived = 0;
    }

    /// A stored message arrived. `reader_gone`: nobody reads the events
    /// any more, so it is neither handed out nor confirmed (it stays in the
    /// mailbox for the next login).
    pub(crate) fn arrived(&mut self, id: u64, reader_gone: bool) -> Option<Arrival> {
        self.arrived = self.arrived.saturating_add(1);
        if reader_gone {
            return None;
        }
        if self.seen.contains(id) {
            self.to_confirm.push(id);
            return Some(Arrival::Duplicate);
        }
        // Remembered from now, not from when it reaches the event queue:
        // a copy redelivered while this one still waits to be handed over
        // must not be handed over too.
        self.seen.insert(id);
        Some(Arrival::HandOut)
    }

    /// A stored message is in the application's event queue: confirm it.
    pub(crate) fn handed(&mut self, id: u64) {
        self.to_confirm.push(id);
    }

    /// The ids to confirm now, if it is time: a full batch, or whatever is
    /// left once every announced message has arrived and none waits to be
    /// handed over (`waiting`).
    pub(crate) fn confirm(&mut self, waiting: bool) -> Option<Vec<u64>> {
        let all_in = self.arrived >= self.announced && !waiting;
        if self.to_confirm.len() >= CONFIRM_BATCH || (all_in && !self.to_confirm.is_empty()) {
            let take = self.to_confirm.len().min(CONFIRM_BATCH);
            let batch: Vec<u64> = self.to_confirm.drain(..take).collect();
            return Some(batch);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out what arrives, one at a time, as the connection task does
    /// (it reads no frame while an event waits), and collects the confirms.
    fn deliver(mailbox: &mut Mailbox, ids: impl IntoIterator<Item = u64>) -> Vec<Vec<u64>> {
        let mut confirms = Vec::new();
        for id in ids {
            if mailbox.arrived(id, false) == Some(Arrival::HandOut) {
                confirms.extend(mailbox.confirm(true));
                mailbox.handed(id);
            }
            confirms.extend(mailbox.confirm(false));
        }
        confirms
    }

    #[test]
    fn confirms_once_every_announced_message_is_handed_out() {
        let mut mailbox = Mailbox::default();
        mailbox.announced(3);
        assert_eq!(deliver(&mut mailbox, [10, 11]), Vec::<Vec<u64>>::new());
        assert_eq!(deliver(&mut mailbox, [12]), [vec![10, 11, 12]]);
        // Nothing more to confirm.
        assert_eq!(mailbox.confirm(false), None);
    }

    #[test]
    fn confirms_a_large_mailbox_every_64_messages() {
        let mut mailbox = Mailbox::default();
        mailbox.announced(150);
        let confirms = deliver(&mut mailbox, 1..=150);
        let sizes: Vec<usize> = confirms.iter().map(Vec::len).collect();
        assert_eq!(sizes, [64, 64, 22]);
        let all: Vec<u64> = confirms.concat();
        assert_eq!(all, (1..=150).collect::<Vec<_>>());
    }

    #[test]
    fn waits_for_the_last_message_to_be_handed_over() {
        let mut mailbox = Mailbox::default();
        mailbox.announced(1);
        assert_eq!(mailbox.arrived(5, false), Some(Arrival::HandOut));
        // Arrived, but still waiting for room in the event queue.
        assert_eq!(mailbox.confirm(true), None);
        mailbox.handed(5);
        assert_eq!(mailbox.confirm(false), Some(vec![5]));
    }

    #[test]
    fn a_redelivered_message_is_hidden_and_confirmed_again() {
        let mut mailbox = Mailbox::default();
        mailbox.announced(3);
        // Two handed out, then the connection drops before any confirm.
        assert!(deliver(&mut mailbox, [1, 2]).is_empty());
        mailbox.new_connection();
        mailbox.announced(3);
        assert_eq!(mailbox.arrived(1, false), Some(Arrival::Duplicate));
        assert_eq!(mailbox.arrived(2, false), Some(Arrival::Duplicate));
        assert_eq!(mailbox.arrived(3, false), Some(Arrival::HandOut));
        mailbox.handed(3);
        assert_eq!(mailbox.confirm(false), Some(vec![1, 2, 3]));
    }

    #[test]
    fn nothing_is_handed_out_or_confirmed_once_the_reader_is_gone() {
        let mut mailbox = Mailbox::default();
        mailbox.announced(2);
        assert_eq!(mailbox.arrived(1, true), None);
        assert_eq!(mailbox.arrived(2, true), None);
        assert_eq!(mailbox.confirm(false), None);
        // Not remembered either: had it been read, it would be new.
        assert_eq!(mailbox.arrived(1, false), Some(Arrival::HandOut));
    }

    #[test]
    fn remembers_a_bounded_number_of_ids_forgetting_the_oldest() {
        let mut mailbox = Mailbox::with_memory(3);
        for id in 1..=4 {
            assert_eq!(mailbox.arrived(id, false), Some(Arrival::HandOut));
        }
        assert_eq!(mailbox.seen.ids.len(), 3);
        assert_eq!(mailbox.arrived(1, false), Some(Arrival::HandOut));
        assert_eq!(mailbox.arrived(4, false), Some(Arrival::Duplicate));
    }
}
