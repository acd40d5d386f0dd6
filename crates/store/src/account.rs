//! Registered nicknames.

/// A registered nickname, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The nickname as registered (its display spelling); the store keys it
    /// by its ASCII-case-folded form.
    pub nick: String,
    /// The password's argon2id hash as a PHC string (`$argon2id$v=19$...`).
    /// The store keeps it as given: hashing and checking are the caller's.
    pub password_hash: String,
    /// When the account was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When its owner was last seen, if ever.
    pub last_seen_ms: Option<u64>,
    /// Messages waiting in its mailbox.
    pub mailbox_count: u64,
    /// Bytes waiting in its mailbox (the quota's measure).
    pub mailbox_bytes: u64,
    /// The highest number a message stored for it was given (0 for none):
    /// the hub numbers the next ones above it.
    pub last_number: u64,
}

/// What creating an account needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The nickname, as it is to be displayed.
    pub nick: String,
    /// The password's argon2id hash as a PHC string.
    pub password_hash: String,
    /// The creation time, in milliseconds since the Unix epoch.
    pub created_ms: u64,
}
