//! The offline recipients of `store`: their accounts, created over the
//! wire before a run, and their mailboxes, emptied after it. (The accounts
//! of `direct --reliable` are created, and deleted after the run, here
//! too.)
//!
//! Accounts are created with `ACCOUNT` frames on connections that never
//! register (an account needs no session), a few at a time: the hub hashes
//! each password with argon2id on a blocking thread, at most four at once.
//! An account left by an earlier run (`ACCOUNT_EXISTS`) is used as it is.
//! Nobody logs in to them while messages are sent: that is what keeps them
//! offline, so that every message to them is stored.
//!
//! Emptying a mailbox is what its owner's client does: log in (`HELLO`
//! with the password), read `MAILBOX` and the `STORED_MESSAGE`s that follow,
//! and `CONFIRM` them. Every stored message is checked on the way against
//! what the run's acks said was stored (see [`Ledger`]), so the drain is
//! also the run's check that a message answered `STORED` is in its
//! recipient's mailbox, once, and that nothing else of the run is.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chinwag_protocol::{
    AccountAction, AccountRequest, ClientFrame, Code, ErrorFrame, Hello, Message, PROTOCOL_VERSION,
    ServerFrame, options,
};
use futures::StreamExt;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use crate::codec::Inbound;
use crate::conn::{self, Frames, STREAM_READ_BUFFER};
use crate::context::Ctx;
use crate::error::SetupError;
use crate::payload::{self, Kind};
use crate::shared_write::{SharedWrite, send_frame};

/// The password of every recipient account the bench creates.
pub(crate) const PASSWORD: &str = "bench-store-password";

/// Accounts created, or mailboxes emptied, at once: the hub checks four
/// passwords at a time, and a few more keep it busy.
const CONCURRENCY: usize = 6;

/// How long one account's creation, or one frame of a drain, may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Stored messages confirmed per `CONFIRM` frame: 32 KiB of ids, far below
/// any hub's frame limit.
const CONFIRM_BATCH: usize = 4096;

/// The nickname of recipient `index`.
pub(crate) fn recipient(index: u32) -> String {
    format!("bench-store-{index}")
}

/// The recipient (index) of sender `sender`'s message `seq`, of
/// `recipients` shared by `senders`: the senders' messages taken in turn,
/// dealt round the recipients.
pub(crate) fn recipient_of(senders: u32, recipients: u32, sender: u32, seq: u64) -> u32 {
    let global = seq * u64::from(senders) + u64::from(sender);
    // Below `recipients`, so a u32.
    (global % u64::from(recipients.max(1))) as u32
}

/// What creating the recipients' accounts came to.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Created {
    /// Accounts this run created.
    pub(crate) created: u32,
    /// Accounts that were there already (`ACCOUNT_EXISTS`).
    pub(crate) existing: u32,
}

/// Creates the accounts `bench-store-0..count`, each with [`PASSWORD`],
/// tolerating those that exist.
///
/// # Errors
///
/// [`SetupError::Refused`] if the hub refuses one otherwise (registration
/// closed, no store), [`SetupError::Connect`] or [`SetupError::Handshake`]
/// if a connection fails.
pub(crate) async fn create_accounts(ctx: &Ctx, count: u32) -> Result<Created, SetupError> {
    create_named(ctx, count, recipient, false).await
}

/// Creates the accounts `name(0)..name(count)`, each with [`PASSWORD`]. One
/// that exists is used as it is, or with `fresh` deleted (with its mailbox)
/// and created again; either way it counts as existing.
pub(crate) async fn create_named(
    ctx: &Ctx,
    count: u32,
    name: fn(u32) -> String,
    fresh: bool,
) -> Result<Created, SetupError> {
    let answers = for_each_name(ctx, count, name, "accounts", move |ctx, nick| async move {
        let created = create(&ctx, &nick).await?;
        if !created && fresh {
            delete(&ctx, &nick).await?;
            create(&ctx, &nick).await?;
        }
        Ok(created)
    })
    .await?;
    let created = answers.iter().filter(|created| **created).count();
    Ok(Created {
        created: u32::try_from(created).unwrap_or(u32::MAX),
        existing: u32::try_from(answers.len() - created).unwrap_or(u32::MAX),
    })
}

