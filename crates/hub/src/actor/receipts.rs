//! Receipts: a recipient's client confirmed a message, told to its sender
//! (`docs/protocol.md`, section 8.10).
//!
//! A message from a sender with `RECEIPTS` to named users, delivered live
//! to a connection with `CONFIRMS`, leaves an entry here: that connection
//! owes that sender a receipt for that message id. Its `CONFIRM` turns the
//! entry into a receipt due to the sender; a stored message's confirmation
//! comes back from the store with its sender instead. Receipts due are
//! gathered per sender during a batch of commands and queued once, at the
//! batch's end, as one `RECEIPT` frame (or several, if one would exceed the
//! frame limit), to whichever connection holds the sender's nickname then,
//! if it asked for receipts. A sender offline with an account has them
//! kept by the store, and given at its next login that asks for receipts.
//!
//! Nothing here costs a message that asked for no receipt: the router looks
//! at the sender's options once per run.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chinwag_protocol::{Receipt, ReceiptKeyRun, ReceiptRun, ServerFrame};
use chinwag_store::KeptReceipt;
use tracing::warn;

use super::accounts::send_answer;
use super::held_confirms::Held;
use super::id_ring::IdRing;
use super::mailbox::in_background;
use super::{Actor, encode};
use crate::command::Answer;
use crate::registry::{ConnId, IdMap, Lookup, Member};

/// Unconfirmed messages remembered per connection; past this the oldest
/// are forgotten and give no receipt (a client that says it confirms and
/// never does costs at most this much).
pub(super) const MAX_OWED: usize = 65_536;

/// Receipts owed and due.
#[derive(Debug, Default)]
pub(super) struct Receipts {
    /// Per confirming connection: the receipts owed for what it was sent.
    owed: IdMap<Owed>,
    /// The current batch's receipts, by the sender's folded nickname.
    due: Due,
    /// The current batch's receipts that the store kept already (stored
    /// messages confirmed, their senders with accounts).
    due_kept: Due,
    /// The current batch's receipts for stored copies confirmed, told by
    /// the actor itself to senders online that asked for receipts
    /// ([`Actor::tell_receipts`]): those of reliable sessions, whose
    /// confirmations are held until they confirm them (`held`); the others.
    told_held: Due,
    told: Due,
    /// Per reliable session: receipts kept for it and read at its login,
    /// not sent yet; sent [`KEPT_WINDOW`] at a time.
    unsent: IdMap<VecDeque<Receipt>>,
    /// Per reliable session: receipts sent and not yet confirmed, which
    /// bounds what its `CONFIRM_RECEIPTS` may hand the store (a client
    /// naming receipts it was never sent costs the store nothing).
    unconfirmed: IdMap<usize>,
}

/// The receipts due in the current batch, grouped by sender. A sender's
/// name is hashed only when it differs from the last one's: a `CONFIRM`
/// of many messages is mostly of one sender's (a tenth of the hub's time
/// went to hashing the same name per receipt, measured with
/// `chinwag bench direct --receipts`).
#[derive(Debug, Default)]
struct Due {
    groups: Vec<(Arc<str>, Vec<Receipt>)>,
    by_sender: HashMap<Arc<str>, usize>,
}

impl Due {
    /// A receipt due to `sender`, whose name is cloned only for a group
    /// of its own.
    fn push(&mut self, sender: &Arc<str>, receipt: Receipt) {
        let last = self.groups.len().checked_sub(1);
        let group = match last {
            Some(last)
                if Arc::ptr_eq(&self.groups[last].0, sender)
                    || *self.groups[last].0 == **sender =>
            {
                last
            }
            _ => {
                let next = self.groups.len();
                let group = *self.by_sender.entry(Arc::clone(sender)).or_insert(next);
                if group == next {
                    self.groups.push((Arc::clone(sender), Vec::new()));
                }
                group
            }
        };
        self.groups[group].1.push(receipt);
    }

    fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    fn take(&mut self) -> Vec<(Arc<str>, Vec<Receipt>)> {
        self.by_sender.clear();
        std::mem::take(&mut self.groups)
    }
}

/// One connection's owed receipts: by message id, the folded nickname of
/// the sender owed one. In id order (`id_ring.rs`), which is the order
/// they are owed in (the hub's ids grow) and, nearly always, the order
/// they are confirmed in: both ends are a step, where a tree cost a search
/// and rebalancing per message.
type Owed = IdRing<Arc<str>>;

impl Receipts {
    /// Connection `recipient` was sent message `message_id`, for which
    /// `sender` wants a receipt.
    pub(super) fn owe(&mut self, recipient: ConnId, message_id: u64, sender: &Arc<str>) {
        let owed = self.owed.entry(recipient).or_default();
        owed.insert(message_id, sender.clone());
        if owed.len() > MAX_OWED {
            // The oldest is forgotten: its sender gets no receipt.
            owed.pop_oldest();
        }
    }

    /// Connection `recipient` (nicknamed `nick`) confirmed `ids`: the
    /// receipts owed for them are due.
    pub(super) fn confirmed(&mut self, recipient: ConnId, nick: &str, ids: &[u64], now_ms: u64) {
        let Some(owed) = self.owed.get_mut(&recipient) else {
            return;
        };
        for id in ids {
            if let Some(sender) = owed.remove(*id) {
                push_due(&mut self.due, &sender, *id, nick, now_ms);
            }
        }
        if owed.is_empty() {
            self.owed.remove(&recipient);
        }
    }

    /// Stored messages `nick` confirmed at `received_ms` whose senders
    /// asked for a receipt: each message's id and its sender (folded, as
    /// the store has the name), those the store kept apart.
    pub(super) fn stored_confirmed(
        &mut self,
        nick: &str,
        confirmed: chinwag_store::Confirmed,
        received_ms: u64,
    ) {
        // Folded by the store, as the registry keys nicknames.
        for (id, sender) in confirmed.receipts {
            push_due(&mut self.due, &sender, id, nick, received_ms);
        }
        for (id, sender) in confirmed.kept {
            push_due(&mut self.due_kept, &sender, id, nick, received_ms);
        }
    }

    /// A connection is gone: what it did not confirm gives no receipt.
    pub(super) fn forget(&mut self, recipient: ConnId) {
        self.owed.remove(&recipient);
        self.unsent.remove(&recipient);
        self.unconfirmed.remove(&recipient);
    }

    /// How many of `count` receipts confirmed by connection `id` it was
    /// sent and had not confirmed yet; those are confirmed now.
    fn confirmable(&mut self, id: ConnId, count: usize) -> usize {
        let Some(unconfirmed) = self.unconfirmed.get_mut(&id) else {
            return 0;
        };
        let confirmable = count.min(*unconfirmed);
        *unconfirmed -= confirmable;
        if *unconfirmed == 0 {
            self.unconfirmed.remove(&id);
        }
        confirmable
    }

    /// Up to `count` of the receipts kept for connection `id` and not sent
    /// yet, oldest first.
    fn next_unsent(&mut self, id: ConnId, count: usize) -> Vec<Receipt> {
        let Some(unsent) = self.unsent.get_mut(&id) else {
            return Vec::new();
        };
        let next = unsent.drain(..count.min(unsent.len())).collect();
        if unsent.is_empty() {
            self.unsent.remove(&id);
        }
        next
    }

    /// Whether any receipt waits to be queued.
    pub(super) fn any_due(&self) -> bool {
        !self.due.is_empty()
            || !self.due_kept.is_empty()
            || !self.told.is_empty()
            || !self.told_held.is_empty()
    }
}

fn push_due(due: &mut Due, sender: &Arc<str>, message_id: u64, recipient: &str, now_ms: u64) {
    due.push(
        sender,
        Receipt {
            message_id,
            received_ms: now_ms,
            recipient: recipient.to_owned(),
        },
    );
}

