//! `SEND` as the hub reads it: checked in full, and kept in the bytes it
//! arrived in.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::frame::{SendBody, opcode, target};
use crate::view::Utf8;
use crate::wire::Reader;
use crate::{Encode, ProtocolError, Recipients, SendFrame};

/// A `SEND` checked as strictly as a [`SendFrame`] is decoded (every field,
/// UTF-8 included), but kept in the payload it arrived in: its names and
/// text are read in place, so routing it allocates nothing. Decoding a
/// [`SendFrame`] makes a `String` for the text and one per name, and a
/// `Vec` for the list: at a million messages a second, under a glibc
/// malloc, those were a tenth of the hub's time.
///
/// The hub reads client frames as `ClientFrameOf<SendPayload>`.
///
/// ```
/// use bytes::Bytes;
/// use chinwag_protocol::{ClientFrame, ClientFrameOf, Encode, Recipients, SendFrame, SendPayload, WireFrame};
///
/// let frame = ClientFrame::Send(SendFrame {
///     id: 7,
///     to: Recipients::Users(vec!["bob".into(), "carol".into()]),
///     text: "hi".into(),
/// });
/// let mut payload = bytes::BytesMut::new();
/// frame.encode_payload(&mut payload).unwrap();
///
/// let read = ClientFrameOf::<SendPayload>::decode(payload.freeze()).unwrap();
/// let ClientFrameOf::Send(send) = read else { panic!() };
/// assert_eq!(send.id(), 7);
/// let names: Vec<String> = send.recipients().unwrap().map(|name| name.to_string()).collect();
/// assert_eq!(names, ["bob", "carol"]);
/// assert_eq!(send.text(), "hi");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPayload {
    /// The whole payload, opcode included.
    payload: Bytes,
    id: u64,
    /// Where the entries of the recipient list begin, and how many there
    /// are; `None` for everyone.
    names: Option<(usize, usize)>,
    text: Range<usize>,
}

impl SendPayload {
    /// The id the client chose, echoed in the `ACK` and in errors.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The named recipients as sent (at least one, unless the client broke
    /// the rule), or `None` for everyone.
    pub fn recipients(&self) -> Option<Names<'_>> {
        let (start, count) = self.names?;
        Some(Names {
            rest: self.payload.get(start..).unwrap_or_default(),
            left: count,
        })
    }

    /// How many recipients are named (0 for everyone).
    pub fn recipient_count(&self) -> usize {
        self.names.map_or(0, |(_, count)| count)
    }

    /// The message text.
    pub fn text(&self) -> &str {
        // Checked when parsed; checking again costs a few nanoseconds and
        // spares an `unsafe`. It cannot fail.
        std::str::from_utf8(self.text_utf8().as_bytes()).unwrap_or_default()
    }

    /// The message text, as bytes known to be UTF-8: what a
    /// [`MessageView`](crate::MessageView) takes, with no second check.
    pub fn text_utf8(&self) -> Utf8<'_> {
        Utf8::checked(self.payload.get(self.text.clone()).unwrap_or_default())
    }

    /// The payload's length in bytes, opcode included.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Always `false`: a payload holds at least its opcode.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The same message as an owned [`SendFrame`].
    pub fn to_frame(&self) -> SendFrame {
        SendFrame {
            id: self.id,
            to: match self.recipients() {
                Some(names) => Recipients::Users(names.map(|name| name.to_string()).collect()),
                None => Recipients::Everyone,
            },
            text: self.text().to_owned(),
        }
    }
}

impl TryFrom<&SendFrame> for SendPayload {
    type Error = ProtocolError;

    /// Writes `send` out as the payload a client would send.
    ///
    /// # Errors
    /// [`ProtocolError::TooLong`] for a field that does not fit its length
    /// field (a name over 255 bytes, say).
    fn try_from(send: &SendFrame) -> Result<Self, ProtocolError> {
        let mut payload = BytesMut::with_capacity(send.payload_len());
        send.encode_payload(&mut payload)?;
        Self::decode_send(payload.freeze())
    }
}

impl Encode for SendPayload {
    fn payload_len(&self) -> usize {
        self.payload.len()
    }

    fn encode_payload(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        dst.extend_from_slice(&self.payload);
        Ok(())
    }
}

impl SendBody for SendPayload {
    fn decode_send(payload: Bytes) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("empty frame")? != opcode::SEND {
            return Err(ProtocolError::Malformed("not a SEND"));
        }
        let id = r.u64("truncated message id")?;
        let names = match r.u8("truncated recipients kind")? {
            target::USERS => Some(r.check_nicks()?),
            target::EVERYONE => None,
            _ => return Err(ProtocolError::Malformed("unknown recipients kind")),
        };
        let text = r.check_text()?;
        Ok(Self {
            payload: r.finish()?,
            id,
            names,
            text,
        })
    }
}

/// The names of a [`SendPayload`]'s recipients, as sent (checked, as
/// [`Utf8`], so that the hub need not check them again).
#[derive(Debug, Clone)]
pub struct Names<'a> {
    /// The entries not yet read (and what follows them).
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Names<'a> {
    type Item = Utf8<'a>;

    fn next(&mut self) -> Option<Utf8<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Checked when parsed.
        let (&len, rest) = self.rest.split_first()?;
        let (name, rest) = rest.split_at_checked(usize::from(len))?;
        self.rest = rest;
        Some(Utf8::checked(name))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}
