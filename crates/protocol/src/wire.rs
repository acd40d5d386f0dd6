//! The field encodings every frame is built from (see `docs/protocol.md`).
//!
//! | type     | bytes                                                 |
//! |----------|-------------------------------------------------------|
//! | `u8`..`u64` | big-endian                                         |
//! | `nick`   | `u8` length, then that many bytes                     |
//! | `text`   | `u32` length, then that many bytes of UTF-8           |
//! | `nicks`  | `u32` count, then that many `nick`s                   |

use bytes::{BufMut, Bytes};

use crate::ProtocolError;

/// A cursor over one frame's payload. Every read checks the remaining length,
/// so a truncated or lying payload is a [`ProtocolError::Malformed`], never a panic.
///
/// Fields are read from the payload in place: only a `HELLO`'s nickname is
/// handed out as [`Bytes`] (one reference count), and strings are copied
/// once, into the `String` they become.
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], ProtocolError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(ProtocolError::Malformed(what))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ProtocolError> {
        let bytes = self.take(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, ProtocolError> {
        self.array(what).map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        self.array(what).map(u32::from_be_bytes)
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        self.array(what).map(u64::from_be_bytes)
    }

    /// A `nick` field as raw bytes (used for `HELLO`, whose nickname is
    /// validated by the hub so that bad UTF-8 gets its own error code).
    pub(crate) fn nick_bytes(&mut self) -> Result<Bytes, ProtocolError> {
        let len = self.nick_raw()?.len();
        Ok(self.buf.slice(self.pos - len..self.pos))
    }

    /// A `nick` field's bytes, unchecked.
    fn nick_raw(&mut self) -> Result<&[u8], ProtocolError> {
        let len = usize::from(self.u8("truncated nickname length")?);
        self.take(len, "truncated nickname")
    }

    /// A `nick` field that must be UTF-8.
    pub(crate) fn nick(&mut self) -> Result<String, ProtocolError> {
        utf8(self.nick_raw()?, "nickname is not valid utf-8")
    }

    /// Checks a `nicks` field, every name UTF-8, without copying it: where
    /// its entries begin in the payload, and how many there are.
    pub(crate) fn check_nicks(&mut self) -> Result<(usize, usize), ProtocolError> {
        let count = self.list_count()?;
        let start = self.pos;
        for _ in 0..count {
            check_utf8(self.nick_raw()?, "nickname is not valid utf-8")?;
        }
        Ok((start, count))
    }

    /// Checks a `text` field without copying it, and returns where its
    /// bytes are in the payload.
    pub(crate) fn check_text(&mut self) -> Result<std::ops::Range<usize>, ProtocolError> {
        let raw = self.text_raw()?;
        let len = raw.len();
        check_utf8(raw, "text is not valid utf-8")?;
        Ok(self.pos - len..self.pos)
    }

    pub(crate) fn text(&mut self) -> Result<String, ProtocolError> {
        utf8(self.text_raw()?, "text is not valid utf-8")
    }

    /// A `text` field's bytes, unchecked.
    fn text_raw(&mut self) -> Result<&[u8], ProtocolError> {
        let len = self.u32("truncated text length")? as usize;
        self.take(len, "truncated text")
    }

    /// A list's count. Each entry takes at least one byte: a count the
    /// payload cannot hold is refused before anything is allocated for it.
    fn list_count(&mut self) -> Result<usize, ProtocolError> {
        self.count_of(1)
    }

    /// A `u32` count of entries that each take at least `min_each` bytes:
    /// one the rest of the frame cannot hold is refused before anything is
    /// allocated for it.
    pub(crate) fn count_of(&mut self, min_each: usize) -> Result<usize, ProtocolError> {
        let count = self.u32("truncated list count")? as usize;
        if count > self.remaining() / min_each.max(1) {
            return Err(ProtocolError::Malformed("list count exceeds the frame"));
        }
        Ok(count)
    }

    pub(crate) fn nicks(&mut self) -> Result<Vec<String>, ProtocolError> {
        let count = self.list_count()?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.nick()?);
        }
        Ok(out)
    }

    /// A `u32` that ends the frame if present: nothing left reads as `None`.
    pub(crate) fn optional_u32(
        &mut self,
        what: &'static str,
    ) -> Result<Option<u32>, ProtocolError> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        self.u32(what).map(Some)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Every frame must be consumed exactly; gives back the payload.
    pub(crate) fn finish(self) -> Result<Bytes, ProtocolError> {
        if self.remaining() == 0 {
            Ok(self.buf)
        } else {
            Err(ProtocolError::Malformed(
                "trailing bytes after the last field",
            ))
        }
    }
}

