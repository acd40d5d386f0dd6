//! Offline delivery: messages for registered users who are offline handed
//! to the store, their acknowledgement completed once the store has
//! committed them, and the mailbox delivered at login and emptied as its
//! owner confirms.
//!
//! The actor never waits for the store: a write is handed over and its
//! answer comes back later as a [`Command::Answer`]. Meanwhile the
//! sender's acknowledgement waits in `PendingAcks`, and so does every
//! reply the sender is owed after it; the other recipients had their
//! message at once.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use chinwag_protocol::{
    Code, Gap, MailboxHeader, Message, MessageView, Recipients, SequencedView, ServerFrame,
};
use chinwag_store::{
    CopyParts, KeptReceipt, LostNumbers, Mailbox, Pending, Routed, StoreError, StoreOutcome,
    StoredMessage, Then, to_names,
};
use smallvec::SmallVec;
use tokio::sync::OwnedSemaphorePermit;
use tracing::warn;

use super::accounts::{
    KnownAccounts, answer_from_any_thread, next_number, return_answer, send_answer,
};
use super::acks::{PendingAck, Replies, Statuses};
use super::delivery::Named;
use super::{Actor, encode};
use crate::command::{Answer, Settled};
use crate::outbox::Pressure;
use crate::registry::{ConnId, Lookup};

/// One message handed to the store: its ids, its `ACK` so far, and how
/// many copies of it the batch holds (written by
/// [`ToStore::add_copies`]), those for reliable sessions online among
/// them.
pub(super) struct ForStore {
    pub(super) client_id: u64,
    pub(super) message_id: u64,
    pub(super) delivered: u32,
    /// The `ACK`'s statuses; `None` for the recipients being stored.
    pub(super) statuses: Statuses,
    pub(super) copies: usize,
    /// The copies for reliable sessions online, delivered to them once
    /// stored.
    pub(super) held: HeldCopies,
}

/// A message's copies for reliable sessions online, each with its index
/// in the `ACK` and its session, held until the store has them. Inline in
/// the ring of messages waiting for the store (a message has one nearly
/// always): in a `Vec` of its own each was a cache miss when the store's
/// answer came, a fifth of `stored_batch`'s own time.
pub(super) type HeldCopies = SmallVec<[(usize, NumberedCopy, ConnId); 1]>;

/// A stored copy as a reliable session is given it: its number, its id
/// and its `SEQUENCED` frame, written from the copy as it is numbered
/// (while it is in this thread's cache) rather than when its commit
/// returns, and without copying its strings twice more on the way.
#[derive(Debug)]
pub(super) struct NumberedCopy {
    pub(super) number: u64,
    pub(super) id: u64,
    /// `None` if it could not be encoded (logged): never delivered live,
    /// it stays in the mailbox.
    pub(super) frame: Option<Bytes>,
    /// Its sender's folded nickname, if it asked for a receipt and was
    /// routing when this copy was (a copy read from a mailbox has `None`:
    /// the store finds the sender owed one, if any, at its confirmation).
    pub(super) owes: Option<Arc<str>>,
}

impl NumberedCopy {
    /// Message `message`'s copy numbered `number`, whose sender `owes` a
    /// receipt if it asked for one.
    fn numbered<'a, To>(message: &MessageView<'a, To>, number: u64, owes: Option<&Arc<str>>) -> Self
    where
        To: Iterator<Item = &'a str> + Clone,
    {
        let frame = SequencedView {
            seq: number,
            message: message.clone(),
        };
        Self {
            number,
            id: message.id,
            frame: encode(&frame),
            owes: owes.cloned(),
        }
    }

    pub(super) fn of(stored: &StoredMessage) -> Self {
        let to = (!stored.to.is_empty()).then(|| stored.to.iter().map(String::as_str));
        let frame = SequencedView {
            seq: stored.number,
            message: MessageView {
                id: stored.id,
                ts_ms: stored.ts_ms,
                from: &stored.sender,
                to,
                text: stored.text.as_str().into(),
            },
        };
        Self {
            number: stored.number,
            id: stored.id,
            frame: encode(&frame),
            owes: None,
        }
    }
}

