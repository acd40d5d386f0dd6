//! The hub's deadlines at their documented defaults (`docs/limits.md`),
//! on a paused clock over in-memory pipes: nothing leaves the process, so
//! Tokio advances its clock only when every task waits on a timer, and a
//! deadline fires at exactly its time. Each test asserts when: not a tick
//! before the documented time, and at it. No test here waits in real time.
//!
//! The end-to-end versions over TCP (`tests/admission.rs`,
//! `tests/bad_input.rs`, `tests/presence.rs`, `tests/flow_control.rs`,
//! `hardening.rs`) check the same behaviour with shortened deadlines and
//! assert no times.

mod support;

use std::time::Duration;

use chinwag_hub::protocol::{ClientFrame, Code, ServerFrame, opcode};
use chinwag_hub::{HubConfig, Session};
use futures::FutureExt;
use support::{PipeHub, guard, raw_frame, timed, users};
use tokio::time::{Instant, sleep};

/// The resolution of Tokio's timers: a deadline fires at its millisecond
/// or the next.
const TICK: Duration = Duration::from_millis(1);

/// Asserts that `elapsed` is `due`, to the timer's resolution.
#[track_caller]
fn assert_at(elapsed: Duration, due: Duration, what: &str) {
    assert!(
        elapsed >= due && elapsed <= due + TICK,
        "{what} after {elapsed:?}, due at {due:?}"
    );
}

/// A second before `due`: how long a test waits to show that `due` has
/// not come yet.
fn just_before(due: Duration) -> Duration {
    due.checked_sub(Duration::from_secs(1))
        .expect("a deadline of a second or more")
}

/// Waits for `session` to see `nick` go offline.
async fn seen_leaving(session: &mut Session, nick: &str) {
    guard(Duration::from_secs(600), "a PRESENCE offline", async {
        loop {
            match session.recv().await {
                Some(ServerFrame::Presence(p)) if !p.online && p.nick == nick => return,
                Some(_) => {}
                None => panic!("{}'s session closed", session.nick()),
            }
        }
    })
    .await;
}

/// A `PING`'s payload: its opcode and 8-byte token.
fn ping_payload(token: u64) -> Vec<u8> {
    let mut payload = vec![opcode::PING];
    payload.extend_from_slice(&token.to_be_bytes());
    payload
}

#[tokio::test(start_paused = true)]
async fn a_connection_without_hello_is_closed_at_the_registration_deadline() {
    let config = HubConfig::default();
    let deadline = config.registration_timeout;
    assert_eq!(deadline, Duration::from_secs(5), "docs/limits.md");
    let hub = PipeHub::start(config);
    let mut alice = hub.register("alice").await;

    let mut silent = hub.connect();
    let ((), after) = timed(silent.expect_fatal(Code::REGISTRATION_TIMEOUT)).await;
    assert_at(after, deadline, "REGISTRATION_TIMEOUT");
    assert_eq!(hub.hub.stats().registration_timeouts, 1);
    // Nobody else noticed.
    assert_eq!(alice.sync().await, []);
}

/// Registered clients are not subject to the registration deadline,
/// however long they stay silent (short of a ping interval).
#[tokio::test(start_paused = true)]
async fn registered_clients_are_not_subject_to_the_registration_deadline() {
    let config = HubConfig::default();
    let deadline = config.registration_timeout;
    assert!(deadline * 5 < config.ping_interval);
    let hub = PipeHub::start(config);
    let mut alice = hub.register("alice").await;
    sleep(deadline * 5).await;
    assert_eq!(alice.sync().await, []);
    assert_eq!(alice.who().await, ["alice"]);
    assert_eq!(hub.hub.stats().registration_timeouts, 0);
}

