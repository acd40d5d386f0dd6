//! Confirmations held back until their receipts are confirmed.
//!
//! A reliable session's `CONFIRM` of a stored copy takes the copy out of
//! its mailbox, and the receipt it owes its sender must then be kept until
//! the sender's client confirms it (`CONFIRM_RECEIPTS`), so that none is
//! lost with a connection. Done in that order, a message costs the store
//! three writes: the copy released and the receipt kept, then the receipt
//! forgotten. When the sender is a reliable session online, the hub knows
//! both ends: it sends the `RECEIPT` at once and holds the confirmation
//! here; the sender's `CONFIRM_RECEIPTS` then hands the store the copy's
//! release alone, keeping nothing. Until then the copy is in the mailbox
//! still, so a crash delivers it again and its receipt is made again (the
//! library shows each once).
//!
//! A confirmation is held [`GRACE_MS`] at most, [`MAX_PER_SESSION`] for one
//! sender's session and [`MAX_HELD`] in all: past any of these (a sender
//! that does not confirm its receipts, or confirms them late), or at any
//! login to an account, it goes to the store as before, the receipt kept
//! for its sender, so that a login reads it and the copy is not delivered
//! again. One recipient's session has at most [`MAX_PER_RECIPIENT`] held:
//! a crash delivers those copies again, and its client hides only so many
//! it has handed out already (the library, the newest 16,384).
//!
//! They are queued per sender's session in the order its receipts were
//! told, which is the order its client confirms them in: taking one is a
//! look at the front of a queue. In one hash table keyed by message id,
//! each was a cache miss as it was held and another as it was taken (a
//! tenth of the actor's time under `bench direct --reliable`).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::registry::{ConnId, IdMap};

/// How long a confirmation is held for its receipt's: half the store's
/// journal grace (`crates/store/src/journal.rs`), so that a copy released
/// late is still in its batch in memory, rather than written as a row of
/// the mailbox first.
pub(super) const GRACE_MS: u64 = 500;

/// Confirmations held for one sender's session at most: past this its
/// oldest go to the store at once.
pub(super) const MAX_PER_SESSION: usize = 8_192;

/// Confirmations held for one recipient's session at most: past this its
/// further ones go to the store at once (a quarter of the ids the client
/// library remembers to hide a message delivered again).
pub(super) const MAX_PER_RECIPIENT: usize = 4_096;

/// Confirmations held in all at most (each costs about 50 bytes here):
/// past this, the oldest of the session being told go to the store at once.
pub(super) const MAX_HELD: usize = 1 << 18;

/// How far into a sender's queue a confirmed receipt is looked for.
const SCAN: usize = 64;

/// How often, at most, the confirmations held past their grace are looked
/// for (every session's oldest).
const SWEEP_EVERY_MS: u64 = 50;

/// A copy confirmed by its recipient, whose sender was told its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Held {
    pub(super) message_id: u64,
    /// The recipient's nickname, as the receipt shows it: its account.
    pub(super) recipient: Arc<str>,
    /// The sender's folded nickname: the receipt's owner.
    pub(super) sender: Arc<str>,
    /// The recipient's session that confirmed it.
    pub(super) confirmed_by: ConnId,
    pub(super) received_ms: u64,
}

/// The confirmations held, per sender's session, in the order told.
#[derive(Debug, Default)]
pub(super) struct HeldConfirms {
    by_session: IdMap<VecDeque<Held>>,
    /// How many each recipient's session has held.
    per_recipient: IdMap<usize>,
    len: usize,
    /// When the last sweep for those past their grace was.
    swept_ms: u64,
}

impl HeldConfirms {
    /// Whether recipient session `recipient` may have one more held.
    pub(super) fn has_room(&self, recipient: ConnId) -> bool {
        self.per_recipient.get(&recipient).copied().unwrap_or(0) < MAX_PER_RECIPIENT
    }

    /// Holds a confirmation whose receipt was told to session `session`;
    /// those it pushes past a limit go into `out`.
    pub(super) fn hold(&mut self, session: ConnId, held: Held, out: &mut Vec<Held>) {
        *self.per_recipient.entry(held.confirmed_by).or_default() += 1;
        let queue = self.by_session.entry(session).or_default();
        queue.push_back(held);
        self.len += 1;
        if queue.len() > MAX_PER_SESSION || self.len > MAX_HELD {
            let oldest = queue.pop_front();
            self.gone(oldest.iter());
            out.extend(oldest);
        }
    }