/// Deletes the accounts `name(0)..name(count)` and their mailboxes (those
/// already gone are let be); returns how many were deleted.
pub(crate) async fn delete_named(
    ctx: &Ctx,
    count: u32,
    name: fn(u32) -> String,
) -> Result<u32, SetupError> {
    let answers = for_each_name(
        ctx,
        count,
        name,
        "deleting accounts",
        |ctx, nick| async move { delete(&ctx, &nick).await },
    )
    .await?;
    let deleted = answers.iter().filter(|deleted| **deleted).count();
    Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
}

/// Runs `work` for each of the names `name(0)..name(count)`, at most
/// [`CONCURRENCY`] at a time, with a progress bar labelled `label`; its
/// answers, in the order they finished.
async fn for_each_name<F, Fut>(
    ctx: &Ctx,
    count: u32,
    name: fn(u32) -> String,
    label: &'static str,
    work: F,
) -> Result<Vec<bool>, SetupError>
where
    F: Fn(Ctx, String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<bool, SetupError>> + Send + 'static,
{
    let admission = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let admission = Arc::clone(&admission);
        let (ctx, work) = (ctx.clone(), work.clone());
        tasks.spawn(async move {
            // The semaphore is never closed.
            let _permit = admission.acquire_owned().await.ok();
            work(ctx, name(index)).await
        });
    }
    let mut bar = ctx.bar(count.into(), label);
    let mut answers = Vec::with_capacity(count as usize);
    while let Some(joined) = tasks.join_next().await {
        answers.push(joined.map_err(|error| SetupError::Task(error.to_string()))??);
        bar.set(answers.len() as u64);
    }
    Ok(answers)
}

/// Creates one account on a connection of its own; `false` if it existed.
async fn create(ctx: &Ctx, nick: &str) -> Result<bool, SetupError> {
    match request(ctx, nick, AccountAction::Create).await? {
        Ok(()) => Ok(true),
        Err(error) if error.code == Code::ACCOUNT_EXISTS => Ok(false),
        Err(error) => {
            let hint = if error.code == Code::REGISTRATION_CLOSED {
                format!(
                    " (create the account {nick} with `chinwagd account create`, \
                     password {PASSWORD:?}, or run the hub with --registration open)"
                )
            } else {
                String::new()
            };
            Err(SetupError::Refused {
                nick: nick.to_owned(),
                code: error.code.0,
                message: format!("{}{hint}", error.message),
            })
        }
    }
}

/// Deletes one account on a connection of its own; `false` if there was
/// none.
async fn delete(ctx: &Ctx, nick: &str) -> Result<bool, SetupError> {
    match request(ctx, nick, AccountAction::Delete).await? {
        Ok(()) => Ok(true),
        Err(error) if error.code == Code::NO_SUCH_ACCOUNT => Ok(false),
        Err(error) => Err(SetupError::Refused {
            nick: nick.to_owned(),
            code: error.code.0,
            message: error.message,
        }),
    }
}

/// Sends one `ACCOUNT` request about `nick` (with [`PASSWORD`]) on a
/// connection of its own: `Ok(Err)` is the hub's refusal.
async fn request(
    ctx: &Ctx,
    nick: &str,
    action: AccountAction,
) -> Result<Result<(), ErrorFrame>, SetupError> {
    let fail = |reason: String| SetupError::Handshake {
        nick: nick.to_owned(),
        reason,
    };
    let (mut frames, write) = open(ctx, nick).await?;
    let request = ClientFrame::Account(AccountRequest {
        action,
        nick: nick.to_owned(),
        password: PASSWORD.to_owned(),
        new_password: String::new(),
    });
    send_frame(&write, &request)
        .await
        .map_err(|error| fail(format!("cannot send ACCOUNT: {error}")))?;
    loop {
        match next(&mut frames).await.map_err(&fail)? {
            Some(ServerFrame::AccountDone(_)) => return Ok(Ok(())),
            Some(ServerFrame::Error(error)) => return Ok(Err(error)),
            Some(ServerFrame::Ping(token)) => {
                send_frame(&write, &ClientFrame::Pong(token))
                    .await
                    .map_err(|error| fail(error.to_string()))?;
            }
            _ => {}
        }
    }
}

/// Opens a connection for an account's business, not registered.
async fn open(ctx: &Ctx, nick: &str) -> Result<(Frames, SharedWrite), SetupError> {
    let (read, write) = conn::open_split(ctx, nick, None, STREAM_READ_BUFFER).await?;
    // Stored messages are decoded in full (the codec reads only `MESSAGE`s
    // in place), whatever their size.
    let frames = conn::framed(read, 0, STREAM_READ_BUFFER);
    Ok((frames, Arc::new(Mutex::new(write))))
}

