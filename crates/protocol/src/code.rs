//! Numeric codes shared by error frames and per-recipient ack statuses.

use std::fmt;

/// A numeric code carried by [`ErrorFrame`](crate::ErrorFrame)s and by the
/// per-recipient statuses of an [`Ack`](crate::Ack).
///
/// The set of codes is open: a newer hub may send a code this crate does not
/// name, so this is a newtype over `u16` rather than an enum. The named
/// constants are the ones documented in `docs/protocol.md`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub u16);

impl Code {
    /// Ack status: the message was queued on the recipient's connection.
    pub const DELIVERED: Self = Self(0);

    /// The frame could not be parsed (unknown opcode, truncated field, bad
    /// UTF-8, trailing bytes). Fatal: the hub closes the connection.
    pub const MALFORMED_FRAME: Self = Self(1);
    /// The length prefix exceeds the hub's maximum frame size. Fatal.
    pub const FRAME_TOO_LARGE: Self = Self(2);
    /// `HELLO` named a protocol version the hub does not speak. Fatal.
    pub const UNSUPPORTED_VERSION: Self = Self(3);
    /// A frame other than `HELLO`, `PING` or `PONG` arrived before registration.
    pub const NOT_REGISTERED: Self = Self(4);
    /// A second `HELLO` on a registered connection.
    pub const ALREADY_REGISTERED: Self = Self(5);
    /// The hub is at its connection limit. Fatal.
    pub const SERVER_FULL: Self = Self(6);
    /// The hub is shutting down. Fatal.
    pub const SHUTTING_DOWN: Self = Self(7);
    /// This connection did not read its messages fast enough. Fatal.
    pub const SLOW_CONSUMER: Self = Self(8);
    /// A well-formed request the hub will not carry out (for example a `SEND`
    /// with an empty recipient list). The connection stays open.
    pub const BAD_REQUEST: Self = Self(9);
    /// `HELLO` did not arrive in time. Fatal.
    pub const REGISTRATION_TIMEOUT: Self = Self(10);
    /// The peer stopped answering pings. Fatal.
    pub const PING_TIMEOUT: Self = Self(11);
    /// The sender exceeded its message rate; this message was dropped.
    pub const RATE_LIMITED: Self = Self(12);
    /// A frame started arriving and then stopped midway for too long. Fatal.
    pub const FRAME_TIMEOUT: Self = Self(13);
    /// The sender kept exceeding its message rate for too long. Fatal.
    pub const FLOODING: Self = Self(14);
    /// Someone logged in to this account from another connection, which
    /// replaces this one. Fatal.
    pub const SESSION_REPLACED: Self = Self(15);

    /// Nickname refused: empty.
    pub const NICK_EMPTY: Self = Self(20);
    /// Nickname refused: longer than [`MAX_NICK_LEN`](crate::MAX_NICK_LEN).
    pub const NICK_TOO_LONG: Self = Self(21);
    /// Nickname refused: not valid UTF-8.
    pub const NICK_NOT_UTF8: Self = Self(22);
    /// Nickname refused: does not start with an ASCII letter.
    pub const NICK_BAD_START: Self = Self(23);
    /// Nickname refused: a character outside `A-Z a-z 0-9 _ - .`.
    pub const NICK_BAD_CHAR: Self = Self(24);
    /// Nickname refused: reserved (`all`, `everyone`, `server`, ...).
    pub const NICK_RESERVED: Self = Self(25);
    /// Nickname refused: someone online already uses it (case-insensitively).
    pub const NICK_TAKEN: Self = Self(26);
    /// Nickname refused: it is registered, and `HELLO` carried no password.
    /// Log in with the account's password, or choose another nickname.
    pub const NICK_REGISTERED: Self = Self(27);

    /// Ack status: no user by that name exists.
    pub const NO_SUCH_USER: Self = Self(30);
    /// Ack status: the user exists but the message could not be queued for it
    /// (it is being disconnected, for example as a slow consumer).
    pub const UNABLE_TO_DELIVER: Self = Self(31);
    /// Ack status: the recipient is registered and offline; the message is
    /// in its mailbox, on disk (the commit that holds it has returned).
    pub const STORED: Self = Self(32);
    /// Ack status: the recipient is registered and offline, and its mailbox
    /// is at its quota; nothing was stored.
    pub const MAILBOX_FULL: Self = Self(33);
    /// Ack status: the recipient is registered and offline, and the store
    /// could not write (a full disk, an I/O error); nothing was stored.
    pub const STORE_FAILED: Self = Self(34);
    /// `GAP` reason: the age limit dropped the message before the
    /// recipient confirmed it.
    pub const EXPIRED: Self = Self(35);

