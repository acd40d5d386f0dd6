//! Bad input over real sockets: malformed and oversized frames get their
//! error and a closed connection, and nobody else notices.
//!
//! Every test here keeps two well-behaved clients, alice and bob, connected
//! around the bad one and checks afterwards that they still talk.

mod support;

use std::time::Duration;

use chinwag::hub::HubConfig;
use chinwag::protocol::{ClientFrame, Code, MAX_FRAME_UNREGISTERED, ServerFrame, opcode};
use support::{PATIENCE, RawClient, TestHub, XorShift, guard, raw_frame, register_all};

/// The registered limit these tests run with: small, so that frames around
/// it are cheap to build.
const MAX_FRAME: usize = 4096;
struct Scene {
    hub: TestHub,
    alice: RawClient,
    bob: RawClient,
}

fn config() -> HubConfig {
    let mut config = HubConfig::default();
    config.max_frame = MAX_FRAME;
    assert_eq!(config.max_frame_unregistered, MAX_FRAME_UNREGISTERED);
    config
}

impl Scene {
    async fn start() -> Self {
        Self::with_config(config()).await
    }

    async fn with_config(config: HubConfig) -> Self {
        let hub = TestHub::with_config(config).await;
        let [alice, bob] = register_all(&hub, ["alice", "bob"]).await;
        Self { hub, alice, bob }
    }

    /// A connection that will misbehave; registered as `nick` if given.
    async fn bad_client(&mut self, nick: Option<&str>) -> RawClient {
        match nick {
            Some(nick) => {
                let client = self.hub.register(nick).await;
                for other in [&mut self.alice, &mut self.bob] {
                    assert_eq!(other.expect_presence().await, (nick.to_owned(), true));
                }
                client
            }
            None => self.hub.connect().await,
        }
    }

    /// The bad client, if it was registered, is seen leaving; alice and bob
    /// still exchange messages both ways; nobody else is online.
    async fn assert_others_unaffected(&mut self, bad_nick: Option<&str>) {
        if let Some(nick) = bad_nick {
            for other in [&mut self.alice, &mut self.bob] {
                assert_eq!(other.expect_presence().await, (nick.to_owned(), false));
            }
        }
        let id = self.alice.send_to(&["bob"], "still here?").await;
        assert_eq!(self.alice.expect_ack(id).await.delivered, 1);
        assert_eq!(self.bob.expect_message().await.text, "still here?");
        let id = self.bob.send_to(&["alice"], "yes").await;
        assert_eq!(self.bob.expect_ack(id).await.delivered, 1);
        assert_eq!(self.alice.expect_message().await.text, "yes");
        assert_eq!(self.alice.who().await, ["alice", "bob"]);
        // Nothing else reached them (no stray PRESENCE or MESSAGE).
        assert_eq!(self.alice.sync().await, []);
        assert_eq!(self.bob.sync().await, []);
    }
}

/// Sends `bytes` from a fresh client (registered as `nick` if given) and
/// expects `ERROR code`, then the end of the connection; then checks that
/// alice and bob are unaffected.
async fn assert_refused(bytes: &[u8], nick: Option<&str>, code: Code) {
    let mut scene = Scene::start().await;
    let mut bad = scene.bad_client(nick).await;
    bad.send_raw(bytes).await;
    bad.expect_fatal(code).await;
    scene.assert_others_unaffected(nick).await;
}

fn ping_payload(token: u64) -> Vec<u8> {
    let mut payload = vec![opcode::PING];
    payload.extend_from_slice(&token.to_be_bytes());
    payload
}

/// A `SEND` payload to `bob` with the given raw text bytes and announced
/// text length.
fn send_payload(text_len: u32, text: &[u8]) -> Vec<u8> {
    let mut payload = vec![opcode::SEND];
    payload.extend_from_slice(&7u64.to_be_bytes());
    payload.push(0x00); // recipients: users
    payload.extend_from_slice(&1u32.to_be_bytes());
    payload.push(3);
    payload.extend_from_slice(b"bob");
    payload.extend_from_slice(&text_len.to_be_bytes());
    payload.extend_from_slice(text);
    payload
}

#[tokio::test]
async fn unknown_opcode_is_malformed_and_closes_the_connection() {
    // 0x7f is an unassigned client opcode, 0x81 a hub opcode.
    assert_refused(&raw_frame(&[0x7f]), Some("mallory"), Code::MALFORMED_FRAME).await;
    assert_refused(
        &raw_frame(&[opcode::WELCOME, 0, 1]),
        Some("mallory"),
        Code::MALFORMED_FRAME,
    )
    .await;
}

