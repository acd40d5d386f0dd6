//! Who is online, owned by the actor alone.
//!
//! "Who is online" (connections with a nickname) is kept apart from "who
//! exists": registered nicknames, online or not, are the actor's table of
//! accounts (`actor/accounts.rs`), consulted only for names not online.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use chinwag_protocol::{Nick, options};

use crate::outbox::Outbox;

/// A connection's identity inside the hub, unique for the hub's lifetime.
/// Nicknames are reused; ids are not, so a late goodbye from an old
/// connection can never remove a newer one that took the same nickname.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnId(pub(crate) u64);

/// Hashes [`ConnId`]s. The hub hands ids out in sequence and no peer ever
/// chooses one, so they need no defence against collision attacks, and the
/// default hasher bought nothing for the seven lookups a message made (a
/// tenth of the actor's instructions, by callgrind). A multiply by 2^64 / phi
/// spreads sequential ids over the whole word.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

const PHI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(PHI);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(PHI);
    }
}

/// A map keyed by connection.
pub(crate) type IdMap<V> = HashMap<ConnId, V, BuildHasherDefault<IdHasher>>;

/// A set of connections.
pub(crate) type IdSet = HashSet<ConnId, BuildHasherDefault<IdHasher>>;

/// An online user.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) nick: Nick,
    /// Its nickname case folded (the registry's key), shared: what routing
    /// and receipts name it by, one allocation for the session.
    pub(crate) folded: Arc<str>,
    pub(crate) outbox: Arc<Outbox>,
    /// The `HELLO` options granted (`options::*` bits; 0 when it asked
    /// for none).
    pub(crate) options: u32,
    /// Logged in to the account of its nickname: its last-seen time is
    /// kept, and it confirms stored messages.
    pub(crate) account: bool,
    /// Messages it sent and messages queued for it (the admin endpoint's
    /// `/connz`): the actor's own counts, next to what it touches anyway.
    pub(crate) sent: Cell<u64>,
    pub(crate) received: Cell<u64>,
}

impl Member {
    pub(crate) fn new(nick: Nick, outbox: Arc<Outbox>, options: u32, account: bool) -> Self {
        Self {
            folded: Arc::from(nick.folded()),
            nick,
            outbox,
            options,
            account,
            sent: Cell::new(0),
            received: Cell::new(0),
        }
    }

    /// Counts `count` more messages queued for it.
    pub(crate) fn received(&self, count: u64) {
        self.received.set(self.received.get() + count);
    }

    /// Asked for `ACK_RUNS`: runs of delivered messages get one `ACK_RUN`.
    pub(crate) fn ack_runs(&self) -> bool {
        self.options & options::ACK_RUNS != 0
    }

    /// Follows presence (did not ask for `NO_PRESENCE`): told of every
    /// arrival and departure, and given the roster on joining.
    pub(crate) fn presence(&self) -> bool {
        self.options & options::NO_PRESENCE == 0
    }

    /// Asked for `QUIET`: nobody is told it came or went, and no roster
    /// lists it.
    pub(crate) fn quiet(&self) -> bool {
        self.options & options::QUIET != 0
    }

    /// Asked for `USERS`: keeps the table of users (`WHO` answers it;
    /// following presence, it is sent the table and its changes).
    pub(crate) fn users(&self) -> bool {
        self.options & options::USERS != 0
    }

    /// Whether its client confirms the messages it handles (`CONFIRMS`):
    /// a sender who asked is owed a receipt when it does.
    pub(crate) fn confirms(&self) -> bool {
        self.options & options::CONFIRMS != 0
    }

    /// Whether it wants receipts for the messages it sends (`RECEIPTS`).
    pub(crate) fn receipts(&self) -> bool {
        self.options & options::RECEIPTS != 0
    }

    /// A reliable session (`RELIABLE`, granted to account logins only):
    /// messages naming it are stored first, and reach it as `SEQUENCED`
    /// once on disk.
    pub(crate) fn reliable(&self) -> bool {
        self.options & options::RELIABLE != 0
    }

    /// Asked for `RECEIPT_RUNS`: its receipts come as runs.
    pub(crate) fn receipt_runs(&self) -> bool {
        self.options & options::RECEIPT_RUNS != 0
    }
}

/// What a recipient name resolves to.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    Online(ConnId, &'a Member),
    /// Nobody by that name.
    Unknown,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    members: IdMap<Member>,
    /// Case-folded nickname to connection. Ordered, so that the roster
    /// each newcomer gets is a walk rather than a sort: in a storm of joins
    /// that is the difference between O(n) and O(n log n) with an
    /// allocation per name, per join.
    by_nick: BTreeMap<Vec<u8>, ConnId>,
    /// Those who follow presence. Kept apart so that an arrival costs one
    /// step per follower, not per user: with 100,000 idle connections that
    /// opted out, walking everyone at every join was quadratic again.
    watchers: IdSet,
}

impl Registry {
    /// Adds an online user; gives the nickname back if it is taken.
    pub(crate) fn join(&mut self, id: ConnId, member: Member) -> Result<(), Member> {
        let key = member.nick.folded().into_bytes();
        if self.by_nick.contains_key(&key) {
            return Err(member);
        }
        self.by_nick.insert(key, id);
        if member.presence() {
            self.watchers.insert(id);
        }
        self.members.insert(id, member);
        Ok(())
    }

    /// Removes a connection's user, if it had one.
    pub(crate) fn leave(&mut self, id: ConnId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        self.by_nick.remove(member.nick.folded().as_bytes());
        self.watchers.remove(&id);
        Some(member)
    }

    pub(crate) fn member(&self, id: ConnId) -> Option<&Member> {
        self.members.get(&id)
    }

    pub(crate) fn member_mut(&mut self, id: ConnId) -> Option<&mut Member> {
        self.members.get_mut(&id)
    }

    /// Resolves a case-folded name (as bytes: a name from the wire need
    /// not be checked as UTF-8 again to be looked up).
    pub(crate) fn lookup(&self, folded: &[u8]) -> Lookup<'_> {
        let found = self
            .by_nick
            .get(folded)
            .and_then(|&id| Some((id, self.members.get(&id)?)));
        match found {
            Some((id, member)) => Lookup::Online(id, member),
            None => Lookup::Unknown,
        }
    }

    /// Every online user, in no particular order.
    pub(crate) fn online(&self) -> impl Iterator<Item = (ConnId, &Member)> {
        self.members.iter().map(|(&id, m)| (id, m))
    }

    /// Online users who follow presence, in no particular order.
    pub(crate) fn watchers(&self) -> impl Iterator<Item = (ConnId, &Member)> {
        self.watchers
            .iter()
            .filter_map(|&id| Some((id, self.members.get(&id)?)))
    }

    /// Online nicknames, sorted case-insensitively; quiet members are not
    /// listed.
    pub(crate) fn roster(&self) -> Vec<String> {
        self.by_nick
            .values()
            .filter_map(|id| self.members.get(id))
            .filter(|m| !m.quiet())
            .map(|m| m.nick.to_string())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }
}
