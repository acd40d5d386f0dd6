//! A reliable session's mailbox at login, sent a window at a time.
//!
//! A login sent its whole mailbox at once, so over a link that drops
//! every few hundred bytes the client's `CONFIRM` never left before the
//! drop: every login started again from the same first message and a
//! large mailbox never got through. A reliable session's backlog goes out
//! [`FIRST_WINDOW`] copies at first, and one more for each copy confirmed;
//! each confirmation also widens the window by one, up to
//! [`MAX_WINDOW`], so a link that carries a few messages makes progress
//! at every login and a good one soon has the mailbox in flight as a
//! whole (the window doubles each round trip, as TCP's slow start does).
//!
//! The backlog also keeps the session's copies in number order. From the
//! login until its mailbox read comes back, a copy whose commit returns
//! (`deliver_held`) waits in the backlog rather than in the outbox: the
//! read may hold copies numbered after it, which must not come first.
//! When the read comes, the two are merged by number, and copies stored
//! while the backlog drains join its end. Once it is empty the session
//! is given its copies as their commits return, as before.
//!
//! A backlog is held in the actor's memory (up to a mailbox's quota), so a
//! session that stops confirming may not keep it forever: one whose copies
//! sent stay unconfirmed for the slow-consumer deadline is cut as a slow
//! consumer (`ERROR 8 SLOW_CONSUMER`), as a reader that stops reading is.
//! Nothing is lost: the copies stay in the mailbox for the next login.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chinwag_store::StoredMessage;

use super::Actor;
use super::mailbox::NumberedCopy;
use crate::registry::{ConnId, IdMap};

/// Copies of a login's mailbox sent before the first confirmation.
const FIRST_WINDOW: usize = 16;

/// The most copies of a backlog sent and not yet confirmed.
const MAX_WINDOW: usize = 1024;

/// Per reliable session whose mailbox is not all sent yet, its backlog.
#[derive(Default)]
pub(super) struct Backlogs(IdMap<Backlog>);

struct Backlog {
    /// Copies not sent yet, in number order.
    rest: VecDeque<NumberedCopy>,
    /// Sent from the backlog and not confirmed since.
    unconfirmed: usize,
    /// How many may be sent and not confirmed.
    window: usize,
    /// The login's mailbox read has not come back: nothing is sent yet.
    reading: bool,
    /// When the session last confirmed a copy of the backlog, or was
    /// first sent some.
    progress: Instant,
}

impl Backlog {
    fn new() -> Self {
        Self {
            rest: VecDeque::new(),
            unconfirmed: 0,
            window: FIRST_WINDOW,
            reading: true,
            progress: Instant::now(),
        }
    }
}

impl Backlogs {
    /// A reliable login whose mailbox is being read: its copies wait here
    /// until the read comes back.
    pub(super) fn start(&mut self, id: ConnId) {
        self.0.insert(id, Backlog::new());
    }

    pub(super) fn forget(&mut self, id: ConnId) {
        self.0.remove(&id);
    }

    /// Keeps `copy` for session `id` behind the rest of its backlog, if it
    /// has one; gives it back otherwise.
    pub(super) fn hold(&mut self, id: ConnId, copy: NumberedCopy) -> Option<NumberedCopy> {
        match self.0.get_mut(&id) {
            Some(backlog) => {
                backlog.rest.push_back(copy);
                None
            }
            None => Some(copy),
        }
    }

    /// The login's mailbox has been read: `read`, merged with the copies
    /// held meanwhile, in number order. Returns how many copies the
    /// backlog holds in all (what `MAILBOX` announces).
    pub(super) fn read(&mut self, id: ConnId, read: &[StoredMessage]) -> usize {
        let backlog = self.0.entry(id).or_insert_with(Backlog::new);
        let mut all: Vec<NumberedCopy> = read.iter().map(NumberedCopy::of).collect();
        all.extend(backlog.rest.drain(..));
        // Every copy of a reliable session is numbered, and no copy is in
        // both (the held ones were taken out of the read).
        all.sort_by_key(|copy| copy.number);
        backlog.rest = all.into();
        backlog.reading = false;
        backlog.progress = Instant::now();
        backlog.rest.len()
    }

