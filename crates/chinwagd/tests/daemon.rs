//! `chinwagd` as a black box: spawn the binary, talk to it over TCP with a
//! tiny framed client, signal it, and check how it exits.
//!
//! Every wait is bounded; a daemon still running when a test ends (or
//! panics) is killed.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chinwag_protocol::{
    ClientCodec, ClientFrame, Code, Hello, PROTOCOL_VERSION, Recipients, SendFrame, ServerFrame,
};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

const BIN: &str = env!("CARGO_BIN_EXE_chinwagd");

/// How long to wait for anything the daemon should do promptly.
const PATIENCE: Duration = Duration::from_secs(10);

/// A running `chinwagd`, killed on drop if it is still running.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    /// Its data directory, removed after it.
    _data: tempfile::TempDir,
}

impl Daemon {
    /// Starts `chinwagd --listen 127.0.0.1:0` with `args` and reads the
    /// address it prints as its first line.
    fn start(args: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["--listen", "127.0.0.1:0", "--log", "error", "--data-dir"])
            .arg(data.path())
            .args(args);
        Self::spawn(command, data)
    }

    /// Starts `chinwagd` as [`start`](Self::start) does, with its soft and
    /// hard limits on open files set to `files` first (by the shell).
    fn start_with_files(files: u32, args: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
            .arg(BIN)
            .args(["--listen", "127.0.0.1:0", "--log", "error", "--data-dir"])
            .arg(data.path())
            .args(args);
        Self::spawn(command, data)
    }

    fn spawn(mut command: Command, data: tempfile::TempDir) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start chinwagd");
        let stdout = child.stdout.take().unwrap();
        let (first_line, line) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = first_line.send(lines.next());
            // Keep draining, so that the daemon never blocks on a full pipe.
            for _ in lines {}
        });
        // Owned by the guard from here on, so that a failure below kills it.
        let mut daemon = Self {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            _data: data,
        };
        let line = match line.recv_timeout(PATIENCE) {
            Ok(Some(Ok(line))) => line,
            other => panic!("no first line from chinwagd: {other:?}"),
        };
        daemon.addr = line
            .strip_prefix("chinwagd listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        daemon
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    /// Waits for the process to exit; fails the test after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "chinwagd still running {limit:?} after being told to stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal protocol client.
struct Client {
    framed: Framed<TcpStream, ClientCodec>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("cannot connect to chinwagd");
        Self {
            framed: Framed::new(stream, ClientCodec::default()),
        }
    }

    async fn send(&mut self, frame: ClientFrame) {
        self.framed.send(frame).await.unwrap();
    }

    /// The next frame, or `None` at the end of the connection (a reset
    /// counts as an end).
    async fn recv(&mut self) -> Option<ServerFrame> {
        let next = tokio::time::timeout(PATIENCE, self.framed.next())
            .await
            .expect("no frame from chinwagd in time");
        match next {
            Some(Ok(frame)) => Some(frame),
            Some(Err(chinwag_protocol::ProtocolError::Io(_))) | None => None,
            Some(Err(e)) => panic!("bad frame from chinwagd: {e}"),
        }
    }

    async fn register(addr: SocketAddr, nick: &str) -> Self {
        let mut client = Self::connect(addr).await;
        client
            .send(ClientFrame::Hello(Hello {
                version: PROTOCOL_VERSION,
                nick: nick.as_bytes().to_vec().into(),
                options: None,
                password: None,
            }))
            .await;
        match client.recv().await {
            Some(ServerFrame::Welcome(w)) => assert_eq!(w.nick, nick),
            other => panic!("expected WELCOME, got {other:?}"),
        }
        client
    }

    /// Skips frames until an ERROR, which must carry `code` and be followed
    /// by the end of the connection.
    async fn expect_fatal(&mut self, code: Code) {
        loop {
            match self.recv().await {
                Some(ServerFrame::Error(e)) => {
                    assert_eq!(e.code, code);
                    break;
                }
                Some(_) => {}
                None => panic!("closed without ERROR {}", code.0),
            }
        }
        assert_eq!(self.recv().await, None, "a frame after the fatal error");
    }
}

