//! The crash test: a process writing to the store is killed with `kill -9`
//! at a random moment, and every message whose store it had seen
//! acknowledged must be there afterwards, intact.
//!
//! The writer is this test binary itself, run again with
//! `CHINWAG_STORE_CRASH_DIR` set: its `crash_writer` test (ignored in a
//! normal run) opens the store in that directory and stores messages from
//! several threads at once, so that commits are shared by groups, printing
//! `ACK <id>` as soon as each message's answer is `Stored`. The parent reads
//! those lines while it waits a random time (a seeded PRNG; the seed is
//! printed, and `CHINWAG_CRASH_SEED` replays it), kills the writer, and then
//! opens the store on the same directory, which also shows the kill released
//! the directory's lock. Each message's sender, time and text follow from its
//! id (`support::message`), so every acknowledged id is checked field by
//! field; messages committed but not yet printed are allowed, and must be
//! just as intact. The parent then confirms what it read, so the mailboxes
//! stay small, checks the database's integrity, and starts the next round
//! on the same directory: every round recovers what the last one left.
//!
//! 20 rounds in the normal run; `crash_500_rounds` (ignored) runs 500:
//! `cargo test -p chinwag-store --test crash -- --ignored crash_500_rounds`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chinwag_store::{MailStore, StoreConfig, StoreError, StoreOutcome, StoredMessage};

/// Set in the writer's environment: the data directory to write to.
const DIR_VAR: &str = "CHINWAG_STORE_CRASH_DIR";
/// Replays a run: the seed its output printed.
const SEED_VAR: &str = "CHINWAG_CRASH_SEED";

/// The mailboxes the writer fills.
const RECIPIENTS: [&str; 4] = ["ann", "bea", "cid", "dot"];
/// Threads storing at once, each its own share of the ids.
const SENDERS: u64 = 4;
/// Messages the batching sender hands over per request.
const BATCH: u64 = 5;
/// The longest the parent lets a writer run before killing it. Opening the
/// store takes a few milliseconds of it, so some kills land during the open
/// or the migration, and most during the writes.
const MAX_RUN: Duration = Duration::from_millis(400);

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        // The writer is killed long before it could fill these.
        mailbox_max_messages: 10_000_000,
        mailbox_max_bytes: 1 << 40,
        ..StoreConfig::new(dir)
    }
}

fn recipient(id: u64) -> &'static str {
    RECIPIENTS[(id % RECIPIENTS.len() as u64) as usize]
}

#[test]
fn crash_20_rounds() {
    crash_rounds(20);
}

#[test]
#[ignore = "500 kill -9 rounds, a few minutes: run by hand or in a soak job"]
fn crash_500_rounds() {
    crash_rounds(500);
}

/// The writer's role, when re-executed by [`crash_rounds`].
#[test]
#[ignore = "the crash test's writer process; runs only when the crash test starts it"]
fn crash_writer() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    // A sender that fails ends the process, for the parent to see it end
    // before its kill and report why.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("crash writer: {info}");
        std::process::exit(101);
    }));
    let store = support::open(&config(Path::new(&dir)));
    for nick in RECIPIENTS {
        match support::accounts_result(&store, nick) {
            Ok(()) | Err(StoreError::AccountExists) => {}
            Err(error) => panic!("account {nick}: {error}"),
        }
    }
    let first = store.last_message_id().unwrap().wait().unwrap() + 1;
    for sender in 0..SENDERS {
        let store = store.clone();
        thread::spawn(move || {
            let mut ids = (first + sender..).step_by(SENDERS as usize);
            loop {
                // The last sender hands its messages over in batches:
                // store_messages' path, answered together.
                if sender == SENDERS - 1 {
                    let batch: Vec<StoredMessage> = ids
                        .by_ref()
                        .take(BATCH as usize)
                        .map(|id| support::message(recipient(id), id))
                        .collect();
                    let ids: Vec<u64> = batch.iter().map(|message| message.id).collect();
                    let outcomes = store.store_messages(batch).unwrap().wait().unwrap();
                    for (id, outcome) in ids.iter().zip(outcomes) {
                        assert_eq!(outcome, StoreOutcome::Stored);
                        println!("ACK {id}");
                    }
                } else {
                    let id = ids.next().unwrap();
                    let message = support::message(recipient(id), id);
                    let outcome = store.store_message(message).unwrap().wait().unwrap();
                    assert_eq!(outcome, StoreOutcome::Stored);
                    println!("ACK {id}");
                }
            }
        });
    }
    // Until killed.
    loop {
        thread::park();
    }
}

