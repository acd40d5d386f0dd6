//! A TCP proxy that cuts connections: [`FaultProxy`] sits between clients
//! and a hub, copies bytes both ways, and cuts each connection after a
//! number of bytes drawn from a seeded generator, so that a test of
//! reconnection and resumed sessions meets cuts at every point of the
//! protocol (mid-frame too), not just between frames where a test would
//! think of putting them.
//!
//! The faults are reproducible: the cut points of a connection depend only
//! on the seed and the connection's number (its place in the order of
//! accepts, from 0), never on timing, so a failing seed fails again;
//! [`Faults::cut_points`] says in advance where a connection will be cut.
//!
//! A cut ends both halves of the connection at once, as a network failure
//! would, in one of two ways ([`Cut`]):
//!
//! - [`Cut::Fin`]: everything forwarded up to the cut point arrives, then
//!   both peers read the end of the stream. The proxy discards what they
//!   still send until they close (for at most [`LINGER`]), so that closing
//!   its sockets does not turn into a reset.
//! - [`Cut::Reset`]: the proxy resets both sockets (`SO_LINGER` 0): the
//!   peers read `ConnectionReset`, and bytes still in flight are lost.
//!
//! Besides the cuts of its own, [`FaultProxy::cut_all`] cuts every live
//! connection at once (a network blip), and dropping the proxy stops it:
//! its listener and every connection are closed.
//!
//! # How a test uses it
//!
//! The test starts the hub, puts a proxy in front of it and connects its
//! clients to [`FaultProxy::addr`] instead of the hub; a client that
//! reconnects after a cut goes through the proxy again and is cut again,
//! somewhere else. At the end, [`FaultProxy::cuts`] says how many cuts the
//! clients went through (a test that meant to exercise them can assert it
//! is not zero):
//!
//! ```no_run
//! use chinwag_testkit::{FaultProxy, Faults, TestHub};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let hub = TestHub::start().await;
//! // Cut each connection after 50 to 2,000 bytes in either direction,
//! // forwarding in pieces of 1 to 64 bytes so frames arrive split.
//! let proxy = FaultProxy::start(hub.addr, Faults::cutting(7, 50..2_000).chunked(1..64))?;
//! let client = chinwag_testkit::RawClient::connect(proxy.addr()).await;
//! // ... traffic, reconnections ...
//! proxy.cut_all(); // every connection at once
//! # drop(client);
//! assert!(proxy.cuts() > 0);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// How long a connection cut with [`Cut::Fin`] waits for its peers to
/// close their ends before the proxy closes its own regardless.
pub const LINGER: Duration = Duration::from_secs(10);

/// The first pause after accepting fails.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// The bytes read from a socket at a time.
const BUFFER: usize = 16 * 1024;

/// How a connection is cut: both halves at once, as a network failure
/// would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cut {
    /// The end of the stream (FIN), after everything up to the cut point;
    /// what the peers still send is read and discarded until they close
    /// (for [`LINGER`] at most), so that closing is not a reset.
    #[default]
    Fin,
    /// A reset (RST, `SO_LINGER` 0): the peers read `ConnectionReset`, and
    /// what was in flight is lost.
    Reset,
}

/// The faults a [`FaultProxy`] injects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Faults {
    /// The seed of every random choice.
    pub seed: u64,
    /// Each connection is cut as soon as either direction has forwarded
    /// its number of bytes, drawn uniformly from this range for each
    /// connection and direction ([`Faults::cut_points`]); `None`: only
    /// [`FaultProxy::cut_all`] cuts.
    pub cut_after: Option<Range<u64>>,
    /// How connections are cut.
    pub cut: Cut,
    /// Forwards what it reads in writes of this many bytes (drawn
    /// uniformly for each write), so that the peers receive frames in
    /// pieces; `None`: as read.
    pub chunks: Option<Range<usize>>,
}

impl Faults {
    /// No faults: the proxy forwards bytes as it reads them, and only
    /// [`FaultProxy::cut_all`] cuts.
    pub fn none() -> Self {
        Self::default()
    }

    /// Each connection cut with a FIN once `range` bytes (drawn from
    /// `seed`) have been forwarded in either direction.
    pub fn cutting(seed: u64, range: Range<u64>) -> Self {
        Self {
            seed,
            cut_after: Some(range),
            ..Self::default()
        }
    }

    /// The same faults, cutting with a reset.
    #[must_use]
    pub fn reset(self) -> Self {
        Self {
            cut: Cut::Reset,
            ..self
        }
    }

    /// The same faults, forwarding in writes of `range` bytes.
    #[must_use]
    pub fn chunked(self, range: Range<usize>) -> Self {
        Self {
            chunks: Some(range),
            ..self
        }
    }

