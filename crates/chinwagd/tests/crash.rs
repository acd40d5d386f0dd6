//! The daemon's crash test (issue 17): `chinwagd` is killed with `kill -9`
//! at a random moment while senders fill the mailboxes of offline accounts,
//! and every message whose `ACK` said `STORED` must be delivered after the
//! restart, with its id, sender, time and text intact.
//!
//! The data directory lives for the whole run, and four accounts are made
//! in it once, with the operator's command (`chinwagd account create`).
//! Each round then has two runs of the daemon on it:
//!
//! 1. **The send run.** Four guests each keep `WINDOW` messages in flight
//!    (`SEND`s pipelined), to one to four of the accounts, all offline;
//!    every text is unique (round, sender, number), so anything delivered
//!    later is traced back to the `SEND` that carried it. Each sender keeps
//!    the wall time before the `SEND` went out, and the hub's id and the
//!    wall time when its `ACK` came back. The daemon is killed with SIGKILL
//!    at a random time after it was started, a quarter of the time within
//!    the first `EARLY` milliseconds, so that some kills land while it is
//!    starting (opening the store, before it listens).
//! 2. **The check run.** The daemon must come up again on the same
//!    directory (so the kill released its lock), and each account logs in
//!    and reads its `MAILBOX` and `STORED_MESSAGE`s. Every copy acknowledged
//!    `STORED` and not confirmed since must be there, with the id of its
//!    `ACK`, its sender, its addressees, its text, and a time between its
//!    `SEND` and its `ACK`. Anything else must be a copy the test's senders
//!    sent that may still be there: one whose `ACK` never arrived (in
//!    flight at the kill: committed or not; whichever it was, it stays so
//!    from then on), or one whose confirmation the last kill may have cut
//!    off. Nothing unknown, nothing twice in one login, ids in order.
//!    Each account confirms a random part of what it got (`CONFIRM`, then
//!    a `PING` whose `PONG` shows the hub has taken it). The run ends with
//!    SIGTERM half the time, after which confirmed copies must never come
//!    again, and with SIGKILL a few random milliseconds later otherwise,
//!    after which they may come once more (and are then owed again).
//!
//! The seed of the random choices is printed first; `CHINWAG_CRASH_SEED`
//! replays it (the choices, not the timings they race against). At the end
//! the database must pass `PRAGMA integrity_check`, and one line sums up
//! the run. 20 rounds in the normal run; `crash_500_rounds` (ignored) runs
//! 500: `cargo test --release -p chinwagd --test crash -- --ignored --nocapture`.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chinwag_hub::store::StoreConfig;
use chinwag_protocol::{ClientCodec, ClientFrame, Code, Message, ProtocolError, ServerFrame};
use chinwag_testkit::{PATIENCE, RawClient, guard, hello, login, send, users};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use support::{Daemon, create_account};

/// Replays a run: the seed its output printed.
const SEED_VAR: &str = "CHINWAG_CRASH_SEED";

