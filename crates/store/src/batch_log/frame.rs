//! A group's frame: how one group commit's entries lie in a segment, and
//! how they are read back.
//!
//! A frame is a header of [`HEADER`] bytes, then its payload:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | `len`: the payload's length, `u32` little-endian |
//! | 4..8 | `crc`: CRC-32 (IEEE) of bytes 8 to the payload's end |
//! | 8..16 | `segment`: the number of the segment it was written to |
//! | 16..24 | `lsn`: the frame's number; each frame's is the last one's plus one |
//! | 24..32 | `tail`: the oldest segment still needed when it was written |
//! | 32.. | the payload: entries one after another |
//!
//! Each entry is `kind` (one byte), `key` (`u64` little-endian), a `u32`
//! little-endian length and that many bytes. What kinds and keys mean is
//! the store's business, not the log's.
//!
//! A frame is taken only if its checksum holds, so a frame torn by a crash
//! (its write not whole when the process or the machine died) ends the
//! segment where it starts. A segment file is written over when it is
//! reused, so bytes left from its earlier use follow the new frames: they
//! carry the earlier segment's number, which is how they are told apart.

/// A frame's header, in bytes.
pub(crate) const HEADER: usize = 32;

/// An entry's head: kind, key, length.
const ENTRY_HEAD: usize = 1 + 8 + 4;

/// A frame found in a segment's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) segment: u64,
    pub(crate) lsn: u64,
    pub(crate) tail: u64,
    /// Its length, header and payload.
    pub(crate) len: usize,
}

/// One entry of a group, as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub(crate) kind: u8,
    pub(crate) key: u64,
    pub(crate) bytes: &'a [u8],
}

/// Appends an entry to a frame being made (`frame` starts with room for
/// the header, [`start`]).
pub(crate) fn push_entry(frame: &mut Vec<u8>, kind: u8, key: u64, bytes: &[u8]) {
    frame.push(kind);
    frame.extend_from_slice(&key.to_le_bytes());
    frame.extend_from_slice(&len_u32(bytes.len()).to_le_bytes());
    frame.extend_from_slice(bytes);
}

/// Empties `frame` to a header's room, ready for entries.
pub(crate) fn start(frame: &mut Vec<u8>) {
    frame.clear();
    frame.resize(HEADER, 0);
}

/// Fills in the header of `frame` (made by [`start`] and [`push_entry`]).
pub(crate) fn seal(frame: &mut [u8], segment: u64, lsn: u64, tail: u64) {
    let payload = len_u32(frame.len().saturating_sub(HEADER));
    frame[0..4].copy_from_slice(&payload.to_le_bytes());
    frame[8..16].copy_from_slice(&segment.to_le_bytes());
    frame[16..24].copy_from_slice(&lsn.to_le_bytes());
    frame[24..32].copy_from_slice(&tail.to_le_bytes());
    let crc = crc32fast::hash(&frame[8..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// The frame at the start of `bytes`, if one whole frame with a checksum
/// that holds is there.
pub(crate) fn read(bytes: &[u8]) -> Option<Found> {
    let header = bytes.get(..HEADER)?;
    let len = HEADER + usize::try_from(u32_at(header, 0)).ok()?;
    let frame = bytes.get(..len)?;
    if crc32fast::hash(&frame[8..]) != u32_at(header, 4) {
        return None;
    }
    Some(Found {
        segment: u64_at(header, 8),
        lsn: u64_at(header, 16),
        tail: u64_at(header, 24),
        len,
    })
}

/// The payload's length a frame's header gives (a header that is not one
/// gives a length its frame then fails to check with).
pub(crate) fn payload_len(header: &[u8; HEADER]) -> u64 {
    u64::from(u32_at(header, 0))
}

/// The entries of a frame's payload (`None` for the rest: the payload does
/// not read as entries, which a checksum that holds makes a bug).
pub(crate) fn entries(payload: &[u8]) -> impl Iterator<Item = Option<Entry<'_>>> {
    let mut rest = payload;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let entry = (|| {
            let head = rest.get(..ENTRY_HEAD)?;
            let len = usize::try_from(u32_at(head, 9)).ok()?;
            let bytes = rest.get(ENTRY_HEAD..ENTRY_HEAD + len)?;
            let entry = Entry {
                kind: head[0],
                key: u64_at(head, 1),
                bytes,
            };
            rest = &rest[ENTRY_HEAD + len..];
            Some(entry)
        })();
        if entry.is_none() {
            rest = &[];
        }
        Some(entry)
    })
}

/// A length as the format has it. An entry or a frame of 4 GiB is far
/// past anything the store writes in one group.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(entries: &[(u8, u64, &[u8])]) -> Vec<u8> {
        let mut frame = Vec::new();
        start(&mut frame);
        for (kind, key, bytes) in entries {
            push_entry(&mut frame, *kind, *key, bytes);
        }
        seal(&mut frame, 7, 42, 5);
        frame
    }

    #[test]
    fn a_frame_reads_back_with_its_entries() {
        let bytes = frame(&[(1, 9, b"copies"), (4, u64::MAX, b"")]);
        let found = read(&bytes).expect("a whole frame");
        assert_eq!(
            found,
            Found {
                segment: 7,
                lsn: 42,
                tail: 5,
                len: bytes.len()
            }
        );
        let read: Vec<_> = entries(&bytes[HEADER..]).collect();
        assert_eq!(
            read,
            vec![
                Some(Entry {
                    kind: 1,
                    key: 9,
                    bytes: b"copies"
                }),
                Some(Entry {
                    kind: 4,
                    key: u64::MAX,
                    bytes: b""
                }),
            ]
        );
    }

    #[test]
    fn a_torn_or_changed_frame_is_not_taken() {
        let bytes = frame(&[(1, 9, b"copies")]);
        for cut in 0..bytes.len() {
            assert_eq!(read(&bytes[..cut]), None, "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x10;
            assert_eq!(read(&changed), None, "byte {at} changed");
        }
        // Zeros (a file's hole, or a revoked frame) are not a frame: their
        // checksum would be that of 24 zero bytes.
        assert_eq!(read(&[0; 64]), None);
    }

    #[test]
    fn a_payload_that_does_not_read_as_entries_ends_with_none() {
        let read: Vec<_> = entries(&[1, 2, 3]).collect();
        assert_eq!(read, vec![None]);
    }
}