/// The deadline counts from the connection, not from its last frame: a
/// `PING` answered, or a `HELLO` refused, does not push it back.
#[tokio::test(start_paused = true)]
async fn pings_and_refused_hellos_do_not_push_the_registration_deadline_back() {
    let deadline = HubConfig::default().registration_timeout;
    let hub = PipeHub::start(HubConfig::default());
    let start = Instant::now();
    let mut pinging = hub.connect();
    let mut refused = hub.connect();
    sleep(just_before(deadline)).await;
    pinging.send(ClientFrame::Ping(1)).await;
    assert_eq!(pinging.recv().await, Some(ServerFrame::Pong(1)));
    refused.hello("9lives").await;
    assert_eq!(refused.expect_next_error().await.code, Code::NICK_BAD_START);

    for client in [&mut pinging, &mut refused] {
        client.expect_fatal(Code::REGISTRATION_TIMEOUT).await;
        assert_at(start.elapsed(), deadline, "REGISTRATION_TIMEOUT");
    }
}

/// A registered client that stays silent is sent a `PING` after each
/// `ping_interval` (30 s) of silence and closed when the third interval
/// ends with two of them unanswered (90 s); those watching see it leave
/// then.
#[tokio::test(start_paused = true)]
async fn a_silent_client_is_pinged_twice_and_closed_after_three_intervals() {
    let config = HubConfig::default();
    let interval = config.ping_interval;
    assert_eq!(interval, Duration::from_secs(30), "docs/limits.md");
    assert_eq!(config.max_missed_pings, 2, "docs/limits.md");
    let hub = PipeHub::start(config);
    // In-process sessions are not pinged, so this one can watch quietly.
    let mut watcher = hub.hub.attach("watcher").await.unwrap();
    let start = Instant::now();
    let mut silent = hub.register("silent").await.with_patience(interval * 4);

    for token in [1, 2] {
        assert_eq!(silent.recv().await, Some(ServerFrame::Ping(token)));
        assert_at(start.elapsed(), interval * token as u32, "PING");
    }
    silent.expect_fatal(Code::PING_TIMEOUT).await;
    assert_at(start.elapsed(), interval * 3, "PING_TIMEOUT");
    seen_leaving(&mut watcher, "silent").await;
    assert_at(start.elapsed(), interval * 3, "PRESENCE offline");
    assert_eq!(hub.hub.stats().ping_timeouts, 1);
}

/// Liveness is counted from registration, not from the registration
/// deadline: with a ping interval shorter than that deadline, the first
/// `PING` to a silent client comes one interval after its `WELCOME`.
#[tokio::test(start_paused = true)]
async fn the_first_ping_comes_one_interval_after_registration() {
    let mut config = HubConfig::default();
    config.ping_interval = Duration::from_secs(1);
    assert!(config.registration_timeout > config.ping_interval * 2);
    let interval = config.ping_interval;
    let hub = PipeHub::start(config);
    let client = hub.connect();
    // Registration itself takes a moment of the deadline.
    sleep(Duration::from_millis(1500)).await;
    let start = Instant::now();
    let mut silent = client.registered("silent").await;
    assert_eq!(silent.recv().await, Some(ServerFrame::Ping(1)));
    assert_at(start.elapsed(), interval, "the first PING");
    assert_eq!(silent.recv().await, Some(ServerFrame::Ping(2)));
    assert_at(start.elapsed(), interval * 2, "the second PING");
    silent.expect_fatal(Code::PING_TIMEOUT).await;
    assert_at(start.elapsed(), interval * 3, "PING_TIMEOUT");
}

