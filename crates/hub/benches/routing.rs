//! The hub actor's routing rate through its handle, with no sockets: one
//! in-process session publishes, others receive, and the figure is
//! deliveries per second (messages × recipients).
//!
//! `cargo bench -p chinwag-hub`

use std::time::{Duration, Instant};

use chinwag_hub::protocol::{Recipients, ServerFrame};
use chinwag_hub::{Hub, HubConfig, Session};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Messages per measured batch.
const MESSAGES: u64 = 2_000;

async fn receive(mut session: Session, want: u64) {
    let mut got = 0;
    while got < want {
        match session.recv().await {
            Some(ServerFrame::Message(_)) => got += 1,
            Some(_) => {}
            None => panic!("session closed"),
        }
    }
}

/// Publishes `MESSAGES` to `subscribers` sessions (broadcast or direct to
/// one) and waits until all are received; returns the elapsed time.
async fn round(hub: &Hub, subscribers: usize, broadcast: bool, round: u64) -> Duration {
    let publisher_name = format!("pub{round}");
    let mut publisher = hub.attach(&publisher_name).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..subscribers {
        let session = hub.attach(&format!("sub{round}x{i}")).await.unwrap();
        tasks.push(tokio::spawn(receive(session, MESSAGES)));
    }
    // The publisher's acks queue on its outbox unread: the bench's hub
    // config gives them room.
    let started = Instant::now();
    let to = if broadcast {
        Recipients::Everyone
    } else {
        Recipients::Users(vec![format!("sub{round}x0")])
    };
    for _ in 0..MESSAGES {
        publisher.send(to.clone(), "x".repeat(64)).await.unwrap();
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

fn bench_routing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("routing");
    group.sample_size(10);
    for (name, subscribers, broadcast) in [
        ("direct to 1", 1, false),
        ("broadcast to 10", 10, true),
        ("broadcast to 100", 100, true),
    ] {
        group.throughput(Throughput::Elements(MESSAGES * subscribers as u64));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut config = HubConfig::default();
                    // The publisher's acks are never read here: let them queue.
                    config.outbox_limit = 256 * 1024 * 1024;
                    config.outbox_high_water = 64 * 1024 * 1024;
                    let hub = Hub::start(config);
                    let mut total = Duration::ZERO;
                    for i in 0..iters {
                        total += round(&hub, subscribers, broadcast, i).await;
                    }
                    hub.shutdown().await;
                    total
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_routing);
criterion_main!(benches);
