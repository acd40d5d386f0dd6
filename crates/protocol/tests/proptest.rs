//! Property tests of the codec: arbitrary frames round-trip, a stream cut
//! anywhere decodes to the same frames, arbitrary bytes never panic, and any
//! payload the decoder accepts re-encodes to exactly the same bytes, and
//! the hub's in-place reading of `SEND` accepts exactly what decoding does.

use bytes::{BufMut, Bytes, BytesMut};
use chinwag_protocol::{
    AccountAction, AccountDone, AccountRequest, Ack, AckRun, ClientCodec, ClientFrame, Code,
    Encode, ErrorFrame, Hello, HubCodec, MAX_NICK_LEN, MailboxHeader, Message, Nick, NickError,
    PREFIX_LEN, Presence, ProtocolError, RESERVED_NICKS, RecipientStatus, Recipients, SendFrame,
    SendPayload, Sequenced, ServerFrame, UserEntry, Welcome, WireFrame, encode_frame, user_flags,
};
use proptest::collection::vec;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

/// Strings that fit a `nick` field: valid nicknames, printable ASCII up to
/// the field's 255 bytes, and arbitrary Unicode (at most 63 characters of at
/// most 4 bytes each, so at most 252 bytes).
fn nick_field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z][A-Za-z0-9_.-]{0,31}",
        "[ -~]{0,255}",
        vec(any::<char>(), 0..64).prop_map(String::from_iter),
    ]
}

fn text() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..300).prop_map(String::from_iter)
}

fn nicks() -> impl Strategy<Value = Vec<String>> {
    vec(nick_field(), 0..8)
}

fn recipients() -> impl Strategy<Value = Recipients> {
    prop_oneof![
        nicks().prop_map(Recipients::Users),
        Just(Recipients::Everyone),
    ]
}

fn account_action() -> impl Strategy<Value = AccountAction> {
    prop::sample::select(vec![
        AccountAction::Create,
        AccountAction::SetPassword,
        AccountAction::Delete,
    ])
}

/// A `message` with the layout of `MESSAGE` (and `STORED_MESSAGE`).
fn message() -> impl Strategy<Value = Message> {
    (
        any::<u64>(),
        any::<u64>(),
        nick_field(),
        recipients(),
        text(),
    )
        .prop_map(|(id, ts_ms, from, to, text)| Message {
            id,
            ts_ms,
            from,
            to,
            text,
        })
}

fn user_entry() -> impl Strategy<Value = UserEntry> {
    (0..=user_flags::KNOWN, any::<u64>(), nick_field()).prop_map(|(flags, last_seen_ms, nick)| {
        UserEntry {
            flags,
            last_seen_ms,
            nick,
        }
    })
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (
            any::<u16>(),
            vec(any::<u8>(), 0..=255),
            any::<Option<u32>>(),
            prop::option::of(text()),
        )
            .prop_map(|(version, nick, options, password)| {
                // A password goes only after `options`: a `HELLO` with one
                // always carries them (0 for none).
                let options = if password.is_some() {
                    Some(options.unwrap_or(0))
                } else {
                    options
                };
                ClientFrame::Hello(Hello {
                    version,
                    nick: Bytes::from(nick),
                    options,
                    password,
                })
            }),
        (account_action(), nick_field(), text(), text()).prop_map(
            |(action, nick, password, new_password)| {
                ClientFrame::Account(AccountRequest {
                    action,
                    nick,
                    password,
                    new_password,
                })
            }
        ),
        vec(any::<u64>(), 0..8).prop_map(ClientFrame::Confirm),
        (any::<u64>(), recipients(), text())
            .prop_map(|(id, to, text)| ClientFrame::Send(SendFrame { id, to, text })),
        Just(ClientFrame::Who),
        Just(ClientFrame::Quit),
        any::<u64>().prop_map(ClientFrame::Ping),
        any::<u64>().prop_map(ClientFrame::Pong),
    ]
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    let status = (nick_field(), any::<u16>()).prop_map(|(nick, code)| RecipientStatus {
        nick,
        status: Code(code),
    });
    prop_oneof![
        (
            any::<u16>(),
            any::<u32>(),
            nick_field(),
            nicks(),
            any::<Option<u32>>()
        )
            .prop_map(|(version, max_frame, nick, roster, options)| {
                ServerFrame::Welcome(Welcome {
                    version,
                    max_frame,
                    nick,
                    roster,
                    options,
                })
            }),
        message().prop_map(ServerFrame::Message),
        message().prop_map(ServerFrame::StoredMessage),
        (any::<u64>(), message())
            .prop_map(|(seq, message)| ServerFrame::Sequenced(Sequenced { seq, message })),
        (any::<u64>(), any::<u64>(), any::<u16>()).prop_map(|(first, more, reason)| {
            ServerFrame::Gap(chinwag_protocol::Gap {
                first,
                last: first.saturating_add(more % 1_000),
                reason: Code(reason),
            })
        }),
        (any::<u64>(), any::<u64>(), any::<u32>(), vec(status, 0..8)).prop_map(
            |(client_id, message_id, delivered, statuses)| {
                ServerFrame::Ack(Ack {
                    client_id,
                    message_id,
                    delivered,
                    statuses,
                })
            }
        ),
        (any::<u64>(), any::<u64>(), 1..=u32::MAX).prop_map(|(client, message, count)| {
            // Ids from which the whole run fits in a u64.
            let room = u64::from(count) - 1;
            ServerFrame::AckRun(AckRun {
                first_client_id: client.min(u64::MAX - room),
                first_message_id: message.min(u64::MAX - room),
                count,
            })
        }),
        (any::<bool>(), any::<u64>(), nick_field()).prop_map(|(online, ts_ms, nick)| {
            ServerFrame::Presence(Presence {
                online,
                ts_ms,
                nick,
            })
        }),
        nicks().prop_map(ServerFrame::Roster),
        (any::<u16>(), any::<u64>(), text()).prop_map(|(code, reference, message)| {
            ServerFrame::Error(ErrorFrame {
                code: Code(code),
                reference,
                message,
            })
        }),
        any::<u64>().prop_map(ServerFrame::Ping),
        any::<u64>().prop_map(ServerFrame::Pong),
        (account_action(), nick_field())
            .prop_map(|(action, nick)| ServerFrame::AccountDone(AccountDone { action, nick })),
        (any::<u32>(), any::<u32>()).prop_map(|(count, expired)| {
            ServerFrame::Mailbox(MailboxHeader { count, expired })
        }),
        vec(user_entry(), 0..8).prop_map(ServerFrame::Users),
        user_entry().prop_map(ServerFrame::User),
    ]
}

