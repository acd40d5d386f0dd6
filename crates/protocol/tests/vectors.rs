//! Checks the test vectors in `docs/protocol.md` against the codec.
//!
//! The specification is the document, so this test reads it at compile time
//! and parses every vector block out of it. Each valid vector must decode to
//! the frame written down below and re-encode to the same bytes; each invalid
//! one must be refused with the code the document names. A vector in the
//! document without an expected frame here, or the reverse, fails the test,
//! as does an opcode that no vector shows. The code table and the reserved
//! nicknames in the document are checked against the crate too.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use chinwag_protocol::{
    AccountAction, AccountDone, AccountRequest, Ack, AckRun, ClientCodec, ClientFrame, Code,
    DEFAULT_MAX_FRAME, ErrorFrame, Hello, HubCodec, MailboxHeader, Message, Nick, NickError,
    PROTOCOL_VERSION, Presence, RESERVED_NICKS, Receipt, ReceiptKey, ReceiptKeyRun, ReceiptRun,
    RecipientStatus, Recipients, SendFrame, Sequenced, ServerFrame, UserEntry, Welcome, opcode,
    options, user_flags,
};
use tokio_util::codec::{Decoder, Encoder};

const DOC: &str = include_str!("../../../docs/protocol.md");

/// The timestamp the vectors use: 2025-01-01T00:00:00Z in milliseconds.
const TS: u64 = 1_735_689_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// A frame the client sends: the hub decodes it.
    Client,
    /// A frame the hub sends: a client decodes it.
    Server,
}

#[derive(Debug)]
struct Vector {
    name: String,
    /// Line of the document where the block starts, for failure messages.
    line: usize,
    direction: Direction,
    max: usize,
    error: Option<u16>,
    bytes: Vec<u8>,
}

/// Every fenced block opened by a bare ```` ``` ```` whose first line is
/// `vector: ...`. Blocks with a language tag are skipped whole.
fn parse_vectors(doc: &str) -> Vec<Vector> {
    let mut vectors = Vec::new();
    let mut lines = doc.lines().enumerate();
    while let Some((start, line)) = lines.next() {
        let fence = line.trim_end();
        if !fence.starts_with("```") {
            continue;
        }
        let mut body = Vec::new();
        for (_, inner) in lines.by_ref() {
            if inner.trim_end() == "```" {
                break;
            }
            body.push(inner);
        }
        if fence == "```" && body.first().is_some_and(|l| l.starts_with("vector:")) {
            vectors.push(parse_block(start + 1, &body));
        }
    }
    vectors
}

fn parse_block(line: usize, body: &[&str]) -> Vector {
    let mut fields = BTreeMap::new();
    let mut rest = body.iter();
    for l in rest.by_ref() {
        let (key, value) = l
            .split_once(':')
            .unwrap_or_else(|| panic!("line {line}: expected `key: value`, got {l:?}"));
        if key == "hex" {
            assert!(
                value.trim().is_empty(),
                "line {line}: hex starts on the next line"
            );
            break;
        }
        assert!(
            ["vector", "direction", "max", "error"].contains(&key),
            "line {line}: unknown key {key:?}"
        );
        let old = fields.insert(key, value.trim());
        assert!(old.is_none(), "line {line}: {key} given twice");
    }
    let mut bytes = Vec::new();
    for l in rest {
        let data = l.split_once('#').map_or(*l, |(data, _)| data);
        for token in data.split_whitespace() {
            assert!(
                token.len() == 2,
                "line {line}: {token:?} is not a two-digit hex byte"
            );
            bytes.push(
                u8::from_str_radix(token, 16)
                    .unwrap_or_else(|_| panic!("line {line}: {token:?} is not hex")),
            );
        }
    }
    let direction = match fields.get("direction").copied() {
        Some("client") => Direction::Client,
        Some("server") => Direction::Server,
        other => panic!("line {line}: bad direction {other:?}"),
    };
    Vector {
        name: fields["vector"].to_owned(),
        line,
        direction,
        max: fields
            .get("max")
            .map_or(DEFAULT_MAX_FRAME, |m| m.parse().unwrap()),
        error: fields.get("error").map(|e| e.parse().unwrap()),
        bytes,
    }
}

#[derive(Debug)]
enum Expected {
    Client(ClientFrame),
    Server(ServerFrame),
}

