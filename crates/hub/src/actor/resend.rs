//! Messages a reliable session sends again: recognised by their client id
//! and answered with what became of them the first time, never routed
//! twice (`docs/protocol.md` 8.11).
//!
//! A reliable session's client gives each `SEND` an id unique for its
//! account, and after a lost connection sends again whatever was not
//! acknowledged. Per account, the hub keeps what became of the newest
//! [`SENT_WINDOW`] messages: in memory while the hub runs, and in the store
//! ([`SentRecord`]), written in the same commit as the message's stored
//! copies, so a restarted hub recognises them too (a login reads them).
//! Every message from a reliable session is acknowledged only after that
//! commit: an `ACK` a client has read is one the hub will remember.
//!
//! A message sent again while its first sending still waits for the store
//! is answered when the store does (a waiter), after which it is answered
//! at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chinwag_protocol::{Ack, Code, RecipientStatus, ServerFrame};
use chinwag_store::{Routed, SENT_WINDOW, SentRecord};
use tracing::warn;

use super::acks::{Replies, Statuses};
use super::id_ring::IdRing;
use super::mailbox::ForStore;
use super::{Actor, encode};
use crate::registry::ConnId;

/// An account, as its windows are keyed: its folded nickname's bytes,
/// shared by the messages that wait for the store.
pub(super) type AccountKey = Arc<[u8]>;

/// Hashes what peers choose (nicknames): seeded at random per
/// map, as `SipHash` is, and several times faster on these short keys
/// (`foldhash`, hashbrown's own default).
type PeerKeyed = foldhash::fast::RandomState;

/// How long an account's window stays in memory after its last message
/// once nobody is logged in to it (a login reads it back from the store).
const IDLE_MS: u64 = 10 * 60 * 1000;

/// What became of one message.
#[derive(Debug)]
struct Outcome {
    message_id: u64,
    delivered: u32,
    /// The `ACK`'s statuses; `None` while the store has not answered.
    /// Copies of the pending `ACK`'s names.
    statuses: Statuses,
}

impl Outcome {
    fn settled(&self) -> bool {
        self.statuses.iter().all(|(_, status)| status.is_some())
    }

    fn ack(&self, client_id: u64) -> ServerFrame {
        ServerFrame::Ack(Ack {
            client_id,
            message_id: self.message_id,
            delivered: self.delivered,
            statuses: (self.statuses.iter())
                .map(|(nick, status)| RecipientStatus {
                    nick: nick.to_string(),
                    status: status.unwrap_or(Code::UNABLE_TO_DELIVER),
                })
                .collect(),
        })
    }
}

/// One account's newest messages, oldest first, found by client id.
///
/// Kept in the order they were routed: a message is a push at the back
/// (and past the window, a pop at the front), and its store's answer finds
/// it by position. A library client counts its ids up, so a new message is
/// a look at the last id and a lookup a binary search of `ids`; a client
/// whose ids go down now and then costs itself a scan of its window until
/// the one out of order has left it. In a hash table (before), each of a
/// message's visits was a cache miss.
#[derive(Debug, Default)]
struct Window {
    ids: VecDeque<u64>,
    outcomes: VecDeque<Outcome>,
    /// The position of the oldest, counting every message this window
    /// ever held: a position names one message while it is in the window.
    first: u64,
    /// The position of the newest message whose id was not above the one
    /// before it: `ids` is in order once that one has left.
    unordered_at: u64,
    last_ms: u64,
}

impl Window {
    /// Where message `client_id` is in the window (its newest, should a
    /// client have used an id twice).
    fn find(&self, client_id: u64) -> Option<usize> {
        if self.first >= self.unordered_at {
            if self.ids.back().is_none_or(|last| *last < client_id) {
                return None;
            }
            let at = self.ids.partition_point(|id| *id < client_id);
            return (self.ids.get(at) == Some(&client_id)).then_some(at);
        }
        self.ids.iter().rposition(|id| *id == client_id)
    }

    /// Adds the newest message, forgetting the oldest past the window;
    /// answers its position.
    fn push(&mut self, client_id: u64, outcome: Outcome) -> u64 {
        let position = self.first + self.ids.len() as u64;
        if self.ids.back().is_some_and(|last| *last >= client_id) {
            self.unordered_at = position;
        }
        self.ids.push_back(client_id);
        self.outcomes.push_back(outcome);
        while self.ids.len() > SENT_WINDOW {
            self.ids.pop_front();
            self.outcomes.pop_front();
            self.first += 1;
        }
        position
    }

    /// The message at `position`, while it is in the window.
    fn at(&mut self, position: u64) -> Option<(u64, &mut Outcome)> {
        let at = usize::try_from(position.checked_sub(self.first)?).ok()?;
        Some((*self.ids.get(at)?, self.outcomes.get_mut(at)?))
    }
}

