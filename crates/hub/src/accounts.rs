//! Accounts as the hub keeps them: the store behind them, the policy an
//! operator sets, passwords (hashed and checked off the actor), and the
//! throttle on wrong passwords.
//!
//! The actor decides (`actor/accounts.rs`); what here can block (argon2
//! takes tens of milliseconds by design) runs on tokio's blocking threads
//! and answers the actor with a command.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chinwag_store::{AccountStore, MailStore, Store};
use tokio::time::Instant;

/// The durable store behind accounts and mailboxes, as the two interfaces
/// of `chinwag-store`: the SQLite store today, a clustered one later,
/// without a change here.
#[derive(Clone)]
pub struct Storage {
    pub(crate) mail: Arc<dyn MailStore>,
    pub(crate) accounts: Arc<dyn AccountStore>,
}

impl Storage {
    /// Accounts and mailboxes in a SQLite [`Store`].
    pub fn sqlite(store: Store) -> Self {
        let store = Arc::new(store);
        Self {
            mail: store.clone(),
            accounts: store,
        }
    }

    /// Accounts and mailboxes in any backend that keeps both.
    pub fn new(mail: Arc<dyn MailStore>, accounts: Arc<dyn AccountStore>) -> Self {
        Self { mail, accounts }
    }
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("mail", &self.mail)
            .finish_non_exhaustive()
    }
}

/// What an operator decides about accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPolicy {
    /// Turn guests away: only registered nicknames may chat
    /// (`--require-accounts`; `ACCOUNT_REQUIRED`). Default: guests welcome.
    pub require_accounts: bool,
    /// Let clients create accounts with `ACCOUNT` (`--registration open`,
    /// the default); closed, only the operator does (`chinwagd account
    /// create`), and clients get `REGISTRATION_CLOSED`.
    pub registration_open: bool,
    /// How old a stored message may grow before the sweeper drops it
    /// (default 30 days); its owner is told how many at the next login.
    pub mailbox_max_age: Duration,
    /// How often the sweeper looks (default one hour).
    pub sweep_every: Duration,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        Self {
            require_accounts: false,
            registration_open: true,
            mailbox_max_age: Duration::from_secs(30 * 24 * 60 * 60),
            sweep_every: Duration::from_secs(60 * 60),
        }
    }
}

/// The shortest password an account may have, in bytes.
pub const MIN_PASSWORD: usize = 8;
/// The longest, in bytes: a bound on what argon2 is handed.
pub const MAX_PASSWORD: usize = 1024;

/// Why a password cannot be an account's, if it cannot: it must have
/// [`MIN_PASSWORD`] to [`MAX_PASSWORD`] bytes.
///
/// # Errors
/// A sentence saying which bound it broke.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.len() < MIN_PASSWORD {
        return Err(format!("a password needs at least {MIN_PASSWORD} bytes"));
    }
    if password.len() > MAX_PASSWORD {
        return Err(format!("a password may have at most {MAX_PASSWORD} bytes"));
    }
    Ok(())
}

/// Hashes a password with argon2id and a fresh random salt, as a PHC
/// string (`$argon2id$v=19$m=19456,t=2,p=1$...`): the `argon2` crate's
/// defaults, OWASP's recommended minimum. Blocks for tens of milliseconds:
/// call it on a blocking thread.
///
/// # Errors
/// The hashing crate's, as text (it fails only on parameters it refuses).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| error.to_string())
}

/// Whether `password` is the one `hash` was made from. A hash that cannot
/// be read matches nothing. Blocks like [`hash_password`].
pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD {
        return false;
    }
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Wrong passwords allowed per nickname before the throttle holds, and how
/// often one more is allowed after that: about three a minute, as ergo.
const PER_NICK: Allowance = Allowance {
    burst: 3.0,
    every: Duration::from_secs(20),
};
/// Wrong passwords allowed per source address: more, since one address
/// may be many people behind a NAT, but a guesser trying many nicknames
/// from one place is held too.
const PER_ADDRESS: Allowance = Allowance {
    burst: 10.0,
    every: Duration::from_secs(6),
};

#[derive(Debug, Clone, Copy)]
struct Allowance {
    burst: f64,
    every: Duration,
}

/// Failures left in one bucket, refilled over time.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    left: f64,
    at: Instant,
}

