//! The batch log's tests: groups read back after a reopen, torn and
//! revoked frames, segments reused, and a crash test (`kill -9` of a
//! process writing, many rounds).

use std::collections::{BTreeSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::*;

/// Small segments, so that a few groups fill one.
const SEGMENT: u64 = 4096;

/// The entries of group `lsn` in these tests: made from its number alone,
/// so that any group read back can be checked. Every third is large, and
/// one in 17 is larger than a segment.
fn entries_of(lsn: u64) -> Vec<(u8, u64, Vec<u8>)> {
    let mut state = lsn.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let count = 1 + next() % 4;
    (0..count)
        .map(|i| {
            let len = match lsn % 17 {
                0 => 5000,
                _ if lsn.is_multiple_of(3) => 900 + next() % 200,
                _ => next() % 120,
            };
            let byte = (lsn as u8).wrapping_add(i as u8);
            (
                (next() % 4) as u8 + 1,
                lsn * 10 + i,
                vec![byte; len as usize],
            )
        })
        .collect()
}

fn stage_group(log: &mut BatchLog, lsn: u64, holds: bool) {
    for (kind, key, bytes) in entries_of(lsn) {
        log.stage(kind, key, &bytes, holds);
    }
}

fn open(dir: &Path) -> (BatchLog, Vec<Group>) {
    BatchLog::open(dir, SEGMENT).expect("the log opens")
}

fn lsns(groups: &[Group]) -> Vec<u64> {
    groups.iter().map(|g| g.lsn).collect()
}

fn check_contents(groups: &[Group]) {
    check_contents_of(groups, entries_of);
}

fn check_contents_of(groups: &[Group], entries: impl Fn(u64) -> Vec<(u8, u64, Vec<u8>)>) {
    for group in groups {
        assert_eq!(group.entries, entries(group.lsn), "group {}", group.lsn);
    }
}

#[test]
fn held_groups_read_back_in_order_after_a_reopen() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut log, groups) = open(dir.path());
    assert!(groups.is_empty());
    // An empty commit writes nothing.
    assert_eq!(log.commit().expect("commit"), None);
    for lsn in 1..=40 {
        stage_group(&mut log, lsn, true);
        let committed = log.commit().expect("commit").expect("a frame");
        assert_eq!(committed.lsn, lsn);
    }
    drop(log);
    let (_, groups) = open(dir.path());
    assert_eq!(lsns(&groups), (1..=40).collect::<Vec<_>>());
    check_contents(&groups);
}

#[test]
fn released_segments_are_reused_and_never_read_again() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut log, _) = open(dir.path());
    let mut held = VecDeque::new();
    for lsn in 1..=400 {
        stage_group(&mut log, lsn, true);
        let committed = log.commit().expect("commit").expect("a frame");
        held.push_back((lsn, committed.segment, entries_of(lsn).len()));
        // Each group is released five groups later.
        while held.len() > 5 {
            let (_, segment, count) = held.pop_front().expect("a held group");
            for _ in 0..count {
                log.release(segment);
            }
        }
        // The files in use stay few: the needed ones, the one being
        // written and those kept for reuse.
        assert!(log.files() <= 12, "{} files at group {lsn}", log.files());
    }
    let files = fs::read_dir(dir.path()).expect("the directory").count();
    assert!(files <= 12, "{files} files on disk");
    drop(log);
    let (_, groups) = open(dir.path());
    // Every group still held is there; the others may be (they share a
    // segment with one that is held), but only in order and whole.
    let read = lsns(&groups);
    for (lsn, _, _) in &held {
        assert!(read.contains(lsn), "held group {lsn} missing from {read:?}");
    }
    assert!(read.len() < 40, "released groups read back: {read:?}");
    assert!(read.windows(2).all(|w| w[1] == w[0] + 1), "{read:?}");
    check_contents(&groups);
}

#[test]
fn a_torn_frame_ends_the_log_and_the_next_is_written_over_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut log, _) = open(dir.path());
    for lsn in 1..=3 {
        log.stage(1, lsn, b"kept", true);
        log.commit().expect("commit");
    }
    let path = log.live.back().expect("a segment").path.clone();
    let whole = fs::metadata(&path).expect("the segment").len();
    drop(log);
    // The last frame loses its last byte, as if the crash came mid-write.
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("the segment");
    file.set_len(whole - 1).expect("truncated");
    let (mut log, groups) = open(dir.path());
    assert_eq!(lsns(&groups), vec![1, 2]);
    log.stage(1, 99, b"after", true);
    assert_eq!(log.commit().expect("commit").expect("a frame").lsn, 3);
    drop(log);
    let (_, groups) = open(dir.path());
    assert_eq!(lsns(&groups), vec![1, 2, 3]);
    assert_eq!(groups[2].entries, vec![(1, 99, b"after".to_vec())]);
}

