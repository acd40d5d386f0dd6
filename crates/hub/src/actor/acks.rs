//! A sender's replies: the `ACK`s (or `ACK_RUN`s) and errors about its
//! messages, in the order it sent them, including acknowledgements that
//! complete later.
//!
//! Most acknowledgements are complete when their message has been routed:
//! every recipient's status is known at once (queued, or not). Some will
//! not be: a recipient's message handed to a store is `STORED` only once the
//! commit that holds it returns, and a remote node answers for its users
//! when it answers. [`PendingAcks`] holds such an acknowledgement, keyed by
//! message, until its last status arrives, and holds every reply the same
//! sender is owed after it behind it, so that a sender's replies still come
//! in the order it sent its messages (`docs/protocol.md`, "Ordering").
//! While nothing is pending, which is the rule, replies pass straight
//! through: the table is then one empty-map check per run of messages.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use chinwag_protocol::{AckRun, AckView, Code, Encode, ServerFrame, Utf8, encode_into};
use compact_str::CompactString;
use smallvec::SmallVec;
use tracing::warn;

use super::id_ring::IdRing;
use crate::registry::{ConnId, IdMap};

/// Appends a reply the hub builds itself to `replies`; a failure is a bug
/// worth logging, not a reason to stop (as `super::encode`).
fn encode_reply<F: Encode + ?Sized>(frame: &F, replies: &mut BytesMut) {
    if let Err(error) = encode_into(frame, usize::MAX, replies) {
        warn!(%error, "could not encode a hub frame");
    }
}

/// The replies (`ACK`s and errors) to a run of one sender's messages, in
/// the run's order. For a sender that asked for `ACK_RUNS`, consecutive
/// messages that each reached everyone they named are acknowledged by one
/// `ACK_RUN` rather than an `ACK` each.
pub(super) struct Replies {
    frames: BytesMut,
    ack_runs: bool,
    /// The run being gathered, written once a reply breaks it or the
    /// sender's run of messages ends.
    open: Option<AckRun>,
}

impl Replies {
    pub(super) fn new(ack_runs: bool, sends: usize) -> Self {
        Self {
            frames: BytesMut::with_capacity(if ack_runs { 32 } else { sends * 48 }),
            ack_runs,
            open: None,
        }
    }

    /// Whether the sender of the replies to come asked for runs; the run
    /// gathered so far is written first.
    pub(super) fn runs(&mut self, ack_runs: bool) {
        self.close();
        self.ack_runs = ack_runs;
    }

    /// Appends replies encoded already, after the run gathered so far.
    fn encoded(&mut self, frames: &[u8]) {
        self.close();
        self.frames.extend_from_slice(frames);
    }

    /// Appends a reply, after the run gathered so far.
    pub(super) fn frame<F: Encode + ?Sized>(&mut self, frame: &F) {
        self.close();
        encode_reply(frame, &mut self.frames);
    }

    /// Appends a message's `ACK`; if the message reached everyone it named
    /// and the sender asked for runs, it joins the open run instead (or
    /// opens the next one, if it does not follow).
    pub(super) fn ack<S>(&mut self, ack: &AckView<S>, reached_all: bool)
    where
        AckView<S>: Encode,
    {
        if !(self.ack_runs && reached_all) {
            return self.frame(ack);
        }
        let (client_id, message_id) = (ack.client_id, ack.message_id);
        if let Some(open) = &mut self.open
            && open.extend(client_id, message_id)
        {
            return;
        }
        self.close();
        self.open = Some(AckRun::one(client_id, message_id));
    }

    fn close(&mut self) {
        if let Some(run) = self.open.take() {
            encode_reply(&ServerFrame::AckRun(run), &mut self.frames);
        }
    }

    /// The replies so far, encoded one after another; more may follow.
    /// Nothing is split off the buffer when there are none (nearly always,
    /// for a reliable session's run, whose every `ACK` waits): a split of
    /// nothing still shares the buffer, an atomic increment and decrement.
    pub(super) fn take(&mut self) -> BytesMut {
        self.close();
        if self.frames.is_empty() {
            return BytesMut::new();
        }
        self.frames.split()
    }

    /// The replies, encoded one after another.
    pub(super) fn finish(mut self) -> BytesMut {
        self.close();
        self.frames
    }
}

