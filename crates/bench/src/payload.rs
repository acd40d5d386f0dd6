//! What every benchmark message carries: its text, a fixed ASCII header
//! then `x`s up to the requested size, and the `SEND` id that tells a
//! warm-up message's ack from a data message's ([`WARMUP_ID`]).
//!
//! ```text
//! +------+----------------+--------------------+--------------------+---------+
//! | kind | sender: 8 hex  | sequence: 12 hex   | sent at: 12 hex    | x x x … |
//! +------+----------------+--------------------+--------------------+---------+
//!   0     1                9                    21                   33
//! ```
//!
//! `kind` is `W` for a warm-up message and `D` for a measured one; `sent at`
//! is nanoseconds since the bench's [`Clock`](crate::clock::Clock) started,
//! taken when the frame is encoded. The header is 33 bytes, like hubload's
//! (kind, sequence, timestamp), so the smallest message has the same size
//! against every hub; the sender index fits because 48 bits are plenty for a
//! sequence number or for 78 hours of nanoseconds.

/// Bytes before the padding.
pub(crate) const HEADER_LEN: usize = 33;

/// Set in the `SEND` id of warm-up messages, so that their acks are told
/// apart from those of data messages (whose id is their sequence number
/// plus one: ids should not be 0).
pub(crate) const WARMUP_ID: u64 = 1 << 63;

/// In a reliable session, whose ids the hub takes only below 2^63 (it keeps
/// them in the store), warm-ups are not marked: warm-up `n` is the run's
/// base plus `n`, and data message `seq` the base plus this room plus
/// `seq + 1`, so that a sender's ids only grow, as a real client's do. (Marked
/// with a high bit, the warm-ups went before data messages with lower ids,
/// and the hub, which finds a message sent again in the sender's window by
/// binary search while its ids grow, scanned the window for each of the
/// next 1,024: a cost no client of the library pays.) At one warm-up every
/// 20 ms, the room lasts 93 hours.
pub(crate) const RELIABLE_WARMUP_ROOM: u64 = 1 << 24;

/// Mask of a 12-hex-digit field.
const FIELD_MASK: u64 = (1 << 48) - 1;

/// Whether a message counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Sent until every receiver has seen one; not counted.
    Warmup,
    /// Measured and checked.
    Data,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Self::Warmup => b'W',
            Self::Data => b'D',
        }
    }
}

/// What a message's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    /// Index of the sending connection within the workload.
    pub(crate) sender: u32,
    /// Per sender, counting data messages from 0 (warm-ups carry 0).
    pub(crate) seq: u64,
    /// [`Clock::now_ns`](crate::clock::Clock::now_ns) when the message was
    /// encoded.
    pub(crate) sent_ns: u64,
}

/// The size of every message's text: the requested size, but never less
/// than the header.
pub(crate) fn text_len(size: usize) -> usize {
    size.max(HEADER_LEN)
}

/// A padded text of `size` bytes (at least the header's), ready to be
/// stamped.
pub(crate) fn blank(size: usize) -> String {
    "x".repeat(text_len(size))
}

/// Writes `header` over the first [`HEADER_LEN`] bytes of `text`, which
/// comes from [`blank`] (a shorter one is left alone). The sender stamps
/// each message where it lies in its write buffer, already encoded: the
/// text is ASCII before and after, and no other byte moves.
pub(crate) fn stamp(header: Header, text: &mut [u8]) {
    let Some(head) = text.get_mut(..HEADER_LEN) else {
        return;
    };
    head[0] = header.kind.byte();
    put_hex(&mut head[1..9], u64::from(header.sender));
    put_hex(&mut head[9..21], header.seq & FIELD_MASK);
    put_hex(&mut head[21..33], header.sent_ns & FIELD_MASK);
}

/// Writes `value` as lowercase hex digits filling `out`.
fn put_hex(out: &mut [u8], mut value: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for digit in out.iter_mut().rev() {
        *digit = HEX[(value & 0xf) as usize];
        value >>= 4;
    }
}

/// The value of each hex digit byte, or [`NOT_HEX`].
const HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};
const NOT_HEX: u8 = 0xff;

/// Lowercase hex digits to a number. Every delivery goes through this, so
/// it is a table lookup per digit with no branch.
fn parse_hex(digits: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    let mut seen = 0u8;
    for &c in digits {
        let digit = HEX_VALUE[usize::from(c)];
        seen |= digit;
        value = (value << 4) | u64::from(digit & 0xf);
    }
    (seen & 0xf0 == 0).then_some(value)
}

/// Reads the header of `text`, and checks that the rest is `size` worth of
/// padding. `None` for anything that is not a message this bench wrote.
pub(crate) fn parse(bytes: &[u8], size: usize) -> Option<Header> {
    if bytes.len() != text_len(size) {
        return None;
    }
    let (head, padding) = bytes.split_at(HEADER_LEN);
    // No early exit, so that the loop is vectorised: every delivery is
    // checked.
    if padding.iter().fold(0, |odd, &b| odd | (b ^ b'x')) != 0 {
        return None;
    }
    let kind = match head[0] {
        b'W' => Kind::Warmup,
        b'D' => Kind::Data,
        _ => return None,
    };
    Some(Header {
        kind,
        sender: u32::try_from(parse_hex(&head[1..9])?).ok()?,
        seq: parse_hex(&head[9..21])?,
        sent_ns: parse_hex(&head[21..33])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_keeps_the_size() {
        let mut text = blank(64).into_bytes();
        let header = Header {
            kind: Kind::Data,
            sender: 7,
            seq: 123_456,
            sent_ns: 9_876_543_210,
        };
        stamp(header, &mut text);
        assert_eq!(text.len(), 64);
        assert_eq!(&text[..HEADER_LEN], b"D0000000700000001e24000024cb016ea");
        assert_eq!(parse(&text, 64), Some(header));
        // Rewriting keeps the padding.
        stamp(
            Header {
                kind: Kind::Warmup,
                ..header
            },
            &mut text,
        );
        assert_eq!(parse(&text, 64).map(|h| h.kind), Some(Kind::Warmup));
        assert!(text[HEADER_LEN..].iter().all(|&b| b == b'x'));
    }

    #[test]
    fn small_sizes_are_the_header_alone() {
        let mut text = blank(1).into_bytes();
        let header = Header {
            kind: Kind::Data,
            sender: 0,
            seq: 0,
            sent_ns: 0,
        };
        stamp(header, &mut text);
        assert_eq!(text.len(), HEADER_LEN);
        assert_eq!(parse(&text, 1), Some(header));
    }

    #[test]
    fn damaged_text_is_refused() {
        let mut text = blank(40).into_bytes();
        let header = Header {
            kind: Kind::Data,
            sender: 1,
            seq: 2,
            sent_ns: 3,
        };
        stamp(header, &mut text);
        assert!(parse(&text, 41).is_none(), "wrong size");
        let mut padded = text.clone();
        padded[39] = b'y';
        assert!(parse(&padded, 40).is_none(), "bad padding");
        let mut kind = text.clone();
        kind[0] = b'Q';
        assert!(parse(&kind, 40).is_none(), "bad kind");
        let mut digit = text;
        digit[5] = b'G';
        assert!(parse(&digit, 40).is_none(), "bad digit");
    }
}
