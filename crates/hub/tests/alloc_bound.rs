//! An oversized or lying length prefix is refused before anything is
//! allocated for it: the hub's peak heap barely moves while clients announce
//! frames of 4 GiB and of the limit plus one.
//!
//! This file holds one test because dhat's heap profiler is one per process.

mod support;

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::{ClientCodec, Code};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use support::{codes_until_closed, register, settle, start};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[tokio::test]
async fn lying_length_prefixes_allocate_nothing_near_the_declared_length() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let config = HubConfig::default();
    let max = config.max_frame;
    let (hub, addr) = start(config).await;

    // Warm up: one ordinary connection, so that the runtime's and the
    // hub's one-off allocations are behind us.
    let warm = register(addr, "warm").await;
    drop(warm);
    settle("connections", || hub.connection_count(), 0).await;
    let before = dhat::HeapStats::get().max_bytes;

    let prefixes: [u32; 3] = [
        u32::MAX,
        u32::try_from(max + 1).unwrap(),
        // Before registration the limit is 16 KiB, so this one is refused too.
        u32::try_from(max).unwrap(),
    ];
    for prefix in prefixes {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut bytes = prefix.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0x01; 64]);
        stream.write_all(&bytes).await.unwrap();
        let mut client = Framed::new(stream, ClientCodec::default());
        assert_eq!(
            codes_until_closed(&mut client).await,
            [Code::FRAME_TOO_LARGE],
            "prefix {prefix:#x}"
        );
    }

    let grew = dhat::HeapStats::get().max_bytes.saturating_sub(before);
    assert!(
        grew < 256 * 1024,
        "peak heap grew by {grew} bytes for frames announced at up to 4 GiB"
    );
    assert_eq!(hub.stats().oversized_frames, 3);
}
