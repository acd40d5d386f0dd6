//! The example sessions of `docs/text-protocol.md`, replayed: each is read
//! out of the document, run against a fresh hub over real sockets (the
//! text users as `nc` would be, the binary user as a raw protocol client),
//! and every line the hub sends a text user is checked against the
//! document, exactly but for the clock. Section 9 of the document says how
//! a session is written.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chinwag_hub::HubConfig;
use chinwag_hub::protocol::text::{Input, parse_line};
use chinwag_hub::protocol::{ClientFrame, SendFrame};
use chinwag_testkit::{RawClient, TestHub, within};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The document, read when the test runs (so that an edit to it needs no
/// rebuild to be checked).
fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/text-protocol.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// What `[HH:MM:SS]` in an `S:` line stands for: the hub's UTC clock.
const CLOCK: &str = "[HH:MM:SS]";

/// How far the clock shown may be from the test's own, in seconds.
const CLOCK_SLACK: u64 = 300;

/// One session of the document.
#[derive(Debug)]
struct Session {
    name: String,
    config: HubConfig,
    steps: Vec<Step>,
}

/// One line of a session, with its line number in the document.
#[derive(Debug)]
struct Step {
    line: usize,
    what: What,
}

#[derive(Debug)]
enum What {
    /// Text user `n` (1 for `C:`, 2 for `C2:`, ...) sends a line.
    Send(usize, String),
    /// Text user `n` receives this line next.
    Expect(usize, String),
    /// The binary user acts as a text user typing this line would.
    Binary(String),
    /// The hub begins to shut down.
    Shutdown,
}

/// Every session in the document, in order.
fn sessions(doc: &str) -> Vec<Session> {
    let mut sessions = Vec::new();
    let mut lines = doc.lines().enumerate().map(|(i, line)| (i + 1, line));
    while let Some((_, line)) = lines.next() {
        if line != "```" {
            continue;
        }
        let mut block = lines.by_ref().take_while(|(_, line)| *line != "```");
        let Some((_, first)) = block.next() else {
            continue;
        };
        if let Some(name) = first.strip_prefix("session: ") {
            sessions.push(session(name, block.collect()));
        } else {
            // Some other block: skip it whole.
            block.for_each(drop);
        }
    }
    sessions
}

fn session(name: &str, lines: Vec<(usize, &str)>) -> Session {
    let mut config = HubConfig::default();
    let mut steps = Vec::new();
    for (n, line) in lines {
        if line.starts_with('#') {
            continue;
        }
        let (tag, rest) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("line {n}: no tag in {line:?}"));
        let rest = rest.strip_prefix(' ').unwrap_or(rest).to_owned();
        let number = |value: &str| -> u64 {
            value
                .parse()
                .unwrap_or_else(|_| panic!("line {n}: not a number: {value:?}"))
        };
        let what = match tag {
            "max-frame-bytes" if steps.is_empty() => {
                config.max_frame = usize::try_from(number(&rest)).unwrap();
                continue;
            }
            "max-hello-bytes" if steps.is_empty() => {
                config.max_frame_unregistered = usize::try_from(number(&rest)).unwrap();
                continue;
            }
            "max-connections" if steps.is_empty() => {
                config.max_connections = usize::try_from(number(&rest)).unwrap();
                continue;
            }
            "registration-timeout" if steps.is_empty() => {
                config.registration_timeout = Duration::from_secs(number(&rest));
                continue;
            }
            "B" => What::Binary(rest),
            "H" if rest == "shutdown" => What::Shutdown,
            _ => {
                let (kind, user) = tag.split_at(1);
                let user = if user.is_empty() {
                    1
                } else {
                    user.parse()
                        .unwrap_or_else(|_| panic!("line {n}: unknown tag {tag:?}"))
                };
                match kind {
                    "C" => What::Send(user, rest),
                    "S" => What::Expect(user, rest),
                    _ => panic!("line {n}: unknown tag {tag:?}"),
                }
            }
        };
        steps.push(Step { line: n, what });
    }
    Session {
        name: name.to_owned(),
        config,
        steps,
    }
}