/// An `ACK`'s statuses as they arrive: every named recipient (or a
/// broadcast's failures), in the order of the `ACK`, as its sender named
/// it, with its status once known (`None` until then). One recipient,
/// nearly always: held inline, and so is its name (a `CompactString`
/// holds up to 24 bytes in place, any nickname but the longest): the copy a
/// reliable session's message keeps in its resend window (`resend.rs`) is
/// a copy of bytes. (An `Arc<str>` shared with the window before: the
/// window's oldest entry, dropped as each message is pushed, was an atomic
/// decrement on a cache line untouched since a thousand messages before,
/// three fifths of the window's samples under `bench direct --reliable`.)
pub(super) type Statuses = SmallVec<[(CompactString, Option<Code>); 1]>;

/// An acknowledgement waiting for some of its recipients' statuses.
#[derive(Debug)]
pub(super) struct PendingAck {
    client_id: u64,
    message_id: u64,
    /// Recipients the message was queued for so far.
    delivered: u32,
    /// Every named recipient (or a broadcast's failures), in the order of
    /// the `ACK`; `None` where the status has not arrived.
    statuses: Statuses,
}

impl PendingAck {
    /// An acknowledgement of `message_id` (the sender's `client_id`) that
    /// waits for the statuses left `None` in `statuses`.
    pub(super) fn new(client_id: u64, message_id: u64, delivered: u32, statuses: Statuses) -> Self {
        Self {
            client_id,
            message_id,
            delivered,
            statuses,
        }
    }

    fn is_complete(&self) -> bool {
        self.statuses.iter().all(|(_, status)| status.is_some())
    }

    /// Whether the message reached every user it named, so that a run may
    /// acknowledge it. Never a broadcast: its statuses are only its
    /// failures (none, or none `DELIVERED`).
    fn reached_all(&self) -> bool {
        !self.statuses.is_empty()
            && (self.statuses.iter()).all(|(_, status)| *status == Some(Code::DELIVERED))
            && u32::try_from(self.statuses.len()) == Ok(self.delivered)
    }

    /// Appends the `ACK`, a status still missing written as
    /// `UNABLE_TO_DELIVER`, straight from the statuses: made into an `Ack`
    /// first (before), each cost a `Vec` made and dropped. For a sender
    /// that asked for runs, a message that reached everyone it named joins
    /// the run instead: a reliable session's messages, acknowledged after
    /// their commit, come a run at a time as a guest's do.
    fn reply(&self, out: &mut Replies) {
        let ack = AckView {
            client_id: self.client_id,
            message_id: self.message_id,
            delivered: self.delivered,
            statuses: (self.statuses.iter()).map(|(nick, status)| {
                let status = status.unwrap_or(Code::UNABLE_TO_DELIVER);
                (Utf8::from(&**nick), status)
            }),
        };
        out.ack(&ack, self.reached_all());
    }
}

/// What a sender is owed, in order, once what comes before it is written.
#[derive(Debug)]
enum Owed {
    /// Replies already encoded.
    Ready(Bytes),
    /// An acknowledgement still waiting for a status.
    Waiting(PendingAck),
}

/// The acknowledgements waiting for a status, keyed by message, and what
/// their senders are owed behind them.
#[derive(Debug, Default)]
pub(super) struct PendingAcks {
    /// Per sender that has something waiting: what it is owed, in order.
    /// The first entry is always a `Waiting` one.
    owed: IdMap<VecDeque<Owed>>,
    /// Whose each waiting message is.
    senders: IdRing<ConnId>,
    /// Queues emptied, kept for the next sender to wait: a reliable
    /// session's queue empties at each commit and fills again with up to
    /// its window of `ACK`s, and made anew each time it was grown again by
    /// doubling, a copy of the whole at each step (1.4% of the daemon's
    /// samples under `bench direct --reliable`).
    spare: Vec<VecDeque<Owed>>,
}

/// Emptied queues kept for reuse, at most.
const SPARE_QUEUES: usize = 64;

/// The largest capacity of a queue kept for reuse (a reliable session's
/// window, 1,024, and room to spare).
const SPARE_CAPACITY: usize = 2_048;

impl PendingAcks {
    /// Replies for `sender`: given back to be queued now if nothing of the
    /// sender's waits, otherwise held behind what does.
    pub(super) fn pass(&mut self, sender: ConnId, frames: Bytes) -> Option<Bytes> {
        if self.owed.is_empty() {
            return Some(frames);
        }
        match self.owed.get_mut(&sender) {
            Some(owed) => {
                owed.push_back(Owed::Ready(frames));
                None
            }
            None => Some(frames),
        }
    }

    /// Holds `ack` until its last status arrives; the sender's replies that
    /// come after it wait behind it.
    pub(super) fn wait(&mut self, sender: ConnId, ack: PendingAck) {
        self.senders.insert(ack.message_id, sender);
        let spare = &mut self.spare;
        self.owed
            .entry(sender)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push_back(Owed::Waiting(ack));
    }