    /// `held` are held no longer.
    fn gone<'a>(&mut self, held: impl Iterator<Item = &'a Held>) {
        for held in held {
            self.len -= 1;
            if let Some(count) = self.per_recipient.get_mut(&held.confirmed_by) {
                *count -= 1;
                if *count == 0 {
                    self.per_recipient.remove(&held.confirmed_by);
                }
            }
        }
    }

    /// Session `session` confirmed its receipt for `message_id` from
    /// `recipient`: the confirmation held for it, if there is one.
    pub(super) fn take(
        &mut self,
        session: ConnId,
        message_id: u64,
        recipient: &str,
    ) -> Option<Held> {
        let queue = self.by_session.get_mut(&session)?;
        let is = |held: &Held| held.message_id == message_id && *held.recipient == *recipient;
        // Nearly always the oldest: a client confirms receipts in the order
        // it was sent them. One not among the oldest few is taken as not
        // held (a receipt the store kept, or one confirmed far out of
        // order): a search of the whole queue for each would let a client
        // make the actor scan thousands of entries per receipt. One held
        // further on is then kept by the store when its time comes, and
        // given again at the sender's next login, where its client
        // confirms it again.
        let taken = if queue.front().is_some_and(is) {
            queue.pop_front()
        } else {
            let at = queue.iter().take(SCAN).position(is)?;
            queue.remove(at)
        };
        if queue.is_empty() {
            self.by_session.remove(&session);
        }
        self.gone(taken.iter());
        taken
    }

    /// Whether any is held.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Those held past their grace at `now_ms`, into `out`; looked for at
    /// most every [`SWEEP_EVERY_MS`].
    pub(super) fn due(&mut self, now_ms: u64, out: &mut Vec<Held>) {
        if self.len == 0 || now_ms < self.swept_ms.saturating_add(SWEEP_EVERY_MS) {
            return;
        }
        self.swept_ms = now_ms;
        let before = out.len();
        self.by_session.retain(|_, queue| {
            while let Some(oldest) = queue.front() {
                if oldest.received_ms.saturating_add(GRACE_MS) > now_ms {
                    break;
                }
                out.extend(queue.pop_front());
            }
            !queue.is_empty()
        });
        self.gone(out[before..].iter());
    }

    /// Every one held, into `out`.
    pub(super) fn all(&mut self, out: &mut Vec<Held>) {
        for (_, queue) in self.by_session.drain() {
            out.extend(queue);
        }
        self.per_recipient.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(message_id: u64, recipient: &str, at_ms: u64) -> Held {
        Held {
            message_id,
            recipient: Arc::from(recipient),
            sender: Arc::from("alice"),
            confirmed_by: ConnId(100),
            received_ms: at_ms,
        }
    }

    fn ids(out: &[Held]) -> Vec<(u64, &str)> {
        out.iter()
            .map(|held| (held.message_id, &*held.recipient))
            .collect()
    }

    #[test]
    fn a_confirmation_is_taken_once_by_the_session_told() {
        let mut confirms = HeldConfirms::default();
        let mut out = Vec::new();
        let alice = ConnId(1);
        confirms.hold(alice, held(10, "bob", 100), &mut out);
        confirms.hold(alice, held(10, "carol", 101), &mut out);
        confirms.hold(alice, held(11, "bob", 102), &mut out);
        assert!(out.is_empty());
        assert_eq!(confirms.take(ConnId(2), 10, "bob"), None, "another session");
        assert_eq!(confirms.take(alice, 10, "dave"), None, "another recipient");
        assert_eq!(confirms.take(alice, 12, "bob"), None, "another message");
        // Out of the order told, then in it.
        assert_eq!(
            confirms.take(alice, 10, "carol"),
            Some(held(10, "carol", 101))
        );
        assert_eq!(confirms.take(alice, 10, "bob"), Some(held(10, "bob", 100)));
        assert_eq!(confirms.take(alice, 10, "bob"), None, "taken already");
        assert!(!confirms.is_empty());
        assert_eq!(confirms.take(alice, 11, "bob"), Some(held(11, "bob", 102)));
        assert!(confirms.is_empty());
        assert!(confirms.by_session.is_empty() && confirms.per_recipient.is_empty());
        confirms.all(&mut out);
        assert!(out.is_empty(), "nothing taken is given again");
    }

    #[test]
    fn those_not_taken_in_time_are_due_oldest_first() {
        let mut confirms = HeldConfirms::default();
        let mut out = Vec::new();
        let (alice, dave) = (ConnId(1), ConnId(2));
        confirms.hold(alice, held(1, "bob", 1_000), &mut out);
        confirms.hold(alice, held(2, "bob", 1_100), &mut out);
        confirms.hold(dave, held(5, "carol", 1_150), &mut out);
        confirms.hold(alice, held(1, "carol", 1_200), &mut out);
        confirms.hold(alice, held(3, "bob", 1_210), &mut out);
        confirms.take(alice, 2, "bob");
        confirms.due(1_000 + GRACE_MS - 1, &mut out);
        assert!(out.is_empty(), "none due yet");
        confirms.due(1_200 + GRACE_MS, &mut out);
        out.sort_by_key(|held| held.received_ms);
        assert_eq!(ids(&out), [(1, "bob"), (5, "carol"), (1, "carol")]);
        out.clear();
        confirms.due(1_210 + GRACE_MS + 1, &mut out);
        assert!(out.is_empty(), "swept again too soon");
        confirms.due(1_200 + GRACE_MS + SWEEP_EVERY_MS, &mut out);
        assert_eq!(ids(&out), [(3, "bob")]);
        assert!(confirms.is_empty() && confirms.by_session.is_empty());
        assert!(confirms.per_recipient.is_empty());
    }

    #[test]
    fn past_a_session_s_most_held_its_oldest_go_at_once() {
        let mut confirms = HeldConfirms::default();
        let mut out = Vec::new();
        for id in 0..=MAX_PER_SESSION as u64 {
            confirms.hold(ConnId(1), held(id, "bob", 5), &mut out);
        }
        assert_eq!(ids(&out), [(0, "bob")]);
        assert_eq!(confirms.len, MAX_PER_SESSION);
        assert_eq!(
            confirms.per_recipient.get(&ConnId(100)),
            Some(&MAX_PER_SESSION)
        );
        out.clear();
        confirms.all(&mut out);
        assert_eq!(out.len(), MAX_PER_SESSION);
        assert!(confirms.is_empty());
    }

    #[test]
    fn a_recipient_s_session_has_at_most_so_many_held() {
        let mut confirms = HeldConfirms::default();
        let mut out = Vec::new();
        let bob = ConnId(100);
        for id in 0..MAX_PER_RECIPIENT as u64 {
            assert!(confirms.has_room(bob));
            // Told to two senders' sessions.
            confirms.hold(ConnId(1 + id % 2), held(id, "bob", 5), &mut out);
        }
        assert!(!confirms.has_room(bob), "full");
        assert!(confirms.has_room(ConnId(101)), "another recipient is not");
        confirms.take(ConnId(1), 0, "bob");
        assert!(confirms.has_room(bob), "room again once one is taken");
        confirms.due(5 + GRACE_MS, &mut out);
        assert_eq!(out.len(), MAX_PER_RECIPIENT - 1);
        assert!(confirms.per_recipient.is_empty());
    }

    #[test]
    fn a_receipt_confirmed_far_out_of_order_is_taken_as_not_held() {
        let mut confirms = HeldConfirms::default();
        let mut out = Vec::new();
        let alice = ConnId(1);
        for id in 0..=SCAN as u64 {
            confirms.hold(alice, held(id, "bob", 5), &mut out);
        }
        assert_eq!(
            confirms.take(alice, SCAN as u64, "bob"),
            None,
            "past the scan"
        );
        assert_eq!(
            confirms.take(alice, SCAN as u64 - 1, "bob"),
            Some(held(SCAN as u64 - 1, "bob", 5))
        );
        // Nearer the front once those before it go.
        assert!(confirms.take(alice, 0, "bob").is_some());
        assert_eq!(
            confirms.take(alice, SCAN as u64, "bob"),
            Some(held(SCAN as u64, "bob", 5))
        );
    }
}
