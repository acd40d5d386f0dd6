//! The `chinwag` program as a black box: real processes against a hub
//! started in the test on an ephemeral port.

mod support;

use std::process::{Output, Stdio};

use chinwag_hub::protocol::{Recipients, ServerFrame};
use serde_json::Value;
use support::{TestHub, within};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

fn chinwag(hub: &TestHub) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chinwag"));
    command
        .arg("--server")
        .arg(hub.addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn run(command: &mut Command) -> Output {
    within("chinwag to finish", command.output()).await.unwrap()
}

async fn finish(child: Child) -> Output {
    within("chinwag to finish", child.wait_with_output())
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// A message frame for `session`, skipping presence and the like.
async fn next_message(session: &mut chinwag_hub::Session) -> chinwag_hub::protocol::Message {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_exits_zero_only_when_every_recipient_got_it() {
    let hub = TestHub::start().await;
    let mut bob = hub.hub.attach("bob").await.unwrap();

    let output =
        run(chinwag(&hub).args(["send", "--nick", "alice", "--to", "bob", "hello", "bob"])).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "* delivered to bob\n");
    let message = next_message(&mut bob).await;
    assert_eq!(message.from, "alice");
    assert_eq!(message.text, "hello bob");

    let output =
        run(chinwag(&hub).args(["send", "--nick", "alice", "--to", "bob,dave", "hi"])).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "* delivered to bob\n! not delivered to dave: no such user\n"
    );

    let output =
        run(chinwag(&hub).args(["--json", "send", "--nick", "alice", "--all", "hi", "all"])).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = json_lines(&output);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["type"], "ack");
    assert_eq!(records[0]["delivered"], 1);
    assert_eq!(records[0]["ok"], true);
    assert_eq!(next_message(&mut bob).await.text, "hi");
    assert_eq!(next_message(&mut bob).await.text, "hi all");
}

