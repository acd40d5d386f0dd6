//! Admission by source address: one address, or one crowd, cannot lock
//! everyone else out.
//!
//! Every accepted connection, whatever its front end, passes here before it
//! takes a place under the hub's shared caps (`server.rs`):
//!
//! - **Per address** (IPv4 addresses one by one, IPv6 grouped by a prefix,
//!   /64 by default, since one host commonly holds a whole /64): a limit of
//!   connections that have not registered yet, a limit of registered ones,
//!   and a token bucket on new connections. A connection over any of them
//!   is refused at once with `SERVER_FULL`, before it takes anything shared.
//!   Addresses in the exemption list (loopback by default: a local proxy or
//!   gateway, and the load generators) are not limited per address.
//! - **Shedding**: when the shared cap on unregistered connections is full
//!   anyway (a crowd spread over many addresses), a newcomer does not simply
//!   bounce. The unregistered connection that has sent no whole frame (or
//!   line) yet and waited the longest is closed with `SERVER_FULL`, and the
//!   newcomer waits a moment for its place. A real client sends its `HELLO`
//!   at once, and one that has sent anything is never shed; an idle crowd
//!   sheds itself.
//!
//! Admission decides; whoever asked counts each refusal and shedding per
//! reason (`stats.rs`, `HubStats`) and logs it through the gate that lets
//! one line a second through, so that an attack cannot fill the disk.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use crate::outbox::Outbox;
use chinwag_protocol::Code;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use tokio::time::Instant;

/// Where a connection comes from, as far as admission is concerned: its
/// address for the logs, and the IP address it is limited under, if any.
pub trait Peer: fmt::Debug + Send + 'static {
    /// The source IP address; `None` for transports without one (a Unix
    /// socket, an in-memory pipe), which are not limited per address.
    fn ip(&self) -> Option<IpAddr> {
        None
    }
}

impl Peer for std::net::SocketAddr {
    fn ip(&self) -> Option<IpAddr> {
        Some(Self::ip(self))
    }
}

impl Peer for IpAddr {
    fn ip(&self) -> Option<IpAddr> {
        Some(*self)
    }
}

#[cfg(unix)]
impl Peer for tokio::net::unix::SocketAddr {}

impl Peer for &'static str {}

impl Peer for String {}

/// Limits per source address (`docs/limits.md`, "Admission").
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AddressLimits {
    /// Connections from one address that have not registered yet.
    pub unregistered: usize,
    /// Registered connections from one address (many people may share one
    /// behind a NAT).
    pub registered: usize,
    /// New connections one address may open per second, sustained...
    pub connect_rate: f64,
    /// ...and at once after a quiet spell (everyone behind a NAT
    /// reconnecting after the hub restarts).
    pub connect_burst: u32,
    /// IPv6 addresses are limited by this prefix, not one by one.
    pub ipv6_prefix: u8,
    /// Addresses not limited per address: a trusted proxy or gateway.
    pub exempt: Vec<IpNet>,
}

impl Default for AddressLimits {
    fn default() -> Self {
        Self {
            unregistered: 16,
            registered: 256,
            connect_rate: 20.0,
            connect_burst: 100,
            ipv6_prefix: 64,
            exempt: vec![
                IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
                IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
            ],
        }
    }
}

/// Why admission refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its address opened connections faster than its bucket allows.
    Rate,
    /// Its address holds as many unregistered connections as it may.
    Unregistered,
    /// Its address holds as many registered connections as it may.
    Registered,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Rate => "too many new connections from one address",
            Self::Unregistered => "too many unregistered connections from one address",
            Self::Registered => "too many registered connections from one address",
        }
    }
}

/// What one address holds.
#[derive(Debug)]
struct PerAddress {
    unregistered: usize,
    registered: usize,
    tokens: f64,
    refilled: Instant,
}

/// An unregistered connection that could be shed: closing its outbox with
/// `SERVER_FULL` makes its writer say so and end the connection, so
/// shedding needs nothing of its own per connection.
#[derive(Debug)]
struct Waiting {
    accepted: Instant,
    /// It sent a whole frame or line.
    progressed: bool,
    outbox: Arc<Outbox>,
}

/// The hub's admission state, shared by its accept loops.
#[derive(Debug)]
pub(crate) struct Admission {
    /// Replaced whole by a reconfiguration; read once per admission.
    limits: RwLock<Arc<AddressLimits>>,
    addresses: Mutex<HashMap<IpAddr, PerAddress>>,
    waiting: Mutex<(u64, HashMap<u64, Waiting>)>,
}

