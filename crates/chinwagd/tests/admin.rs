//! The daemon's admin endpoint (`--admin-listen`), scraped over HTTP while
//! clients talk through the daemon: readiness, the metrics and the table
//! of connections agree with what the test did, and a wedged actor fails
//! `/healthz`.

mod support;

use std::net::SocketAddr;

use chinwag_testkit::{RawClient, send, within};
use support::Daemon;

const ADMIN: &str = "chinwagd admin endpoint on http://";

/// `GET path`: status and body.
async fn get(admin: SocketAddr, path: &str) -> (u16, String) {
    chinwag_testkit::http_get(admin, path).await
}

async fn start(dir: &std::path::Path, args: &[&str]) -> (Daemon, SocketAddr, SocketAddr) {
    let mut all = vec!["--admin-listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut daemon = Daemon::start(dir, &all);
    let addr = daemon.up().await;
    let admin = daemon.line_after(ADMIN).await;
    let admin = admin.parse().expect("the admin endpoint's address");
    (daemon, addr, admin)
}

/// Waits for `/readyz` to say ready: the endpoint is up (and says
/// "starting") before the daemon's last listener is, so a loaded machine
/// may ask before then. Any other answer fails.
async fn until_ready(admin: SocketAddr) {
    chinwag_testkit::guard(chinwag_testkit::PATIENCE, "/readyz to say ready", async {
        loop {
            match get(admin, "/readyz").await {
                (200, body) => return assert_eq!(body, "ready\n"),
                (503, body) if body == "not ready: starting\n" => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                other => panic!("/readyz answered {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn the_admin_endpoint_shows_the_daemon_ready_and_its_traffic() {
    let dir = tempfile::tempdir().expect("a directory");
    let (daemon, addr, admin) = start(dir.path(), &[]).await;
    until_ready(admin).await;
    assert_eq!(get(admin, "/healthz").await, (200, "ok\n".to_owned()));

    let mut bob = RawClient::connect(addr).await.registered("bob").await;
    let mut alice = RawClient::connect(addr).await.registered("alice").await;
    for id in 1..=3 {
        alice.send(send(id, &["bob"], "through chinwagd")).await;
        alice.expect_ack(id).await;
        bob.expect_message().await;
    }
    let (status, text) = get(admin, "/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        "chinwag_ready 1\n",
        "chinwag_users_online 2\n",
        "chinwag_messages_routed_total 3\n",
        "chinwag_messages_delivered_total 3\n",
        "chinwag_store_writable 1\n",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (status, connz) = get(admin, "/connz?sort=msgs_from").await;
    assert_eq!(status, 200);
    let connz: serde_json::Value = serde_json::from_str(&connz).expect("JSON");
    assert_eq!(connz["total"], 2);
    assert_eq!(connz["connections"][0]["nick"], "alice");
    assert_eq!(connz["connections"][0]["in_msgs"], 3);
    assert_eq!(connz["connections"][1]["nick"], "bob");
    assert_eq!(connz["connections"][1]["out_msgs"], 3);
    let status = daemon.terminate().await;
    assert_eq!(status.code(), Some(0), "{status}");
}

#[tokio::test]
async fn a_wedged_actor_fails_healthz() {
    let dir = tempfile::tempdir().expect("a directory");
    let (_daemon, _addr, admin) = start(dir.path(), &["--test-wedge-actor-after", "1s"]).await;
    assert_eq!(get(admin, "/healthz").await.0, 200);
    within("/healthz to fail once the actor is wedged", async {
        loop {
            let (status, body) = get(admin, "/healthz").await;
            if status == 503 {
                assert_eq!(body, "the hub's actor did not answer in time\n");
                break;
            }
        }
    })
    .await;
}
