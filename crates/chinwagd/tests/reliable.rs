//! Reliable sessions across `kill -9` of the daemon (issue 18, test 2): a
//! guest keeps sending to an account whose client is in a reliable session
//! (the library, reconnecting); the daemon is killed with SIGKILL at random
//! moments and started again on the same data directory and address. Every
//! message whose `ACK` the sender got reaches the recipient's application
//! exactly once, in the order sent; a message in flight at a kill (no
//! `ACK`) arrives at most once; nothing arrives twice. And with the sender
//! in a reliable session too: every message submitted, acknowledged or not
//! at a kill, arrives exactly once, in order, and its receipt reaches the
//! sender's application exactly once.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chinwag_client::{Backoff, Client, ClientOptions, Event, Events};
use chinwag_testkit::within;
use support::{Daemon, create_account};

const PASSWORD: &str = "correct horse";

/// Kills of the daemon in the run.
const KILLS: u32 = 6;

fn reconnecting() -> ClientOptions {
    ClientOptions::default().reconnect(Backoff::new(
        Duration::from_millis(5),
        Duration::from_millis(100),
    ))
}

/// A small generator for the kills' timing (xorshift), seeded from the
/// clock and printed, so a failing run says what it did.
struct Random(u64);

impl Random {
    /// Seeded from the clock; the seed is printed.
    fn seeded() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |since| since.as_nanos() as u64 | 1);
        println!("seed {seed}");
        Self(seed)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// The texts of the messages handed to an application, in order, as its
/// events come.
fn shown_by(mut events: Events) -> Arc<Mutex<Vec<String>>> {
    let shown = Arc::new(Mutex::new(Vec::<String>::new()));
    tokio::spawn({
        let shown = shown.clone();
        async move {
            while let Some(event) = events.recv().await {
                if let Event::Message(message) | Event::Stored(message) = event {
                    shown.lock().expect("not poisoned").push(message.text);
                }
            }
        }
    });
    shown
}

/// The message ids of the receipts handed to an application, as they come.
fn receipts_of(mut events: Events) -> tokio::sync::mpsc::UnboundedReceiver<u64> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::Receipt(receipt) = event
                && tx.send(receipt.message_id).is_err()
            {
                break;
            }
        }
    });
    rx
}

