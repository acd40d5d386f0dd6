//! `chinwagd` as a process that async tests start, signal and kill: on a
//! data directory they choose (and keep across restarts), with the address
//! read from the first line the daemon prints, and with its accounts
//! created by the operator's command (`chinwagd account create`).
//!
//! Every wait is bounded by [`PATIENCE`]; a daemon still running when its
//! handle is dropped (a test that panicked) is killed.

#![allow(dead_code, unreachable_pub)] // each suite uses its own part of this

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use chinwag_testkit::{PATIENCE, guard};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// The daemon's binary, built by Cargo for the integration tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_chinwagd");

/// What the daemon prints, followed by its address, as its first line.
const LISTENING: &str = "chinwagd listening on ";

/// A `chinwagd` process, killed on drop if it is still running.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// Its first line on stdout, once read: `None` if stdout ended first
    /// (the daemon exited, or was killed, before it was up).
    first_line: oneshot::Receiver<Option<String>>,
    /// The lines after the first (the other listeners' addresses).
    more_lines: mpsc::UnboundedReceiver<String>,
}

impl Daemon {
    /// Starts `chinwagd --listen 127.0.0.1:0` on the data directory `dir`,
    /// logging only errors (to this process's stderr), with `args` after.
    /// Returns at once: [`address`](Self::address) waits for it to be up.
    ///
    /// # Panics
    /// If the process cannot be started.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_on(dir, "127.0.0.1:0", args)
    }

    /// As [`start`](Self::start), listening on `listen` (an address an
    /// earlier daemon used, for a restart clients reconnect to).
    ///
    /// # Panics
    /// If the process cannot be started.
    pub fn start_on(dir: &Path, listen: &str, args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["--listen", listen, "--log", "error", "--data-dir"])
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start chinwagd");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tell, first_line) = oneshot::channel();
        let (more, more_lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tell.send(lines.next_line().await.ok().flatten());
            // Keep draining, so that the daemon never blocks on a full pipe.
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = more.send(line);
            }
        });
        Self {
            child,
            first_line,
            more_lines,
        }
    }

    /// Waits for the daemon's first line and returns the address in it.
    /// Cancel-safe: a caller that gives up waiting (a timeout) may ask
    /// again.
    ///
    /// # Panics
    /// If the daemon ends without printing it (why is on stderr), or the
    /// line is not the address.
    pub async fn address(&mut self) -> SocketAddr {
        let Ok(Some(line)) = (&mut self.first_line).await else {
            let status = self.child.try_wait().ok().flatten();
            panic!("chinwagd ended before saying where it listens (status {status:?})")
        };
        line.strip_prefix(LISTENING)
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"))
    }

    /// As [`address`](Self::address), failing the test if the daemon is not
    /// up within [`PATIENCE`].
    pub async fn up(&mut self) -> SocketAddr {
        guard(PATIENCE, "chinwagd's first line", self.address()).await
    }

    /// The next line the daemon prints after its first that begins with
    /// `prefix`, without the prefix: another listener's address.
    ///
    /// # Panics
    /// If none comes within [`PATIENCE`].
    pub async fn line_after(&mut self, prefix: &str) -> String {
        guard(PATIENCE, "a line from chinwagd", async {
            loop {
                let line = (self.more_lines.recv().await)
                    .unwrap_or_else(|| panic!("chinwagd's stdout ended before {prefix:?}"));
                if let Some(rest) = line.strip_prefix(prefix) {
                    return rest.to_owned();
                }
            }
        })
        .await
    }

    /// `kill -9`: SIGKILL, and waits for the process to be gone (its
    /// directory lock with it).
    ///
    /// # Panics
    /// If it had already exited by itself, or does not go.
    pub async fn kill(mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("chinwagd ended by itself ({status}) before the kill");
        }
        self.child.start_kill().expect("SIGKILL to chinwagd");
        guard(PATIENCE, "chinwagd dying of SIGKILL", self.child.wait())
            .await
            .expect("waiting for chinwagd");
    }

    /// SIGHUP: the daemon reloads (returns once the signal is sent).
    ///
    /// # Panics
    /// If `kill` fails.
    pub async fn hangup(&self) {
        let pid = self.child.id().expect("chinwagd is still running");
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .await
            .expect("running kill");
        assert!(status.success(), "kill -HUP {pid} failed");
    }

    /// SIGTERM, the orderly stop, and its exit status.
    ///
    /// # Panics
    /// If it does not exit within [`PATIENCE`].
    pub async fn terminate(mut self) -> ExitStatus {
        // The child is not reaped before `wait` below, so its id is still
        // its own.
        let pid = self.child.id().expect("chinwagd is still running");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .expect("running kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        guard(
            PATIENCE,
            "chinwagd exiting after SIGTERM",
            self.child.wait(),
        )
        .await
        .expect("waiting for chinwagd")
    }
}

/// `chinwagd account create --nick NICK --password-stdin` on the data
/// directory `dir` (no daemon running on it).
///
/// # Panics
/// If the command fails.
pub async fn create_account(dir: &Path, nick: &str, password: &str) {
    let mut child = Command::new(BIN)
        .args(["account", "create", "--password-stdin", "--nick", nick])
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start chinwagd account create");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .await
        .expect("writing the password");
    drop(stdin);
    let output = guard(
        PATIENCE,
        "chinwagd account create",
        child.wait_with_output(),
    )
    .await
    .expect("waiting for chinwagd account create");
    assert!(
        output.status.success(),
        "chinwagd account create --nick {nick}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
