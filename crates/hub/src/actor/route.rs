//! A run of one sender's messages: each message's recipients resolved from
//! the names it gives, its `MESSAGE` encoded once and handed to the
//! delivery, and the sender's replies written in the run's order.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::BytesMut;
use chinwag_protocol::{
    AckView, Code, Encode, ErrorFrame, MAX_NICK_LEN, MessageView, SendPayload, ServerFrame, Utf8,
    encode_frame,
};
use compact_str::CompactString;
use tokio::sync::OwnedSemaphorePermit;

use super::Actor;
use super::accounts::KnownAccounts;
use super::acks::Replies;
use super::delivery::{Delivery, InFlight, Named};
use super::mailbox::{ForStore, HeldCopies, ToStore};
use super::receipts::Receipts;
use super::resend::Sending;
use crate::metrics::Tally;
use crate::outbox::Pressure;
use crate::registry::{ConnId, Lookup, Member, Registry};

/// The error for a message whose `MESSAGE` frame would exceed the frame
/// limit once the sender's name and the recipients are added.
const TOO_LARGE: &str =
    "the message is too large once addressed; send a shorter text or fewer recipients";

impl Actor {
    /// Routes a run of `id`'s messages in order, under one permit, then
    /// queues the messages gathered for single recipients and the run's
    /// replies.
    pub(super) fn route_run(
        &mut self,
        id: ConnId,
        sends: &[SendPayload],
        permit: OwnedSemaphorePermit,
    ) {
        let mut permit = InFlight::new(permit);
        let sender = self.registry.member(id);
        if let Some(sender) = sender {
            sender.sent.set(sender.sent.get() + sends.len() as u64);
        }
        let ack_runs = sender.is_some_and(Member::ack_runs);
        self.receipt_sender = sender
            .filter(|sender| sender.receipts())
            .map(|sender| Arc::clone(&sender.folded));
        // A reliable session's account (`resend.rs`), once per run.
        let reliable = sender.filter(|sender| sender.reliable()).map(|sender| {
            let key = sender.nick.folded();
            (self.resends).sending(key.as_bytes(), sender.nick.to_string())
        });
        let mut replies = Replies::new(ack_runs, sends.len());
        // Room for the whole run in one recipient's buffer (a `MESSAGE` is a
        // `SEND` plus the sender's name, an id and a time): grown by
        // doubling, a run of 64 is copied 7 times.
        self.gathered.room = sends.iter().map(|send| send.len() + 48).sum();
        for send in sends {
            // The store keeps a reliable session's ids as signed integers:
            // one it cannot keep is refused here, alone, rather than failing
            // the store's whole batch (everyone's messages in it).
            if reliable.is_some() && i64::try_from(send.id()).is_err() {
                self.tally.refuse(Code::BAD_REQUEST);
                let message = "a reliable session's message id must be below 2^63";
                replies.frame(&refusal(Code::BAD_REQUEST, send.id(), message));
                continue;
            }
            self.route(id, send, reliable.as_ref(), &mut permit, &mut replies);
        }
        self.gathered.flush(&mut self.wakes);
        self.reply(id, replies.finish());
    }

    /// Queues the replies (`ACK`s and errors) gathered while routing a run
    /// of `id`'s messages: one queue slot for the run, in its order.
    pub(super) fn reply(&mut self, id: ConnId, replies: BytesMut) {
        if replies.is_empty() {
            return;
        }
        // Behind an acknowledgement that still waits, they wait too.
        if let Some(replies) = self.acks.pass(id, replies.freeze()) {
            self.queue_for(id, replies);
        }
    }