/// Sends one message after another to bob until `stop`: each text, and
/// whether its `ACK` came.
async fn send_until(alice: Arc<Client>, stop: Arc<AtomicBool>) -> Vec<(String, bool)> {
    let mut outcomes = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let text = format!("message {n}");
        if let Ok(ack) = alice.send_to(&["bob"], &text).await {
            outcomes.push((text, ack.status("bob").is_some()));
        } else {
            // Disconnected: the daemon is down. The next one a little
            // later, as a person would (the pace of retries, not a wait
            // for anything).
            outcomes.push((text, false));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    outcomes
}

/// What bob was shown against what alice sent: nothing twice, every
/// acknowledged message, in the order sent.
fn check(outcomes: &[(String, bool)], shown: &[String], last: &str) {
    let mut times: HashMap<&str, usize> = HashMap::new();
    for text in shown {
        *times.entry(text.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "shown more than once: {twice:?}");
    let acked: Vec<&str> = (outcomes.iter())
        .filter(|(_, acked)| *acked)
        .map(|(text, _)| text.as_str())
        .collect();
    let missing: Vec<_> = acked.iter().filter(|t| !times.contains_key(**t)).collect();
    assert!(missing.is_empty(), "acknowledged, never shown: {missing:?}");
    // In the order sent: the acknowledged ones appear in bob's list in
    // the order alice sent them.
    let order: Vec<&str> = (shown.iter().map(String::as_str))
        .filter(|text| acked.contains(text))
        .collect();
    assert_eq!(order, acked);
    let unacked = outcomes.len() - acked.len();
    let unacked_shown = (shown.iter())
        .filter(|text| *text != last && !acked.contains(&text.as_str()))
        .count();
    println!(
        "{KILLS} kills: {} acknowledged, all shown once in order; {unacked} unacknowledged \
         (refused while the daemon was down, or in flight at a kill), {unacked_shown} of them shown once",
        acked.len(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_reach_a_reliable_session_once_across_kill_9() {
    let mut random = Random::seeded();
    let dir = tempfile::tempdir().expect("a directory");
    let data = dir.path().join("data");
    create_account(&data, "bob", PASSWORD).await;
    let mut daemon = Daemon::start(&data, &[]);
    let addr = daemon.up().await;
    let listen = addr.to_string();

    // Bob's application: every message handed to it, in order.
    let options = reconnecting().password(PASSWORD).reliable(true);
    let (_bob, events) = Client::connect_with(addr, "bob", options)
        .await
        .expect("bob logs in");
    let shown = shown_by(events);

    // Alice sends one message after another, noting which were
    // acknowledged and which met a kill.
    let (alice, _alice_events) = Client::connect_with(addr, "alice", reconnecting())
        .await
        .expect("alice");
    let alice = Arc::new(alice);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = tokio::spawn(send_until(alice.clone(), stop.clone()));

    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(20 + random.below(200))).await;
        daemon.kill().await;
        daemon = Daemon::start_on(&data, &listen, &[]);
        daemon.up().await;
    }
    stop.store(true, Ordering::Relaxed);
    let outcomes = sender.await.expect("the sender");
    let last = "the last one";
    within("the last message acknowledged", async {
        while alice.send_to(&["bob"], last).await.is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    within("bob shown the last message", async {
        while !shown
            .lock()
            .expect("not poisoned")
            .iter()
            .any(|t| t == last)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    let shown = shown.lock().expect("not poisoned").clone();
    check(&outcomes, &shown, last);
    daemon.terminate().await;
}

/// Both ends reliable across `kill -9`: alice, logged in to a reliable
/// session, submits messages back to back while the daemon is killed at
/// random moments and restarted on the same directory. Her client keeps
/// what was not acknowledged and sends it again after each restart (the
/// daemon answers what it had routed, from its store, instead of routing
/// it again), so every message she submitted is acknowledged in the end
/// and reaches bob's application exactly once, in the order submitted:
/// not only the acknowledged ones, all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_of_a_reliable_sender_arrives_once_across_kill_9() {
    let mut random = Random::seeded();
    let dir = tempfile::tempdir().expect("a directory");
    let data = dir.path().join("data");
    create_account(&data, "alice", PASSWORD).await;
    create_account(&data, "bob", PASSWORD).await;
    let mut daemon = Daemon::start(&data, &[]);
    let addr = daemon.up().await;
    let listen = addr.to_string();

    let reliable = || {
        reconnecting()
            .password(PASSWORD)
            .reliable(true)
            .max_sendings(1_000)
    };
    let (_bob, events) = Client::connect_with(addr, "bob", reliable())
        .await
        .expect("bob logs in");
    let shown = shown_by(events);
    let (alice, alice_events) = Client::connect_with(addr, "alice", reliable().receipts(true))
        .await
        .expect("alice logs in");
    let mut receipts = receipts_of(alice_events);
    let alice = Arc::new(alice);
    let stop = Arc::new(AtomicBool::new(false));
    let submitter = tokio::spawn({
        let (alice, stop) = (alice.clone(), stop.clone());
        async move {
            let mut submitted = Vec::new();
            while !stop.load(Ordering::Relaxed) && submitted.len() < 20_000 {
                let text = format!("message {}", submitted.len() + 1);
                let to = chinwag_client::Recipients::Users(vec!["bob".into()]);
                let ack = alice.submit(to, text.clone()).await.expect("submitted");
                submitted.push((text, ack));
                tokio::task::yield_now().await;
            }
            submitted
        }
    });
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(20 + random.below(200))).await;
        daemon.kill().await;
        daemon = Daemon::start_on(&data, &listen, &[]);
        daemon.up().await;
    }
    stop.store(true, Ordering::Relaxed);
    let submissions = submitter.await.expect("the submitter");
    let mut sent = Vec::with_capacity(submissions.len());
    let mut awaited = std::collections::HashSet::new();
    for (text, ack) in submissions {
        let ack = within("every message acknowledged in the end", ack).await;
        let ack = ack.unwrap_or_else(|error| panic!("{text}: {error}"));
        assert!(ack.status("bob").is_some(), "{text}: {ack:?}");
        awaited.insert(ack.message_id());
        sent.push(text);
    }
    let last = sent.last().cloned().unwrap_or_default();
    within("bob shown the last message", async {
        while !shown.lock().expect("not poisoned").contains(&last) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let shown = shown.lock().expect("not poisoned").clone();
    assert_eq!(shown.len(), sent.len(), "each once");
    assert_eq!(shown, sent, "in the order submitted");
    // A receipt for every message, none twice: bob's confirmation keeps
    // it on disk in the commit that takes the message from his mailbox,
    // and it stays kept until alice's client confirms it.
    let mut came = std::collections::HashSet::new();
    within("a receipt for every message", async {
        while came.len() < awaited.len() {
            let id = receipts.recv().await.expect("alice's events go on");
            assert!(awaited.contains(&id), "a receipt for no message sent: {id}");
            assert!(came.insert(id), "a receipt shown twice: {id}");
        }
    })
    .await;
    println!(
        "{KILLS} kills: {} messages submitted, all acknowledged and shown once in order, \
         each one's receipt shown once",
        sent.len()
    );
    daemon.terminate().await;
}
