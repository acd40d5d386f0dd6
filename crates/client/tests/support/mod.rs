//! Shared harness for the client's tests: a real hub on an ephemeral port,
//! a scripted stand-in hub for what the real one never does, and helpers
//! that wait with a deadline so that a broken test fails instead of hanging.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use chinwag_client::{Event, Events};
use chinwag_hub::protocol::{ClientFrame, HubCodec, PROTOCOL_VERSION, ServerFrame, Welcome};
use chinwag_hub::{Hub, HubConfig};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

/// How long a test waits for something it expects before failing. Generous:
/// the tests must pass on a loaded two-core machine; this only stops a
/// broken test from hanging.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}

/// An address nothing listens on: port 1 is privileged and unassigned on
/// the machines these tests run on. (A port freed by a stopped hub is no
/// good: a parallel test may bind it at once.)
pub const CLOSED_PORT: &str = "127.0.0.1:1";

pub struct TestHub {
    pub hub: Hub,
    pub addr: SocketAddr,
    server: JoinHandle<std::io::Result<()>>,
}

impl TestHub {
    pub async fn start() -> Self {
        Self::with_config(HubConfig::default()).await
    }

    pub async fn with_config(config: HubConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, config)
    }

    /// A hub on a given address, for restarts on the same port. The old
    /// listener is closed, but binding can still fail for a moment on a busy
    /// machine, so this retries until [`PATIENCE`] runs out.
    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = within("binding the same port again", async {
            loop {
                match TcpListener::bind(addr).await {
                    Ok(listener) => break listener,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        Self::serve(listener, HubConfig::default())
    }

    fn serve(listener: TcpListener, config: HubConfig) -> Self {
        let addr = listener.local_addr().unwrap();
        let hub = Hub::start(config);
        let server = tokio::spawn({
            let hub = hub.clone();
            async move { hub.serve(listener).await }
        });
        Self { hub, addr, server }
    }

    /// Shuts the hub down and waits until its listener is closed.
    pub async fn stop(self) {
        within("hub shutdown", self.hub.shutdown()).await;
        within("listener close", self.server)
            .await
            .unwrap()
            .unwrap();
    }

    /// Waits until `nick` is online.
    pub async fn wait_online(&self, nick: &str) {
        within(&format!("{nick} coming online"), async {
            loop {
                let roster = self.hub.roster().await.unwrap();
                if roster.iter().any(|n| n.eq_ignore_ascii_case(nick)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

/// The next event, failing the test if none comes in time.
pub async fn next_event(events: &mut Events) -> Event {
    within("next event", events.recv())
        .await
        .expect("events ended")
}

/// Skips events until `pick` returns `Some`.
pub async fn event_where<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    within("a matching event", async {
        loop {
            let event = events.recv().await.expect("events ended while waiting");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
}

/// A stand-in hub that accepts one client and lets the test script it frame
/// by frame: for what the real hub never sends (pings, unsolicited errors
/// and rosters) or never fails to send (pongs).
pub struct ScriptedHub {
    pub addr: SocketAddr,
    listener: TcpListener,
}

pub type ScriptedConn = Framed<TcpStream, HubCodec>;

impl ScriptedHub {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self {
            addr: listener.local_addr().unwrap(),
            listener,
        }
    }

    /// Accepts a client, reads its HELLO and welcomes it.
    pub async fn accept(&self) -> ScriptedConn {
        let (stream, _) = within("a client connecting", self.listener.accept())
            .await
            .unwrap();
        let mut conn = Framed::new(stream, HubCodec::default());
        let Some(Ok(ClientFrame::Hello(hello))) = within("HELLO", conn.next()).await else {
            panic!("expected HELLO");
        };
        let nick = String::from_utf8(hello.nick.to_vec()).unwrap();
        conn.send(ServerFrame::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            max_frame: 1024 * 1024,
            roster: vec![nick.clone()],
            nick,
            // This stand-in grants no options.
            options: hello.options.map(|_| 0),
        }))
        .await
        .unwrap();
        conn
    }
}

/// The next frame from the client, skipping none.
pub async fn next_frame(conn: &mut ScriptedConn) -> Option<ClientFrame> {
    within("a frame from the client", conn.next())
        .await
        .map(|frame| frame.unwrap())
}
