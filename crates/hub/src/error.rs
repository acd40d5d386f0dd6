//! The hub crate's error type.

use chinwag_protocol::Code;

/// Why a request to the hub failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// The hub has shut down (or is shutting down) and takes no more requests.
    #[error("the hub has shut down")]
    Closed,
    /// The hub refused the request; the code says why (a nickname error,
    /// `NICK_TAKEN`, `SERVER_FULL`, ...).
    #[error("refused: {0}")]
    Refused(Code),
}