    /// Where connection number `connection` (counting accepts from 0) will
    /// be cut in each direction; `None` if these faults do not cut.
    pub fn cut_points(&self, connection: u64) -> Option<CutPoints> {
        let range = self.cut_after.as_ref()?;
        let draw = |direction| {
            let mut rng = self.rng(connection, direction);
            range.start + rng.below(range.end - range.start)
        };
        Some(CutPoints {
            to_target: draw(Direction::ToTarget),
            to_client: draw(Direction::ToClient),
        })
    }

    /// The generator of one direction of one connection: the cut point is
    /// its first draw, the sizes of the writes the ones after.
    fn rng(&self, connection: u64, direction: Direction) -> Rng {
        let stream = connection.wrapping_mul(2).wrapping_add(direction as u64);
        Rng(self.seed ^ Rng(stream).next())
    }

    fn check(&self) -> io::Result<()> {
        let invalid = |what| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
        if self.cut_after.as_ref().is_some_and(Range::is_empty) {
            return invalid("Faults::cut_after is an empty range");
        }
        if let Some(chunks) = &self.chunks
            && (chunks.is_empty() || chunks.start == 0)
        {
            return invalid("Faults::chunks must be a non-empty range above 0");
        }
        Ok(())
    }
}

/// Where a connection is cut: after this many bytes in each direction,
/// whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutPoints {
    /// Bytes from the client to the target.
    pub to_target: u64,
    /// Bytes from the target to the client.
    pub to_client: u64,
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    ToTarget = 0,
    ToClient = 1,
}

/// splitmix64: the choices need to be reproducible and to differ, not to
/// be unpredictable.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `bound` (not zero), uniform up to a modulo bias no
    /// test can see.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// A number in `range` (not empty).
    fn within(&mut self, range: &Range<usize>) -> usize {
        range.start + self.below((range.end - range.start) as u64) as usize
    }
}

/// A TCP proxy on `127.0.0.1` that injects [`Faults`] into the
/// connections it forwards to a target (`proxy.rs` says how a test uses
/// it). Dropping it closes its listener and every connection through it.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The accept loop, which owns the connections' tasks: aborting it
    /// aborts them.
    accept: JoinHandle<()>,
}

/// What the proxy's tasks and its handle share.
#[derive(Debug, Default)]
struct Shared {
    accepted: AtomicU64,
    cuts: AtomicU64,
    /// The live connections by number, each with the way to cut it.
    live: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

impl Shared {
    fn live(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        // Nothing panics while holding it; if something did, the map is
        // still whole.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FaultProxy {
    /// Listens on an ephemeral port of `127.0.0.1` and proxies every
    /// connection accepted there to `target`.
    ///
    /// Fails if no port can be bound, or `faults` has an empty range.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn start(target: SocketAddr, faults: Faults) -> io::Result<Self> {
        faults.check()?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn(accept_loop(
            listener,
            target,
            Arc::new(faults),
            shared.clone(),
        ));
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections have been cut so far, by their own cut points
    /// or by [`cut_all`](Self::cut_all) (not those that ended by
    /// themselves).
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::Relaxed)
    }

    /// How many connections the proxy has accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// How many connections are live: accepted, and neither cut nor ended.
    pub fn live(&self) -> usize {
        self.shared.live().len()
    }

    /// Cuts every live connection at once, each as [`Faults::cut`] says;
    /// returns how many. The cuts happen on the connections' tasks, right
    /// after this returns: [`cuts`](Self::cuts) counts them as they do.
    pub fn cut_all(&self) -> usize {
        let live: Vec<_> = self.shared.live().drain().collect();
        let count = live.len();
        for (_, cut) in live {
            // Fails only if the connection has just ended by itself.
            let _ = cut.send(());
        }
        count
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Accepts connections and proxies each on a task of its own, kept in a
/// set that aborts them all when the loop is aborted. When accepting fails
/// (a connection reset in the backlog, no descriptors left), it tries again
/// after a pause that doubles up to a second, as the hub's own loop does.
async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    faults: Arc<Faults>,
    shared: Arc<Shared>,
) {
    let mut connections = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                };
                backoff = ACCEPT_BACKOFF;
                let number = shared.accepted.fetch_add(1, Ordering::Relaxed);
                let (cut, cut_now) = oneshot::channel();
                shared.live().insert(number, cut);
                let connection = Connection {
                    number,
                    faults: faults.clone(),
                    shared: shared.clone(),
                };
                connections.spawn(connection.run(client, target, cut_now));
            }
            // Finished connections leave the set (how each ended is for
            // its peers to see: a connection that fails is closed).
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One proxied connection.
struct Connection {
    number: u64,
    faults: Arc<Faults>,
    shared: Arc<Shared>,
}

/// How the copying of a connection ended.
enum End {
    /// Both peers closed their ends.
    Closed,
    /// A cut point was reached, or [`FaultProxy::cut_all`] cut.
    Cut,
    /// A socket failed; the other is reset too if it was reset.
    Failed(io::Error),
}