#[tokio::test]
async fn unknown_opcode_before_registration_is_malformed_and_closes_the_connection() {
    assert_refused(&raw_frame(&[0x42]), None, Code::MALFORMED_FRAME).await;
}

#[tokio::test]
async fn empty_payload_is_malformed_and_closes_the_connection() {
    assert_refused(&raw_frame(&[]), Some("mallory"), Code::MALFORMED_FRAME).await;
}

#[tokio::test]
async fn truncated_field_with_a_consistent_prefix_is_malformed() {
    // A PING whose token has 4 of its 8 bytes.
    assert_refused(
        &raw_frame(&ping_payload(1)[..5]),
        Some("mallory"),
        Code::MALFORMED_FRAME,
    )
    .await;
    // A SEND whose text announces 10 bytes and carries 2.
    assert_refused(
        &raw_frame(&send_payload(10, b"hi")),
        Some("mallory"),
        Code::MALFORMED_FRAME,
    )
    .await;
}

#[tokio::test]
async fn trailing_bytes_after_the_last_field_are_malformed() {
    let mut payload = ping_payload(1);
    payload.push(0xaa);
    assert_refused(&raw_frame(&payload), Some("mallory"), Code::MALFORMED_FRAME).await;
    let mut payload = send_payload(2, b"hi");
    payload.push(0);
    assert_refused(&raw_frame(&payload), Some("mallory"), Code::MALFORMED_FRAME).await;
}

#[tokio::test]
async fn invalid_utf8_in_message_text_is_malformed() {
    assert_refused(
        &raw_frame(&send_payload(3, b"a\xff\xfe")),
        Some("mallory"),
        Code::MALFORMED_FRAME,
    )
    .await;
}

#[tokio::test]
async fn unknown_recipients_kind_or_lying_count_is_malformed() {
    let mut payload = send_payload(2, b"hi");
    payload[9] = 0x02; // recipients kind
    assert_refused(&raw_frame(&payload), Some("mallory"), Code::MALFORMED_FRAME).await;

    let mut payload = send_payload(2, b"hi");
    payload[10..14].copy_from_slice(&u32::MAX.to_be_bytes()); // nicks count
    assert_refused(&raw_frame(&payload), Some("mallory"), Code::MALFORMED_FRAME).await;
}

#[tokio::test]
async fn frame_one_byte_over_max_frame_is_too_large() {
    let announced = u32::try_from(MAX_FRAME + 1).unwrap();
    // The prefix alone decides; the payload need not follow.
    assert_refused(
        &announced.to_be_bytes(),
        Some("mallory"),
        Code::FRAME_TOO_LARGE,
    )
    .await;
}

/// A `SEND` from alice to bob whose payload is exactly `len` bytes.
fn send_of_len(len: usize) -> (Vec<u8>, String) {
    let overhead = send_payload(0, b"").len();
    let text = "y".repeat(len - overhead);
    let payload = send_payload(u32::try_from(text.len()).unwrap(), text.as_bytes());
    assert_eq!(payload.len(), len);
    (payload, text)
}

/// What a `MESSAGE` adds to the `SEND` it carries: the 8-byte timestamp and
/// the sender's nickname ("alice": 1 + 5 bytes).
const MESSAGE_OVERHEAD: usize = 8 + 1 + 5;

#[tokio::test]
async fn send_of_exactly_max_frame_is_not_too_large_but_its_message_would_be() {
    let mut scene = Scene::start().await;
    let (payload, _) = send_of_len(MAX_FRAME);
    scene.alice.send_raw(&raw_frame(&payload)).await;
    // Within the frame limit, so not fatal; but the MESSAGE would exceed
    // `max_frame`, which docs/protocol.md section 1 answers with BAD_REQUEST.
    let error = scene.alice.expect_next_error().await;
    assert_eq!(error.code, Code::BAD_REQUEST);
    assert_eq!(error.reference, 7);
    scene.assert_others_unaffected(None).await;
}

#[tokio::test]
async fn send_whose_message_is_exactly_max_frame_is_delivered_and_one_byte_more_is_not() {
    let mut scene = Scene::start().await;
    let (payload, text) = send_of_len(MAX_FRAME - MESSAGE_OVERHEAD);
    scene.alice.send_raw(&raw_frame(&payload)).await;
    assert_eq!(scene.alice.expect_ack(7).await.delivered, 1);
    assert_eq!(scene.bob.expect_message().await.text, text);

    let (payload, _) = send_of_len(MAX_FRAME - MESSAGE_OVERHEAD + 1);
    scene.alice.send_raw(&raw_frame(&payload)).await;
    let error = scene.alice.expect_next_error().await;
    assert_eq!(error.code, Code::BAD_REQUEST);
    assert_eq!(error.reference, 7);
    scene.assert_others_unaffected(None).await;
}