/// A `GAP` frame for numbers an account lost.
fn gap_frame(lost: &LostNumbers) -> ServerFrame {
    ServerFrame::Gap(Gap {
        first: lost.first,
        last: lost.last.max(lost.first),
        reason: Code(lost.reason),
    })
}

/// The numbers a `take_gaps` request took, once it is answered (none if
/// there was no request, or it failed: they stay for the next login).
async fn taken(request: Option<Result<Pending<Vec<LostNumbers>>, StoreError>>) -> Vec<LostNumbers> {
    let Some(request) = request else {
        return Vec::new();
    };
    match request {
        Ok(pending) => pending.await.unwrap_or_else(|error| {
            warn!(%error, "could not read the numbers an account lost");
            Vec::new()
        }),
        Err(error) => {
            warn!(%error, "could not read the numbers an account lost");
            Vec::new()
        }
    }
}

/// The `ACK` status a store's answer comes to.
fn status(outcome: StoreOutcome) -> Code {
    match outcome {
        StoreOutcome::Stored => Code::STORED,
        StoreOutcome::MailboxFull => Code::MAILBOX_FULL,
        // Deleted since the actor looked: as for any name nobody has.
        StoreOutcome::NoSuchAccount => Code::NO_SUCH_USER,
    }
}

/// Runs a store request whose answer nobody waits for, logging a failure.
pub(super) fn in_background<T: Send + 'static>(
    what: &'static str,
    request: Result<Pending<T>, StoreError>,
) {
    match request {
        Ok(pending) => {
            tokio::spawn(async move {
                if let Err(error) = pending.await {
                    warn!(%error, "{what}");
                }
            });
        }
        Err(error) => warn!(%error, "{what}"),
    }
}

/// The copies for offline users that the current batch of commands
/// routed, handed to the store together when the batch ends: one request,
/// one task awaiting its answer and one command back to the actor for the
/// whole batch, rather than for each message.
#[derive(Default)]
pub(super) struct ToStore {
    /// The number of the next batch handed over, and of the next whose
    /// answer is to be acted on: answers are acted on in the order their
    /// batches were handed over, whatever order they come back in (two
    /// batches committed together wake their tasks at once), so that what
    /// was routed first is delivered and acknowledged first.
    handed: u64,
    answered: u64,
    /// Answers that came before an earlier batch's.
    early: std::collections::BTreeMap<u64, Settled>,
    /// The copies, and what became of the reliable sessions' messages,
    /// kept in the same commit as the copies (`resend.rs`): written into
    /// the batch as they are routed, while they are in this thread's cache
    /// (the store's writer reads it in order).
    pub(super) routed: Routed,
    /// Each message's id and how many copies it has, in order, and the
    /// `ACK` indices of the copies, one after another.
    messages: Vec<(u64, usize)>,
    indices: Vec<usize>,
    /// The numbered copies for accounts offline (not held for a session):
    /// each account and number, recorded as lost if the commit fails.
    numbered: Vec<(String, u64)>,
    /// The senders' in-flight permits, released when the commit returns.
    permits: Vec<Arc<OwnedSemaphorePermit>>,
    /// The batch's confirmations: each mailbox's owner and the ids.
    confirms: Vec<(String, Vec<u64>)>,
    /// The batch's receipts no longer to keep: each owner and the receipts.
    pub(super) forgets: Vec<(String, Vec<(u64, String)>)>,
    /// The batch's confirmations whose receipts need no keeping (told to a
    /// sender that confirmed them, or wanted none): each mailbox's owner
    /// and the ids (`held_confirms.rs`).
    pub(super) releases: Vec<(String, Vec<u64>)>,
    /// Receipts told and not confirmed in time, kept in the same request as
    /// the releases of the copies that owed them.
    pub(super) keeps: Vec<KeptReceipt>,
}