/// How one direction's copying ended.
enum Pumped {
    /// The source closed; the end was passed on.
    Ended,
    /// The cut point was reached.
    Cut,
}

impl Connection {
    async fn run(
        self,
        mut client: TcpStream,
        target: SocketAddr,
        cut_now: oneshot::Receiver<()>,
    ) -> io::Result<()> {
        let result = self.proxy(&mut client, target, cut_now).await;
        // Whatever happened, it is live no longer.
        self.shared.live().remove(&self.number);
        result
    }

    async fn proxy(
        &self,
        client: &mut TcpStream,
        target: SocketAddr,
        mut cut_now: oneshot::Receiver<()>,
    ) -> io::Result<()> {
        let mut target = TcpStream::connect(target).await?;
        // The proxy adds no delay of its own (and its pieces leave as
        // written).
        client.set_nodelay(true)?;
        target.set_nodelay(true)?;
        let points = self.faults.cut_points(self.number);
        let end = {
            let (mut client_read, mut client_write) = client.split();
            let (mut target_read, mut target_write) = target.split();
            let to_target = self.pump(
                &mut client_read,
                &mut target_write,
                Direction::ToTarget,
                points.map(|p| p.to_target),
            );
            let to_client = self.pump(
                &mut target_read,
                &mut client_write,
                Direction::ToClient,
                points.map(|p| p.to_client),
            );
            tokio::pin!(to_target, to_client);
            let (mut to_target_done, mut to_client_done) = (false, false);
            loop {
                let pumped = tokio::select! {
                    pumped = &mut to_target, if !to_target_done => {
                        to_target_done = true;
                        pumped
                    }
                    pumped = &mut to_client, if !to_client_done => {
                        to_client_done = true;
                        pumped
                    }
                    // From cut_all (its sender is dropped only once
                    // sent, or once this task ends).
                    _ = &mut cut_now => break End::Cut,
                };
                match pumped {
                    Ok(Pumped::Ended) if to_target_done && to_client_done => break End::Closed,
                    Ok(Pumped::Ended) => {}
                    Ok(Pumped::Cut) => break End::Cut,
                    Err(e) => break End::Failed(e),
                }
            }
        };
        match end {
            End::Closed => Ok(()),
            End::Cut => {
                self.shared.live().remove(&self.number);
                self.shared.cuts.fetch_add(1, Ordering::Relaxed);
                cut(self.faults.cut, client, &mut target).await
            }
            End::Failed(e) => {
                if e.kind() == io::ErrorKind::ConnectionReset {
                    client.set_zero_linger()?;
                    target.set_zero_linger()?;
                }
                Err(e)
            }
        }
    }

    /// Copies `from` to `to` until `from` ends (passing the end on), or
    /// `cut_after` bytes have been copied.
    async fn pump(
        &self,
        from: &mut ReadHalf<'_>,
        to: &mut WriteHalf<'_>,
        direction: Direction,
        cut_after: Option<u64>,
    ) -> io::Result<Pumped> {
        let mut rng = self.faults.rng(self.number, direction);
        // The cut point was its first draw.
        rng.next();
        let mut left = cut_after.unwrap_or(u64::MAX);
        let mut buffer = vec![0; BUFFER];
        loop {
            if left == 0 {
                return Ok(Pumped::Cut);
            }
            let read = from.read(&mut buffer).await?;
            if read == 0 {
                to.shutdown().await?;
                return Ok(Pumped::Ended);
            }
            let forward = read.min(usize::try_from(left).unwrap_or(usize::MAX));
            let mut bytes = &buffer[..forward];
            while !bytes.is_empty() {
                let piece = match &self.faults.chunks {
                    Some(chunks) => rng.within(chunks).min(bytes.len()),
                    None => bytes.len(),
                };
                to.write_all(&bytes[..piece]).await?;
                bytes = &bytes[piece..];
            }
            left -= forward as u64;
        }
    }
}

/// Cuts both halves of a connection, as `how` says.
async fn cut(how: Cut, client: &mut TcpStream, target: &mut TcpStream) -> io::Result<()> {
    match how {
        Cut::Reset => {
            // Dropping the sockets now sends the resets.
            client.set_zero_linger()?;
            target.set_zero_linger()
        }
        Cut::Fin => {
            // Both shut down before waiting on either; a peer that has
            // closed already makes its shutdown fail, which changes
            // nothing.
            let client_shut = client.shutdown().await;
            let target_shut = target.shutdown().await;
            // Unread bytes at close would make it a reset: read until both
            // peers close (or for LINGER at most).
            let (mut client_sink, mut target_sink) = (tokio::io::sink(), tokio::io::sink());
            let drained = tokio::time::timeout(LINGER, async {
                tokio::join!(
                    tokio::io::copy(client, &mut client_sink),
                    tokio::io::copy(target, &mut target_sink),
                )
            })
            .await;
            let _ = (client_shut, target_shut, drained);
            Ok(())
        }
    }
}
