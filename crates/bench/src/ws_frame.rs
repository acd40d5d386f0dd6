//! WebSocket frames as the bench's client sees them (RFC 6455 section
//! 5.2), without I/O: the header of a frame from the hub, and the masked
//! frames the bench sends.
//!
//! ```text
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-------+-+-------------+-------------------------------+
//!  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//!  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//!  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//!  | |1|2|3|       |K|             |                               |
//!  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//!  |     Extended payload length continued, if payload len == 127  |
//!  + - - - - - - - - - - - - - - - +-------------------------------+
//!  |                               |Masking-key, if MASK set to 1  |
//!  +-------------------------------+-------------------------------+
//!  | Masking-key (continued)       |          Payload Data         |
//!  +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! The hub sends each chinwag frame as one unfragmented, unmasked binary
//! message (`crates/web/src/ws_bytes.rs`), so that is all the bench
//! accepts besides control frames: a text frame, a masked frame, a
//! reserved bit or opcode, and a fragmented message (which the hub never
//! sends) are refused.

use std::hash::{BuildHasher, RandomState};
use std::io;

use bytes::{BufMut, BytesMut};

/// A binary frame.
pub(crate) const BINARY: u8 = 0x2;
/// A close frame.
pub(crate) const CLOSE: u8 = 0x8;
/// A ping, which the peer must answer with a pong of the same payload.
pub(crate) const PING: u8 = 0x9;
/// A pong.
pub(crate) const PONG: u8 = 0xA;

/// The 7-bit payload length saying a 16-bit one follows.
const LEN_16: u8 = 126;
/// The 7-bit payload length saying a 64-bit one follows.
const LEN_64: u8 = 127;
/// The mask bit of a frame's second byte.
const MASKED: u8 = 0x80;

/// The longest header of a frame from the hub (no masking key): 2 bytes
/// and a 64-bit length.
pub(crate) const MAX_HEADER: usize = 10;

/// The longest payload of a control frame (RFC 6455 section 5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// The header of a frame from the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// `BINARY`, `CLOSE`, `PING` or `PONG`.
    pub(crate) opcode: u8,
    /// The header's own length: 2, 4 or 10 bytes.
    pub(crate) len: usize,
    /// The payload's length (at most `MAX_CONTROL_PAYLOAD` for a control
    /// frame).
    pub(crate) payload: u64,
}

/// A frame from the hub the bench does not take, as an I/O error.
fn refused(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("a WebSocket {what}"))
}

/// The header at the start of `bytes`, or `None` if it is not all there.
///
/// # Errors
///
/// `InvalidData` for what the hub does not send: a reserved bit, a masked
/// frame, a text frame, a fragment, a reserved opcode, a control frame
/// too long or fragmented, a 64-bit length with its top bit set.
pub(crate) fn parse(bytes: &[u8]) -> io::Result<Option<Header>> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(refused("frame with a reserved bit set"));
    }
    if second & MASKED != 0 {
        return Err(refused("frame masked by the server"));
    }
    let fin = first & 0x80 != 0;
    let opcode = first & 0x0F;
    let short = second & 0x7F;
    match opcode {
        BINARY if fin => {}
        // The hub sends every chinwag frame as one whole message; the
        // bench does not reassemble fragments.
        BINARY | 0x0 => return Err(refused("fragmented message (not supported by the bench)")),
        0x1 => return Err(refused("text message (chinwag.v1 is binary)")),
        CLOSE | PING | PONG if fin && usize::from(short) <= MAX_CONTROL_PAYLOAD => {}
        CLOSE | PING | PONG => return Err(refused("control frame fragmented or too long")),
        _ => return Err(refused(&format!("frame of reserved opcode {opcode:#x}"))),
    }
    let header = match short {
        LEN_16 => {
            let Some(&[a, b]) = bytes.get(2..4) else {
                return Ok(None);
            };
            Header {
                opcode,
                len: 4,
                payload: u64::from(u16::from_be_bytes([a, b])),
            }
        }
        LEN_64 => {
            let Some(extended) = bytes.get(2..10) else {
                return Ok(None);
            };
            let mut be = [0; 8];
            be.copy_from_slice(extended);
            let payload = u64::from_be_bytes(be);
            if payload >> 63 != 0 {
                return Err(refused("frame length with its top bit set"));
            }
            Header {
                opcode,
                len: MAX_HEADER,
                payload,
            }
        }
        short => Header {
            opcode,
            len: 2,
            payload: u64::from(short),
        },
    };
    Ok(Some(header))
}

/// The masking keys of one connection's frames, one a frame.
///
/// RFC 6455 section 5.3 asks for keys from a strong source of entropy,
/// so that script in a browser cannot predict them. This is a benchmark
/// client sending its own payloads to the user's own hub: a generator
/// (`SplitMix64`) seeded per connection from `RandomState`'s random keys is
/// unpredictable enough here, and costs nanoseconds a frame.
#[derive(Debug, Clone)]
pub(crate) struct Masks {
    state: u64,
}

