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
    chinwag_at(hub.addr)
}

/// The program pointed at `addr`, with no password in its environment.
fn chinwag_at(addr: std::net::SocketAddr) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chinwag"));
    command
        .arg("--server")
        .arg(addr.to_string())
        .env_remove("CHINWAG_PASSWORD")
        .env_remove("CHINWAG_NEW_PASSWORD")
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
        assert_eq!(stdout(&output), "* bob is online (guest)\n");
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

/// `listen` rides out a hub restart without being asked to: it says it was
/// disconnected, reconnects to the hub started again on the same address,
/// and prints what is sent to it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_reconnects_to_a_restarted_hub_by_default() {
    let first = TestHub::start().await;
    let addr = first.addr;
    let listen = chinwag_at(addr)
        .args(["--json", "listen", "--nick", "bob", "--count", "1"])
        .spawn()
        .unwrap();
    first.wait_online("bob").await;
    first.hub.shutdown().await;
    let second = support::start_on(addr).await;
    second.wait_online("bob").await;
    let mut alice = second.hub.attach("alice").await.unwrap();
    alice
        .send(Recipients::Users(vec!["bob".into()]), "after the restart")
        .await
        .unwrap();
    let output = finish(listen).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = json_lines(&output);
    let kinds: Vec<&str> = records.iter().filter_map(|r| r["type"].as_str()).collect();
    let at = |kind: &str| kinds.iter().position(|k| *k == kind);
    assert!(at("disconnected").is_some(), "{kinds:?}");
    assert!(at("disconnected") < at("reconnected"), "{kinds:?}");
    assert!(at("reconnected") < at("message"), "{kinds:?}");
    let message = &records[at("message").expect("a message")];
    assert_eq!(message["text"], "after the restart");
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
    let roster = out.find("* alice is online (guest)\n* bob is online (guest)\n");
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

    // The table of users: on a hub without accounts, guests online.
    let output = run(chinwag(&hub).arg("who")).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "* alice is online (guest)\n* carol is online (guest)\n"
    );

    let output = run(chinwag(&hub).args(["--json", "who", "--nick", "quizzer"])).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let guest = |nick: &str| serde_json::json!({"nick": nick, "online": true, "registered": false, "last_seen_ms": null});
    assert_eq!(
        json_lines(&output),
        [serde_json::json!({"type": "users", "users": [guest("alice"), guest("carol")]})]
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

// Accounts, mailboxes and the table of users. Against a scripted hub,
// which lets each test play the hub's part exactly (see `accounts.rs` for
// the library's side).

mod scripted {
    use std::process::Stdio;

    use chinwag_hub::protocol::{
        AccountAction, AccountDone, Ack, ClientFrame, Code, ErrorFrame, MailboxHeader, Message,
        RecipientStatus, Recipients, ServerFrame, UserEntry, options, user_flags,
    };
    use futures::SinkExt;
    use tokio::io::AsyncWriteExt;

    use super::support::{ScriptedConn, ScriptedHub, next_frame, welcome};
    use super::{chinwag_at, finish, json_lines, run, stderr, stdout};

    /// Answers the client's one SEND with an ACK giving bob `status`.
    async fn ack_bob(conn: &mut ScriptedConn, status: Code) {
        let Some(ClientFrame::Send(send)) = next_frame(conn).await else {
            panic!("expected SEND");
        };
        let ack = Ack {
            client_id: send.id,
            message_id: 1,
            delivered: 0,
            statuses: vec![RecipientStatus {
                nick: "bob".into(),
                status,
            }],
        };
        conn.send(ServerFrame::Ack(ack)).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_to_a_registered_user_offline_says_stored_and_exits_zero() {
        let scripted = ScriptedHub::start().await;
        let child = chinwag_at(scripted.addr)
            .args(["send", "--nick", "carol", "--to", "bob", "see", "you"])
            .env("CHINWAG_PASSWORD", "carol's password")
            .spawn()
            .unwrap();
        let (mut conn, hello) = scripted.accept_hello().await;
        assert_eq!(hello.password.as_deref(), Some("carol's password"));
        welcome(&mut conn, &hello, options::KNOWN).await;
        ack_bob(&mut conn, Code::STORED).await;
        drop(conn);
        let output = finish(child).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(stdout(&output), "* stored for bob\n");

        // A full mailbox, or a store that cannot write: a failure.
        for (code, line) in [
            (Code::MAILBOX_FULL, "! not delivered to bob: mailbox full\n"),
            (
                Code::STORE_FAILED,
                "! not delivered to bob: could not store\n",
            ),
        ] {
            let child = chinwag_at(scripted.addr)
                .args(["send", "--nick", "carol", "--to", "bob", "hi"])
                .spawn()
                .unwrap();
            let mut conn = scripted.accept_granting(options::KNOWN).await;
            ack_bob(&mut conn, code).await;
            drop(conn);
            let output = finish(child).await;
            assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
            assert_eq!(stdout(&output), line);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn listen_shows_the_mailbox_then_the_stored_messages_and_confirms_them() {
        let scripted = ScriptedHub::start().await;
        let mut child = chinwag_at(scripted.addr)
            .args([
                "listen",
                "--nick",
                "bob",
                "--count",
                "2",
                "--password-stdin",
            ])
            .env("TZ", "UTC")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"bob's password\n").await.unwrap();
        drop(stdin);
        let (mut conn, hello) = scripted.accept_hello().await;
        assert_eq!(hello.password.as_deref(), Some("bob's password"));
        welcome(&mut conn, &hello, options::KNOWN).await;
        let stored = |id: u64, text: &str| {
            ServerFrame::StoredMessage(Message {
                id,
                // Tuesday 14 November 2023, 22:13 UTC.
                ts_ms: 1_700_000_000_000,
                from: "carol".into(),
                to: Recipients::Users(vec!["bob".into()]),
                text: text.into(),
            })
        };
        for frame in [
            ServerFrame::Users(Vec::new()),
            ServerFrame::Mailbox(MailboxHeader {
                count: 2,
                expired: 3,
            }),
            stored(41, "see you"),
            stored(42, "bye"),
        ] {
            conn.send(frame).await.unwrap();
        }
        // `listen` logged in asks for a reliable session (granted here),
        // which confirms each stored message as it is handed out: in one
        // `CONFIRM` or several, both before the `QUIT`.
        let mut confirmed = Vec::new();
        loop {
            match next_frame(&mut conn).await {
                Some(ClientFrame::Confirm(ids)) => confirmed.extend(ids),
                Some(ClientFrame::Quit) => break,
                other => panic!("expected CONFIRM or QUIT, got {other:?}"),
            }
        }
        assert_eq!(confirmed, [41, 42]);
        drop(conn);
        let output = finish(child).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(
            stdout(&output),
            "* online: bob\n\
             * 2 messages while you were away\n\
             * 3 messages expired unread\n\
             [Tue 14 Nov 22:13] <carol> (to bob) see you  (while you were away)\n\
             [Tue 14 Nov 22:13] <carol> (to bob) bye  (while you were away)\n"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registered_nickname_without_a_password_says_how_to_give_one() {
        let scripted = ScriptedHub::start().await;
        let child = chinwag_at(scripted.addr)
            .args(["listen", "--nick", "bob"])
            .spawn()
            .unwrap();
        let (mut conn, _hello) = scripted.accept_hello().await;
        conn.send(ServerFrame::Error(ErrorFrame::new(
            Code::NICK_REGISTERED,
            0,
        )))
        .await
        .unwrap();
        let output = finish(child).await;
        assert_eq!(output.status.code(), Some(2));
        let error = stderr(&output);
        assert!(
            error.contains("bob is registered and needs its password"),
            "{error}"
        );
        assert!(error.contains("CHINWAG_PASSWORD"), "{error}");
        assert!(error.contains("--password-stdin"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn who_prints_the_table_of_users() {
        use user_flags::{ONLINE, REGISTERED};
        let row = |nick: &str, flags, last_seen_ms| UserEntry {
            flags,
            last_seen_ms,
            nick: nick.into(),
        };
        let table = vec![
            row("alice", REGISTERED | ONLINE, 0),
            row("bob", REGISTERED, 1_700_000_000_000),
            row("carol", REGISTERED, 0),
            row("dave", ONLINE, 0),
        ];
        for json in [false, true] {
            let scripted = ScriptedHub::start().await;
            let mut command = chinwag_at(scripted.addr);
            if json {
                command.arg("--json");
            }
            let child = command
                .args(["who", "--nick", "dave"])
                .env("TZ", "UTC")
                .spawn()
                .unwrap();
            let (mut conn, hello) = scripted.accept_hello().await;
            // Not announced, but keeping the table.
            let asked = hello.options.unwrap();
            assert_ne!(asked & options::QUIET, 0);
            assert_ne!(asked & options::USERS, 0);
            welcome(&mut conn, &hello, options::KNOWN).await;
            // The table after WELCOME, then the answer to WHO.
            conn.send(ServerFrame::Users(table.clone())).await.unwrap();
            assert_eq!(next_frame(&mut conn).await, Some(ClientFrame::Who));
            conn.send(ServerFrame::Users(table.clone())).await.unwrap();
            assert_eq!(next_frame(&mut conn).await, Some(ClientFrame::Quit));
            drop(conn);
            let output = finish(child).await;
            assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
            if json {
                assert_eq!(
                    json_lines(&output),
                    [serde_json::json!({"type": "users", "users": [
                        {"nick": "alice", "online": true, "registered": true, "last_seen_ms": null},
                        {"nick": "bob", "online": false, "registered": true, "last_seen_ms": 1_700_000_000_000_u64},
                        {"nick": "carol", "online": false, "registered": true, "last_seen_ms": null},
                    ]})]
                );
            } else {
                // Everyone but the nickname that asked.
                assert_eq!(
                    stdout(&output),
                    "* alice is online\n\
                     * bob is offline, last seen Tue 14 Nov 22:13\n\
                     * carol is offline, never seen\n"
                );
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn account_commands_send_one_request_and_say_what_happened() {
        let scripted = ScriptedHub::start().await;
        let mut child = chinwag_at(scripted.addr)
            .args(["account", "create", "--nick", "alice", "--password-stdin"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"correct horse\n").await.unwrap();
        drop(stdin);
        let mut conn = scripted.accept_raw().await;
        let Some(ClientFrame::Account(request)) = next_frame(&mut conn).await else {
            panic!("expected ACCOUNT");
        };
        assert_eq!(request.action, AccountAction::Create);
        assert_eq!(request.password, "correct horse");
        let done = AccountDone {
            action: AccountAction::Create,
            nick: "alice".into(),
        };
        conn.send(ServerFrame::AccountDone(done)).await.unwrap();
        let output = finish(child).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(stdout(&output), "* account alice created\n");

        // Refused: exit 1, the hub's reason on stderr.
        let mut child = chinwag_at(scripted.addr)
            .args(["account", "passwd", "--nick", "alice", "--password-stdin"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"old password\nnew password\n")
            .await
            .unwrap();
        drop(stdin);
        let mut conn = scripted.accept_raw().await;
        let Some(ClientFrame::Account(request)) = next_frame(&mut conn).await else {
            panic!("expected ACCOUNT");
        };
        assert_eq!(
            (request.password.as_str(), request.new_password.as_str()),
            ("old password", "new password")
        );
        conn.send(ServerFrame::Error(ErrorFrame::new(Code::BAD_PASSWORD, 2)))
            .await
            .unwrap();
        let output = finish(child).await;
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(
            stderr(&output).ends_with("refused: wrong password\n"),
            "{}",
            stderr(&output)
        );

        // Deleting from a script needs --yes; nothing is sent without it.
        let output = run(chinwag_at(scripted.addr)
            .args(["account", "delete", "--nick", "alice"])
            .env("CHINWAG_PASSWORD", "correct horse"))
        .await;
        assert_eq!(output.status.code(), Some(2));
        assert!(
            stderr(&output).contains("pass --yes"),
            "{}",
            stderr(&output)
        );

        // A password the hub would refuse is refused before connecting.
        let output = run(chinwag_at(scripted.addr)
            .args(["account", "create", "--nick", "alice"])
            .env("CHINWAG_PASSWORD", "short"))
        .await;
        assert_eq!(output.status.code(), Some(2));
        assert!(
            stderr(&output).contains("a password must be 8 to 1024 bytes long"),
            "{}",
            stderr(&output)
        );
    }
}

// The same commands against the real hub, its store on a temporary
// directory: the whole story as a person types it.
mod with_store {
    use std::process::Stdio;

    use chinwag_client::{Client, ClientOptions, Event};
    use tokio::io::AsyncWriteExt;

    use super::support::{TestHub, event_where, hub_with_store};
    use super::{chinwag, finish, json_lines, run, stderr, stdout};

    const PASSWORD: &str = "correct horse";

    async fn create(hub: &TestHub, nick: &str) {
        let mut child = chinwag(hub)
            .args(["account", "create", "--nick", nick, "--password-stdin"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .await
            .unwrap();
        drop(stdin);
        let output = finish(child).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(stdout(&output), format!("* account {nick} created\n"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_to_bob_offline_waits_for_his_login() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub_with_store(&dir).await;
        create(&hub, "bob").await;

        let output =
            run(chinwag(&hub).args(["send", "--nick", "carol", "--to", "bob", "see you"])).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(stdout(&output), "* stored for bob\n");

        // The wrong password: a clear error, status 2, and nothing read.
        let output = run(chinwag(&hub)
            .args(["listen", "--nick", "bob", "--count", "1"])
            .env("CHINWAG_PASSWORD", "not his password"))
        .await;
        assert_eq!(output.status.code(), Some(2));
        assert!(
            stderr(&output).contains("wrong password for bob"),
            "{}",
            stderr(&output)
        );

        let output = run(chinwag(&hub)
            .args(["listen", "--nick", "bob", "--count", "1"])
            .env("CHINWAG_PASSWORD", PASSWORD))
        .await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let out = stdout(&output);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "* online: bob");
        assert_eq!(lines[1], "* 1 message while you were away");
        assert!(
            lines[2].starts_with('[')
                && lines[2].ends_with("] <carol> (to bob) see you  (while you were away)"),
            "{out}"
        );
        assert_eq!(lines.len(), 3, "{out}");

        // Read and confirmed: the next login finds nothing waiting.
        let options = ClientOptions::default().password(PASSWORD);
        let (_bob, mut events) = Client::connect_with(hub.addr, "bob", options)
            .await
            .unwrap();
        let header = event_where(&mut events, |event| match event {
            Event::Mailbox(header) => Some(header),
            _ => None,
        })
        .await;
        assert_eq!(header.count, 0);
    }

    /// Logged in, `listen` is a reliable session: a message that reached a
    /// `listen` that never printed it (frozen, then killed with `kill -9`)
    /// comes to the next one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_a_killed_listen_never_printed_comes_to_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub_with_store(&dir).await;
        create(&hub, "bob").await;
        let mut frozen = chinwag(&hub)
            .args(["listen", "--nick", "bob"])
            .env("CHINWAG_PASSWORD", PASSWORD)
            .spawn()
            .unwrap();
        hub.wait_online("bob").await;
        let pid = frozen.id().unwrap().to_string();
        let stopped = tokio::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .await
            .unwrap();
        assert!(stopped.success());
        let mut alice = hub.hub.attach("alice").await.unwrap();
        alice
            .send(
                chinwag_hub::protocol::Recipients::Users(vec!["bob".into()]),
                "while frozen",
            )
            .await
            .unwrap();
        // Acknowledged: stored and sent to the frozen listen.
        super::within("the ack", async {
            loop {
                if let Some(chinwag_hub::protocol::ServerFrame::Ack(ack)) = alice.recv().await {
                    assert_eq!(
                        ack.statuses[0].status,
                        chinwag_hub::protocol::Code::DELIVERED,
                        "{ack:?}"
                    );
                    return;
                }
            }
        })
        .await;
        frozen.kill().await.unwrap();
        hub.wait_offline("bob").await;

        let output = run(chinwag(&hub)
            .args(["listen", "--nick", "bob", "--count", "1"])
            .env("CHINWAG_PASSWORD", PASSWORD))
        .await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(
            stdout(&output).contains("<alice> (to bob) while frozen"),
            "{}",
            stdout(&output)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn who_lists_accounts_offline_with_when_they_were_last_seen() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub_with_store(&dir).await;
        create(&hub, "alice").await;
        create(&hub, "bob").await;
        // Alice comes and goes; bob never came.
        let output = run(chinwag(&hub)
            .args(["send", "--nick", "alice", "--to", "bob", "hi"])
            .env("CHINWAG_PASSWORD", PASSWORD))
        .await;
        assert_eq!(stdout(&output), "* stored for bob\n");
        let _carol = hub.hub.attach("carol").await.unwrap();

        let output = run(chinwag(&hub).arg("who")).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let out = stdout(&output);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(
            lines[0].starts_with("* alice is offline, last seen "),
            "{out}"
        );
        assert_eq!(lines[1], "* bob is offline, never seen");
        assert_eq!(lines[2], "* carol is online (guest)");

        let output = run(chinwag(&hub).args(["--json", "who"])).await;
        let records = json_lines(&output);
        let users = records[0]["users"].as_array().unwrap();
        assert_eq!(users[0]["nick"], "alice");
        assert_eq!(users[0]["registered"], true);
        assert_eq!(users[0]["online"], false);
        assert!(users[0]["last_seen_ms"].as_u64().unwrap() > 0);
        assert_eq!(users[2]["registered"], false);

        // Deleting the account takes it out of the table.
        let output = run(chinwag(&hub)
            .args(["account", "delete", "--nick", "bob", "--yes"])
            .env("CHINWAG_PASSWORD", PASSWORD))
        .await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(stdout(&output), "* account bob deleted\n");
        let output = run(chinwag(&hub).arg("who")).await;
        assert!(!stdout(&output).contains("bob"), "{}", stdout(&output));
    }
}

// Receipts: `send --wait received` against the real hub, with `listen` (or
// a client that does not confirm) on the other end; what `listen` asks for
// and prints, against a scripted hub.
mod receipts {
    use std::process::Stdio;

    use chinwag_client::Client;
    use chinwag_hub::protocol::{ClientFrame, Message, Receipt, Recipients, ServerFrame, options};
    use futures::SinkExt;
    use serde_json::Value;

    use super::support::{ScriptedHub, TestHub, next_frame, welcome};
    use super::{chinwag, chinwag_at, finish, json_lines, run, stderr, stdout};

    /// `* received by bob HH:MM:SS`, whatever the time.
    fn is_receipt_line(line: &str, nick: &str) -> bool {
        let prefix = format!("* received by {nick} ");
        line.strip_prefix(&prefix).is_some_and(|clock| {
            clock.len() == 8 && clock.chars().filter(|c| *c == ':').count() == 2
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_wait_received_exits_zero_once_the_listener_confirms() {
        let hub = TestHub::start().await;
        let listen = chinwag(&hub)
            .args(["listen", "--nick", "bob", "--count", "2"])
            .spawn()
            .unwrap();
        hub.wait_online("bob").await;

        let output = run(chinwag(&hub).args([
            "send", "--nick", "alice", "--to", "bob", "--wait", "received", "did", "you", "get",
            "this?",
        ]))
        .await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let out = stdout(&output);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0], "* delivered to bob");
        assert!(is_receipt_line(lines[1], "bob"), "{out}");

        // As records: the ack, then the receipt naming its message.
        let output = run(chinwag(&hub).args([
            "--json", "send", "--nick", "alice", "--to", "BOB", "--wait", "received", "again",
        ]))
        .await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let records = json_lines(&output);
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[0]["type"], "ack");
        assert_eq!(records[1]["type"], "receipt");
        assert_eq!(records[1]["id"], records[0]["id"]);
        assert_eq!(records[1]["recipient"], "bob");
        let ts = records[1]["ts"].as_str().unwrap();
        assert!(ts.contains('T') && ts.ends_with('Z'), "{ts}");

        let output = finish(listen).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(stdout(&output).contains("<alice> (to bob) did you get this?"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_wait_received_says_who_did_not_confirm_in_time() {
        let hub = TestHub::start().await;
        // Bob's client does not confirm (the library's default), carol's
        // listen was told not to.
        let (_bob, _bob_events) = Client::connect(hub.addr, "bob").await.unwrap();
        let carol = chinwag(&hub)
            .args(["listen", "--nick", "carol", "--no-receipts"])
            .spawn()
            .unwrap();
        hub.wait_online("carol").await;

        for (to, missing) in [
            ("bob", "bob"),
            ("carol", "carol"),
            ("bob,carol", "bob, carol"),
        ] {
            let output = run(chinwag(&hub).args([
                "send",
                "--nick",
                "alice",
                "--to",
                to,
                "--wait",
                "received",
                "--timeout",
                "300ms",
                "hello?",
            ]))
            .await;
            assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
            let err = stderr(&output);
            assert!(
                err.starts_with(&format!("chinwag: no receipt within 300ms from {missing}:")),
                "{err}"
            );
            assert!(
                !stdout(&output).contains("received by"),
                "{}",
                stdout(&output)
            );
        }

        // Not delivered to everyone: 1 at once, as without --wait.
        let output = run(chinwag(&hub).args([
            "send", "--nick", "alice", "--to", "bob,dave", "--wait", "received", "hi",
        ]))
        .await;
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert_eq!(
            stdout(&output),
            "* delivered to bob\n! not delivered to dave: no such user\n"
        );
        drop(carol);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_wait_received_is_refused_where_no_receipt_can_come() {
        let hub = TestHub::start().await;
        let (_bob, _events) = Client::connect(hub.addr, "bob").await.unwrap();
        for args in [
            &["--all", "--wait", "received", "hi"][..],
            &["--to", "everyone", "--wait", "received", "hi"],
            &["--to", "bob", "--timeout", "5s", "hi"],
        ] {
            let output = run(chinwag(&hub).args(["send", "--nick", "alice"]).args(args)).await;
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
        }
        let err = stderr(
            &run(chinwag(&hub).args([
                "send", "--nick", "alice", "--to", "everyone", "--wait", "received", "hi",
            ]))
            .await,
        );
        assert!(
            err.contains("a message to everyone gets no receipts"),
            "{err}"
        );
    }

    fn message(id: u64) -> ServerFrame {
        ServerFrame::Message(Message {
            id,
            // 22:13:20 UTC.
            ts_ms: 1_700_000_000_000,
            from: "carol".into(),
            to: Recipients::Users(vec!["alice".into()]),
            text: "hi".into(),
        })
    }

    /// `listen` asks to confirm and for receipts, prints the receipts that
    /// come (for messages sent before it started), and confirms the message
    /// it printed before it leaves; `--no-receipts` asks for neither and
    /// confirms no live message.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn listen_asks_for_receipts_prints_them_and_confirms_what_it_printed() {
        let receipt = ServerFrame::Receipts(vec![Receipt {
            message_id: 12,
            received_ms: 1_700_000_000_000,
            recipient: "bob".into(),
        }]);
        for json in [false, true] {
            let scripted = ScriptedHub::start().await;
            let mut command = chinwag_at(scripted.addr);
            if json {
                command.arg("--json");
            }
            let child = command
                .args(["listen", "--nick", "alice", "--count", "1"])
                .env("TZ", "UTC")
                .spawn()
                .unwrap();
            let (mut conn, hello) = scripted.accept_hello().await;
            let asked = hello.options.unwrap();
            let both = options::CONFIRMS | options::RECEIPTS;
            assert_eq!(asked & both, both);
            // A guest: a real hub grants no reliable session to one.
            welcome(&mut conn, &hello, options::KNOWN & !options::RELIABLE).await;
            conn.send(receipt.clone()).await.unwrap();
            conn.send(message(13)).await.unwrap();
            assert_eq!(
                next_frame(&mut conn).await,
                Some(ClientFrame::Confirm(vec![13]))
            );
            assert_eq!(next_frame(&mut conn).await, Some(ClientFrame::Quit));
            drop(conn);
            let output = finish(child).await;
            assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
            if json {
                let records = json_lines(&output);
                let receipts: Vec<&Value> =
                    records.iter().filter(|r| r["type"] == "receipt").collect();
                assert_eq!(
                    receipts,
                    [
                        &serde_json::json!({"type": "receipt", "id": 12, "recipient": "bob", "ts": "2023-11-14T22:13:20.000Z"})
                    ]
                );
            } else {
                assert_eq!(
                    stdout(&output),
                    "* online: alice\n\
                     * received by bob 22:13:20 (message 12, sent earlier)\n\
                     [22:13:20] <carol> (to alice) hi\n"
                );
            }
        }

        let scripted = ScriptedHub::start().await;
        let child = chinwag_at(scripted.addr)
            .args(["listen", "--nick", "alice", "--count", "1", "--no-receipts"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let (mut conn, hello) = scripted.accept_hello().await;
        let asked = hello.options.unwrap();
        assert_eq!(asked & (options::CONFIRMS | options::RECEIPTS), 0);
        welcome(&mut conn, &hello, options::KNOWN).await;
        conn.send(message(13)).await.unwrap();
        assert_eq!(next_frame(&mut conn).await, Some(ClientFrame::Quit));
        drop(conn);
        let output = finish(child).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
}

/// Shell completions and the manual page come from the commands themselves.
#[test]
fn completions_and_the_manual_page_name_the_commands() {
    for (args, want) in [
        (&["completions", "bash"][..], "--no-receipts"),
        (&["completions", "fish"][..], "listen"),
        (&["man"][..], ".TH chinwag 1"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_chinwag"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains(want), "{args:?} lacks {want}:\n{text}");
    }
}

/// A reader that closes early (`chinwag man | head -1`) is no error: the
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
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_chinwag"))
            .args(args)
            .stdout(writer)
            .output()
            .expect("chinwag runs");
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{args:?} into a closed pipe: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