fn encode_clients(frames: &[ClientFrame]) -> BytesMut {
    let mut codec = ClientCodec::default();
    let mut out = BytesMut::new();
    for frame in frames {
        codec.encode(frame, &mut out).unwrap();
    }
    out
}

fn encode_servers(frames: &[ServerFrame]) -> BytesMut {
    let mut codec = HubCodec::default();
    let mut out = BytesMut::new();
    for frame in frames {
        codec.encode(frame, &mut out).unwrap();
    }
    out
}

/// Feeds `wire` to `codec` in chunks ending at `cuts` (as fractions of the
/// length), decoding everything available after each chunk.
fn decode_in_chunks<C>(codec: &mut C, wire: &[u8], cuts: &[prop::sample::Index]) -> Vec<C::Item>
where
    C: Decoder<Error = ProtocolError>,
{
    let mut ends: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
    ends.push(wire.len());
    ends.sort_unstable();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut start = 0;
    for end in ends {
        buf.extend_from_slice(&wire[start..end]);
        start = end;
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            got.push(frame);
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    got
}

/// Decodes until the codec wants more bytes or fails; must not panic.
fn drain<C: Decoder<Error = ProtocolError>>(codec: &mut C, mut buf: BytesMut) {
    while let Ok(Some(_)) = codec.decode(&mut buf) {}
}

/// A payload behind a correct length prefix.
fn framed(payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u32(u32::try_from(payload.len()).unwrap());
    out.put_slice(payload);
    out
}

/// A payload starting with a known opcode most of the time, so that the
/// field decoders are exercised rather than the opcode check.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let op = prop_oneof![
        prop::sample::select(vec![
            0x01u8, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
            0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c
        ]),
        any::<u8>(),
    ];
    (op, vec(any::<u8>(), 0..64)).prop_map(|(op, rest)| {
        let mut payload = vec![op];
        payload.extend(rest);
        payload
    })
}

/// The rules of `docs/protocol.md` section 6, written out independently of
/// `Nick::parse`, in the documented order.
fn documented_nick_check(raw: &[u8]) -> Result<(), NickError> {
    if raw.is_empty() {
        return Err(NickError::Empty);
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(NickError::NotUtf8);
    };
    if !raw[0].is_ascii_alphabetic() {
        return Err(NickError::BadStart);
    }
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"_-.".contains(b);
    if !raw.iter().all(allowed) {
        return Err(NickError::BadChar);
    }
    if raw.len() > MAX_NICK_LEN {
        return Err(NickError::TooLong);
    }
    if RESERVED_NICKS.iter().any(|r| r.eq_ignore_ascii_case(text)) {
        return Err(NickError::Reserved);
    }
    Ok(())
}