/// Flood control (`--rate-limit 10/s --rate-burst 20`, the default grace of
/// 10 s): a text pasted at once loses what is over the burst but its sender
/// stays; a sender that keeps going at twice the rate is cut when its
/// refusals, never a second apart, have gone on for the grace.
#[tokio::test(start_paused = true)]
async fn a_flood_is_cut_when_it_has_lasted_the_grace_and_a_paste_is_not() {
    let mut config = HubConfig::default();
    let grace = Duration::from_secs(10);
    config.rate_limit = Some(chinwag_hub::RateLimit {
        per_second: 10.0,
        burst: 20,
        grace,
    });
    let hub = PipeHub::start(config);
    let _bob = hub.hub.attach("bob").await.unwrap();

    // A paste: 100 lines at once.
    let mut paster = hub.register("paster").await;
    for id in 1..=100 {
        paster.send(support::send(id, &["bob"], "line")).await;
    }
    let (mut acked, mut refused) = (0, 0);
    while acked + refused < 100 {
        match paster.recv().await {
            Some(ServerFrame::Ack(_)) => acked += 1,
            Some(ServerFrame::Error(e)) if e.code == Code::RATE_LIMITED => refused += 1,
            other => panic!("the paster got {other:?}"),
        }
    }
    assert_eq!((acked, refused), (20, 80));

    // A program: two messages every 100 ms.
    let mut flooder = hub.register("flooder").await;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut first_refusal = None;
    let mut id = 0;
    let cut = loop {
        tick.tick().await;
        for _ in 0..2 {
            id += 1;
            flooder.send(support::send(id, &["bob"], "spam")).await;
        }
        let mut cut = None;
        while let Some(frame) = flooder.recv().now_or_never().flatten() {
            match frame {
                ServerFrame::Error(e) if e.code == Code::RATE_LIMITED => {
                    first_refusal.get_or_insert_with(Instant::now);
                }
                ServerFrame::Error(e) if e.code == Code::FLOODING => cut = Some(Instant::now()),
                _ => {}
            }
        }
        if let Some(cut) = cut {
            break cut;
        }
        assert!(id < 1_000, "the flooder was never cut");
    };
    let first_refusal = first_refusal.expect("refused before the cut");
    let lasted = cut - first_refusal;
    assert!(
        lasted > grace && lasted <= grace + Duration::from_millis(200),
        "cut after refusals for {lasted:?}"
    );
    assert_eq!(hub.hub.stats().flooders, 1);
    // The paster is still there.
    assert!(
        hub.hub
            .roster()
            .await
            .unwrap()
            .contains(&"paster".to_owned())
    );
}

/// A client that answers each `PING` is never closed, and one that sends
/// anything at least once an interval is never pinged.
#[tokio::test(start_paused = true)]
async fn a_client_that_answers_pings_or_keeps_talking_stays_connected() {
    let interval = HubConfig::default().ping_interval;
    let hub = PipeHub::start(HubConfig::default());
    let start = Instant::now();
    let mut answering = hub.register("answering").await.with_patience(interval * 2);
    let mut talking = hub.register("talking").await;

    let talker = tokio::spawn(async move {
        // Just inside the interval each time, for ten intervals.
        for _ in 0..10 {
            sleep(just_before(interval)).await;
            // The very next frame is the roster: no PING came first.
            talking.send(ClientFrame::Who).await;
            match talking.recv().await {
                Some(ServerFrame::Roster(_)) => {}
                other => panic!("expected the roster, got {other:?}"),
            }
        }
        talking
    });
    for round in 1..=10u32 {
        let token = answering
            .recv_until(|frame| match frame {
                ServerFrame::Ping(token) => Some(token),
                ServerFrame::Presence(_) => None,
                other => panic!("expected PING {round}, got {other:?}"),
            })
            .await;
        assert_at(start.elapsed(), interval * round, "PING");
        answering.send(ClientFrame::Pong(token)).await;
    }
    let mut talking = talker.await.unwrap();
    assert_eq!(answering.who().await, ["answering", "talking"]);
    assert_eq!(talking.who().await, ["answering", "talking"]);
    assert_eq!(hub.hub.stats().ping_timeouts, 0);
}