#[tokio::test]
async fn clients_talk_through_the_daemon_and_sigterm_closes_them_and_exits_zero() {
    let mut daemon = Daemon::start(&[]);
    let mut alice = Client::register(daemon.addr, "alice").await;
    let mut bob = Client::register(daemon.addr, "bob").await;

    alice
        .send(ClientFrame::Send(SendFrame {
            id: 1,
            to: Recipients::Users(vec!["bob".to_owned()]),
            text: "hello through chinwagd".to_owned(),
        }))
        .await;
    let message = loop {
        match bob.recv().await {
            Some(ServerFrame::Message(m)) => break m,
            Some(_) => {}
            None => panic!("bob was disconnected"),
        }
    };
    assert_eq!(message.from, "alice");
    assert_eq!(message.text, "hello through chinwagd");
    let ack = loop {
        match alice.recv().await {
            Some(ServerFrame::Ack(a)) => break a,
            Some(_) => {}
            None => panic!("alice was disconnected"),
        }
    };
    assert_eq!((ack.client_id, ack.delivered), (1, 1));

    daemon.signal("-TERM");
    alice.expect_fatal(Code::SHUTTING_DOWN).await;
    bob.expect_fatal(Code::SHUTTING_DOWN).await;
    let status = daemon.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{status}");
}

#[tokio::test]
async fn sigint_also_shuts_down_cleanly() {
    let mut daemon = Daemon::start(&[]);
    let mut alice = Client::register(daemon.addr, "alice").await;
    daemon.signal("-INT");
    alice.expect_fatal(Code::SHUTTING_DOWN).await;
    let status = daemon.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{status}");
}

/// The signal handlers are in place before the daemon says where it listens:
/// a SIGTERM sent the moment that line appears is a clean shutdown, never a
/// death by the signal's default action (a supervisor that stops a daemon as
/// soon as it is up must get the same clean exit as one that waits).
#[test]
fn a_sigterm_the_moment_the_address_is_printed_exits_zero() {
    for _ in 0..20 {
        let mut daemon = Daemon::start(&[]);
        daemon.signal("-TERM");
        let status = daemon.wait_exit(PATIENCE);
        assert_eq!(status.code(), Some(0), "{status}");
    }
}

#[tokio::test]
async fn max_connections_flag_makes_the_next_connection_server_full() {
    let mut daemon = Daemon::start(&["--max-connections", "1"]);
    let mut alice = Client::register(daemon.addr, "alice").await;
    let mut second = Client::connect(daemon.addr).await;
    second.expect_fatal(Code::SERVER_FULL).await;

    // The one inside is unaffected.
    alice.send(ClientFrame::Ping(9)).await;
    assert_eq!(alice.recv().await, Some(ServerFrame::Pong(9)));
    daemon.signal("-TERM");
    alice.expect_fatal(Code::SHUTTING_DOWN).await;
    assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(0));
}

/// Out of file descriptors (a limit of 48, which the daemon cannot raise),
/// a connection beyond what the process can hold is told `SERVER_FULL` at
/// once, from the descriptor the hub keeps in reserve, rather than left
/// hanging without a word; those inside are unaffected.
#[tokio::test]
async fn out_of_file_descriptors_a_newcomer_is_told_server_full_not_left_hanging() {
    let mut daemon = Daemon::start_with_files(48, &[]);
    let mut registered = Vec::new();
    let mut refused = 0;
    for i in 0..80 {
        let mut client = Client::connect(daemon.addr).await;
        client
            .send(ClientFrame::Hello(Hello {
                version: PROTOCOL_VERSION,
                nick: format!("user{i}").into_bytes().into(),
                options: None,
                password: None,
            }))
            .await;
        match client.recv().await {
            Some(ServerFrame::Welcome(_)) => registered.push(client),
            Some(ServerFrame::Error(e)) => {
                assert_eq!(e.code, Code::SERVER_FULL);
                refused += 1;
            }
            other => panic!("user{i}: expected WELCOME or SERVER_FULL, got {other:?}"),
        }
    }
    assert!(
        refused > 0 && registered.len() > 10,
        "{} in, {refused} refused",
        registered.len()
    );
    let first = &mut registered[0];
    first.send(ClientFrame::Ping(7)).await;
    loop {
        match first.recv().await {
            Some(ServerFrame::Pong(7)) => break,
            Some(ServerFrame::Presence(_)) => {}
            other => panic!("expected PONG 7, got {other:?}"),
        }
    }
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(0));
}