impl Actor {
    /// Queues the batch's receipts, each sender's in as few `RECEIPT`
    /// frames as the frame limit allows, to the connection holding the
    /// sender's nickname if it asked for receipts. A sender online without
    /// `RECEIPTS` gets none; one offline with an account has them kept by
    /// the store for its next login; a guest offline gets none.
    pub(super) fn flush_receipts(&mut self) {
        if !self.receipts.any_due() {
            return;
        }
        let due = self.receipts.due.take();
        let mut keep = Vec::new();
        for (sender, receipts) in due {
            let id = match self.registry.lookup(sender.as_bytes()) {
                Lookup::Online(id, member) if member.receipts() => {
                    // A reliable session's are kept until its client
                    // confirms them, so that none is lost with a
                    // connection; the store has them before any
                    // `CONFIRM_RECEIPTS` of them can come.
                    if member.reliable() {
                        keep.extend(receipts.iter().map(|receipt| KeptReceipt {
                            owner: sender.to_string(),
                            message_id: receipt.message_id,
                            recipient: receipt.recipient.clone(),
                            received_ms: receipt.received_ms,
                        }));
                    }
                    id
                }
                Lookup::Online(..) => continue,
                Lookup::Unknown => {
                    self.keep_for_account(&sender, receipts, &mut keep);
                    continue;
                }
            };
            self.queue_receipts(id, receipts);
        }
        self.flush_told(&mut keep);
        if !keep.is_empty()
            && let Some(storage) = &self.accounts.storage
        {
            in_background(
                "could not keep receipts for offline senders",
                storage.mail.keep_receipts(keep),
            );
        }
        self.flush_kept_receipts();
    }

    /// Receipts the actor told for stored copies confirmed: to whoever
    /// holds the sender's nickname now, if it asked for receipts. One whose
    /// sender left meanwhile is kept for its next login (into `keep`) if
    /// nothing else keeps it: a reliable session's is kept with its held
    /// confirmation.
    fn flush_told(&mut self, keep: &mut Vec<KeptReceipt>) {
        for (sender, receipts) in self.receipts.told_held.take() {
            if let Lookup::Online(id, member) = self.registry.lookup(sender.as_bytes())
                && member.receipts()
            {
                self.queue_receipts(id, receipts);
            }
        }
        for (sender, receipts) in self.receipts.told.take() {
            match self.registry.lookup(sender.as_bytes()) {
                Lookup::Online(id, member) if member.receipts() => {
                    self.queue_receipts(id, receipts);
                }
                Lookup::Online(..) => {}
                Lookup::Unknown => self.keep_for_account(&sender, receipts, keep),
            }
        }
    }

    /// `receipts` for `sender`, offline: into `keep` for its next login if
    /// it has an account (a guest offline gets none).
    fn keep_for_account(&self, sender: &str, receipts: Vec<Receipt>, keep: &mut Vec<KeptReceipt>) {
        if self.accounts.known.contains_key(sender.as_bytes()) {
            keep.extend(receipts.into_iter().map(|receipt| KeptReceipt {
                owner: sender.to_owned(),
                message_id: receipt.message_id,
                recipient: receipt.recipient,
                received_ms: receipt.received_ms,
            }));
        }
    }