impl ToStore {
    /// Writes `message`'s copies for its recipients offline (and online in
    /// reliable sessions) among `named` into the batch, each numbered for
    /// its account among `known`, straight from the frame routed: nothing
    /// of it is copied into strings of its own on the way (a message's
    /// copies were a `StoredMessage` each, its sender, addressees and text
    /// each a `String`, made and dropped on the actor's thread). Answers
    /// the copies for reliable sessions online, as their `SEQUENCED`
    /// frames, `owes` naming the sender owed a receipt if it asked.
    pub(super) fn add_copies<'a, To>(
        &mut self,
        message: &MessageView<'a, To>,
        named: &[Named<'_, '_>],
        known: &KnownAccounts,
        owes: Option<&Arc<str>>,
    ) -> HeldCopies
    where
        To: Iterator<Item = &'a str> + Clone,
    {
        // The addressees' column, once for every copy: a message to one
        // user borrows its name.
        let to_names = to_names(message.to.clone().into_iter().flatten());
        // Always UTF-8 (checked again: the hub has no `unsafe`), so it is
        // borrowed, never copied.
        let text = match std::str::from_utf8(message.text.as_bytes()) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => Cow::Owned(String::from(message.text)),
        };
        let mut held = HeldCopies::new();
        for (index, named) in named.iter().enumerate() {
            let Some(recipient) = named.offline else {
                continue;
            };
            let number = next_number(known, recipient);
            let copy = CopyParts {
                recipient,
                id: message.id,
                ts_ms: message.ts_ms,
                sender: message.from,
                to_names: &to_names,
                text: &text,
                receipt: owes.is_some(),
                number,
            };
            // A copy for a reliable session online now is likely confirmed
            // within moments: the store holds it in its journal.
            self.routed.copy_parts(&copy, named.held.is_some());
            match named.held {
                Some(session) => {
                    let numbered = NumberedCopy::numbered(message, number, owes);
                    held.push((index, numbered, session));
                }
                None if number > 0 => self.numbered.push((recipient.to_owned(), number)),
                None => {}
            }
            self.indices.push(index);
        }
        held
    }

    /// Copy `message_id` of `recipient`'s mailbox is to be released: after
    /// the last one if it is the same mailbox's.
    pub(super) fn release(&mut self, recipient: &str, message_id: u64) {
        match self.releases.last_mut() {
            Some((last, ids)) if last == recipient => ids.push(message_id),
            _ => self.releases.push((recipient.to_owned(), vec![message_id])),
        }
    }
}

impl ToStore {
    /// Keeps `permit` taken until the batch's commit returns (once per run
    /// of messages under it: a clone only for the run's first, since each
    /// was an atomic increment and decrement a message, 1% of the daemon's
    /// samples under `bench direct --reliable`).
    pub(super) fn hold(&mut self, permit: &Arc<OwnedSemaphorePermit>) {
        if !(self.permits.last()).is_some_and(|last| Arc::ptr_eq(last, permit)) {
            self.permits.push(Arc::clone(permit));
        }
    }
}

impl Actor {
    /// Sets a message aside for the store, its copies written into the
    /// batch already. Its `ACK` waits for the commit, behind the sender's
    /// earlier replies (in `replies`, queued now) and ahead of its later
    /// ones.
    pub(super) fn store_for_offline(
        &mut self,
        from: ConnId,
        message: ForStore,
        replies: &mut Replies,
    ) {
        let ForStore {
            client_id,
            message_id,
            delivered,
            statuses,
            copies,
            held,
        } = message;
        if !held.is_empty() {
            self.held.insert(message_id, held);
        }
        let earlier = replies.take();
        self.reply(from, earlier);
        self.acks.wait(
            from,
            PendingAck::new(client_id, message_id, delivered, statuses),
        );
        self.to_store.messages.push((message_id, copies));
    }