/// The accounts whose mailboxes the senders fill.
const RECIPIENTS: [&str; 4] = ["ann", "bea", "cid", "dot"];
const PASSWORD: &str = "crash test password";
/// Guests sending at once.
const SENDERS: usize = 4;
/// `SEND`s each sender keeps in flight: enough that the hub's group commit
/// takes several messages at once and a kill finds several unacknowledged.
const WINDOW: usize = 8;
/// The longest a send run lasts before its kill.
const MAX_RUN: Duration = Duration::from_millis(500);
/// The range a quarter of the kills are drawn from instead of `MAX_RUN`:
/// about the daemon's start-up (10 ms or so to its first line, in a debug
/// build), so that many of those land while it starts.
const EARLY: Duration = Duration::from_millis(20);
/// The longest a check run lives after its confirmations before its kill.
const MAX_LINGER: Duration = Duration::from_millis(30);
/// Milliseconds by which a message's time may stray outside the interval
/// from its `SEND` to its `ACK`: both clocks are this machine's, so only
/// the rounding to milliseconds.
const CLOCK_SLACK_MS: u64 = 2;
/// Ids per `CONFIRM` frame, well inside a frame's limit.
const CONFIRM_BATCH: usize = 512;
/// The daemon's flags: mailboxes no send run can fill. A fast machine
/// sends tens of thousands of messages in one run (a release build on two
/// cores: thousands per mailbox), past the default quota of 10,000, and
/// `MAILBOX_FULL` is not what this test is about. The random confirmations
/// keep the mailboxes at about one run's worth.
const UNLIMITED_MAILBOXES: [&str; 4] = [
    "--mailbox-max-messages",
    "100000000",
    "--mailbox-max-bytes",
    "100000000000",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_20_rounds() {
    crash_rounds(20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "500 kill -9 rounds, several minutes: run by hand or in a soak job"]
async fn crash_500_rounds() {
    crash_rounds(500).await;
}

/// A small PRNG (xorshift64*): the choices need to differ, not to be
/// unpredictable.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// A generator of its own, for a task that draws independently.
    fn split(&mut self) -> Self {
        Self(self.next() | 1)
    }

    /// A duration in `[0, limit)`, in whole milliseconds.
    fn millis_below(&mut self, limit: Duration) -> Duration {
        Duration::from_millis(self.below(limit.as_millis() as u64))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A message one of the test's senders sent, known by its text (unique
/// across the run).
#[derive(Debug)]
struct Sent {
    sender: String,
    to: Vec<&'static str>,
    /// Wall time before its `SEND` was written (ms since the epoch).
    send_ms: u64,
    /// The latest its hub time can be: when its `ACK` arrived, or, without
    /// one, when its daemon had been killed.
    latest_ms: u64,
    /// The hub's id for it: from its `ACK`, or from its first delivery.
    id: Option<u64>,
}

/// Where one recipient's copy of a message stands, as far as the test can
/// know. A copy that can no longer be in the mailbox has no entry at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Acknowledged `STORED`, not yet delivered: due at the next login.
    Stored,
    /// Delivered and not confirmed: due at every login until confirmed.
    Owed,
    /// Sent, but its daemon was killed before the `ACK` arrived: committed
    /// or not; the next login tells which, for good.
    Unacked,
    /// Confirmed in the check run going on now.
    Confirming,
    /// Confirmed in a check run ended by SIGKILL: the confirmation may not
    /// have been committed; the next login tells.
    ConfirmKilled,
}

/// What a run did, for its summary line.
#[derive(Debug, Default)]
struct Tally {
    sends: usize,
    /// Messages acknowledged (every status `STORED`), and their copies.
    acked: usize,
    acked_copies: usize,
    /// Copies acknowledged `STORED` and found intact at the next login.
    verified: usize,
    /// Copies found that no `ACK` had announced: committed before the kill
    /// stopped their `ACK`.
    extras: usize,
    /// Unconfirmed copies delivered again, as they must be.
    redelivered: usize,
    /// Copies confirmed and then gone for good.
    confirmed: usize,
    /// Copies confirmed before a SIGKILL that came again.
    confirms_lost: usize,
    early_kills: usize,
    sigterm_stops: usize,
    /// The most messages one login was given.
    largest_mailbox: usize,
}

/// What the test knows of every message and every mailbox.
#[derive(Debug)]
struct World {
    sent: HashMap<String, Sent>,
    /// Every copy that may still be in a mailbox: recipient, then text.
    copies: BTreeMap<&'static str, HashMap<String, Standing>>,
    /// Every hub id known (from an `ACK` or a delivery), with its message's
    /// text: no id may name two messages, across restarts too.
    ids: HashMap<u64, String>,
    tally: Tally,
}

impl World {
    fn new() -> Self {
        Self {
            sent: HashMap::new(),
            copies: RECIPIENTS
                .iter()
                .map(|&nick| (nick, HashMap::new()))
                .collect(),
            ids: HashMap::new(),
            tally: Tally::default(),
        }
    }

    /// Notes a hub id for `text`; an id already naming another message is
    /// the failure.
    fn note_id(&mut self, id: u64, text: &str) -> Result<(), String> {
        match self.ids.insert(id, text.to_owned()) {
            Some(other) if other != text => Err(format!(
                "hub id {id} names two messages: {other:?} and {text:?}"
            )),
            _ => Ok(()),
        }
    }

    /// Takes in what a sender sent in a run whose daemon was killed at
    /// `killed_ms`.
    fn record(&mut self, record: Record, killed_ms: u64) -> Result<(), String> {
        self.tally.sends += 1;
        let standing = match &record.ack {
            Some(ack) => {
                self.note_id(ack.message_id, &record.text)?;
                self.tally.acked += 1;
                self.tally.acked_copies += record.to.len();
                Standing::Stored
            }
            None => Standing::Unacked,
        };
        for nick in &record.to {
            self.mailbox(nick).insert(record.text.clone(), standing);
        }
        let sent = Sent {
            sender: record.sender,
            to: record.to,
            send_ms: record.send_ms,
            latest_ms: record.ack.as_ref().map_or(killed_ms, |ack| ack.ack_ms),
            id: record.ack.map(|ack| ack.message_id),
        };
        if self.sent.insert(record.text.clone(), sent).is_some() {
            return Err(format!("the test sent {:?} twice", record.text));
        }
        Ok(())
    }

    fn mailbox(&mut self, nick: &str) -> &mut HashMap<String, Standing> {
        self.copies
            .get_mut(nick)
            .unwrap_or_else(|| panic!("{nick} is not a recipient"))
    }

    /// Checks what `nick` was given at a login against what it is owed and
    /// what it may get, and brings the standings up to date.
    fn check_mailbox(&mut self, nick: &'static str, messages: &[Message]) -> Result<(), String> {
        if let Some(pair) = messages.windows(2).find(|pair| pair[0].id >= pair[1].id) {
            return Err(format!(
                "{nick}'s mailbox is not in id order, or repeats one: {} then {}",
                pair[0].id, pair[1].id
            ));
        }
        for message in messages {
            self.check_message(nick, message)?;
        }
        let delivered: HashSet<&str> = messages
            .iter()
            .map(|message| message.text.as_str())
            .collect();
        let mut missing = Vec::new();
        let mut confirmed = 0;
        self.mailbox(nick).retain(|text, standing| {
            if delivered.contains(text.as_str()) {
                *standing = Standing::Owed;
                return true;
            }
            match standing {
                Standing::Stored | Standing::Owed | Standing::Confirming => {
                    missing.push((text.clone(), *standing));
                    true
                }
                // Never committed, or its confirmation was: gone for good.
                Standing::Unacked => false,
                Standing::ConfirmKilled => {
                    confirmed += 1;
                    false
                }
            }
        });
        self.tally.confirmed += confirmed;
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_by_key(|(text, _)| (self.sent[text].id, text.clone()));
        let mut report = format!(
            "{} of {nick}'s copies are missing after the restart ({} delivered):",
            missing.len(),
            messages.len()
        );
        for (text, standing) in missing.iter().take(10) {
            let sent = &self.sent[text];
            let _ = write!(
                report,
                "\n  {standing:?} id {:?} from {} sent at {} (acked by {}): {text:?}",
                sent.id, sent.sender, sent.send_ms, sent.latest_ms
            );
        }
        Err(report)
    }

    /// One delivered message: known, owed or allowed, intact.
    fn check_message(&mut self, nick: &'static str, message: &Message) -> Result<(), String> {
        let Some(sent) = self.sent.get(&message.text) else {
            return Err(format!(
                "{nick} was given a message nobody sent: {message:?}"
            ));
        };
        if !sent.to.contains(&nick) {
            return Err(format!(
                "{nick} was given a message sent to {:?}: {message:?}",
                sent.to
            ));
        }
        let Some(&standing) = self.copies[nick].get(&message.text) else {
            return Err(format!(
                "{nick} was given a copy that cannot be in its mailbox any more (confirmed \
                 before an orderly stop, or absent at an earlier login): {message:?}"
            ));
        };
        let earliest = sent.send_ms.saturating_sub(CLOCK_SLACK_MS);
        let latest = sent.latest_ms + CLOCK_SLACK_MS;
        let intact = message.from == sent.sender
            && message.to == users(&sent.to)
            && (earliest..=latest).contains(&message.ts_ms)
            && sent.id.is_none_or(|id| id == message.id);
        if !intact {
            return Err(format!(
                "{nick} was given a damaged copy ({standing:?}): {message:?}; sent by {} to {:?} \
                 between {earliest} and {latest} with id {:?}",
                sent.sender, sent.to, sent.id
            ));
        }
        if sent.id.is_none() {
            self.note_id(message.id, &message.text)?;
            if let Some(sent) = self.sent.get_mut(&message.text) {
                sent.id = Some(message.id);
            }
        }
        match standing {
            Standing::Stored => self.tally.verified += 1,
            Standing::Owed => self.tally.redelivered += 1,
            Standing::Unacked => self.tally.extras += 1,
            Standing::ConfirmKilled => self.tally.confirms_lost += 1,
            Standing::Confirming => {
                return Err(format!("{nick}: a copy still being confirmed: {message:?}"));
            }
        }
        Ok(())
    }

    /// `nick` confirms the copies with these texts.
    fn confirming<'a>(&mut self, nick: &str, texts: impl IntoIterator<Item = &'a str>) {
        let mailbox = self.mailbox(nick);
        for text in texts {
            if let Some(standing) = mailbox.get_mut(text) {
                *standing = Standing::Confirming;
            }
        }
    }

    /// The check run is over: after an orderly stop the confirmations were
    /// carried out; after a SIGKILL they may not have been.
    fn settle_confirmations(&mut self, orderly: bool) {
        let mut confirmed = 0;
        for mailbox in self.copies.values_mut() {
            mailbox.retain(|_, standing| {
                if *standing != Standing::Confirming {
                    return true;
                }
                if orderly {
                    confirmed += 1;
                    return false;
                }
                *standing = Standing::ConfirmKilled;
                true
            });
        }
        self.tally.confirmed += confirmed;
    }
}

async fn crash_rounds(rounds: u32) {
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("daemon crash test: {rounds} rounds, {SEED_VAR}={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    for nick in RECIPIENTS {
        create_account(dir.path(), nick, PASSWORD).await;
    }
    let mut world = World::new();
    let started = Instant::now();
    for round in 0..rounds {
        let failed = |problem: String| panic!("round {round} ({SEED_VAR}={seed}): {problem}");
        send_and_kill(dir.path(), round, &mut rng, &mut world)
            .await
            .unwrap_or_else(failed);
        check_and_confirm(dir.path(), &mut rng, &mut world)
            .await
            .unwrap_or_else(failed);
    }
    check_integrity(dir.path());
    let t = &world.tally;
    eprintln!(
        "daemon crash test: {rounds} rounds in {:.1?} ({SEED_VAR}={seed}): {} messages \
         acknowledged STORED, {} of {} copies verified intact after kill -9; {} extras \
         (committed, ACK cut off by the kill), {} unconfirmed copies redelivered, {} confirmed \
         ({} confirmations lost to a kill, redelivered); {} of {} SENDs acknowledged; \
         {} send runs killed while starting, {} check runs stopped with SIGTERM; \
         largest mailbox {}",
        started.elapsed(),
        t.acked,
        t.verified,
        t.acked_copies,
        t.extras,
        t.redelivered,
        t.confirmed,
        t.confirms_lost,
        t.acked,
        t.sends,
        t.early_kills,
        t.sigterm_stops,
        t.largest_mailbox,
    );
    assert!(t.acked > 0, "no message was acknowledged in any round");
}

/// The send run: starts the daemon, lets the senders loose once it is up,
/// and kills it at a random moment; takes in what they sent.
async fn send_and_kill(
    dir: &Path,
    round: u32,
    rng: &mut Rng,
    world: &mut World,
) -> Result<(), String> {
    let run_for = if rng.below(4) == 0 {
        rng.millis_below(EARLY)
    } else {
        rng.millis_below(MAX_RUN)
    };
    let mut daemon = Daemon::start(dir, &UNLIMITED_MAILBOXES);
    let kill_at = tokio::time::Instant::now() + run_for;
    let mut senders = Vec::new();
    if let Ok(addr) = tokio::time::timeout_at(kill_at, daemon.address()).await {
        for index in 0..SENDERS {
            senders.push(tokio::spawn(sender(addr, index, round, rng.split())));
        }
        tokio::time::sleep_until(kill_at).await;
    } else {
        world.tally.early_kills += 1;
    }
    daemon.kill().await;
    let killed_ms = now_ms();
    for task in senders {
        let records = task
            .await
            .map_err(|error| format!("a sender failed: {error}"))??;
        for record in records {
            world.record(record, killed_ms)?;
        }
    }
    Ok(())
}

/// One `SEND` as its sender saw it.
#[derive(Debug)]
struct Record {
    sender: String,
    to: Vec<&'static str>,
    text: String,
    client_id: u64,
    send_ms: u64,
    ack: Option<Acked>,
}

/// An `ACK` whose every status was `STORED`.
#[derive(Debug)]
struct Acked {
    message_id: u64,
    ack_ms: u64,
}

/// One to all of the recipients, in a random order.
fn some_recipients(rng: &mut Rng) -> Vec<&'static str> {
    let mut all = RECIPIENTS;
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let count = 1 + rng.below(all.len() as u64) as usize;
    all[..count].to_vec()
}

