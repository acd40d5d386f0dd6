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

use super::acks::Replies;
use super::id_ring::IdRing;
use super::mailbox::ForStore;
use super::{Actor, encode};
use crate::registry::ConnId;

/// An account, as its windows are keyed: its folded nickname's bytes,
/// shared by the messages that wait for the store.
pub(super) type AccountKey = Arc<[u8]>;

/// Hashes what peers choose (nicknames, client ids): seeded at random per
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
    statuses: Vec<(String, Option<Code>)>,
    /// Connections that sent it again meanwhile, each owed its `ACK`.
    waiters: Vec<ConnId>,
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
                    nick: nick.clone(),
                    status: status.unwrap_or(Code::UNABLE_TO_DELIVER),
                })
                .collect(),
        })
    }
}

/// One account's newest messages, by client id.
#[derive(Debug, Default)]
struct Window {
    outcomes: HashMap<u64, Outcome, PeerKeyed>,
    /// Client ids, oldest first: the oldest is forgotten past the window.
    order: VecDeque<u64>,
    last_ms: u64,
}

impl Window {
    fn insert(&mut self, client_id: u64, outcome: Outcome) {
        if self.outcomes.insert(client_id, outcome).is_none() {
            self.order.push_back(client_id);
        }
        while self.order.len() > SENT_WINDOW {
            if let Some(oldest) = self.order.pop_front() {
                self.outcomes.remove(&oldest);
            }
        }
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

/// Every account's window, and which account each message still waiting
/// for the store belongs to.
#[derive(Debug, Default)]
pub(super) struct Resends {
    windows: HashMap<AccountKey, Window, PeerKeyed>,
    waiting: IdRing<(AccountKey, u64)>,
}

impl Resends {
    /// Whether account `key`'s window is in memory (a login reads it from
    /// the store only when it is not).
    pub(super) fn has(&self, key: &[u8]) -> bool {
        self.windows.contains_key(key)
    }

    /// Installs a window read from the store at a login, unless one came
    /// into memory meanwhile (which holds everything the store does, and
    /// more).
    pub(super) fn install(&mut self, key: &[u8], records: Vec<SentRecord>, now_ms: u64) {
        let window = self.windows.entry(key.into()).or_insert_with(|| Window {
            last_ms: now_ms,
            ..Window::default()
        });
        if !window.order.is_empty() {
            return;
        }
        for record in records {
            let statuses = (record.statuses.into_iter())
                .map(|(nick, code)| (nick, Some(Code(code))))
                .collect();
            let outcome = Outcome {
                message_id: record.message_id,
                delivered: record.delivered,
                statuses,
                waiters: Vec::new(),
            };
            window.insert(record.client_id, outcome);
        }
    }

    /// Looks `client_id` up in account `key`'s window; a connection that
    /// sent it again while it waits is answered when it settles.
    fn seen(&mut self, key: &[u8], client_id: u64, from: ConnId) -> Seen {
        let Some(outcome) =
            (self.windows.get_mut(key)).and_then(|w| w.outcomes.get_mut(&client_id))
        else {
            return Seen::New;
        };
        if outcome.settled() {
            Seen::Answered(outcome.ack(client_id))
        } else {
            outcome.waiters.push(from);
            Seen::Waiting
        }
    }

    /// Remembers a message just routed, with the statuses known so far (the
    /// store's to come), and adds the record the store keeps of it to
    /// `batch`.
    pub(super) fn routed(
        &mut self,
        (key, sender): &(AccountKey, String),
        message: &ForStore,
        now_ms: u64,
        batch: &mut Routed,
    ) {
        let (client_id, message_id) = (message.client_id, message.message_id);
        let (delivered, statuses) = (message.delivered, &message.statuses);
        let window = self.windows.entry(key.clone()).or_default();
        window.last_ms = now_ms;
        window.insert(
            client_id,
            Outcome {
                message_id,
                delivered,
                statuses: statuses.clone(),
                waiters: Vec::new(),
            },
        );
        self.waiting.insert(message_id, (key.clone(), client_id));
        // As the store answers them: a copy stored is `STORED` even if its
        // reliable session then had it at once.
        let statuses = (statuses.iter())
            .map(|(nick, status)| (nick.as_str(), status.unwrap_or(Code::STORED).0));
        batch.sent_from(sender, (client_id, message_id), now_ms, delivered, statuses);
    }

    /// The store's answer for message `message_id`: its statuses by index.
    /// Gives the connections that sent it again meanwhile, and its `ACK`
    /// (`None` if none did).
    pub(super) fn stored(
        &mut self,
        message_id: u64,
        statuses: &[(usize, Code)],
    ) -> Option<(Vec<ConnId>, ServerFrame)> {
        let (key, client_id) = self.waiting.remove(message_id)?;
        let outcome = self.windows.get_mut(&key)?.outcomes.get_mut(&client_id)?;
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
        let waiters = std::mem::take(&mut outcome.waiters);
        // The `ACK` is built only for connections that sent it again and
        // wait for it: nearly always there are none.
        if waiters.is_empty() {
            return None;
        }
        Some((waiters, outcome.ack(client_id)))
    }

    /// Forgets the windows of accounts nobody is logged in to (`online`
    /// says) that sent nothing for a while and wait for nothing.
    pub(super) fn prune(&mut self, now_ms: u64, online: impl Fn(&[u8]) -> bool) {
        self.windows.retain(|key, window| {
            online(key)
                || now_ms.saturating_sub(window.last_ms) < IDLE_MS
                || window.outcomes.values().any(|outcome| !outcome.settled())
        });
    }
}

impl Resends {
    /// Answers a message account `key` sent before (now, or once the store
    /// has answered for it), writing its `ACK` to `replies`; says whether
    /// it did, or the message is new and is to be routed.
    pub(super) fn answer(
        &mut self,
        key: &[u8],
        client_id: u64,
        from: ConnId,
        replies: &mut Replies,
    ) -> bool {
        match self.seen(key, client_id, from) {
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
        mut for_store: ForStore,
        reliable: Option<&(AccountKey, String)>,
        replies: &mut Replies,
    ) {
        self.number(&mut for_store);
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