    /// Hands the batch's copies to the store in one request; its answer
    /// settles every `ACK` that waited for it. The store's writer puts the
    /// answer into the actor's queue itself when the commit returns; a
    /// request the store refuses at once (a full queue) is answered at
    /// once, `STORE_FAILED`.
    pub(super) fn flush_store(&mut self) {
        if self.to_store.messages.is_empty() {
            return;
        }
        let next = Routed::sized_like(&self.to_store.routed);
        let routed = std::mem::replace(&mut self.to_store.routed, next);
        let messages = std::mem::take(&mut self.to_store.messages);
        let indices = std::mem::take(&mut self.to_store.indices);
        let permits = std::mem::take(&mut self.to_store.permits);
        let numbered = std::mem::take(&mut self.to_store.numbered);
        let batch = self.to_store.handed;
        self.to_store.handed += 1;
        let answers = self.accounts.answers.clone();
        let runtime = tokio::runtime::Handle::current();
        // Run by the store's writer as soon as the commit returns (or at
        // once, here, if the store refuses the request): the answer goes
        // straight into the actor's queue, with no task waiting for it.
        let then: Then<Vec<StoreOutcome>> = Box::new(move |answer| {
            let (outcomes, lost) = match answer {
                Ok(outcomes) => (Some(outcomes), Vec::new()),
                Err(error) => {
                    warn!(%error, "could not store messages for offline users");
                    (None, numbered)
                }
            };
            drop(permits);
            let mut outcomes = outcomes.map(Vec::into_iter);
            let statuses = (indices.into_iter())
                .map(|index| {
                    let outcome = outcomes.as_mut().and_then(Iterator::next);
                    (index, outcome.map_or(Code::STORE_FAILED, status))
                })
                .collect();
            let settled = Settled { messages, statuses };
            let answer = Answer::Stored {
                batch,
                settled,
                lost,
            };
            answer_from_any_thread(&answers, &runtime, answer);
        });
        match &self.accounts.storage {
            Some(storage) => storage.mail.store_routed_then(routed, then),
            None => then(Err(StoreError::Closed)),
        }
    }

    /// The store's answer for batch `batch`: acted on once every earlier
    /// batch's has been.
    pub(super) fn stored_batch(&mut self, batch: u64, settled: Settled) {
        self.to_store.early.insert(batch, settled);
        while let Some(settled) = (self.to_store.early).remove(&self.to_store.answered) {
            self.to_store.answered += 1;
            let Settled {
                messages,
                mut statuses,
            } = settled;
            let mut rest = statuses.as_mut_slice();
            for (message_id, count) in messages {
                let (its, after) = rest.split_at_mut(count.min(rest.len()));
                self.stored(message_id, its);
                rest = after;
            }
        }
        self.flush_acks();
    }

    /// Delivers a stored copy to the reliable session it was routed to,
    /// if that session is still online (and has not had it from its
    /// mailbox); says whether it did. Its `CONFIRM` then takes the copy out
    /// of the mailbox. A session that logged in since reads it in its
    /// mailbox: a login hands the store every copy routed before it ahead
    /// of its mailbox read (`read_mailbox`), so delivering it here too
    /// would show it twice, or after later ones. A session whose mailbox is
    /// still being read or sent has the copy join its backlog, so that it
    /// comes in number order (`backlog.rs`).
    fn deliver_held(&mut self, mut copy: NumberedCopy, session: ConnId) -> bool {
        let Some(member) = self.registry.member(session) else {
            return false;
        };
        let id = session;
        if (self.stored_out.get(&id)).is_some_and(|out| out.get(copy.id).is_some()) {
            return false;
        }
        (self.stored_out.entry(id).or_default()).insert(copy.id, copy.owes.take());
        let Some(copy) = self.backlogs.hold(id, copy) else {
            self.send_backlog(id);
            return true;
        };
        let Some(frame) = copy.frame else {
            return false;
        };
        member.received(1);
        self.queue_for(id, frame);
        true
    }

    /// Tells connection `id`, a reliable session, numbers its account lost.
    pub(super) fn tell_gaps(&mut self, id: ConnId, gaps: &[LostNumbers]) {
        if self.registry.member(id).is_none() {
            return;
        }
        for lost in gaps {
            if let Some(frame) = encode(&gap_frame(lost)) {
                self.queue_for(id, frame);
            }
        }
    }

