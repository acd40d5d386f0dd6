//! Frames written from borrowed parts: [`MessageView`], [`SequencedView`]
//! and [`AckView`] encode the same bytes as [`Message`], `SEQUENCED` and
//! [`Ack`] without first copying
//! names and text into owned strings (the hub writes every message this
//! way), and [`Utf8`] is text already known to be UTF-8.

use bytes::BytesMut;

use crate::frame::{Ack, Encode, Message, Recipients, nick_len, opcode, target};
use crate::wire::SliceWriter;
use crate::{Code, ProtocolError};

/// A `MESSAGE` written from borrowed parts: the same bytes as
/// [`ServerFrame::Message`](crate::ServerFrame::Message), without first copying the sender's name, the
/// recipients and the text into a [`Message`]. `to` is `None` for everyone.
#[derive(Debug, Clone)]
pub struct MessageView<'a, To> {
    /// As [`Message::id`].
    pub id: u64,
    /// As [`Message::ts_ms`].
    pub ts_ms: u64,
    /// As [`Message::from`].
    pub from: &'a str,
    /// The named recipients, or `None` for everyone.
    pub to: Option<To>,
    /// As [`Message::text`].
    pub text: Utf8<'a>,
}

/// Bytes known to be UTF-8: a `&str`, or the text of a checked
/// [`SendPayload`](crate::SendPayload), which the hub then need not check
/// again to write it into a `MESSAGE` (without `unsafe`, a `&str` could
/// only be had from those bytes by checking them again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8<'a>(&'a [u8]);

impl<'a> Utf8<'a> {
    /// Bytes the caller has checked to be UTF-8.
    pub(crate) fn checked(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn as_bytes(self) -> &'a [u8] {
        self.0
    }

    /// Their length.
    pub fn len(self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Utf8<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Always UTF-8, so the check passes and nothing is ever replaced.
        match std::str::from_utf8(self.0) {
            Ok(text) => f.write_str(text),
            Err(_) => f.write_str(&String::from_utf8_lossy(self.0)),
        }
    }
}

impl From<Utf8<'_>> for String {
    /// An owned copy, without going through `Display`'s formatter.
    fn from(text: Utf8<'_>) -> Self {
        // Always UTF-8 (checked again: the crate has no `unsafe`), so the
        // lossy branch never runs.
        Self::from_utf8(text.0.to_vec())
            .unwrap_or_else(|error| Self::from_utf8_lossy(error.as_bytes()).into_owned())
    }
}

impl<'a> From<&'a str> for Utf8<'a> {
    fn from(text: &'a str) -> Self {
        Self(text.as_bytes())
    }
}

/// An `ACK` written from borrowed parts: the same bytes as
/// [`ServerFrame::Ack`](crate::ServerFrame::Ack); `statuses` yields each recipient and its outcome.
#[derive(Debug, Clone)]
pub struct AckView<Statuses> {
    /// As [`Ack::client_id`].
    pub client_id: u64,
    /// As [`Ack::message_id`].
    pub message_id: u64,
    /// As [`Ack::delivered`].
    pub delivered: u32,
    /// Each recipient's nickname and outcome, as [`Ack::statuses`].
    pub statuses: Statuses,
}

impl Message {
    /// This message as a [`MessageView`].
    #[must_use]
    pub fn view(&self) -> MessageView<'_, impl Iterator<Item = &str> + Clone> {
        MessageView {
            id: self.id,
            ts_ms: self.ts_ms,
            from: &self.from,
            to: match &self.to {
                Recipients::Users(nicks) => Some(nicks.iter().map(String::as_str)),
                Recipients::Everyone => None,
            },
            text: self.text.as_str().into(),
        }
    }
}

impl Ack {
    /// This acknowledgement as an [`AckView`].
    #[must_use]
    pub fn view(&self) -> AckView<impl Iterator<Item = (Utf8<'_>, Code)> + Clone> {
        AckView {
            client_id: self.client_id,
            message_id: self.message_id,
            delivered: self.delivered,
            statuses: self
                .statuses
                .iter()
                .map(|s| (s.nick.as_str().into(), s.status)),
        }
    }
}

