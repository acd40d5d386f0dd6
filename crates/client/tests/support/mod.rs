//! Harness for the client's tests: what every harness shares comes from
//! `chinwag-testkit` (a real hub on an ephemeral port, waits with a
//! deadline so that a broken test fails instead of hanging); here are a
//! scripted stand-in hub for what the real one never does, and the client's
//! own events.

#![allow(dead_code, unreachable_pub, missing_docs, unused_imports)]

use std::net::SocketAddr;
use std::time::Duration;

use chinwag_client::{Event, Events};
use chinwag_hub::protocol::{ClientFrame, Hello, HubCodec, PROTOCOL_VERSION, ServerFrame, Welcome};
use chinwag_hub::store::StoreConfig;
use chinwag_hub::{Hub, HubConfig, Storage};
use futures::{SinkExt, StreamExt};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

pub use chinwag_testkit::{PATIENCE, TestHub, within};

/// An address nothing listens on: port 1 is privileged and unassigned on
/// the machines these tests run on. (A port freed by a stopped hub is no
/// good: a parallel test may bind it at once.)
pub const CLOSED_PORT: &str = "127.0.0.1:1";

/// A hub on a given address, for restarts on the same port. The old
/// listener is closed, but binding can still fail for a moment on a busy
/// machine, so this retries until [`PATIENCE`] runs out.
pub async fn start_on(addr: SocketAddr) -> TestHub {
    let listener = within("binding the same port again", async {
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    TestHub::serve(listener, HubConfig::default())
}

/// A hub keeping accounts and mailboxes in a store in `dir`.
pub async fn hub_with_store(dir: &TempDir) -> TestHub {
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    TestHub::with_store(HubConfig::default(), store).await
}

/// A hub keeping accounts and mailboxes in the store in `dir`, on `addr`
/// (where an earlier one, now shut down, listened), retrying the bind as
/// [`start_on`] does.
pub async fn restart_with_store(addr: SocketAddr, dir: &TempDir) -> TestHub {
    let listener = within("binding the same port again", async {
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    let store = TestHub::open_store(StoreConfig::new(dir.path())).await;
    let hub = Hub::start_with_storage(HubConfig::default(), Storage::sqlite(store))
        .await
        .unwrap();
    let server = tokio::spawn({
        let hub = hub.clone();
        async move { hub.serve(listener).await }
    });
    TestHub { hub, addr, server }
}

/// The next event, failing the test if none comes in time.
pub async fn next_event(events: &mut Events) -> Event {
    within("next event", events.recv())
        .await
        .expect("events ended")
}

/// The next event but the table of users that follows `WELCOME` (or any
/// other `Event::Users`), for tests about something else.
pub async fn next_event_after_table(events: &mut Events) -> Event {
    event_where(events, |event| match event {
        Event::Users(_) => None,
        event => Some(event),
    })
    .await
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
        // This stand-in grants no options unless told to.
        self.accept_granting(0).await
    }

    /// Accepts a client, reads its HELLO and welcomes it, granting the
    /// options it asked for among `grant`.
    pub async fn accept_granting(&self, grant: u32) -> ScriptedConn {
        let (mut conn, hello) = self.accept_hello().await;
        welcome(&mut conn, &hello, grant).await;
        conn
    }

    /// Accepts a client and reads its first frame, which must be HELLO;
    /// the test answers it.
    pub async fn accept_hello(&self) -> (ScriptedConn, Hello) {
        let mut conn = self.accept_raw().await;
        let Some(ClientFrame::Hello(hello)) = next_frame(&mut conn).await else {
            panic!("expected HELLO");
        };
        (conn, hello)
    }

    /// Accepts a client; the test reads its frames.
    pub async fn accept_raw(&self) -> ScriptedConn {
        let (stream, _) = within("a client connecting", self.listener.accept())
            .await
            .unwrap();
        Framed::new(stream, HubCodec::default())
    }
}

/// Welcomes the client that sent `hello`, granting what it asked for among
/// `grant`.
pub async fn welcome(conn: &mut ScriptedConn, hello: &Hello, grant: u32) {
    let nick = String::from_utf8(hello.nick.to_vec()).unwrap();
    conn.send(ServerFrame::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        max_frame: 1024 * 1024,
        roster: vec![nick.clone()],
        nick,
        options: hello.options.map(|asked| asked & grant),
    }))
    .await
    .unwrap();
}

/// Sends `frames` to the client, in order.
pub async fn send_all(conn: &mut ScriptedConn, frames: impl IntoIterator<Item = ServerFrame>) {
    for frame in frames {
        conn.send(frame).await.unwrap();
    }
}

/// The next frame from the client that is not a keepalive.
pub async fn next_request(conn: &mut ScriptedConn) -> ClientFrame {
    loop {
        match next_frame(conn).await {
            Some(ClientFrame::Ping(_)) => {}
            Some(frame) => return frame,
            None => panic!("the client closed the connection"),
        }
    }
}

/// The next frame from the client, skipping none.
pub async fn next_frame(conn: &mut ScriptedConn) -> Option<ClientFrame> {
    within("a frame from the client", conn.next())
        .await
        .map(|frame| frame.unwrap())
}