    /// A held copy for reliable session `session` that was not stored:
    /// its number will never come. A copy refused for a full mailbox was
    /// recorded as lost by the store, which is asked for what it holds; a
    /// failed commit recorded nothing, so it is told as it is.
    fn lost_held(&mut self, copy: &NumberedCopy, session: ConnId, status: Code) {
        let Some(member) = self.registry.member(session) else {
            return;
        };
        if copy.number == 0 {
            return;
        }
        // The session's account: the copy's recipient.
        let account = member.nick.to_string();
        if status != Code::MAILBOX_FULL {
            let lost = LostNumbers {
                first: copy.number,
                last: copy.number,
                reason: status.0,
            };
            return self.tell_gaps(session, &[lost]);
        }
        let Some(storage) = &self.accounts.storage else {
            return;
        };
        let gaps = Some(storage.mail.take_gaps(&account));
        let answers = self.accounts.answers.clone();
        tokio::spawn(async move {
            let gaps = taken(gaps).await;
            send_answer(&answers, Answer::Gaps { id: session, gaps }).await;
        });
    }

    /// The store's answer for a message's offline recipients (none, for
    /// a reliable session's message that only had to be remembered).
    pub(super) fn stored(&mut self, message_id: u64, statuses: &mut [(usize, Code)]) {
        let mut held = self.held.remove(message_id).unwrap_or_default();
        for (index, status) in &mut *statuses {
            if let Some(at) = held.iter().position(|(held, _, _)| *held == *index) {
                let (_, copy, session) = held.swap_remove(at);
                if *status != Code::STORED {
                    self.lost_held(&copy, session, *status);
                } else if self.deliver_held(copy, session) {
                    *status = Code::DELIVERED;
                }
            }
            self.tally.status(*status);
            self.settle(message_id, *index, *status);
        }
        // An acknowledgement with nothing left to wait for goes out now.
        self.release(message_id);
        self.resend_settled(message_id, statuses);
    }

    /// A login to an account: its outbox holds live traffic back (after
    /// the `WELCOME` already queued) while the mailbox is read.
    pub(super) fn read_mailbox(&mut self, id: ConnId) {
        if self.registry.member(id).is_none() || self.accounts.storage.is_none() {
            return;
        }
        // Confirmations held for receipts go to the store ahead of this
        // login's reads (its mailbox, its receipts kept): the copies they
        // confirmed are not read again, and the receipts they owe are.
        self.flush_held_confirms(true);
        self.flush_releases();
        let Some(member) = self.registry.member(id) else {
            return;
        };
        member.outbox.park();
        if member.reliable() {
            self.backlogs.start(id);
            // Numbers lost to a failed commit and not recorded yet are
            // handed to the store ahead of this login's `take_gaps`.
            self.record_lost();
        }
        // Every copy routed before this login goes to the store ahead of
        // the read, so the read has it: none is left for a session that
        // is gone (`deliver_held`).
        self.flush_store();
        let Some(member) = self.registry.member(id) else {
            return;
        };
        let Some(storage) = &self.accounts.storage else {
            return;
        };
        let reliable = member.reliable();
        match storage.mail.mailbox(member.nick.as_str()) {
            Ok(pending) => {
                let answers = self.accounts.answers.clone();
                let gaps = reliable.then(|| storage.mail.take_gaps(member.nick.as_str()));
                tokio::spawn(async move {
                    let mailbox = pending.await;
                    let gaps = taken(gaps).await;
                    send_answer(&answers, Answer::Mailbox { id, mailbox, gaps }).await;
                });
            }
            Err(error) => self.mailbox_read(id, Err(error), &[]),
        }
    }

