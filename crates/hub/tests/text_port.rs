//! The plain-text port: a text user (raw `TcpStream`, as `nc` would be) and a
//! binary-protocol user talk to each other through one hub.

use std::time::Duration;

use chinwag_hub::protocol::{
    ClientCodec, ClientFrame, Hello, PROTOCOL_VERSION, Recipients, SendFrame, ServerFrame,
};
use chinwag_hub::{Hub, HubConfig};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::codec::Framed;

const PATIENCE: Duration = Duration::from_secs(10);

struct TextUser {
    lines: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl TextUser {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        let (read, write) = TcpStream::connect(addr).await.unwrap().into_split();
        Self {
            lines: BufReader::new(read).lines(),
            write,
        }
    }

    async fn say(&mut self, line: &[u8]) {
        self.write.write_all(line).await.unwrap();
        self.write.write_all(b"\n").await.unwrap();
    }

    /// The next line that contains `needle`, skipping others.
    async fn expect(&mut self, needle: &str) -> String {
        loop {
            let line = timeout(PATIENCE, self.lines.next_line())
                .await
                .expect("no line in time")
                .unwrap()
                .expect("text connection closed");
            if line.contains(needle) {
                return line;
            }
        }
    }
}

async fn start() -> (Hub, std::net::SocketAddr, std::net::SocketAddr) {
    let hub = Hub::start(HubConfig::default());
    let binary = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let text = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (binary_addr, text_addr) = (binary.local_addr().unwrap(), text.local_addr().unwrap());
    let h = hub.clone();
    tokio::spawn(async move { h.serve(binary).await });
    let h = hub.clone();
    tokio::spawn(async move { h.serve_text(text).await });
    (hub, binary_addr, text_addr)
}

/// A binary-protocol user, registered: its WELCOME has been read.
async fn binary_user(addr: std::net::SocketAddr, nick: &str) -> Framed<TcpStream, ClientCodec> {
    let mut framed = Framed::new(
        TcpStream::connect(addr).await.unwrap(),
        ClientCodec::default(),
    );
    framed
        .send(ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            nick: nick.as_bytes().to_vec().into(),
            options: None,
            password: None,
        }))
        .await
        .unwrap();
    let welcome = timeout(PATIENCE, framed.next()).await.unwrap();
    assert!(
        matches!(welcome, Some(Ok(ServerFrame::Welcome(_)))),
        "{welcome:?}"
    );
    framed
}

async fn next_message(framed: &mut Framed<TcpStream, ClientCodec>) -> (String, Recipients, String) {
    loop {
        let frame = timeout(PATIENCE, framed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let ServerFrame::Message(m) = frame {
            return (m.from, m.to, m.text);
        }
    }
}

#[tokio::test]
async fn text_and_binary_users_exchange_direct_and_broadcast_messages() {
    let (_hub, binary_addr, text_addr) = start().await;

    let mut tom = TextUser::connect(text_addr).await;
    tom.expect("type your nickname").await;
    tom.say(b"tom").await;
    tom.expect("welcome, tom").await;

    let mut bob = binary_user(binary_addr, "bob").await;
    tom.expect("* bob is online").await;

    // Text to binary: direct, then broadcast.
    tom.say(b"@bob hi bob").await;
    assert_eq!(
        next_message(&mut bob).await,
        (
            "tom".into(),
            Recipients::Users(vec!["bob".into()]),
            "hi bob".into()
        )
    );
    tom.say(b"hello all").await;
    assert_eq!(
        next_message(&mut bob).await,
        ("tom".into(), Recipients::Everyone, "hello all".into())
    );

    // Binary to text: direct, then broadcast.
    for (id, to, text) in [
        (1, Recipients::Users(vec!["TOM".into()]), "hi tom"),
        (2, Recipients::Everyone, "hello from bob"),
    ] {
        bob.send(ClientFrame::Send(SendFrame {
            id,
            to,
            text: text.into(),
        }))
        .await
        .unwrap();
    }
    let direct = tom.expect("<bob>").await;
    assert!(direct.ends_with("<bob> (to tom) hi tom"), "{direct}");
    let broadcast = tom.expect("<bob>").await;
    assert!(broadcast.ends_with("<bob> hello from bob"), "{broadcast}");

    // Failures and bad input are lines, not crashes.
    tom.say(b"@nobody are you there").await;
    tom.expect("! not delivered to nobody: no such user").await;
    tom.say(b"\xff\xfe broken").await;
    tom.expect("not valid UTF-8").await;
    tom.say(b"/who").await;
    assert_eq!(tom.expect("* online:").await, "* online: bob, tom");

    // Leaving is seen by binary users as presence.
    tom.say(b"/quit").await;
    loop {
        let frame = timeout(PATIENCE, bob.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let ServerFrame::Presence(p) = frame {
            assert_eq!((p.nick.as_str(), p.online), ("tom", false));
            break;
        }
    }
}

#[tokio::test]
async fn text_nickname_errors_allow_another_try_and_long_lines_are_refused() {
    let (_hub, binary_addr, text_addr) = start().await;
    let _alice = binary_user(binary_addr, "alice").await;

    let mut text = TextUser::connect(text_addr).await;
    text.say(b"ALICE").await;
    text.expect("! error: nickname is taken").await;
    text.say(b"9lives").await;
    text.expect("! error: nickname must start with a letter")
        .await;
    text.say(b"carol").await;
    text.expect("welcome, carol").await;

    let long = vec![b'x'; 2 * 1024 * 1024];
    text.say(&long).await;
    text.expect("! error: line longer than").await;
    // Still usable afterwards.
    text.say(b"/who").await;
    assert_eq!(text.expect("* online:").await, "* online: alice, carol");
}

/// A message's text shows on one line of the text port, whatever it holds:
/// nothing a binary user sends can forge a hub line or reach the terminal
/// as a control sequence.
#[tokio::test]
async fn a_message_cannot_forge_lines_or_control_characters_on_the_text_port() {
    let (_hub, binary_addr, text_addr) = start().await;
    let mut tina = TextUser::connect(text_addr).await;
    tina.expect("type your nickname").await;
    tina.say(b"tina").await;
    tina.expect("welcome, tina").await;
    let mut mallory = binary_user(binary_addr, "mallory").await;
    tina.expect("* mallory is online").await;

    for (id, (text, _)) in (1..).zip(chinwag_testkit::FORGERIES) {
        mallory
            .send(ClientFrame::Send(SendFrame {
                id,
                to: Recipients::Users(vec!["tina".into()]),
                text: text.into(),
            }))
            .await
            .unwrap();
    }
    mallory
        .send(ClientFrame::Send(SendFrame {
            id: 99,
            to: Recipients::Users(vec!["tina".into()]),
            text: "the end".into(),
        }))
        .await
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let line = timeout(PATIENCE, tina.lines.next_line())
            .await
            .expect("a line in time")
            .unwrap()
            .expect("open");
        if line.ends_with("the end") {
            break;
        }
        lines.push(line);
    }
    // One line per message, in order, exactly the visible form; nothing
    // that looks like a presence line or another message.
    assert_eq!(lines.len(), chinwag_testkit::FORGERIES.len(), "{lines:#?}");
    for (line, (_, shown)) in lines.iter().zip(chinwag_testkit::FORGERIES) {
        let (_, after) = line.split_once("] <mallory> (to tina) ").expect(line);
        assert!(line.starts_with('['), "{line}");
        assert_eq!(after, shown);
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
}