#[tokio::test]
async fn length_prefix_of_u32_max_is_too_large_before_and_after_registration() {
    let prefix = u32::MAX.to_be_bytes();
    assert_refused(&prefix, Some("mallory"), Code::FRAME_TOO_LARGE).await;
    assert_refused(&prefix, None, Code::FRAME_TOO_LARGE).await;
}

#[tokio::test]
async fn before_registration_the_limit_is_16_kib() {
    // One byte over, announced by the prefix alone.
    let announced = u32::try_from(MAX_FRAME_UNREGISTERED + 1).unwrap();
    assert_refused(&announced.to_be_bytes(), None, Code::FRAME_TOO_LARGE).await;

    // A whole 20 KiB HELLO.
    let mut payload = vec![opcode::HELLO, 0, 1, 5];
    payload.extend_from_slice(b"alice");
    payload.resize(20 * 1024, b'x');
    assert_refused(&raw_frame(&payload), None, Code::FRAME_TOO_LARGE).await;

    // Exactly 16 KiB passes the size check, and is then judged as a frame
    // (here: a HELLO with trailing bytes).
    payload.truncate(MAX_FRAME_UNREGISTERED);
    assert_refused(&raw_frame(&payload), None, Code::MALFORMED_FRAME).await;
}

#[tokio::test]
async fn after_registration_frames_above_16_kib_are_accepted() {
    let mut config = HubConfig::default();
    config.max_frame = 64 * 1024;
    let hub = TestHub::with_config(config).await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;
    let text = "z".repeat(20 * 1024);
    let id = alice.send_to(&["bob"], &text).await;
    assert_eq!(alice.expect_ack(id).await.delivered, 1);
    assert_eq!(bob.expect_message().await.text, text);
}

#[tokio::test]
async fn a_megabyte_of_random_bytes_after_hello_closes_only_that_connection() {
    let mut scene = Scene::start().await;
    let mut bad = scene.bad_client(Some("mallory")).await;
    let junk = XorShift(0x00c0_ffee_d00d_f00d).bytes(1024 * 1024);
    // The hub may close while we are still writing: a failed write is fine.
    let _ = guard(PATIENCE, "writing the junk", bad.write_raw_lossy(&junk)).await;
    bad.drain_until_closed(PATIENCE).await;
    scene.assert_others_unaffected(Some("mallory")).await;
}

#[tokio::test]
async fn many_bad_clients_in_a_row_leave_the_hub_working() {
    let mut scene = Scene::start().await;
    let cases: [&[u8]; 4] = [
        &[0, 0, 0, 1, 0x7f],
        &[0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 2, opcode::PING, 0],
        &[0, 0, 0, 0],
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let nick = format!("bad{i}");
        let mut bad = scene.bad_client(Some(&nick)).await;
        bad.send_raw(bytes).await;
        bad.expect_closed().await;
        scene.assert_others_unaffected(Some(&nick)).await;
    }
    // And a well-behaved newcomer is welcome.
    let mut carol = scene.hub.register("carol").await;
    carol.send(ClientFrame::Ping(1)).await;
    assert_eq!(carol.recv().await, Some(ServerFrame::Pong(1)));
}

/// A shortened frame deadline. A frame trickling in, or silence between
/// frames, not counting as a stall is tested at the default deadline on a
/// paused clock (`crates/hub/tests/deadlines.rs`), where the gaps are exact.
fn frame_timeout_config() -> HubConfig {
    let mut config = config();
    config.frame_timeout = Duration::from_millis(300);
    config
}

#[tokio::test]
async fn frame_that_stops_arriving_midway_gets_frame_timeout() {
    for nick in [Some("mallory"), None] {
        let mut scene = Scene::with_config(frame_timeout_config()).await;
        let mut bad = scene.bad_client(nick).await;
        // The prefix and 2 of the 9 payload bytes of a PING, then nothing.
        bad.send_raw(&raw_frame(&ping_payload(1))[..6]).await;
        bad.expect_fatal(Code::FRAME_TIMEOUT).await;
        scene.assert_others_unaffected(nick).await;
    }
}