/// What a message from a reliable session comes to before it is routed.
enum Seen {
    /// Not seen before: route it.
    New,
    /// Sent before: its `ACK`, to reply now.
    Answered(ServerFrame),
    /// Sent before and still waiting for the store: answered when it is.
    Waiting,
}

/// Every account's window, and for each message still waiting for the
/// store, its account's window and its position in it.
///
/// The windows are kept in `slots`, found by account in `places`: a
/// window keeps its slot while it lives, so a message waiting for the
/// store names its window by slot. (Named by a clone of the account's key
/// before, each message was an atomic increment of the key's count as it
/// was routed and a decrement as the store answered: 1.2% of the daemon's
/// samples under `bench direct --reliable`.)
#[derive(Debug, Default)]
pub(super) struct Resends {
    places: HashMap<AccountKey, usize, PeerKeyed>,
    slots: Vec<Window>,
    /// Slots whose window was forgotten, to be given again.
    free: Vec<usize>,
    waiting: IdRing<(usize, u64)>,
    /// For a message sent again while its first sending waits for the
    /// store, by hub id: the connections that did, each owed its `ACK`.
    /// Nearly always empty: kept apart from the window's entries, which
    /// are written for every message.
    waiters: HashMap<u64, Vec<ConnId>>,
}

/// A reliable session's account as a run of its messages is routed: its
/// window, found once for the run rather than for each message, and its
/// nickname.
pub(super) struct Sending {
    slot: usize,
    nick: String,
}

impl Resends {
    /// Whether account `key`'s window is in memory (a login reads it from
    /// the store only when it is not).
    pub(super) fn has(&self, key: &[u8]) -> bool {
        self.places.contains_key(key)
    }

    /// Account `key` (its folded nickname's bytes) as it routes a run of
    /// messages: its window (an empty one if it has none) and `nick`.
    pub(super) fn sending(&mut self, key: &[u8], nick: String) -> Sending {
        let (slot, _) = self.window(key);
        Sending { slot, nick }
    }

    /// Account `key`'s window and its slot: an empty one (in a slot
    /// given again, or a new one) if it has none.
    fn window(&mut self, key: &[u8]) -> (usize, &mut Window) {
        let found = self.places.get(key).copied();
        let slot = found.unwrap_or_else(|| {
            let slot = self.free.pop().unwrap_or_else(|| {
                self.slots.push(Window::default());
                self.slots.len() - 1
            });
            self.places.insert(key.into(), slot);
            slot
        });
        (slot, &mut self.slots[slot])
    }

    /// Installs a window read from the store at a login, unless one came
    /// into memory meanwhile (which holds everything the store does, and
    /// more).
    pub(super) fn install(&mut self, key: &[u8], records: Vec<SentRecord>, now_ms: u64) {
        let (_, window) = self.window(key);
        if !window.ids.is_empty() {
            return;
        }
        window.last_ms = now_ms;
        for record in records {
            let statuses = (record.statuses.into_iter())
                .map(|(nick, code)| (nick.into(), Some(Code(code))))
                .collect();
            let outcome = Outcome {
                message_id: record.message_id,
                delivered: record.delivered,
                statuses,
            };
            window.push(record.client_id, outcome);
        }
    }

    /// Looks `client_id` up in the window in `slot`; a connection that
    /// sent it again while it waits is answered when it settles.
    fn seen(&mut self, slot: usize, client_id: u64, from: ConnId) -> Seen {
        let Some(window) = self.slots.get_mut(slot) else {
            return Seen::New;
        };
        let Some(outcome) = (window.find(client_id)).and_then(|at| window.outcomes.get_mut(at))
        else {
            return Seen::New;
        };
        if outcome.settled() {
            Seen::Answered(outcome.ack(client_id))
        } else {
            self.waiters
                .entry(outcome.message_id)
                .or_default()
                .push(from);
            Seen::Waiting
        }
    }

    /// Remembers a message just routed, with the statuses known so far (the
    /// store's to come), and adds the record the store keeps of it to
    /// `batch`.
    pub(super) fn routed(
        &mut self,
        Sending { slot, nick }: &Sending,
        message: &ForStore,
        now_ms: u64,
        batch: &mut Routed,
    ) {
        let (client_id, message_id) = (message.client_id, message.message_id);
        let (delivered, statuses) = (message.delivered, &message.statuses);
        // The slot is the run's (`sending`): always there. Were it not,
        // the message is still recorded in the store, only not in memory.
        if let Some(window) = self.slots.get_mut(*slot) {
            window.last_ms = now_ms;
            let position = window.push(
                client_id,
                Outcome {
                    message_id,
                    delivered,
                    statuses: statuses.clone(),
                },
            );
            self.waiting.insert(message_id, (*slot, position));
        }
        // As the store answers them: a copy stored is `STORED` even if its
        // reliable session then had it at once.
        let statuses =
            (statuses.iter()).map(|(nick, status)| (&**nick, status.unwrap_or(Code::STORED).0));
        batch.sent_from(nick, (client_id, message_id), now_ms, delivered, statuses);
    }