/// A guest that sends to the offline accounts, `WINDOW` `SEND`s in flight,
/// until its connection ends (the kill); returns what it sent. A daemon
/// that is gone before it connects leaves it nothing to do.
async fn sender(
    addr: SocketAddr,
    index: usize,
    round: u32,
    mut rng: Rng,
) -> Result<Vec<Record>, String> {
    let nick = format!("sender{index}");
    let mut records: Vec<Record> = Vec::new();
    let Ok(stream) = TcpStream::connect(addr).await else {
        return Ok(records);
    };
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, ClientCodec::default());
    if framed.send(hello(&nick)).await.is_err() {
        return Ok(records);
    }
    match next_frame(&mut framed).await? {
        None => return Ok(records),
        Some(ServerFrame::Welcome(welcome)) if welcome.nick == nick => {}
        Some(other) => return Err(format!("{nick}: expected WELCOME, got {other:?}")),
    }
    // Indices in `records` of the SENDs not yet acknowledged, oldest first.
    let mut in_flight = VecDeque::new();
    let mut writable = true;
    loop {
        if writable && in_flight.len() < WINDOW {
            while in_flight.len() < WINDOW {
                let seq = records.len() as u64 + 1;
                let record = Record {
                    sender: nick.clone(),
                    to: some_recipients(&mut rng),
                    text: format!(
                        "round {round} {nick} #{seq} {}",
                        "~".repeat(rng.below(48) as usize)
                    ),
                    client_id: seq,
                    send_ms: now_ms(),
                    ack: None,
                };
                let frame = send(record.client_id, &record.to, record.text.clone());
                if framed.feed(frame).await.is_err() {
                    writable = false;
                    break;
                }
                in_flight.push_back(records.len());
                records.push(record);
            }
            if writable && SinkExt::<ClientFrame>::flush(&mut framed).await.is_err() {
                writable = false;
            }
        }
        let Some(frame) = next_frame(&mut framed).await? else {
            return Ok(records);
        };
        match frame {
            ServerFrame::Ack(ack) => {
                let ack_ms = now_ms();
                let Some(record) = in_flight.pop_front().map(|i| &mut records[i]) else {
                    return Err(format!("{nick}: an ACK with nothing in flight: {ack:?}"));
                };
                let all_stored =
                    ack.statuses.len() == record.to.len()
                        && ack.statuses.iter().zip(&record.to).all(|(status, &to)| {
                            status.nick == to && status.status == Code::STORED
                        });
                if ack.client_id != record.client_id || ack.delivered != 0 || !all_stored {
                    return Err(format!(
                        "{nick}: {ack:?} for SEND {} to offline accounts {:?}: expected every \
                         one STORED, in order",
                        record.client_id, record.to
                    ));
                }
                record.ack = Some(Acked {
                    message_id: ack.message_id,
                    ack_ms,
                });
            }
            ServerFrame::Ping(token) => {
                let _ = framed.send(ClientFrame::Pong(token)).await;
            }
            ServerFrame::Presence(_) => {}
            other => return Err(format!("{nick}: unexpected {other:?}")),
        }
    }
}

