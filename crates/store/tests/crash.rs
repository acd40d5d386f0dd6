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
//! One more thread is a reliable session's traffic: copies held in the
//! journal for `eve` from `ann`, who is owed receipts. Eve confirms two of
//! every three, and Ann confirms every other receipt kept for her, each
//! printed (`HELD`, `CONFIRMED`, `KEPT`, `FORGOT`) once its commit has
//! returned. After the kill, every held copy not to be confirmed must be in
//! Eve's mailbox and none whose confirmation committed; every receipt kept
//! and not to be confirmed must be kept for Ann, and none whose
//! confirmation committed (`release_log.rs`).
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

use chinwag_store::{MailStore, Routed, StoreConfig, StoreError, StoreOutcome, StoredMessage};

/// Set in the writer's environment: the data directory to write to.
const DIR_VAR: &str = "CHINWAG_STORE_CRASH_DIR";
/// Replays a run: the seed its output printed.
const SEED_VAR: &str = "CHINWAG_CRASH_SEED";

/// The mailboxes the writer fills.
const RECIPIENTS: [&str; 4] = ["ann", "bea", "cid", "dot"];
/// Threads storing at once, each its own share of the ids.
const SENDERS: u64 = 4;
/// The reliable session's recipient and sender, and what a thread's ids
/// step by (the senders', then the reliable session's).
const HELD_TO: &str = "eve";
const HELD_FROM: &str = "ann";
const STRIDE: usize = SENDERS as usize + 1;
/// Messages the batching sender hands over per request.
const BATCH: u64 = 5;
/// The longest the parent lets a writer run before killing it. Opening the
/// store takes a few milliseconds of it, so some kills land during the open
/// or the migration, and most during the writes.
const MAX_RUN: Duration = Duration::from_millis(400);

/// Set in the writer's environment when the batches are to be rows of
/// SQLite rather than in the batch log.
const TABLES_VAR: &str = "CHINWAG_STORE_CRASH_TABLES";

/// `tables`: the reliable path's batches as rows of SQLite
/// (`StoreConfig::batch_log` off).
fn config(dir: &Path, tables: bool) -> StoreConfig {
    StoreConfig {
        // The writer is killed long before it could fill these.
        mailbox_max_messages: 10_000_000,
        mailbox_max_bytes: 1 << 40,
        batch_log: !tables,
        ..StoreConfig::new(dir)
    }
}

fn recipient(id: u64) -> &'static str {
    RECIPIENTS[(id % RECIPIENTS.len() as u64) as usize]
}

#[test]
fn crash_20_rounds() {
    crash_rounds(20, false);
}

/// The same with the batches as rows of SQLite.
#[test]
fn crash_20_rounds_tables() {
    crash_rounds(20, true);
}

#[test]
#[ignore = "500 kill -9 rounds, a few minutes: run by hand or in a soak job"]
fn crash_500_rounds() {
    crash_rounds(500, false);
}