    /// The store's answer for message `message_id`: its statuses by index.
    /// Gives the connections that sent it again meanwhile, and its `ACK`
    /// (`None` if none did).
    pub(super) fn stored(
        &mut self,
        message_id: u64,
        statuses: &[(usize, Code)],
    ) -> Option<(Vec<ConnId>, ServerFrame)> {
        let (slot, position) = self.waiting.remove(message_id)?;
        // Taken first, so that none is left behind by a message the window
        // no longer holds.
        let waiters = if self.waiters.is_empty() {
            None
        } else {
            self.waiters.remove(&message_id)
        };
        let (client_id, outcome) = self.slots.get_mut(slot)?.at(position)?;
        for (index, status) in statuses {
            if let Some((_, slot)) = outcome.statuses.get_mut(*index) {
                *slot = Some(*status);
                if *status == Code::DELIVERED {
                    outcome.delivered += 1;
                }
            }
        }
        // Anything the answer did not name (a store that stopped) is final.
        for (_, slot) in &mut outcome.statuses {
            slot.get_or_insert(Code::STORE_FAILED);
        }
        // The `ACK` is built only for connections that sent it again and
        // wait for it: nearly always there are none.
        Some((waiters?, outcome.ack(client_id)))
    }

    /// Forgets the windows of accounts nobody is logged in to (`online`
    /// says) that sent nothing for a while and wait for nothing.
    pub(super) fn prune(&mut self, now_ms: u64, online: impl Fn(&[u8]) -> bool) {
        // A window that waits for nothing is named by no message waiting
        // for the store: its slot can be given again.
        let slots = &mut self.slots;
        let free = &mut self.free;
        self.places.retain(|key, slot| {
            let Some(window) = slots.get_mut(*slot) else {
                return false;
            };
            let keep = online(key)
                || now_ms.saturating_sub(window.last_ms) < IDLE_MS
                || window.outcomes.iter().any(|outcome| !outcome.settled());
            if !keep {
                *window = Window::default();
                free.push(*slot);
            }
            keep
        });
    }
}

impl Resends {
    /// Answers a message account `key` sent before (now, or once the store
    /// has answered for it), writing its `ACK` to `replies`; says whether
    /// it did, or the message is new and is to be routed.
    pub(super) fn answer(
        &mut self,
        sending: &Sending,
        client_id: u64,
        from: ConnId,
        replies: &mut Replies,
    ) -> bool {
        match self.seen(sending.slot, client_id, from) {
            Seen::New => false,
            Seen::Answered(ack) => {
                replies.frame(&ack);
                true
            }
            Seen::Waiting => true,
        }
    }
}

impl Actor {
    /// Hands a routed message to the store: its copies for offline and
    /// reliable recipients, numbered, and for a reliable session's message
    /// (`reliable`: its account's key and nickname), what became of it.
    /// Its `ACK` waits for the commit.
    pub(super) fn hold_for_store(
        &mut self,
        from: ConnId,
        for_store: ForStore,
        reliable: Option<&Sending>,
        replies: &mut Replies,
    ) {
        if let Some(reliable) = reliable {
            let batch = &mut self.to_store.routed;
            (self.resends).routed(reliable, &for_store, self.now_ms, batch);
        }
        self.store_for_offline(from, for_store, replies);
    }