    /// Stored copies that `nick` confirmed, whose senders the actor knows
    /// are owed a receipt (`owed`: each message's id and its sender,
    /// folded). A sender online that asked for receipts is told now; a
    /// reliable session's confirmation is then held until it confirms the
    /// receipt (`held_confirms.rs`), any other's needs no receipt kept.
    /// Answers the copies to release without keeping their receipts (to
    /// senders told, or that asked for none); those of senders offline are
    /// added to `stored`, confirmed as any stored message is (the store
    /// keeps the receipt of a sender with an account).
    pub(super) fn tell_receipts(
        &mut self,
        confirmed_by: ConnId,
        nick: &str,
        owed: Vec<(u64, Arc<str>)>,
        stored: &mut Vec<u64>,
    ) -> Vec<u64> {
        let mut released = Vec::new();
        let Some((_, first)) = owed.first() else {
            return released;
        };
        let recipient: Arc<str> = Arc::from(nick);
        let mut past = Vec::new();
        // Each sender's state, looked up once per run of its receipts.
        let mut last = (Arc::clone(first), self.sender_state(first));
        for (message_id, sender) in owed {
            if !Arc::ptr_eq(&last.0, &sender) && *last.0 != *sender {
                last = (Arc::clone(&sender), self.sender_state(&sender));
            }
            let receipt = || Receipt {
                message_id,
                received_ms: self.now_ms,
                recipient: nick.to_owned(),
            };
            match last.1 {
                SenderState::Offline => stored.push(message_id),
                SenderState::NoReceipts => released.push(message_id),
                SenderState::Receipts => {
                    self.receipts.told.push(&sender, receipt());
                    released.push(message_id);
                }
                // Past the recipient's bound, as for a sender offline.
                SenderState::Reliable(_) if !self.held_confirms.has_room(confirmed_by) => {
                    stored.push(message_id);
                }
                SenderState::Reliable(session) => {
                    self.receipts.told_held.push(&sender, receipt());
                    let held = Held {
                        message_id,
                        recipient: Arc::clone(&recipient),
                        sender,
                        confirmed_by,
                        received_ms: self.now_ms,
                    };
                    self.held_confirms.hold(session, held, &mut past);
                }
            }
        }
        self.keep_held(past);
        released
    }

    /// What a sender owed a receipt is now, by its folded nickname.
    fn sender_state(&self, sender: &str) -> SenderState {
        match self.registry.lookup(sender.as_bytes()) {
            Lookup::Online(id, member) if member.receipts() && member.reliable() => {
                SenderState::Reliable(id)
            }
            Lookup::Online(_, member) if member.receipts() => SenderState::Receipts,
            Lookup::Online(..) => SenderState::NoReceipts,
            Lookup::Unknown => SenderState::Offline,
        }
    }

    /// The confirmations held for longer than their grace (`all`: every
    /// one, at a login to any account, so that its reads find the receipts
    /// kept and not the copies confirmed) go to the store with the batch's
    /// other confirmations, their receipts kept.
    pub(super) fn flush_held_confirms(&mut self, all: bool) {
        if self.held_confirms.is_empty() {
            return;
        }
        let mut due = Vec::new();
        if all {
            self.held_confirms.all(&mut due);
        } else {
            self.held_confirms.due(self.now_ms, &mut due);
        }
        self.keep_held(due);
    }

    /// Confirmations held no longer, their receipts not confirmed: to the
    /// store, their receipts kept.
    fn keep_held(&mut self, held: Vec<Held>) {
        for held in held {
            self.to_store.release(&held.recipient, held.message_id);
            self.to_store.keeps.push(KeptReceipt {
                owner: held.sender.to_string(),
                message_id: held.message_id,
                recipient: held.recipient.to_string(),
                received_ms: held.received_ms,
            });
        }
    }

    /// Receipts the store kept already: sent to a sender online that asked
    /// for them; kept on for a reliable session (until it confirms them) and
    /// for a sender offline (until its next login); forgotten otherwise, as
    /// a receipt to a session that is not reliable is handed over once.
    fn flush_kept_receipts(&mut self) {
        let due = self.receipts.due_kept.take();
        for (sender, receipts) in due {
            let Lookup::Online(id, member) = self.registry.lookup(sender.as_bytes()) else {
                continue;
            };
            let (live, reliable) = (member.receipts(), member.reliable());
            if !(live && reliable) {
                let keys = receipts
                    .iter()
                    .map(|receipt| (receipt.message_id, receipt.recipient.clone()))
                    .collect();
                self.to_store.forgets.push((sender.to_string(), keys));
            }
            if live {
                self.queue_receipts(id, receipts);
            }
        }
    }