/// Addresses kept without connections before the table is pruned.
const PRUNE_AT: usize = 10_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Admission {
    pub(crate) fn new(limits: AddressLimits) -> Self {
        Self {
            limits: RwLock::new(Arc::new(limits)),
            addresses: Mutex::default(),
            waiting: Mutex::default(),
        }
    }

    /// The limits in force.
    fn limits(&self) -> Arc<AddressLimits> {
        self.limits
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// New limits, for the connections admitted from now on (and the
    /// registrations and counts of those already in: an address over a
    /// lowered limit keeps what it has and gets no more).
    pub(crate) fn set_limits(&self, limits: AddressLimits) {
        *self.limits.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(limits);
    }

    /// The address `ip` is limited under (by `limits`): `None` when exempt.
    fn key(limits: &AddressLimits, ip: IpAddr) -> Option<IpAddr> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        if limits.exempt.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        match ip {
            IpAddr::V6(v6) => {
                let prefix = u32::from(limits.ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
                Some(IpAddr::V6((u128::from(v6) & mask).into()))
            }
            v4 @ IpAddr::V4(_) => Some(v4),
        }
    }

    /// Admits a new connection from `ip`, or says why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Ticket, Refusal> {
        let now = Instant::now();
        let limits = self.limits();
        let key = ip.and_then(|ip| Self::key(&limits, ip));
        if let Some(key) = key {
            let mut addresses = lock(&self.addresses);
            if addresses.len() >= PRUNE_AT {
                addresses.retain(|_, held| held.unregistered + held.registered > 0);
            }
            let held = addresses.entry(key).or_insert(PerAddress {
                unregistered: 0,
                registered: 0,
                tokens: f64::from(limits.connect_burst),
                refilled: now,
            });
            let elapsed = now.saturating_duration_since(held.refilled).as_secs_f64();
            held.refilled = now;
            held.tokens =
                (held.tokens + elapsed * limits.connect_rate).min(f64::from(limits.connect_burst));
            if held.tokens < 1.0 {
                return Err(Refusal::Rate);
            }
            if held.unregistered >= limits.unregistered {
                return Err(Refusal::Unregistered);
            }
            held.tokens -= 1.0;
            held.unregistered += 1;
        }
        Ok(Ticket {
            admission: self.clone(),
            key,
            waiting: None,
            registered: false,
            progressed: false,
        })
    }

    /// Closes the unregistered connection that has sent no whole frame (or
    /// line) and waited the longest, to make room for a newcomer; `false`
    /// when there is none. One that has sent something is trying to
    /// register, and is never shed for a newcomer whose intent is unknown.
    pub(crate) fn shed_one(&self) -> bool {
        let mut waiting = lock(&self.waiting);
        let candidate = (waiting.1.iter())
            .filter(|(_, entry)| !entry.progressed)
            .min_by_key(|(_, entry)| entry.accepted)
            .map(|(&id, _)| id);
        let Some(entry) = candidate.and_then(|id| waiting.1.remove(&id)) else {
            return false;
        };
        drop(waiting);
        entry.outbox.close(Some(Code::SERVER_FULL), true);
        true
    }
}

/// A connection's place under its address's limits, and its standing as a
/// candidate for shedding while unregistered. Dropped with the connection.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    /// The address it counts under, unless exempt or without one.
    key: Option<IpAddr>,
    /// Its entry among the connections that could be shed, until it
    /// registers.
    waiting: Option<u64>,
    registered: bool,
    /// It sent a whole frame or line (told to its entry once).
    progressed: bool,
}

impl Ticket {
    /// The source address it counts under (none if exempt or unknown).
    pub(crate) fn address(&self) -> Option<IpAddr> {
        self.key
    }

    /// Enlists the connection, whose frames go to `outbox`, among those
    /// that may be shed to make room until it registers.
    pub(crate) fn enlist(&mut self, outbox: &Arc<Outbox>) {
        if self.registered || self.waiting.is_some() {
            return;
        }
        let mut waiting = lock(&self.admission.waiting);
        let (next, entries) = &mut *waiting;
        *next += 1;
        entries.insert(
            *next,
            Waiting {
                accepted: Instant::now(),
                progressed: false,
                outbox: outbox.clone(),
            },
        );
        self.waiting = Some(*next);
    }

    /// The connection sent a whole frame or line: it is making progress,
    /// and is shed only after those that are not.
    pub(crate) fn progressed(&mut self) {
        if self.progressed {
            return;
        }
        self.progressed = true;
        if let Some(id) = self.waiting
            && let Some(entry) = lock(&self.admission.waiting).1.get_mut(&id)
        {
            entry.progressed = true;
        }
    }

