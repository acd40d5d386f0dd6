//! The little-endian layout of the store's blobs (the journal's batches,
//! `journal.rs`; the sent records' batches, `sent_log.rs`): numbers as
//! `u64` or `u32`, strings as a `u32` length and their UTF-8 bytes.

/// Appends `text`: its length as a `u32`, then its bytes. A string longer
/// than 4 GiB cannot reach the store (frames are far smaller).
pub(crate) fn put_str(blob: &mut Vec<u8>, text: &str) {
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    blob.extend_from_slice(&len.to_le_bytes());
    blob.extend_from_slice(text.as_bytes());
}

/// Reads a blob from a position on; every read answers `None` past its
/// end or on bytes that are not what was asked for.
pub(crate) struct Reader<'a> {
    blob: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn at(blob: &'a [u8], at: usize) -> Self {
        Self { blob, at }
    }

    /// Where the next read starts.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    pub(crate) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes = self.blob.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(bytes)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A field written with [`put_str`], as bytes (not checked as UTF-8).
    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()?;
        self.take(usize::try_from(len).ok()?)
    }

    pub(crate) fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}