/// The next frame; `None` once the connection has ended, cleanly or not
/// (a kill may cut a frame short, or reset the connection).
async fn next_frame(
    framed: &mut Framed<TcpStream, ClientCodec>,
) -> Result<Option<ServerFrame>, String> {
    match guard(PATIENCE, "the daemon's next frame", framed.next()).await {
        Some(Ok(frame)) => Ok(Some(frame)),
        Some(Err(ProtocolError::Io(_))) | None => Ok(None),
        Some(Err(error)) => Err(format!("a frame that does not decode: {error}")),
    }
}

/// The check run: restarts the daemon, logs every account in and checks
/// its mailbox, confirms some of it, and stops the daemon, politely or not.
async fn check_and_confirm(dir: &Path, rng: &mut Rng, world: &mut World) -> Result<(), String> {
    let mut daemon = Daemon::start(dir, &UNLIMITED_MAILBOXES);
    // Up again on the same directory: the kill released the lock.
    let addr = daemon.up().await;
    let logins = futures::future::join_all(RECIPIENTS.map(|nick| log_in(addr, nick))).await;
    let mut clients = Vec::new();
    for (nick, login) in RECIPIENTS.into_iter().zip(logins) {
        let (mut client, messages) = login?;
        world.check_mailbox(nick, &messages)?;
        world.tally.largest_mailbox = world.tally.largest_mailbox.max(messages.len());
        // None, a quarter, half, three quarters or all of it.
        let quarters = rng.below(5);
        let confirmed: Vec<&Message> = messages
            .iter()
            .filter(|_| rng.below(4) < quarters)
            .collect();
        world.confirming(nick, confirmed.iter().map(|message| message.text.as_str()));
        let ids: Vec<u64> = confirmed.iter().map(|message| message.id).collect();
        for batch in ids.chunks(CONFIRM_BATCH) {
            client.send(ClientFrame::Confirm(batch.to_vec())).await;
        }
        // The hub reads a connection's frames in order and has handed the
        // CONFIRM on to its actor before it answers the PING.
        client.sync().await;
        clients.push(client);
    }
    let orderly = rng.below(2) == 0;
    if orderly {
        let status = daemon.terminate().await;
        if !status.success() {
            return Err(format!(
                "chinwagd did not stop cleanly on SIGTERM: {status}"
            ));
        }
        world.tally.sigterm_stops += 1;
    } else {
        tokio::time::sleep(rng.millis_below(MAX_LINGER)).await;
        daemon.kill().await;
    }
    world.settle_confirmations(orderly);
    drop(clients);
    Ok(())
}

