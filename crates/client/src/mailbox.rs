//! Stored messages: which to hand to the application, and when the
//! mailbox has been read.
//!
//! At login to an account the hub sends `MAILBOX {count, expired}` and then
//! `count` `STORED_MESSAGE`s. A stored message leaves the mailbox only once
//! the client confirms it (`CONFIRM {ids}`); the client confirms those it
//! has put in the application's event queue, in batches (`confirm.rs`): every
//! [`CONFIRM_BATCH`](crate::confirm::CONFIRM_BATCH), and whatever is left
//! once all `count` have arrived and been handed over ([`Mailbox::read`]).
//! Unconfirmed messages come again at the next login with the same ids (a
//! connection dropped before its `CONFIRM` reached the hub), and the ones
//! this client already handed out are not handed out again, only
//! confirmed.

use std::collections::{HashSet, VecDeque};

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
    /// Handed out before, in this client's life: hidden, and to be
    /// confirmed again.
    Duplicate,
}

/// A client's stored-message bookkeeping: the ids it handed out over its
/// whole life, and, for the current connection, what the `MAILBOX` header
/// announced and how much of it has arrived.
#[derive(Debug)]
pub(crate) struct Mailbox {
    seen: SeenIds,
    /// Stored messages the current connection's `MAILBOX` announced.
    announced: u32,
    /// Stored messages that arrived on the current connection.
    arrived: u32,
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
        }
    }

    /// A new connection: nothing announced yet (what was handed out but
    /// not confirmed on the old one is redelivered, then recognised and
    /// confirmed).
    pub(crate) fn new_connection(&mut self) {
        self.announced = 0;
        self.arrived = 0;
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
        self.live(id, reader_gone)
    }

    /// A numbered message arrived live (a reliable session's `SEQUENCED`
    /// after its mailbox): as [`arrived`](Self::arrived), without counting
    /// it against the mailbox. One that came before a reconnection, and
    /// comes again because its confirmation was lost, is a duplicate.
    pub(crate) fn live(&mut self, id: u64, reader_gone: bool) -> Option<Arrival> {
        if reader_gone {
            return None;
        }
        if self.seen.contains(id) {
            return Some(Arrival::Duplicate);
        }
        // Remembered from now, not from when it reaches the event queue:
        // a copy redelivered while this one still waits to be handed over
        // must not be handed over too.
        self.seen.insert(id);
        Some(Arrival::HandOut)
    }

    /// Whether the mailbox has been read: every stored message the header
    /// announced has arrived, and none waits to be handed over
    /// (`waiting`). True on a connection without a mailbox.
    pub(crate) fn read(&self, waiting: bool) -> bool {
        self.arrived >= self.announced && !waiting
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;
    use crate::confirm::Confirms;

    /// A mailbox and the confirm batcher, as the connection task holds them
    /// for one connection.
    /// A mailbox read at one instant: no deadline passes meanwhile.
    struct Reading {
        mailbox: Mailbox,
        confirms: Confirms,
        now: Instant,
    }

    impl Default for Reading {
        fn default() -> Self {
            Self {
                mailbox: Mailbox::default(),
                confirms: Confirms::default(),
                now: Instant::now(),
            }
        }
    }

    impl Reading {
        /// The `CONFIRM`s due, with `waiting` stored messages not yet
        /// handed over.
        fn confirm(&mut self, waiting: bool) -> Vec<Vec<u64>> {
            let read = self.mailbox.read(waiting);
            let now = self.now;
            std::iter::from_fn(|| self.confirms.next(read, now)).collect()
        }

        /// Hands out what arrives, one at a time, as the connection task
        /// does (it reads no frame while an event waits), and collects the
        /// confirms.
        fn deliver(&mut self, ids: impl IntoIterator<Item = u64>) -> Vec<Vec<u64>> {
            let mut confirms = Vec::new();
            for id in ids {
                match self.mailbox.arrived(id, false) {
                    Some(Arrival::HandOut) => {
                        confirms.extend(self.confirm(true));
                        self.confirms.stored(id, self.now);
                    }
                    Some(Arrival::Duplicate) => self.confirms.stored(id, self.now),
                    None => {}
                }
                confirms.extend(self.confirm(false));
            }
            confirms
        }
    }

    #[test]
    fn confirms_once_every_announced_message_is_handed_out() {
        let mut reading = Reading::default();
        reading.mailbox.announced(3);
        assert_eq!(reading.deliver([10, 11]), Vec::<Vec<u64>>::new());
        assert_eq!(reading.deliver([12]), [vec![10, 11, 12]]);
        // Nothing more to confirm.
        assert!(reading.confirm(false).is_empty());
    }

    #[test]
    fn confirms_a_large_mailbox_every_256_messages() {
        let mut reading = Reading::default();
        reading.mailbox.announced(600);
        let confirms = reading.deliver(1..=600);
        let sizes: Vec<usize> = confirms.iter().map(Vec::len).collect();
        assert_eq!(sizes, [256, 256, 88]);
        let all: Vec<u64> = confirms.concat();
        assert_eq!(all, (1..=600).collect::<Vec<_>>());
    }

    #[test]
    fn waits_for_the_last_message_to_be_handed_over() {
        let mut reading = Reading::default();
        reading.mailbox.announced(1);
        assert_eq!(reading.mailbox.arrived(5, false), Some(Arrival::HandOut));
        // Arrived, but still waiting for room in the event queue.
        assert!(!reading.mailbox.read(true));
        assert!(reading.confirm(true).is_empty());
        reading.confirms.stored(5, reading.now);
        assert_eq!(reading.confirm(false), [vec![5]]);
    }

    #[test]
    fn a_redelivered_message_is_hidden_and_confirmed_again() {
        let mut reading = Reading::default();
        reading.mailbox.announced(3);
        // Two handed out, then the connection drops before any confirm.
        assert!(reading.deliver([1, 2]).is_empty());
        reading.mailbox.new_connection();
        reading.confirms = Confirms::default();
        reading.mailbox.announced(3);
        assert_eq!(reading.mailbox.arrived(1, false), Some(Arrival::Duplicate));
        assert_eq!(reading.mailbox.arrived(2, false), Some(Arrival::Duplicate));
        reading.confirms.stored(1, reading.now);
        reading.confirms.stored(2, reading.now);
        assert!(reading.confirm(false).is_empty(), "one still to come");
        assert_eq!(reading.deliver([3]), [vec![1, 2, 3]]);
    }

    #[test]
    fn nothing_is_handed_out_once_the_reader_is_gone() {
        let mut mailbox = Mailbox::default();
        mailbox.announced(2);
        assert_eq!(mailbox.arrived(1, true), None);
        assert_eq!(mailbox.arrived(2, true), None);
        // Not remembered either: had it been read, it would be new.
        assert_eq!(mailbox.arrived(1, false), Some(Arrival::HandOut));
    }

    #[test]
    fn a_connection_without_a_mailbox_has_read_it() {
        let mailbox = Mailbox::default();
        assert!(mailbox.read(false));
        assert!(!mailbox.read(true));
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
