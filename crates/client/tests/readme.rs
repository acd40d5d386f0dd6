//! The README's commands, run as a reader would type them: every line of
//! its `sh` blocks, and the lines its table says to type into a chat, is
//! run here through `sh -c` exactly as written, with this build's
//! `chinwagd` and `chinwag` first on the `PATH` (what `cargo install`
//! gives a reader), on the README's own ports, 2446 and 2447.
//!
//! Each README line must be known to [`plan`]: a line added to the README
//! fails this test until it is run here too, and a line here that the
//! README lost fails it as well. The `cargo` lines are the exceptions,
//! said so below: the test itself runs inside `cargo test --workspace`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use support::within;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const README: &str = include_str!("../../../README.md");
const PASSWORD: &str = "correct horse";
const NEW_PASSWORD: &str = "battery staple";

/// Every command line of the README's `sh` blocks, comments included.
fn sh_lines() -> Vec<&'static str> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in README.lines() {
        if line.starts_with("```") {
            inside = line == "```sh";
            continue;
        }
        if inside && !line.trim().is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// The lines the README's table says to type into alice's chat.
fn typed_lines() -> Vec<&'static str> {
    let start = README
        .find("Now type in alice's terminal")
        .expect("the README says what to type into the chat");
    README[start..]
        .lines()
        .skip_while(|line| !line.starts_with("| line"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .filter_map(|row| row.split('`').nth(1))
        .collect()
}

/// The command of a README line: what `sh` runs, without its comment.
fn command_of(line: &str) -> &str {
    line.split(" #").next().unwrap_or(line).trim()
}

/// What the test does with each README line, in the README's order.
fn plan() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "cargo run --release -p chinwagd",
            "skip: the same daemon runs below as chinwagd",
        ),
        ("cargo test --workspace", "skip: this test runs inside it"),
        (
            "cargo install --path crates/chinwagd",
            "skip: this build's binaries are on the PATH",
        ),
        (
            "cargo install --path crates/client",
            "skip: this build's binaries are on the PATH",
        ),
        ("chinwagd --text-listen 127.0.0.1:2447", "daemon"),
        ("chinwag chat --nick alice", "chat"),
        ("chinwag listen --nick bob", "listen"),
        (
            "chinwag send --nick carol --to bob \"one-shot message\"",
            "run",
        ),
        (
            "chinwag send --nick carol --to bob --wait received \"ok?\"",
            "run",
        ),
        (
            "chinwag send --nick carol --to everyone \"hello, all\"",
            "run",
        ),
        ("printf '@bob hi\\n' | chinwag chat --nick dave", "run"),
        ("chinwag --json listen --nick eve --count 1", "listen once"),
        ("chinwag who", "run"),
        ("nc 127.0.0.1 2447", "text"),
        ("chinwag account create --nick bob", "run"),
        ("chinwag send --nick carol --to bob \"see you\"", "run"),
        ("chinwag listen --nick bob", "listen"),
        ("chinwag account passwd --nick bob", "run"),
        ("chinwag account delete --nick bob", "confirm"),
    ]
}

/// Where this build put its programs, if `chinwagd` is there too (it is
/// when the whole workspace is tested, as CI does).
fn bin_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_BIN_EXE_chinwag"))
        .parent()?
        .to_owned();
    dir.join("chinwagd").exists().then_some(dir)
}

/// `sh -c line` as a reader's shell would run it: this build first on the
/// `PATH`, in `cwd`, the README's default server, `env` added.
fn sh(bin: &Path, cwd: &Path, line: &str, env: &[(&str, &str)]) -> Command {
    let path = std::env::var("PATH").unwrap_or_default();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(line)
        .current_dir(cwd)
        .env("PATH", format!("{}:{path}", bin.display()))
        .env_remove("CHINWAG_SERVER")
        .env_remove("CHINWAG_LISTEN")
        .env_remove("CHINWAG_DATA_DIR")
        .env_remove("CHINWAG_PASSWORD")
        .env_remove("CHINWAG_NEW_PASSWORD")
        .env("CHINWAG_HISTORY", "")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn output(mut command: Command, stdin: Option<String>) -> Output {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("sh runs");
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes())
            .await
            .expect("stdin takes the lines");
    }
    within("a README command to finish", child.wait_with_output())
        .await
        .expect("its output")
}