#[test]
fn a_revoked_commit_is_not_read_and_its_place_is_written_again() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut log, _) = open(dir.path());
    log.stage(1, 1, b"one", true);
    log.commit().expect("commit");
    log.stage(1, 2, b"two", true);
    let two = log.commit().expect("commit").expect("a frame");
    log.revoke(two).expect("revoked");
    drop(log);
    let (mut log, groups) = open(dir.path());
    assert_eq!(lsns(&groups), vec![1]);
    log.stage(1, 3, b"three", true);
    assert_eq!(log.commit().expect("commit").expect("a frame").lsn, 2);
    drop(log);
    let (_, groups) = open(dir.path());
    assert_eq!(groups[1].entries, vec![(1, 3, b"three".to_vec())]);
}

#[test]
fn a_file_is_reused_only_once_a_frame_past_it_is_on_disk() {
    // Each group fills a segment, and is released once the next is
    // committed: the oldest file is free again two groups later. If the
    // first frame written over it is torn (a power loss mid-write), the
    // frame before must still find every segment it needs.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut log, _) = open(dir.path());
    let mut seen = Vec::new();
    let mut previous: Option<Committed> = None;
    for lsn in 1..=20 {
        log.stage(1, lsn, &[lsn as u8; 3000], true);
        let committed = log.commit().expect("commit").expect("a frame");
        let path = log.live.back().expect("a segment").path.clone();
        if seen.contains(&path) {
            assert_eq!(committed.offset, 0, "a reused file starts a segment");
            drop(log);
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("the file");
            file.write_all_at(&[0; 8], 4).expect("torn");
            let (_, groups) = BatchLog::open(dir.path(), SEGMENT).expect("the log opens");
            // The group held when the torn one was written is the last
            // read (one released just before it may come too).
            let before = previous.expect("a group before").lsn;
            assert_eq!(lsns(&groups).last(), Some(&before));
            check_contents_of(&groups, |lsn| vec![(1, lsn, vec![lsn as u8; 3000])]);
            return;
        }
        seen.push(path);
        if let Some(previous) = previous {
            log.release(previous.segment);
        }
        previous = Some(committed);
    }
    panic!("no file was reused");
}

#[test]
fn a_missing_needed_segment_is_damage_and_does_not_open() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut log, _) = open(dir.path());
    for lsn in 1..=30 {
        stage_group(&mut log, lsn, true);
        log.commit().expect("commit");
    }
    let first = log.live.front().expect("a segment").path.clone();
    drop(log);
    fs::remove_file(first).expect("removed");
    let error = BatchLog::open(dir.path(), SEGMENT).expect_err("damage");
    assert_eq!(error.kind(), io::ErrorKind::InvalidData);
}

#[test]
fn a_segment_file_of_garbage_is_spare_however_long_it_claims_to_be() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (mut log, _) = open(dir.path());
    log.stage(1, 1, b"one", true);
    log.commit().expect("commit");
    drop(log);
    // A header claiming a 4 GiB frame, in a file of 64 bytes.
    fs::write(dir.path().join("00000099.seg"), [0xff; 64]).expect("written");
    let (mut log, groups) = open(dir.path());
    assert_eq!(lsns(&groups), vec![1]);
    log.stage(1, 2, b"two", true);
    assert_eq!(log.commit().expect("commit").expect("a frame").lsn, 2);
}

#[test]
fn other_files_in_the_directory_are_left_alone() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    fs::write(dir.path().join("notes.txt"), b"mine").expect("written");
    let (mut log, _) = open(dir.path());
    log.stage(1, 1, b"one", false);
    log.commit().expect("commit");
    drop(log);
    let (_, groups) = open(dir.path());
    assert_eq!(lsns(&groups), vec![1]);
    assert_eq!(
        fs::read(dir.path().join("notes.txt")).expect("kept"),
        b"mine"
    );
}

