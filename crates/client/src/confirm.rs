//! When to confirm to the hub what the client handed to the application:
//! one batcher for both kinds of `CONFIRM` a client sends, the stored
//! messages of its mailbox and, with `CONFIRMS` granted, live messages.
//!
//! A `CONFIRM` goes out as soon as [`CONFIRM_BATCH`] ids wait, and
//! otherwise:
//!
//! - for stored messages, once every message the `MAILBOX` header announced
//!   has arrived and been handed over (`mailbox.rs` says when), so that a
//!   mailbox costs a few `CONFIRM`s rather than one per message, and a
//!   large one is confirmed as it is read; and at the latest
//!   [`CONFIRM_DELAY`] after the oldest was handed over, so that a
//!   connection that keeps dropping before the whole mailbox is through
//!   still makes progress;
//! - for stored messages in a reliable session, at once: the hub sends
//!   its mailbox a window at a time, more as each is confirmed
//!   (`docs/protocol.md`, section 8.11), so a confirmation that waited
//!   would hold the rest back, and over a link that drops every few
//!   hundred bytes it would never leave before the drop;
//! - for live messages, [`CONFIRM_DELAY`] after the oldest one waiting was
//!   handed over, so that a busy conversation costs one `CONFIRM` per 64
//!   messages and a quiet one still gives its senders their receipts at
//!   once, as people count time;
//! - and everything waiting, whatever it is, when the client quits, before
//!   its `QUIT`: what was handed over is confirmed (a program that reads
//!   one message and leaves, as `chinwag listen --count 1` does, is not
//!   sent it again, and its sender gets a receipt).
//!
//! A reliable session also confirms the receipts it handed over, with
//! `CONFIRM_RECEIPTS`, at once: those handed over together (a frame's)
//! in one frame.
//!
//! Stored messages come before anything live on a connection
//! (`docs/protocol.md`, section 8.7), so the two kinds hardly ever wait
//! together; when they do, the rule of either lets the whole batch go, which
//! only ever confirms sooner.

use std::time::Duration;

use chinwag_protocol::{ClientFrame, ReceiptKey, ReceiptKeyRun};
use tokio::time::Instant;

/// Ids confirmed in one `CONFIRM` at most, so that a large mailbox is
/// confirmed as it is read rather than all at the end (a connection lost at
/// message 9,000 of 10,000 then costs at most this many redeliveries), and
/// a busy conversation in frames of 2,049 bytes. The hub's work for a
/// `CONFIRM` is much more than for each id in it: at 64 ids (before), `bench
/// direct --reliable` ran at 0.91 of the rate it has at 256 and the daemon
/// used 8% more CPU a message; 1,024 was no faster than 256
/// (`docs/performance.md`).
pub(crate) const CONFIRM_BATCH: usize = 256;

/// How long the id of a live message handed over may wait for others to
/// share its `CONFIRM` (`docs/protocol.md`, section 8.10).
pub(crate) const CONFIRM_DELAY: Duration = Duration::from_millis(50);

/// The ids handed over and not yet confirmed, on one connection.
#[derive(Debug, Default)]
pub(crate) struct Confirms {
    /// A reliable session: stored messages are confirmed at once.
    at_once: bool,
    ids: Vec<u64>,
    /// A stored message's id is among `ids`: they all go once the mailbox
    /// has been handed over.
    stored: bool,
    /// When the ids waiting must go at the latest: [`CONFIRM_DELAY`] after
    /// the oldest was handed over.
    due: Option<Instant>,
    /// Receipts handed over (a reliable session's), to confirm.
    receipts: Vec<ReceiptKey>,
    /// When they must go at the latest.
    receipts_due: Option<Instant>,
    /// The hub granted `RECEIPT_RUNS`: receipts are confirmed by runs.
    runs: bool,
}

impl Confirms {
    /// The confirmations of a connection; `reliable`: a reliable
    /// session's; `runs`: receipts are confirmed by runs
    /// (`CONFIRM_RECEIPT_RUNS`).
    pub(crate) fn new(reliable: bool, runs: bool) -> Self {
        Self {
            at_once: reliable,
            runs,
            ..Self::default()
        }
    }