/// A text user: a plain TCP socket, as `nc` would be.
struct TextUser {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl TextUser {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = within("connecting a text user", TcpStream::connect(addr))
            .await
            .expect("the text port accepts");
        let (read, write) = stream.into_split();
        Self {
            read: BufReader::new(read),
            write,
        }
    }

    async fn say(&mut self, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        // The hub may already have closed a user it refused; what it said
        // is checked by the `S:` lines, not here.
        let _ = self.write.write_all(&bytes).await;
    }

    /// The next line, without its `\n`; `None` at end of file.
    async fn next_line(&mut self, what: &str) -> Option<String> {
        let mut bytes = Vec::new();
        let read = within(what, self.read.read_until(b'\n', &mut bytes))
            .await
            .expect("reading the text port");
        if read == 0 {
            return None;
        }
        assert_eq!(bytes.pop(), Some(b'\n'), "{what}: a line cut short");
        Some(String::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}")))
    }
}

/// Whether `got` is `want` with each `[HH:MM:SS]` a clock close to now, UTC.
fn matches(want: &str, got: &str) -> bool {
    if want.len() != got.len() {
        return false;
    }
    let mut at = 0;
    for (start, _) in want.match_indices(CLOCK) {
        if want[at..start] != got[at..start] {
            return false;
        }
        let Some(clock) = got.get(start..start + CLOCK.len()) else {
            return false;
        };
        if !is_utc_now(clock) {
            return false;
        }
        at = start + CLOCK.len();
    }
    want[at..] == got[at..]
}