/// A small PRNG (xorshift64*): the kill times need to differ, not to be
/// unpredictable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound
    }
}

fn crash_rounds(rounds: u32) {
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
    eprintln!("crash test: {rounds} rounds, {SEED_VAR}={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (mut acked_total, mut extra_total, mut rounds_with_acks) = (0, 0, 0);
    for round in 0..rounds {
        let run_for = Duration::from_millis(rng.below(MAX_RUN.as_millis() as u64));
        let acked = run_writer_and_kill(dir.path(), run_for);
        let found = check_acked(dir.path(), &acked)
            .unwrap_or_else(|problem| panic!("round {round} (seed {seed}): {problem}"));
        acked_total += acked.len();
        extra_total += found - acked.len();
        rounds_with_acks += usize::from(!acked.is_empty());
        check_integrity(dir.path());
    }
    eprintln!(
        "crash test: {rounds} rounds in {:.1?}: {acked_total} acknowledged messages all found \
         intact after kill -9, {extra_total} more committed before their ACK was printed; \
         {rounds_with_acks} rounds were killed while writing, the rest while starting",
        started.elapsed()
    );
    assert!(acked_total > 0, "no writer got as far as storing a message");
}

/// Starts a writer on `dir`, kills it with SIGKILL after `run_for`, and
/// returns the ids it acknowledged.
fn run_writer_and_kill(dir: &Path, run_for: Duration) -> BTreeSet<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_writer",
            "--include-ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(DIR_VAR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.strip_prefix("ACK ")?.parse::<u64>().ok())
            .collect::<BTreeSet<u64>>()
    });
    thread::sleep(run_for);
    if let Some(status) = child.try_wait().unwrap() {
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        panic!("the writer ended by itself ({status}) before the kill:\n{stderr}");
    }
    // Child::kill is SIGKILL on Unix: kill -9.
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap()
}

/// Reopens the store on `dir` and checks every acknowledged message is there
/// and intact; confirms everything found, so the next round starts small.
/// Returns how many messages were found.
fn check_acked(dir: &Path, acked: &BTreeSet<u64>) -> Result<usize, String> {
    let store = match chinwag_store::Store::open(&config(dir)) {
        Ok(store) => store,
        Err(error) => return Err(format!("reopening after kill -9: {error}")),
    };
    let mut found = BTreeMap::new();
    for nick in RECIPIENTS {
        let messages = match store.mailbox(nick).unwrap().wait() {
            Ok(mailbox) => mailbox.messages,
            // Killed before the writer created this account.
            Err(StoreError::NoSuchAccount) => Vec::new(),
            Err(error) => return Err(format!("mailbox {nick}: {error}")),
        };
        if !messages.windows(2).all(|pair| pair[0].id < pair[1].id) {
            return Err(format!("mailbox {nick} out of id order"));
        }
        let ids = messages.iter().map(|message| message.id).collect();
        for message in messages {
            let expected = support::message(recipient(message.id), message.id);
            if message != expected {
                return Err(format!("damaged: {message:?}, expected {expected:?}"));
            }
            found.insert(message.id, message);
        }
        store.confirm(nick, ids, 1).unwrap().wait().unwrap();
    }
    if let Some(missing) = acked.iter().find(|id| !found.contains_key(id)) {
        return Err(format!(
            "message {missing} was acknowledged as stored but is gone ({} acknowledged, {} found)",
            acked.len(),
            found.len()
        ));
    }
    let last = store.last_message_id().unwrap().wait().unwrap();
    if found
        .keys()
        .next_back()
        .is_some_and(|&highest| highest > last)
    {
        return Err(format!("last_message_id {last} is below a stored id"));
    }
    Ok(found.len())
}

fn check_integrity(dir: &Path) {
    let conn = rusqlite::Connection::open(StoreConfig::new(dir).db_path()).unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
}