    /// The frame confirming `keys`: by runs (consecutive message ids of
    /// one recipient, in their order) if the hub granted them, otherwise
    /// one by one.
    pub(crate) fn receipts_frame(&self, keys: Vec<ReceiptKey>) -> ClientFrame {
        if !self.runs {
            return ClientFrame::ConfirmReceipts(keys);
        }
        let mut runs: Vec<ReceiptKeyRun> = Vec::new();
        for key in keys {
            if let Some(run) = runs.last_mut()
                && run.extend(key.message_id, &key.recipient)
            {
                continue;
            }
            runs.push(ReceiptKeyRun::of(key));
        }
        ClientFrame::ConfirmReceiptRuns(runs)
    }

    /// A stored message was handed over at `now` (or recognised as handed
    /// over before, on an earlier connection). It goes with the rest of the
    /// mailbox, or [`CONFIRM_DELAY`] after the oldest waiting, whichever
    /// comes first: over a connection that drops before a large mailbox is
    /// through, what was handed over is confirmed all the same, and the
    /// next login starts further on. In a reliable session it goes at once,
    /// with whatever waits.
    pub(crate) fn stored(&mut self, id: u64, now: Instant) {
        self.ids.push(id);
        self.stored = true;
        if self.at_once {
            self.due = Some(now);
        } else {
            self.due.get_or_insert(now + CONFIRM_DELAY);
        }
    }

    /// A live message was handed over at `now`.
    pub(crate) fn live(&mut self, id: u64, now: Instant) {
        self.ids.push(id);
        self.due.get_or_insert(now + CONFIRM_DELAY);
    }

    /// A receipt was handed over at `now`, or recognised as handed over
    /// before: confirmed at once, with whatever waits (the receipts of a
    /// frame go in one `CONFIRM_RECEIPTS`). The hub sends the receipts it
    /// kept a few at a time, more as these come, so a confirmation that
    /// waited would hold the rest back.
    pub(crate) fn receipt(&mut self, key: ReceiptKey, now: Instant) {
        self.receipts.push(key);
        self.receipts_due = Some(now);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.receipts.is_empty()
    }

    /// When what waits must go, if anything waits.
    pub(crate) fn due(&self) -> Option<Instant> {
        match (self.due, self.receipts_due) {
            (Some(ids), Some(receipts)) => Some(ids.min(receipts)),
            (ids, receipts) => ids.or(receipts),
        }
    }

    /// The receipts of the next `CONFIRM_RECEIPTS`, if it is time for one:
    /// a full batch, or whatever waits once `now` is past their deadline.
    /// Call it until it answers `None`.
    pub(crate) fn next_receipts(&mut self, now: Instant) -> Option<Vec<ReceiptKey>> {
        let full = self.receipts.len() >= CONFIRM_BATCH;
        let late = self.receipts_due.is_some_and(|due| now >= due);
        if full || late {
            self.take_receipts()
        } else {
            None
        }
    }

    /// The receipts of the next `CONFIRM_RECEIPTS` whatever the time;
    /// `None` once none waits.
    pub(crate) fn take_receipts(&mut self) -> Option<Vec<ReceiptKey>> {
        if self.receipts.is_empty() {
            return None;
        }
        let take = self.receipts.len().min(CONFIRM_BATCH);
        let batch: Vec<ReceiptKey> = self.receipts.drain(..take).collect();
        if self.receipts.is_empty() {
            self.receipts_due = None;
        }
        Some(batch)
    }

    /// The ids of the next `CONFIRM`, if it is time for one: a full batch;
    /// or whatever waits (at most a batch) when `mailbox_read` (every
    /// stored message announced has been handed over) and a stored one
    /// waits, or when `now` is past the live ones' deadline. Call it until
    /// it answers `None`.
    pub(crate) fn next(&mut self, mailbox_read: bool, now: Instant) -> Option<Vec<u64>> {
        let full = self.ids.len() >= CONFIRM_BATCH;
        let stored = self.stored && mailbox_read;
        let late = self.due.is_some_and(|due| now >= due);
        if full || stored || late {
            self.take()
        } else {
            None
        }
    }