    /// Records the status of the `recipient`th entry of `message_id`'s
    /// acknowledgement, and returns its sender, whose replies now complete
    /// [`drain_into`](Self::drain_into) takes. A status for a message no
    /// longer waiting (its sender left) is ignored.
    pub(super) fn settle(
        &mut self,
        message_id: u64,
        recipient: usize,
        status: Code,
    ) -> Option<ConnId> {
        let sender = *self.senders.get(message_id)?;
        let owed = self.owed.get_mut(&sender)?;
        for entry in owed.iter_mut() {
            if let Owed::Waiting(ack) = entry
                && ack.message_id == message_id
            {
                if let Some((_, slot @ None)) = ack.statuses.get_mut(recipient) {
                    *slot = Some(status);
                    if status == Code::DELIVERED {
                        ack.delivered += 1;
                    }
                }
                break;
            }
        }
        Some(sender)
    }

    /// The sender of `message_id`, if its acknowledgement waits: for one
    /// that waited for the store with every status known, whose replies
    /// [`drain_into`](Self::drain_into) then takes.
    pub(super) fn sender_of(&self, message_id: u64) -> Option<ConnId> {
        self.senders.get(message_id).copied()
    }

    /// Takes the complete replies at the head of what `sender` is owed,
    /// in order, onto the end of `out` (nothing if the head still waits).
    pub(super) fn drain_into(&mut self, sender: ConnId, out: &mut Replies) {
        let Some(owed) = self.owed.get_mut(&sender) else {
            return;
        };
        while let Some(first) = owed.front() {
            if let Owed::Waiting(ack) = first
                && !ack.is_complete()
            {
                break;
            }
            match owed.pop_front() {
                Some(Owed::Ready(frames)) => out.encoded(&frames),
                Some(Owed::Waiting(ack)) => {
                    self.senders.remove(ack.message_id);
                    ack.reply(out);
                }
                None => break,
            }
        }
        if owed.is_empty()
            && let Some(emptied) = self.owed.remove(&sender)
            && self.spare.len() < SPARE_QUEUES
            && emptied.capacity() <= SPARE_CAPACITY
        {
            self.spare.push(emptied);
        }
    }

