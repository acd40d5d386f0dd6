//! The client crate's error type.

use std::io;
use std::net::SocketAddr;

use chinwag_protocol::{Code, NickError, ProtocolError};

/// Why connecting, or a request on a connection, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A reliable session's message was sent this many times, once per
    /// connection, and the hub acknowledged none of them
    /// ([`ClientOptions::max_sendings`](crate::ClientOptions::max_sendings)):
    /// the client gave up on it. It may still have reached its recipients.
    #[error("no acknowledgement after {sendings} sendings; given up")]
    Unacknowledged {
        /// How many times it was sent.
        sendings: u32,
    },
    /// The nickname breaks the nickname rules; nothing was sent.
    #[error("invalid nickname")]
    InvalidNick(#[from] NickError),
    /// The hub's address did not resolve to any socket address.
    #[error("cannot resolve the hub's address")]
    Resolve(#[source] io::Error),
    /// No connection could be opened to the hub (refused, unreachable).
    #[error("cannot connect to {addr}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Connecting and registering took longer than
    /// [`ClientOptions::connect_timeout`](crate::ClientOptions::connect_timeout).
    #[error("timed out connecting to the hub")]
    Timeout,
    /// Someone online already uses this nickname (compared case-insensitively).
    #[error("nickname {nick} is taken")]
    NickTaken {
        /// The nickname that was asked for.
        nick: String,
    },
    /// The nickname is registered (an account), and no password was given:
    /// log in with [`ClientOptions::password`](crate::ClientOptions::password),
    /// or choose another nickname. The hub's `NICK_REGISTERED`.
    #[error("nickname {nick} is registered: log in with its password")]
    NickRegistered {
        /// The nickname that was asked for.
        nick: String,
    },
    /// The password is wrong (`BAD_PASSWORD`). The hub counts it: a few in a
    /// row lead to [`LoginThrottled`](Self::LoginThrottled).
    #[error("wrong password for {nick}")]
    BadPassword {
        /// The account's nickname.
        nick: String,
    },
    /// Too many wrong passwords lately for this nickname or from this
    /// address; the password was not even checked (`LOGIN_THROTTLED`). About
    /// one try every 20 seconds is let through again.
    #[error("too many wrong passwords for {nick} lately; wait a minute and try again")]
    LoginThrottled {
        /// The account's nickname.
        nick: String,
    },
    /// A password was given for a nickname nobody registered
    /// (`NO_SUCH_ACCOUNT`): create the account first, or connect as a guest
    /// without a password.
    #[error("no account is registered as {nick}")]
    NoSuchAccount {
        /// The nickname that was asked for.
        nick: String,
    },
    /// This hub admits only registered users, and no password was given
    /// (`ACCOUNT_REQUIRED`).
    #[error("this hub admits only registered users: log in to an account")]
    AccountRequired,
    /// A password was given, or an account request made, but this hub keeps
    /// no accounts (`ACCOUNTS_UNAVAILABLE`: it runs without a store).
    #[error("this hub keeps no accounts")]
    AccountsUnavailable,
    /// The hub refused to register this client for another reason: its
    /// nickname rules, `SERVER_FULL`, `SHUTTING_DOWN`, an unsupported version.
    #[error("the hub refused the connection: {message}")]
    Refused {
        /// The hub's code.
        code: Code,
        /// The hub's explanation.
        message: String,
    },
    /// The hub refused one request (for example `BAD_REQUEST` or
    /// `RATE_LIMITED` for a message, or `ACCOUNT_EXISTS` for an account
    /// request); the connection stays open.
    #[error("the hub refused the request: {message}")]
    Rejected {
        /// The hub's code.
        code: Code,
        /// The hub's explanation.
        message: String,
    },
    /// The connection was lost while the request was pending, or was down
    /// (reconnecting) when it was made. A message pending when the
    /// connection dropped may or may not have been delivered; it is not sent
    /// again.
    #[error("disconnected from the hub")]
    Disconnected,
    /// The server answered, but not as a chinwag hub's binary port does: it
    /// sent text (a chinwag text port, an HTTP server, ...). The string says
    /// what it looks like.
    #[error("not a chinwag hub's binary port: {0}")]
    NotAHub(String),
    /// TLS could not be set up: a CA file that does not load, no system
    /// roots, a server name that is neither a DNS name nor an IP address.
    #[error("TLS: {0}")]
    TlsSetup(String),
    /// The TLS handshake failed: the server's certificate was refused (not
    /// for this name, expired, not signed by a trusted root) or the server
    /// refused ours. The source says which.
    #[error("TLS handshake failed")]
    Tls(#[source] io::Error),
    /// The server answered the TLS handshake with bytes that are not TLS:
    /// it does not speak TLS on this port (a hub's plain `--listen` port).
    #[error("the server does not speak TLS on this port (is it the hub's plain --listen port?)")]
    NotTls,
    /// The client has closed for good: it quit, gave up reconnecting, or
    /// the hub ended the session. See [`Event::Closed`](crate::Event::Closed)
    /// for why.
    #[error("the client is closed")]
    Closed,
    /// A frame could not be encoded (for example a message larger than the
    /// hub accepts) or the hub sent bytes that are not a valid frame.
    #[error(transparent)]
    Protocol(ProtocolError),
    /// The socket failed.
    #[error("connection failed")]
    Io(#[source] io::Error),
}

impl From<ProtocolError> for ClientError {
    fn from(error: ProtocolError) -> Self {
        match error {
            ProtocolError::Io(error) => Self::Io(error),
            other => Self::Protocol(other),
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

impl ClientError {
    /// Whether trying the same connection again later could succeed: true for
    /// network failures, timeouts, a taken nickname (its owner may leave),
    /// a throttled login and a full or restarting hub; false for a nickname
    /// the rules refuse and for credentials that are wrong or missing.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::InvalidNick(_)
            | Self::NotAHub(_)
            | Self::TlsSetup(_)
            | Self::Tls(_)
            | Self::NotTls
            | Self::NickRegistered { .. }
            | Self::BadPassword { .. }
            | Self::NoSuchAccount { .. }
            | Self::AccountRequired
            | Self::AccountsUnavailable => false,
            Self::Refused { code, .. } => {
                !(code.is_nick_error() || *code == Code::UNSUPPORTED_VERSION)
            }
            _ => true,
        }
    }

    /// The error for the hub's refusal of `HELLO` with `code`, for `nick`:
    /// a typed variant for each refusal a program handles differently,
    /// [`Refused`](Self::Refused) for the rest.
    pub(crate) fn refusal(code: Code, message: String, nick: &str) -> Self {
        let nick = nick.to_owned();
        match code {
            Code::NICK_TAKEN => Self::NickTaken { nick },
            Code::NICK_REGISTERED => Self::NickRegistered { nick },
            Code::BAD_PASSWORD => Self::BadPassword { nick },
            Code::LOGIN_THROTTLED => Self::LoginThrottled { nick },
            Code::NO_SUCH_ACCOUNT => Self::NoSuchAccount { nick },
            Code::ACCOUNT_REQUIRED => Self::AccountRequired,
            Code::ACCOUNTS_UNAVAILABLE => Self::AccountsUnavailable,
            code => Self::Refused { code, message },
        }
    }
}
