//! The table of users: every registered user, online or not, and the guests
//! online, as the hub's `USERS` frame gives it and its `USER` and `PRESENCE`
//! frames change it.

use std::cmp::Ordering;
use std::sync::{Mutex, PoisonError};

use chinwag_protocol::{Presence, UserEntry, user_flags};

/// The answer to [`Client::who_users`](crate::Client::who_users).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Who {
    /// The table of users, sorted case-insensitively: the hub keeps it for
    /// this connection (the `USERS` option was granted).
    Users(Vec<UserEntry>),
    /// Only who is online: the hub sends no table to this connection (it
    /// keeps no accounts, or this client does not follow presence).
    Roster(Vec<String>),
}

impl Who {
    /// The nicknames online, sorted case-insensitively.
    pub fn online(&self) -> Vec<String> {
        match self {
            Self::Users(users) => users
                .iter()
                .filter(|user| user.online())
                .map(|user| user.nick.clone())
                .collect(),
            Self::Roster(roster) => roster.clone(),
        }
    }
}

/// Nicknames compare without ASCII case, as the hub compares them (they are
/// ASCII by the nickname rules).
fn by_nick(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// The table, kept sorted by nickname so that a change is a binary search.
#[derive(Debug, Default)]
pub(crate) struct UserTable {
    rows: Vec<UserEntry>,
}

impl UserTable {
    /// The table a `USERS` frame gives.
    pub(crate) fn new(mut rows: Vec<UserEntry>) -> Self {
        rows.sort_by(|a, b| by_nick(&a.nick, &b.nick));
        rows.dedup_by(|a, b| by_nick(&a.nick, &b.nick).is_eq());
        Self { rows }
    }

    pub(crate) fn rows(&self) -> &[UserEntry] {
        &self.rows
    }

    fn find(&self, nick: &str) -> Result<usize, usize> {
        self.rows.binary_search_by(|row| by_nick(&row.nick, nick))
    }

    /// Applies a `USER` change: a row with neither flag is removed, any
    /// other replaces the row of that nickname or is added.
    pub(crate) fn apply_user(&mut self, user: UserEntry) {
        let at = self.find(&user.nick);
        match at {
            Ok(i) if user.flags & user_flags::KNOWN == 0 => {
                self.rows.remove(i);
            }
            Err(_) if user.flags & user_flags::KNOWN == 0 => {}
            Ok(i) => self.rows[i] = user,
            Err(i) => self.rows.insert(i, user),
        }
    }

    /// Applies a `PRESENCE`: someone online is marked so (a guest not yet
    /// in the table is added); a registered user going offline stays, last
    /// seen then; a guest going offline leaves the table.
    pub(crate) fn apply_presence(&mut self, presence: &Presence) {
        let at = self.find(&presence.nick);
        match (at, presence.online) {
            (Ok(i), true) => {
                let row = &mut self.rows[i];
                row.flags |= user_flags::ONLINE;
                row.last_seen_ms = 0;
            }
            (Err(i), true) => self.rows.insert(
                i,
                UserEntry {
                    flags: user_flags::ONLINE,
                    last_seen_ms: 0,
                    nick: presence.nick.clone(),
                },
            ),
            (Ok(i), false) if self.rows[i].registered() => {
                let row = &mut self.rows[i];
                row.flags &= !user_flags::ONLINE;
                row.last_seen_ms = presence.ts_ms;
            }
            (Ok(i), false) => {
                self.rows.remove(i);
            }
            (Err(_), false) => {}
        }
    }
}

/// The table, shared by the connection task (which changes it as frames
/// arrive) and the [`Client`](crate::Client) handles (which copy it out).
/// A std mutex: it is held only to change or copy the rows, never across
/// an `.await`.
#[derive(Debug, Default)]
pub(crate) struct SharedTable {
    table: Mutex<Option<UserTable>>,
}

impl SharedTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<UserTable>> {
        // A panic while holding the lock cannot leave the rows half
        // changed in a way that matters more than losing the table.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the table (`None`: the hub keeps none for this connection).
    pub(crate) fn set(&self, rows: Option<Vec<UserEntry>>) {
        *self.lock() = rows.map(UserTable::new);
    }

    /// Changes the table, if there is one.
    pub(crate) fn update(&self, change: impl FnOnce(&mut UserTable)) {
        if let Some(table) = self.lock().as_mut() {
            change(table);
        }
    }

    /// A copy of the rows.
    pub(crate) fn snapshot(&self) -> Option<Vec<UserEntry>> {
        self.lock().as_ref().map(|table| table.rows().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chinwag_protocol::user_flags::{ONLINE, REGISTERED};

    fn row(nick: &str, flags: u8, last_seen_ms: u64) -> UserEntry {
        UserEntry {
            flags,
            last_seen_ms,
            nick: nick.into(),
        }
    }

    fn presence(nick: &str, online: bool, ts_ms: u64) -> Presence {
        Presence {
            online,
            ts_ms,
            nick: nick.into(),
        }
    }

    #[test]
    fn the_table_is_sorted_without_case_and_followed_by_presence() {
        let mut table = UserTable::new(vec![
            row("carol", REGISTERED, 5),
            row("Bob", REGISTERED | ONLINE, 0),
            row("alice", ONLINE, 0),
        ]);
        let nicks = |t: &UserTable| t.rows().iter().map(|r| r.nick.clone()).collect::<Vec<_>>();
        assert_eq!(nicks(&table), ["alice", "Bob", "carol"]);

        // A registered user leaves: still there, last seen then.
        table.apply_presence(&presence("BOB", false, 1_000));
        assert_eq!(table.rows()[1], row("Bob", REGISTERED, 1_000));
        // And comes back: online, no last seen.
        table.apply_presence(&presence("bob", true, 2_000));
        assert_eq!(table.rows()[1], row("Bob", REGISTERED | ONLINE, 0));
        // A guest comes and goes: added, then removed.
        table.apply_presence(&presence("dave", true, 3_000));
        assert_eq!(nicks(&table), ["alice", "Bob", "carol", "dave"]);
        assert_eq!(table.rows()[3], row("dave", ONLINE, 0));
        table.apply_presence(&presence("dave", false, 4_000));
        table.apply_presence(&presence("alice", false, 4_000));
        assert_eq!(nicks(&table), ["Bob", "carol"]);
        // An offline presence for nobody known changes nothing.
        table.apply_presence(&presence("zed", false, 4_000));
        assert_eq!(nicks(&table), ["Bob", "carol"]);
    }

    #[test]
    fn user_changes_add_replace_and_remove_rows() {
        let mut table = UserTable::new(vec![row("alice", ONLINE, 0), row("carol", REGISTERED, 9)]);
        // The guest alice registers: the same row, now registered.
        table.apply_user(row("alice", REGISTERED | ONLINE, 0));
        assert_eq!(table.rows()[0], row("alice", REGISTERED | ONLINE, 0));
        // An account created for someone offline (by the operator) is added.
        table.apply_user(row("bob", REGISTERED, 0));
        assert_eq!(table.rows()[1], row("bob", REGISTERED, 0));
        // Deleted while its owner is online: a guest again.
        table.apply_user(row("alice", ONLINE, 0));
        assert_eq!(table.rows()[0], row("alice", ONLINE, 0));
        // Deleted while offline: flags 0 removes the row.
        table.apply_user(row("CAROL", 0, 0));
        assert_eq!(
            table.rows(),
            [row("alice", ONLINE, 0), row("bob", REGISTERED, 0)]
        );
        // Removing a row that is not there changes nothing.
        table.apply_user(row("zed", 0, 0));
        assert_eq!(table.rows().len(), 2);
    }

    #[test]
    fn who_lists_who_is_online_either_way() {
        let users = Who::Users(vec![row("alice", ONLINE, 0), row("bob", REGISTERED, 7)]);
        assert_eq!(users.online(), ["alice"]);
        let roster = Who::Roster(vec!["alice".into(), "zed".into()]);
        assert_eq!(roster.online(), ["alice", "zed"]);
    }
}
