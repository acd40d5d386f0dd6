//! A small measurement, ignored in the normal run: stored messages per
//! second and the time from handing a message over to its `Stored` answer
//! (p50, p99), for 1 writer and for 16 writing at once (group commit at
//! work). Numbers for `docs/durability.md`; the comparison with
//! redis-server `--appendonly yes --appendfsync always`, through the hub,
//! is `chinwag bench store` (`docs/performance.md`).
//!
//! `cargo test --release -p chinwag-store --test throughput -- --ignored --nocapture`

mod support;

use std::thread;
use std::time::{Duration, Instant};

use chinwag_store::{MailStore, Store, StoreConfig, StoreOutcome};

/// Messages each writer stores, one at a time, each waiting for its answer.
const PER_WRITER: u64 = 2_000;

fn measure(store: &Store, writers: u64) {
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|writer| {
            let store = store.clone();
            thread::spawn(move || {
                (0..PER_WRITER)
                    .map(|n| {
                        let id = 1 + writer * PER_WRITER + n;
                        let asked = Instant::now();
                        let outcome = store
                            .store_message(support::message("bob", id))
                            .unwrap()
                            .wait()
                            .unwrap();
                        assert_eq!(outcome, StoreOutcome::Stored);
                        asked.elapsed()
                    })
                    .collect::<Vec<Duration>>()
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = threads
        .into_iter()
        .flat_map(|thread| thread.join().unwrap())
        .collect();
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |percent: usize| latencies[(latencies.len() - 1) * percent / 100];
    eprintln!(
        "{writers} writer(s): {:.0} stored messages/s, request to committed p50 {:.2?} p99 {:.2?}",
        f64::from(u32::try_from(latencies.len()).unwrap()) / elapsed.as_secs_f64(),
        at(50),
        at(99),
    );
}

#[test]
#[ignore = "a measurement, not a check: run by hand in release mode"]
fn stored_messages_per_second() {
    for writers in [1, 16] {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            mailbox_max_messages: u64::MAX >> 1,
            mailbox_max_bytes: u64::MAX >> 1,
            ..StoreConfig::new(dir.path())
        };
        let store = support::open_with(&config, &["bob"]);
        measure(&store, writers);
    }
}