/// Limits per address, from the command line: loopback is exempt by
/// default (a second idle connection from it is served), and with
/// `--exempt none` an address over `--max-unregistered-per-address` is
/// refused at once with its error frame while the others are served.
#[tokio::test]
async fn per_address_limits_and_the_exemption_list_come_from_flags() {
    let mut exempt = Daemon::start(&["--max-unregistered-per-address", "1"]);
    let _first = Client::connect(exempt.addr).await;
    let _second = Client::register(exempt.addr, "loopback").await;
    exempt.signal("-TERM");
    assert_eq!(exempt.wait_exit(PATIENCE).code(), Some(0));

    let mut daemon = Daemon::start(&["--max-unregistered-per-address", "1", "--exempt", "none"]);
    let _idle = Client::connect(daemon.addr).await;
    let mut over = Client::connect(daemon.addr).await;
    over.expect_fatal(Code::SERVER_FULL).await;
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(0));
}

#[test]
fn a_bad_exemption_is_refused_with_a_nonzero_exit() {
    let (status, _, err) = run_to_exit(&["--exempt", "10.0.0.0/33"]);
    assert!(!status.success());
    assert!(err.contains("is not an address or a CIDR"), "{err}");
}

/// Runs `chinwagd` with `args` to completion (bounded), returning its
/// status and what it printed on stdout and stderr.
fn run_to_exit(args: &[&str]) -> (ExitStatus, String, String) {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(args)
        .env("CHINWAG_DATA_DIR", data.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut daemon = Daemon {
        child,
        addr: "0.0.0.0:0".parse().unwrap(),
        _data: data,
    };
    let status = daemon.wait_exit(PATIENCE);
    (status, out.join().unwrap(), err.join().unwrap())
}

#[test]
fn help_exits_zero_and_documents_listen() {
    let (status, stdout, _) = run_to_exit(&["--help"]);
    assert!(status.success(), "{status}");
    assert!(stdout.contains("--listen"), "{stdout}");
    assert!(stdout.contains("--max-connections"), "{stdout}");
}

/// Defaults of durations say their unit, and nonsense values are refused
/// with a message that names the flag.
#[test]
fn durations_show_their_unit_and_nonsense_values_are_refused() {
    let (_, stdout, _) = run_to_exit(&["--help"]);
    assert!(stdout.contains("[default: 5s]"), "{stdout}");
    for (flag, value) in [
        ("--max-connections", "0"),
        ("--max-unregistered", "0"),
        ("--max-frame-bytes", "0"),
        ("--registration-timeout", "0"),
        ("--ping-interval", "0s"),
        ("--max-missed-pings", "0"),
        ("--connect-rate", "0"),
    ] {
        let (status, _, err) = run_to_exit(&[flag, value]);
        assert!(!status.success(), "{flag} {value} was accepted");
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}

/// `--listen` takes a host name, as the client's `--server` does.
#[tokio::test]
async fn listen_takes_a_host_name() {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["--listen", "localhost:0", "--log", "error", "--data-dir"])
        .arg(data.path());
    let mut daemon = Daemon::spawn(command, data);
    assert!(daemon.addr.ip().is_loopback(), "{}", daemon.addr);
    let _alice = Client::register(daemon.addr, "alice").await;
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(0));
}

#[test]
fn an_unknown_flag_is_refused_with_a_nonzero_exit() {
    let (status, _, stderr) = run_to_exit(&["--no-such-flag"]);
    assert!(!status.success(), "{status}");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
}

#[test]
fn an_address_in_use_is_reported_with_a_nonzero_exit() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, stdout, stderr) = run_to_exit(&["--listen", &addr, "--log", "off"]);
    assert!(!status.success(), "{status}");
    assert!(!stdout.contains("listening"), "{stdout}");
    assert!(stderr.contains(&addr), "{stderr}");
}