/// Part of a frame, then no byte for `frame_timeout` (10 s): closed with
/// `FRAME_TIMEOUT`, counted from the last byte that arrived.
#[tokio::test(start_paused = true)]
async fn a_frame_that_stops_midway_is_closed_ten_seconds_after_its_last_byte() {
    let config = HubConfig::default();
    let deadline = config.frame_timeout;
    assert_eq!(deadline, Duration::from_secs(10), "docs/limits.md");
    let hub = PipeHub::start(config);
    let mut watcher = hub.hub.attach("watcher").await.unwrap();
    let mut staller = hub.register("staller").await;

    // The prefix and 2 of the 9 payload bytes of a PING; 9 s later, 2 more;
    // then nothing.
    let frame = raw_frame(&ping_payload(1));
    staller.send_raw(&frame[..6]).await;
    sleep(just_before(deadline)).await;
    staller.send_raw(&frame[6..8]).await;
    let ((), after) = timed(staller.expect_fatal(Code::FRAME_TIMEOUT)).await;
    assert_at(after, deadline, "FRAME_TIMEOUT");
    seen_leaving(&mut watcher, "staller").await;
    assert_eq!(hub.hub.stats().stalled_frames, 1);
}

/// A frame whose bytes keep coming, each within the deadline, is not a
/// stall however long it takes; nor is silence between frames, however
/// long (short of a ping interval).
#[tokio::test(start_paused = true)]
async fn a_frame_trickling_in_or_silence_between_frames_is_not_a_stall() {
    let config = HubConfig::default();
    let deadline = config.frame_timeout;
    let interval = config.ping_interval;
    let hub = PipeHub::start(config);
    let mut alice = hub.register("alice").await;

    // One byte every 9 s: 13 bytes over 108 s, a frame deadline each time
    // almost, and more than three ping intervals (bytes count as being
    // heard from).
    let frame = raw_frame(&ping_payload(77));
    for byte in &frame {
        sleep(just_before(deadline)).await;
        alice.send_raw(std::slice::from_ref(byte)).await;
    }
    assert_eq!(alice.recv().await, Some(ServerFrame::Pong(77)));
    // Between frames, longer than the frame deadline.
    sleep(just_before(interval)).await;
    assert_eq!(alice.sync().await, []);
    assert_eq!(alice.who().await, ["alice"]);
    assert_eq!(hub.hub.stats().stalled_frames, 0);
}

/// A reader that stops reading: the hub's write to it makes no progress,
/// and `slow_consumer_deadline` (10 s) after the write began it is cut as a
/// slow consumer, while its queue is still far below the high-water mark.
/// (A pipe that buffers a few KiB and is never read is exactly a socket
/// whose reader stopped.)
#[tokio::test(start_paused = true)]
async fn a_reader_that_stops_reading_is_cut_when_a_write_makes_no_progress_for_the_deadline() {
    let config = HubConfig::default();
    let deadline = config.slow_consumer_deadline;
    assert_eq!(deadline, Duration::from_secs(10), "docs/limits.md");
    let high_water = config.outbox_high_water;
    let hub = PipeHub::start(config);
    let mut watcher = hub.hub.attach("watcher").await.unwrap();
    let mut publisher = hub.hub.attach("publisher").await.unwrap();
    let stuck = hub.connect_with_buffer(4096).registered("stuck").await;

    // One message, 16 times what the pipe holds, a quarter of the mark.
    let text = "x".repeat(high_water / 4);
    let id = publisher.send(users(&["stuck"]), text).await.unwrap();
    let ((), after) = timed(seen_leaving(&mut watcher, "stuck")).await;
    assert_at(after, deadline, "the stuck reader's departure");
    loop {
        match publisher.recv().await {
            Some(ServerFrame::Ack(ack)) => {
                assert_eq!((ack.client_id, ack.delivered), (id, 1), "{ack:?}");
                break;
            }
            Some(ServerFrame::Welcome(_) | ServerFrame::Presence(_)) => {}
            other => panic!("expected the ACK, got {other:?}"),
        }
    }
    support::settle("slow consumers", || hub.hub.stats().slow_consumers, 1).await;
    // What the pipe held, then the end.
    let drained = stuck.drain_until_closed(Duration::from_secs(1)).await;
    assert!(drained > 0 && drained < high_water / 4, "{drained} bytes");
}