fn users(names: &[&str]) -> Recipients {
    Recipients::Users(strings(names))
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

fn hello(nick: &[u8]) -> Expected {
    hello_with(nick, None)
}

fn hello_with(nick: &[u8], options: Option<u32>) -> Expected {
    Expected::Client(ClientFrame::Hello(Hello {
        version: 1,
        nick: Bytes::copy_from_slice(nick),
        options,
        password: None,
    }))
}

/// A login: `options` (0 for none), then the password.
fn hello_login(nick: &[u8], options: u32, password: &str) -> Expected {
    Expected::Client(ClientFrame::Hello(Hello {
        version: 1,
        nick: Bytes::copy_from_slice(nick),
        options: Some(options),
        password: Some(password.to_owned()),
    }))
}

fn send(id: u64, to: Recipients, text: &str) -> Expected {
    Expected::Client(ClientFrame::Send(SendFrame {
        id,
        to,
        text: text.to_owned(),
    }))
}

fn welcome(nick: &str, roster: &[&str]) -> Expected {
    welcome_with(nick, roster, None)
}

fn welcome_with(nick: &str, roster: &[&str], options: Option<u32>) -> Expected {
    Expected::Server(ServerFrame::Welcome(Welcome {
        version: 1,
        max_frame: 1_048_576,
        nick: nick.to_owned(),
        roster: strings(roster),
        options,
    }))
}

fn message(id: u64, ts_ms: u64, to: Recipients, text: &str) -> Expected {
    Expected::Server(ServerFrame::Message(Message {
        id,
        ts_ms,
        from: "alice".to_owned(),
        to,
        text: text.to_owned(),
    }))
}

fn ack(client_id: u64, message_id: u64, delivered: u32, statuses: &[(&str, Code)]) -> Expected {
    Expected::Server(ServerFrame::Ack(Ack {
        client_id,
        message_id,
        delivered,
        statuses: statuses
            .iter()
            .map(|&(nick, status)| RecipientStatus {
                nick: nick.to_owned(),
                status,
            })
            .collect(),
    }))
}

fn presence(online: bool, ts_ms: u64, nick: &str) -> Expected {
    Expected::Server(ServerFrame::Presence(Presence {
        online,
        ts_ms,
        nick: nick.to_owned(),
    }))
}

fn error(code: Code, reference: u64) -> Expected {
    Expected::Server(ServerFrame::Error(ErrorFrame::new(code, reference)))
}

fn account(action: AccountAction, password: &str, new_password: &str) -> Expected {
    Expected::Client(ClientFrame::Account(AccountRequest {
        action,
        nick: "bob".to_owned(),
        password: password.to_owned(),
        new_password: new_password.to_owned(),
    }))
}

fn confirm(ids: &[u64]) -> Expected {
    Expected::Client(ClientFrame::Confirm(ids.to_vec()))
}

fn mailbox(count: u32, expired: u32) -> Expected {
    Expected::Server(ServerFrame::Mailbox(MailboxHeader { count, expired }))
}

/// A message from `carol` to `bob` that waited in his mailbox.
fn stored(id: u64, ts_ms: u64, text: &str) -> Expected {
    Expected::Server(ServerFrame::StoredMessage(Message {
        id,
        ts_ms,
        from: "carol".to_owned(),
        to: users(&["bob"]),
        text: text.to_owned(),
    }))
}

/// As [`stored`], for a reliable session: numbered `seq`.
fn sequenced(seq: u64, id: u64, ts_ms: u64, text: &str) -> Expected {
    Expected::Server(ServerFrame::Sequenced(Sequenced {
        seq,
        message: Message {
            id,
            ts_ms,
            from: "carol".to_owned(),
            to: users(&["bob"]),
            text: text.to_owned(),
        },
    }))
}

fn user_entry(flags: u8, last_seen_ms: u64, nick: &str) -> UserEntry {
    UserEntry {
        flags,
        last_seen_ms,
        nick: nick.to_owned(),
    }
}

/// The table of the vectors: `alice` a guest online, `bob` online with an
/// account, `carol` with an account, offline since `carol_seen`.
fn users_table(carol_seen: u64) -> Expected {
    use user_flags::{ONLINE, REGISTERED};
    Expected::Server(ServerFrame::Users(vec![
        user_entry(ONLINE, 0, "alice"),
        user_entry(REGISTERED | ONLINE, 0, "bob"),
        user_entry(REGISTERED, carol_seen, "carol"),
    ]))
}

/// What each valid vector in the document must decode to.
fn expected() -> BTreeMap<&'static str, Expected> {
    let ping_token = 0x0102_0304_0506_0708;
    let bob = &[("bob", Code::DELIVERED)];
    [
        ("hello", hello(b"alice")),
        ("hello-nick-not-utf8", hello(b"\xff\xfe")),
        ("send-to-user", send(1, users(&["bob"]), "hi")),
        (
            "send-to-users",
            send(
                2,
                users(&["bob", "Carol", "dave", "BOB"]),
                "h\u{e9}llo \u{2603}",
            ),
        ),
        (
            "send-to-everyone",
            send(3, Recipients::Everyone, "hello all"),
        ),
        ("send-empty-users", send(4, users(&[]), "x")),
        ("who", Expected::Client(ClientFrame::Who)),
        ("quit", Expected::Client(ClientFrame::Quit)),
        (
            "client-ping",
            Expected::Client(ClientFrame::Ping(ping_token)),
        ),
        ("client-pong", Expected::Client(ClientFrame::Pong(42))),
        ("welcome", welcome("alice", &["alice"])),
        (
            "welcome-with-roster",
            welcome("bob", &["alice", "bob", "Carol"]),
        ),
        ("message-to-user", message(1, TS, users(&["bob"]), "hi")),
        (
            "message-to-users",
            message(
                2,
                TS,
                users(&["bob", "Carol", "dave"]),
                "h\u{e9}llo \u{2603}",
            ),
        ),
        (
            "message-to-everyone",
            message(3, TS, Recipients::Everyone, "hello all"),
        ),
        ("ack-delivered", ack(1, 1, 1, bob)),
        (
            "ack-mixed",
            ack(
                2,
                2,
                1,
                &[
                    ("bob", Code::DELIVERED),
                    ("Carol", Code::UNABLE_TO_DELIVER),
                    ("dave", Code::NO_SUCH_USER),
                ],
            ),
        ),
        ("ack-broadcast", ack(3, 3, 2, &[])),
        (
            "ack-broadcast-partial",
            ack(5, 4, 1, &[("Carol", Code::UNABLE_TO_DELIVER)]),
        ),
        ("presence-online", presence(true, TS, "bob")),
        ("presence-offline", presence(false, TS, "bob")),
        (
            "roster",
            Expected::Server(ServerFrame::Roster(strings(&["alice", "bob", "Carol"]))),
        ),
        (
            "error-bad-request",
            Expected::Server(ServerFrame::Error(ErrorFrame {
                code: Code::BAD_REQUEST,
                reference: 4,
                message: "a message needs at least one recipient".to_owned(),
            })),
        ),
        ("error-nick-taken", error(Code::NICK_TAKEN, 0)),
        ("error-server-full", error(Code::SERVER_FULL, 0)),
        ("server-ping", Expected::Server(ServerFrame::Ping(7))),
        (
            "server-pong",
            Expected::Server(ServerFrame::Pong(ping_token)),
        ),
    ]
    .into_iter()
    .chain(option_vectors())
    .chain(account_vectors())
    .chain(conversation_vectors())
    .chain(login_vectors())
    .chain(receipt_run_vectors())
    .collect()
}

