//! How a [`Client`](crate::Client) connects, queues and reconnects.

use std::fmt;
use std::time::Duration;

use chinwag_protocol::options;

use crate::TlsOptions;

/// Settings for [`Client::connect_with`](crate::Client::connect_with).
/// `ClientOptions::default()` is what [`Client::connect`](crate::Client::connect) uses.
///
/// ```
/// use std::time::Duration;
/// use chinwag_client::{Backoff, ClientOptions};
///
/// let options = ClientOptions::default()
///     .reconnect(Backoff::new(Duration::from_millis(100), Duration::from_secs(10)))
///     .keepalive(Some(Duration::from_secs(15)));
/// assert!(options.reconnect.is_some());
/// ```
///
/// Receipts: a client that [`confirms`](Self::confirms) what it receives
/// tells the senders who asked for [`receipts`](Self::receipts) that it
/// got their messages. `chinwag chat` and `chinwag listen` do both:
///
/// ```
/// use chinwag_client::ClientOptions;
///
/// let options = ClientOptions::default().confirms(true).receipts(true);
/// assert!(options.confirms && options.receipts);
/// ```
///
/// To log in to a registered nickname, give its password; it is never
/// printed, not even by `Debug`:
///
/// ```
/// use chinwag_client::ClientOptions;
///
/// let options = ClientOptions::default().password("correct horse");
/// assert!(!format!("{options:?}").contains("horse"));
/// ```
// Each bool is one protocol option, independent of the others and set by a
// builder method of its own: an enum for each would only rename true and
// false.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Reconnect with this backoff when the connection is lost; `None` (the
    /// default) ends the client instead.
    pub reconnect: Option<Backoff>,
    /// How long opening the TCP connection and registering may take, per attempt.
    pub connect_timeout: Duration,
    /// How long [`Client::quit`](crate::Client::quit) waits for the hub to
    /// close the connection after `QUIT` before closing it itself.
    pub quit_timeout: Duration,
    /// Send the hub a `PING` after this long without hearing from it, and
    /// treat the connection as lost if another such period passes without
    /// any frame. Catches a hub that vanished without closing the socket.
    /// `None` turns it off.
    pub keepalive: Option<Duration>,
    /// Events queued for the [`Events`](crate::Events) reader. While the queue
    /// is full the client stops reading from the socket, so a reader that
    /// falls behind pushes back on the hub (which cuts it as a slow consumer
    /// if that lasts) instead of growing memory.
    pub event_capacity: usize,
    /// Messages sent whose `ACK` has not arrived yet. Past this, sending waits
    /// for acks; it bounds the bookkeeping a fast sender can build up.
    pub max_pending: usize,
    /// Follow presence (the default): receive an
    /// [`Event::Presence`](crate::Event::Presence) for everyone who comes
    /// and goes, and the roster in [`Client::welcome`](crate::Client::welcome).
    /// `false` asks the hub for neither (`NO_PRESENCE`): for a bot or a
    /// gateway on a busy hub. [`Client::who`](crate::Client::who) still
    /// answers, and others still see this client come and go.
    pub presence: bool,
    /// Not announced (`QUIET`): nobody is told this client came or went,
    /// and no roster lists it; its nickname is taken while it is connected
    /// and messages to it still arrive. For one-shot commands. Off by
    /// default.
    pub quiet: bool,
    /// Keep the table of users (`USERS`): every registered user, online or
    /// not, with when each was last seen, and the guests online, kept up to
    /// date from the hub's `USERS`, `USER` and `PRESENCE` frames and read
    /// with [`Client::users`](crate::Client::users).
    /// `None` (the default) asks for it when following
    /// [`presence`](Self::presence) and not [`quiet`](Self::quiet);
    /// `Some(true)` asks for it whatever those say (a quiet `who` wants the
    /// table), although a hub sends none with `presence` off; `Some(false)`
    /// never asks.
    pub users: Option<bool>,
    /// Confirm every message handed to the application (`CONFIRMS`), so
    /// that a sender who asked for [`receipts`](Self::receipts) learns that
    /// this client received it. A message counts as received once it is in
    /// the [`Events`](crate::Events) queue, as a stored message does; the
    /// client confirms in batches, at most 50 ms or 256 messages after one
    /// was handed over, and what is left when it quits. Off by default: a
    /// program that reads messages without giving them to anyone should not
    /// say they were received. Stored messages are confirmed either way
    /// (that is what takes them out of the mailbox).
    pub confirms: bool,
    /// Ask for receipts (`RECEIPTS`): an [`Event::Receipt`](crate::Event::Receipt)
    /// for each message this client sends to named users, from each
    /// recipient whose client confirms it (see [`confirms`](Self::confirms)).
    /// The client asks for them by runs too (`RECEIPT_RUNS`), and hands
    /// out each receipt of a run as its own event. Off by default.
    pub receipts: bool,
    /// Ask for a reliable session (`RELIABLE`, `docs/protocol.md` section
    /// 8.11; granted to an account's login, with a
    /// [`password`](Self::password)): every message naming the account is
    /// held in its mailbox until this client confirms it, and comes again
    /// after a reconnection if it was not confirmed; the client hands each
    /// to the application once, whatever number of times it comes, and
    /// confirms it once handed over. Together with
    /// [`reconnect`](Self::reconnect), a dropped connection or a restarted
    /// hub loses nothing sent to this account. Off by default.
    ///
    /// What this client sends in a reliable session is kept until the hub
    /// acknowledges it, and sent again with the same id after a
    /// reconnection (the hub answers one it had routed with what became of
    /// it, rather than routing it twice); a message sent while
    /// disconnected waits for the next connection. After
    /// [`max_sendings`](Self::max_sendings) sendings without an `ACK`, it
    /// fails with [`ClientError::Unacknowledged`](crate::ClientError::Unacknowledged).
    /// [`max_pending`](Self::max_pending) is then at most
    /// 1,024, the messages per account the hub remembers.
    pub reliable: bool,
    /// In a [`reliable`](Self::reliable) session, how many times a message
    /// is sent (once, and again after each reconnection) before the client
    /// gives up on it. 5 by default, as the original designs had it.
    pub max_sendings: u32,
    /// The account's password, to log in to a registered nickname. `None`
    /// (the default) registers as a guest, which the hub refuses for a
    /// registered nickname ([`ClientError::NickRegistered`](crate::ClientError::NickRegistered)).
    /// Reconnections log in with it again. Never printed.
    pub password: Option<String>,
    /// Speak TLS to the hub (its `--tls-listen` port), checking its
    /// certificate as these options say. `None` (the default): plain TCP.
    pub tls: Option<TlsOptions>,
}