    /// Queues `receipts` for member `id`, split to the frame limit.
    pub(super) fn queue_receipts(&mut self, id: ConnId, receipts: Vec<Receipt>) {
        // Runs, for a member that asked: a sender's receipts from one
        // confirmation are mostly of consecutive messages (a run of its
        // `SEND`s, routed one after another), each a few bytes of a run
        // instead of a `RECEIPT` entry.
        let count = receipts.len();
        let frames = if self.registry.member(id).is_some_and(Member::receipt_runs) {
            run_frames(&receipts, self.max_frame)
        } else {
            frames(receipts, self.max_frame, usize::MAX)
        };
        self.queue_receipt_frames(id, count, frames);
    }

    /// Queues `receipts` for member `id`, at most `per_frame` a frame, as
    /// `RECEIPT` frames.
    fn queue_receipts_by(&mut self, id: ConnId, receipts: Vec<Receipt>, per_frame: usize) {
        let count = receipts.len();
        let frames = frames(receipts, self.max_frame, per_frame);
        self.queue_receipt_frames(id, count, frames);
    }

    /// Queues `frames`, which hold `count` receipts, for member `id`: a
    /// reliable session counts them until it confirms them.
    fn queue_receipt_frames(&mut self, id: ConnId, count: usize, frames: Vec<ServerFrame>) {
        if self.registry.member(id).is_some_and(Member::reliable) {
            *self.receipts.unconfirmed.entry(id).or_default() += count;
        }
        for frame in frames {
            if let Some(frame) = encode(&frame) {
                self.queue_for(id, frame);
            }
        }
    }

    /// A login that asked for receipts: those kept while it was offline
    /// are taken from the store, and come after its `WELCOME`.
    pub(super) fn take_kept_receipts(&mut self, id: ConnId) {
        let (Some(member), Some(storage)) = (self.registry.member(id), &self.accounts.storage)
        else {
            return;
        };
        if !member.receipts() {
            return;
        }
        // A reliable session's stay kept until its client confirms them.
        let read = if member.reliable() {
            storage.mail.kept_receipts(member.nick.as_str())
        } else {
            storage.mail.take_receipts(member.nick.as_str())
        };
        match read {
            Ok(pending) => {
                let answers = self.accounts.answers.clone();
                tokio::spawn(async move {
                    match pending.await {
                        Ok(kept) if !kept.is_empty() => {
                            send_answer(&answers, Answer::KeptReceipts { id, kept }).await;
                        }
                        Ok(_) => {}
                        Err(error) => warn!(%error, "could not read the receipts kept at login"),
                    }
                });
            }
            Err(error) => warn!(%error, "could not read the receipts kept at login"),
        }
    }

    /// Member `id`, a reliable session, has handled these receipts: they
    /// are kept no longer. From any other session, ignored (nothing of its
    /// is kept once handed over).
    pub(super) fn confirm_receipts(&mut self, id: ConnId, runs: &[ReceiptKeyRun]) {
        let (Some(member), Some(_)) = (self.registry.member(id), &self.accounts.storage) else {
            return;
        };
        if !member.reliable() {
            return;
        }
        // At most as many as it was sent and has not confirmed: a run may
        // name up to 2^32 receipts, and is walked no further than that.
        let named = (runs.iter()).fold(0usize, |named, run| {
            named.saturating_add(run.count as usize)
        });
        let confirmed = self.receipts.confirmable(id, named);
        if confirmed == 0 {
            return;
        }
        // Those whose confirmations are held release their copies, and
        // nothing was kept for them; the others were kept, and are
        // forgotten.
        let mut forgets = Vec::new();
        let keys =
            (runs.iter()).flat_map(|run| run.message_ids().map(move |id| (id, &run.recipient)));
        for (message_id, recipient) in keys.take(confirmed) {
            match self.held_confirms.take(id, message_id, recipient) {
                Some(held) => self.to_store.release(&held.recipient, message_id),
                None => forgets.push((message_id, recipient.clone())),
            }
        }
        if !forgets.is_empty() {
            self.to_store
                .forgets
                .push((member.nick.to_string(), forgets));
        }
        // As many of those kept as were confirmed take their place.
        let next = self.receipts.next_unsent(id, confirmed);
        if !next.is_empty() {
            self.queue_receipts_by(id, next, KEPT_PER_FRAME);
        }
    }