/// The next frame, decoded in full, within [`STEP_TIMEOUT`]; `None` for
/// one the codec read in place (a presence notice), which these
/// connections have no use for.
async fn next(frames: &mut Frames) -> Result<Option<ServerFrame>, String> {
    let frame = tokio::time::timeout(STEP_TIMEOUT, frames.next())
        .await
        .map_err(|_| format!("nothing from the hub for {} s", STEP_TIMEOUT.as_secs()))?;
    match frame {
        Some(Ok(Inbound::Frame(frame))) => Ok(Some(frame)),
        Some(Ok(_)) => Ok(None),
        Some(Err(error)) => Err(format!("reading failed: {error}")),
        None => Err("the hub closed the connection".to_owned()),
    }
}

/// What the run's acks said was stored, and what the mailboxes held: one
/// bit per data message of each sender.
#[derive(Debug)]
pub(crate) struct Ledger {
    senders: u32,
    recipients: u32,
    /// Data messages each sender sent (sequence numbers `0..`).
    messages: Vec<u64>,
    /// Acked `STORED`, per sender.
    stored: Vec<Vec<u64>>,
    /// Found in a mailbox, per sender.
    found: Vec<Vec<u64>>,
}

impl Ledger {
    pub(crate) fn new(senders: u32, recipients: u32, messages: Vec<u64>) -> Self {
        let bits = |m: &u64| vec![0u64; usize::try_from(m.div_ceil(64)).unwrap_or(0)];
        Self {
            senders,
            recipients,
            stored: messages.iter().map(bits).collect(),
            found: messages.iter().map(bits).collect(),
            messages,
        }
    }

    /// Records that sender `sender`'s message `seq` was acked `STORED`.
    pub(crate) fn mark_stored(&mut self, sender: u32, seq: u64) {
        if let Some(bits) = self.stored.get_mut(sender as usize) {
            set(bits, seq);
        }
    }

    /// Records a stored data message of this run found in recipient
    /// `mailbox`'s mailbox; says what is wrong with it, if anything.
    fn found(&mut self, mailbox: u32, sender: u32, seq: u64) -> Option<String> {
        let sent = self.messages.get(sender as usize).copied().unwrap_or(0);
        if seq >= sent {
            return Some(format!(
                "{}: a stored message from sender {sender} numbered {seq}, beyond what it sent",
                recipient(mailbox)
            ));
        }
        if recipient_of(self.senders, self.recipients, sender, seq) != mailbox {
            return Some(format!(
                "{}: sender {sender}'s message {seq} is in the wrong mailbox",
                recipient(mailbox)
            ));
        }
        let (stored, found) = (
            &self.stored[sender as usize],
            &mut self.found[sender as usize],
        );
        if !set(found, seq) {
            return Some(format!(
                "{}: sender {sender}'s message {seq} is stored twice",
                recipient(mailbox)
            ));
        }
        if !get(stored, seq) {
            return Some(format!(
                "{}: sender {sender}'s message {seq} is stored but its ack did not say STORED",
                recipient(mailbox)
            ));
        }
        None
    }

    /// Messages acked `STORED` that no mailbox held, and the first of them.
    fn missing(&self) -> (u64, Option<String>) {
        let mut count = 0;
        let mut first = None;
        for (sender, (stored, found)) in (0u32..).zip(self.stored.iter().zip(&self.found)) {
            for (word, (&s, &f)) in (0u64..).zip(stored.iter().zip(found)) {
                let lost = s & !f;
                if lost != 0 {
                    count += u64::from(lost.count_ones());
                    first.get_or_insert_with(|| {
                        let seq = word * 64 + u64::from(lost.trailing_zeros());
                        format!(
                            "sender {sender}'s message {seq} was acked STORED but is in no mailbox"
                        )
                    });
                }
            }
        }
        (count, first)
    }
}

/// Sets bit `n`; false if it was set already.
fn set(bits: &mut [u64], n: u64) -> bool {
    let Some(word) = usize::try_from(n / 64).ok().and_then(|w| bits.get_mut(w)) else {
        return false;
    };
    let mask = 1 << (n % 64);
    let fresh = *word & mask == 0;
    *word |= mask;
    fresh
}