/// Runs `chinwagd account ...` on `dir` with `stdin` as its input.
fn account_command(
    dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> (ExitStatus, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("account")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("CHINWAG_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (output.status, text(output.stdout), text(output.stderr))
}

/// Starts `chinwagd` on the data directory `dir`.
fn start_on(dir: &std::path::Path) -> Daemon {
    let mut command = Command::new(BIN);
    command
        .args(["--listen", "127.0.0.1:0", "--log", "error", "--data-dir"])
        .arg(dir);
    // The directory is the test's; the daemon's own spare one goes unused.
    Daemon::spawn(command, tempfile::tempdir().unwrap())
}

/// The operator's commands create, list and delete accounts on a stopped
/// daemon's data directory, and the daemon honours them.
#[tokio::test]
async fn the_operator_manages_accounts_on_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (status, out, err) = account_command(
        dir.path(),
        &["create", "--nick", "Bob", "--password-stdin"],
        "correct horse\n",
    );
    assert!(status.success(), "{err}");
    assert!(out.contains("created account Bob"), "{out}");
    let (status, _, err) = account_command(
        dir.path(),
        &["create", "--nick", "bob", "--password-stdin"],
        "another one\n",
    );
    assert!(!status.success());
    assert!(err.contains("exists already"), "{err}");
    let (status, _, err) = account_command(
        dir.path(),
        &["create", "--nick", "carol", "--password-stdin"],
        "short\n",
    );
    assert!(!status.success());
    assert!(err.contains("at least 8 bytes"), "{err}");
    let (status, out, _) = account_command(dir.path(), &["list"], "");
    assert!(status.success());
    assert!(out.lines().any(|line| line.starts_with("Bob ")), "{out}");

    let mut daemon = start_on(dir.path());
    let mut guest = Client::connect(daemon.addr).await;
    guest
        .send(ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            nick: b"bob".to_vec().into(),
            options: None,
            password: None,
        }))
        .await;
    assert!(
        matches!(guest.recv().await, Some(ServerFrame::Error(e)) if e.code == Code::NICK_REGISTERED)
    );
    guest
        .send(ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            nick: b"bob".to_vec().into(),
            options: Some(0),
            password: Some("correct horse".to_owned()),
        }))
        .await;
    match guest.recv().await {
        Some(ServerFrame::Welcome(welcome)) => assert_eq!(welcome.nick, "Bob"),
        other => panic!("expected WELCOME, got {other:?}"),
    }

    // While it runs, the directory is its own.
    let (status, _, err) = account_command(dir.path(), &["list"], "");
    assert!(!status.success());
    assert!(err.contains("in use by another chinwag"), "{err}");
    drop(guest);
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(0));

    let (status, out, err) = account_command(dir.path(), &["delete", "--nick", "BOB"], "");
    assert!(status.success(), "{err}");
    assert!(out.contains("deleted account"), "{out}");
    let (_, out, _) = account_command(dir.path(), &["list"], "");
    assert!(!out.lines().any(|line| line.starts_with("Bob ")), "{out}");
}

/// A second daemon on a data directory in use stops at once, saying why.
#[tokio::test]
async fn a_second_daemon_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start_on(dir.path());
    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--log", "error", "--data-dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("in use by another chinwag"), "{err}");
    // It bound nothing: nothing was printed for a listener.
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
    let _alice = Client::register(first.addr, "alice").await;
    first.signal("-TERM");
    assert_eq!(first.wait_exit(PATIENCE).code(), Some(0));
}

/// A bad `--log` filter is refused with its cause said once.
#[test]
fn a_bad_log_filter_is_refused_with_its_cause_once() {
    let (status, _, stderr) = run_to_exit(&["--log", "foo=bar=baz"]);
    assert!(!status.success());
    assert!(
        stderr.contains("invalid --log filter \"foo=bar=baz\""),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error parsing").count(), 1, "{stderr}");
}

/// Refused nicknames and disconnections are logged at `info`, naming the
/// peer's address, for an operator following who comes and goes.
#[tokio::test]
async fn refusals_and_disconnections_are_logged_at_info_with_the_address() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--log", "info", "--data-dir"])
        .arg(data.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("chinwagd listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let mut daemon = Daemon {
        child,
        addr,
        _data: data,
    };
    let wait_for = |needle: &str| loop {
        let line = log
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    };

    let mut client = Client::connect(daemon.addr).await;
    client
        .send(ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            nick: b"9lives".to_vec().into(),
            options: None,
            password: None,
        }))
        .await;
    assert!(matches!(client.recv().await, Some(ServerFrame::Error(_))));
    let refused = wait_for("nickname refused");
    assert!(
        refused.contains("INFO") && refused.contains("127.0.0.1"),
        "{refused}"
    );
    drop(client);

    let alice = Client::register(daemon.addr, "alice").await;
    drop(alice);
    let left = wait_for("disconnected");
    assert!(
        left.contains("alice") && left.contains("127.0.0.1"),
        "{left}"
    );
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(0));
}

