//! The web page in a real browser: Debian's chromium, headless, driven
//! through chromedriver with the `WebDriver` protocol (fantoccini). A machine
//! without `/usr/bin/chromium` and `/usr/bin/chromedriver` skips, saying so
//! (`.ci/run` installs both).

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use chinwag_testkit::{PATIENCE, guard};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether this machine has the browser; says so when it does not.
fn have_browser(test: &str) -> bool {
    let have = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !have {
        eprintln!(
            "SKIPPED {test}: needs {CHROMIUM} and {CHROMEDRIVER} \
             (apt-get install chromium chromium-driver; .ci/run does)"
        );
    }
    have
}

/// A chromedriver on a loopback port of its own, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
    profiles: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Self {
        // A port nobody holds now; chromedriver says when it listens.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().expect("chromedriver's stdout");
        let mut lines = BufReader::new(stdout).lines();
        guard(PATIENCE, "chromedriver to listen", async {
            while let Some(line) = lines.next_line().await.expect("chromedriver's output") {
                if line.contains("started successfully") {
                    return;
                }
            }
            panic!("chromedriver ended before it listened");
        })
        .await;
        // The rest of its output is drained, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let profiles = tempfile::tempdir().expect("a directory for browser profiles");
        Self {
            child,
            port,
            profiles,
        }
    }

    /// A new browser window (its own chromium, profile and cookies), sized
    /// as a phone: 412 × 915 CSS pixels.
    async fn page(&self, name: &str) -> Client {
        let profile = self.profiles.path().join(name);
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            // This machine's network is closed: no calls home.
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=412,915".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Where a run's screenshots go: `target/browser-screenshots`, kept after
/// the run (CI keeps them as the run's record).
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir
}

/// A page of the web chat, logged in.
struct Page {
    client: Client,
    nick: &'static str,
}

impl Page {
    /// Opens the page at `url` in a new window and logs in as `nick`: to
    /// its account with `password`, or as a guest.
    async fn open(driver: &Driver, url: &str, nick: &'static str, password: Option<&str>) -> Self {
        let client = driver.page(nick).await;
        client.goto(url).await.expect("the page loads");
        let page = Self { client, nick };
        page.log_in(password).await;
        page
    }

    async fn log_in(&self, password: Option<&str>) {
        self.find("#login-nick")
            .await
            .send_keys(self.nick)
            .await
            .unwrap();
        if let Some(password) = password {
            let field = self.find("#login-password").await;
            field.send_keys(password).await.unwrap();
            self.find("#login-account").await.click().await.unwrap();
        } else {
            self.find("#login-guest").await.click().await.unwrap();
        }
        self.find("#connection-state[data-state=online]").await;
    }

    /// The first element `css` finds, waiting for it.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{}: no {css}: {error}", self.nick))
    }

    /// Types `line` into the message input and sends it.
    async fn say(&self, line: &str) {
        let input = self.find("#message-input").await;
        input.send_keys(line).await.unwrap();
        self.find("#send-button").await.click().await.unwrap();
    }

    /// Waits for a message from `sender` reading `text` (stored or not).
    async fn sees(&self, sender: &str, text: &str, stored: bool) {
        self.find(&format!(
            "[data-testid=message][data-direction=in][data-sender={sender:?}]\
             [data-text={text:?}][data-stored={stored}]"
        ))
        .await;
    }

    /// Waits for the outcome of the message reading `text` for `recipient`.
    async fn outcome(&self, text: &str, recipient: &str, status: &str) {
        self.find(&format!(
            "[data-testid=message][data-direction=out][data-text={text:?}] \
             [data-testid=outcome][data-recipient={recipient:?}][data-status={status:?}]"
        ))
        .await;
    }

    /// Waits until the table of users shows `nick` online or not.
    async fn sees_user(&self, nick: &str, online: bool) {
        self.find(&format!(
            "tr[data-testid=user][data-nick={nick:?}][data-online={online}]"
        ))
        .await;
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(screenshot_dir().join(name), png).expect("the screenshot is saved");
    }
}

/// The `chinwag` program beside this test's daemon: `cargo test
/// --workspace` builds both into the same directory.
fn chinwag_program() -> PathBuf {
    let program = Path::new(support::BIN).with_file_name("chinwag");
    assert!(
        program.exists(),
        "{} is missing: build it first (cargo build -p chinwag-client), \
         as `cargo test --workspace` does",
        program.display()
    );
    program
}

