//! Input lines for the text front end: split at `\n`, with a length limit,
//! and a bad line reported without ending the connection.

use std::io;

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// One input line, or why it was refused. A bad line is reported and the
/// connection goes on, which `tokio_util`'s `LinesCodec` would not allow
/// (its stream ends at the first invalid UTF-8).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    Text(String),
    /// Longer than the limit: reported once, then discarded up to its newline.
    TooLong,
    NotUtf8,
}

/// Splits input at `\n` (dropping a `\r` before it), with a length limit.
#[derive(Debug)]
pub(crate) struct LineCodec {
    max: usize,
    /// Where to resume looking for a newline, so a line arriving byte by byte
    /// is scanned once, not once per byte.
    scanned: usize,
    /// Inside an over-long line, dropping bytes until its newline.
    discarding: bool,
}

impl LineCodec {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            scanned: 0,
            discarding: false,
        }
    }

    /// The longest line taken, in bytes.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Takes lines up to `max` bytes from now on (as registration raises
    /// the limit).
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
    }
}

impl Decoder for LineCodec {
    type Item = Line;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Line>> {
        loop {
            let newline = src[self.scanned..].iter().position(|&b| b == b'\n');
            match (self.discarding, newline) {
                (true, Some(at)) => {
                    src.advance(self.scanned + at + 1);
                    self.scanned = 0;
                    self.discarding = false;
                }
                (true, None) => {
                    src.clear();
                    self.scanned = 0;
                    return Ok(None);
                }
                (false, Some(at)) => {
                    let end = self.scanned + at;
                    self.scanned = 0;
                    if end > self.max {
                        src.advance(end + 1);
                        return Ok(Some(Line::TooLong));
                    }
                    let raw = src.split_to(end + 1);
                    let raw = raw[..end].strip_suffix(b"\r").unwrap_or(&raw[..end]);
                    return Ok(Some(match std::str::from_utf8(raw) {
                        Ok(text) => Line::Text(text.to_owned()),
                        Err(_) => Line::NotUtf8,
                    }));
                }
                (false, None) if src.len() > self.max => {
                    src.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(Line::TooLong));
                }
                (false, None) => {
                    self.scanned = src.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Line>> {
        if let Some(line) = self.decode(src)? {
            return Ok(Some(line));
        }
        if self.discarding || src.is_empty() {
            src.clear();
            return Ok(None);
        }
        // A last line without a newline still counts.
        src.extend_from_slice(b"\n");
        self.decode(src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut LineCodec, input: &[u8]) -> Vec<Line> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(line) = codec.decode(&mut buf).unwrap() {
            out.push(line);
        }
        while let Some(line) = codec.decode_eof(&mut buf).unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn splits_lines_and_reports_bad_ones_without_stopping() {
        let mut codec = LineCodec::new(8);
        let lines = decode_all(
            &mut codec,
            b"alice\r\nway too long a line\n\xff\xfe\nok\nlast",
        );
        assert_eq!(
            lines,
            [
                Line::Text("alice".into()),
                Line::TooLong,
                Line::NotUtf8,
                Line::Text("ok".into()),
                Line::Text("last".into()),
            ]
        );
    }

    #[test]
    fn an_endless_line_is_reported_once_and_discarded() {
        let mut codec = LineCodec::new(4);
        let mut buf = BytesMut::from(&b"0123456789"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(Line::TooLong));
        assert!(buf.is_empty());
        buf.extend_from_slice(b"more garbage\nhi\n");
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Line::Text("hi".into()))
        );
    }
}