    /// A login's mailbox, read: `MAILBOX`, then each stored message, go in
    /// front of the live traffic held back meanwhile. A mailbox that could
    /// not be read is announced as empty; its messages wait for the next
    /// login.
    pub(super) fn mailbox_read(
        &mut self,
        id: ConnId,
        mailbox: Result<Mailbox, StoreError>,
        gaps: &[LostNumbers],
    ) {
        let Some(member) = self.registry.member(id) else {
            return;
        };
        let mailbox = mailbox.unwrap_or_else(|error| {
            warn!(%error, nick = %member.nick, "could not read a mailbox at login");
            Mailbox::default()
        });
        // A reliable session may have had some already: delivered once
        // stored, after this read was asked for.
        let out = self.stored_out.entry(id).or_default();
        let added = out.add_missing(mailbox.messages.iter().map(|stored| stored.id), || None);
        // In the order the store read them, each once.
        let mut taken = vec![false; added.len()];
        let messages: Vec<StoredMessage> = (mailbox.messages.into_iter())
            .filter(|stored| {
                let at = added.binary_search(&stored.id).ok();
                let taken = at.and_then(|at| taken.get_mut(at));
                taken.is_some_and(|taken| !std::mem::replace(taken, true))
            })
            .collect();
        if out.is_empty() {
            self.stored_out.remove(&id);
        }
        let reliable = member.reliable();
        // A reliable session's copies go a window at a time, merged in
        // number order with those whose commits returned meanwhile.
        let (count, messages) = if reliable {
            (self.backlogs.read(id, &messages), Vec::new())
        } else {
            (messages.len(), messages)
        };
        let header = ServerFrame::Mailbox(MailboxHeader {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            expired: u32::try_from(mailbox.expired).unwrap_or(u32::MAX),
        });
        let mut frames = Vec::with_capacity(messages.len() + gaps.len() + 1);
        // Numbers lost come first: `MAILBOX` is followed by its messages.
        frames.extend(gaps.iter().filter_map(|lost| encode(&gap_frame(lost))));
        frames.extend(encode(&header));
        if reliable {
            frames.extend(self.backlog_frames(id));
        }
        let Some(member) = self.registry.member(id) else {
            return;
        };
        member.received(messages.len() as u64);
        for stored in messages {
            let to = if stored.to.is_empty() {
                Recipients::Everyone
            } else {
                Recipients::Users(stored.to)
            };
            let message = ServerFrame::StoredMessage(Message {
                id: stored.id,
                ts_ms: stored.ts_ms,
                from: stored.sender,
                to,
                text: stored.text,
            });
            frames.extend(encode(&message));
        }
        if member.outbox.unpark(frames) == Pressure::Congested {
            self.congested.insert(id);
        }
        if mailbox.expired > 0
            && let Some(storage) = &self.accounts.storage
        {
            in_background(
                "could not record that expired messages were told",
                storage
                    .mail
                    .clear_expired(member.nick.as_str(), mailbox.expired),
            );
        }
    }

    /// Messages member `id` has handled: receipts owed for live ones are
    /// due, and stored ones leave its mailbox (and the store answers whose
    /// senders are owed a receipt for them).
    pub(super) fn confirm(&mut self, id: ConnId, ids: Vec<u64>) {
        let Some(member) = self.registry.member(id) else {
            return;
        };
        if ids.is_empty() {
            return;
        }
        if member.confirms() {
            self.receipts
                .confirmed(id, member.nick.as_str(), &ids, self.now_ms);
        }
        // Of these, the stored messages this login delivered: those whose
        // sender the actor knows owed a receipt apart.
        let Some(out) = self.stored_out.get_mut(&id) else {
            return;
        };
        let mut stored = Vec::new();
        let mut owed = Vec::new();
        for message_id in ids {
            match out.remove(message_id) {
                Some(Some(sender)) => owed.push((message_id, sender)),
                Some(None) => stored.push(message_id),
                None => {}
            }
        }
        if out.is_empty() {
            self.stored_out.remove(&id);
        }
        if stored.is_empty() && owed.is_empty() {
            return;
        }
        let nick = member.nick.to_string();
        self.backlogs.confirmed(id, stored.len() + owed.len());
        self.send_backlog(id);
        if self.accounts.storage.is_none() {
            return;
        }
        let released = self.tell_receipts(id, &nick, owed, &mut stored);
        if !released.is_empty() {
            self.to_store.releases.push((nick.clone(), released));
        }
        if !stored.is_empty() {
            self.to_store.confirms.push((nick, stored));
        }
    }

    /// Hands the store the copies to release without keeping their
    /// receipts, and the receipts told and not confirmed in time
    /// (`held_confirms.rs`), in one request.
    pub(super) fn flush_releases(&mut self) {
        let Some(storage) = &self.accounts.storage else {
            return;
        };
        let releases = std::mem::take(&mut self.to_store.releases);
        let keeps = std::mem::take(&mut self.to_store.keeps);
        if !releases.is_empty() || !keeps.is_empty() {
            in_background(
                "could not remove confirmed messages from mailboxes",
                storage.mail.release_all(releases, keeps),
            );
        }
    }

