//! Isolation over real sockets: readers that stop reading, or read too
//! slowly, never pace a fan-out for everyone else. They are cut by their own
//! queue's bounds (`docs/limits.md`, "Slow consumers") while the publisher
//! and every healthy reader go on; a publisher faster than the whole
//! audience is still paced rather than anyone cut.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use chinwag_hub::protocol::{ClientCodec, ClientFrame, ServerFrame};
use chinwag_hub::{Hub, HubConfig};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::codec::Framed;

use support::{PATIENCE, hello, send};

type Client = Framed<TcpStream, ClientCodec>;

/// The longest a healthy reader may wait between two messages of a steady
/// broadcast while others are stuck (`docs/limits.md`): a stuck reader
/// paces nobody, so the gaps are the publisher's own, a few milliseconds.
/// The bound is generous for a loaded CI machine; pacing by a stuck reader
/// would show a gap as long as the slow-consumer deadline.
const MAX_GAP: Duration = Duration::from_secs(1);

/// The slow-consumer deadline these tests run with (10 s by default).
const DEADLINE: Duration = Duration::from_secs(3);

fn config() -> HubConfig {
    let mut config = HubConfig::default();
    config.slow_consumer_deadline = DEADLINE;
    config
}

/// Registers over a socket whose kernel receive buffer is small, so that a
/// client that stops reading fills it after little data.
async fn register_small(addr: SocketAddr, nick: &str) -> Client {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut client = Framed::new(stream, ClientCodec::default());
    client.send(hello(nick)).await.unwrap();
    match timeout(PATIENCE, client.next())
        .await
        .expect("a WELCOME in time")
    {
        Some(Ok(ServerFrame::Welcome(_))) => client,
        other => panic!("expected WELCOME, got {other:?}"),
    }
}

/// What a healthy reader saw.
#[derive(Debug, Default)]
struct Seen {
    /// Sequence numbers of the broadcast, in arrival order.
    seqs: Vec<usize>,
    /// The longest wait between two of them.
    longest_gap: Duration,
}

/// Reads until the message `"end"`, recording the broadcast's sequence
/// numbers and the longest gap between them.
fn healthy_reader(mut client: Client) -> JoinHandle<Seen> {
    tokio::spawn(async move {
        let mut seen = Seen::default();
        let mut last: Option<Instant> = None;
        loop {
            let frame = timeout(PATIENCE, client.next())
                .await
                .expect("a healthy reader waited too long");
            match frame {
                Some(Ok(ServerFrame::Message(message))) => {
                    if message.text == "end" {
                        return seen;
                    }
                    let now = Instant::now();
                    if let Some(last) = last {
                        seen.longest_gap = seen.longest_gap.max(now - last);
                    }
                    last = Some(now);
                    let seq = message.text.split(' ').next().and_then(|n| n.parse().ok());
                    seen.seqs.push(seq.expect("a numbered message"));
                }
                Some(Ok(_)) => {}
                other => panic!("a healthy reader was closed: {other:?}"),
            }
        }
    })
}