/// The shutdown grace takes a duration like the other flags, and its old
/// name with a number of seconds (zero included) still works.
#[test]
fn the_shutdown_grace_takes_a_duration_and_its_old_name() {
    for args in [
        ["--shutdown-grace", "2s"],
        ["--shutdown-grace-secs", "1"],
        ["--shutdown-grace-secs", "0"],
    ] {
        let mut daemon = Daemon::start(&args);
        daemon.signal("-TERM");
        assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(0), "{args:?}");
    }
    let (status, _, stderr) = run_to_exit(&["--shutdown-grace", "soon"]);
    assert!(!status.success());
    assert!(stderr.contains("is not a duration"), "{stderr}");
}

/// A start-up failure is one line and status 1, never a backtrace, even
/// with `RUST_BACKTRACE=1` in the environment.
#[test]
fn a_startup_error_is_one_line_without_a_backtrace() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["--listen", &addr, "--log", "off", "--data-dir"])
        .arg(data.path())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("chinwagd: cannot listen on {addr}: ")),
        "{stderr}"
    );
}

/// `--log-format json`: every log line is a JSON object with its level and
/// message; `text` stays lines (the default away from systemd).
#[test]
fn the_log_is_json_objects_when_asked() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, _, stderr) =
        run_to_exit(&["--listen", &addr, "--log", "info", "--log-format", "json"]);
    assert!(!status.success());
    let (log, last) = stderr.trim_end().rsplit_once('\n').expect("log lines");
    assert!(last.starts_with("chinwagd: cannot listen"), "{stderr}");
    let mut store_open = false;
    for line in log.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"));
        assert!(entry["level"].is_string(), "{line}");
        store_open |= entry["fields"]["message"] == "store open";
    }
    assert!(store_open, "{stderr}");
}

/// A setting from the configuration file is used as its flag would be, and
/// the flag still wins over it.
#[tokio::test]
async fn the_configuration_file_sets_what_its_flag_would_and_a_flag_wins() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chinwagd.toml");
    std::fs::write(
        &config,
        "# a comment\nmax-connections = 1\nlisten = \"192.0.2.1:1\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    // The file's listen address would fail; the flag's (127.0.0.1:0) wins.
    let mut daemon = Daemon::start(&["--config", &config]);
    let _alice = Client::register(daemon.addr, "alice").await;
    let mut second = Client::connect(daemon.addr).await;
    second.expect_fatal(Code::SERVER_FULL).await;
    daemon.signal("-TERM");
    assert_eq!(daemon.wait_exit(PATIENCE).code(), Some(0));

    // --check-config: a bad key is one line naming the file, line and key.
    std::fs::write(
        dir.path().join("bad.toml"),
        "max-connections = 1\nmax-conections = 2\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.toml");
    let (status, stdout, stderr) =
        run_to_exit(&["--config", bad.to_str().unwrap(), "--check-config"]);
    assert_eq!(status.code(), Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "chinwagd: {}:2: unknown key `max-conections`",
            bad.display()
        )
    );
}

/// The example configuration shipped in `dist/` passes `--check-config`.
#[test]
fn the_shipped_example_configuration_checks() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dist/chinwagd.toml");
    let (status, stdout, stderr) = run_to_exit(&["--config", example, "--check-config"]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.starts_with("chinwagd: configuration OK"), "{stdout}");
}

/// Shell completions and the manual page come from the flags themselves.
#[test]
fn completions_and_the_manual_page_name_the_flags() {
    for (args, want) in [
        (&["completions", "bash"][..], "--max-connections"),
        (&["completions", "zsh"][..], "--data-dir"),
        (&["man"][..], "\\-\\-check\\-config"),
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains(want), "{args:?} lacks {want}:\n{text}");
    }
}

/// A reader that closes early (`chinwagd man | head -1`) is no error: the
/// generating commands end quietly with status 0, as other Unix tools do.
/// Here the reader is gone before the first byte, so every write fails.
#[test]
fn generating_into_a_closed_pipe_ends_quietly() {
    for args in [
        &["man"][..],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["completions", "fish"],
    ] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let output = Command::new(BIN)
            .args(args)
            .stdout(writer)
            .output()
            .expect("chinwagd runs");
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{args:?} into a closed pipe: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