fn check_utf8(raw: &[u8], what: &'static str) -> Result<(), ProtocolError> {
    // Most text is ASCII, which is checked several times faster so.
    if raw.is_ascii() {
        return Ok(());
    }
    match std::str::from_utf8(raw) {
        Ok(_) => Ok(()),
        Err(_) => Err(ProtocolError::Malformed(what)),
    }
}

fn utf8(raw: &[u8], what: &'static str) -> Result<String, ProtocolError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| ProtocolError::Malformed(what))
}

pub(crate) fn put_nick(dst: &mut impl BufMut, nick: &[u8]) -> Result<(), ProtocolError> {
    let len = u8::try_from(nick.len()).map_err(|_| ProtocolError::TooLong("nickname"))?;
    dst.put_u8(len);
    dst.put_slice(nick);
    Ok(())
}

pub(crate) fn put_text(dst: &mut impl BufMut, text: &str) -> Result<(), ProtocolError> {
    let len = u32::try_from(text.len()).map_err(|_| ProtocolError::TooLong("text"))?;
    dst.put_u32(len);
    dst.put_slice(text.as_bytes());
    Ok(())
}

pub(crate) fn put_count(dst: &mut impl BufMut, count: usize) -> Result<(), ProtocolError> {
    let count = u32::try_from(count).map_err(|_| ProtocolError::TooLong("list"))?;
    dst.put_u32(count);
    Ok(())
}

pub(crate) fn put_nicks<S: AsRef<str>>(
    dst: &mut impl BufMut,
    nicks: &[S],
) -> Result<(), ProtocolError> {
    put_count(dst, nicks.len())?;
    for nick in nicks {
        put_nick(dst, nick.as_ref().as_bytes())?;
    }
    Ok(())
}

/// Writes fields into room made beforehand for the whole payload: plain
/// stores, where [`BufMut`] makes a call and a capacity check per field.
/// The hub writes a `MESSAGE` and an `ACK` per message with it.
///
/// Writing past the room (a payload longer than its `payload_len` said) is
/// a [`ProtocolError::TooLong`], never a panic.
pub(crate) struct SliceWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> SliceWriter<'a> {
    /// Makes room for `len` bytes at the end of `dst` and writes into it.
    pub(crate) fn append(dst: &'a mut bytes::BytesMut, len: usize) -> Self {
        let start = dst.len();
        dst.resize(start + len, 0);
        Self {
            buf: &mut dst[start..],
            pos: 0,
        }
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        let end = self.pos + bytes.len();
        let room = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(ProtocolError::TooLong("payload"))?;
        room.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, n: u8) -> Result<(), ProtocolError> {
        self.bytes(&[n])
    }

    pub(crate) fn u16(&mut self, n: u16) -> Result<(), ProtocolError> {
        self.bytes(&n.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, n: u32) -> Result<(), ProtocolError> {
        self.bytes(&n.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, n: u64) -> Result<(), ProtocolError> {
        self.bytes(&n.to_be_bytes())
    }

    pub(crate) fn nick(&mut self, nick: &[u8]) -> Result<(), ProtocolError> {
        let len = u8::try_from(nick.len()).map_err(|_| ProtocolError::TooLong("nickname"))?;
        self.u8(len)?;
        self.bytes(nick)
    }

    pub(crate) fn count(&mut self, count: usize) -> Result<(), ProtocolError> {
        let count = u32::try_from(count).map_err(|_| ProtocolError::TooLong("list"))?;
        self.u32(count)
    }

    /// Checks that the payload filled exactly the room made for it.
    pub(crate) fn finish(self) -> Result<(), ProtocolError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(ProtocolError::Malformed("payload shorter than its length"))
        }
    }
}
