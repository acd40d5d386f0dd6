//! A client that stops reading while broadcasts keep flowing is cut as a slow
//! consumer, the reader that keeps up gets every message, and the hub's heap
//! stays bounded by the outbox limit, not by what was published.
//!
//! This file holds one test because dhat's heap profiler is one per process.

mod support;

use std::time::Duration;

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::{ClientFrame, Recipients, SendFrame, ServerFrame};
use futures::{SinkExt, StreamExt};
use tokio::time::timeout;

use support::{PATIENCE, register, start};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const TEXT: usize = 16 * 1024;
const MESSAGES: usize = 2_000; // 32 MiB in all

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_reader_is_cut_and_the_hub_memory_stays_bounded() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut config = HubConfig::default();
    config.outbox_high_water = 256 * 1024;
    config.outbox_limit = 2 * 1024 * 1024;
    config.slow_consumer_deadline = Duration::from_secs(2);
    let limit = config.outbox_limit;
    let (hub, addr) = start(config).await;

    // Never polled after registering: its socket buffers fill, then its queue.
    let _stuck = register(addr, "stuck").await;
    let reader = register(addr, "reader").await;
    let publisher = register(addr, "publisher").await;
    let baseline = dhat::HeapStats::get().curr_bytes;

    // The reader keeps up and counts what it gets, in order.
    let reading = tokio::spawn(async move {
        let mut reader = reader;
        support::read_numbered(&mut reader, MESSAGES).await;
    });

    // The publisher sends as fast as the hub takes it and reads its acks.
    let (mut sink, mut stream) = publisher.split();
    let acks = tokio::spawn(async move {
        let mut acks = 0;
        let mut stuck_gone = false;
        while acks < MESSAGES {
            match timeout(PATIENCE, stream.next())
                .await
                .expect("publisher starved")
            {
                Some(Ok(ServerFrame::Ack(_))) => acks += 1,
                Some(Ok(ServerFrame::Presence(p))) if !p.online => {
                    stuck_gone |= p.nick == "stuck";
                }
                Some(Ok(_)) => {}
                other => panic!("publisher lost its connection: {other:?}"),
            }
        }
        stuck_gone
    });
    for seq in 0..MESSAGES {
        let text = support::numbered(seq, TEXT);
        sink.send(ClientFrame::Send(SendFrame {
            id: seq as u64 + 1,
            to: Recipients::Everyone,
            text,
        }))
        .await
        .unwrap();
    }
    timeout(PATIENCE, reading).await.unwrap().unwrap();
    let stuck_gone = timeout(PATIENCE, acks).await.unwrap().unwrap();
    assert!(stuck_gone, "the stuck reader was never cut");
    // Counted by the stuck connection's own task as it ends, which may be
    // a moment after the actor let everyone know it left.
    support::settle("slow consumers", || hub.stats().slow_consumers, 1).await;

    // 32 MiB went through; the hub's heap never grew by one outbox limit
    // (the publisher is paused at the high-water mark, the stuck reader cut
    // at the deadline).
    let peak = dhat::HeapStats::get().max_bytes.saturating_sub(baseline);
    assert!(
        peak < limit,
        "peak heap {peak} bytes above baseline, for an outbox limit of {limit}"
    );
}
