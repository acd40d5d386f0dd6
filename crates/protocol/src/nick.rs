//! Nicknames: validation and case-insensitive identity.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::Code;

/// The longest nickname, in bytes (nicknames are ASCII, so also in characters).
pub const MAX_NICK_LEN: usize = 32;

/// Names nobody may register, compared case-insensitively: they would read as
/// the hub itself or as "everyone".
pub const RESERVED_NICKS: &[&str] = &[
    "all", "everyone", "server", "hub", "admin", "system", "root", "operator", "chinwag",
];

/// Why a nickname was refused. Each variant has its own [`Code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NickError {
    /// The nickname is empty.
    #[error("nickname is empty")]
    Empty,
    /// The nickname is longer than [`MAX_NICK_LEN`] bytes.
    #[error("nickname is longer than {MAX_NICK_LEN} characters")]
    TooLong,
    /// The nickname is not valid UTF-8.
    #[error("nickname is not valid utf-8")]
    NotUtf8,
    /// The first character is not an ASCII letter.
    #[error("nickname must start with a letter")]
    BadStart,
    /// A character outside `A-Z a-z 0-9 _ - .` (this includes spaces, control,
    /// zero-width and bidi characters).
    #[error("nickname may hold only letters, digits, '_', '-' and '.'")]
    BadChar,
    /// The nickname is in [`RESERVED_NICKS`].
    #[error("nickname is reserved")]
    Reserved,
}

impl NickError {
    /// The code sent to a client whose `HELLO` carried this nickname.
    pub fn code(self) -> Code {
        match self {
            Self::Empty => Code::NICK_EMPTY,
            Self::TooLong => Code::NICK_TOO_LONG,
            Self::NotUtf8 => Code::NICK_NOT_UTF8,
            Self::BadStart => Code::NICK_BAD_START,
            Self::BadChar => Code::NICK_BAD_CHAR,
            Self::Reserved => Code::NICK_RESERVED,
        }
    }
}

/// A valid nickname: 1 to 32 ASCII letters, digits, `_`, `-` or `.`, starting
/// with a letter, and not reserved.
///
/// It keeps the spelling it was registered with for display, but equality and
/// hashing ignore ASCII case: `Alice` and `alice` are the same user.
///
/// ```
/// use chinwag_protocol::{Nick, NickError};
///
/// let alice = Nick::parse(b"Alice").unwrap();
/// assert_eq!(alice, Nick::parse(b"aLiCe").unwrap());
/// assert_eq!(alice.as_str(), "Alice");
/// assert_eq!(Nick::parse(b"1alice"), Err(NickError::BadStart));
/// assert_eq!(Nick::parse(b"Admin"), Err(NickError::Reserved));
/// ```
#[derive(Clone)]
pub struct Nick {
    display: Box<str>,
}

impl Nick {
    /// Validates raw nickname bytes as they arrive in a `HELLO` frame.
    pub fn parse(raw: &[u8]) -> Result<Self, NickError> {
        if raw.is_empty() {
            return Err(NickError::Empty);
        }
        // Judge the characters before the length, so that a long string of
        // garbage is reported as garbage.
        let text = std::str::from_utf8(raw).map_err(|_| NickError::NotUtf8)?;
        if !text.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(NickError::BadStart);
        }
        if !text.bytes().all(is_nick_byte) {
            return Err(NickError::BadChar);
        }
        if raw.len() > MAX_NICK_LEN {
            return Err(NickError::TooLong);
        }
        if RESERVED_NICKS.iter().any(|r| r.eq_ignore_ascii_case(text)) {
            return Err(NickError::Reserved);
        }
        Ok(Self {
            display: text.into(),
        })
    }

    /// The nickname as it was registered.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded form used as the registry key.
    pub fn folded(&self) -> String {
        self.display.to_ascii_lowercase()
    }
}

fn is_nick_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

impl PartialEq for Nick {
    fn eq(&self, other: &Self) -> bool {
        self.display.eq_ignore_ascii_case(&other.display)
    }
}

impl Eq for Nick {}

impl Hash for Nick {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.display.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
        state.write_u8(0xff);
    }
}

impl fmt::Display for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nick({:?})", &*self.display)
    }
}

impl AsRef<str> for Nick {
    fn as_ref(&self) -> &str {
        &self.display
    }
}

impl std::str::FromStr for Nick {
    type Err = NickError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "Alice", "bob_2", "c-d.e", "Z", &"x".repeat(32)] {
            assert!(Nick::parse(ok.as_bytes()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_each_kind_of_bad_name_with_its_own_error() {
        let cases: &[(&[u8], NickError)] = &[
            (b"", NickError::Empty),
            (&[b'a'; 33], NickError::TooLong),
            (b"\xff\xfe", NickError::NotUtf8),
            (b"9lives", NickError::BadStart),
            (b"_x", NickError::BadStart),
            (b"al ice", NickError::BadChar),
            (b"al\x07ice", NickError::BadChar),
            ("al\u{200b}ice".as_bytes(), NickError::BadChar),
            ("al\u{202e}ice".as_bytes(), NickError::BadChar),
            ("\u{e9}lise".as_bytes(), NickError::BadStart),
            (b"EVERYONE", NickError::Reserved),
            (b"all", NickError::Reserved),
        ];
        for (raw, want) in cases {
            assert_eq!(Nick::parse(raw).as_ref().err(), Some(want), "{raw:?}");
        }
    }

    #[test]
    fn identity_ignores_case_but_display_keeps_it() {
        let a = Nick::parse(b"Alice").unwrap();
        let b = Nick::parse(b"ALICE").unwrap();
        assert_eq!(a, b);
        let set: HashSet<Nick> = [a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(a.to_string(), "Alice");
        assert_eq!(a.folded(), "alice");
    }
}