    /// Whether its address may hold one more registered connection.
    pub(crate) fn may_register(&self) -> Result<(), Refusal> {
        let Some(key) = self.key else { return Ok(()) };
        let addresses = lock(&self.admission.addresses);
        if addresses
            .get(&key)
            .is_some_and(|held| held.registered >= self.admission.limits().registered)
        {
            return Err(Refusal::Registered);
        }
        Ok(())
    }

    /// The connection registered: it counts as registered from now on, and
    /// is no longer a candidate for shedding.
    pub(crate) fn registered(&mut self) {
        if self.registered {
            return;
        }
        self.registered = true;
        if let Some(id) = self.waiting.take() {
            lock(&self.admission.waiting).1.remove(&id);
        }
        if let Some(key) = self.key
            && let Some(held) = lock(&self.admission.addresses).get_mut(&key)
        {
            held.unregistered = held.unregistered.saturating_sub(1);
            held.registered += 1;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(id) = self.waiting.take() {
            lock(&self.admission.waiting).1.remove(&id);
        }
        if let Some(key) = self.key
            && let Some(held) = lock(&self.admission.addresses).get_mut(&key)
        {
            if self.registered {
                held.registered = held.registered.saturating_sub(1);
            } else {
                held.unregistered = held.unregistered.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(limits: AddressLimits) -> Arc<Admission> {
        Arc::new(Admission::new(limits))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_is_exempt_by_default_and_ipv6_is_grouped_by_its_prefix() {
        let admission = admission(AddressLimits::default());
        assert_eq!(
            Admission::key(&admission.limits(), "127.3.4.5".parse().unwrap()),
            None
        );
        assert_eq!(
            Admission::key(&admission.limits(), "::1".parse().unwrap()),
            None
        );
        let a = Admission::key(&admission.limits(), "2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Admission::key(&admission.limits(), "2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = Admission::key(&admission.limits(), "2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mapped = Admission::key(&admission.limits(), "::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(mapped, Some(ip("192.0.2.7")));
    }

    #[tokio::test(start_paused = true)]
    async fn one_address_is_held_to_its_limits_and_gets_its_places_back() {
        let admission = admission(AddressLimits {
            unregistered: 2,
            registered: 1,
            connect_burst: 10,
            exempt: Vec::new(),
            ..AddressLimits::default()
        });
        let admit = |text| admission.admit(Some(ip(text)));
        let first = admit("192.0.2.1").unwrap();
        let mut second = admit("192.0.2.1").unwrap();
        assert_eq!(admit("192.0.2.1").unwrap_err(), Refusal::Unregistered);
        // Another address is not affected.
        assert!(admit("192.0.2.2").is_ok());
        // Registering frees an unregistered place; the registered limit holds.
        second.may_register().unwrap();
        second.registered();
        let mut third = admit("192.0.2.1").unwrap();
        assert_eq!(third.may_register(), Err(Refusal::Registered));
        drop(second);
        third.may_register().unwrap();
        third.registered();
        drop(first);
    }

    #[tokio::test(start_paused = true)]
    async fn the_connection_rate_is_a_token_bucket_per_address() {
        let admission = admission(AddressLimits {
            connect_rate: 2.0,
            connect_burst: 3,
            exempt: Vec::new(),
            ..AddressLimits::default()
        });
        let admit = || admission.admit(Some(ip("198.51.100.9")));
        for _ in 0..3 {
            drop(admit().unwrap());
        }
        assert_eq!(admit().unwrap_err(), Refusal::Rate);
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert!(admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn shedding_picks_the_oldest_connection_that_made_no_progress() {
        let admission = admission(AddressLimits::default());
        let admit = || {
            let outbox = Arc::new(Outbox::new(1024, 4096));
            let mut ticket = admission.admit(None).unwrap();
            ticket.enlist(&outbox);
            (ticket, outbox)
        };
        let shed = |outbox: &Outbox| outbox.reason() == Some(Code::SERVER_FULL);
        let (mut oldest, oldest_box) = admit();
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let (_idle, idle_box) = admit();
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        let (_registering, registering_box) = admit();
        oldest.progressed();
        assert!(admission.shed_one());
        assert!(shed(&idle_box));
        assert!(!shed(&oldest_box) && !shed(&registering_box));
        assert!(admission.shed_one());
        assert!(shed(&registering_box));
        // The one that sent a frame is never shed.
        assert!(!admission.shed_one());
        assert!(!shed(&oldest_box));
    }
}