    /// Routes one message, and writes the sender's reply to it (its `ACK`,
    /// or an error) at the end of `replies`.
    fn route(
        &mut self,
        from: ConnId,
        send: &SendPayload,
        reliable: Option<&Sending>,
        permit: &mut InFlight,
        replies: &mut Replies,
    ) {
        // A reliable session's message sent before is answered, not routed.
        if let Some(sending) = reliable
            && self.resends.answer(sending, send.id(), from, replies)
        {
            return;
        }
        let Some(sender) = self.registry.member(from) else {
            return;
        };
        let mut reply_error = |code: Code, message: &str| {
            self.tally.refuse(code);
            replies.frame(&refusal(code, send.id(), message));
        };

        let mut named = match send.recipients() {
            Some(_) if send.recipient_count() == 0 => {
                reply_error(Code::BAD_REQUEST, "a message needs at least one recipient");
                return;
            }
            Some(names) => Some(resolve(
                &self.registry,
                &self.accounts.known,
                &mut self.last_found,
                names,
                send.recipient_count(),
            )),
            None => None,
        };

        let message_id = self.message_ids.next();
        let registry = &self.registry;
        // Written straight from the parts, nothing copied first. The
        // recipients are shown as they registered (never the sender's typos
        // or guesses), or as everyone.
        let message = MessageView {
            id: message_id,
            ts_ms: self.now_ms,
            from: sender.nick.as_str(),
            to: named.as_deref().map(|named| named.iter().filter_map(shown)),
            text: send.text_utf8(),
        };
        // Registered recipients who are offline get a stored copy.
        let offline = (named.iter().flatten()).any(|named| named.offline.is_some());
        let mut delivery = Delivery::new(permit, &mut self.congested, &mut self.wakes);
        // A message for one user is written into the buffer of that user's
        // messages in this command, queued when the command is done.
        if let Some((id, member)) = named.as_deref().and_then(single) {
            let to = (id, &member.outbox);
            let pushed = (self.gathered).push(to, delivery.wakes, &message, self.max_frame);
            let Ok(reserved) = pushed else {
                reply_error(Code::BAD_REQUEST, TOO_LARGE);
                return;
            };
            if let Ok(Pressure::Congested) = reserved {
                delivery.congested.insert(id);
            }
            let status = delivery.counted(id, member, reserved);
            let found = named
                .iter_mut()
                .flatten()
                .filter(|named| named.found.is_some());
            found.for_each(|recipient| recipient.status = status);
        } else if named.as_deref().is_some_and(nobody_online) {
            // Nobody gets it now: each recipient is offline, unknown or a
            // reliable session (given its stored copy once the store has
            // it). No frame is made; only its size is checked, as making it
            // would (a `MESSAGE` made and dropped for each reliable
            // session's message was 2% of the daemon's samples under
            // `bench direct --reliable`).
            if message.payload_len() > self.max_frame {
                reply_error(Code::BAD_REQUEST, TOO_LARGE);
                return;
            }
        } else {
            // Whoever this reaches gets it after what they were sent before.
            self.gathered.flush(delivery.wakes);
            // Encoded once; every recipient's queue gets a clone of the same bytes.
            let Ok(frame) = encode_frame(&message, self.max_frame) else {
                reply_error(Code::BAD_REQUEST, TOO_LARGE);
                return;
            };
            delivery.fan_out(from, frame, named.as_deref_mut(), registry);
        }
        delivery.pace();

        count_routed(&mut self.tally, &delivery, named.as_deref());
        let cut = std::mem::take(&mut delivery.cut);
        if let (Some(sender), Some(named)) = (&self.receipt_sender, named.as_deref()) {
            owe_receipts(&mut self.receipts, sender, message_id, named);
        }
        let ids = (send.id(), message_id);
        if offline || reliable.is_some() {
            // Its `ACK` waits for the store.
            let parts = Parts {
                ids,
                ts_ms: self.now_ms,
                from: sender.nick.as_str(),
                text: send.text_utf8(),
            };
            let owes = self.receipt_sender.as_ref();
            let (to_store, known) = (&mut self.to_store, &self.accounts.known);
            let for_store = for_store(to_store, known, owes, &parts, &delivery, named.as_deref());
            // The sender's in-flight budget stays taken until the commit
            // returns: a store that falls behind slows its senders down,
            // rather than its queue filling and refusing work.
            if let Some(permit) = delivery.permit.share() {
                self.to_store.hold(permit);
            }
            self.hold_for_store(from, for_store, reliable, replies);
        } else {
            let failures = &delivery.failures;
            acknowledge(replies, ids, delivery.delivered, named.as_deref(), failures);
        }
        // Whoever this message cut is gone for everyone at once.
        for id in cut {
            self.leave(id);
        }
    }

