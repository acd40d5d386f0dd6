//! The fault proxy over real sockets, with a server of the test's own
//! behind it: bytes pass unchanged when it injects no faults, each
//! connection is cut where `Faults::cut_points` says (the same for the same
//! seed), and `cut_all` and dropping the proxy end every connection.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;

use chinwag_testkit::{FaultProxy, Faults, settle, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the server behind the proxy does with each connection.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Writes back what it reads.
    Echo,
    /// Reads only.
    Sink,
    /// Writes this many bytes (and reads what comes).
    Source(usize),
}

/// How one connection went, as one side saw it.
#[derive(Debug)]
struct Seen {
    /// The bytes read.
    received: Vec<u8>,
    /// How reading ended: `Ok` at the end of the stream.
    read_end: Result<(), io::ErrorKind>,
    /// How writing ended (`Ok` if everything was written).
    write_end: Result<(), io::ErrorKind>,
}

/// A server on `127.0.0.1` that reports how each connection went,
/// numbered in the order it accepted them.
struct Server {
    addr: SocketAddr,
    reports: mpsc::UnboundedReceiver<(usize, Seen)>,
    /// What came before `reports` was asked for a given connection.
    early: BTreeMap<usize, Seen>,
    accept: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Server {
    async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (report, reports) = mpsc::unbounded_channel();
        let accept = tokio::spawn(async move {
            for number in 0.. {
                let (stream, _) = listener.accept().await.unwrap();
                let report = report.clone();
                tokio::spawn(async move {
                    let seen = serve(stream, mode).await;
                    let _ = report.send((number, seen));
                });
            }
        });
        Self {
            addr,
            reports,
            early: BTreeMap::new(),
            accept,
        }
    }

    /// How connection `number` went, once it has ended.
    async fn report(&mut self, number: usize) -> Seen {
        within(&format!("the server's connection {number} ending"), async {
            loop {
                if let Some(seen) = self.early.remove(&number) {
                    return seen;
                }
                let (n, seen) = self.reports.recv().await.unwrap();
                self.early.insert(n, seen);
            }
        })
        .await
    }
}

async fn serve(stream: TcpStream, mode: Mode) -> Seen {
    let (mut read, mut write) = stream.into_split();
    let mut received = Vec::new();
    let mut buffer = vec![0; 8192];
    match mode {
        Mode::Echo => {
            let mut write_end = Ok(());
            let read_end = loop {
                match read.read(&mut buffer).await {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        received.extend_from_slice(&buffer[..n]);
                        if write_end.is_ok() {
                            write_end = write.write_all(&buffer[..n]).await.map_err(|e| e.kind());
                        }
                    }
                    Err(e) => break Err(e.kind()),
                }
            };
            if write_end.is_ok() {
                write_end = write.shutdown().await.map_err(|e| e.kind());
            }
            Seen {
                received,
                read_end,
                write_end,
            }
        }
        Mode::Sink => Seen {
            read_end: read_all(&mut read, &mut received).await,
            received,
            write_end: Ok(()),
        },
        Mode::Source(len) => {
            let out = payload(len as u64, len);
            let (write_end, read_end) = tokio::join!(
                async {
                    write.write_all(&out).await?;
                    write.shutdown().await
                },
                read_all(&mut read, &mut received)
            );
            Seen {
                received,
                read_end,
                write_end: write_end.map_err(|e| e.kind()),
            }
        }
    }
}

/// Reads into `received` until the stream ends or fails.
async fn read_all(
    read: &mut (impl AsyncReadExt + Unpin),
    received: &mut Vec<u8>,
) -> Result<(), io::ErrorKind> {
    read.read_to_end(received)
        .await
        .map(drop)
        .map_err(|e| e.kind())
}

/// Connects to `addr`, writes `out` (then the end of its stream) while
/// reading until the stream ends or fails.
async fn exchange(addr: SocketAddr, out: &[u8]) -> Seen {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let mut received = Vec::new();
    let (write_end, read_end) = within("an exchange through the proxy", async {
        tokio::join!(
            async {
                write.write_all(out).await?;
                write.shutdown().await
            },
            read_all(&mut read, &mut received)
        )
    })
    .await;
    Seen {
        received,
        read_end,
        write_end: write_end.map_err(|e| e.kind()),
    }
}

