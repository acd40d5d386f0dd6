//! The codec with byte literals: round trips, partial input, limits and
//! malformed payloads. No I/O and no runtime: bytes in, frames out.

use bytes::{BufMut, Bytes, BytesMut};
use chinwag_protocol::{
    AccountAction, AccountDone, AccountRequest, Ack, AckRun, AckView, ClientCodec, ClientFrame,
    Code, DEFAULT_MAX_FRAME, Encode, ErrorFrame, FrameCodec, Hello, HubCodec, MailboxHeader,
    Message, MessageView, Nick, NickError, PREFIX_LEN, Presence, ProtocolError, RecipientStatus,
    Recipients, SendFrame, Sequenced, ServerFrame, UserEntry, Welcome, WireFrame, encode_frame,
    encode_into, user_flags,
};
use tokio_util::codec::{Decoder, Encoder};

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

/// One of every client frame variant, with a few shapes of each.
fn client_frames() -> Vec<ClientFrame> {
    vec![
        ClientFrame::Hello(Hello {
            version: 1,
            nick: Bytes::from_static(b"alice"),
            options: None,
            password: None,
        }),
        ClientFrame::Hello(Hello {
            version: u16::MAX,
            nick: Bytes::new(),
            options: Some(u32::MAX),
            password: None,
        }),
        ClientFrame::Hello(Hello {
            version: 1,
            nick: Bytes::from_static(b"bob"),
            options: Some(0),
            password: Some("opensesame".to_owned()),
        }),
        ClientFrame::Hello(Hello {
            version: 1,
            nick: Bytes::from_static(b"bob"),
            options: Some(8),
            password: Some(String::new()),
        }),
        ClientFrame::Send(SendFrame {
            id: 1,
            to: Recipients::Users(strings(&["bob"])),
            text: "hi".to_owned(),
        }),
        ClientFrame::Send(SendFrame {
            id: u64::MAX,
            to: Recipients::Users(strings(&["bob", "Carol", "BOB", ""])),
            text: "line one\nline two \u{2603} \u{1f980}".to_owned(),
        }),
        ClientFrame::Send(SendFrame {
            id: 0,
            to: Recipients::Users(Vec::new()),
            text: String::new(),
        }),
        ClientFrame::Send(SendFrame {
            id: 3,
            to: Recipients::Everyone,
            text: "hello all".to_owned(),
        }),
        ClientFrame::Who,
        ClientFrame::Quit,
        ClientFrame::Ping(0),
        ClientFrame::Ping(u64::MAX),
        ClientFrame::Pong(0x0102_0304_0506_0708),
        ClientFrame::Account(AccountRequest {
            action: AccountAction::Create,
            nick: "bob".to_owned(),
            password: "opensesame".to_owned(),
            new_password: String::new(),
        }),
        ClientFrame::Account(AccountRequest {
            action: AccountAction::SetPassword,
            nick: "bob".to_owned(),
            password: "opensesame".to_owned(),
            new_password: "p\u{e4}ssw\u{f6}rd \u{2603}".to_owned(),
        }),
        ClientFrame::Account(AccountRequest {
            action: AccountAction::Delete,
            nick: String::new(),
            password: String::new(),
            new_password: String::new(),
        }),
        ClientFrame::Confirm(vec![4, 5, u64::MAX]),
        ClientFrame::Confirm(Vec::new()),
    ]
}