    /// Forgets everything owed to a sender that has left.
    pub(super) fn forget(&mut self, sender: ConnId) {
        if let Some(owed) = self.owed.remove(&sender) {
            for entry in owed {
                if let Owed::Waiting(ack) = entry {
                    self.senders.remove(ack.message_id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chinwag_protocol::{Ack, PREFIX_LEN, RecipientStatus, WireFrame};

    use super::*;

    fn decoded(mut bytes: Bytes) -> Vec<ServerFrame> {
        let mut frames = Vec::new();
        while bytes.len() >= PREFIX_LEN {
            let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            let frame = bytes.split_to(PREFIX_LEN + len).split_off(PREFIX_LEN);
            frames.push(ServerFrame::decode(frame).expect("the hub's own frame decodes"));
        }
        frames
    }

    fn error_about(reference: u64) -> Bytes {
        let mut out = BytesMut::new();
        let error = ServerFrame::Error(chinwag_protocol::ErrorFrame::new(
            Code::BAD_REQUEST,
            reference,
        ));
        encode_reply(&error, &mut out);
        out.freeze()
    }

    /// A status settled, and what its sender can be sent now.
    fn settle(
        acks: &mut PendingAcks,
        message_id: u64,
        recipient: usize,
        status: Code,
    ) -> Option<(ConnId, BytesMut)> {
        let sender = acks.settle(message_id, recipient, status)?;
        let mut out = Replies::new(false, 0);
        acks.drain_into(sender, &mut out);
        Some((sender, out.take()))
    }

    #[test]
    fn an_ack_written_from_its_statuses_is_the_frame_it_would_make() {
        let statuses = Statuses::from_iter([
            ("bob".into(), Some(Code::DELIVERED)),
            ("carol".into(), None),
            ("dave".into(), Some(Code::STORED)),
        ]);
        let mut replies = Replies::new(false, 0);
        PendingAck::new(7, 99, 1, statuses).reply(&mut replies);
        let written = replies.take();
        let status = |nick: &str, status| RecipientStatus {
            nick: nick.to_owned(),
            status,
        };
        let ack = ServerFrame::Ack(Ack {
            client_id: 7,
            message_id: 99,
            delivered: 1,
            statuses: vec![
                status("bob", Code::DELIVERED),
                status("carol", Code::UNABLE_TO_DELIVER),
                status("dave", Code::STORED),
            ],
        });
        let mut made = BytesMut::new();
        encode_reply(&ack, &mut made);
        assert_eq!(written, made);
        let [ServerFrame::Ack(ack)] = &decoded(written.freeze())[..] else {
            panic!("one ACK");
        };
        let codes: Vec<Code> = ack.statuses.iter().map(|s| s.status).collect();
        assert_eq!(
            codes,
            [Code::DELIVERED, Code::UNABLE_TO_DELIVER, Code::STORED]
        );
    }

    fn waiting(client_id: u64, names: &[&str]) -> PendingAck {
        let statuses = names.iter().map(|name| ((*name).into(), None)).collect();
        PendingAck::new(client_id, 100 + client_id, 0, statuses)
    }

    #[test]
    fn replies_pass_straight_through_while_nothing_waits() {
        let mut acks = PendingAcks::default();
        let frames = error_about(1);
        assert_eq!(acks.pass(ConnId(1), frames.clone()), Some(frames));
    }

    #[test]
    fn replies_after_a_waiting_ack_are_held_and_come_out_in_send_order() {
        let (alice, bob) = (ConnId(1), ConnId(2));
        let mut acks = PendingAcks::default();
        acks.wait(alice, waiting(1, &["carol", "dave"]));
        // Alice's later replies wait; Bob's, who is owed nothing, do not.
        assert_eq!(acks.pass(alice, error_about(2)), None);
        acks.wait(alice, waiting(3, &["erin"]));
        assert_eq!(acks.pass(alice, error_about(4)), None);
        assert!(acks.pass(bob, error_about(9)).is_some());

        // Message 1 completes in any order of its recipients; message 3's
        // status arriving first releases nothing.
        assert_eq!(
            settle(&mut acks, 103, 0, Code::DELIVERED).map(|(_, out)| out.len()),
            Some(0)
        );
        let (sender, out) = settle(&mut acks, 101, 1, Code::DELIVERED).expect("waiting");
        assert_eq!((sender, out.len()), (alice, 0));
        let (_, out) = settle(&mut acks, 101, 0, Code::UNABLE_TO_DELIVER).expect("waiting");
        let frames = decoded(out.freeze());
        let [
            ServerFrame::Ack(first),
            ServerFrame::Error(second),
            ServerFrame::Ack(third),
            ServerFrame::Error(fourth),
        ] = frames.as_slice()
        else {
            panic!("four replies in send order, got {frames:?}");
        };
        assert_eq!(
            (first.client_id, first.message_id, first.delivered),
            (1, 101, 1)
        );
        let statuses: Vec<_> = first
            .statuses
            .iter()
            .map(|s| (s.nick.as_str(), s.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("carol", Code::UNABLE_TO_DELIVER),
                ("dave", Code::DELIVERED)
            ]
        );
        assert_eq!(
            (second.reference, third.client_id, fourth.reference),
            (2, 3, 4)
        );
        // Nothing is owed any more: replies pass straight through again.
        assert!(acks.pass(alice, error_about(5)).is_some());
    }

    #[test]
    fn a_sender_that_left_is_forgotten_and_late_statuses_are_ignored() {
        let mut acks = PendingAcks::default();
        acks.wait(ConnId(1), waiting(1, &["carol"]));
        assert_eq!(acks.pass(ConnId(1), error_about(2)), None);
        acks.forget(ConnId(1));
        assert!(acks.settle(101, 0, Code::DELIVERED).is_none());
        assert!(acks.pass(ConnId(1), error_about(3)).is_some());
    }

    #[test]
    fn a_queue_emptied_is_kept_for_the_next_to_wait_and_replies_pass_as_before() {
        let mut acks = PendingAcks::default();
        let alice = ConnId(1);
        // Client ids 0..100: message ids 100..200.
        for id in 0..100 {
            acks.wait(alice, waiting(id, &["bob"]));
        }
        let mut sent = 0;
        for id in 0..100 {
            let (who, out) = settle(&mut acks, 100 + id, 0, Code::STORED).expect("waiting");
            assert_eq!(who, alice);
            sent += decoded(out.freeze()).len();
        }
        assert_eq!(sent, 100);
        assert!(acks.owed.is_empty());
        assert_eq!(acks.spare.len(), 1, "the emptied queue is kept");
        let capacity = acks.spare[0].capacity();
        assert!(capacity >= 100);
        // Nothing waits: replies pass at once, and the next wait takes it.
        assert!(acks.pass(alice, error_about(5)).is_some());
        acks.wait(ConnId(2), waiting(7, &["carol"]));
        assert!(acks.spare.is_empty());
        assert!(acks.owed[&ConnId(2)].capacity() >= capacity);
        assert!(
            acks.pass(ConnId(2), error_about(6)).is_none(),
            "held behind the ACK"
        );
    }
}
