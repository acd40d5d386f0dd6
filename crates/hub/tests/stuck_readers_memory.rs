//! Fifty readers that never read, and one that does, while a broadcast
//! flows: the healthy readers get everything, every stuck one is cut, and
//! the process's peak resident memory grows by less than the bound
//! `docs/limits.md` gives for stuck readers (each pins at most its queue's
//! limit), though twice that was published.
//!
//! This file holds one test, so that the process's memory is this test's.

mod support;

use std::time::Duration;

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::{ClientCodec, ServerFrame};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio::time::timeout;
use tokio_util::codec::Framed;

use support::{PATIENCE, hello, register, send, start};

const STUCK: usize = 50;
const HEALTHY: usize = 1;
const TEXT: usize = 4 * 1024;
/// 6,400 messages of 4 KiB: 25 MiB, twice the fifty queues' limits
/// together (12.5 MiB), so stuck readers that pinned what was published
/// would break the bound.
const MESSAGES: usize = 6_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_stuck_readers_pin_no_more_than_their_queues_limits() {
    let mut config = HubConfig::default();
    config.outbox_high_water = 32 * 1024;
    config.outbox_limit = 256 * 1024;
    // Room under the limit for what a publisher may overshoot the mark by
    // (its in-flight budget) while its audience catches up.
    config.max_in_flight_bytes = 16 * 1024;
    config.slow_consumer_deadline = Duration::from_secs(3);
    let bound = STUCK * config.outbox_limit;
    let (hub, addr) = start(config).await;

    let mut stuck = Vec::new();
    for i in 0..STUCK {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = Framed::new(socket.connect(addr).await.unwrap(), ClientCodec::default());
        client.send(hello(&format!("stuck{i}"))).await.unwrap();
        stuck.push(client);
    }
    let mut readers = Vec::new();
    for i in 0..HEALTHY {
        let mut reader = register(addr, &format!("reader{i}")).await;
        readers.push(tokio::spawn(async move {
            support::read_numbered(&mut reader, MESSAGES).await;
        }));
    }
    let publisher = register(addr, "publisher").await;
    let baseline = support::status_bytes("VmRSS:");

    let (mut sink, mut stream) = publisher.split();
    let acks = tokio::spawn(async move {
        let mut acks = 0;
        while acks < MESSAGES {
            match timeout(PATIENCE, stream.next())
                .await
                .expect("publisher starved")
            {
                Some(Ok(ServerFrame::Ack(_))) => acks += 1,
                Some(Ok(_)) => {}
                other => panic!("publisher lost its connection: {other:?}"),
            }
        }
    });
    // A steady two messages a millisecond. The stuck readers are most of
    // the audience, so they pace the publisher until they are cut (the
    // audience as a whole is behind); it then goes on at the same pace, not
    // in a burst to make up for the pause. (One healthy reader: a minority
    // of healthy ones momentarily behind would be on their own, and with
    // this test's small queue limit could be cut; `isolation.rs` covers
    // stuck readers among healthy ones.)
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 0..MESSAGES {
        if seq % 2 == 0 {
            tick.tick().await;
        }
        let text = support::numbered(seq, TEXT);
        sink.send(send(seq as u64 + 1, &[], text)).await.unwrap();
    }
    for reader in readers {
        timeout(PATIENCE, reader).await.unwrap().unwrap();
    }
    timeout(PATIENCE, acks).await.unwrap().unwrap();
    support::settle(
        "slow consumers",
        || hub.stats().slow_consumers,
        STUCK as u64,
    )
    .await;

    let peak = support::status_bytes("VmHWM:").saturating_sub(baseline);
    eprintln!("peak resident memory {peak} bytes above baseline; bound {bound}");
    assert!(
        peak < bound,
        "peak resident memory {peak} bytes above baseline, for {STUCK} stuck readers' bound of {bound}"
    );
    drop(stuck);
    hub.shutdown().await;
}