impl Bucket {
    fn left(&self, allowance: Allowance, now: Instant) -> f64 {
        let refill = now.duration_since(self.at).as_secs_f64() / allowance.every.as_secs_f64();
        (self.left + refill).min(allowance.burst)
    }
}

/// Wrong passwords, counted per nickname and per source address, held in
/// the actor: so the throttle holds across connections (a guesser gains
/// nothing by reconnecting), and a restart forgets it.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// By case-folded nickname.
    nicks: HashMap<Vec<u8>, Bucket>,
    addresses: HashMap<IpAddr, Bucket>,
}

impl Throttle {
    /// Whether a login to `nick` (folded) from `address` must be refused
    /// unchecked: one of its buckets has no failure left.
    pub(crate) fn holds(&self, nick: &[u8], address: Option<IpAddr>, now: Instant) -> bool {
        let empty = |bucket: Option<&Bucket>, allowance| {
            bucket.is_some_and(|bucket| bucket.left(allowance, now) < 1.0)
        };
        empty(self.nicks.get(nick), PER_NICK)
            || address.is_some_and(|ip| empty(self.addresses.get(&ip), PER_ADDRESS))
    }

    /// Counts a wrong password for `nick` from `address`.
    pub(crate) fn failed(&mut self, nick: &[u8], address: Option<IpAddr>, now: Instant) {
        let take = |bucket: &mut Bucket, allowance: Allowance| {
            bucket.left = (bucket.left(allowance, now) - 1.0).max(0.0);
            bucket.at = now;
        };
        let fresh = |allowance: Allowance| Bucket {
            left: allowance.burst,
            at: now,
        };
        take(
            self.nicks
                .entry(nick.to_vec())
                .or_insert_with(|| fresh(PER_NICK)),
            PER_NICK,
        );
        if let Some(ip) = address {
            take(
                self.addresses
                    .entry(ip)
                    .or_insert_with(|| fresh(PER_ADDRESS)),
                PER_ADDRESS,
            );
        }
    }

    /// Forgets buckets that have refilled: what a throttle remembers is
    /// bounded by the failures of the last few minutes.
    pub(crate) fn prune(&mut self, now: Instant) {
        self.nicks
            .retain(|_, bucket| bucket.left(PER_NICK, now) < PER_NICK.burst);
        self.addresses
            .retain(|_, bucket| bucket.left(PER_ADDRESS, now) < PER_ADDRESS.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let hash = hash_password("correct horse").expect("hashing works");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct hors"));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn new_passwords_have_a_length_between_the_bounds() {
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password("12345678").is_ok());
        assert!(check_new_password(&"x".repeat(MAX_PASSWORD)).is_ok());
        assert!(check_new_password(&"x".repeat(MAX_PASSWORD + 1)).is_err());
    }

    #[test]
    fn three_failures_hold_a_nickname_and_time_lets_one_more_through() {
        let mut throttle = Throttle::default();
        let start = Instant::now();
        let ip: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..3 {
            assert!(!throttle.holds(b"bob", Some(ip), start));
            throttle.failed(b"bob", Some(ip), start);
        }
        assert!(throttle.holds(b"bob", Some(ip), start));
        // Another address does not help a guesser: the nickname holds.
        assert!(throttle.holds(b"bob", Some([192, 0, 2, 2].into()), start));
        // Another nickname from the same address is still allowed.
        assert!(!throttle.holds(b"carol", Some(ip), start));
        let later = start + PER_NICK.every;
        assert!(!throttle.holds(b"bob", Some(ip), later));
        throttle.failed(b"bob", Some(ip), later);
        assert!(throttle.holds(b"bob", Some(ip), later));
    }

    #[test]
    fn ten_failures_hold_an_address_whatever_the_nickname() {
        let mut throttle = Throttle::default();
        let now = Instant::now();
        let ip: IpAddr = [192, 0, 2, 1].into();
        for n in 0..10 {
            throttle.failed(format!("user{n}").as_bytes(), Some(ip), now);
        }
        assert!(throttle.holds(b"someone", Some(ip), now));
        assert!(!throttle.holds(b"someone", Some([192, 0, 2, 9].into()), now));
        throttle.prune(now + PER_ADDRESS.every * 10 + PER_NICK.every * 3);
        assert!(throttle.nicks.is_empty() && throttle.addresses.is_empty());
    }
}