fn get(bits: &[u64], n: u64) -> bool {
    usize::try_from(n / 64)
        .ok()
        .and_then(|w| bits.get(w))
        .is_some_and(|word| word & (1 << (n % 64)) != 0)
}

/// What emptying the mailboxes found.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// Stored messages read and confirmed, in all.
    pub(crate) confirmed: u64,
    /// Of those, this run's data messages.
    pub(crate) this_run: u64,
    /// Messages older than this run (an earlier run's, not drained then).
    pub(crate) leftovers: u64,
    /// This run's messages acked `STORED` that no mailbox held.
    pub(crate) missing: u64,
    /// One sentence per problem: a mailbox that could not be read, a message
    /// in the wrong place, twice, or missing.
    pub(crate) problems: Vec<String>,
    /// Problems beyond the first few, not listed.
    pub(crate) more_problems: u64,
}

/// Problems listed one by one; the rest are counted.
const LISTED_PROBLEMS: usize = 5;

impl Drained {
    fn problem(&mut self, what: String) {
        if self.problems.len() < LISTED_PROBLEMS {
            self.problems.push(what);
        } else {
            self.more_problems += 1;
        }
    }
}

/// What one mailbox held.
struct OneMailbox {
    index: u32,
    /// This run's data messages: (sender, sequence number).
    data: Vec<(u32, u64)>,
    confirmed: u64,
    leftovers: u64,
    problems: Vec<String>,
}

/// Logs in to every recipient in turn (a few at once), reads its mailbox,
/// confirms everything in it, and checks this run's messages against
/// `ledger`. Messages with hub ids below `first_id` (the run's first) are
/// an earlier run's: confirmed too, and counted as leftovers.
pub(crate) async fn drain(
    ctx: &Ctx,
    recipients: u32,
    size: usize,
    first_id: u64,
    ledger: &mut Ledger,
) -> Drained {
    let admission = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    for index in 0..recipients {
        let admission = Arc::clone(&admission);
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let _permit = admission.acquire_owned().await.ok();
            empty(&ctx, index, size, first_id).await
        });
    }
    let mut bar = ctx.bar(recipients.into(), "draining");
    let mut drained = Drained::default();
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        done += 1;
        bar.set(done);
        let one = match joined {
            Ok(one) => one,
            Err(error) => {
                drained.problem(format!("a drain task failed: {error}"));
                continue;
            }
        };
        drained.confirmed += one.confirmed;
        drained.leftovers += one.leftovers;
        drained.this_run += one.data.len() as u64;
        for problem in one.problems {
            drained.problem(problem);
        }
        for (sender, seq) in one.data {
            if let Some(problem) = ledger.found(one.index, sender, seq) {
                drained.problem(problem);
            }
        }
    }
    let (missing, first) = ledger.missing();
    drained.missing = missing;
    if let Some(first) = first {
        drained.problem(format!("{missing} stored messages missing; first: {first}"));
    }
    drained
}

/// Empties recipient `index`'s mailbox.
async fn empty(ctx: &Ctx, index: u32, size: usize, first_id: u64) -> OneMailbox {
    let mut one = OneMailbox {
        index,
        data: Vec::new(),
        confirmed: 0,
        leftovers: 0,
        problems: Vec::new(),
    };
    if let Err(problem) = read_and_confirm(ctx, &mut one, size, first_id).await {
        one.problems
            .push(format!("{}: drain failed: {problem}", recipient(index)));
    }
    one
}