    /// Login or account request refused: wrong password.
    pub const BAD_PASSWORD: Self = Self(40);
    /// Login or account request refused without being checked: too many
    /// wrong passwords for this nickname or from this address lately.
    pub const LOGIN_THROTTLED: Self = Self(41);
    /// A password was given for a nickname nobody registered.
    pub const NO_SUCH_ACCOUNT: Self = Self(42);
    /// `ACCOUNT` create: the nickname is registered already.
    pub const ACCOUNT_EXISTS: Self = Self(43);
    /// `ACCOUNT` create: this hub does not let clients register nicknames
    /// (its operator creates accounts).
    pub const REGISTRATION_CLOSED: Self = Self(44);
    /// `HELLO` without a password: this hub admits only registered users.
    pub const ACCOUNT_REQUIRED: Self = Self(45);
    /// The hub keeps no accounts (it runs without a store).
    pub const ACCOUNTS_UNAVAILABLE: Self = Self(46);
    /// A reliable session's login: the hub could not read what the
    /// account sent before (its store failed), so it cannot tell a message
    /// sent again from a new one; try again later.
    pub const STORE_UNAVAILABLE: Self = Self(47);

    /// Whether the hub closes the connection after sending an error with this code.
    pub fn is_fatal(self) -> bool {
        matches!(self.0, 1..=3 | 6..=8 | 10 | 11 | 13..=15)
    }

    /// Whether this code refuses a nickname (codes 20 to 29).
    pub fn is_nick_error(self) -> bool {
        (20..30).contains(&self.0)
    }

    /// A short lowercase description, or `None` for a code this crate does not know.
    pub fn description(self) -> Option<&'static str> {
        Some(match self {
            Self::DELIVERED => "delivered",
            Self::MALFORMED_FRAME => "malformed frame",
            Self::FRAME_TOO_LARGE => "frame too large",
            Self::UNSUPPORTED_VERSION => "unsupported protocol version",
            Self::NOT_REGISTERED => "not registered yet",
            Self::ALREADY_REGISTERED => "already registered",
            Self::SERVER_FULL => "server full",
            Self::SHUTTING_DOWN => "server shutting down",
            Self::SLOW_CONSUMER => "slow consumer",
            Self::BAD_REQUEST => "bad request",
            Self::REGISTRATION_TIMEOUT => "registration timeout",
            Self::PING_TIMEOUT => "ping timeout",
            Self::RATE_LIMITED => "rate limited",
            Self::FRAME_TIMEOUT => "frame stalled midway",
            Self::FLOODING => "disconnected for flooding",
            Self::SESSION_REPLACED => "logged in from another connection",
            Self::NICK_EMPTY => "nickname is empty",
            Self::NICK_TOO_LONG => "nickname is too long",
            Self::NICK_NOT_UTF8 => "nickname is not valid utf-8",
            Self::NICK_BAD_START => "nickname must start with a letter",
            Self::NICK_BAD_CHAR => "nickname has a character other than letters, digits, _ - .",
            Self::NICK_RESERVED => "nickname is reserved",
            Self::NICK_TAKEN => "nickname is taken",
            Self::NICK_REGISTERED => "nickname is registered; log in with its password",
            Self::NO_SUCH_USER => "no such user",
            Self::UNABLE_TO_DELIVER => "unable to deliver",
            Self::STORED => "stored",
            Self::MAILBOX_FULL => "mailbox full",
            Self::STORE_FAILED => "could not store",
            Self::EXPIRED => "expired",
            Self::BAD_PASSWORD => "wrong password",
            Self::LOGIN_THROTTLED => "too many wrong passwords; wait a minute",
            Self::NO_SUCH_ACCOUNT => "no such account",
            Self::ACCOUNT_EXISTS => "account exists",
            Self::REGISTRATION_CLOSED => "registration is closed",
            Self::ACCOUNT_REQUIRED => "an account is required",
            Self::ACCOUNTS_UNAVAILABLE => "this hub keeps no accounts",
            Self::STORE_UNAVAILABLE => "the hub's store cannot be read; try again later",
            _ => return None,
        })
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description() {
            Some(text) => f.write_str(text),
            None => write!(f, "error code {}", self.0),
        }
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({}: {self})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_codes_are_the_documented_ones() {
        let fatal: Vec<u16> = (0..64).filter(|&c| Code(c).is_fatal()).collect();
        assert_eq!(fatal, [1, 2, 3, 6, 7, 8, 10, 11, 13, 14, 15]);
    }

    #[test]
    fn unknown_codes_still_display() {
        assert_eq!(Code(999).to_string(), "error code 999");
        assert_eq!(Code::NICK_TAKEN.to_string(), "nickname is taken");
    }
}