proptest! {
    #[test]
    fn payload_len_is_exact(client in client_frame(), server in server_frame()) {
        let client_bytes = encode_frame(&client, usize::MAX).unwrap();
        prop_assert_eq!(client.payload_len() + PREFIX_LEN, client_bytes.len());
        let server_bytes = encode_frame(&server, usize::MAX).unwrap();
        prop_assert_eq!(server.payload_len() + PREFIX_LEN, server_bytes.len());
    }

    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        let mut buf = encode_clients(std::slice::from_ref(&frame));
        prop_assert_eq!(HubCodec::default().decode(&mut buf).unwrap(), Some(frame));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn server_frames_round_trip(frame in server_frame()) {
        let mut buf = encode_servers(std::slice::from_ref(&frame));
        prop_assert_eq!(ClientCodec::default().decode(&mut buf).unwrap(), Some(frame));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn a_client_stream_cut_anywhere_decodes_the_same(
        frames in vec(client_frame(), 1..8),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let wire = encode_clients(&frames);
        let got = decode_in_chunks(&mut HubCodec::default(), &wire, &cuts);
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn a_server_stream_cut_anywhere_decodes_the_same(
        frames in vec(server_frame(), 1..8),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let wire = encode_servers(&frames);
        let got = decode_in_chunks(&mut ClientCodec::default(), &wire, &cuts);
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512), max in 0usize..4096) {
        drain(&mut HubCodec::new(max), BytesMut::from(&bytes[..]));
        drain(&mut ClientCodec::new(max), BytesMut::from(&bytes[..]));
    }

    /// Decoding is canonical: a complete frame is either refused, or decodes to
    /// a frame that encodes back to exactly the same bytes.
    #[test]
    fn an_accepted_client_payload_reencodes_identically(payload in payload()) {
        let wire = framed(&payload);
        let mut buf = wire.clone();
        match HubCodec::default().decode(&mut buf) {
            Ok(Some(frame)) => {
                prop_assert!(buf.is_empty());
                prop_assert_eq!(encode_clients(&[frame]), wire);
            }
            Ok(None) => prop_assert!(false, "a complete frame was not decoded"),
            Err(e) => prop_assert_eq!(e.code(), Code::MALFORMED_FRAME),
        }
    }

    /// The hub reads `SEND` in place: it must refuse what decoding refuses,
    /// and read what decoding accepts as the same message.
    #[test]
    fn a_send_read_in_place_agrees_with_a_decoded_one(
        frame in client_frame(),
        noise in vec(any::<u8>(), 0..48),
        flip in any::<prop::sample::Index>(),
    ) {
        let mut payload = BytesMut::new();
        frame.encode_payload(&mut payload).unwrap();
        let mut payloads = vec![payload.clone().freeze()];
        // The same payload with one byte changed, and with noise after its
        // opcode: mostly refused, sometimes another valid `SEND`.
        let mut changed = payload.to_vec();
        if changed.len() > 1 {
            let at = flip.index(changed.len() - 1) + 1;
            changed[at] ^= 0x80;
        }
        changed[0] = 0x02;
        payloads.push(Bytes::from(changed));
        let mut noisy = vec![0x02u8];
        noisy.extend(&noise);
        payloads.push(Bytes::from(noisy));

        for payload in payloads {
            let decoded = ClientFrame::decode(payload.clone());
            let read = chinwag_protocol::ClientFrameOf::<SendPayload>::decode(payload.clone());
            match (decoded, read) {
                (Ok(ClientFrame::Send(decoded)), Ok(chinwag_protocol::ClientFrameOf::Send(read))) => {
                    prop_assert_eq!(read.to_frame(), decoded.clone());
                    prop_assert_eq!(read.id(), decoded.id);
                    prop_assert_eq!(read.text(), decoded.text.as_str());
                    let mut again = BytesMut::new();
                    read.encode_payload(&mut again).unwrap();
                    prop_assert_eq!(&again[..], &payload[..]);
                    prop_assert_eq!(SendPayload::try_from(&decoded).unwrap(), read);
                }
                (Ok(decoded), Ok(read)) => {
                    prop_assert!(!matches!(decoded, ClientFrame::Send(_)), "{:?} / {:?}", decoded, read);
                }
                (Err(a), Err(b)) => prop_assert_eq!(a.code(), b.code()),
                (a, b) => prop_assert!(false, "decoded {:?}, read in place {:?}", a, b),
            }
        }
    }

    #[test]
    fn an_accepted_server_payload_reencodes_identically(payload in payload()) {
        let wire = framed(&payload);
        let mut buf = wire.clone();
        match ClientCodec::default().decode(&mut buf) {
            Ok(Some(frame)) => {
                prop_assert!(buf.is_empty());
                prop_assert_eq!(encode_servers(&[frame]), wire);
            }
            Ok(None) => prop_assert!(false, "a complete frame was not decoded"),
            Err(e) => prop_assert_eq!(e.code(), Code::MALFORMED_FRAME),
        }
    }

    #[test]
    fn nick_parse_follows_the_documented_rules(
        raw in prop_oneof![
            vec(any::<u8>(), 0..40),
            "[A-Za-z0-9_.\\- ]{0,40}".prop_map(String::into_bytes),
            prop::sample::select(RESERVED_NICKS.to_vec())
                .prop_map(|r| r.to_ascii_uppercase().into_bytes()),
        ]
    ) {
        let got = Nick::parse(&raw);
        prop_assert_eq!(got.as_ref().map(|_| ()).map_err(|e| *e), documented_nick_check(&raw));
        if let Ok(nick) = got {
            prop_assert_eq!(nick.as_str().as_bytes(), &raw[..]);
            prop_assert_eq!(nick.folded(), nick.as_str().to_ascii_lowercase());
        }
    }
}