/// Every field but the password, which shows only as present or not.
impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("reconnect", &self.reconnect)
            .field("connect_timeout", &self.connect_timeout)
            .field("quit_timeout", &self.quit_timeout)
            .field("keepalive", &self.keepalive)
            .field("event_capacity", &self.event_capacity)
            .field("max_pending", &self.max_pending)
            .field("presence", &self.presence)
            .field("quiet", &self.quiet)
            .field("users", &self.users)
            .field("confirms", &self.confirms)
            .field("receipts", &self.receipts)
            .field("reliable", &self.reliable)
            .field("max_sendings", &self.max_sendings)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            reconnect: None,
            connect_timeout: Duration::from_secs(10),
            quit_timeout: Duration::from_secs(5),
            keepalive: Some(Duration::from_secs(30)),
            event_capacity: 1024,
            max_pending: 1024,
            presence: true,
            quiet: false,
            users: None,
            confirms: false,
            receipts: false,
            reliable: false,
            max_sendings: 5,
            password: None,
            tls: None,
        }
    }
}

impl ClientOptions {
    /// Turns automatic reconnection on, with this backoff.
    #[must_use]
    pub fn reconnect(mut self, backoff: Backoff) -> Self {
        self.reconnect = Some(backoff);
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`quit_timeout`](Self::quit_timeout).
    #[must_use]
    pub fn quit_timeout(mut self, timeout: Duration) -> Self {
        self.quit_timeout = timeout;
        self
    }

