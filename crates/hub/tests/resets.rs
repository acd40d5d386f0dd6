//! Clients that reset their connections (`SO_LINGER` 0) in the middle of a
//! write, a thousand at a time for several rounds: no panic, the hub keeps
//! serving, and its connection and task counts return to where they were.

mod support;

use std::net::SocketAddr;

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::{ClientCodec, ClientFrame, Recipients, SendFrame, ServerFrame};
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;

use support::{PATIENCE, hello, register, settle, start};

const CLIENTS: usize = 1_000;
/// Connections open at once, so that the test fits a 1,024 file limit.
const BATCH: usize = 250;

/// Connects, registers (every other client), starts writing a frame, and
/// resets the connection halfway through it.
async fn reset_midway(addr: SocketAddr, nick: String, register: bool) {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return;
    };
    let mut framed = Framed::new(stream, ClientCodec::default());
    if register {
        let _ = framed.send(hello(&nick)).await;
        let _ = timeout(PATIENCE, framed.next()).await;
    }
    let stream = framed.get_mut();
    // The first half of a 200-byte SEND.
    let _ = stream
        .write_all(&[0, 0, 0, 200, 0x02, 0, 0, 0, 0, 0, 0, 0, 7, 0x01])
        .await;
    let _ = stream.set_zero_linger();
    // Dropping it now sends a RST.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_resets_mid_write_leave_no_trace() {
    let (hub, addr) = start(HubConfig::default()).await;

    let mut observer = Framed::new(
        TcpStream::connect(addr).await.unwrap(),
        ClientCodec::default(),
    );
    observer.send(hello("observer")).await.unwrap();
    assert!(matches!(
        observer.next().await,
        Some(Ok(ServerFrame::Welcome(_)))
    ));

    let metrics = tokio::runtime::Handle::current().metrics();
    let baseline_tasks = metrics.num_alive_tasks();
    assert_eq!(hub.connection_count(), 1);

    for round in 0..3 {
        for batch in 0..CLIENTS / BATCH {
            let clients: Vec<_> = (0..BATCH)
                .map(|i| {
                    let nick = format!("r{round}b{batch}c{i}");
                    tokio::spawn(reset_midway(addr, nick, i % 2 == 0))
                })
                .collect();
            for client in clients {
                client.await.expect("a client task panicked");
            }
        }
        settle("connections", || hub.connection_count(), 1).await;
        settle("tasks", || metrics.num_alive_tasks(), baseline_tasks).await;
    }

    // Everyone registered is gone from the roster, and the hub still routes.
    observer.send(ClientFrame::Who).await.unwrap();
    observer
        .send(ClientFrame::Send(SendFrame {
            id: 1,
            to: Recipients::Users(vec!["observer".into()]),
            text: "still here".into(),
        }))
        .await
        .unwrap();
    let (mut roster, mut echoed) = (None, false);
    while roster.is_none() || !echoed {
        match timeout(PATIENCE, observer.next()).await.unwrap() {
            Some(Ok(ServerFrame::Roster(r))) => roster = Some(r),
            Some(Ok(ServerFrame::Message(m))) => echoed = m.text == "still here",
            Some(Ok(_)) => {}
            other => panic!("observer lost: {other:?}"),
        }
    }
    assert_eq!(roster.unwrap(), ["observer"]);
    // And the accept loop still takes newcomers.
    let _late = register(addr, "late").await;
}