    /// The ids of the next `CONFIRM` whatever the time (the client is
    /// quitting); `None` once nothing waits.
    pub(crate) fn take(&mut self) -> Option<Vec<u64>> {
        if self.ids.is_empty() {
            return None;
        }
        let take = self.ids.len().min(CONFIRM_BATCH);
        let batch: Vec<u64> = self.ids.drain(..take).collect();
        // What is left keeps the reasons it had to go, which can only make
        // it go sooner.
        if self.ids.is_empty() {
            self.stored = false;
            self.due = None;
        }
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `CONFIRM` due at `now`.
    fn due(confirms: &mut Confirms, mailbox_read: bool, now: Instant) -> Vec<Vec<u64>> {
        std::iter::from_fn(|| confirms.next(mailbox_read, now)).collect()
    }

    #[test]
    fn live_ids_go_50_ms_after_the_oldest_or_a_batch_at_a_time() {
        let start = Instant::now();
        let mut confirms = Confirms::default();
        confirms.live(1, start);
        confirms.live(2, start + Duration::from_millis(30));
        // The deadline is the oldest's.
        assert_eq!(confirms.due(), Some(start + CONFIRM_DELAY));
        assert!(due(&mut confirms, true, start + Duration::from_millis(49)).is_empty());
        assert_eq!(
            due(&mut confirms, true, start + CONFIRM_DELAY),
            [vec![1, 2]]
        );
        assert_eq!(confirms.due(), None);
        assert!(confirms.is_empty());

        // A burst: a full batch goes at once, the rest when due.
        let full = 10 + CONFIRM_BATCH as u64;
        for id in 10..full + 6 {
            confirms.live(id, start);
            for batch in due(&mut confirms, true, start) {
                assert_eq!(batch, (10..full).collect::<Vec<_>>());
            }
        }
        assert_eq!(
            due(&mut confirms, true, start + CONFIRM_DELAY),
            [(full..full + 6).collect::<Vec<_>>()]
        );
    }

    #[test]
    fn a_reliable_sessions_stored_ids_go_at_once_and_its_live_ones_wait() {
        let start = Instant::now();
        let mut confirms = Confirms::new(true, false);
        confirms.live(1, start);
        confirms.stored(7, start + Duration::from_millis(1));
        // Not read yet, and well before the live one's deadline.
        assert_eq!(
            due(&mut confirms, false, start + Duration::from_millis(1)),
            [vec![1, 7]]
        );
        confirms.live(2, start);
        assert_eq!(confirms.due(), Some(start + CONFIRM_DELAY));
        assert!(due(&mut confirms, false, start).is_empty());
    }

    #[test]
    fn stored_ids_go_once_the_mailbox_is_read_or_50_ms_after_the_oldest() {
        let start = Instant::now();
        let mut confirms = Confirms::default();
        confirms.stored(7, start);
        confirms.stored(8, start + Duration::from_millis(30));
        assert_eq!(confirms.due(), Some(start + CONFIRM_DELAY));
        // The mailbox read: at once.
        assert_eq!(due(&mut confirms, true, start), [vec![7, 8]]);
        assert_eq!(confirms.due(), None);
        // Still arriving: not before the deadline, and all at it.
        confirms.stored(9, start);
        confirms.stored(10, start);
        assert!(due(&mut confirms, false, start + Duration::from_millis(49)).is_empty());
        assert_eq!(
            due(&mut confirms, false, start + CONFIRM_DELAY),
            [vec![9, 10]]
        );
        assert!(confirms.is_empty());
    }

    #[test]
    fn receipts_go_at_once_a_batch_at_a_time() {
        let start = Instant::now();
        let mut confirms = Confirms::default();
        let key = |message_id| ReceiptKey {
            message_id,
            recipient: "bob".to_owned(),
        };
        confirms.live(1, start);
        for id in 0..CONFIRM_BATCH as u64 + 6 {
            confirms.receipt(key(id), start);
        }
        assert_eq!(confirms.due(), Some(start));
        let full = Some(CONFIRM_BATCH);
        assert_eq!(confirms.next_receipts(start).map(|b| b.len()), full);
        assert_eq!(confirms.next_receipts(start).map(|b| b.len()), Some(6));
        assert_eq!(confirms.next_receipts(start), None);
        assert_eq!(confirms.due(), Some(start + CONFIRM_DELAY), "the live id's");
        assert!(!confirms.is_empty(), "the live id still waits");
    }

    #[test]
    fn quitting_takes_everything_a_batch_at_a_time() {
        let start = Instant::now();
        let mut confirms = Confirms::default();
        for id in 1..=CONFIRM_BATCH as u64 + 36 {
            confirms.live(id, start);
        }
        let sizes: Vec<usize> = std::iter::from_fn(|| confirms.take())
            .map(|batch| batch.len())
            .collect();
        assert_eq!(sizes, [CONFIRM_BATCH, 36]);
        assert_eq!((confirms.due(), confirms.take()), (None, None));
    }
}