/// `len` bytes that differ with `seed` (xorshift64).
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A connection through the proxy, after one round trip (so that the
/// proxy holds it live).
async fn connected(proxy: &FaultProxy) -> TcpStream {
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut pong = [0; 4];
    within("the echo", stream.read_exact(&mut pong))
        .await
        .unwrap();
    assert_eq!(&pong, b"ping");
    stream
}

async fn passes_unchanged(faults: Faults, connections: u64, len: usize) {
    let mut server = Server::start(Mode::Echo).await;
    let proxy = FaultProxy::start(server.addr, faults).unwrap();
    let payloads: Vec<_> = (0..connections).map(|i| payload(i, len)).collect();
    let seen = futures::future::join_all(payloads.iter().map(|p| exchange(proxy.addr(), p))).await;
    for (sent, seen) in payloads.iter().zip(&seen) {
        assert!(seen.received == *sent, "the echo differs");
        assert_eq!(seen.read_end, Ok(()));
        assert_eq!(seen.write_end, Ok(()));
    }
    for number in 0..connections as usize {
        let at_server = server.report(number).await;
        assert_eq!(at_server.received.len(), len);
        assert_eq!(at_server.read_end, Ok(()));
    }
    assert_eq!(proxy.cuts(), 0);
    assert_eq!(proxy.accepted(), connections);
    settle("live connections", || proxy.live(), 0).await;
}

#[tokio::test]
async fn without_faults_bytes_pass_unchanged_both_ways() {
    passes_unchanged(Faults::none(), 4, 1 << 20).await;
}

#[tokio::test]
async fn in_small_pieces_bytes_pass_unchanged_both_ways() {
    passes_unchanged(Faults::none().chunked(1..200), 3, 64 << 10).await;
}

#[tokio::test]
async fn every_connection_is_cut_at_its_cut_point() {
    const CONNECTIONS: u64 = 8;
    const SENT: usize = 100_000;
    let mut server = Server::start(Mode::Echo).await;
    let faults = Faults::cutting(11, 1_000..50_000).chunked(1..2_000);
    let proxy = FaultProxy::start(server.addr, faults.clone()).unwrap();
    for number in 0..CONNECTIONS {
        let points = faults.cut_points(number).unwrap();
        assert!((1_000..50_000).contains(&points.to_target));
        assert!((1_000..50_000).contains(&points.to_client));
        let sent = payload(number, SENT);
        let client = exchange(proxy.addr(), &sent).await;
        let at_server = server.report(number as usize).await;
        let (to_target, to_client) = (
            at_server.received.len() as u64,
            client.received.len() as u64,
        );
        assert!(
            to_target <= points.to_target && to_client <= points.to_client,
            "connection {number}: {to_target} and {to_client} bytes through, cut at {points:?}"
        );
        // Cut with a FIN: the direction that reached its cut point first
        // delivered every byte up to it.
        assert!(
            to_target == points.to_target || to_client == points.to_client,
            "connection {number}: {to_target} and {to_client} bytes through, cut at {points:?}"
        );
        assert!(sent.starts_with(&at_server.received));
        assert!(sent.starts_with(&client.received));
        assert_eq!(client.read_end, Ok(()), "a FIN is the end of the stream");
        assert_eq!(at_server.read_end, Ok(()));
        // What the peers still send after a FIN cut is discarded, not
        // answered with a reset.
        assert_eq!(client.write_end, Ok(()));
        assert_eq!(at_server.write_end, Ok(()));
        settle("cuts", || proxy.cuts(), number + 1).await;
    }
    assert_eq!(proxy.accepted(), CONNECTIONS);
    settle("live connections", || proxy.live(), 0).await;
}

/// How many bytes each of six connections in turn carried through a proxy
/// cutting with `seed`, towards the server (`Mode::Sink`) or the client
/// (`Mode::Source`).
async fn cut_run(seed: u64, mode: Mode) -> Vec<u64> {
    const SENT: usize = 50_000;
    let mut server = Server::start(mode).await;
    let faults = Faults::cutting(seed, 100..20_000);
    let proxy = FaultProxy::start(server.addr, faults.clone()).unwrap();
    let mut carried = Vec::new();
    for number in 0..6 {
        let points = faults.cut_points(number).unwrap();
        let (through, cut_point) = match mode {
            Mode::Sink => {
                let client = exchange(proxy.addr(), &payload(number, SENT)).await;
                assert_eq!(client.write_end, Ok(()), "discarded after the cut");
                let at_server = server.report(number as usize).await;
                (at_server.received.len() as u64, points.to_target)
            }
            Mode::Source(_) => {
                let client = exchange(proxy.addr(), &[]).await;
                let at_server = server.report(number as usize).await;
                assert_eq!(at_server.write_end, Ok(()), "discarded after the cut");
                (client.received.len() as u64, points.to_client)
            }
            Mode::Echo => unreachable!("one direction at a time"),
        };
        assert_eq!(through, cut_point, "connection {number}");
        carried.push(through);
    }
    settle("cuts", || proxy.cuts(), 6).await;
    carried
}

#[tokio::test]
async fn the_same_seed_cuts_at_the_same_points() {
    for mode in [Mode::Sink, Mode::Source(50_000)] {
        let first = cut_run(3, mode).await;
        assert_eq!(cut_run(3, mode).await, first, "{mode:?}");
        assert_ne!(cut_run(4, mode).await, first, "{mode:?}");
    }
    assert_eq!(
        Faults::cutting(3, 0..1_000).cut_points(17),
        Faults::cutting(3, 0..1_000).cut_points(17)
    );
    assert_eq!(Faults::none().cut_points(0), None);
}

#[tokio::test]
async fn a_reset_cut_resets_both_peers() {
    const SENT: usize = 200_000;
    let mut server = Server::start(Mode::Sink).await;
    let faults = Faults::cutting(5, 1_000..20_000).reset();
    let proxy = FaultProxy::start(server.addr, faults.clone()).unwrap();
    for number in 0..4 {
        let points = faults.cut_points(number).unwrap();
        let client = exchange(proxy.addr(), &payload(number, SENT)).await;
        let at_server = server.report(number as usize).await;
        // What was in flight at the reset is lost.
        assert!(at_server.received.len() as u64 <= points.to_target);
        assert_eq!(at_server.read_end, Err(io::ErrorKind::ConnectionReset));
        // The first of the client's reader and writer to meet the reset
        // reads it; the other then sees the connection closed.
        assert!(
            client.read_end == Err(io::ErrorKind::ConnectionReset)
                || client.write_end == Err(io::ErrorKind::ConnectionReset),
            "connection {number}: {client:?}"
        );
    }
    settle("cuts", || proxy.cuts(), 4).await;
}

#[tokio::test]
async fn cut_all_ends_every_live_connection() {
    let mut server = Server::start(Mode::Echo).await;
    let proxy = FaultProxy::start(server.addr, Faults::none()).unwrap();
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(connected(&proxy).await);
    }
    assert_eq!(proxy.live(), 5);
    assert_eq!(proxy.cut_all(), 5);
    assert_eq!(proxy.live(), 0);
    for client in &mut clients {
        let mut rest = Vec::new();
        let read = within("the cut", client.read_to_end(&mut rest)).await;
        assert_eq!(read.unwrap(), 0, "a FIN after the echo");
    }
    settle("cuts", || proxy.cuts(), 5).await;
    for number in 0..5 {
        let at_server = server.report(number).await;
        assert_eq!(at_server.received, b"ping");
        assert_eq!(at_server.read_end, Ok(()));
    }
    // The proxy goes on serving new connections.
    let _after = connected(&proxy).await;
    assert_eq!(proxy.live(), 1);
    assert_eq!(proxy.cuts(), 5);
}

