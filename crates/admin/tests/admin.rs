//! The admin endpoint over real sockets: a hub on TCP with a store on disk,
//! raw protocol clients sending known traffic, and the endpoint scraped
//! with an HTTP client as Prometheus or an operator would. The text of
//! `/metrics` is checked by the Prometheus project's own `OpenMetrics` parser
//! (Python's `prometheus_client`, from Debian's `python3-prometheus-client`,
//! which `.ci/run` installs); where it is missing the check says so and is
//! skipped.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use chinwag_admin::Readiness;
use chinwag_hub::protocol::Code;
use chinwag_hub::store::{AccountStore, NewAccount, Store, StoreConfig};
use chinwag_hub::{HubConfig, hash_password};
use chinwag_testkit::{RawClient, TestHub, encode_frames, hello, send};
use serde_json::Value;
use tokio::net::TcpListener;

/// A hub on TCP with a store in `dir`, holding an account for each of
/// `accounts`, and its admin endpoint.
async fn hub_with_admin(
    dir: &std::path::Path,
    accounts: &[&str],
) -> (TestHub, Store, SocketAddr, Readiness) {
    let store = TestHub::open_store(StoreConfig::new(dir)).await;
    for nick in accounts {
        let password_hash = hash_password("correct horse").expect("a hash");
        store
            .create_account(NewAccount {
                nick: (*nick).to_owned(),
                password_hash,
                created_ms: 1_700_000_000_000,
            })
            .expect("handed over")
            .await
            .expect("created");
    }
    let hub = TestHub::with_store(HubConfig::default(), store.clone()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let admin = listener.local_addr().expect("an address");
    let readiness = Readiness::default();
    readiness.set_ready(true);
    tokio::spawn(chinwag_admin::serve(
        listener,
        hub.hub.clone(),
        readiness.clone(),
    ));
    (hub, store, admin, readiness)
}

/// `GET path` on the admin endpoint: status and body.
async fn get(admin: SocketAddr, path: &str) -> (u16, String) {
    chinwag_testkit::http_get(admin, path).await
}

/// Checks `text` with the `OpenMetrics` parser of the Prometheus project's
/// Python client, which rejects what Prometheus would (names, types, units,
/// histogram buckets that do not add up, a missing `# EOF`). Skips, saying
/// so, where it is not installed.
fn validate_openmetrics(text: &str) {
    const SCRIPT: &str = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
        families = list(parse(sys.stdin.read()))\n\
        print(len(families))\n";
    let probe = Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|status| status.success()) {
        eprintln!(
            "SKIPPED: the `OpenMetrics` check needs /usr/bin/python3 with prometheus_client \
             (apt install python3-prometheus-client); the figures are still checked"
        );
        return;
    }
    let mut parser = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    parser
        .stdin
        .take()
        .expect("a pipe")
        .write_all(text.as_bytes())
        .expect("the text reaches the parser");
    let output = parser.wait_with_output().expect("the parser ends");
    assert!(
        output.status.success(),
        "the `OpenMetrics` parser rejected /metrics: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every sample of an `OpenMetrics` text: `name{labels}` to value.
fn samples(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The value of a counter, gauge or count sample.
fn sample(samples: &HashMap<String, String>, name: &str) -> u64 {
    let value = samples
        .get(name)
        .unwrap_or_else(|| panic!("no sample {name} in {samples:?}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a whole number: {value}"))
}

#[tokio::test]
async fn metrics_count_the_traffic_sent_and_parse_as_openmetrics() {
    let dir = tempfile::tempdir().expect("a directory");
    let (hub, _store, admin, _readiness) = hub_with_admin(dir.path(), &["carol"]).await;
    let mut bob = hub.register("bob").await;
    // Alice's bytes are counted as the test writes them: her HELLO and
    // every SEND.
    let mut alice = RawClient::connect(hub.addr).await;
    let hello_bytes = encode_frames(&[hello("alice")]);
    alice.send_raw(&hello_bytes).await;
    alice.expect_welcome().await;
    let mut frames = Vec::new();
    for id in 1..=10 {
        frames.push(send(id, &["bob"], format!("live {id}")));
    }
    for id in 11..=13 {
        frames.push(send(id, &["nobody"], "lost"));
    }
    for id in 14..=15 {
        // Carol has an account and is offline: stored.
        frames.push(send(id, &["carol"], "for later"));
    }
    let sends = encode_frames(&frames);
    alice.send_raw(&sends).await;
    for id in 1..=15 {
        alice.expect_ack(id).await;
    }
    for _ in 1..=10 {
        bob.expect_message().await;
    }

    let (status, text) = get(admin, "/metrics").await;
    assert_eq!(status, 200);
    validate_openmetrics(&text);
    let samples = samples(&text);
    assert_eq!(sample(&samples, "chinwag_messages_routed_total"), 15);
    assert_eq!(sample(&samples, "chinwag_messages_delivered_total"), 10);
    assert_eq!(sample(&samples, "chinwag_messages_stored_total"), 2);
    assert_eq!(
        sample(
            &samples,
            "chinwag_messages_refused_total{reason=\"no_such_user\"}"
        ),
        3
    );
    assert_eq!(sample(&samples, "chinwag_connections"), 2);
    assert_eq!(sample(&samples, "chinwag_users_online"), 2);
    assert_eq!(sample(&samples, "chinwag_accounts"), 1);
    assert_eq!(sample(&samples, "chinwag_ready"), 1);
    assert_eq!(sample(&samples, "chinwag_store_writable"), 1);
    assert!(sample(&samples, "chinwag_store_commit_seconds_count") >= 1);
    assert!(sample(&samples, "chinwag_store_disk_bytes") > 0);
    assert!(sample(&samples, "chinwag_routing_latency_seconds_count") >= 1);

    // Bytes in: exactly what the two clients wrote. Bob wrote his HELLO.
    let bob_hello = encode_frames(&[hello("bob")]);
    let written_by_clients = hello_bytes.len() + sends.len() + bob_hello.len();
    assert_eq!(
        sample(&samples, "chinwag_read_bytes_total"),
        written_by_clients as u64
    );
    assert!(sample(&samples, "chinwag_written_bytes_total") > 0);

    // /connz agrees, per connection.
    let (status, body) = get(admin, "/connz").await;
    assert_eq!(status, 200);
    let connz: Value = serde_json::from_str(&body).expect("JSON");
    let by_nick = |nick: &str| {
        connz["connections"]
            .as_array()
            .expect("a list")
            .iter()
            .find(|entry| entry["nick"] == nick)
            .unwrap_or_else(|| panic!("{nick} in {connz}"))
            .clone()
    };
    let (alice_entry, bob_entry) = (by_nick("alice"), by_nick("bob"));
    assert_eq!(alice_entry["in_msgs"], 15);
    assert_eq!(alice_entry["out_msgs"], 0);
    assert_eq!(alice_entry["in_bytes"], hello_bytes.len() + sends.len());
    assert_eq!(bob_entry["in_msgs"], 0);
    assert_eq!(bob_entry["out_msgs"], 10);
    assert_eq!(alice_entry["protocol"], "binary");
    assert!(
        alice_entry["peer"]
            .as_str()
            .is_some_and(|peer| peer.starts_with("127.0.0.1:")),
        "{alice_entry}"
    );
    hub.hub.shutdown().await;
}

#[tokio::test]
async fn bytes_of_connections_that_left_stay_in_the_totals() {
    let dir = tempfile::tempdir().expect("a directory");
    let (hub, _store, admin, _readiness) = hub_with_admin(dir.path(), &[]).await;
    let mut gone = RawClient::connect(hub.addr).await;
    let hello_bytes = encode_frames(&[hello("gone")]);
    gone.send_raw(&hello_bytes).await;
    gone.expect_welcome().await;
    drop(gone);
    hub.wait_offline("gone").await;
    let mut total = 0;
    chinwag_testkit::within("the meter leaving the table", async {
        loop {
            let (_, text) = get(admin, "/metrics").await;
            let samples = samples(&text);
            if sample(&samples, "chinwag_connections") == 0 {
                total = sample(&samples, "chinwag_read_bytes_total");
                break;
            }
        }
    })
    .await;
    assert_eq!(total, hello_bytes.len() as u64);
    hub.hub.shutdown().await;
}

#[tokio::test]
async fn connz_pages_and_sorts_like_nats() {
    let dir = tempfile::tempdir().expect("a directory");
    let (hub, _store, admin, _readiness) = hub_with_admin(dir.path(), &[]).await;
    let mut quiet = hub.register("quiet").await;
    let mut busy = hub.register("busy").await;
    let mut middle = hub.register("middle").await;
    for id in 1..=5 {
        busy.send(send(id, &["quiet"], "x")).await;
        busy.expect_ack(id).await;
    }
    for id in 1..=2 {
        middle.send(send(id, &["quiet"], "y")).await;
        middle.expect_ack(id).await;
    }
    for _ in 0..7 {
        quiet.expect_message().await;
    }
    let nicks = |body: &str| -> Vec<String> {
        let connz: Value = serde_json::from_str(body).expect("JSON");
        connz["connections"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|entry| entry["nick"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let (_, body) = get(admin, "/connz").await;
    assert_eq!(
        nicks(&body),
        ["quiet", "busy", "middle"],
        "by id: order of arrival"
    );
    let (_, body) = get(admin, "/connz?sort=msgs_from").await;
    assert_eq!(nicks(&body), ["busy", "middle", "quiet"]);
    let (_, body) = get(admin, "/connz?sort=msgs_to").await;
    assert_eq!(nicks(&body)[0], "quiet");
    let (_, body) = get(admin, "/connz?sort=nick").await;
    assert_eq!(nicks(&body), ["busy", "middle", "quiet"]);
    let (_, body) = get(admin, "/connz?sort=msgs_from&offset=1&limit=1").await;
    assert_eq!(nicks(&body), ["middle"]);
    let page: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(page["total"], 3);
    assert_eq!(page["num_connections"], 1);
    assert_eq!(
        (page["offset"].clone(), page["limit"].clone()),
        (1.into(), 1.into())
    );

    let (status, body) = get(admin, "/connz?sort=loudest").await;
    assert_eq!(status, 400);
    assert!(body.contains("msgs_from"), "names the choices: {body}");
    let (status, _) = get(admin, "/connz?limit=-1").await;
    assert_eq!(status, 400);
    hub.hub.shutdown().await;
}

#[tokio::test]
async fn readyz_says_starting_ready_and_draining_and_healthz_follows_the_actor() {
    let dir = tempfile::tempdir().expect("a directory");
    let (hub, _store, admin, readiness) = hub_with_admin(dir.path(), &[]).await;
    readiness.set_ready(false);
    assert_eq!(
        get(admin, "/readyz").await,
        (503, "not ready: starting\n".to_owned())
    );
    readiness.set_ready(true);
    assert_eq!(get(admin, "/readyz").await, (200, "ready\n".to_owned()));
    assert_eq!(get(admin, "/healthz").await, (200, "ok\n".to_owned()));
    // A client that stays keeps the drain going while we look.
    let _client = hub.register("stays").await;
    hub.hub.begin_shutdown();
    assert_eq!(
        get(admin, "/readyz").await,
        (503, "not ready: draining\n".to_owned())
    );
    hub.hub.shutdown().await;
    let (status, body) = get(admin, "/healthz").await;
    assert_eq!((status, body.as_str()), (503, "the hub has shut down\n"));
}

#[tokio::test]
async fn a_store_that_cannot_write_takes_the_hub_out_of_readyz_until_it_can() {
    let dir = tempfile::tempdir().expect("a directory");
    let (hub, store, admin, _readiness) = hub_with_admin(dir.path(), &["carol"]).await;
    let mut alice = hub.register("alice").await;
    // As a full disk, to SQLite.
    store
        .set_max_db_bytes(Some(1))
        .expect("handed over")
        .await
        .expect("set");
    let big = "x".repeat(60_000);
    let mut id = 0;
    loop {
        id += 1;
        assert!(id < 50, "a full disk fails a store");
        alice.send(send(id, &["carol"], big.as_str())).await;
        let ack = alice.expect_ack(id).await;
        if ack.statuses[0].status == Code::STORE_FAILED {
            break;
        }
    }
    assert_eq!(
        get(admin, "/readyz").await,
        (503, "not ready: the store cannot write\n".to_owned())
    );
    let (_, text) = get(admin, "/metrics").await;
    let figures = samples(&text);
    assert_eq!(sample(&figures, "chinwag_store_writable"), 0);
    assert!(sample(&figures, "chinwag_store_failed_commits_total") >= 1);
    assert_eq!(
        sample(
            &figures,
            "chinwag_messages_refused_total{reason=\"store_failed\"}"
        ),
        1
    );

    store
        .set_max_db_bytes(None)
        .expect("handed over")
        .await
        .expect("set");
    alice.send(send(1000, &["carol"], "room again")).await;
    alice.expect_ack(1000).await;
    assert_eq!(get(admin, "/readyz").await, (200, "ready\n".to_owned()));
    hub.hub.shutdown().await;
}