    /// Session `id` confirmed `count` copies of its mailbox: room for as
    /// many more, and the window one wider for each.
    pub(super) fn confirmed(&mut self, id: ConnId, count: usize) {
        if let Some(backlog) = self.0.get_mut(&id) {
            let count = count.min(backlog.unconfirmed);
            backlog.unconfirmed -= count;
            backlog.window = (backlog.window + count).min(MAX_WINDOW);
            if count > 0 {
                backlog.progress = Instant::now();
            }
        }
    }

    /// The sessions that were sent copies of their backlogs and have
    /// confirmed none of them for `deadline`.
    pub(super) fn stalled(&self, deadline: Duration) -> Vec<ConnId> {
        (self.0.iter())
            .filter(|(_, backlog)| {
                !backlog.reading
                    && backlog.unconfirmed > 0
                    && backlog.progress.elapsed() >= deadline
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The copies session `id` may be sent now; a backlog sent in full is
    /// dropped.
    fn next(&mut self, id: ConnId) -> Vec<NumberedCopy> {
        let Some(backlog) = self.0.get_mut(&id) else {
            return Vec::new();
        };
        if backlog.reading {
            return Vec::new();
        }
        let room = backlog.window.saturating_sub(backlog.unconfirmed);
        let take = room.min(backlog.rest.len());
        backlog.unconfirmed += take;
        let next: Vec<NumberedCopy> = backlog.rest.drain(..take).collect();
        if backlog.rest.is_empty() {
            self.0.remove(&id);
        }
        next
    }
}

impl Actor {
    /// The `SEQUENCED` frames member `id` may be sent from its backlog now.
    pub(super) fn backlog_frames(&mut self, id: ConnId) -> Vec<Bytes> {
        let copies = self.backlogs.next(id);
        if let Some(member) = self.registry.member(id) {
            member.received(copies.len() as u64);
        }
        copies.into_iter().filter_map(|copy| copy.frame).collect()
    }

    /// Sends member `id` what its backlog has room for.
    pub(super) fn send_backlog(&mut self, id: ConnId) {
        for frame in self.backlog_frames(id) {
            self.queue_for(id, frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(number: u64) -> StoredMessage {
        StoredMessage {
            recipient: "bob".into(),
            id: number * 10,
            sender: "alice".into(),
            to: vec!["bob".into()],
            ts_ms: 1,
            text: format!("message {number}"),
            receipt: false,
            number,
        }
    }

    fn numbers(copies: &[NumberedCopy]) -> Vec<u64> {
        copies.iter().map(|copy| copy.number).collect()
    }

    #[test]
    fn a_backlog_goes_a_window_at_a_time_and_widens_as_it_is_confirmed() {
        let mut backlogs = Backlogs::default();
        let id = ConnId(1);
        backlogs.start(id);
        assert!(backlogs.next(id).is_empty(), "nothing before the read");
        assert_eq!(
            backlogs.read(id, &(1..=100).map(copy).collect::<Vec<_>>()),
            100
        );
        assert_eq!(numbers(&backlogs.next(id)), (1..=16).collect::<Vec<_>>());
        assert!(backlogs.next(id).is_empty(), "the window is full");
        backlogs.confirmed(id, 4);
        // Four confirmed: room for four, and a window four wider.
        assert_eq!(numbers(&backlogs.next(id)), (17..=24).collect::<Vec<_>>());
        // Confirming more than was sent counts only what was sent (20):
        // a window of 40, all of it free.
        backlogs.confirmed(id, 1_000);
        assert_eq!(backlogs.next(id).len(), 40);
        backlogs.confirmed(id, 40);
        assert_eq!(backlogs.next(id).len(), 36, "the rest");
        assert!(backlogs.0.is_empty(), "a backlog sent in full is dropped");
        assert!(
            backlogs.hold(id, NumberedCopy::of(&copy(101))).is_some(),
            "no backlog: given back"
        );
    }

    #[test]
    fn copies_held_while_reading_are_merged_in_number_order() {
        let mut backlogs = Backlogs::default();
        let id = ConnId(2);
        backlogs.start(id);
        assert!(backlogs.hold(id, NumberedCopy::of(&copy(5))).is_none());
        assert!(backlogs.hold(id, NumberedCopy::of(&copy(7))).is_none());
        assert_eq!(backlogs.read(id, &[copy(3), copy(4), copy(6)]), 5);
        let held = backlogs.hold(id, NumberedCopy::of(&copy(8)));
        assert!(held.is_none(), "held behind the rest");
        assert_eq!(numbers(&backlogs.next(id)), vec![3, 4, 5, 6, 7, 8]);
    }
}