/// Runs a README line to its end and checks it succeeded; returns stdout.
async fn run_ok(bin: &Path, cwd: &Path, line: &str, env: &[(&str, &str)]) -> String {
    let out = output(sh(bin, cwd, line, env), None).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`{line}` failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A README line left running, with its output read line by line.
struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Running {
    /// Runs `line` as [`sh`] does, the shell replaced by the command
    /// (`exec`), so that stopping it stops the program itself.
    fn start(bin: &Path, cwd: &Path, line: &str, env: &[(&str, &str)]) -> Self {
        let mut command = sh(bin, cwd, &format!("exec {line}"), env);
        let mut child = command.spawn().expect("sh runs");
        let stdout = child.stdout.take().expect("stdout is piped");
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The first line of output holding `needle` (earlier ones skipped).
    async fn line_with(&mut self, needle: &str) -> String {
        within(&format!("a line with {needle:?}"), async {
            loop {
                match self.lines.next_line().await {
                    Ok(Some(line)) if line.contains(needle) => return line,
                    Ok(Some(_)) => {}
                    other => panic!("output ended before {needle:?}: {other:?}"),
                }
            }
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_commands_work_as_written() {
    let Some(bin) = bin_dir() else {
        eprintln!("skipping: chinwagd is not built beside chinwag (run cargo test --workspace)");
        return;
    };
    if std::net::TcpListener::bind("127.0.0.1:2446").is_err()
        || std::net::TcpListener::bind("127.0.0.1:2447").is_err()
    {
        eprintln!("skipping: the README's ports 2446 and 2447 are in use here");
        return;
    }
    // Every README line is planned, in order, and nothing else.
    let written: Vec<&str> = sh_lines().into_iter().map(command_of).collect();
    let planned: Vec<&str> = plan().into_iter().map(|(line, _)| line).collect();
    assert_eq!(
        written, planned,
        "the README's commands and this test's plan differ"
    );
    let dir = tempfile::tempdir().expect("a working directory");
    let cwd = dir.path();

    // The daemon, in a directory of its own: its ./chinwag-data goes there.
    let mut daemon = Running::start(&bin, cwd, written[4], &[]);
    daemon
        .line_with("chinwagd text port on 127.0.0.1:2447")
        .await;
    assert!(
        cwd.join("chinwag-data").is_dir(),
        "the default data directory"
    );

    three_terminals(&bin, cwd, &written).await;
    accounts(&bin, cwd, &written).await;

    // Stopped as Ctrl+C would: it exits 0.
    let pid = daemon.child.id().expect("the daemon is still running");
    let stop = output(sh(&bin, cwd, &format!("kill -INT {pid}"), &[]), None).await;
    assert!(stop.status.success());
    let status = within("the daemon to stop", daemon.child.wait()).await;
    assert!(status.is_ok_and(|status| status.success()));
}

/// "Talking to it: three terminals": bob listens, alice types the table's
/// lines, and the one-shot commands.
async fn three_terminals(bin: &Path, cwd: &Path, written: &[&str]) {
    // Bob listens; alice types the table's lines; bob sees hers.
    let mut bob = Running::start(bin, cwd, written[6], &[]);
    bob.line_with("* online:").await;
    let typed = typed_lines();
    assert!(typed.contains(&"/quit"), "{typed:?}");
    let mut input = typed.join("\n");
    input.push('\n');
    let chat = output(sh(bin, cwd, written[5], &[]), Some(input)).await;
    let alice = String::from_utf8_lossy(&chat.stdout);
    assert!(
        chat.status.success() || chat.status.code() == Some(1),
        "{alice}"
    );
    assert!(
        alice.contains("not delivered to carol: no such user"),
        "{alice}"
    );
    bob.line_with("<alice> (to bob) hi bob").await;
    bob.line_with("<alice> * alice waves").await;

    // The one-shot commands.
    run_ok(bin, cwd, written[7], &[]).await;
    bob.line_with("one-shot message").await;
    // Bob's listen confirms what it prints.
    let received = run_ok(bin, cwd, written[8], &[]).await;
    assert!(received.contains("* received by bob "), "{received}");
    bob.line_with("<carol> (to bob) ok?").await;
    run_ok(bin, cwd, written[9], &[]).await;
    bob.line_with("hello, all").await;
    run_ok(bin, cwd, written[10], &[]).await;
    bob.line_with("<dave> (to bob) hi").await;
    let mut eve = Running::start(bin, cwd, written[11], &[]);
    within("eve to be online", async {
        loop {
            let out = output(
                sh(bin, cwd, "chinwag send --nick zed --to eve hi", &[]),
                None,
            )
            .await;
            if out.status.success() {
                break;
            }
        }
    })
    .await;
    let json = eve.line_with("\"text\"").await;
    assert!(json.starts_with('{') && json.contains("\"hi\""), "{json}");
    let eve_done = within("eve's listen --count 1 to exit", eve.child.wait()).await;
    assert!(eve_done.is_ok_and(|status| status.success()));
    let who = run_ok(bin, cwd, written[12], &[]).await;
    assert!(who.contains("bob"), "{who}");
    if which("nc") {
        let text = output(sh(bin, cwd, written[13], &[]), Some("zed\n/quit\n".into())).await;
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("* welcome, zed"), "{text}");
    } else {
        eprintln!("skipping `{}`: nc is not installed here", written[13]);
    }
}

/// "Accounts and offline messages": bob registers, gets a message while
/// away and sees it, changes his password and deletes his account.
async fn accounts(bin: &Path, cwd: &Path, written: &[&str]) {
    let account = [("CHINWAG_PASSWORD", PASSWORD)];
    within("bob's listener to leave", async {
        loop {
            let out = output(sh(bin, cwd, written[14], &account), None).await;
            if out.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(err.contains("taken"), "{err}");
        }
    })
    .await;
    let stored = run_ok(bin, cwd, written[15], &[]).await;
    assert!(stored.contains("* stored for bob"), "{stored}");
    let mut bob = Running::start(bin, cwd, written[16], &account);
    let away = bob.line_with("(while you were away)").await;
    assert!(
        away.contains("<carol>") && away.contains("see you"),
        "{away}"
    );
    drop(bob);
    let both = [
        ("CHINWAG_PASSWORD", PASSWORD),
        ("CHINWAG_NEW_PASSWORD", NEW_PASSWORD),
    ];
    run_ok(bin, cwd, written[17], &both).await;
    // As written, in a script: it asks for --yes rather than deleting.
    let new = [("CHINWAG_PASSWORD", NEW_PASSWORD)];
    let refused = output(sh(bin, cwd, written[18], &new), None).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    let delete_yes = format!("{} --yes", written[18]);
    run_ok(bin, cwd, &delete_yes, &new).await;
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