/// One of every server frame variant, with a few shapes of each.
fn server_frames() -> Vec<ServerFrame> {
    let mut frames = vec![
        ServerFrame::Welcome(Welcome {
            version: 1,
            max_frame: 1_048_576,
            nick: "alice".to_owned(),
            roster: strings(&["alice", "bob"]),
            options: None,
        }),
        ServerFrame::Welcome(Welcome {
            version: 1,
            max_frame: 1_048_576,
            nick: "alice".to_owned(),
            roster: strings(&["alice"]),
            options: Some(0),
        }),
        ServerFrame::Message(Message {
            id: 7,
            ts_ms: 1_735_689_600_000,
            from: "alice".to_owned(),
            to: Recipients::Users(strings(&["bob", "Carol"])),
            text: "h\u{e9}llo".to_owned(),
        }),
        ServerFrame::Message(Message {
            id: u64::MAX,
            ts_ms: 0,
            from: "alice".to_owned(),
            to: Recipients::Everyone,
            text: String::new(),
        }),
        ServerFrame::Ack(Ack {
            client_id: 1,
            message_id: 7,
            delivered: 1,
            statuses: vec![
                RecipientStatus {
                    nick: "bob".to_owned(),
                    status: Code::DELIVERED,
                },
                RecipientStatus {
                    nick: "dave".to_owned(),
                    status: Code::NO_SUCH_USER,
                },
                RecipientStatus {
                    nick: "Carol".to_owned(),
                    status: Code::UNABLE_TO_DELIVER,
                },
            ],
        }),
        ServerFrame::Ack(Ack {
            client_id: 2,
            message_id: 8,
            delivered: 0,
            statuses: Vec::new(),
        }),
        ServerFrame::AckRun(AckRun {
            first_client_id: 1,
            first_message_id: 7,
            count: 1,
        }),
        ServerFrame::AckRun(AckRun {
            first_client_id: u64::MAX - 63,
            first_message_id: 0,
            count: 64,
        }),
        ServerFrame::Presence(Presence {
            online: true,
            ts_ms: 1,
            nick: "bob".to_owned(),
        }),
        ServerFrame::Presence(Presence {
            online: false,
            ts_ms: 2,
            nick: "bob".to_owned(),
        }),
        ServerFrame::Roster(strings(&["alice", "bob", "Carol"])),
        ServerFrame::Roster(Vec::new()),
        ServerFrame::Error(ErrorFrame::new(Code::BAD_REQUEST, 4)),
        ServerFrame::Error(ErrorFrame {
            code: Code(999),
            reference: 0,
            message: "something new".to_owned(),
        }),
        ServerFrame::Ping(5),
        ServerFrame::Pong(6),
    ];
    frames.extend(account_server_frames());
    frames
}

/// The frames of accounts, mailboxes and the table of users.
fn account_server_frames() -> Vec<ServerFrame> {
    vec![
        ServerFrame::AccountDone(AccountDone {
            action: AccountAction::Delete,
            nick: "bob".to_owned(),
        }),
        ServerFrame::Mailbox(MailboxHeader {
            count: 2,
            expired: u32::MAX,
        }),
        ServerFrame::StoredMessage(Message {
            id: 4,
            ts_ms: 1_735_689_601_234,
            from: "carol".to_owned(),
            to: Recipients::Users(strings(&["bob", "dave"])),
            text: "call me".to_owned(),
        }),
        ServerFrame::Sequenced(Sequenced {
            seq: u64::MAX,
            message: Message {
                id: 5,
                ts_ms: 1_735_689_601_235,
                from: "carol".to_owned(),
                to: Recipients::Users(strings(&["bob"])),
                text: "numbered".to_owned(),
            },
        }),
        ServerFrame::Gap(chinwag_protocol::Gap {
            first: 7,
            last: u64::MAX,
            reason: Code::EXPIRED,
        }),
        ServerFrame::Users(vec![
            UserEntry {
                flags: user_flags::ONLINE,
                last_seen_ms: 0,
                nick: "alice".to_owned(),
            },
            UserEntry {
                flags: user_flags::REGISTERED,
                last_seen_ms: u64::MAX,
                nick: "carol".to_owned(),
            },
        ]),
        ServerFrame::Users(Vec::new()),
        ServerFrame::User(UserEntry {
            flags: 0,
            last_seen_ms: 0,
            nick: "dave".to_owned(),
        }),
    ]
}

fn encode_client(frame: &ClientFrame) -> BytesMut {
    let mut out = BytesMut::new();
    ClientCodec::default().encode(frame, &mut out).unwrap();
    out
}

