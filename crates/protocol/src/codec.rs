//! The length-delimited codec.
//!
//! ```text
//! +----------------+---------+--------------------------+
//! | length: u32 BE | opcode  | fields ...               |
//! +----------------+---------+--------------------------+
//!                  |<------- length bytes ------------->|
//! ```
//!
//! The prefix counts the payload only (opcode and fields), not itself.
//! Decoding goes through [`LengthDelimitedCodec`]; before handing it the
//! bytes, [`FrameCodec`] reads the prefix itself so that an oversized frame
//! is refused with [`ProtocolError::FrameTooLarge`] before anything is
//! allocated for it. Encoding writes the prefix and payload straight into
//! the output buffer, so a frame is built with one copy.
//!
//! ```
//! use bytes::BytesMut;
//! use chinwag_protocol::{ClientCodec, ClientFrame, HubCodec};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut out = BytesMut::new();
//! ClientCodec::default().encode(&ClientFrame::Ping(7), &mut out).unwrap();
//! assert_eq!(&out[..], b"\x00\x00\x00\x09\x05\x00\x00\x00\x00\x00\x00\x00\x07");
//!
//! let frame = HubCodec::default().decode(&mut out).unwrap();
//! assert_eq!(frame, Some(ClientFrame::Ping(7)));
//! ```

use std::fmt;
use std::marker::PhantomData;

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::{ClientFrame, Encode, ProtocolError, ServerFrame, WireFrame};

/// Bytes in the length prefix.
pub const PREFIX_LEN: usize = 4;

/// The default largest payload, in bytes: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;

/// The largest payload a hub takes before registration (`docs/protocol.md`,
/// section 1), in bytes: 16 KiB. Small, so that an anonymous peer cannot
/// make the hub buffer much; a client's `HELLO` and its answers to `PING`s
/// before `WELCOME` must fit in it.
pub const MAX_FRAME_UNREGISTERED: usize = 16 * 1024;

/// The ALPN protocol name of the binary protocol over TLS
/// (`docs/protocol.md`, "TLS"): the frames inside TLS are the same as over
/// plain TCP. A hub offers it and a client asks for it, so that a client
/// of another protocol (`h2`, `http/1.1`) that asks for its own is refused
/// in the handshake rather than misread.
pub const TLS_ALPN: &[u8] = b"chinwag";

/// A codec that decodes frames of type `In` and encodes any [`WireFrame`].
///
/// The hub uses [`HubCodec`] (decodes [`ClientFrame`]s) and clients use
/// [`ClientCodec`] (decodes [`ServerFrame`]s).
pub struct FrameCodec<In> {
    length: LengthDelimitedCodec,
    max_frame: usize,
    _in: PhantomData<fn() -> In>,
}

/// The codec a hub puts on a client's connection.
pub type HubCodec = FrameCodec<ClientFrame>;

/// The codec a client puts on its connection to the hub.
pub type ClientCodec = FrameCodec<ServerFrame>;

impl<In> FrameCodec<In> {
    /// A codec that refuses payloads longer than `max_frame` bytes, both
    /// ways.
    pub fn new(max_frame: usize) -> Self {
        let length = LengthDelimitedCodec::builder()
            .length_field_type::<u32>()
            .big_endian()
            .max_frame_length(max_frame)
            .new_codec();
        Self {
            length,
            max_frame,
            _in: PhantomData,
        }
    }

    /// The largest payload this codec accepts.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Changes the limit, for example once a client has registered.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
        self.length.set_max_frame_length(max_frame);
    }
}

impl<In> Default for FrameCodec<In> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl<In> fmt::Debug for FrameCodec<In> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameCodec")
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

impl<In: WireFrame> Decoder for FrameCodec<In> {
    type Item = In;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, ProtocolError> {
        let Some(prefix) = src.first_chunk::<PREFIX_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > self.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        // Hand the bytes to `LengthDelimitedCodec` only once the whole frame
        // is buffered. Given a partial frame it would consume the prefix and
        // remember the length, and on the next call the check above would
        // read the payload's first bytes as a length.
        if src.len() - PREFIX_LEN < len {
            src.reserve(len - (src.len() - PREFIX_LEN));
            return Ok(None);
        }
        match self.length.decode(src)? {
            Some(payload) => In::decode(payload.freeze()).map(Some),
            None => Ok(None),
        }
    }
}

// Each codec encodes the frames of the other direction: a hub writes
// `ServerFrame`s where it reads `ClientFrame`s, and a client the reverse.
macro_rules! encoder_for {
    ($codec:ty, $out:ty) => {
        impl Encoder<&$out> for $codec {
            type Error = ProtocolError;

            fn encode(&mut self, frame: &$out, dst: &mut BytesMut) -> Result<(), ProtocolError> {
                encode_into(frame, self.max_frame, dst)
            }
        }

        impl Encoder<$out> for $codec {
            type Error = ProtocolError;

            fn encode(&mut self, frame: $out, dst: &mut BytesMut) -> Result<(), ProtocolError> {
                encode_into(&frame, self.max_frame, dst)
            }
        }
    };
}

encoder_for!(HubCodec, ServerFrame);
encoder_for!(ClientCodec, ClientFrame);

/// Appends `frame`, length prefix included, to `dst`.
///
/// # Errors
/// [`ProtocolError::FrameTooLarge`] if the payload would exceed `max_frame`
/// (nothing is left in `dst` then), or [`ProtocolError::TooLong`] if a field
/// does not fit its length field.
pub fn encode_into<F: Encode + ?Sized>(
    frame: &F,
    max_frame: usize,
    dst: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let start = dst.len();
    let payload_len = frame.payload_len();
    dst.reserve(PREFIX_LEN + payload_len);
    dst.put_u32(0);
    let result = frame.encode_payload_len(dst, payload_len).and_then(|()| {
        let len = dst.len() - start - PREFIX_LEN;
        if len > max_frame {
            return Err(ProtocolError::FrameTooLarge {
                len,
                max: max_frame,
            });
        }
        let prefix = u32::try_from(len).map_err(|_| ProtocolError::TooLong("frame"))?;
        dst[start..start + PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
        Ok(())
    });
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

/// Encodes `frame`, length prefix included, into a buffer of its own.
///
/// The hub encodes a message once with this and shares the [`Bytes`] among
/// all of its recipients.
///
/// # Errors
/// As [`encode_into`].
pub fn encode_frame<F: Encode + ?Sized>(
    frame: &F,
    max_frame: usize,
) -> Result<Bytes, ProtocolError> {
    let mut dst = BytesMut::with_capacity(PREFIX_LEN + frame.payload_len());
    encode_into(frame, max_frame, &mut dst)?;
    Ok(dst.freeze())
}