/// `chinwag send` and `chinwag who` are one-shot: they register `QUIET`,
/// so nobody sees them come and go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_commands_come_and_go_unannounced() {
    let hub = TestHub::start().await;
    let mut bob = hub.hub.attach("bob").await.unwrap();
    assert!(matches!(bob.recv().await, Some(ServerFrame::Welcome(_))));
    for text in ["one", "two"] {
        let output =
            run(chinwag(&hub).args(["send", "--nick", "alice", "--to", "bob", text])).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let output = run(chinwag(&hub).arg("who")).await;
        assert_eq!(stdout(&output), "* online: bob\n");
    }
    // Bob's frames are the two messages, and nothing about anyone arriving
    // or leaving.
    for text in ["one", "two"] {
        match within("a frame", bob.recv()).await {
            Some(ServerFrame::Message(m)) => {
                assert_eq!((m.from.as_str(), m.text.as_str()), ("alice", text));
            }
            other => panic!("expected alice's message, got {other:?}"),
        }
    }
    let _marker = hub.hub.attach("carol").await.unwrap();
    match within("a frame", bob.recv()).await {
        Some(ServerFrame::Presence(p)) => assert_eq!(p.nick, "carol"),
        other => panic!("expected carol's arrival, got {other:?}"),
    }
    // `--to everyone` (a reserved name no user can have) is a broadcast.
    let output =
        run(chinwag(&hub).args(["send", "--nick", "alice", "--to", "everyone", "all"])).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "* delivered to 2 users\n");
    let message = next_message(&mut bob).await;
    assert_eq!(
        (message.to, message.text.as_str()),
        (Recipients::Everyone, "all")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reports_usage_and_connection_errors_with_status_2() {
    let hub = TestHub::start().await;

    let output = run(chinwag(&hub).args(["send", "--nick", "alice", "hi"])).await;
    assert_eq!(output.status.code(), Some(2), "--to or --all is required");

    let output = run(chinwag(&hub).args(["send", "--nick", "9lives", "--to", "bob", "hi"])).await;
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("chinwag: ") && err.contains("invalid nickname"),
        "{err}"
    );

    // Nothing listens on port 1 (a freed ephemeral port could be taken by
    // another test's hub at once).
    let output = run(Command::new(env!("CARGO_BIN_EXE_chinwag"))
        .args([
            "--server",
            support::CLOSED_PORT,
            "send",
            "--nick",
            "alice",
            "--to",
            "bob",
            "hi",
        ])
        .stdin(Stdio::null()))
    .await;
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_json_prints_one_object_per_event() {
    let hub = TestHub::start().await;
    let mut alice = hub.hub.attach("alice").await.unwrap();

    let listen = chinwag(&hub)
        .args(["--json", "listen", "--nick", "bob", "--count", "2"])
        .spawn()
        .unwrap();
    hub.wait_online("bob").await;
    alice
        .send(Recipients::Users(vec!["bob".into()]), "hi bob")
        .await
        .unwrap();
    alice.send(Recipients::Everyone, "hi all").await.unwrap();

    let output = finish(listen).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = json_lines(&output);
    assert_eq!(records[0]["type"], "roster");
    assert_eq!(records[0]["online"], serde_json::json!(["alice", "bob"]));
    let messages: Vec<&Value> = records.iter().filter(|r| r["type"] == "message").collect();
    assert_eq!(messages.len(), 2, "{records:?}");
    assert_eq!(messages[0]["from"], "alice");
    assert_eq!(messages[0]["to"], serde_json::json!(["bob"]));
    assert_eq!(messages[0]["text"], "hi bob");
    assert_eq!(messages[1]["to"], serde_json::json!([]));
    assert_eq!(messages[1]["text"], "hi all");
    assert!(messages[0]["id"].as_u64() < messages[1]["id"].as_u64());
    for message in messages {
        let ts = message["ts"].as_str().unwrap();
        assert!(
            ts.contains('T') && ts.ends_with('Z'),
            "not RFC 3339 UTC: {ts}"
        );
    }

    // bob quit when done: alice sees him leave.
    let offline = within("bob's offline presence", async {
        loop {
            if let Some(ServerFrame::Presence(p)) = alice.recv().await
                && !p.online
            {
                return p.nick;
            }
        }
    })
    .await;
    assert_eq!(offline, "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_chat_reaches_a_listening_bob() {
    let hub = TestHub::start().await;
    let listen = chinwag(&hub)
        .args(["--json", "listen", "--nick", "bob", "--count", "1"])
        .spawn()
        .unwrap();
    hub.wait_online("bob").await;

    let mut chat = chinwag(&hub)
        .args(["chat", "--nick", "alice"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = chat.stdin.take().unwrap();
    // `/who` first: bob leaves once he has his one message.
    stdin.write_all(b"/who\n@bob hi\n").await.unwrap();
    drop(stdin);
    let output = finish(chat).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    // Answers print in the order of the lines that asked (events, such as
    // bob leaving, may come between).
    let roster = out.find("* online: alice, bob\n");
    let delivered = out.find("* delivered to bob\n");
    assert!(roster.is_some() && delivered.is_some(), "{out}");
    assert!(roster < delivered, "{out}");

    let output = finish(listen).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = json_lines(&output);
    let message = records
        .iter()
        .find(|r| r["type"] == "message")
        .unwrap_or_else(|| panic!("no message in {records:?}"));
    assert_eq!(message["from"], "alice");
    assert_eq!(message["text"], "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_chat_exits_1_when_a_message_went_nowhere() {
    let hub = TestHub::start().await;
    let mut chat = chinwag(&hub)
        .args(["chat", "--nick", "alice"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = chat.stdin.take().unwrap();
    stdin.write_all(b"@dave hello?\n").await.unwrap();
    drop(stdin);
    let output = finish(chat).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "! not delivered to dave: no such user\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_lists_everyone_else() {
    let hub = TestHub::start().await;
    let _carol = hub.hub.attach("carol").await.unwrap();
    let _alice = hub.hub.attach("alice").await.unwrap();

    let output = run(chinwag(&hub).arg("who")).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "* online: alice, carol\n");

    let output = run(chinwag(&hub).args(["--json", "who", "--nick", "quizzer"])).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        json_lines(&output),
        [serde_json::json!({"type": "roster", "online": ["alice", "carol"]})]
    );
}

/// What `chinwag listen` (and so `chat`, which prints the same lines) shows
/// for texts that try to forge lines or drive the terminal: one line per
/// message, control characters made visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_shows_each_message_on_one_line_whatever_its_text_holds() {
    let forgeries = chinwag_testkit::FORGERIES;
    let hub = TestHub::start().await;
    let mut mallory = hub.hub.attach("mallory").await.unwrap();
    let count = forgeries.len().to_string();
    let listen = chinwag(&hub)
        .args(["listen", "--nick", "tina", "--count", &count])
        .spawn()
        .unwrap();
    hub.wait_online("tina").await;
    for (text, _) in forgeries {
        mallory
            .send(Recipients::Users(vec!["tina".into()]), text)
            .await
            .unwrap();
    }
    let output = finish(listen).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    let messages: Vec<&str> = out.lines().filter(|line| line.starts_with('[')).collect();
    assert_eq!(messages.len(), forgeries.len(), "{out}");
    for (line, (_, shown)) in messages.iter().zip(forgeries) {
        assert!(
            line.ends_with(&format!("<mallory> (to tina) {shown}")),
            "{line:?}"
        );
    }
    assert!(
        !out.lines()
            .any(|line| line.starts_with("* admin") || line.starts_with("* root")),
        "{out}"
    );
    assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
}
