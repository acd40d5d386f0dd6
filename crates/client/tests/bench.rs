//! `chinwag bench` as a black box: each workload, small, against a hub
//! started in the test, with every delivery checked by the bench itself and
//! its JSON report checked here. Nothing here asserts speed.

mod support;

use std::process::{Output, Stdio};
use std::time::Duration;

use chinwag_client::protocol::ServerFrame;
use chinwag_hub::HubConfig;
use chinwag_hub::store::StoreConfig;

use serde_json::Value;
use support::{TestHub, within};
use tokio::process::Command;

/// Runs `chinwag --server ADDR bench ARGS... --json` to completion.
async fn bench(hub: &TestHub, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chinwag"));
    command
        .arg("--server")
        .arg(hub.addr.to_string())
        .arg("bench")
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    within("chinwag bench to finish", command.output())
        .await
        .unwrap()
}

/// The one JSON object a successful run prints.
fn report(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object: {stdout}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Nothing lost, duplicated, out of order or otherwise wrong.
fn assert_clean(report: &Value, expected: u64) {
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["failures"], serde_json::json!([]), "{report}");
    assert_eq!(report["expected"], expected, "{report}");
    assert_eq!(report["delivered"], expected, "{report}");
    for zero in [
        "lost",
        "duplicated",
        "out_of_order",
        "corrupt",
        "bad_acks",
        "hub_errors",
        "connections_cut",
    ] {
        assert_eq!(report[zero], 0, "{zero}: {report}");
    }
    assert!(
        report["cpu"]["wall_s"].as_f64().is_some_and(|s| s > 0.0),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_message_to_every_subscriber() {
    let hub = TestHub::start().await;
    // The hub runs in this process, so this process is the server to read.
    let pid = std::process::id().to_string();
    let args = [
        "fanout",
        "--subscribers",
        "5",
        "--messages",
        "2000",
        "--size",
        "64",
        "--server-pid",
        &pid,
    ];
    let report = report(&bench(&hub, &args).await);
    assert_eq!(report["workload"], "fanout");
    assert_clean(&report, 5 * 2000);
    assert_eq!(report["sent"], 2000);
    assert_eq!(report["acks"], 2000);
    assert_eq!(report["all_ready"], true);
    assert!(
        report["deliveries_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{report}"
    );
    assert_eq!(report["latency"]["samples"], 5 * 2000, "{report}");
    assert!(
        report["server_rss_kb"].as_u64().is_some_and(|kb| kb > 0),
        "{report}"
    );
    assert!(report["cpu"]["server_cpu_s"].as_f64().is_some(), "{report}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_pairs_each_get_all_their_partners_messages() {
    let hub = TestHub::start().await;
    let report = report(&bench(&hub, &["direct", "--pairs", "3", "--messages", "1000"]).await);
    assert_eq!(report["workload"], "direct");
    assert_clean(&report, 2 * 3 * 1000);
    assert_eq!(report["sent"], 2 * 3 * 1000);
    assert_eq!(report["acks"], 2 * 3 * 1000);
    assert!(
        report["messages_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{report}"
    );
    // Without --server-pid there is nothing to say about the server.
    assert_eq!(report["server_rss_kb"], Value::Null);
    // Without --receipts, no receipt figures.
    for absent in ["receipts", "receipts_per_s", "receipt_latency", "confirmed"] {
        assert!(report.get(absent).is_none(), "{absent}: {report}");
    }
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_with_receipts_gets_a_receipt_for_every_message() {
    let hub = TestHub::start().await;
    let args = ["direct", "--pairs", "2", "--messages", "200", "--receipts"];
    let report = report(&bench(&hub, &args).await);
    assert_eq!(report["workload"], "direct");
    assert_clean(&report, 2 * 2 * 200);
    assert_eq!(report["acks"], 2 * 2 * 200);
    assert_eq!(report["receipts_expected"], 2 * 2 * 200, "{report}");
    assert_eq!(report["receipts"], 2 * 2 * 200, "{report}");
    assert_eq!(report["confirmed"], 2 * 2 * 200, "{report}");
    assert_eq!(report["bad_receipts"], 0, "{report}");
    assert!(
        report["receipts_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{report}"
    );
    // Sequence numbers 0, 16, ..., 192 of each of the 4 senders.
    let latency = &report["receipt_latency"];
    assert_eq!(latency["samples"], 4 * 13, "{report}");
    let p50 = latency["p50_us"].as_f64().unwrap();
    let p99 = latency["p99_us"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99, "{report}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_records_all_but_the_warm_up_second() {
    let hub = TestHub::start().await;
    let args = [
        "latency",
        "--subscribers",
        "3",
        "--rate",
        "500",
        "--duration",
        "2",
    ];
    let report = report(&bench(&hub, &args).await);
    assert_eq!(report["workload"], "latency");
    assert_clean(&report, 3 * 1000);
    assert_eq!(report["sent"], 1000);
    // Messages 500.. (the second second) are recorded at each subscriber.
    assert_eq!(report["latency"]["samples"], 3 * 500, "{report}");
    let latency = &report["latency"];
    let p50 = latency["p50_us"].as_f64().unwrap();
    let p99 = latency["p99_us"].as_f64().unwrap();
    let max = latency["max_us"].as_f64().unwrap();
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{report}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conns_holds_idle_connections() {
    let hub = TestHub::start().await;
    let report = report(&bench(&hub, &["conns", "--count", "50", "--source-ips", "2"]).await);
    assert_eq!(report["workload"], "conns");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["held"], 50);
    assert_eq!(report["connections_cut"], 0);
    assert_eq!(report["hub_errors"], 0);
    assert_eq!(report["settle"], "no-server-pid");
    assert_eq!(report["server_bytes_per_conn"], Value::Null);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conns_without_presence_holds_connections_that_hear_of_no_one() {
    let hub = TestHub::start().await;
    // One user who follows presence sees all of them arrive.
    let mut watcher = hub.hub.attach("watcher").await.unwrap();
    let report = report(&bench(&hub, &["conns", "--count", "30", "--no-presence"]).await);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["presence"], false);
    assert_eq!(report["held"], 30);
    assert_eq!(report["hub_errors"], 0);
    let mut arrivals = 0;
    while arrivals < 30 {
        let frame = tokio::time::timeout(Duration::from_secs(20), watcher.recv())
            .await
            .expect("arrivals in time")
            .expect("the watcher's session is open");
        if matches!(frame, ServerFrame::Presence(p) if p.online) {
            arrivals += 1;
        }
    }
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_nickname_is_a_setup_error() {
    let hub = TestHub::start().await;
    // Someone already holds the publisher's nickname.
    let _squatter = hub.hub.attach("pub").await.unwrap();
    let output = bench(&hub, &["fanout", "--subscribers", "2", "--messages", "10"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused pub"), "{stderr}");
    assert!(output.stdout.is_empty());
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_user_online_fails_the_ack_check() {
    let hub = TestHub::start().await;
    // A broadcast reaches this extra user too, so every ack counts one
    // recipient more than the bench expects.
    let mut extra = hub.hub.attach("lurker").await.unwrap();
    let drain = tokio::spawn(async move { while extra.recv().await.is_some() {} });
    let output = bench(&hub, &["fanout", "--subscribers", "2", "--messages", "100"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("acks wrong"), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["bad_acks"], 100);
    assert_eq!(report["lost"], 0);
    drain.abort();
    hub.shutdown().await;
}

/// A hub keeping accounts and mailboxes in a store opened with `store`.
async fn hub_with_store(store: StoreConfig) -> TestHub {
    let store = TestHub::open_store(store).await;
    TestHub::with_store(HubConfig::default(), store).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_gets_every_message_stored_and_drains_the_mailboxes() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_store(StoreConfig::new(dir.path())).await;
    let args = [
        "store",
        "--senders",
        "4",
        "--messages",
        "402",
        "--size",
        "256",
        "--recipients",
        "3",
        "--window",
        "8",
    ];
    let first = report(&bench(&hub, &args).await);
    assert_eq!(first["workload"], "store");
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(first["failures"], serde_json::json!([]), "{first}");
    assert_eq!(first["accounts_created"], 3, "{first}");
    assert_eq!(first["accounts_existing"], 0, "{first}");
    for (field, count) in [("sent", 402), ("acks", 402), ("stored", 402)] {
        assert_eq!(first[field], count, "{field}: {first}");
    }
    for zero in [
        "mailbox_full",
        "store_failed",
        "other_status",
        "out_of_order",
        "hub_errors",
        "connections_cut",
        "leftovers",
        "missing",
    ] {
        assert_eq!(first[zero], 0, "{zero}: {first}");
    }
    // Every data message, and each sender's warm-up message, was in a
    // mailbox and confirmed.
    assert_eq!(first["drained_this_run"], 402, "{first}");
    assert_eq!(first["confirmed"], 402 + 4, "{first}");
    assert_eq!(first["latency"]["samples"], 402, "{first}");
    assert!(
        first["stored_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{first}"
    );

    // Drained, the same accounts take a second run.
    let again = report(&bench(&hub, &args).await);
    assert_eq!(again["ok"], true, "{again}");
    assert_eq!(again["accounts_created"], 0, "{again}");
    assert_eq!(again["accounts_existing"], 3, "{again}");
    assert_eq!(again["stored"], 402, "{again}");
    assert_eq!(again["leftovers"], 0, "{again}");
    assert_eq!(again["drained_this_run"], 402, "{again}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reliable_gets_every_message_and_receipt_and_leaves_no_account() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_store(StoreConfig::new(dir.path())).await;
    let args = ["direct", "--pairs", "2", "--messages", "200", "--reliable"];
    let first = report(&bench(&hub, &args).await);
    assert_eq!(first["workload"], "direct");
    assert_eq!(first["reliable"], true, "{first}");
    assert_clean(&first, 2 * 2 * 200);
    assert_eq!(first["acks"], 2 * 2 * 200);
    assert_eq!(first["receipts_expected"], 2 * 2 * 200, "{first}");
    assert_eq!(first["receipts"], 2 * 2 * 200, "{first}");
    assert_eq!(first["bad_receipts"], 0, "{first}");
    // Every data message confirmed, and the warm-up messages too.
    assert!(
        first["confirmed"].as_u64().is_some_and(|n| n > 2 * 2 * 200),
        "{first}"
    );
    // Sequence numbers 0, 16, ..., 192 of each of the 4 senders, to the
    // receipt and to the ack.
    for field in ["receipt_latency", "ack_latency"] {
        let latency = &first[field];
        assert_eq!(latency["samples"], 4 * 13, "{field}: {first}");
        let p50 = latency["p50_us"].as_f64().unwrap();
        let p99 = latency["p99_us"].as_f64().unwrap();
        assert!(0.0 < p50 && p50 <= p99, "{field}: {first}");
    }
    // Every receipt confirmed, the warm-up messages' too.
    assert!(
        first["receipts_confirmed"]
            .as_u64()
            .is_some_and(|n| n > 2 * 2 * 200),
        "{first}"
    );
    assert_eq!(first["accounts_created"], 4, "{first}");
    assert_eq!(first["accounts_replaced"], 0, "{first}");
    assert_eq!(first["accounts_deleted"], 4, "{first}");

    // Paced, on the same store: the accounts were deleted, so are created
    // again, empty.
    let paced = [
        "direct",
        "--pairs",
        "2",
        "--messages",
        "200",
        "--reliable",
        "--rate",
        "800",
    ];
    let again = report(&bench(&hub, &paced).await);
    assert_clean(&again, 2 * 2 * 200);
    assert_eq!(again["rate"], 800, "{again}");
    assert_eq!(again["receipts"], 2 * 2 * 200, "{again}");
    assert_eq!(again["accounts_created"], 4, "{again}");
    assert_eq!(again["accounts_replaced"], 0, "{again}");
    // 800 messages at 800 a second: about a second.
    let elapsed = again["elapsed_s"].as_f64().unwrap();
    assert!(elapsed > 0.9, "{again}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reliable_needs_a_hub_with_accounts() {
    // No store: the accounts cannot be created, a setup error.
    let hub = TestHub::start().await;
    let output = bench(
        &hub,
        &["direct", "--pairs", "1", "--messages", "10", "--reliable"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bench-rel-"), "{stderr}");
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_counts_a_full_mailbox_as_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_store(StoreConfig {
        mailbox_max_messages: 50,
        ..StoreConfig::new(dir.path())
    })
    .await;
    let args = [
        "store",
        "--senders",
        "2",
        "--messages",
        "100",
        "--recipients",
        "1",
        "--keep",
    ];
    let output = bench(&hub, &args).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("MAILBOX_FULL"), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    // The two warm-up messages took two places of the fifty.
    assert_eq!(report["stored"], 48, "{report}");
    assert_eq!(report["mailbox_full"], 52, "{report}");
    assert_eq!(report["acks"], 100, "{report}");
    // Kept: no drain.
    assert_eq!(report["confirmed"], Value::Null, "{report}");
    hub.shutdown().await;
}

/// `chinwag --tls --ca CA bench ...` against the hub's TLS port (and only
/// that one: a bench that ignored `--tls` would send plain `HELLO`s there
/// and be closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_and_direct_run_over_tls() {
    let hub = TestHub::start().await;
    let certs = chinwag_testkit::TestCerts::new(1);
    let tls = chinwag_hub::TlsAcceptor::from_pem_files(&certs.cert, &certs.key).unwrap();
    let listener = chinwag_hub::bind_tcp(([127, 0, 0, 1], 0).into()).unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn({
        let hub = hub.hub.clone();
        async move { hub.serve_tls(listener, tls).await }
    });
    let over_tls = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chinwag"));
        command
            .args(["--tls", "--ca"])
            .arg(&certs.ca)
            .args(["--server", &addr.to_string(), "bench"])
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        within("chinwag --tls bench to finish", command.output())
    };
    let fanout = ["fanout", "--subscribers", "10", "--messages", "20000"];
    let report_of = report(&over_tls(&fanout).await.unwrap());
    assert_eq!(report_of["workload"], "fanout");
    assert_clean(&report_of, 10 * 20000);
    let direct = ["direct", "--pairs", "4", "--messages", "20000"];
    let report_of = report(&over_tls(&direct).await.unwrap());
    assert_eq!(report_of["workload"], "direct");
    assert_clean(&report_of, 2 * 4 * 20000);
    hub.shutdown().await;
    serving.await.unwrap().unwrap();
}

/// The hub's web gateway on an ephemeral port (HTTPS with `tls`), served
/// in this process beside `hub`.
async fn web_gateway(hub: &TestHub, tls: Option<chinwag_hub::TlsAcceptor>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut web = chinwag_web::WebConfig::default();
    web.tls = tls;
    tokio::spawn(chinwag_web::serve(hub.hub.clone(), listener, web));
    addr
}

/// Runs `chinwag [GLOBAL...] --server ADDR bench --ws ARGS... --json`.
async fn bench_ws(
    global: &[&std::ffi::OsStr],
    addr: std::net::SocketAddr,
    args: &[&str],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chinwag"));
    command
        .args(global)
        .args(["--server", &addr.to_string(), "bench", "--ws"])
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    within("chinwag bench --ws to finish", command.output())
        .await
        .unwrap()
}

/// `chinwag bench --ws ...` against the hub's web gateway (and only that:
/// a bench that ignored `--ws` would send a plain `HELLO` there, which is
/// no HTTP request; one that put several frames in a message, or cut one,
/// would be closed by the gateway), every delivery checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_and_direct_run_over_websocket() {
    let hub = TestHub::start().await;
    let web = web_gateway(&hub, None).await;
    let fanout = ["fanout", "--subscribers", "10", "--messages", "20000"];
    let report_of = report(&bench_ws(&[], web, &fanout).await);
    assert_eq!(report_of["workload"], "fanout");
    assert_clean(&report_of, 10 * 20000);
    let direct = ["direct", "--pairs", "4", "--messages", "20000"];
    let report_of = report(&bench_ws(&[], web, &direct).await);
    assert_eq!(report_of["workload"], "direct");
    assert_clean(&report_of, 2 * 4 * 20000);
    // The plain port speaks no HTTP: the upgrade fails, a setup error.
    let refused = bench_ws(&[], hub.addr, &fanout).await;
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("WebSocket handshake"), "{stderr}");
    hub.shutdown().await;
}

/// `chinwag --tls --ca CA bench --ws ...`: `wss:` to a gateway serving
/// HTTPS on the hub's certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_runs_over_websocket_over_tls() {
    let hub = TestHub::start().await;
    let certs = chinwag_testkit::TestCerts::new(1);
    let tls = chinwag_hub::TlsAcceptor::from_pem_files(&certs.cert, &certs.key).unwrap();
    let web = web_gateway(&hub, Some(tls)).await;
    let global = ["--tls".as_ref(), "--ca".as_ref(), certs.ca.as_os_str()];
    let fanout = ["fanout", "--subscribers", "5", "--messages", "5000"];
    let report_of = report(&bench_ws(&global, web, &fanout).await);
    assert_eq!(report_of["workload"], "fanout");
    assert_clean(&report_of, 5 * 5000);
    hub.shutdown().await;
}