/// `[HH:MM:SS]`, valid, and within [`CLOCK_SLACK`] of the UTC time of day.
fn is_utc_now(clock: &str) -> bool {
    let Some(inner) = clock.strip_prefix('[').and_then(|c| c.strip_suffix(']')) else {
        return false;
    };
    let mut fields = inner.split(':').map(|field| {
        (field.len() == 2 && field.bytes().all(|b| b.is_ascii_digit()))
            .then(|| field.parse::<u64>().ok())
            .flatten()
    });
    let (Some(Some(h)), Some(Some(m)), Some(Some(s)), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    if h > 23 || m > 59 || s > 59 {
        return false;
    }
    let day = 86_400;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs()
        % day;
    let shown = h * 3600 + m * 60 + s;
    let apart = now.abs_diff(shown);
    apart.min(day - apart) <= CLOCK_SLACK
}

/// Replays `session` against a fresh hub.
async fn replay(session: Session) {
    let Session {
        name,
        config,
        steps,
    } = session;
    let hub = TestHub::with_config(config).await;
    let text = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let text_addr = text.local_addr().unwrap();
    let text_server = tokio::spawn({
        let hub = hub.hub.clone();
        async move { hub.serve_text(text).await }
    });

    let mut users: BTreeMap<usize, TextUser> = BTreeMap::new();
    let mut binary: Option<RawClient> = None;
    let mut shutdown: Option<JoinHandle<()>> = None;
    for Step { line, what } in steps {
        let at = format!("session {name}, line {line}");
        if let What::Send(n, _) | What::Expect(n, _) = what
            && !users.contains_key(&n)
        {
            users.insert(n, TextUser::connect(text_addr).await);
        }
        match what {
            What::Send(n, text) => users.get_mut(&n).unwrap().say(&text).await,
            What::Expect(n, want) => expect(&at, users.get_mut(&n).unwrap(), &want).await,
            What::Binary(text) => binary = act_binary(&hub, binary, &text, &at).await,
            What::Shutdown => {
                let hub = hub.hub.clone();
                shutdown = Some(tokio::spawn(async move { hub.shutdown().await }));
            }
        }
    }

    // Every text user has been closed, with nothing more to say.
    for (n, user) in &mut users {
        let what = format!("session {name}: text user {n} closing");
        if let Some(extra) = user.next_line(&what).await {
            panic!("{what}: the hub sent a line the document does not show: {extra:?}");
        }
    }
    match shutdown {
        Some(shutdown) => within("hub shutdown", shutdown).await.unwrap(),
        None => within("hub shutdown", hub.hub.shutdown()).await,
    }
    within("serve_text returning", text_server)
        .await
        .unwrap()
        .unwrap();
}

/// The next line `user` receives must be `want` (section 9 of the document).
async fn expect(at: &str, user: &mut TextUser, want: &str) {
    let got = user
        .next_line(at)
        .await
        .unwrap_or_else(|| panic!("{at}: the hub closed the connection; expected {want:?}"));
    assert!(
        matches(want, &got),
        "{at}: the hub sent\n  {got:?}\nthe document says\n  {want:?}"
    );
}

/// The binary user's step: its first line registers it, later ones send.
async fn act_binary(
    hub: &TestHub,
    binary: Option<RawClient>,
    line: &str,
    at: &str,
) -> Option<RawClient> {
    let Some(mut client) = binary else {
        return Some(hub.register(line).await);
    };
    match parse_line(line) {
        Ok(Input::Send { to, text }) => {
            let frame = SendFrame {
                id: 1,
                to,
                text: unescape(&text),
            };
            client.send(ClientFrame::Send(frame)).await;
            Some(client)
        }
        Ok(Input::Quit) => {
            client.send(ClientFrame::Quit).await;
            None
        }
        other => panic!("{at}: a binary user cannot do {other:?}"),
    }
}

/// A `B:` line's text with its escapes (`\n`, `\r`, `\t`, `\\`, `\xHH`,
/// `\u{H...}`) turned into the characters they stand for.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let code = match chars.next() {
            Some('n') => u32::from('\n'),
            Some('r') => u32::from('\r'),
            Some('t') => u32::from('\t'),
            Some('\\') => u32::from('\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                u32::from_str_radix(&hex, 16).expect("\\x and two hex digits")
            }
            Some('u') => {
                let rest = chars.as_str();
                let (hex, after) = rest
                    .strip_prefix('{')
                    .and_then(|r| r.split_once('}'))
                    .expect("\\u{hex}");
                let code = u32::from_str_radix(hex, 16).expect("\\u{hex}");
                chars = after.chars();
                code
            }
            other => panic!("unknown escape \\{other:?} in {text:?}"),
        };
        out.push(char::from_u32(code).expect("a character"));
    }
    out
}

#[tokio::test]
async fn every_example_session_of_the_text_protocol_doc_replays() {
    let doc = doc();
    let sessions = sessions(&doc);
    let names: Vec<&str> = sessions.iter().map(|s| s.name.as_str()).collect();
    for required in [
        "registration",
        "messages",
        "commands",
        "binary-peer",
        "registration-deadline",
        "long-lines",
        "server-full",
        "shutdown",
    ] {
        assert!(
            names.contains(&required),
            "no session {required}: {names:?}"
        );
    }
    let mut seen = names.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), names.len(), "session names repeat: {names:?}");
    for session in sessions {
        replay(session).await;
    }
}

#[test]
fn the_clock_pattern_matches_only_a_utc_clock_near_now() {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = |secs: u64| {
        format!(
            "[{:02}:{:02}:{:02}]",
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60
        )
    };
    let want = "[HH:MM:SS] <bob> hi";
    assert!(matches(want, &format!("{} <bob> hi", clock(secs))));
    assert!(!matches(
        want,
        &format!("{} <bob> hi", clock(secs + 3 * 3600))
    ));
    assert!(!matches(want, &format!("{} <bob> ho", clock(secs))));
    assert!(!matches(want, "[ab:cd:ef] <bob> hi"));
    assert_eq!(unescape(r"a\nb\x1b\u{202e}\\"), "a\nb\u{1b}\u{202e}\\");
}