    /// Sets [`keepalive`](Self::keepalive).
    #[must_use]
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.keepalive = interval;
        self
    }

    /// Sets [`event_capacity`](Self::event_capacity) (at least 1).
    #[must_use]
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Sets [`max_pending`](Self::max_pending) (at least 1).
    #[must_use]
    pub fn max_pending(mut self, max: usize) -> Self {
        self.max_pending = max.max(1);
        self
    }

    /// Sets [`presence`](Self::presence).
    #[must_use]
    pub fn presence(mut self, follow: bool) -> Self {
        self.presence = follow;
        self
    }

    /// Sets [`quiet`](Self::quiet).
    #[must_use]
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Sets [`users`](Self::users).
    #[must_use]
    pub fn users(mut self, keep: bool) -> Self {
        self.users = Some(keep);
        self
    }

    /// Sets [`confirms`](Self::confirms).
    #[must_use]
    pub fn confirms(mut self, confirm: bool) -> Self {
        self.confirms = confirm;
        self
    }

    /// Sets [`receipts`](Self::receipts).
    #[must_use]
    pub fn receipts(mut self, receipts: bool) -> Self {
        self.receipts = receipts;
        self
    }

    /// Sets [`reliable`](Self::reliable).
    #[must_use]
    pub fn reliable(mut self, reliable: bool) -> Self {
        self.reliable = reliable;
        self
    }

    /// Sets [`max_sendings`](Self::max_sendings) (at least 1).
    #[must_use]
    pub fn max_sendings(mut self, max: u32) -> Self {
        self.max_sendings = max.max(1);
        self
    }

    /// Sets [`password`](Self::password): log in to the account.
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets [`tls`](Self::tls): speak TLS to the hub's TLS port.
    #[must_use]
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The options this client asks for in `HELLO`. Pipelined messages are
    /// acknowledged a run at a time (`ACK_RUNS`), and receipts come as runs
    /// (`RECEIPT_RUNS`, with receipts); the connection task gives each
    /// its own `Ack` or `Receipt` again.
    pub(crate) fn hello_options(&self) -> u32 {
        let presence = if self.presence {
            0
        } else {
            options::NO_PRESENCE
        };
        let quiet = if self.quiet { options::QUIET } else { 0 };
        let users = if self.users.unwrap_or(self.presence && !self.quiet) {
            options::USERS
        } else {
            0
        };
        let confirms = if self.confirms { options::CONFIRMS } else { 0 };
        let receipts = if self.receipts {
            options::RECEIPTS | options::RECEIPT_RUNS
        } else {
            0
        };
        let reliable = if self.reliable { options::RELIABLE } else { 0 };
        options::ACK_RUNS | presence | quiet | users | confirms | receipts | reliable
    }
}

/// Exponential backoff between reconnection attempts: the first attempt
/// waits `initial`, each next one twice as long, never more than `max`.
///
/// ```
/// use std::time::Duration;
/// use chinwag_client::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
/// let delays: Vec<_> = (1..=4).map(|n| backoff.delay(n)).collect();
/// assert_eq!(delays, [100, 200, 350, 350].map(Duration::from_millis));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The wait before the first attempt.
    pub initial: Duration,
    /// The longest wait between attempts.
    pub max: Duration,
    /// Give up after this many failed attempts in a row; `None` tries forever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    /// 100 ms, doubling up to 30 s, forever.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Waits `initial` first, then doubles up to `max`; never gives up.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            max_attempts: None,
        }
    }

    /// Gives up after `attempts` failed attempts in a row (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// The wait before attempt number `attempt` (counting from 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1 << doublings)
            .map_or(self.max, |delay| delay.min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_users_is_asked_for_where_presence_is_followed() {
        let asks = |options: &ClientOptions| options.hello_options() & options::USERS != 0;
        assert!(asks(&ClientOptions::default()));
        assert!(!asks(&ClientOptions::default().presence(false)));
        assert!(!asks(&ClientOptions::default().quiet(true)));
        assert!(asks(&ClientOptions::default().quiet(true).users(true)));
        assert!(!asks(&ClientOptions::default().users(false)));
    }

    #[test]
    fn confirms_and_receipts_are_asked_for_each_on_its_own() {
        let bits = |options: ClientOptions| {
            options.hello_options() & (options::CONFIRMS | options::RECEIPTS)
        };
        assert_eq!(bits(ClientOptions::default()), 0);
        assert_eq!(
            bits(ClientOptions::default().confirms(true)),
            options::CONFIRMS
        );
        assert_eq!(
            bits(ClientOptions::default().receipts(true)),
            options::RECEIPTS
        );
        assert_eq!(
            bits(ClientOptions::default().confirms(true).receipts(true)),
            options::CONFIRMS | options::RECEIPTS
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let options = ClientOptions::default().password("hunter2-hunter2");
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<hidden>"), "{shown}");
    }
}
