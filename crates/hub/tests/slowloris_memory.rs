//! A crowd that dribbles `HELLO` bytes, one a second, holds little memory
//! while it waits and is cut at the registration deadline (scenario 3 of
//! issue 21): the process's resident memory grows by less than the bound
//! `docs/limits.md` gives per unregistered connection.
//!
//! This file holds one test, so that the process's memory is this test's.

mod support;

use std::time::Duration;

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::Code;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use support::{codes_until_closed, encode_frames, hello, settle};

/// `docs/limits.md`: what one unregistered connection may cost the hub at
/// most (its read buffer, up to the limit before registration, plus its
/// task and socket). Here it also pays for the test's own client socket.
const BOUND_PER_CONNECTION: usize = 24 * 1024;

const CROWD: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbling_crowd_holds_little_memory_and_is_cut_at_the_deadline() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut config = HubConfig::default();
    config.registration_timeout = Duration::from_secs(4);
    config.max_unregistered = CROWD + 10;
    let (hub, addr) = support::start(config).await;
    let baseline = support::status_bytes("VmRSS:");

    // Each sends one byte of a HELLO a second: never a whole frame before
    // the deadline, and never silent long enough to stall.
    let whole = encode_frames(&[hello("slowpoke")]);
    let mut crowd = JoinSet::new();
    for _ in 0..CROWD {
        let whole = whole.clone();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        crowd.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for byte in &whole[..whole.len() - 1] {
                tick.tick().await;
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
            }
            let mut framed = tokio_util::codec::Framed::new(
                stream,
                chinwag_hub::protocol::ClientCodec::default(),
            );
            codes_until_closed(&mut framed).await
        });
    }
    settle("connections", || hub.connection_count(), CROWD).await;
    let held = support::status_bytes("VmRSS:").saturating_sub(baseline);
    eprintln!(
        "{CROWD} dribbling connections: {} bytes resident each (bound {BOUND_PER_CONNECTION})",
        held / CROWD
    );
    assert!(
        held < CROWD * BOUND_PER_CONNECTION,
        "{held} bytes for {CROWD}"
    );

    while let Some(codes) = crowd.join_next().await {
        assert_eq!(codes.unwrap(), [Code::REGISTRATION_TIMEOUT]);
    }
    settle("connections", || hub.connection_count(), 0).await;
    assert_eq!(hub.stats().registration_timeouts, CROWD as u64);
    hub.shutdown().await;
}
