//! Accounts, mailboxes and the table of users: the frames a client uses to
//! create and manage a registered nickname, the stored messages a hub hands
//! it at login, and the entries of its table of everyone known.

use bytes::{BufMut, BytesMut};

use crate::ProtocolError;
use crate::frame::nick_len;
use crate::wire::{Reader, put_nick, put_text};

/// What an `ACCOUNT` frame asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountAction {
    /// Register the nickname with the password (1).
    Create,
    /// Replace the password with `new_password` (2).
    SetPassword,
    /// Delete the account and its mailbox (3).
    Delete,
}

impl AccountAction {
    /// The action's byte on the wire.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Create => 1,
            Self::SetPassword => 2,
            Self::Delete => 3,
        }
    }

    /// The action a byte names, if any.
    pub fn from_u8(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Create,
            2 => Self::SetPassword,
            3 => Self::Delete,
            _ => return None,
        })
    }

    /// A lowercase verb for messages: "create", "set password", "delete".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::SetPassword => "set password",
            Self::Delete => "delete",
        }
    }
}

/// `ACCOUNT`: create an account, change its password, or delete it. Carries
/// its own credentials, so it may be sent before `HELLO` (and by a client
/// that never registers) as well as after.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountRequest {
    /// What to do.
    pub action: AccountAction,
    /// The account's nickname.
    pub nick: String,
    /// The password: the new account's, or the current one.
    pub password: String,
    /// For [`AccountAction::SetPassword`], the new password; empty otherwise.
    pub new_password: String,
}

/// Passwords are never printed, not even in a debug dump of a frame.
impl std::fmt::Debug for AccountRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRequest")
            .field("action", &self.action)
            .field("nick", &self.nick)
            .finish_non_exhaustive()
    }
}

impl AccountRequest {
    /// The encoded length of the fields, without the opcode (as
    /// [`UserEntry::encoded_len`]).
    pub(crate) fn payload_len(&self) -> usize {
        1 + nick_len(self.nick.as_bytes()) + 4 + self.password.len() + 4 + self.new_password.len()
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        dst.put_u8(self.action.to_u8());
        put_nick(dst, self.nick.as_bytes())?;
        put_text(dst, &self.password)?;
        put_text(dst, &self.new_password)
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, ProtocolError> {
        let action = AccountAction::from_u8(r.u8("truncated account action")?)
            .ok_or(ProtocolError::Malformed("unknown account action"))?;
        Ok(Self {
            action,
            nick: r.nick()?,
            password: r.text()?,
            new_password: r.text()?,
        })
    }
}

/// `ACCOUNT_DONE`: an `ACCOUNT` request was carried out (a refusal is an
/// `ERROR` whose `reference` is the action's byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDone {
    /// What was done.
    pub action: AccountAction,
    /// The account's nickname, as registered.
    pub nick: String,
}

/// `MAILBOX`: sent right after `WELCOME` to a client logged in to an
/// account: how many stored messages follow (as `STORED_MESSAGE` frames,
/// oldest first, before any live traffic), and how many the age limit
/// dropped since its owner was last told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxHeader {
    /// `STORED_MESSAGE` frames that follow.
    pub count: u32,
    /// Messages dropped unread by the age limit.
    pub expired: u32,
}

/// Bits of a [`UserEntry`]'s `flags`.
pub mod user_flags {
    /// Online now.
    pub const ONLINE: u8 = 1;
    /// A registered nickname (an account); without it, a guest.
    pub const REGISTERED: u8 = 1 << 1;
    /// Every bit this crate knows.
    pub const KNOWN: u8 = ONLINE | REGISTERED;
}

/// One row of the table of users (`USERS`), or a change to it (`USER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// [`user_flags`]: online, registered. A `USER` change with neither bit
    /// set removes the row (an account deleted while its owner was offline).
    pub flags: u8,
    /// When the user was last seen online, in milliseconds since the Unix
    /// epoch; 0 for never (or while online).
    pub last_seen_ms: u64,
    /// The nickname.
    pub nick: String,
}

impl UserEntry {
    /// Whether the user is online.
    pub fn online(&self) -> bool {
        self.flags & user_flags::ONLINE != 0
    }

    /// Whether the nickname is registered.
    pub fn registered(&self) -> bool {
        self.flags & user_flags::REGISTERED != 0
    }

    /// The bytes this entry takes in a `USERS` frame (and a `USER` frame's
    /// payload is one more, its opcode): what a hub counts to keep a table
    /// within its frame limit.
    pub fn encoded_len(&self) -> usize {
        1 + 8 + nick_len(self.nick.as_bytes())
    }

    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        dst.put_u8(self.flags);
        dst.put_u64(self.last_seen_ms);
        put_nick(dst, self.nick.as_bytes())
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, ProtocolError> {
        let flags = r.u8("truncated user flags")?;
        if flags & !user_flags::KNOWN != 0 {
            return Err(ProtocolError::Malformed("unknown user flags"));
        }
        Ok(Self {
            flags,
            last_seen_ms: r.u64("truncated last seen")?,
            nick: r.nick()?,
        })
    }
}