/// The write deadline is for a write that makes no progress, not for a
/// large frame to be written whole: a reader that keeps taking 4 KiB a
/// second, slower than a 200 KiB message can be written in the deadline,
/// is not cut, and gets the message whole (it is below the high-water
/// mark, so the sweep has nothing to say either).
#[tokio::test(start_paused = true)]
async fn a_reader_that_keeps_reading_slowly_is_not_cut_by_the_write_deadline() {
    use tokio::io::AsyncReadExt;
    use tokio_util::codec::Decoder;

    let config = HubConfig::default();
    let deadline = config.slow_consumer_deadline;
    let size = 200 * 1024;
    assert!(size < config.outbox_high_water);
    let hub = PipeHub::start(config);
    let mut publisher = hub.hub.attach("publisher").await.unwrap();
    let reader = hub.connect_with_buffer(4096).registered("reader").await;
    publisher
        .send(users(&["reader"]), "y".repeat(size))
        .await
        .unwrap();

    // 4 KiB a second: about 50 s for the message, five deadlines.
    let mut framed = reader.framed;
    let mut bytes = framed.read_buffer_mut().split();
    let started = Instant::now();
    let message = loop {
        if let Some(ServerFrame::Message(message)) = framed.codec_mut().decode(&mut bytes).unwrap()
        {
            break message;
        }
        let mut chunk = vec![0; 4096];
        let read = guard(deadline, "4 KiB", framed.get_mut().read(&mut chunk)).await;
        let read = read.unwrap();
        assert!(read > 0, "the reader was cut after {:?}", started.elapsed());
        bytes.extend_from_slice(&chunk[..read]);
        sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(message.text.len(), size);
    assert!(started.elapsed() > 4 * deadline, "{:?}", started.elapsed());
    assert_eq!(hub.hub.stats().slow_consumers, 0);
}

/// A consumer whose queue stays above the high-water mark is cut at the
/// deadline by the actor's sweep, which runs every quarter deadline but at
/// most once a second: between 10 and 11 s after the queue went over. An
/// in-process session that never calls `recv` has no writer, so only the
/// sweep can cut it.
#[tokio::test(start_paused = true)]
async fn a_queue_above_the_high_water_mark_is_cut_by_the_sweep_at_the_deadline() {
    let config = HubConfig::default();
    let deadline = config.slow_consumer_deadline;
    let sweep_period = Duration::from_secs(1);
    let hub = PipeHub::start(config);
    let mut watcher = hub.hub.attach("watcher").await.unwrap();
    let mut publisher = hub.hub.attach("publisher").await.unwrap();
    let mut stuck = hub.hub.attach("stuck").await.unwrap();

    // 1 KiB messages until the publisher is paused: the queue is over the
    // mark, and the publisher's budget parked on it.
    let text = "x".repeat(1024);
    let mut sent = 0;
    while let Some(sending) = publisher
        .send(users(&["stuck"]), text.as_str())
        .now_or_never()
    {
        let id = sending.unwrap();
        loop {
            match publisher.recv().await {
                Some(ServerFrame::Ack(ack)) if ack.client_id == id => break,
                Some(_) => {}
                None => panic!("the publisher was closed"),
            }
        }
        sent += 1;
        assert!(sent < 10_000, "the publisher was never paused");
    }

    let ((), after) = timed(seen_leaving(&mut watcher, "stuck")).await;
    assert!(
        after >= deadline && after <= deadline + sweep_period,
        "cut after {after:?}, due between {deadline:?} and one sweep later"
    );
    // Its queue was dropped; the error is what is left.
    assert!(matches!(
        stuck.recv().await,
        Some(ServerFrame::Error(e)) if e.code == Code::SLOW_CONSUMER
    ));
    assert_eq!(stuck.recv().await, None);
    // And the publisher runs free again.
    assert!(
        publisher
            .send(users(&["watcher"]), "free")
            .now_or_never()
            .is_some()
    );
}