    /// The receipts kept for member `id` while it was offline (or, for a
    /// reliable session, not yet confirmed), [`KEPT_PER_FRAME`] a frame.
    /// To a reliable session, [`KEPT_WINDOW`] at a time: more as its client
    /// confirms them, so that over a link that is cut every few hundred
    /// bytes a login's first receipts, and their confirmation, get through
    /// before the cut, and the next login starts further on.
    pub(super) fn kept_receipts(&mut self, id: ConnId, kept: Vec<KeptReceipt>) {
        if !self.registry.member(id).is_some_and(Member::receipts) {
            return;
        }
        let reliable = self.registry.member(id).is_some_and(Member::reliable);
        let mut receipts: Vec<Receipt> = kept
            .into_iter()
            .map(|kept| Receipt {
                message_id: kept.message_id,
                received_ms: kept.received_ms,
                recipient: kept.recipient,
            })
            .collect();
        if reliable && receipts.len() > KEPT_WINDOW {
            let later = receipts.split_off(KEPT_WINDOW);
            self.receipts.unsent.insert(id, later.into());
        }
        self.queue_receipts_by(id, receipts, KEPT_PER_FRAME);
    }
}

/// What a sender owed a receipt for a stored copy confirmed is now.
#[derive(Debug, Clone, Copy)]
enum SenderState {
    /// A reliable session that asked for receipts: told, its confirmation
    /// held.
    Reliable(ConnId),
    /// Online, asked for receipts: told.
    Receipts,
    /// Online, asked for none.
    NoReceipts,
    /// Offline: the store keeps it for an account.
    Offline,
}

/// Receipts in one `RECEIPT` frame of those kept, at a login: about 350
/// bytes a frame.
const KEPT_PER_FRAME: usize = 16;

/// Receipts kept for a reliable session sent at its login and not yet
/// confirmed, at most.
const KEPT_WINDOW: usize = 32;

/// `receipts` as `RECEIPT` frames, each within `max_frame` bytes (length
/// prefix included) and of at most `per_frame` receipts.
fn frames(receipts: Vec<Receipt>, max_frame: usize, per_frame: usize) -> Vec<ServerFrame> {
    let limits = (max_frame, per_frame);
    batched(
        receipts,
        Receipt::encoded_len,
        limits,
        ServerFrame::Receipts,
    )
}

/// `receipts` as runs (consecutive messages, one recipient, one time) in
/// `RECEIPT_RUNS` frames, each within `max_frame` bytes (length prefix
/// included).
fn run_frames(receipts: &[Receipt], max_frame: usize) -> Vec<ServerFrame> {
    let mut runs: Vec<ReceiptRun> = Vec::new();
    for receipt in receipts {
        if !runs.last_mut().is_some_and(|run| run.extend(receipt)) {
            runs.push(ReceiptRun::of(receipt));
        }
    }
    let limits = (max_frame, usize::MAX);
    batched(
        runs,
        ReceiptRun::encoded_len,
        limits,
        ServerFrame::ReceiptRuns,
    )
}