    /// A status that arrived for a recipient of an acknowledgement that was
    /// waiting for it; whatever its sender can now be sent is gathered
    /// ([`gather_acks`](Self::gather_acks)).
    pub(super) fn settle(&mut self, message_id: u64, recipient: usize, status: Code) {
        if let Some(sender) = self.acks.settle(message_id, recipient, status) {
            self.gather_acks(sender);
        }
    }

    /// An acknowledgement that waited for the store with every status
    /// known (a reliable session's message, remembered): gathered with
    /// what waited behind it.
    pub(super) fn release(&mut self, message_id: u64) {
        if let Some(sender) = self.acks.sender_of(message_id) {
            self.gather_acks(sender);
        }
    }

    /// Takes what `sender` can be sent now into the replies being
    /// gathered. A store's answer holds each sender's messages in runs (as
    /// they were routed): a run's acknowledgements go into the sender's
    /// queue as one entry when the next sender's begin or the answer has
    /// been acted on ([`flush_acks`](Self::flush_acks)), not one each.
    fn gather_acks(&mut self, sender: ConnId) {
        if self.acks_out.0 != Some(sender) {
            self.flush_acks();
            self.acks_out.0 = Some(sender);
            let ack_runs = self.registry.member(sender).is_some_and(Member::ack_runs);
            self.acks_out.1.runs(ack_runs);
        }
        self.acks.drain_into(sender, &mut self.acks_out.1);
    }

    /// Queues the acknowledgements gathered.
    pub(super) fn flush_acks(&mut self) {
        let Some(sender) = self.acks_out.0.take() else {
            return;
        };
        let frames = self.acks_out.1.take();
        if !frames.is_empty() {
            self.queue_for(sender, frames.freeze());
        }
    }
}

/// The error refusing message `reference`.
fn refusal(code: Code, reference: u64, message: &str) -> ServerFrame {
    let message = message.to_owned();
    ServerFrame::Error(ErrorFrame {
        code,
        reference,
        message,
    })
}

/// The one recipient found, if the message reaches exactly one.
fn single<'r>(named: &[Named<'_, 'r>]) -> Option<(ConnId, &'r Member)> {
    let mut found = named.iter().filter_map(|named| named.found);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Whether a message to `named` reaches nobody online now.
fn nobody_online(named: &[Named<'_, '_>]) -> bool {
    named.iter().all(|named| named.found.is_none())
}

/// Counts a message routed: the copies queued, and the recipients it could
/// not reach (those it is stored for are counted when the store answers).
fn count_routed(tally: &mut Tally, delivery: &Delivery<'_, '_>, named: Option<&[Named<'_, '_>]>) {
    tally.routed += 1;
    tally.delivered += u64::from(delivery.delivered);
    for named in named.into_iter().flatten() {
        if named.offline.is_none() && named.status != Code::DELIVERED {
            tally.refuse(named.status);
        }
    }
    for &(_, code) in &delivery.failures {
        tally.refuse(code);
    }
}

/// Receipts for message `message_id` are owed to `sender` by the
/// confirming recipients it reached (messages to everyone get none).
fn owe_receipts(
    receipts: &mut Receipts,
    sender: &Arc<str>,
    message_id: u64,
    named: &[Named<'_, '_>],
) {
    for named in named {
        if let Some((id, member)) = named.found
            && named.status == Code::DELIVERED
            && member.confirms()
        {
            receipts.owe(id, message_id, sender);
        }
    }
}

/// A recipient as a message shows it: as registered (never the sender's
/// typos or guesses); `None` for a name nobody has.
fn shown<'r>(named: &Named<'_, 'r>) -> Option<&'r str> {
    (named.found.map(|(_, member)| member.nick.as_str())).or(named.offline)
}

/// A routed message's parts its stored copies are written from: the
/// client's id and the hub's, and its time, sender and text.
struct Parts<'a> {
    ids: (u64, u64),
    ts_ms: u64,
    from: &'a str,
    text: Utf8<'a>,
}

