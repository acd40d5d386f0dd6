//! Who is online, owned by the actor alone.
//!
//! "Who is online" (connections with a nickname) is kept apart from "who
//! exists". Today a user exists only while online, so the second question is
//! answered by [`Lookup::Unknown`] for anyone offline; registered nicknames
//! with offline delivery will add a store of known users behind [`Registry::lookup`]
//! and a [`Lookup::Offline`] case, without changing the online side.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chinwag_protocol::Nick;

use crate::outbox::Outbox;

/// A connection's identity inside the hub, unique for the hub's lifetime.
/// Nicknames are reused; ids are not, so a late goodbye from an old
/// connection can never remove a newer one that took the same nickname.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnId(pub(crate) u64);

/// An online user.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) nick: Nick,
    pub(crate) outbox: Arc<Outbox>,
}

/// What a recipient name resolves to.
#[derive(Debug)]
pub(crate) enum Lookup {
    Online(ConnId),
    /// Nobody by that name.
    Unknown,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    members: HashMap<ConnId, Member>,
    /// Case-folded nickname to connection. Ordered, so that the roster
    /// each newcomer gets is a walk rather than a sort: in a storm of joins
    /// that is the difference between O(n) and O(n log n) with an
    /// allocation per name, per join.
    by_nick: BTreeMap<String, ConnId>,
}

impl Registry {
    /// Adds an online user; gives the nickname back if it is taken.
    pub(crate) fn join(&mut self, id: ConnId, member: Member) -> Result<(), Member> {
        let key = member.nick.folded();
        if self.by_nick.contains_key(&key) {
            return Err(member);
        }
        self.by_nick.insert(key, id);
        self.members.insert(id, member);
        Ok(())
    }

    /// Removes a connection's user, if it had one.
    pub(crate) fn leave(&mut self, id: ConnId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        self.by_nick.remove(&member.nick.folded());
        Some(member)
    }

    pub(crate) fn member(&self, id: ConnId) -> Option<&Member> {
        self.members.get(&id)
    }

    /// Resolves a case-folded name.
    pub(crate) fn lookup(&self, folded: &str) -> Lookup {
        match self.by_nick.get(folded) {
            Some(&id) if self.members.contains_key(&id) => Lookup::Online(id),
            _ => Lookup::Unknown,
        }
    }

    /// Every online user, in no particular order.
    pub(crate) fn online(&self) -> impl Iterator<Item = (ConnId, &Member)> {
        self.members.iter().map(|(&id, m)| (id, m))
    }

    /// Online nicknames, sorted case-insensitively.
    pub(crate) fn roster(&self) -> Vec<String> {
        self.by_nick
            .values()
            .filter_map(|id| self.members.get(id))
            .map(|m| m.nick.to_string())
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }
}