/// Sends `count` messages built by `frame`, `per_tick` every millisecond,
/// then `"end"` to everyone; reads its own ACKs meanwhile, as a real client
/// does, and returns once the last is in (closing earlier would reset the
/// connection with messages the hub has not read yet).
async fn publish(
    client: Client,
    count: usize,
    per_tick: usize,
    frame: impl Fn(u64, String) -> ClientFrame,
) {
    let (mut write, mut read) = client.split();
    let acks = tokio::spawn(async move {
        loop {
            match read.next().await {
                Some(Ok(ServerFrame::Ack(ack))) if ack.client_id == u64::MAX => return,
                Some(Ok(_)) => {}
                other => panic!("the publisher was closed: {other:?}"),
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let padding = "x".repeat(200);
    let mut seq = 0;
    while seq < count {
        tick.tick().await;
        for _ in 0..per_tick.min(count - seq) {
            let text = format!("{seq} {padding}");
            write.feed(frame(seq as u64 + 1, text)).await.unwrap();
            seq += 1;
        }
        write.flush().await.unwrap();
    }
    write.send(send(u64::MAX, &[], "end")).await.unwrap();
    timeout(PATIENCE, acks)
        .await
        .expect("the last ACK in time")
        .unwrap();
}

/// Waits for every healthy reader, and checks that each got the whole
/// broadcast in order, and (with `gaps`) never waited `MAX_GAP` for a
/// message.
async fn expect_everything(readers: Vec<JoinHandle<Seen>>, count: usize, gaps: bool) {
    for reader in readers {
        let seen = timeout(PATIENCE, reader).await.expect("in time").unwrap();
        assert_eq!(
            seen.seqs,
            (0..count).collect::<Vec<_>>(),
            "lost or reordered"
        );
        assert!(
            !gaps || seen.longest_gap < MAX_GAP,
            "a healthy reader waited {:?} between two messages",
            seen.longest_gap
        );
    }
}

/// Waits until the hub has cut `count` slow consumers.
async fn cut(hub: &Hub, count: u64) {
    support::settle("slow consumers cut", || hub.stats().slow_consumers, count).await;
}

async fn stuck_readers_pace_nobody(named: bool) {
    let (hub, addr) = support::start(config()).await;
    let healthy_names = ["h0", "h1", "h2", "h3"];
    let stuck_names = ["s0", "s1", "s2"];
    let mut readers = Vec::new();
    for name in healthy_names {
        readers.push(healthy_reader(support::register(addr, name).await));
    }
    let mut stuck = Vec::new();
    for name in stuck_names {
        stuck.push(register_small(addr, name).await);
    }
    let publisher = support::register(addr, "publisher").await;
    let everyone: Vec<&str> = healthy_names.iter().chain(&stuck_names).copied().collect();

    // 5 messages a millisecond, about 1 MB/s to each reader, for about
    // two deadlines: the stuck readers' queues pass the high-water mark in
    // a fraction of a second and stay there.
    let count = 5 * 2 * DEADLINE.as_millis() as usize;
    publish(publisher, count, 5, |id, text| {
        if named {
            send(id, &everyone, text)
        } else {
            send(id, &[], text)
        }
    })
    .await;

    expect_everything(readers, count, true).await;
    // Each stuck reader is cut within its bound: above the mark for the
    // deadline (checked every quarter deadline), or past the queue's limit.
    cut(&hub, stuck_names.len() as u64).await;
    let roster = hub.roster().await.unwrap();
    assert!(
        stuck_names
            .iter()
            .all(|name| !roster.iter().any(|n| n == name)),
        "{roster:?}"
    );
    drop(stuck);
    hub.shutdown().await;
}

/// Test 1 of issue 16: stuck readers among the audience of a broadcast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_never_read_do_not_pace_a_broadcast() {
    stuck_readers_pace_nobody(false).await;
}

/// Test 2: the same with every user named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_never_read_do_not_pace_a_message_to_named_users() {
    stuck_readers_pace_nobody(true).await;
}

/// Test 2b: a reader that keeps draining, but more slowly than the
/// broadcast, stays above its high-water mark and is cut once the deadline
/// has passed, not never; the others are unharmed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_slower_than_the_broadcast_is_cut_and_paces_nobody() {
    let (hub, addr) = support::start(config()).await;
    let mut readers = Vec::new();
    for name in ["h0", "h1", "h2"] {
        readers.push(healthy_reader(support::register(addr, name).await));
    }
    let mut slow = register_small(addr, "slow").await;
    // Once it has been cut, it reads what is left at full speed, to see
    // its connection end.
    let hurry = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow_reader = tokio::spawn({
        let hurry = hurry.clone();
        async move {
            // About 100 frames a second: a fiftieth of the broadcast.
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                if !hurry.load(std::sync::atomic::Ordering::Relaxed) {
                    tick.tick().await;
                }
                match slow.next().await {
                    Some(Ok(_)) => {}
                    _ => return,
                }
            }
        }
    });
    let publisher = support::register(addr, "publisher").await;
    let count = 5 * 3 * DEADLINE.as_millis() as usize;
    publish(publisher, count, 5, |id, text| send(id, &[], text)).await;
    expect_everything(readers, count, true).await;
    cut(&hub, 1).await;
    hurry.store(true, std::sync::atomic::Ordering::Relaxed);
    timeout(PATIENCE, slow_reader)
        .await
        .expect("the slow reader's connection closed")
        .unwrap();
    hub.shutdown().await;
}

/// Test 3: a publisher faster than its whole audience is paced, and
/// nobody is cut or loses anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_speed_fan_out_to_healthy_readers_loses_nothing() {
    let (hub, addr) = support::start(config()).await;
    let mut readers = Vec::new();
    for i in 0..20 {
        readers.push(healthy_reader(
            support::register(addr, &format!("r{i}")).await,
        ));
    }
    let publisher = support::register(addr, "publisher").await;
    let count = 20_000;
    // Everything at once: far faster than 20 readers can be written to.
    publish(publisher, count, count, |id, text| send(id, &[], text)).await;
    expect_everything(readers, count, false).await;
    assert_eq!(hub.stats().slow_consumers, 0);
    hub.shutdown().await;
}