/// What the store needs of a routed message: its copies for offline and
/// reliable recipients among `named`, written into `to_store`'s batch
/// straight from its parts and numbered for their accounts among `known`
/// (`owes`: its sender, if it asked for receipts), with its `ACK` so far;
/// or, for a reliable session's message with no copy to store, its `ACK`,
/// complete, to remember.
fn for_store(
    to_store: &mut ToStore,
    known: &KnownAccounts,
    owes: Option<&Arc<str>>,
    parts: &Parts<'_>,
    delivery: &Delivery<'_, '_>,
    named: Option<&[Named<'_, '_>]>,
) -> ForStore {
    let delivered = delivery.delivered;
    match named {
        Some(named) if named.iter().any(|named| named.offline.is_some()) => {
            // The message as routed: the delivery set only the recipients'
            // statuses since.
            let routed = MessageView {
                id: parts.ids.1,
                ts_ms: parts.ts_ms,
                from: parts.from,
                to: Some(named.iter().filter_map(shown)),
                text: parts.text,
            };
            let held = to_store.add_copies(&routed, named, known, owes);
            stored_copies(parts.ids, delivered, named, held)
        }
        _ => remembered(parts.ids, delivered, named, &delivery.failures),
    }
}

/// A message with copies to store (written into the store's batch
/// already): its `ACK` so far, the offline recipients' statuses left open,
/// and its copies for reliable sessions online.
fn stored_copies(
    (client_id, message_id): (u64, u64),
    delivered: u32,
    named: &[Named<'_, '_>],
    held: HeldCopies,
) -> ForStore {
    let statuses = named
        .iter()
        .map(|named| {
            let status = named.offline.is_none().then_some(named.status);
            (given_name(named.name), status)
        })
        .collect();
    ForStore {
        client_id,
        message_id,
        delivered,
        statuses,
        copies: named.iter().filter(|named| named.offline.is_some()).count(),
        held,
    }
}