#[tokio::test]
async fn cut_all_with_resets() {
    let mut server = Server::start(Mode::Echo).await;
    let proxy = FaultProxy::start(server.addr, Faults::none().reset()).unwrap();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connected(&proxy).await);
    }
    assert_eq!(proxy.cut_all(), 3);
    for client in &mut clients {
        let mut rest = Vec::new();
        let read = within("the cut", client.read_to_end(&mut rest)).await;
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    }
    for number in 0..3 {
        let at_server = server.report(number).await;
        assert_eq!(at_server.read_end, Err(io::ErrorKind::ConnectionReset));
    }
    assert_eq!(proxy.cuts(), 3);
}

#[tokio::test]
async fn dropping_the_proxy_ends_its_connections_and_its_listener() {
    let server = Server::start(Mode::Echo).await;
    let proxy = FaultProxy::start(server.addr, Faults::none()).unwrap();
    let addr = proxy.addr();
    let mut client = connected(&proxy).await;
    drop(proxy);
    let mut rest = Vec::new();
    // The end of the stream or a reset: either way, it ends.
    let _ = within("the connection ending", client.read_to_end(&mut rest)).await;
    assert!(rest.is_empty());
    within("the listener closing", async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn empty_ranges_are_refused() {
    let target: SocketAddr = ([127, 0, 0, 1], 9).into();
    for faults in [Faults::cutting(1, 5..5), Faults::none().chunked(0..4)] {
        let refused = FaultProxy::start(target, faults).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
    }
}