#[test]
#[ignore = "500 kill -9 rounds, a few minutes: run by hand or in a soak job"]
fn crash_500_rounds_tables() {
    crash_rounds(500, true);
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
    let tables = std::env::var_os(TABLES_VAR).is_some();
    let store = support::open(&config(Path::new(&dir), tables));
    for nick in RECIPIENTS.into_iter().chain([HELD_TO]) {
        match support::accounts_result(&store, nick) {
            Ok(()) | Err(StoreError::AccountExists) => {}
            Err(error) => panic!("account {nick}: {error}"),
        }
    }
    let first = store.last_message_id().unwrap().wait().unwrap() + 1;
    for sender in 0..SENDERS {
        let store = store.clone();
        thread::spawn(move || {
            let mut ids = (first + sender..).step_by(STRIDE);
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
    thread::spawn(move || {
        reliable_session(&store, (first + SENDERS..).step_by(STRIDE));
    });
    // Until killed.
    loop {
        thread::park();
    }
}

/// Copy `id` held for the reliable session: from Ann, owed a receipt,
/// numbered by its id.
fn held_copy(id: u64) -> StoredMessage {
    StoredMessage {
        sender: HELD_FROM.to_owned(),
        receipt: true,
        number: id,
        ..support::message(HELD_TO, id)
    }
}

/// Whether Eve confirms copy `id`, and Ann its receipt.
fn eve_confirms(id: u64) -> bool {
    !id.is_multiple_of(3)
}

fn ann_confirms(id: u64) -> bool {
    id.is_multiple_of(2)
}

/// The reliable session's traffic, in batches: held copies stored, Eve's
/// confirmations, Ann's.
fn reliable_session(store: &chinwag_store::Store, mut ids: impl Iterator<Item = u64>) {
    loop {
        let batch: Vec<u64> = ids.by_ref().take(BATCH as usize).collect();
        let mut routed = Routed::new();
        for &id in &batch {
            routed.copy_held(&held_copy(id));
        }
        let outcomes = store.store_routed(routed).unwrap().wait().unwrap();
        for (id, outcome) in batch.iter().zip(outcomes) {
            assert_eq!(outcome, StoreOutcome::Stored);
            println!("HELD {id}");
        }
        let confirm: Vec<u64> = batch.into_iter().filter(|&id| eve_confirms(id)).collect();
        let confirmed = store
            .confirm(HELD_TO, confirm.clone(), support::T0)
            .unwrap()
            .wait()
            .unwrap();
        for id in confirm {
            println!("CONFIRMED {id}");
        }
        let kept: Vec<u64> = confirmed.kept.iter().map(|(id, _)| *id).collect();
        for id in &kept {
            println!("KEPT {id}");
        }
        let forget: Vec<(u64, String)> = (kept.into_iter())
            .filter(|&id| ann_confirms(id))
            .map(|id| (id, HELD_TO.to_owned()))
            .collect();
        let receipt_ids: Vec<u64> = forget.iter().map(|(id, _)| *id).collect();
        let forget = vec![(HELD_FROM.to_owned(), forget)];
        store.forget_receipts(forget).unwrap().wait().unwrap();
        for id in receipt_ids {
            println!("FORGOT {id}");
        }
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

fn crash_rounds(rounds: u32, tables: bool) {
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
    let (mut held_total, mut confirmed_total, mut forgot_total, mut held_found) = (0, 0, 0, 0);
    for round in 0..rounds {
        let run_for = Duration::from_millis(rng.below(MAX_RUN.as_millis() as u64));
        let printed = run_writer_and_kill(dir.path(), run_for, tables);
        let acked = &printed.acked;
        let (found, held) = check_acked(dir.path(), &printed, tables)
            .unwrap_or_else(|problem| panic!("round {round} (seed {seed}): {problem}"));
        acked_total += acked.len();
        extra_total += found - acked.len();
        rounds_with_acks += usize::from(!acked.is_empty());
        held_total += printed.held.len();
        confirmed_total += printed.confirmed.len();
        forgot_total += printed.forgot.len();
        held_found += held;
        check_integrity(dir.path());
    }
    eprintln!(
        "crash test: {rounds} rounds in {:.1?}: {acked_total} acknowledged messages all found \
         intact after kill -9, {extra_total} more committed before their ACK was printed; \
         {rounds_with_acks} rounds were killed while writing, the rest while starting; \
         {held_total} copies held for a reliable session, {confirmed_total} of them confirmed \
         and never delivered again, {held_found} unconfirmed found after the kills, \
         {forgot_total} receipts confirmed and never sent again",
        started.elapsed()
    );
    assert!(acked_total > 0, "no writer got as far as storing a message");
    assert!(
        confirmed_total > 0,
        "no held copy was confirmed before a kill"
    );
}

/// What a writer printed before its kill: the ids of each kind of line.
#[derive(Debug, Default)]
struct Printed {
    acked: BTreeSet<u64>,
    held: BTreeSet<u64>,
    confirmed: BTreeSet<u64>,
    kept: BTreeSet<u64>,
    forgot: BTreeSet<u64>,
}

impl Printed {
    fn line(&mut self, line: &str) {
        let Some((kind, id)) = line.split_once(' ') else {
            return;
        };
        let Ok(id) = id.parse() else {
            return;
        };
        let set = match kind {
            "ACK" => &mut self.acked,
            "HELD" => &mut self.held,
            "CONFIRMED" => &mut self.confirmed,
            "KEPT" => &mut self.kept,
            "FORGOT" => &mut self.forgot,
            _ => return,
        };
        set.insert(id);
    }
}

/// Starts a writer on `dir`, kills it with SIGKILL after `run_for`, and
/// returns what it printed.
fn run_writer_and_kill(dir: &Path, run_for: Duration, tables: bool) -> Printed {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_writer",
            "--include-ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(DIR_VAR, dir)
        .envs(tables.then_some((TABLES_VAR, "1")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut printed = Printed::default();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            printed.line(&line);
        }
        printed
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
/// and intact, and the reliable session's copies and receipts
/// ([`check_held`]); confirms everything found, so the next round starts
/// small. Returns how many messages were found, and held copies.
fn check_acked(dir: &Path, printed: &Printed, tables: bool) -> Result<(usize, usize), String> {
    let acked = &printed.acked;
    let store = match chinwag_store::Store::open(&config(dir, tables)) {
        Ok(store) => store,
        Err(error) => return Err(format!("reopening after kill -9: {error}")),
    };
    let held = check_held(&store, printed)?;
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
    Ok((found.len(), held))
}

/// Checks Eve's mailbox and Ann's receipts after a kill: every copy held and
/// not to be confirmed is there, intact, and none whose confirmation
/// committed; every receipt kept and not to be confirmed is kept, and none
/// whose confirmation committed. Then empties both. Returns how many copies
/// Eve's mailbox held.
fn check_held(store: &chinwag_store::Store, printed: &Printed) -> Result<usize, String> {
    let messages = match store.mailbox(HELD_TO).unwrap().wait() {
        Ok(mailbox) => mailbox.messages,
        Err(StoreError::NoSuchAccount) => Vec::new(),
        Err(error) => return Err(format!("mailbox {HELD_TO}: {error}")),
    };
    let mut ids = BTreeSet::new();
    for message in &messages {
        if *message != held_copy(message.id) {
            return Err(format!("held copy damaged: {message:?}"));
        }
        if printed.confirmed.contains(&message.id) {
            return Err(format!(
                "held copy {} came back after its confirmation committed",
                message.id
            ));
        }
        ids.insert(message.id);
    }
    let owed = (printed.held.iter()).find(|&&id| !eve_confirms(id) && !ids.contains(&id));
    if let Some(id) = owed {
        return Err(format!(
            "held copy {id} was stored, never confirmed, and is gone"
        ));
    }
    let receipts = match store.kept_receipts(HELD_FROM).unwrap().wait() {
        Ok(receipts) => receipts,
        Err(StoreError::NoSuchAccount) => Vec::new(),
        Err(error) => return Err(format!("receipts of {HELD_FROM}: {error}")),
    };
    let receipts: BTreeSet<u64> = receipts.iter().map(|kept| kept.message_id).collect();
    if let Some(id) = receipts.iter().find(|id| printed.forgot.contains(id)) {
        return Err(format!(
            "receipt {id} came back after its confirmation committed"
        ));
    }
    let owed = (printed.kept.iter()).find(|&&id| !ann_confirms(id) && !receipts.contains(&id));
    if let Some(id) = owed {
        return Err(format!(
            "receipt {id} was kept, never confirmed, and is gone"
        ));
    }
    store
        .confirm(HELD_TO, ids.into_iter().collect(), 1)
        .unwrap()
        .wait()
        .unwrap();
    if let Ok(pending) = store.take_receipts(HELD_FROM) {
        pending.wait().unwrap();
    }
    Ok(messages.len())
}

fn check_integrity(dir: &Path) {
    let conn = rusqlite::Connection::open(StoreConfig::new(dir).db_path()).unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
}
