//! `chinwagd` under systemd's protocols, with systemd's own tools where
//! they exist: the notifications a `Type=notify` service sends (read from
//! a `NOTIFY_SOCKET` of the test's own), socket activation through
//! `systemd-socket-activate`, and the shipped unit files through
//! `systemd-analyze verify` and `systemd-analyze security`. A test whose
//! tool is missing says so and skips (`.ci/run` installs them).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chinwag_testkit::RawClient;

const BIN: &str = env!("CARGO_BIN_EXE_chinwagd");

/// How long to wait for anything the daemon should do promptly.
const PATIENCE: Duration = Duration::from_secs(10);

/// A child process, killed on drop if still running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Running {
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let until = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < until, "the daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The path of `tool`, or `None` after saying the test skips without it.
fn tool(tool: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        eprintln!("SKIPPED {test}: `{tool}` is not installed (apt-get install systemd)");
    }
    found
}

/// The notifications the daemon sends, in order, as datagrams on a socket
/// of the test's own.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        Self { socket, path }
    }

    /// The next notification's lines.
    fn next(&self) -> Vec<String> {
        let mut buf = [0; 4096];
        let len = self
            .socket
            .recv(&mut buf)
            .expect("a notification within the patience");
        String::from_utf8_lossy(&buf[..len])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Reads notifications until one has `line`; answers those before it.
    fn until(&self, line: &str) -> Vec<Vec<String>> {
        let mut before = Vec::new();
        loop {
            let next = self.next();
            if next.iter().any(|l| l == line) {
                return before;
            }
            before.push(next);
        }
    }
}

#[test]
fn ready_then_watchdog_pings_then_stopping_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let mut daemon = Running(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--log", "error", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("NOTIFY_SOCKET", &notify.path)
            // A ping every 100 ms.
            .env("WATCHDOG_USEC", "200000")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let before_ready = notify.until("READY=1");
    assert!(
        before_ready.is_empty(),
        "nothing before READY=1: {before_ready:?}"
    );
    // Two pings, each after a round trip through the actor, with a status.
    for _ in 0..2 {
        let ping = notify.next();
        assert!(ping.contains(&"WATCHDOG=1".to_owned()), "{ping:?}");
        assert!(
            ping.iter()
                .any(|l| l.starts_with("STATUS=") && l.ends_with("users online")),
            "{ping:?}"
        );
    }
    daemon.signal("-TERM");
    let before_stopping = notify.until("STOPPING=1");
    assert!(
        before_stopping
            .iter()
            .all(|n| n.contains(&"WATCHDOG=1".to_owned())),
        "only pings between READY and STOPPING: {before_stopping:?}"
    );
    assert!(daemon.wait_exit().success());
}

#[tokio::test]
async fn a_listener_from_systemd_socket_activate_is_used_instead_of_binding() {
    let Some(activate) = tool("systemd-socket-activate", "socket activation") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A free port for systemd to listen on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut activated = Command::new(activate)
        .args(["--listen", &addr, "--fdname=binary", BIN])
        // An address the daemon would fail to bind: it must not try.
        .args(["--listen", "192.0.2.1:1", "--log", "error", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It says on stderr when it listens ("Listening on ... as 3.").
    let stderr = activated.stderr.take().unwrap();
    let _daemon = Running(activated);
    let (listening, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut told = false;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("{line}");
            if !told && line.contains("Listening on") {
                told = listening.send(()).is_ok();
            }
        }
    });
    heard
        .recv_timeout(PATIENCE)
        .expect("systemd-socket-activate listening");
    // systemd-socket-activate listens at once and starts the daemon on the
    // first connection; the frames wait in the socket meanwhile.
    let addr = addr.parse().unwrap();
    let mut alice = RawClient::connect(addr).await.registered("alice").await;
    let mut bob = RawClient::connect(addr).await.registered("bob").await;
    let id = alice.send_to(&["bob"], "through systemd's socket").await;
    alice.expect_ack(id).await;
    let message = bob.expect_message().await;
    assert_eq!(
        (message.from.as_str(), message.text.as_str()),
        ("alice", "through systemd's socket")
    );
}

/// The shipped units, with `ExecStart=` pointing at the binary under test.
fn units(dir: &Path) -> (PathBuf, PathBuf) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/systemd");
    let service = std::fs::read_to_string(shipped.join("chinwagd.service"))
        .unwrap()
        .replace("ExecStart=/usr/bin/chinwagd", &format!("ExecStart={BIN}"));
    let socket = std::fs::read_to_string(shipped.join("chinwagd.socket")).unwrap();
    let (service_path, socket_path) = (dir.join("chinwagd.service"), dir.join("chinwagd.socket"));
    std::fs::write(&service_path, service).unwrap();
    std::fs::write(&socket_path, socket).unwrap();
    (service_path, socket_path)
}

#[test]
fn the_shipped_units_verify_and_rate_2_or_lower_for_exposure() {
    let Some(analyze) = tool("systemd-analyze", "unit checks") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (service, socket) = units(dir.path());
    let verify = Command::new(&analyze)
        .arg("verify")
        .args([&service, &socket])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = Command::new(&analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&service)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = report
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for chinwagd.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|level| level.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {report}"));
    assert!(exposure <= 2.0, "exposure {exposure} above 2.0:\n{report}");
}

#[test]
fn a_wedged_actor_stops_the_watchdog_pings() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let _daemon = Running(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--log", "error", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--test-wedge-actor-after", "1s"])
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "200000")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    notify.until("READY=1");
    let first = notify.next();
    assert!(first.contains(&"WATCHDOG=1".to_owned()), "{first:?}");
    // Pings every 100 ms until the actor is wedged a second in; then none,
    // however long systemd would wait (its timeout is 200 ms here).
    notify
        .socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0; 4096];
    let mut pings = 1;
    while notify.socket.recv(&mut buf).is_ok() {
        pings += 1;
        assert!(pings < 100, "pings went on with the actor wedged");
    }
    assert!(pings >= 3, "too few pings before the wedge: {pings}");
}

/// SIGHUP reads the configuration again: the log filter changes at once,
/// flood control goes to the hub and is in force, a setting sized at start
/// is said to wait for a restart, and systemd is told `RELOADING=1` then
/// `READY=1`. (What each live setting does to connections is the hub's
/// `tests/reconfigure.rs`.)
#[test]
fn sighup_reloads_the_log_filter_and_names_what_needs_a_restart() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let config = dir.path().join("chinwagd.toml");
    std::fs::write(&config, "log = \"warn\"\nmax-connections = 100\n").unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify.path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut daemon = Running(child);
    let (lines, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    notify.until("READY=1");

    std::fs::write(
        &config,
        "log = \"info\"\nmax-connections = 5\nrate-limit = \"2/s\"\n",
    )
    .unwrap();
    daemon.signal("-HUP");
    let reloading = notify.next();
    assert!(
        reloading.contains(&"RELOADING=1".to_owned()),
        "{reloading:?}"
    );
    assert!(
        reloading.iter().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    notify.until("READY=1");
    // "configuration reloaded" is logged at info: seen only because the
    // filter changed from warn first.
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("configuration reloaded"))
    {
        seen.push(log.recv_timeout(PATIENCE).expect("the reload's log lines"));
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("max-connections") && l.contains("next restart")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("rate-limit") && l.contains("in force now")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("configuration reloaded") && l.contains("rate_limit")),
        "the hub took it: {seen:?}"
    );
    daemon.signal("-TERM");
    assert!(daemon.wait_exit().success());
}