/// The vectors of receipts by runs (`RECEIPT_RUNS`).
fn receipt_run_vectors() -> [(&'static str, Expected); 2] {
    [
        (
            "confirm-receipt-runs",
            Expected::Client(ClientFrame::ConfirmReceiptRuns(vec![
                ReceiptKeyRun {
                    first_message_id: 12,
                    count: 3,
                    recipient: "bob".to_owned(),
                },
                ReceiptKeyRun {
                    first_message_id: 20,
                    count: 1,
                    recipient: "carol".to_owned(),
                },
            ])),
        ),
        (
            "receipt-runs",
            Expected::Server(ServerFrame::ReceiptRuns(vec![ReceiptRun {
                first_message_id: 12,
                count: 3,
                received_ms: TS,
                recipient: "bob".to_owned(),
            }])),
        ),
    ]
}

/// The first conversation of section 10: two guests, a message.
fn conversation_vectors() -> [(&'static str, Expected); 8] {
    [
        ("conversation-1", hello(b"alice")),
        ("conversation-2", welcome("alice", &["alice"])),
        ("conversation-3", hello(b"bob")),
        ("conversation-4", welcome("bob", &["alice", "bob"])),
        ("conversation-5", presence(true, TS, "bob")),
        ("conversation-6", send(1, users(&["bob"]), "hi")),
        (
            "conversation-7",
            message(1, TS + 1234, users(&["bob"]), "hi"),
        ),
        ("conversation-8", ack(1, 1, 1, &[("bob", Code::DELIVERED)])),
    ]
}

/// The vectors of accounts, mailboxes and the table of users.
fn account_vectors() -> [(&'static str, Expected); 16] {
    let (password, new_password) = ("opensesame", "sesame-2026");
    [
        ("hello-with-password", hello_login(b"bob", 0, password)),
        (
            "account-create",
            account(AccountAction::Create, password, ""),
        ),
        (
            "account-set-password",
            account(AccountAction::SetPassword, password, new_password),
        ),
        (
            "account-delete",
            account(AccountAction::Delete, new_password, ""),
        ),
        ("confirm", confirm(&[4, 5])),
        (
            "confirm-receipts",
            Expected::Client(ClientFrame::ConfirmReceipts(vec![
                ReceiptKey {
                    message_id: 12,
                    recipient: "bob".to_owned(),
                },
                ReceiptKey {
                    message_id: 12,
                    recipient: "carol".to_owned(),
                },
            ])),
        ),
        (
            "account-done",
            Expected::Server(ServerFrame::AccountDone(AccountDone {
                action: AccountAction::Create,
                nick: "bob".to_owned(),
            })),
        ),
        ("mailbox", mailbox(2, 1)),
        ("stored-message", stored(2, TS, "call me")),
        ("sequenced", sequenced(5, 2, TS, "call me")),
        (
            "gap",
            Expected::Server(ServerFrame::Gap(chinwag_protocol::Gap {
                first: 3,
                last: 4,
                reason: Code::MAILBOX_FULL,
            })),
        ),
        ("users", users_table(TS)),
        (
            "user-created",
            Expected::Server(ServerFrame::User(user_entry(
                user_flags::REGISTERED,
                0,
                "dave",
            ))),
        ),
        (
            "user-removed",
            Expected::Server(ServerFrame::User(user_entry(0, 0, "dave"))),
        ),
        (
            "ack-stored",
            ack(
                6,
                9,
                0,
                &[("bob", Code::STORED), ("dave", Code::MAILBOX_FULL)],
            ),
        ),
        ("error-account-exists", error(Code::ACCOUNT_EXISTS, 1)),
    ]
}

/// The second conversation of section 10: `bob` logs in and collects two
/// stored messages.
fn login_vectors() -> [(&'static str, Expected); 7] {
    [
        ("login-1", hello_login(b"bob", options::USERS, "opensesame")),
        (
            "login-2",
            welcome_with("bob", &["alice", "bob"], Some(options::USERS)),
        ),
        ("login-3", users_table(TS + 60_000)),
        ("login-4", mailbox(2, 0)),
        ("login-5", stored(4, TS + 1234, "lunch at 1?")),
        ("login-6", stored(5, TS + 5678, "call me")),
        ("login-7", confirm(&[4, 5])),
    ]
}

/// The vectors of `HELLO`'s options and what they bring.
fn option_vectors() -> [(&'static str, Expected); 6] {
    [
        (
            "hello-receipts",
            hello_with(b"alice", Some(options::CONFIRMS | options::RECEIPTS)),
        ),
        (
            "receipt",
            Expected::Server(ServerFrame::Receipts(vec![Receipt {
                message_id: 12,
                received_ms: TS,
                recipient: "bob".to_owned(),
            }])),
        ),
        (
            "hello-with-options",
            hello_with(b"alice", Some(options::ACK_RUNS)),
        ),
        (
            "hello-one-shot",
            hello_with(b"carol", Some(options::NO_PRESENCE | options::QUIET)),
        ),
        (
            "welcome-with-options",
            welcome_with("alice", &["alice"], Some(options::ACK_RUNS)),
        ),
        (
            "ack-run",
            Expected::Server(ServerFrame::AckRun(AckRun {
                first_client_id: 7,
                first_message_id: 12,
                count: 3,
            })),
        ),
    ]
}

fn encode_client(frame: &ClientFrame, max: usize) -> Vec<u8> {
    let mut out = BytesMut::new();
    ClientCodec::new(max).encode(frame, &mut out).unwrap();
    out.to_vec()
}

fn encode_server(frame: &ServerFrame, max: usize) -> Vec<u8> {
    let mut out = BytesMut::new();
    HubCodec::new(max).encode(frame, &mut out).unwrap();
    out.to_vec()
}

/// Checks one valid vector; returns its opcode.
fn check_valid(v: &Vector, want: &Expected) -> u8 {
    let Vector { name, line, .. } = v;
    let declared = u32::from_be_bytes(v.bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(
        declared,
        v.bytes.len() - 4,
        "{name} (line {line}): the length prefix does not match the payload"
    );
    let mut buf = BytesMut::from(&v.bytes[..]);
    match (v.direction, want) {
        (Direction::Client, Expected::Client(want)) => {
            let got = HubCodec::new(v.max).decode(&mut buf).unwrap();
            assert_eq!(got.as_ref(), Some(want), "{name} (line {line}): decoded");
            assert_eq!(
                encode_client(want, v.max),
                v.bytes,
                "{name} (line {line}): re-encoded"
            );
        }
        (Direction::Server, Expected::Server(want)) => {
            let got = ClientCodec::new(v.max).decode(&mut buf).unwrap();
            assert_eq!(got.as_ref(), Some(want), "{name} (line {line}): decoded");
            assert_eq!(
                encode_server(want, v.max),
                v.bytes,
                "{name} (line {line}): re-encoded"
            );
        }
        (direction, _) => panic!("{name} (line {line}): direction {direction:?} does not match"),
    }
    assert!(buf.is_empty(), "{name} (line {line}): bytes left over");
    v.bytes[4]
}

fn check_invalid(v: &Vector, code: u16) {
    let Vector { name, line, .. } = v;
    let mut buf = BytesMut::from(&v.bytes[..]);
    let result = match v.direction {
        Direction::Client => HubCodec::new(v.max)
            .decode(&mut buf)
            .map(|f| format!("{f:?}")),
        Direction::Server => ClientCodec::new(v.max)
            .decode(&mut buf)
            .map(|f| format!("{f:?}")),
    };
    match result {
        Err(e) => assert_eq!(e.code(), Code(code), "{name} (line {line}): {e}"),
        Ok(f) => panic!("{name} (line {line}): decoded to {f} instead of failing"),
    }
}

#[test]
fn every_vector_in_the_document_decodes_and_reencodes_exactly() {
    let vectors = parse_vectors(DOC);
    let mut want = expected();
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for v in &vectors {
        assert!(names.insert(v.name.clone()), "vector {} twice", v.name);
        match v.error {
            None => {
                let frame = want
                    .remove(v.name.as_str())
                    .unwrap_or_else(|| panic!("vector {} has no expected frame", v.name));
                seen.insert((v.direction == Direction::Client, check_valid(v, &frame)));
            }
            Some(code) => {
                assert!(
                    !want.contains_key(v.name.as_str()),
                    "vector {} is marked invalid",
                    v.name
                );
                check_invalid(v, code);
            }
        }
    }
    let missing: Vec<_> = want.keys().collect();
    assert!(
        missing.is_empty(),
        "vectors missing from the document: {missing:?}"
    );

    // Every opcode appears in at least one valid vector, in each direction it
    // travels.
    let client = [
        opcode::HELLO,
        opcode::SEND,
        opcode::WHO,
        opcode::QUIT,
        opcode::PING,
        opcode::PONG,
        opcode::ACCOUNT,
        opcode::CONFIRM,
        opcode::CONFIRM_RECEIPTS,
        opcode::CONFIRM_RECEIPT_RUNS,
    ];
    let server = [
        opcode::WELCOME,
        opcode::MESSAGE,
        opcode::ACK,
        opcode::ACK_RUN,
        opcode::PRESENCE,
        opcode::ROSTER,
        opcode::ERROR,
        opcode::PING,
        opcode::PONG,
        opcode::ACCOUNT_DONE,
        opcode::MAILBOX,
        opcode::STORED_MESSAGE,
        opcode::SEQUENCED,
        opcode::USERS,
        opcode::USER,
        opcode::RECEIPT,
        opcode::RECEIPT_RUNS,
    ];
    for op in client {
        assert!(
            seen.contains(&(true, op)),
            "no client vector for opcode {op:#04x}"
        );
    }
    for op in server {
        assert!(
            seen.contains(&(false, op)),
            "no server vector for opcode {op:#04x}"
        );
    }
}

#[test]
fn the_document_has_invalid_vectors_for_each_rejection() {
    let vectors = parse_vectors(DOC);
    let invalid: Vec<_> = vectors.iter().filter(|v| v.error.is_some()).collect();
    assert!(
        invalid.iter().any(|v| v.error == Some(1)),
        "no malformed-frame vector"
    );
    assert!(
        invalid
            .iter()
            .any(|v| v.error == Some(2) && v.bytes.len() == 4),
        "no prefix-only frame-too-large vector"
    );
}

#[test]
fn the_vector_parser_rejects_what_it_should() {
    let doc = "```text\nvector: not-a-vector\n```\n\
               ```\nvector: v\ndirection: client\nhex:\n  00 00 00 01 # len\n  03\n```\n";
    let vectors = parse_vectors(doc);
    assert_eq!(vectors.len(), 1);
    assert_eq!(vectors[0].bytes, [0, 0, 0, 1, 3]);
    assert_eq!(vectors[0].max, DEFAULT_MAX_FRAME);

    let bad = "```\nvector: v\ndirection: client\nhex:\n  0003\n```\n";
    assert!(std::panic::catch_unwind(|| parse_vectors(bad)).is_err());
}

/// Every code constant, with the name the document must give it.
const CODES: &[(Code, &str)] = &[
    (Code::DELIVERED, "DELIVERED"),
    (Code::MALFORMED_FRAME, "MALFORMED_FRAME"),
    (Code::FRAME_TOO_LARGE, "FRAME_TOO_LARGE"),
    (Code::UNSUPPORTED_VERSION, "UNSUPPORTED_VERSION"),
    (Code::NOT_REGISTERED, "NOT_REGISTERED"),
    (Code::ALREADY_REGISTERED, "ALREADY_REGISTERED"),
    (Code::SERVER_FULL, "SERVER_FULL"),
    (Code::SHUTTING_DOWN, "SHUTTING_DOWN"),
    (Code::SLOW_CONSUMER, "SLOW_CONSUMER"),
    (Code::BAD_REQUEST, "BAD_REQUEST"),
    (Code::REGISTRATION_TIMEOUT, "REGISTRATION_TIMEOUT"),
    (Code::PING_TIMEOUT, "PING_TIMEOUT"),
    (Code::RATE_LIMITED, "RATE_LIMITED"),
    (Code::FRAME_TIMEOUT, "FRAME_TIMEOUT"),
    (Code::FLOODING, "FLOODING"),
    (Code::SESSION_REPLACED, "SESSION_REPLACED"),
    (Code::NICK_EMPTY, "NICK_EMPTY"),
    (Code::NICK_TOO_LONG, "NICK_TOO_LONG"),
    (Code::NICK_NOT_UTF8, "NICK_NOT_UTF8"),
    (Code::NICK_BAD_START, "NICK_BAD_START"),
    (Code::NICK_BAD_CHAR, "NICK_BAD_CHAR"),
    (Code::NICK_RESERVED, "NICK_RESERVED"),
    (Code::NICK_TAKEN, "NICK_TAKEN"),
    (Code::NICK_REGISTERED, "NICK_REGISTERED"),
    (Code::NO_SUCH_USER, "NO_SUCH_USER"),
    (Code::UNABLE_TO_DELIVER, "UNABLE_TO_DELIVER"),
    (Code::STORED, "STORED"),
    (Code::MAILBOX_FULL, "MAILBOX_FULL"),
    (Code::STORE_FAILED, "STORE_FAILED"),
    (Code::BAD_PASSWORD, "BAD_PASSWORD"),
    (Code::LOGIN_THROTTLED, "LOGIN_THROTTLED"),
    (Code::NO_SUCH_ACCOUNT, "NO_SUCH_ACCOUNT"),
    (Code::ACCOUNT_EXISTS, "ACCOUNT_EXISTS"),
    (Code::REGISTRATION_CLOSED, "REGISTRATION_CLOSED"),
    (Code::ACCOUNT_REQUIRED, "ACCOUNT_REQUIRED"),
    (Code::ACCOUNTS_UNAVAILABLE, "ACCOUNTS_UNAVAILABLE"),
    (Code::STORE_UNAVAILABLE, "STORE_UNAVAILABLE"),
    (Code::EXPIRED, "EXPIRED"),
];

/// Ack statuses: neither fatal nor not, since they never arrive in an `ERROR`.
const STATUSES: &[Code] = &[
    Code::DELIVERED,
    Code::NO_SUCH_USER,
    Code::UNABLE_TO_DELIVER,
    Code::STORED,
    Code::MAILBOX_FULL,
    Code::STORE_FAILED,
    Code::EXPIRED,
];

#[test]
fn the_code_table_matches_the_crate() {
    // Rows look like: | 1 | `MALFORMED_FRAME` | yes | `malformed frame` | ... |
    let mut rows = BTreeMap::new();
    for line in DOC.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 || !cells[2].starts_with('`') || !cells[2].ends_with('`') {
            continue;
        }
        let Ok(number) = cells[1].parse::<u16>() else {
            continue;
        };
        let name = cells[2].trim_matches('`');
        if !name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        {
            continue;
        }
        let old = rows.insert(number, (name, cells[3], cells[4].trim_matches('`')));
        assert!(old.is_none(), "code {number} listed twice");
    }

    for &(code, name) in CODES {
        let (doc_name, fatal, message) = rows
            .remove(&code.0)
            .unwrap_or_else(|| panic!("code {} ({name}) missing from the table", code.0));
        assert_eq!(doc_name, name, "name of code {}", code.0);
        let want_fatal = if STATUSES.contains(&code) {
            assert!(!code.is_fatal());
            "\u{2014}"
        } else if code.is_fatal() {
            "yes"
        } else {
            "no"
        };
        assert_eq!(fatal, want_fatal, "fatal column of {name}");
        assert_eq!(Some(message), code.description(), "message of {name}");
    }
    assert!(
        rows.is_empty(),
        "codes in the document but not in the crate: {rows:?}"
    );

    // A code given a description in code.rs but missing from CODES (and so
    // perhaps from the document) fails here.
    for n in 0..=u16::MAX {
        if Code(n).description().is_some() {
            assert!(
                CODES.iter().any(|&(c, _)| c == Code(n)),
                "code {n} has a description but is not in the test's list"
            );
        }
    }
}

#[test]
fn the_document_lists_every_reserved_nickname() {
    let section = DOC
        .split("## 6. Nicknames")
        .nth(1)
        .and_then(|s| s.split("## 7.").next())
        .unwrap();
    for reserved in RESERVED_NICKS {
        assert!(
            section.contains(&format!("`{reserved}`")),
            "reserved nickname {reserved} is not in section 6"
        );
    }
}

/// The examples of the nickname table in section 6, with their codes.
#[test]
fn the_nickname_table_examples_get_the_documented_codes() {
    let cases: &[(&[u8], Code)] = &[
        (b"", Code::NICK_EMPTY),
        (b"\xff\xfe", Code::NICK_NOT_UTF8),
        (b"9lives", Code::NICK_BAD_START),
        (b"_x", Code::NICK_BAD_START),
        ("\u{e9}lise".as_bytes(), Code::NICK_BAD_START),
        (b"al ice", Code::NICK_BAD_CHAR),
        ("al\u{200b}ice".as_bytes(), Code::NICK_BAD_CHAR),
        (&[b'a'; 33], Code::NICK_TOO_LONG),
        (b"Admin", Code::NICK_RESERVED),
        (b"EVERYONE", Code::NICK_RESERVED),
        // "Characters are judged before length."
        (
            b"abcdefghijklmnopqrstuvwxyz 0123456789abc",
            Code::NICK_BAD_CHAR,
        ),
    ];
    for &(raw, code) in cases {
        assert_eq!(
            Nick::parse(raw).map_err(NickError::code).err(),
            Some(code),
            "{raw:?}"
        );
    }
    assert!(Nick::parse(&[b'a'; 32]).is_ok());
}

#[test]
fn the_documented_constants_match_the_crate() {
    assert_eq!(PROTOCOL_VERSION, 1);
    assert_eq!(DEFAULT_MAX_FRAME, 1_048_576);
    assert!(DOC.contains("**2446**"));
    assert!(DOC.contains("16 KiB = 16384 bytes"));
    assert!(DOC.contains("1 MiB = 1048576 bytes by default"));
}
