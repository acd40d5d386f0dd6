//! Admission under attack, over real sockets (loopback offers a whole /8 of
//! source addresses): a crowd of idle connections that re-open the moment
//! they are cut, from one address or spread over many, cannot keep a real
//! user from registering (`docs/limits.md`, "Admission").

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chinwag_hub::protocol::{ClientCodec, ServerFrame};
use chinwag_hub::{Hub, HubConfig};
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};
use tokio_util::codec::Framed;

use support::hello;

/// How long the crowd keeps at it, and how often the real user tries.
const SIEGE: Duration = Duration::from_secs(10);
const EVERY: Duration = Duration::from_millis(500);

/// The real user's address, apart from the crowd's.
const USER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

async fn connect_from(source: Ipv4Addr, hub: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    socket.connect(hub).await
}

/// One member of the crowd: connects from `source`, sends nothing, and
/// the moment the hub closes it (refused, shed, or at the registration
/// deadline) connects again, until `stop`.
async fn idle_member(
    source: Ipv4Addr,
    hub: SocketAddr,
    stop: Arc<AtomicBool>,
    cycles: Arc<AtomicU64>,
) {
    let mut scratch = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = connect_from(source, hub).await else {
            tokio::task::yield_now().await;
            continue;
        };
        cycles.fetch_add(1, Ordering::Relaxed);
        // Until the hub closes it, or the siege ends.
        loop {
            match timeout(Duration::from_millis(200), stream.read(&mut scratch)).await {
                Ok(Ok(0) | Err(_)) => break,
                Err(_) if stop.load(Ordering::Relaxed) => return,
                Ok(Ok(_)) | Err(_) => {}
            }
        }
    }
}

/// The real user tries to register every [`EVERY`] for the [`SIEGE`];
/// returns how long each attempt took, `None` for a failed one.
async fn real_user(hub: SocketAddr) -> Vec<Option<Duration>> {
    let mut attempts = Vec::new();
    let mut tick = tokio::time::interval(EVERY);
    let until = Instant::now() + SIEGE;
    let mut n = 0;
    while Instant::now() < until {
        tick.tick().await;
        n += 1;
        let started = Instant::now();
        let attempt = timeout(Duration::from_secs(2), async {
            let stream = connect_from(USER, hub).await.ok()?;
            let mut framed = Framed::new(stream, ClientCodec::default());
            framed.send(hello(&format!("user{n}"))).await.ok()?;
            match framed.next().await {
                Some(Ok(ServerFrame::Welcome(_))) => Some(()),
                _ => None,
            }
        })
        .await;
        attempts.push(matches!(attempt, Ok(Some(()))).then(|| started.elapsed()));
    }
    attempts
}

/// Runs a siege by `crowd` idle connections from `sources`, and returns the
/// real user's attempts and the crowd's connection count.
async fn siege(
    hub: &Hub,
    addr: SocketAddr,
    sources: &[Ipv4Addr],
    crowd: usize,
) -> (Vec<Option<Duration>>, u64) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let mut members = JoinSet::new();
    for i in 0..crowd {
        members.spawn(idle_member(
            sources[i % sources.len()],
            addr,
            stop.clone(),
            cycles.clone(),
        ));
    }
    let attempts = real_user(addr).await;
    stop.store(true, Ordering::Relaxed);
    while members.join_next().await.is_some() {}
    let _ = hub;
    (attempts, cycles.load(Ordering::Relaxed))
}

/// At least `percent` of the attempts succeeded, each within a second.
#[track_caller]
fn assert_got_in(attempts: &[Option<Duration>], percent: usize) {
    let within = attempts
        .iter()
        .filter(|attempt| attempt.is_some_and(|took| took < Duration::from_secs(1)))
        .count();
    let needed = (percent * attempts.len()).div_ceil(100);
    let mut took: Vec<Duration> = attempts.iter().flatten().copied().collect();
    took.sort_unstable();
    let at = |q: usize| took.get((took.len() * q / 100).min(took.len().saturating_sub(1)));
    eprintln!(
        "registered {} of {} attempts, {within} within a second; p50 {:?}, p99 {:?}",
        took.len(),
        attempts.len(),
        at(50),
        at(99)
    );
    assert!(
        within >= needed,
        "{within} of {} attempts registered within a second (need {needed}): {attempts:?}",
        attempts.len()
    );
}

fn config() -> HubConfig {
    let mut config = HubConfig::default();
    // Loopback is exempt by default; here it stands for the internet.
    config.addresses.exempt.clear();
    config
}

/// Scenario 1 of issue 21: 2,000 idle connections from one address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_from_one_address_cannot_keep_a_real_user_out() {
    let (hub, addr) = support::start(config()).await;
    let (attempts, cycles) = siege(&hub, addr, &[Ipv4Addr::LOCALHOST], 2_000).await;
    assert_got_in(&attempts, 95);
    let stats = hub.stats();
    assert!(cycles > 2_000, "the crowd connected {cycles} times");
    assert!(
        stats.address_unregistered_refusals + stats.address_rate_refusals > 0,
        "{stats:?}"
    );
    hub.shutdown().await;
}

/// Scenario 2: the same crowd spread over 200 addresses, 10 each, too many
/// for the shared cap on unregistered connections: the oldest idle ones are
/// shed for newcomers, and the real user gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_spread_over_many_addresses_is_shed_for_a_real_user() {
    let (hub, addr) = support::start(config()).await;
    let sources: Vec<Ipv4Addr> = (0..200u16)
        .map(|i| Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8))
        .collect();
    let (attempts, _) = siege(&hub, addr, &sources, 2_000).await;
    assert_got_in(&attempts, 90);
    assert!(hub.stats().shed_unregistered > 0, "{:?}", hub.stats());
    hub.shutdown().await;
}