    /// Hands the batch's confirmations (and the receipts confirmed) to the
    /// store in one request each, however many `CONFIRM`s the batch held:
    /// a burst of them cannot fill the store's queue. The store answers
    /// whose senders are owed a receipt, per mailbox.
    pub(super) fn flush_confirms(&mut self) {
        // Kept before any forgetting, so that a receipt confirmed late
        // (once its confirmation went to the store) is forgotten after it
        // was kept.
        self.flush_releases();
        let Some(storage) = &self.accounts.storage else {
            return;
        };
        let forgets = std::mem::take(&mut self.to_store.forgets);
        if !forgets.is_empty() {
            in_background(
                "could not forget confirmed receipts",
                storage.mail.forget_receipts(forgets),
            );
        }
        if self.to_store.confirms.is_empty() {
            return;
        }
        let confirms = std::mem::take(&mut self.to_store.confirms);
        let nicks: Vec<String> = confirms.iter().map(|(nick, _)| nick.clone()).collect();
        let received_ms = self.now_ms;
        match storage.mail.confirm_all(confirms, received_ms) {
            Ok(pending) => {
                let answers = self.accounts.answers.clone();
                // Tracked: shutdown waits for it. The receipts owed to
                // accounts were kept in the confirmation's commit; those of
                // guests are lost if the actor has stopped (their senders'
                // connections are closing).
                self.tasks.spawn(async move {
                    match pending.await {
                        Ok(all) => {
                            for (nick, confirmed) in nicks.into_iter().zip(all) {
                                if confirmed.receipts.is_empty() && confirmed.kept.is_empty() {
                                    continue;
                                }
                                let answer = Answer::Confirmed {
                                    nick,
                                    received_ms,
                                    confirmed,
                                };
                                let _ = return_answer(&answers, answer).await;
                            }
                        }
                        Err(error) => {
                            warn!(%error, "could not remove confirmed messages from mailboxes");
                        }
                    }
                });
            }
            Err(error) => warn!(%error, "could not remove confirmed messages from mailboxes"),
        }
    }

    /// Drops stored messages past the age limit; their owners are told how
    /// many at their next login, and a reliable session online is told
    /// the numbers it lost at once (`expired`).
    pub(super) fn expire(&mut self) {
        let Some(storage) = &self.accounts.storage else {
            return;
        };
        let max_age = self.accounts.policy.mailbox_max_age;
        match storage.mail.expire(self.now_ms, max_age) {
            Ok(pending) => {
                let answers = self.accounts.answers.clone();
                tokio::spawn(async move {
                    match pending.await {
                        Ok(expired) if !expired.is_empty() => {
                            send_answer(&answers, Answer::Expired(expired)).await;
                        }
                        Ok(_) => {}
                        Err(error) => warn!(%error, "could not drop expired messages"),
                    }
                });
            }
            Err(error) => warn!(%error, "could not drop expired messages"),
        }
    }

    /// The sweep dropped messages from these mailboxes: each owner online
    /// in a reliable session is told the numbers it will never get (`GAP`)
    /// now, not at its next login.
    pub(super) fn expired(&mut self, expired: &[chinwag_store::Expired]) {
        let Some(storage) = &self.accounts.storage else {
            return;
        };
        for mailbox in expired {
            let folded = mailbox.recipient.to_ascii_lowercase();
            let Lookup::Online(id, member) = self.registry.lookup(folded.as_bytes()) else {
                continue;
            };
            if mailbox.dropped == 0 || !member.reliable() {
                continue;
            }
            let gaps = Some(storage.mail.take_gaps(member.nick.as_str()));
            let answers = self.accounts.answers.clone();
            tokio::spawn(async move {
                let gaps = taken(gaps).await;
                if !gaps.is_empty() {
                    send_answer(&answers, Answer::Gaps { id, gaps }).await;
                }
            });
        }
    }
}
