//! `chinwag chat`'s line editor as a person uses it: the program runs in a
//! pseudo-terminal (a tmux pane on a tmux server of the test's own), keys
//! are typed with `send-keys`, and the screen is read with `capture-pane`.
//! Every wait is for some text to show on the screen, bounded by
//! [`PATIENCE`].
//!
//! Without tmux the tests say so and pass (`.ci/run` installs it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use chinwag_client::{Client, ClientOptions, Event};
use chinwag_hub::Session;
use chinwag_hub::protocol::{Message, Recipients, ServerFrame};
use support::{PATIENCE, TestHub, within};
use tempfile::TempDir;
use tokio::process::Command;

/// What the shell around the program prints when it exits, before the status.
const EXITED: &str = "[chinwag exited with ";

/// What the shell prints if the program left the terminal in raw mode.
const RAW_MODE: &str = "[the terminal was left in raw mode]";

/// How often the screen is read while waiting for it to change.
const POLL: Duration = Duration::from_millis(25);

/// Whether tmux can be run here; if not, the test prints that it skips.
async fn tmux_installed() -> bool {
    let found = Command::new("tmux").arg("-V").output().await.is_ok();
    if !found {
        eprintln!("skipping: tmux not installed");
    }
    found
}

/// `chinwag chat` in a tmux pane, on a tmux server of its own (its socket
/// in a temporary directory), killed when dropped.
struct Pane {
    socket: PathBuf,
    /// Holds the socket and the configuration.
    _dir: TempDir,
}