/// `chinwag chat --json` as `nick`, its input kept open: lines written to
/// it are sent, what it prints is read as JSON.
struct Cli {
    /// Killed when dropped.
    _child: Child,
    input: tokio::process::ChildStdin,
    output: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Cli {
    fn start(server: std::net::SocketAddr, nick: &str) -> Self {
        let mut child = Command::new(chinwag_program())
            .args([
                "--server",
                &server.to_string(),
                "chat",
                "--json",
                "--nick",
                nick,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("chinwag starts");
        let input = child.stdin.take().expect("its stdin");
        let output = BufReader::new(child.stdout.take().expect("its stdout")).lines();
        Self {
            _child: child,
            input,
            output,
        }
    }

    async fn say(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt as _;
        self.input
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("chinwag takes a line");
    }

    /// Waits for a printed message from `from` reading `text`.
    async fn sees(&mut self, from: &str, text: &str) {
        guard(PATIENCE, "chinwag to print the message", async {
            while let Some(line) = self.output.next_line().await.expect("chinwag's output") {
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if event["from"] == from && event["text"] == text {
                    return;
                }
            }
            panic!("chinwag ended before {from} said {text:?}");
        })
        .await;
    }
}

/// What a page's script makes of a WebSocket to `target` from its own
/// origin: "opened", or "refused" when the handshake fails.
async fn websocket_from(page: &Client, target: &str) -> String {
    let script = r"
        const [url, done] = arguments;
        const ws = new WebSocket(url, 'chinwag.v1');
        ws.onopen = () => { ws.close(); done('opened'); };
        ws.onerror = () => done('refused');
    ";
    let answer = page
        .execute_async(script, vec![json!(target)])
        .await
        .expect("the script runs");
    answer.as_str().unwrap_or_default().to_owned()
}

/// Two pages (an account and a guest) and a `chinwag` CLI user chat: to
/// one user, to several, to everyone; each sees who is online and what
/// became of what it sent. The account's page is reloaded while a message
/// comes for it: logging in again, the page shows it as stored. A page
/// from another origin cannot open the WebSocket. Screenshots of both
/// pages go to `target/browser-screenshots`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_and_the_cli_chat_and_a_reloaded_page_gets_its_mail() {
    if !have_browser("two_pages_and_the_cli_chat_and_a_reloaded_page_gets_its_mail") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    support::create_account(dir.path(), "ann", "ann's password").await;
    let mut daemon = support::Daemon::start(dir.path(), &["--web-listen", "127.0.0.1:0"]);
    let plain = daemon.up().await;
    let web = daemon.line_after("chinwagd web gateway on http://").await;
    let url = format!("http://{web}/");

    let driver = Driver::start().await;
    let ann = Page::open(&driver, &url, "ann", Some("ann's password")).await;
    let ben = Page::open(&driver, &url, "ben", None).await;
    let mut cat = Cli::start(plain, "cat");
    for page in [&ann, &ben] {
        page.sees_user("cat", true).await;
    }
    ann.sees_user("ben", true).await;

    // To one user.
    ann.say("@ben hello ben").await;
    ben.sees("ann", "hello ben", false).await;
    ann.outcome("hello ben", "ben", "delivered").await;
    // To several: a page and the CLI.
    ben.say("@ann @cat hi both").await;
    ann.sees("ben", "hi both", false).await;
    cat.sees("ben", "hi both").await;
    ben.outcome("hi both", "ann", "delivered").await;
    ben.outcome("hi both", "cat", "delivered").await;
    // To everyone, from the CLI.
    cat.say("hello everyone").await;
    ann.sees("cat", "hello everyone", false).await;
    ben.sees("cat", "hello everyone", false).await;
    // Receipts: the pages confirm what they show.
    ann.outcome("hello ben", "ben", "received").await;
    ann.screenshot("ann.png").await;
    ben.screenshot("ben.png").await;

    // Ann's page reloads; meanwhile a message comes for her.
    ann.client.refresh().await.expect("the page reloads");
    ben.sees_user("ann", false).await;
    ben.say("@ann while you were away").await;
    ben.outcome("while you were away", "ann", "stored").await;
    ann.log_in(Some("ann's password")).await;
    ann.sees("ben", "while you were away", true).await;
    ann.screenshot("ann-after-reload.png").await;

    // Another origin: the page at http://localhost:PORT may not open the
    // WebSocket of 127.0.0.1:PORT (its own, by contrast, it may).
    let port = web.rsplit(':').next().unwrap_or_default();
    ben.client
        .goto(&format!("http://localhost:{port}/"))
        .await
        .unwrap();
    let own = format!("ws://localhost:{port}/ws");
    assert_eq!(websocket_from(&ben.client, &own).await, "opened");
    let other = format!("ws://{web}/ws");
    assert_eq!(websocket_from(&ben.client, &other).await, "refused");

    drop(cat);
    ann.client.close().await.unwrap();
    ben.client.close().await.unwrap();
    assert!(daemon.terminate().await.success());
}
