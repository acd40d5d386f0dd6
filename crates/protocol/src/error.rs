//! The protocol crate's error type.

use std::io;

use crate::Code;

/// Why bytes could not be turned into a frame, or a frame into bytes.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The length prefix announced more bytes than the codec accepts. Nothing
    /// was allocated for them.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The length the prefix announced (or the encoded payload's length).
        len: usize,
        /// The codec's limit.
        max: usize,
    },
    /// The payload is not a valid frame; the string says what was wrong.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    /// The payload's first byte is not a known opcode for this direction.
    #[error("malformed frame: unknown opcode {0:#04x}")]
    UnknownOpcode(u8),
    /// A list or string is too long for its length field.
    #[error("{0} does not fit its length field")]
    TooLong(&'static str),
    /// The underlying transport failed.
    #[error("i/o error")]
    Io(#[from] io::Error),
}

impl ProtocolError {
    /// The code a hub sends back when a client's input fails this way.
    pub fn code(&self) -> Code {
        match self {
            Self::FrameTooLarge { .. } => Code::FRAME_TOO_LARGE,
            _ => Code::MALFORMED_FRAME,
        }
    }
}