fn encode_server(frame: &ServerFrame) -> BytesMut {
    let mut out = BytesMut::new();
    HubCodec::default().encode(frame, &mut out).unwrap();
    out
}

/// A whole frame from a raw payload: the length prefix, then the payload.
fn framed(payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u32(u32::try_from(payload.len()).unwrap());
    out.put_slice(payload);
    out
}

#[test]
fn every_client_frame_round_trips() {
    for frame in client_frames() {
        let mut buf = encode_client(&frame);
        let len = u32::from_be_bytes(buf[..PREFIX_LEN].try_into().unwrap()) as usize;
        assert_eq!(
            len,
            buf.len() - PREFIX_LEN,
            "{frame:?}: prefix counts the payload"
        );
        assert_eq!(
            frame.payload_len() + PREFIX_LEN,
            buf.len(),
            "{frame:?}: payload_len is exact"
        );
        assert_eq!(HubCodec::default().decode(&mut buf).unwrap(), Some(frame));
        assert!(buf.is_empty());
    }
}

#[test]
fn every_server_frame_round_trips() {
    for frame in server_frames() {
        let mut buf = encode_server(&frame);
        let len = u32::from_be_bytes(buf[..PREFIX_LEN].try_into().unwrap()) as usize;
        assert_eq!(
            len,
            buf.len() - PREFIX_LEN,
            "{frame:?}: prefix counts the payload"
        );
        assert_eq!(
            frame.payload_len() + PREFIX_LEN,
            buf.len(),
            "{frame:?}: payload_len is exact"
        );
        assert_eq!(
            ClientCodec::default().decode(&mut buf).unwrap(),
            Some(frame)
        );
        assert!(buf.is_empty());
    }
}

#[test]
fn encode_frame_and_encode_into_agree_with_the_codec() {
    for frame in server_frames() {
        let shared = encode_frame(&frame, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(&shared[..], &encode_server(&frame)[..]);
        let mut dst = BytesMut::from(&b"already here"[..]);
        encode_into(&frame, DEFAULT_MAX_FRAME, &mut dst).unwrap();
        assert_eq!(&dst[..12], b"already here");
        assert_eq!(&dst[12..], &shared[..]);
    }
}

/// Every prefix of a frame is "not yet"; the rest then completes it, whether
/// the decoder that saw the prefix is reused or not.
fn check_every_split<F, C>(bytes: &[u8], want: &F, mut new_codec: impl FnMut() -> C)
where
    F: PartialEq + std::fmt::Debug,
    C: Decoder<Item = F, Error = ProtocolError>,
{
    for cut in 0..bytes.len() {
        let mut codec = new_codec();
        let mut buf = BytesMut::from(&bytes[..cut]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None, "cut at {cut}");
        // A second look at the same partial input is still "not yet".
        assert_eq!(codec.decode(&mut buf).unwrap(), None, "cut at {cut}, again");
        buf.extend_from_slice(&bytes[cut..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap().as_ref(),
            Some(want),
            "cut at {cut}"
        );
        assert!(buf.is_empty(), "cut at {cut}");
    }
}

#[test]
fn a_truncated_client_frame_waits_for_the_rest() {
    for frame in client_frames() {
        check_every_split(&encode_client(&frame), &frame, HubCodec::default);
    }
}

#[test]
fn a_truncated_server_frame_waits_for_the_rest() {
    for frame in server_frames() {
        check_every_split(&encode_server(&frame), &frame, ClientCodec::default);
    }
}

#[test]
fn frames_fed_one_byte_at_a_time_decode() {
    let frames = client_frames();
    let mut wire = BytesMut::new();
    for frame in &frames {
        wire.extend_from_slice(&encode_client(frame));
    }
    let mut codec = HubCodec::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for &byte in &wire[..] {
        buf.put_u8(byte);
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            got.push(frame);
        }
    }
    assert_eq!(got, frames);
    assert!(buf.is_empty());
}

#[test]
fn two_frames_in_one_buffer_decode_one_after_the_other() {
    let first = ClientFrame::Ping(1);
    let second = ClientFrame::Send(SendFrame {
        id: 2,
        to: Recipients::Everyone,
        text: "two".to_owned(),
    });
    let mut buf = encode_client(&first);
    buf.extend_from_slice(&encode_client(&second));
    // And half of a third.
    let third = encode_client(&ClientFrame::Who);
    let mut partial = encode_client(&ClientFrame::Pong(3));
    partial.truncate(6);
    buf.extend_from_slice(&partial);

    let mut codec = HubCodec::default();
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(first));
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(second));
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert_eq!(&buf[..], &partial[..]);
    buf.extend_from_slice(&encode_client(&ClientFrame::Pong(3))[6..]);
    buf.extend_from_slice(&third);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(ClientFrame::Pong(3)));
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(ClientFrame::Who));
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
}