/// Set in the writer's environment: the directory of its log.
const DIR_VAR: &str = "CHINWAG_BATCH_LOG_CRASH_DIR";
/// Replays a run: the seed its output printed.
const SEED_VAR: &str = "CHINWAG_CRASH_SEED";
/// Groups a writer holds at once: each is released this many commits
/// after its own.
const HELD: usize = 24;

/// The writer, run as a child by the crash test: it opens the log, holds
/// what was recovered, then commits groups as fast as it can, printing
/// `ACK <lsn>` once each has returned and `REL <lsn>` once each is
/// released, until it is killed.
#[test]
#[ignore = "run by the crash test, as a child process"]
fn crash_writer() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let (mut log, groups) = BatchLog::open(Path::new(&dir), SEGMENT).expect("the log opens");
    let mut held = VecDeque::new();
    for group in groups {
        for _ in &group.entries {
            log.hold(group.segment);
        }
        held.push_back((group.lsn, group.segment, group.entries.len()));
    }
    loop {
        let lsn = log.next_lsn;
        stage_group(&mut log, lsn, true);
        let committed = log.commit().expect("commit").expect("a frame");
        println!("ACK {}", committed.lsn);
        held.push_back((committed.lsn, committed.segment, entries_of(lsn).len()));
        while held.len() > HELD {
            let (lsn, segment, count) = held.pop_front().expect("a held group");
            for _ in 0..count {
                log.release(segment);
            }
            println!("REL {lsn}");
        }
    }
}

#[test]
fn crash_50_rounds() {
    crash_rounds(50);
}

/// `cargo test -p chinwag-store --lib -- --ignored crash_500_rounds`
#[test]
#[ignore = "long: 500 rounds"]
fn crash_500_rounds() {
    crash_rounds(500);
}

/// Kills the writer at random moments, `rounds` times on one directory:
/// after each kill, every group acknowledged and not released must be
/// read back whole, and whatever is read back must be whole and in order.
fn crash_rounds(rounds: usize) {
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |now| now.as_nanos() as u64)
                | 1
        });
    println!("batch log crash test: {SEED_VAR}={seed}");
    let mut random = seed;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let exe = std::env::current_exe().expect("the test binary");
    // Acknowledged and not released, across rounds.
    let mut needed = BTreeSet::new();
    let (mut acked, mut recovered_total) = (0, 0);
    for round in 0..rounds {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let run = Duration::from_millis(2 + random % 120);
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "batch_log::tests::crash_writer",
                "--ignored",
                "--nocapture",
            ])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the writer starts");
        let stdout = child.stdout.take().expect("its output");
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => lines.push(line),
                    Err(_) => break,
                }
            }
            lines
        });
        let started = Instant::now();
        while started.elapsed() < run {
            if child.try_wait().expect("the writer's state").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().expect("killed");
        let status = child.wait().expect("reaped");
        assert!(
            !status.success(),
            "round {round}: the writer ended by itself"
        );
        for line in reader.join().expect("its output read") {
            if let Some(lsn) = line.strip_prefix("ACK ") {
                needed.insert(lsn.parse::<u64>().expect("an lsn"));
                acked += 1;
            } else if let Some(lsn) = line.strip_prefix("REL ") {
                needed.remove(&lsn.parse::<u64>().expect("an lsn"));
            }
        }
        let (_, groups) = BatchLog::open(dir.path(), SEGMENT)
            .unwrap_or_else(|error| panic!("round {round}: the log does not open: {error}"));
        let read = lsns(&groups);
        for lsn in &needed {
            assert!(
                read.contains(lsn),
                "round {round} ({SEED_VAR}={seed}): acknowledged group {lsn} lost"
            );
        }
        assert!(
            read.windows(2).all(|w| w[1] == w[0] + 1),
            "round {round}: groups out of order: {read:?}"
        );
        check_contents(&groups);
        // What was read back is what the next writer holds.
        needed = read.iter().copied().collect();
        recovered_total += read.len();
        let files = fs::read_dir(dir.path()).expect("the directory").count();
        assert!(files <= 16, "round {round}: {files} files");
    }
    println!(
        "batch log crash test: {rounds} rounds, {acked} groups acknowledged, \
         {recovered_total} read back after the kills, none lost"
    );
    assert!(
        acked > rounds,
        "the writers acknowledged too little to test"
    );
}