impl Masks {
    /// Keys seeded afresh.
    pub(crate) fn new() -> Self {
        Self {
            state: RandomState::new().hash_one(0x0063_6869_6e77_6167_u64),
        }
    }

    /// The next key.
    fn next_key(&mut self) -> [u8; 4] {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^= mixed >> 31;
        let [key @ .., _, _, _, _] = mixed.to_be_bytes();
        key
    }

    /// Appends to `out` a frame of `opcode` carrying `payload`, masked
    /// with a fresh key, as a client must send it.
    pub(crate) fn encode(&mut self, opcode: u8, payload: &[u8], out: &mut BytesMut) {
        let key = self.next_key();
        out.reserve(14 + payload.len());
        out.put_u8(0x80 | opcode);
        match payload.len() {
            len @ 0..=125 => out.put_u8(MASKED | len as u8),
            len @ 126..=0xFFFF => {
                out.put_u8(MASKED | LEN_16);
                out.put_u16(len as u16);
            }
            len => {
                out.put_u8(MASKED | LEN_64);
                out.put_u64(len as u64);
            }
        }
        out.put_slice(&key);
        let start = out.len();
        out.put_slice(payload);
        mask(&mut out[start..], key);
    }
}

/// XORs `bytes` with `key` repeated (RFC 6455 section 5.3), 8 bytes at a
/// time.
pub(crate) fn mask(bytes: &mut [u8], key: [u8; 4]) {
    let [a, b, c, d] = key;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = bytes.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, so at the key's first byte.
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_7_16_and_64_bit_lengths() {
        let h = |opcode, len, payload| {
            Some(Header {
                opcode,
                len,
                payload,
            })
        };
        assert_eq!(parse(&[0x82, 5]).unwrap(), h(BINARY, 2, 5));
        assert_eq!(parse(&[0x82, 125]).unwrap(), h(BINARY, 2, 125));
        assert_eq!(parse(&[0x82, 126, 0x01, 0x00]).unwrap(), h(BINARY, 4, 256));
        assert_eq!(
            parse(&[0x82, 126, 0xFF, 0xFF]).unwrap(),
            h(BINARY, 4, 65535)
        );
        assert_eq!(
            parse(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap(),
            h(BINARY, 10, 65536)
        );
        assert_eq!(parse(&[0x89, 3]).unwrap(), h(PING, 2, 3));
        assert_eq!(parse(&[0x88, 0]).unwrap(), h(CLOSE, 2, 0));
        assert_eq!(parse(&[0x8A, 125]).unwrap(), h(PONG, 2, 125));
    }

    #[test]
    fn a_header_not_all_there_is_no_header_yet() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[0x82]).unwrap(), None);
        assert_eq!(parse(&[0x82, 126, 1]).unwrap(), None);
        assert_eq!(parse(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0]).unwrap(), None);
    }

    #[test]
    fn what_the_hub_does_not_send_is_refused() {
        for bytes in [
            &[0x81, 1][..],                          // text
            &[0x82, 0x81],                           // masked
            &[0xC2, 1],                              // RSV1
            &[0x92, 1],                              // RSV3
            &[0x02, 1],                              // binary without FIN
            &[0x80, 1],                              // continuation
            &[0x83, 1],                              // reserved data opcode
            &[0x8B, 1],                              // reserved control opcode
            &[0x09, 1],                              // fragmented ping
            &[0x89, 126, 0, 126],                    // ping too long
            &[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], // 64-bit top bit
        ] {
            let error = parse(bytes).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{bytes:?}");
        }
    }

    #[test]
    fn frames_sent_are_masked_and_unmask_to_their_payload() {
        let mut masks = Masks::new();
        for len in [0_usize, 1, 7, 8, 9, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = BytesMut::new();
            masks.encode(BINARY, &payload, &mut out);
            assert_eq!(out[0], 0x82);
            assert_eq!(out[1] & 0x80, 0x80, "masked");
            // The same header as the hub's but for the mask bit.
            let mut unmasked = out[..MAX_HEADER.min(out.len())].to_vec();
            unmasked[1] &= 0x7F;
            let header = parse(&unmasked).unwrap().unwrap();
            assert_eq!(header.payload, len as u64);
            let key_at = header.len;
            let key: [u8; 4] = out[key_at..key_at + 4].try_into().unwrap();
            let mut body = out[key_at + 4..].to_vec();
            mask(&mut body, key);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn each_frame_has_its_own_key() {
        let mut masks = Masks::new();
        let keys: Vec<_> = (0..4).map(|_| masks.next_key()).collect();
        assert!(keys.windows(2).all(|pair| pair[0] != pair[1]));
    }
}
