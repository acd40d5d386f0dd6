//! The writer's work for reliable sessions, through a real store on a real
//! file and nothing else: pairs of accounts send each other messages held
//! for their online recipients, each asking for a receipt; the recipients
//! confirm them, and the senders confirm their receipts, as
//! `chinwag bench direct --reliable` drives it through a hub. The figure
//! is messages per second through the whole cycle (three commits a round).
//!
//! The data directory is under `CHINWAG_BENCH_DIR` if set, else under
//! `/dev/shm` where there is one: the fsyncs are then nearly free, and the
//! figure is the writer's CPU, which is what bounds the reliable path on a
//! loaded machine (`docs/performance.md`).
//!
//! `cargo bench -p chinwag-store --bench reliable`

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chinwag_store::{
    AccountStore, MailStore, NewAccount, Routed, SentRecord, Store, StoreConfig, StoredMessage,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The daemon's allocator: the writer's allocations are a large part of
/// its work, and glibc's malloc serves them differently.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Accounts, in pairs that write to each other.
const ACCOUNTS: usize = 100;
/// Messages per round: 40 each way per pair.
const ROUND: usize = 4_000;

fn bench_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CHINWAG_BENCH_DIR") {
        return dir.into();
    }
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// The cycle's state: each account's next number, and the next ids.
struct Cycle {
    store: Store,
    names: Vec<String>,
    /// Each name's place in `names`.
    index: HashMap<String, usize>,
    numbers: Vec<u64>,
    next_id: u64,
}

impl Cycle {
    fn open(dir: &std::path::Path) -> Self {
        let mut config = StoreConfig::new(dir);
        config.mailbox_max_messages = 1_000_000;
        config.mailbox_max_bytes = 1 << 30;
        let store = Store::open(&config).expect("a store in the bench's directory");
        let names: Vec<String> = (0..ACCOUNTS).map(|i| format!("user{i}")).collect();
        for nick in &names {
            let account = NewAccount {
                nick: nick.clone(),
                password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".to_owned(),
                created_ms: 1,
            };
            store
                .create_account(account)
                .expect("queued")
                .wait()
                .expect("created");
        }
        Self {
            store,
            index: (names.iter().cloned()).zip(0..).collect(),
            numbers: vec![0; names.len()],
            names,
            next_id: 1,
        }
    }

    /// One round: `ROUND` messages stored (held), confirmed by their
    /// recipients, and their receipts confirmed by their senders.
    fn round(&mut self) {
        let text = "x".repeat(64);
        let mut routed = Routed::new();
        let mut confirms: Vec<Vec<u64>> = vec![Vec::new(); self.names.len()];
        for n in 0..ROUND {
            let from = n % self.names.len();
            let to = from ^ 1;
            let id = self.next_id;
            self.next_id += 1;
            self.numbers[to] += 1;
            let message = StoredMessage {
                recipient: self.names[to].clone(),
                id,
                sender: self.names[from].clone(),
                to: vec![self.names[to].clone()],
                ts_ms: 1_000 + id,
                text: text.clone(),
                receipt: true,
                number: self.numbers[to],
            };
            routed.copy_held(&message);
            routed.sent(&SentRecord {
                sender: self.names[from].clone(),
                client_id: id,
                message_id: id,
                ts_ms: 1_000 + id,
                delivered: 0,
                statuses: vec![(self.names[to].clone(), 201)],
            });
            confirms[to].push(id);
        }
        let outcomes = (self.store.store_routed(routed).expect("queued").wait()).expect("stored");
        assert_eq!(outcomes.len(), ROUND);
        let confirms: Vec<(String, Vec<u64>)> = self.names.iter().cloned().zip(confirms).collect();
        let confirmed = (self
            .store
            .confirm_all(confirms.clone(), 5)
            .expect("queued")
            .wait())
        .expect("confirmed");
        // Each sender confirms the receipts it was sent.
        let mut receipts: Vec<Vec<(u64, String)>> = vec![Vec::new(); self.names.len()];
        let mut kept = 0;
        for ((recipient, _), confirmed) in confirms.iter().zip(&confirmed) {
            for (id, sender) in &confirmed.kept {
                // A message's sender is its recipient's partner.
                let owner = self.index[recipient] ^ 1;
                assert_eq!(&**sender, self.names[owner].as_str());
                receipts[owner].push((*id, recipient.clone()));
                kept += 1;
            }
        }
        assert_eq!(kept, ROUND, "every message's receipt kept");
        let forget: Vec<(String, Vec<(u64, String)>)> =
            self.names.iter().cloned().zip(receipts).collect();
        (self.store.forget_receipts(forget).expect("queued").wait()).expect("forgotten");
    }
}

fn bench_reliable(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(bench_dir()).expect("a temporary directory");
    let mut cycle = Cycle::open(dir.path());
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(ROUND as u64));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("reliable_cycle", |b| {
        b.iter_custom(|rounds| {
            let started = Instant::now();
            for _ in 0..rounds {
                cycle.round();
            }
            started.elapsed()
        });
    });
    group.finish();
}

criterion_group!(benches, bench_reliable);
criterion_main!(benches);