/// A reliable session's message that has no copy to store: its `ACK`,
/// complete, to remember.
fn remembered(
    (client_id, message_id): (u64, u64),
    delivered: u32,
    named: Option<&[Named<'_, '_>]>,
    failures: &[(Utf8<'_>, Code)],
) -> ForStore {
    let statuses = (named.iter().copied().flatten())
        .map(|named| (named.name, named.status))
        .chain(failures.iter().copied())
        .map(|(name, status)| (given_name(name), Some(status)))
        .collect();
    ForStore {
        client_id,
        message_id,
        delivered,
        statuses,
        copies: 0,
        held: HeldCopies::new(),
    }
}

/// A recipient's name as its sender gave it, for an `ACK` that waits: the
/// pending `ACK` and a reliable session's resend window each hold a copy.
fn given_name(name: Utf8<'_>) -> CompactString {
    // Always UTF-8 (checked again: the hub has no `unsafe`), so it is
    // copied once, straight into place.
    match std::str::from_utf8(name.as_bytes()) {
        Ok(name) => CompactString::from(name),
        Err(_) => CompactString::from(String::from(name)),
    }
}

/// Writes a routed message's `ACK` (`ids` are the client's and the hub's):
/// every named recipient's status, or a broadcast's failures.
fn acknowledge(
    replies: &mut Replies,
    (client_id, message_id): (u64, u64),
    delivered: u32,
    named: Option<&[Named<'_, '_>]>,
    failures: &[(Utf8<'_>, Code)],
) {
    let ack = AckView {
        client_id,
        message_id,
        delivered,
        statuses: (named.iter().copied().flatten())
            .map(|named| (named.name, named.status))
            .chain(failures.iter().copied()),
    };
    replies.ack(&ack, reached_all(named, delivered));
}

/// Whether a message reached every user it named, so that a run may
/// acknowledge it. Never a broadcast: its `delivered` is a count its
/// sender could not work out.
fn reached_all(named: Option<&[Named<'_, '_>]>, delivered: u32) -> bool {
    named.is_some_and(|named| {
        named.iter().all(|named| named.status == Code::DELIVERED)
            && u32::try_from(named.len()) == Ok(delivered)
    })
}

/// Resolves named recipients once, case-insensitively, in the order first
/// named; a name repeated in any case counts once. Allocates nothing per
/// name beyond the copy the ack needs: names are folded on the stack,
/// and repeats found by comparing with the names kept so far (a list of
/// recipients is short; long ones fall back to a hash set).
fn resolve<'a, 'r>(
    registry: &'r Registry,
    known: &'r KnownAccounts,
    last_found: &mut LastFound,
    names: impl Iterator<Item = Utf8<'a>>,
    count: usize,
) -> Vec<Named<'a, 'r>> {
    let mut resolved: Vec<Named<'_, '_>> = Vec::with_capacity(count);
    // Only for long lists; creating a hash set costs even when unused.
    let mut seen = (count > 16).then(HashSet::new);
    for name in names {
        let repeated = match &mut seen {
            None => resolved
                .iter()
                .any(|kept| kept.name.as_bytes().eq_ignore_ascii_case(name.as_bytes())),
            Some(seen) => !seen.insert(name.as_bytes().to_ascii_lowercase()),
        };
        if !repeated {
            let (found, offline) = lookup(registry, known, last_found, name.as_bytes());
            // A reliable session is given its messages once they are
            // stored: for routing, as if it were offline.
            let held = found.filter(|(_, member)| member.reliable());
            resolved.push(Named {
                name,
                found: if held.is_some() { None } else { found },
                offline: held.map_or(offline, |(_, member)| Some(member.nick.as_str())),
                held: held.map(|(id, _)| id),
                status: Code::NO_SUCH_USER,
            });
        }
    }
    resolved
}

/// Who `name` is, in any case: the online user, or else the registered
/// account's nickname as registered. Folded once, on the stack; accounts
/// are looked in only for names nobody online has, and only if there are
/// any, so the online paths pay nothing for them.
fn lookup<'r>(
    registry: &'r Registry,
    known: &'r KnownAccounts,
    last_found: &mut LastFound,
    name: &[u8],
) -> (Option<(ConnId, &'r Member)>, Option<&'r str>) {
    // No valid nickname is longer or outside ASCII, so such a name
    // matches nobody.
    let mut folded = [0u8; MAX_NICK_LEN];
    let Some(folded) = folded.get_mut(..name.len()) else {
        return (None, None);
    };
    folded.copy_from_slice(name);
    folded.make_ascii_lowercase();
    if let Some(id) = last_found.get(folded) {
        // Still online: an id is never reused, so it is the same user.
        if let Some(member) = registry.member(id) {
            return (Some((id, member)), None);
        }
    }
    match registry.lookup(folded) {
        Lookup::Online(id, member) => {
            last_found.set(folded, id);
            (Some((id, member)), None)
        }
        Lookup::Unknown if known.is_empty() => (None, None),
        Lookup::Unknown => (
            None,
            known.get(&folded[..]).map(|known| known.nick.as_str()),
        ),
    }
}

/// The last name found, folded, and whom it found. A sender's run of
/// messages is often to one user: the name is then a short comparison and
/// a hash of the id away, rather than a walk of the ordered map of names.
/// An entry whose user has left is simply not found by id.
#[derive(Debug, Default)]
pub(super) struct LastFound {
    name: [u8; MAX_NICK_LEN],
    len: usize,
    id: Option<ConnId>,
}

impl LastFound {
    fn get(&self, folded: &[u8]) -> Option<ConnId> {
        (self.name.get(..self.len) == Some(folded)).then_some(self.id)?
    }

    fn set(&mut self, folded: &[u8], id: ConnId) {
        if let Some(room) = self.name.get_mut(..folded.len()) {
            room.copy_from_slice(folded);
            self.len = folded.len();
            self.id = Some(id);
        }
    }
}