fn assert_too_large(
    result: Result<Option<ClientFrame>, ProtocolError>,
    want_len: usize,
    max: usize,
) {
    match result {
        Err(e @ ProtocolError::FrameTooLarge { len, max: limit }) => {
            assert_eq!((len, limit), (want_len, max));
            assert_eq!(e.code(), Code::FRAME_TOO_LARGE);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
}

#[test]
fn an_oversized_prefix_is_refused_before_its_payload_arrives() {
    // Only the four prefix bytes: the decoder must not wait for 4 GiB.
    let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
    assert_too_large(
        HubCodec::default().decode(&mut buf),
        0xffff_ffff,
        DEFAULT_MAX_FRAME,
    );

    let over = u32::try_from(DEFAULT_MAX_FRAME + 1).unwrap();
    let mut buf = BytesMut::from(&over.to_be_bytes()[..]);
    assert_too_large(
        HubCodec::default().decode(&mut buf),
        DEFAULT_MAX_FRAME + 1,
        DEFAULT_MAX_FRAME,
    );

    // And no memory was reserved for the announced payload.
    let mut buf = BytesMut::with_capacity(4);
    buf.put_u32(0xffff_ffff);
    assert!(HubCodec::default().decode(&mut buf).is_err());
    assert!(buf.capacity() < 1024);
}

#[test]
fn a_frame_of_exactly_the_limit_is_accepted() {
    let max = 64;
    // SEND payload: opcode 1 + id 8 + kind 1 + text length 4 + text.
    let text = "x".repeat(max - 14);
    let frame = ClientFrame::Send(SendFrame {
        id: 9,
        to: Recipients::Everyone,
        text,
    });
    let mut buf = BytesMut::new();
    ClientCodec::new(max).encode(&frame, &mut buf).unwrap();
    assert_eq!(buf.len(), PREFIX_LEN + max);
    assert_eq!(HubCodec::new(max).decode(&mut buf).unwrap(), Some(frame));

    let mut buf = BytesMut::new();
    buf.put_u32(u32::try_from(max + 1).unwrap());
    assert_too_large(HubCodec::new(max).decode(&mut buf), max + 1, max);
}

#[test]
fn set_max_frame_changes_the_limit_both_ways() {
    let mut hub = HubCodec::new(16 * 1024);
    assert_eq!(hub.max_frame(), 16 * 1024);
    let big = ClientFrame::Send(SendFrame {
        id: 1,
        to: Recipients::Everyone,
        text: "y".repeat(20_000),
    });

    let mut client = ClientCodec::new(16 * 1024);
    let mut dst = BytesMut::new();
    assert!(matches!(
        client.encode(&big, &mut dst),
        Err(ProtocolError::FrameTooLarge { .. })
    ));
    client.set_max_frame(DEFAULT_MAX_FRAME);
    client.encode(&big, &mut dst).unwrap();

    let mut early = dst.clone();
    assert!(matches!(
        hub.decode(&mut early),
        Err(ProtocolError::FrameTooLarge {
            len: 20_014,
            max: 16_384
        })
    ));

    hub.set_max_frame(DEFAULT_MAX_FRAME);
    assert_eq!(hub.max_frame(), DEFAULT_MAX_FRAME);
    assert_eq!(hub.decode(&mut dst).unwrap(), Some(big));

    // Lowering it works too, and applies to the hub's encoder.
    hub.set_max_frame(8);
    let mut out = BytesMut::new();
    assert!(hub.encode(&ServerFrame::Ping(1), &mut out).is_err());
    hub.encode(&ServerFrame::Roster(Vec::new()), &mut out)
        .unwrap();
    assert_eq!(&out[..], [0, 0, 0, 5, 0x85, 0, 0, 0, 0]);
}

#[test]
fn encoding_an_oversized_frame_fails_and_leaves_dst_unchanged() {
    let mut codec = ClientCodec::new(32);
    let mut dst = BytesMut::new();
    codec.encode(&ClientFrame::Ping(1), &mut dst).unwrap();
    let before = dst.clone();

    let frame = ClientFrame::Send(SendFrame {
        id: 1,
        to: Recipients::Everyone,
        text: "z".repeat(19),
    });
    match codec.encode(&frame, &mut dst) {
        Err(ProtocolError::FrameTooLarge { len, max }) => assert_eq!((len, max), (33, 32)),
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert_eq!(dst, before);

    assert!(encode_frame(&frame, 32).is_err());
    assert!(encode_into(&frame, 32, &mut dst).is_err());
    assert_eq!(dst, before);
}

#[test]
fn a_field_too_long_for_its_length_fails_to_encode_and_leaves_dst_unchanged() {
    let long = "n".repeat(256);
    let frames = [
        ServerFrame::Presence(Presence {
            online: true,
            ts_ms: 0,
            nick: long.clone(),
        }),
        ServerFrame::Roster(vec!["ok".to_owned(), long]),
    ];
    for frame in frames {
        let mut dst = BytesMut::from(&b"keep"[..]);
        let result = HubCodec::default().encode(&frame, &mut dst);
        assert!(
            matches!(result, Err(ProtocolError::TooLong(_))),
            "{result:?}"
        );
        assert_eq!(&dst[..], b"keep");
    }
    // 255 bytes is the most a nick field holds, and it works.
    let frame = ServerFrame::Roster(vec!["n".repeat(255)]);
    let mut buf = encode_server(&frame);
    assert_eq!(
        ClientCodec::default().decode(&mut buf).unwrap(),
        Some(frame)
    );
}

fn decode_client_payload(payload: &[u8]) -> Result<Option<ClientFrame>, ProtocolError> {
    HubCodec::default().decode(&mut framed(payload))
}

fn decode_server_payload(payload: &[u8]) -> Result<Option<ServerFrame>, ProtocolError> {
    ClientCodec::default().decode(&mut framed(payload))
}

fn assert_malformed<T: std::fmt::Debug>(result: Result<Option<T>, ProtocolError>, what: &str) {
    match result {
        Err(e @ (ProtocolError::Malformed(_) | ProtocolError::UnknownOpcode(_))) => {
            assert_eq!(e.code(), Code::MALFORMED_FRAME, "{what}");
        }
        other => panic!("{what}: expected a malformed frame, got {other:?}"),
    }
}

#[test]
fn unknown_opcodes_are_refused_in_each_direction() {
    for op in [0x00, 0x0b, 0x7f, 0x80, 0x81, 0x86, 0xff] {
        match decode_client_payload(&[op]) {
            Err(ProtocolError::UnknownOpcode(got)) => assert_eq!(got, op),
            other => panic!("client opcode {op:#04x}: {other:?}"),
        }
    }
    for op in [0x00, 0x01, 0x02, 0x03, 0x04, 0x80, 0x91, 0xff] {
        match decode_server_payload(&[op]) {
            Err(e @ ProtocolError::UnknownOpcode(got)) => {
                assert_eq!(got, op);
                assert_eq!(e.code(), Code::MALFORMED_FRAME);
            }
            other => panic!("server opcode {op:#04x}: {other:?}"),
        }
    }
}

#[test]
fn garbage_client_payloads_are_malformed() {
    let cases: &[(&str, &[u8])] = &[
        ("empty payload", b""),
        ("trailing byte after WHO", b"\x03\x00"),
        ("trailing byte after PING", b"\x05\0\0\0\0\0\0\0\x01\x00"),
        ("truncated PING token", b"\x05\0\0\0\0\0\0\0"),
        ("truncated HELLO version", b"\x01\x00"),
        ("HELLO nick longer than the frame", b"\x01\x00\x01\x05ali"),
        (
            "SEND text not UTF-8",
            b"\x02\0\0\0\0\0\0\0\x01\x01\0\0\0\x02\xc3\x28",
        ),
        (
            "SEND text longer than the frame",
            b"\x02\0\0\0\0\0\0\0\x01\x01\0\0\0\x09hi",
        ),
        (
            "SEND count larger than the frame",
            b"\x02\0\0\0\0\0\0\0\x01\x00\xff\xff\xff\xff\0\0\0\0",
        ),
        (
            "SEND count 2 but one nick",
            b"\x02\0\0\0\0\0\0\0\x01\x00\0\0\0\x02\x01a\0\0\0\0",
        ),
        (
            "SEND recipient not UTF-8",
            b"\x02\0\0\0\0\0\0\0\x01\x00\0\0\0\x01\x01\xff\0\0\0\0",
        ),
        (
            "SEND unknown recipients kind",
            b"\x02\0\0\0\0\0\0\0\x01\x02\0\0\0\0",
        ),
        ("SEND without text", b"\x02\0\0\0\0\0\0\0\x01\x01"),
        (
            "SEND trailing byte",
            b"\x02\0\0\0\0\0\0\0\x01\x01\0\0\0\0\x00",
        ),
        ("HELLO options cut short", b"\x01\x00\x01\x01a\0\0"),
        (
            "HELLO password longer than the frame",
            b"\x01\x00\x01\x01a\0\0\0\0\0\0\0\x05abc",
        ),
        (
            "HELLO trailing byte after the password",
            b"\x01\x00\x01\x01a\0\0\0\0\0\0\0\x01x\x00",
        ),
        ("ACCOUNT action 0", b"\x07\x00\x01a\0\0\0\0\0\0\0\0"),
        ("ACCOUNT without new_password", b"\x07\x01\x01a\0\0\0\0"),
        (
            "ACCOUNT nick not UTF-8",
            b"\x07\x01\x01\xff\0\0\0\0\0\0\0\0",
        ),
        (
            "ACCOUNT password not UTF-8",
            b"\x07\x01\x01a\0\0\0\x01\xff\0\0\0\0",
        ),
        ("CONFIRM count without ids", b"\x08\0\0\0\x01"),
        ("CONFIRM id truncated", b"\x08\0\0\0\x01\0\0\0\0\0\0\0"),
        ("CONFIRM trailing byte", b"\x08\0\0\0\x00\x00"),
    ];
    for &(what, payload) in cases {
        assert_malformed(decode_client_payload(payload), what);
    }
}

#[test]
fn garbage_server_payloads_are_malformed() {
    let cases: &[(&str, &[u8])] = &[
        ("empty payload", b""),
        ("WELCOME truncated", b"\x81\x00\x01\x00\x10"),
        (
            "WELCOME roster count larger than the frame",
            b"\x81\x00\x01\0\0\0\0\x01a\0\x10\0\0",
        ),
        (
            "ACK status count larger than the frame",
            b"\x83\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x02\x01a\0\0",
        ),
        (
            "ACK status truncated",
            b"\x83\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01\x01a\0",
        ),
        ("PRESENCE state 2", b"\x84\x02\0\0\0\0\0\0\0\0\x01a"),
        (
            "RECEIPT count larger than a seventeenth of the frame",
            b"\x8d\0\0\0\x02\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01\x01a",
        ),
        (
            "RECEIPT recipient truncated",
            b"\x8d\0\0\0\x01\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x01\x03ab",
        ),
        (
            "PRESENCE nick not UTF-8",
            b"\x84\x01\0\0\0\0\0\0\0\0\x01\xff",
        ),
        (
            "MESSAGE unknown recipients kind",
            b"\x82\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\x01a\x07\0\0\0\0",
        ),
        (
            "ERROR text not UTF-8",
            b"\x86\0\x01\0\0\0\0\0\0\0\0\0\0\0\x01\x80",
        ),
        ("ROSTER trailing byte", b"\x85\0\0\0\0\x00"),
        ("PONG truncated", b"\x06\0\0"),
        ("ACCOUNT_DONE action 4", b"\x88\x04\x01a"),
        ("MAILBOX truncated", b"\x89\0\0\0\x01\0\0"),
        (
            "STORED_MESSAGE unknown recipients kind",
            b"\x8a\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\0\x01a\x07\0\0\0\0",
        ),
        (
            "USERS count larger than the frame allows",
            // Two claimed; 11 bytes left hold only one user of 10 or more.
            b"\x8b\0\0\0\x02\x01\0\0\0\0\0\0\0\0\x01a",
        ),
        (
            "USERS entry with an unknown flag",
            b"\x8b\0\0\0\x01\x08\0\0\0\0\0\0\0\0\x01a",
        ),
        ("USER nick not UTF-8", b"\x8c\x01\0\0\0\0\0\0\0\0\x01\xff"),
        ("USER truncated last seen", b"\x8c\x01\0\0\0"),
    ];
    for &(what, payload) in cases {
        assert_malformed(decode_server_payload(payload), what);
    }
}

#[test]
fn a_password_without_options_is_sent_after_options_0() {
    let hello = |options| {
        ClientFrame::Hello(Hello {
            version: 1,
            nick: Bytes::from_static(b"bob"),
            options,
            password: Some("opensesame".to_owned()),
        })
    };
    let mut buf = encode_client(&hello(None));
    assert_eq!(&buf[..], &encode_client(&hello(Some(0)))[..]);
    assert_eq!(hello(None).payload_len() + PREFIX_LEN, buf.len());
    assert_eq!(
        HubCodec::default().decode(&mut buf).unwrap(),
        Some(hello(Some(0)))
    );
}

#[test]
fn passwords_are_not_in_debug_output() {
    let secret = "opensesame";
    let frames = [
        ClientFrame::Hello(Hello {
            version: 1,
            nick: Bytes::from_static(b"bob"),
            options: Some(0),
            password: Some(secret.to_owned()),
        }),
        ClientFrame::Account(AccountRequest {
            action: AccountAction::SetPassword,
            nick: "bob".to_owned(),
            password: secret.to_owned(),
            new_password: format!("new {secret}"),
        }),
    ];
    for frame in frames {
        let shown = format!("{frame:?} {frame:#?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("bob"), "{shown}");
    }
}

#[test]
fn a_malformed_frame_is_consumed_whole() {
    // The codec takes the bad frame off the buffer, so what follows is intact.
    let mut buf = framed(b"\x03\x00");
    buf.extend_from_slice(&encode_client(&ClientFrame::Who));
    let mut codec = HubCodec::default();
    assert!(codec.decode(&mut buf).is_err());
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(ClientFrame::Who));
}

#[test]
fn hello_keeps_an_invalid_utf8_nick_as_raw_bytes() {
    let mut buf = framed(b"\x01\x00\x01\x02\xff\xfe");
    let Some(ClientFrame::Hello(hello)) = HubCodec::default().decode(&mut buf).unwrap() else {
        panic!("expected HELLO");
    };
    assert_eq!(hello.version, 1);
    assert_eq!(&hello.nick[..], b"\xff\xfe");
    let err = Nick::parse(&hello.nick).unwrap_err();
    assert_eq!(err, NickError::NotUtf8);
    assert_eq!(err.code(), Code::NICK_NOT_UTF8);
}

#[test]
fn an_unfinished_frame_at_end_of_stream_is_an_error() {
    let mut buf = encode_client(&ClientFrame::Ping(1));
    buf.truncate(7);
    let err = HubCodec::default().decode_eof(&mut buf).unwrap_err();
    assert!(matches!(err, ProtocolError::Io(_)), "{err:?}");
    assert_eq!(err.code(), Code::MALFORMED_FRAME);

    let mut empty = BytesMut::new();
    assert_eq!(HubCodec::default().decode_eof(&mut empty).unwrap(), None);
}

#[test]
fn payload_level_decode_needs_no_codec() {
    let payload = Bytes::from_static(b"\x85\0\0\0\x01\x03bob");
    assert_eq!(
        ServerFrame::decode(payload).unwrap(),
        ServerFrame::Roster(strings(&["bob"]))
    );
    let mut out = BytesMut::new();
    ClientFrame::Quit.encode_payload(&mut out).unwrap();
    assert_eq!(&out[..], [0x04]);
}

#[test]
fn error_frame_new_uses_the_code_description() {
    let e = ErrorFrame::new(Code::NOT_REGISTERED, 12);
    assert_eq!(e.message, "not registered yet");
    assert_eq!(e.reference, 12);
    assert_eq!(ErrorFrame::new(Code(4242), 0).message, "error code 4242");
}

#[test]
fn codecs_are_generic_over_the_frame_they_decode() {
    let codec: FrameCodec<ClientFrame> = FrameCodec::new(100);
    assert_eq!(codec.max_frame(), 100);
    assert_eq!(format!("{codec:?}"), "FrameCodec { max_frame: 100, .. }");
    assert_eq!(HubCodec::default().max_frame(), DEFAULT_MAX_FRAME);
}

#[test]
fn views_encode_the_same_bytes_as_the_frames_they_stand_for() {
    let message = Message {
        id: 7,
        ts_ms: 1_700_000_000_000,
        from: "alice".into(),
        to: Recipients::Users(vec!["Bob".into(), "carol".into()]),
        text: "hi both".into(),
    };
    let names = ["Bob", "carol"];
    let view = MessageView {
        id: 7,
        ts_ms: 1_700_000_000_000,
        from: "alice",
        to: Some(names.iter().copied()),
        text: "hi both".into(),
    };
    let owned = encode_frame(&ServerFrame::Message(message), usize::MAX).unwrap();
    assert_eq!(encode_frame(&view, usize::MAX).unwrap(), owned);
    assert_eq!(view.payload_len() + PREFIX_LEN, owned.len());

    let broadcast = MessageView::<std::iter::Empty<&str>> {
        id: 7,
        ts_ms: 1_700_000_000_000,
        from: "alice",
        to: None,
        text: "hi both".into(),
    };
    let owned_broadcast = ServerFrame::Message(Message {
        id: 7,
        ts_ms: 1_700_000_000_000,
        from: "alice".into(),
        to: Recipients::Everyone,
        text: "hi both".into(),
    });
    assert_eq!(
        encode_frame(&broadcast, usize::MAX).unwrap(),
        encode_frame(&owned_broadcast, usize::MAX).unwrap()
    );

    let statuses = [("Bob", Code::DELIVERED), ("dave", Code::NO_SUCH_USER)];
    let ack = AckView {
        client_id: 3,
        message_id: 7,
        delivered: 1,
        statuses: statuses.iter().map(|&(nick, status)| (nick.into(), status)),
    };
    let owned_ack = ServerFrame::Ack(Ack {
        client_id: 3,
        message_id: 7,
        delivered: 1,
        statuses: statuses
            .iter()
            .map(|&(nick, status)| RecipientStatus {
                nick: nick.into(),
                status,
            })
            .collect(),
    });
    assert_eq!(
        encode_frame(&ack, usize::MAX).unwrap(),
        encode_frame(&owned_ack, usize::MAX).unwrap()
    );
}