impl<'a, To> Encode for MessageView<'a, To>
where
    To: Iterator<Item = &'a str> + Clone,
{
    fn payload_len(&self) -> usize {
        let to = match &self.to {
            Some(nicks) => 1 + 4 + nicks.clone().map(|n| nick_len(n.as_bytes())).sum::<usize>(),
            None => 1,
        };
        1 + 8 + 8 + nick_len(self.from.as_bytes()) + to + 4 + self.text.len()
    }

    fn encode_payload(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode_payload_len(dst, self.payload_len())
    }

    fn encode_payload_len(&self, dst: &mut BytesMut, len: usize) -> Result<(), ProtocolError> {
        self.encode_under(dst, len, opcode::MESSAGE, None)
    }
}

impl<'a, To> MessageView<'a, To>
where
    To: Iterator<Item = &'a str> + Clone,
{
    /// Writes the payload of `len` bytes: `opcode`, then (a `SEQUENCED`'s)
    /// number, then the message's fields.
    fn encode_under(
        &self,
        dst: &mut BytesMut,
        len: usize,
        opcode: u8,
        seq: Option<u64>,
    ) -> Result<(), ProtocolError> {
        // Everything but the text's bytes, which are appended as they are
        // (making room for them first would write a long text twice).
        let mut w = SliceWriter::append(dst, len.saturating_sub(self.text.len()));
        w.u8(opcode)?;
        if let Some(seq) = seq {
            w.u64(seq)?;
        }
        w.u64(self.id)?;
        w.u64(self.ts_ms)?;
        w.nick(self.from.as_bytes())?;
        match &self.to {
            Some(nicks) => {
                w.u8(target::USERS)?;
                w.count(nicks.clone().count())?;
                for nick in nicks.clone() {
                    w.nick(nick.as_bytes())?;
                }
            }
            None => w.u8(target::EVERYONE)?,
        }
        let len = u32::try_from(self.text.len()).map_err(|_| ProtocolError::TooLong("text"))?;
        w.u32(len)?;
        w.finish()?;
        dst.extend_from_slice(self.text.as_bytes());
        Ok(())
    }
}

/// A `SEQUENCED` written from borrowed parts: the same bytes as
/// [`ServerFrame::Sequenced`](crate::ServerFrame::Sequenced), without
/// first copying its message into a [`Message`].
#[derive(Debug, Clone)]
pub struct SequencedView<'a, To> {
    /// As [`Sequenced::seq`](crate::Sequenced::seq).
    pub seq: u64,
    /// The message, as `MESSAGE` carries it.
    pub message: MessageView<'a, To>,
}

impl<'a, To> Encode for SequencedView<'a, To>
where
    To: Iterator<Item = &'a str> + Clone,
{
    fn payload_len(&self) -> usize {
        8 + self.message.payload_len()
    }

    fn encode_payload(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode_payload_len(dst, self.payload_len())
    }

    fn encode_payload_len(&self, dst: &mut BytesMut, len: usize) -> Result<(), ProtocolError> {
        // The opcode and the number, then `MESSAGE`'s fields.
        (self.message).encode_under(dst, len, opcode::SEQUENCED, Some(self.seq))
    }
}

impl<'a, Statuses> Encode for AckView<Statuses>
where
    Statuses: Iterator<Item = (Utf8<'a>, Code)> + Clone,
{
    fn payload_len(&self) -> usize {
        let statuses = self.statuses.clone();
        1 + 8
            + 8
            + 4
            + 4
            + statuses
                .map(|(nick, _)| nick_len(nick.as_bytes()) + 2)
                .sum::<usize>()
    }

    fn encode_payload(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode_payload_len(dst, self.payload_len())
    }

    fn encode_payload_len(&self, dst: &mut BytesMut, len: usize) -> Result<(), ProtocolError> {
        let mut w = SliceWriter::append(dst, len);
        w.u8(opcode::ACK)?;
        w.u64(self.client_id)?;
        w.u64(self.message_id)?;
        w.u32(self.delivered)?;
        w.count(self.statuses.clone().count())?;
        for (nick, status) in self.statuses.clone() {
            w.nick(nick.as_bytes())?;
            w.u16(status.0)?;
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8;

    #[test]
    fn checked_text_displays_and_copies_as_itself() {
        let text = Utf8::checked("héllo, wörld ✓".as_bytes());
        assert_eq!(String::from(text), "héllo, wörld ✓");
        assert_eq!(text.to_string(), "héllo, wörld ✓");
    }
}