async fn read_and_confirm(
    ctx: &Ctx,
    one: &mut OneMailbox,
    size: usize,
    first_id: u64,
) -> Result<(), String> {
    let nick = recipient(one.index);
    let (mut frames, write) = open(ctx, &nick).await.map_err(|error| error.to_string())?;
    let hello = ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        nick: Bytes::from(nick.clone()),
        options: Some(options::NO_PRESENCE),
        password: Some(PASSWORD.to_owned()),
    });
    send(&write, &hello).await?;
    // WELCOME, then MAILBOX with the count of stored messages that follow.
    let mut expected = None;
    while expected.is_none() {
        match next(&mut frames).await? {
            Some(ServerFrame::Mailbox(header)) => expected = Some(header.count),
            Some(ServerFrame::Error(error)) => {
                return Err(format!(
                    "login refused: {} (code {})",
                    error.message, error.code.0
                ));
            }
            Some(ServerFrame::Ping(token)) => send(&write, &ClientFrame::Pong(token)).await?,
            _ => {}
        }
    }
    let mut left = expected.unwrap_or(0);
    let mut ids = Vec::with_capacity(CONFIRM_BATCH);
    while left > 0 {
        match next(&mut frames).await? {
            Some(ServerFrame::StoredMessage(message)) => {
                left -= 1;
                ids.push(message.id);
                check(one, &message, size, first_id);
                if ids.len() == CONFIRM_BATCH {
                    send(&write, &ClientFrame::Confirm(std::mem::take(&mut ids))).await?;
                }
            }
            Some(ServerFrame::Error(error)) => {
                return Err(format!(
                    "the hub sent error {}: {}",
                    error.code.0, error.message
                ));
            }
            Some(ServerFrame::Ping(token)) => send(&write, &ClientFrame::Pong(token)).await?,
            _ => {}
        }
    }
    if !ids.is_empty() {
        send(&write, &ClientFrame::Confirm(ids)).await?;
    }
    one.confirmed = u64::from(expected.unwrap_or(0));
    // The hub hands `CONFIRM`s to its actor in order, and the actor hands
    // them to the store before it answers a `WHO` that follows: once the
    // answer is here, whatever the store does next (the next run's writes,
    // a login's read) comes after the deletes.
    send(&write, &ClientFrame::Who).await?;
    loop {
        match next(&mut frames).await? {
            Some(ServerFrame::Roster(_) | ServerFrame::Users(_)) => break,
            Some(ServerFrame::Ping(token)) => send(&write, &ClientFrame::Pong(token)).await?,
            _ => {}
        }
    }
    let _ = send(&write, &ClientFrame::Quit).await;
    Ok(())
}

/// Sorts one stored message: this run's data, a leftover, or a problem.
fn check(one: &mut OneMailbox, message: &Message, size: usize, first_id: u64) {
    if message.id < first_id {
        one.leftovers += 1;
        return;
    }
    match payload::parse(message.text.as_bytes(), size) {
        Some(header) if header.kind == Kind::Data => one.data.push((header.sender, header.seq)),
        // The run's warm-up messages are stored too.
        Some(_) => {}
        None => one.problems.push(format!(
            "{}: stored message {} from {} is not a bench payload of {size} bytes",
            recipient(one.index),
            message.id,
            message.from
        )),
    }
}

async fn send(write: &SharedWrite, frame: &ClientFrame) -> Result<(), String> {
    send_frame(write, frame)
        .await
        .map_err(|error| format!("writing failed: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_dealt_round_the_recipients() {
        // 3 senders, 2 recipients: global order s0 s1 s2 s0 s1 s2 ...
        let of = |sender, seq| recipient_of(3, 2, sender, seq);
        assert_eq!([of(0, 0), of(1, 0), of(2, 0), of(0, 1)], [0, 1, 0, 1]);
        let mut counts = [0u32; 7];
        for sender in 0..50 {
            for seq in 0..100 {
                counts[recipient_of(50, 7, sender, seq) as usize] += 1;
            }
        }
        assert!(counts.iter().all(|&c| c == 714 || c == 715), "{counts:?}");
    }

    #[test]
    fn the_ledger_finds_missing_duplicate_and_misplaced_messages() {
        let mut ledger = Ledger::new(2, 2, vec![3, 3]);
        for (sender, seq) in [(0, 0), (0, 1), (1, 0), (1, 2)] {
            ledger.mark_stored(sender, seq);
        }
        // (0, 0) belongs in mailbox 0, (1, 0) in mailbox 1 (global 0, 1).
        assert_eq!(ledger.found(0, 0, 0), None);
        assert!(ledger.found(0, 0, 0).is_some_and(|p| p.contains("twice")));
        assert!(ledger.found(0, 1, 0).is_some_and(|p| p.contains("wrong")));
        assert_eq!(ledger.found(1, 1, 0), None);
        // (0, 2) was never acked STORED.
        assert!(
            ledger
                .found(0, 0, 2)
                .is_some_and(|p| p.contains("did not say"))
        );
        assert!(ledger.found(0, 0, 9).is_some_and(|p| p.contains("beyond")));
        let (missing, first) = ledger.missing();
        assert_eq!(missing, 2, "(0, 1) and (1, 2)");
        assert!(first.is_some_and(|f| f.contains("sender 0's message 1")));
    }
}