impl Pane {
    /// Runs `chinwag --server ADDR chat ARGS` with its history in `history`.
    async fn chat(hub: &TestHub, history: &Path, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let config = dir.path().join("tmux.conf");
        // The pane stays when the program exits, so that what it printed
        // last, and its exit status, can be read.
        std::fs::write(&config, "set -g remain-on-exit on\n").unwrap();
        let program = env!("CARGO_BIN_EXE_chinwag");
        let server = hub.addr.to_string();
        // After it, the shell says whether the terminal was left in raw
        // mode, and the exit status.
        let report = format!(
            "\"$0\" \"$@\"; status=$?; \
             stty -a | grep -q -- -icanon && echo \"{RAW_MODE}\"; \
             echo \"{EXITED}$status]\""
        );
        let mut command = vec!["sh", "-c", &report, program, "--server", &server, "chat"];
        command.extend_from_slice(args);
        let pane = Self { socket, _dir: dir };
        let output = pane
            .tmux()
            .arg("-f")
            .arg(&config)
            .args(["new-session", "-d", "-s", "chat", "-x", "100", "-y", "40"])
            .arg("-e")
            .arg(format!("CHINWAG_HISTORY={}", history.display()))
            .arg("--")
            .args(&command)
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "tmux: {}", text(&output.stderr));
        pane
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command
            .arg("-S")
            .arg(&self.socket)
            // Nothing from the environment the tests run in.
            .env_remove("TMUX")
            .env_remove("CHINWAG_PASSWORD")
            .env_remove("CHINWAG_SERVER")
            .env("TERM", "xterm-256color")
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        let output = self.tmux().args(args).output().await.unwrap();
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            text(&output.stderr)
        );
        output
    }

    /// Types `text` as it is.
    async fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "chat", "-l", text]).await;
    }

    /// Presses keys by tmux's names: `Enter`, `Tab`, `Up`, `C-c`.
    async fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "chat"];
        args.extend_from_slice(keys);
        self.run(&args).await;
    }

    /// Presses Enter and waits for the next prompt, so that what is typed
    /// next goes to the line editor, not to the terminal between two lines.
    async fn enter(&self) {
        let before = self.screen().await;
        let prompts = |screen: &str| {
            screen
                .lines()
                .filter(|line| line.starts_with("alice>"))
                .count()
        };
        let count = prompts(&before);
        self.press(&["Enter"]).await;
        self.wait_for("the next prompt", |screen| {
            prompts(screen) > count && last_prompt(screen) == Some("alice>")
        })
        .await;
    }

    async fn screen(&self) -> String {
        text(
            &self
                .run(&["capture-pane", "-p", "-S", "-", "-t", "chat"])
                .await
                .stdout,
        )
    }

    /// Waits until the screen satisfies `ready`, and returns it.
    async fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                let screen = self.screen().await;
                if ready(&screen) {
                    return screen;
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        if let Ok(screen) = waited {
            return screen;
        }
        panic!("{what} did not show; the screen:\n{}", self.screen().await)
    }

    /// Waits until the screen shows `needle`.
    async fn wait_for_text(&self, needle: &str) -> String {
        self.wait_for(&format!("{needle:?}"), |screen| screen.contains(needle))
            .await
    }

    /// The last line showing the prompt: the line being typed.
    async fn wait_for_line(&self, typed: &str) -> String {
        let want = format!("alice> {typed}");
        self.wait_for(&format!("the line {want:?}"), |screen| {
            last_prompt(screen).is_some_and(|line| line.trim_end() == want.trim_end())
        })
        .await
    }

    /// Waits for the program to exit, and returns its status (which the
    /// shell around it prints: tmux can be slow to notice a pane's exit).
    async fn exit_status(&self) -> i32 {
        let screen = self.wait_for_text(EXITED).await;
        let status = screen
            .lines()
            .find_map(|line| line.trim().strip_prefix(EXITED))
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or_else(|| panic!("no exit status on the screen:\n{screen}"));
        assert!(!screen.contains(RAW_MODE), "{screen}");
        status.parse().unwrap()
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn last_prompt(screen: &str) -> Option<&str> {
    screen.lines().rev().find(|line| line.starts_with("alice>"))
}

/// The next message `session` gets, skipping other frames.
/// A hub, bob on it in-process, and alice's `chat` at its prompt in a
/// pane, with its history in a temporary directory (kept while it lives).
async fn alice_chatting_with_bob() -> (TestHub, Session, tempfile::TempDir, Pane) {
    let hub = TestHub::start().await;
    let bob = hub.hub.attach("bob").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let pane = Pane::chat(&hub, &history, &["--nick", "alice"]).await;
    pane.wait_for_line("").await;
    (hub, bob, dir, pane)
}

async fn next_message(session: &mut Session) -> Message {
    within("a message", async {
        loop {
            match session.recv().await {
                Some(ServerFrame::Message(message)) => return message,
                Some(_) => {}
                None => panic!("session closed"),
            }
        }
    })
    .await
}

/// Waits for alice to leave, failing if she sent `session` anything first.
async fn gone_without_a_word(session: &mut Session) {
    within("alice to go offline", async {
        loop {
            match session.recv().await {
                Some(ServerFrame::Presence(presence))
                    if presence.nick == "alice" && !presence.online =>
                {
                    return;
                }
                Some(ServerFrame::Message(message)) => panic!("alice sent {message:?}"),
                Some(_) => {}
                None => panic!("session closed"),
            }
        }
    })
    .await;
}

/// The history file's entries (rustyline's format: a `#V2` line first).
fn history_entries(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| *line != "#V2")
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_typed_are_sent_kept_in_a_bounded_history_and_recalled_next_time() {
    if !tmux_installed().await {
        return;
    }
    let hub = TestHub::start().await;
    let mut bob = hub.hub.attach("bob").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("state/chinwag/history");
    std::fs::create_dir_all(history.parent().unwrap()).unwrap();
    // A full history from earlier runs: the oldest line makes room.
    let old: Vec<String> = (1..=1_000).map(|i| format!("old line {i}")).collect();
    std::fs::write(&history, old.join("\n") + "\n").unwrap();

    let pane = Pane::chat(&hub, &history, &["--nick", "alice"]).await;
    pane.wait_for_text("joined as alice").await;
    pane.wait_for_line("").await;
    pane.type_text("hello from a terminal").await;
    pane.enter().await;
    let message = next_message(&mut bob).await;
    assert_eq!(message.from, "alice");
    assert_eq!(message.to, Recipients::Everyone);
    assert_eq!(message.text, "hello from a terminal");
    // A line typed with a leading space is sent but not kept.
    pane.type_text(" a secret").await;
    pane.enter().await;
    assert_eq!(next_message(&mut bob).await.text, " a secret");
    pane.wait_for_line("").await;
    pane.press(&["C-d"]).await;
    assert_eq!(pane.exit_status().await, 0);
    drop(pane);

    let entries = history_entries(&history);
    assert_eq!(entries.len(), 1_000, "bounded");
    assert_eq!(entries[0], "old line 2");
    assert_eq!(entries[999], "hello from a terminal");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&history).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }

    // The next run recalls it with Up, and Enter sends it again.
    let pane = Pane::chat(&hub, &history, &["--nick", "alice"]).await;
    pane.wait_for_line("").await;
    pane.press(&["Up"]).await;
    pane.wait_for_line("hello from a terminal").await;
    pane.enter().await;
    assert_eq!(next_message(&mut bob).await.text, "hello from a terminal");
    // Ctrl+R finds an older one, and Enter sends it, as in a shell.
    pane.press(&["C-r"]).await;
    pane.type_text("line 999").await;
    pane.wait_for_text("old line 999").await;
    pane.enter().await;
    assert_eq!(next_message(&mut bob).await.text, "old line 999");
    pane.type_text("/quit").await;
    pane.press(&["Enter"]).await;
    assert_eq!(pane.exit_status().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tab_completes_nicknames() {
    if !tmux_installed().await {
        return;
    }
    let (hub, mut bob, _dir, pane) = alice_chatting_with_bob().await;
    pane.type_text("@b").await;
    pane.press(&["Tab"]).await;
    pane.wait_for_line("@bob").await;
    pane.type_text("hi bob").await;
    // The space after the name came with it.
    pane.wait_for_line("@bob hi bob").await;
    pane.enter().await;
    let message = next_message(&mut bob).await;
    assert_eq!(message.to, Recipients::Users(vec!["bob".into()]));
    assert_eq!(message.text, "hi bob");

    // And carol, who comes later, after /msg.
    let mut carol = hub.hub.attach("carol").await.unwrap();
    pane.wait_for_text("carol is online").await;
    pane.type_text("/msg c").await;
    pane.press(&["Tab"]).await;
    pane.wait_for_line("/msg carol").await;
    pane.type_text("psst").await;
    pane.enter().await;
    let message = next_message(&mut carol).await;
    assert_eq!(message.to, Recipients::Users(vec!["carol".into()]));
    assert_eq!(message.text, "psst");
    pane.press(&["C-d"]).await;
    assert_eq!(pane.exit_status().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_clears_the_line_and_a_second_quits() {
    if !tmux_installed().await {
        return;
    }
    let (_hub, mut bob, dir, pane) = alice_chatting_with_bob().await;
    pane.type_text("half typed").await;
    pane.wait_for_line("half typed").await;
    pane.press(&["C-c"]).await;
    pane.wait_for_line("(Ctrl+C again or Ctrl+D to quit)").await;
    pane.press(&["C-c"]).await;
    assert_eq!(pane.exit_status().await, 0);
    // Nothing was sent.
    gone_without_a_word(&mut bob).await;
    assert!(
        !dir.path().join("history").exists(),
        "nothing typed was kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_d_deletes_a_character_and_quits_on_an_empty_line() {
    if !tmux_installed().await {
        return;
    }
    let (_hub, mut bob, _dir, pane) = alice_chatting_with_bob().await;
    pane.type_text("abxc").await;
    // On the x: Ctrl+D deletes it, and Ctrl+K cuts what follows.
    pane.press(&["Left", "Left", "C-d"]).await;
    pane.wait_for_line("abc").await;
    pane.press(&["C-k"]).await;
    pane.wait_for_line("ab").await;
    pane.enter().await;
    assert_eq!(next_message(&mut bob).await.text, "ab");
    pane.wait_for_line("").await;
    pane.press(&["C-d"]).await;
    assert_eq!(pane.exit_status().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_msg_and_me() {
    if !tmux_installed().await {
        return;
    }
    let (_hub, mut bob, _dir, pane) = alice_chatting_with_bob().await;
    pane.type_text("/help").await;
    pane.enter().await;
    let screen = pane.wait_for_text("* /help ").await;
    for command in [
        "* @nick text ",
        "* /msg nick text ",
        "* /me text ",
        "* /who ",
        "* /quit ",
    ] {
        assert!(
            screen.lines().any(|line| line.starts_with(command)),
            "{command:?} on a line of its own:\n{screen}"
        );
    }

    pane.type_text("/msg bob a word").await;
    pane.enter().await;
    let message = next_message(&mut bob).await;
    assert_eq!(message.to, Recipients::Users(vec!["bob".into()]));
    assert_eq!(message.text, "a word");
    pane.type_text("/me waves").await;
    pane.enter().await;
    let message = next_message(&mut bob).await;
    assert_eq!(message.to, Recipients::Everyone);
    assert_eq!(message.text, "* alice waves");
    pane.type_text("/msg bob").await;
    pane.enter().await;
    pane.wait_for_text("! usage: /msg nick text").await;

    // What arrives prints above the line being typed, which stays.
    pane.type_text("half").await;
    bob.send(Recipients::Users(vec!["alice".into()]), "hello alice")
        .await
        .unwrap();
    let screen = pane.wait_for_text("<bob> (to alice) hello alice").await;
    pane.wait_for_line("half").await;
    assert!(!screen.contains("alice> half<bob>"), "{screen}");
    pane.press(&["C-c", "C-c"]).await;
    assert_eq!(pane.exit_status().await, 0);
}

/// A message to someone whose client confirms what it receives: the chat
/// says when it was received, under the line that sent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_received_is_said_so() {
    if !tmux_installed().await {
        return;
    }
    let hub = TestHub::start().await;
    let options = ClientOptions::default().confirms(true);
    let (_bob, mut bob_events) = Client::connect_with(hub.addr, "bob", options)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pane = Pane::chat(&hub, &dir.path().join("history"), &["--nick", "alice"]).await;
    pane.wait_for_line("").await;
    pane.type_text("@bob are you there?").await;
    pane.enter().await;
    let message = within("bob's message", async {
        loop {
            if let Some(Event::Message(message)) = bob_events.recv().await {
                return message;
            }
        }
    })
    .await;
    assert_eq!(message.text, "are you there?");
    let screen = pane.wait_for_text("* received by bob ").await;
    let line = screen
        .lines()
        .find(|line| line.starts_with("* received by bob "))
        .unwrap_or_else(|| panic!("{screen}"));
    // `* received by bob 12:03:11`: the time, and nothing more for a
    // message sent from this chat.
    let clock = line.trim_end().trim_start_matches("* received by bob ");
    assert_eq!(clock.len(), 8, "{line:?}");
    assert_eq!(clock.matches(':').count(), 2, "{line:?}");
    let sent = screen
        .lines()
        .position(|line| line.starts_with("alice> @bob are you there?"));
    let received = screen
        .lines()
        .position(|line| line.starts_with("* received by bob "));
    assert!(sent < received, "{screen}");
    pane.press(&["C-d"]).await;
    assert_eq!(pane.exit_status().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_is_put_back_when_the_hub_ends_the_session_mid_line() {
    if !tmux_installed().await {
        return;
    }
    let hub = TestHub::start().await;
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");

    // Without reconnecting (the default would ride the shutdown out).
    let pane = Pane::chat(&hub, &history, &["--nick", "alice", "--no-reconnect"]).await;
    pane.wait_for_line("").await;
    pane.type_text("half").await;
    pane.wait_for_line("half").await;
    hub.shutdown().await;
    // rustyline is still reading keys: the program puts the terminal back
    // itself (`exit_status` checks it), and says why it left.
    assert_eq!(pane.exit_status().await, 1);
    pane.wait_for_text("chinwag: ").await;
}