/// `entries` in frames made by `frame`, in order, each within `max_frame`
/// bytes (length prefix included, an entry taking `len` of them) and of at
/// most `per_frame` entries.
fn batched<T>(
    entries: Vec<T>,
    len: fn(&T) -> usize,
    (max_frame, per_frame): (usize, usize),
    frame: fn(Vec<T>) -> ServerFrame,
) -> Vec<ServerFrame> {
    // The length prefix, the opcode and the count.
    const OVERHEAD: usize = 4 + 1 + 4;
    let mut frames = Vec::new();
    let mut batch = Vec::new();
    let mut size = OVERHEAD;
    for entry in entries {
        let entry_len = len(&entry);
        if !batch.is_empty() && (size + entry_len > max_frame || batch.len() >= per_frame) {
            frames.push(frame(std::mem::take(&mut batch)));
            size = OVERHEAD;
        }
        size += entry_len;
        batch.push(entry);
    }
    if !batch.is_empty() {
        frames.push(frame(batch));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(id: u64) -> Receipt {
        Receipt {
            message_id: id,
            received_ms: 1,
            recipient: "bob".into(),
        }
    }

    /// How many receipts each frame holds.
    fn sizes(frames: &[ServerFrame]) -> Vec<usize> {
        frames
            .iter()
            .map(|frame| match frame {
                ServerFrame::Receipts(r) => r.len(),
                _ => 0,
            })
            .collect()
    }

    #[test]
    fn receipts_are_split_to_fit_the_frame_limit() {
        // Each receipt is 8 + 8 + 4 = 20 bytes; 9 bytes of frame around them.
        let frames = frames((1..=10).map(receipt).collect(), 9 + 3 * 20, usize::MAX);
        assert_eq!(sizes(&frames), [3, 3, 3, 1]);
    }

    #[test]
    fn receipts_are_split_to_a_count_too() {
        let frames = frames((1..=40).map(receipt).collect(), 1 << 20, 16);
        assert_eq!(sizes(&frames), [16, 16, 8]);
    }

    #[test]
    fn receipts_confirmed_out_of_order_or_twice_come_once_each() {
        let mut receipts = Receipts::default();
        let sender: Arc<str> = Arc::from("alice");
        let bob = ConnId(7);
        for id in [10, 11, 12, 14, 13] {
            receipts.owe(bob, id, &sender);
        }
        receipts.confirmed(bob, "bob", &[12, 10, 12, 99, 14, 11, 13], 5);
        let due = receipts.due.take();
        let ids: Vec<u64> = due[0].1.iter().map(|r| r.message_id).collect();
        assert_eq!(ids, [12, 10, 14, 11, 13]);
        assert!(receipts.owed.is_empty(), "nothing owed is left");
    }

    #[test]
    fn a_connection_owes_at_most_max_owed_and_forgets_the_oldest() {
        let mut receipts = Receipts::default();
        let sender: Arc<str> = Arc::from("alice");
        let bob = ConnId(7);
        for id in 0..=MAX_OWED as u64 {
            receipts.owe(bob, id, &sender);
        }
        receipts.confirmed(bob, "bob", &[0, 1, MAX_OWED as u64], 5);
        let due = receipts.due.take();
        assert_eq!(due.len(), 1);
        assert_eq!(
            due[0].1.iter().map(|r| r.message_id).collect::<Vec<_>>(),
            [1, MAX_OWED as u64]
        );
        receipts.forget(bob);
        assert!(receipts.owed.is_empty());
    }

    #[test]
    fn receipts_due_are_grouped_by_sender_in_order() {
        let mut due = Due::default();
        let (alice, bob): (Arc<str>, Arc<str>) = (Arc::from("alice"), Arc::from("bob"));
        for (sender, id) in [(&alice, 1), (&alice, 2), (&bob, 3), (&alice, 4)] {
            due.push(sender, receipt(id));
        }
        let groups: Vec<(String, Vec<u64>)> = due
            .take()
            .into_iter()
            .map(|(sender, receipts)| {
                let ids = receipts.iter().map(|r| r.message_id).collect();
                (sender.to_string(), ids)
            })
            .collect();
        assert_eq!(
            groups,
            [
                ("alice".to_owned(), vec![1, 2, 4]),
                ("bob".to_owned(), vec![3])
            ]
        );
        assert!(due.is_empty());
    }
}