/// Logs `nick` in and reads its mailbox: `MAILBOX`, then as many
/// `STORED_MESSAGE`s as it announces, before anything else.
async fn log_in(addr: SocketAddr, nick: &str) -> Result<(RawClient, Vec<Message>), String> {
    let mut client = RawClient::connect(addr).await;
    client.send(login(nick, PASSWORD, 0)).await;
    let welcome = client.expect_welcome().await;
    if welcome.nick != nick {
        return Err(format!("{nick} logged in as {:?}", welcome.nick));
    }
    let header = match client.recv().await {
        Some(ServerFrame::Mailbox(header)) => header,
        other => {
            return Err(format!(
                "{nick}: expected MAILBOX after WELCOME, got {other:?}"
            ));
        }
    };
    if header.expired != 0 {
        return Err(format!("{nick}: {} expired messages", header.expired));
    }
    let mut messages = Vec::with_capacity(header.count as usize);
    while messages.len() < header.count as usize {
        match client.recv().await {
            Some(ServerFrame::StoredMessage(message)) => messages.push(message),
            other => {
                return Err(format!(
                    "{nick}: expected STORED_MESSAGE {} of {}, got {other:?}",
                    messages.len() + 1,
                    header.count
                ));
            }
        }
    }
    Ok((client, messages))
}

/// The database, with no daemon on it, passes SQLite's own check.
fn check_integrity(dir: &Path) {
    let conn = rusqlite::Connection::open(StoreConfig::new(dir).db_path()).unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
}