    /// The store's answer for a reliable session's message: the
    /// connections that sent it again meanwhile get its `ACK`.
    pub(super) fn resend_settled(&mut self, message_id: u64, statuses: &[(usize, Code)]) {
        let Some((waiters, ack)) = self.resends.stored(message_id, statuses) else {
            return;
        };
        if waiters.is_empty() {
            return;
        }
        // The acknowledgements gathered go first, in the order routed.
        self.flush_acks();
        let Some(frame) = encode(&ack) else {
            warn!(
                message_id,
                "could not encode an ACK for a message sent again"
            );
            return;
        };
        for waiter in waiters {
            if self.registry.member(waiter).is_some() {
                self.reply(waiter, bytes::BytesMut::from(&frame[..]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::mailbox::HeldCopies;

    fn outcome(message_id: u64) -> Outcome {
        Outcome {
            message_id,
            delivered: 1,
            statuses: Statuses::new(),
        }
    }

    fn message_at(window: &Window, client_id: u64) -> Option<u64> {
        let at = window.find(client_id)?;
        Some(window.outcomes.get(at)?.message_id)
    }

    #[test]
    fn a_window_of_ids_counting_up_finds_each_and_forgets_the_oldest() {
        let mut window = Window::default();
        let count = SENT_WINDOW as u64 + 10;
        let positions: Vec<u64> = (1..=count)
            .map(|id| window.push(id * 2, outcome(id)))
            .collect();
        assert_eq!(positions, (0..count).collect::<Vec<_>>());
        assert_eq!(window.ids.len(), SENT_WINDOW);
        // The ten oldest are forgotten, the rest found; odd ids never were.
        assert_eq!(message_at(&window, 2), None);
        assert_eq!(message_at(&window, 20), None);
        assert_eq!(message_at(&window, 22), Some(11));
        assert_eq!(message_at(&window, count * 2), Some(count));
        assert_eq!(message_at(&window, 23), None);
        assert_eq!(message_at(&window, count * 2 + 2), None);
        // A position names its message while it is in the window.
        assert!(window.at(positions[0]).is_none());
        let (client_id, found) = window.at(positions[10]).expect("in the window");
        assert_eq!((client_id, found.message_id), (22, 11));
        assert!(window.at(count).is_none());
    }

    #[test]
    fn ids_out_of_order_are_found_by_a_scan_until_they_leave_the_window() {
        let mut window = Window::default();
        window.push(100, outcome(1));
        window.push(7, outcome(2));
        window.push(50, outcome(3));
        // A reused id: the newest is the one found.
        window.push(100, outcome(4));
        for (client_id, message) in [(7, 2), (50, 3), (100, 4)] {
            assert_eq!(message_at(&window, client_id), Some(message));
        }
        assert_eq!(message_at(&window, 60), None);
        assert_eq!(message_at(&window, 101), None);
        // Once the ones out of order have left, ids above the last are
        // new at a glance, and the rest found by binary search.
        for id in 0..SENT_WINDOW as u64 {
            window.push(1_000 + id, outcome(10 + id));
        }
        assert!(window.first >= window.unordered_at);
        assert_eq!(message_at(&window, 100), None);
        assert_eq!(message_at(&window, 1_000), Some(10));
        assert_eq!(message_at(&window, 1_000 + SENT_WINDOW as u64), None);
    }

    fn sent(client_id: u64, message_id: u64) -> ForStore {
        ForStore {
            client_id,
            message_id,
            delivered: 0,
            statuses: Statuses::from_iter([("carol".into(), None)]),
            copies: 1,
            held: HeldCopies::new(),
        }
    }

    /// What account `name`'s window makes of `client_id` sent again by
    /// `from` (new for an account with no window).
    fn seen_by(resends: &mut Resends, name: &str, client_id: u64, from: ConnId) -> Seen {
        match resends.places.get(name.as_bytes()).copied() {
            Some(slot) => resends.seen(slot, client_id, from),
            None => Seen::New,
        }
    }

    #[test]
    fn a_forgotten_window_gives_its_slot_to_the_next_account_and_the_waiting_find_their_own() {
        let mut resends = Resends::default();
        let mut batch = Routed::default();
        let alice = resends.sending(b"alice", "alice".into());
        let bob = resends.sending(b"bob", "bob".into());
        resends.routed(&alice, &sent(1, 100), 0, &mut batch);
        resends.routed(&bob, &sent(1, 101), 0, &mut batch);
        assert!(resends.stored(100, &[(0, Code::STORED)]).is_none());
        // Alice's window waits for nothing and is idle: forgotten, and
        // its slot goes to dave, whose message then waits for the store
        // along with bob's.
        resends.prune(IDLE_MS, |key| key != b"alice");
        assert!(!resends.has(b"alice"));
        let dave = resends.sending(b"dave", "dave".into());
        resends.routed(&dave, &sent(1, 102), IDLE_MS, &mut batch);
        assert_eq!(resends.slots.len(), 2, "alice's slot given again");
        assert!(matches!(
            seen_by(&mut resends, "alice", 1, ConnId(9)),
            Seen::New
        ));
        assert!(matches!(
            seen_by(&mut resends, "dave", 1, ConnId(9)),
            Seen::Waiting
        ));
        let (waiters, _) = (resends.stored(102, &[(0, Code::DELIVERED)]))
            .expect("dave's message, sent again meanwhile");
        assert_eq!(waiters, vec![ConnId(9)]);
        let Seen::Answered(ServerFrame::Ack(ack)) = seen_by(&mut resends, "dave", 1, ConnId(9))
        else {
            panic!("dave's message is answered");
        };
        assert_eq!(ack.message_id, 102);
        assert!(resends.stored(101, &[(0, Code::STORED)]).is_none());
        let Seen::Answered(ServerFrame::Ack(ack)) = seen_by(&mut resends, "bob", 1, ConnId(9))
        else {
            panic!("bob's message is answered");
        };
        assert_eq!(ack.message_id, 101);
    }
}
