//! Registered nicknames as the actor sees them: who may log in as whom,
//! `ACCOUNT` requests, the table of users, and when account holders were
//! last seen.
//!
//! The actor keeps every account in memory (read once at start), so that
//! routing never waits on the store to learn whether an offline name is
//! registered. Passwords are hashed and checked on blocking threads, at
//! most [`HASHING`] at once; writes go to the store, and both answer the
//! actor with a [`Command::Answer`]. Nothing here waits.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chinwag_protocol::{
    AccountAction, AccountDone, Code, ErrorFrame, MAX_NICK_LEN, Nick, ServerFrame, UserEntry,
    encode_into, options, user_flags,
};
use chinwag_store::{Account, NewAccount, SentRecord, StoreError};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Actor, encode};
use crate::accounts::{
    AccountPolicy, Storage, Throttle, check_new_password, hash_password, verify_password,
};
use crate::command::{AccountChange, AccountJob, Answer, Command, Join};
use crate::registry::{ConnId, Lookup};

/// Passwords hashed or checked at once. Each argon2 run takes 19 MiB and
/// tens of milliseconds of one core: a crowd of logins waits its turn
/// rather than taking the machine's memory.
const HASHING: usize = 4;

/// A registered nickname, as the actor keeps it.
#[derive(Debug)]
pub(super) struct Known {
    /// As registered.
    pub(super) nick: String,
    hash: Arc<str>,
    last_seen_ms: Option<u64>,
    /// The last number a stored message for it was given (reliable
    /// sessions' `SEQUENCED`): the next is one more. A `Cell`, so that a
    /// message's copies are numbered while its recipients, found in the
    /// same map, are still borrowed.
    last_number: Cell<u64>,
}

/// Every account, by case-folded nickname. Looked up for every stored
/// copy (its number): hashed with `foldhash`, hashbrown's own default,
/// seeded at random per map as `SipHash` is and several times faster on
/// these short keys (the resend windows' map, `resend.rs`, has it too).
pub(super) type KnownAccounts = HashMap<Vec<u8>, Known, foldhash::fast::RandomState>;

/// The next number for a message stored for `nick` among `known` (0 if it
/// has no account). Numbers are given in routing order; the store keeps
/// the last one given with the message, so a restarted hub goes on above
/// every number a client may have seen (messages reach a reliable session
/// only once stored).
pub(super) fn next_number(known: &KnownAccounts, nick: &str) -> u64 {
    // Folded on the stack: this runs for every stored copy.
    let mut folded = [0u8; MAX_NICK_LEN];
    let Some(folded) = folded.get_mut(..nick.len()) else {
        return 0;
    };
    folded.copy_from_slice(nick.as_bytes());
    folded.make_ascii_lowercase();
    known.get(&folded[..]).map_or(0, |known| {
        known.last_number.set(known.last_number.get() + 1);
        known.last_number.get()
    })
}

/// The accounts, the store they are kept in, and the throttle on wrong
/// passwords.
pub(super) struct Accounts {
    pub(super) storage: Option<Storage>,
    /// Every account, by case-folded nickname.
    pub(super) known: KnownAccounts,
    /// Nicknames whose account is being created (hashed or written).
    creating: HashSet<Vec<u8>>,
    throttle: Throttle,
    pub(super) policy: AccountPolicy,
    hashing: Arc<Semaphore>,
    /// The actor's own queue, for answers from elsewhere. Weak, so that
    /// the queue still closes when every handle has gone.
    pub(super) answers: mpsc::WeakSender<Command>,
}

impl Accounts {
    pub(super) fn new(
        storage: Option<Storage>,
        accounts: Vec<Account>,
        policy: AccountPolicy,
        answers: mpsc::WeakSender<Command>,
    ) -> Self {
        let known = accounts
            .into_iter()
            .map(|account| {
                let key = key_of(&account.nick);
                let known = Known {
                    nick: account.nick,
                    hash: account.password_hash.into(),
                    last_seen_ms: account.last_seen_ms,
                    last_number: Cell::new(account.last_number),
                };
                (key, known)
            })
            .collect();
        Self {
            storage,
            known,
            creating: HashSet::new(),
            throttle: Throttle::default(),
            policy,
            hashing: Arc::new(Semaphore::new(HASHING)),
            answers,
        }
    }
    /// Runs `work` on a blocking thread, once a hashing place is free, and
    /// hands its answer to the actor.
    fn off_actor(&self, work: impl FnOnce() -> Answer + Send + 'static) {
        let hashing = self.hashing.clone();
        let answers = self.answers.clone();
        tokio::spawn(async move {
            let Ok(_place) = hashing.acquire_owned().await else {
                return;
            };
            // A panic in the hashing crate drops the request: its
            // connection sees the hub go away, and the hub goes on.
            let Ok(answer) = tokio::task::spawn_blocking(work).await else {
                return;
            };
            send_answer(&answers, answer).await;
        });
    }

    /// Throttle check for a password about to be checked.
    fn throttled(&self, key: &[u8], address: Option<std::net::IpAddr>) -> bool {
        self.throttle.holds(key, address, Instant::now())
    }

    fn failed(&mut self, key: &[u8], address: Option<std::net::IpAddr>) {
        self.throttle.failed(key, address, Instant::now());
    }

    /// Forgets throttle entries that have refilled.
    pub(super) fn prune(&mut self) {
        self.throttle.prune(Instant::now());
    }
}

/// The key an account is kept under: its nickname, ASCII case folded, as
/// the registry and the store fold it.
fn key_of(nick: &str) -> Vec<u8> {
    nick.to_ascii_lowercase().into_bytes()
}

/// Hands an answer to the actor, if it still runs.
pub(super) async fn send_answer(answers: &mpsc::WeakSender<Command>, answer: Answer) {
    let _ = return_answer(answers, answer).await;
}

/// As [`send_answer`], from any thread, without waiting: into the actor's
/// queue at once if it has room, otherwise by a task on `runtime` that
/// waits for room. Dropped if the actor has stopped.
pub(super) fn answer_from_any_thread(
    answers: &mpsc::WeakSender<Command>,
    runtime: &tokio::runtime::Handle,
    answer: Answer,
) {
    let Some(commands) = answers.upgrade() else {
        return;
    };
    if let Err(mpsc::error::TrySendError::Full(command)) =
        commands.try_send(Command::Answer(Box::new(answer)))
    {
        runtime.spawn(async move {
            let _ = commands.send(command).await;
        });
    }
}

/// As [`send_answer`], handing the answer back when the actor has stopped,
/// for whoever must not lose it.
pub(super) async fn return_answer(
    answers: &mpsc::WeakSender<Command>,
    answer: Answer,
) -> Result<(), Answer> {
    let Some(commands) = answers.upgrade() else {
        return Err(answer);
    };
    match commands.send(Command::Answer(Box::new(answer))).await {
        Err(mpsc::error::SendError(Command::Answer(answer))) => Err(*answer),
        // Sent; or (never) some other command came back.
        _ => Ok(()),
    }
}

/// An `ERROR` answering an `ACCOUNT` request: its reference is the action.
fn refusal(action: AccountAction, code: Code, message: Option<String>) -> ServerFrame {
    ServerFrame::Error(ErrorFrame {
        code,
        reference: u64::from(action.to_u8()),
        message: message.unwrap_or_else(|| code.to_string()),
    })
}

impl Actor {
    /// A `HELLO`: a guest, or a login to an account, or a refusal.
    pub(super) fn join(&mut self, join: Join) {
        let key = join.nick.folded().into_bytes();
        let accounts = &self.accounts;
        let refuse = |join: Join, code: Code| {
            let _ = join.reply.send(Err((code, join.unregistered)));
        };
        match (accounts.known.get(&key), &join.password) {
            (None, None) if accounts.policy.require_accounts && accounts.storage.is_some() => {
                refuse(join, Code::ACCOUNT_REQUIRED);
            }
            (None, None) => self.register(join, false),
            (Some(_), None) => refuse(join, Code::NICK_REGISTERED),
            (None, Some(_)) if accounts.storage.is_none() => {
                refuse(join, Code::ACCOUNTS_UNAVAILABLE);
            }
            (None, Some(_)) => refuse(join, Code::NO_SUCH_ACCOUNT),
            (Some(_), Some(_)) if accounts.throttled(&key, join.address) => {
                refuse(join, Code::LOGIN_THROTTLED);
            }
            (Some(known), Some(password)) => {
                let hash = known.hash.clone();
                let password = password.clone();
                // A reliable session's client may send again what it sent
                // before: the hub must know those messages before the
                // session can send anything (`resend.rs`), so they are read
                // with the password's check, when not in memory already.
                let reliable = join
                    .options
                    .is_some_and(|bits| bits & options::RELIABLE != 0);
                let read_sent = (reliable && !self.resends.has(&key))
                    .then(|| accounts.storage.as_ref().map(|s| s.mail.clone()))
                    .flatten();
                let nick = known.nick.clone();
                accounts.off_actor(move || {
                    let ok = verify_password(&hash, &password);
                    let sent = read_sent
                        .filter(|_| ok)
                        .map(|mail| mail.sent(&nick).and_then(chinwag_store::Pending::wait));
                    Answer::Login { join, ok, sent }
                });
            }
        }
    }

    /// A login's password, checked: registers it, replacing an older
    /// session of the same account, or refuses it.
    pub(super) fn logged_in(
        &mut self,
        mut join: Join,
        ok: bool,
        sent: Option<Result<Vec<SentRecord>, StoreError>>,
    ) {
        let key = join.nick.folded().into_bytes();
        let Some(known) = self.accounts.known.get(&key) else {
            // Deleted while the password was checked.
            let _ = join
                .reply
                .send(Err((Code::NO_SUCH_ACCOUNT, join.unregistered)));
            return;
        };
        // Online as spelled at registration, however the login spelled it.
        if let Ok(registered) = Nick::parse(known.nick.as_bytes()) {
            join.nick = registered;
        }
        match sent {
            Some(Ok(records)) => self.resends.install(&key, records, self.now_ms),
            Some(Err(error)) => {
                // Without them a message sent again could be routed twice:
                // the login is refused, and the client tries again.
                warn!(%error, nick = %known.nick, "could not read what a reliable session sent");
                let _ = join
                    .reply
                    .send(Err((Code::STORE_UNAVAILABLE, join.unregistered)));
                return;
            }
            None => {}
        }
        if !ok {
            self.accounts.failed(&key, join.address);
            let _ = join
                .reply
                .send(Err((Code::BAD_PASSWORD, join.unregistered)));
            return;
        }
        if let Lookup::Online(older, member) = self.registry.lookup(&key) {
            // The newer connection wins, not the faster password check: a
            // client that lost its connection mid-login and logged in again
            // on a new one must not be replaced by its own stale login.
            if older > join.id {
                let _ = join
                    .reply
                    .send(Err((Code::SESSION_REPLACED, join.unregistered)));
                return;
            }
            // A one-shot command (`QUIET`) does not end its owner's chat:
            // only a session that is seen replaces another.
            let quiet = join.options.is_some_and(|bits| bits & options::QUIET != 0);
            if quiet && !member.quiet() {
                let _ = join.reply.send(Err((Code::NICK_TAKEN, join.unregistered)));
                return;
            }
            info!(nick = %member.nick, "logged in again: the older session is replaced");
            member.outbox.close(Some(Code::SESSION_REPLACED), true);
            self.leave(older);
            // Its departure is told before the new arrival.
            self.flush_presence();
        }
        self.register(join, true);
    }

    /// The table of users: every account, online or not, and every guest
    /// online; quiet members left out. Sorted case-insensitively.
    pub(super) fn users_table(&self) -> Vec<UserEntry> {
        let mut rows: BTreeMap<Vec<u8>, UserEntry> = (self.accounts.known.iter())
            .map(|(key, known)| {
                let row = UserEntry {
                    flags: user_flags::REGISTERED,
                    last_seen_ms: known.last_seen_ms.unwrap_or(0),
                    nick: known.nick.clone(),
                };
                (key.clone(), row)
            })
            .collect();
        for (_, member) in self.registry.online() {
            if member.quiet() {
                continue;
            }
            rows.entry(member.nick.folded().into_bytes())
                .and_modify(|row| {
                    row.flags |= user_flags::ONLINE;
                    row.last_seen_ms = 0;
                })
                .or_insert_with(|| UserEntry {
                    flags: user_flags::ONLINE,
                    last_seen_ms: 0,
                    nick: member.nick.to_string(),
                });
        }
        rows.into_values().collect()
    }

    /// Tells everyone who keeps the table of users of a change to it.
    fn tell_users(&mut self, row: UserEntry) {
        let Some(frame) = encode(&ServerFrame::User(row)) else {
            return;
        };
        self.tell_watchers(|_, member| member.users().then(|| frame.clone()));
    }

    /// An account holder went offline: when is kept, here and in the store.
    pub(super) fn seen_leaving(&mut self, nick: &Nick) {
        let now = self.now_ms;
        if let Some(known) = self.accounts.known.get_mut(nick.folded().as_bytes()) {
            known.last_seen_ms = Some(now);
        }
        if let Some(storage) = &self.accounts.storage {
            super::mailbox::in_background(
                "could not record when a user was last seen",
                storage.accounts.set_last_seen(nick.as_str(), now),
            );
        }
    }

    /// An `ACCOUNT` request: refused at once, or handed to a blocking
    /// thread (passwords) and then the store.
    pub(super) fn account(&mut self, job: AccountJob) {
        let action = job.request.action;
        let accounts = &mut self.accounts;
        let refuse = |job: AccountJob, code: Code, message: Option<String>| {
            let _ = job.reply.send(refusal(action, code, message));
        };
        if accounts.storage.is_none() {
            return refuse(job, Code::ACCOUNTS_UNAVAILABLE, None);
        }
        let nick = match Nick::parse(job.request.nick.as_bytes()) {
            Ok(nick) => nick,
            Err(error) => {
                let message = error.to_string();
                return refuse(job, error.code(), Some(message));
            }
        };
        let key = nick.folded().into_bytes();
        let new_password = match action {
            AccountAction::Create => Some(&job.request.password),
            AccountAction::SetPassword => Some(&job.request.new_password),
            AccountAction::Delete => None,
        };
        if let Some(Err(message)) = new_password.map(|password| check_new_password(password)) {
            return refuse(job, Code::BAD_REQUEST, Some(message));
        }
        if action == AccountAction::Create {
            if !accounts.policy.registration_open {
                return refuse(job, Code::REGISTRATION_CLOSED, None);
            }
            if accounts.known.contains_key(&key) || accounts.creating.contains(&key) {
                return refuse(job, Code::ACCOUNT_EXISTS, None);
            }
            if let Lookup::Online(holder, _) = self.registry.lookup(&key)
                && holder != job.id
            {
                return refuse(job, Code::NICK_TAKEN, None);
            }
            accounts.creating.insert(key);
            let password = job.request.password.clone();
            accounts.off_actor(move || Answer::Checked {
                job,
                ok: true,
                hash: Some(hash_password(&password)),
            });
            return;
        }
        let Some(known) = accounts.known.get(&key) else {
            return refuse(job, Code::NO_SUCH_ACCOUNT, None);
        };
        if accounts.throttled(&key, job.address) {
            return refuse(job, Code::LOGIN_THROTTLED, None);
        }
        let hash = known.hash.clone();
        accounts.off_actor(move || {
            let ok = verify_password(&hash, &job.request.password);
            let hash = (ok && action == AccountAction::SetPassword)
                .then(|| hash_password(&job.request.new_password));
            Answer::Checked { job, ok, hash }
        });
    }

    /// An account request's password checked and new hash made: on to the
    /// store.
    pub(super) fn account_checked(
        &mut self,
        job: AccountJob,
        ok: bool,
        hash: Option<Result<String, String>>,
    ) {
        let action = job.request.action;
        let key = key_of(&job.request.nick);
        if !ok {
            self.accounts.failed(&key, job.address);
            let _ = job.reply.send(refusal(action, Code::BAD_PASSWORD, None));
            return;
        }
        let hash = match hash {
            Some(Ok(hash)) => Some(hash),
            Some(Err(error)) => {
                warn!(%error, "could not hash a password");
                self.accounts.creating.remove(&key);
                let _ = job
                    .reply
                    .send(refusal(action, Code::STORE_FAILED, Some(error)));
                return;
            }
            None => None,
        };
        let Some(storage) = self.accounts.storage.clone() else {
            return;
        };
        let nick = job.request.nick.clone();
        let (change, written) = match (action, hash) {
            (AccountAction::Create, Some(hash)) => {
                let account = NewAccount {
                    nick,
                    password_hash: hash.clone(),
                    created_ms: self.now_ms,
                };
                let written = storage.accounts.create_account(account);
                (AccountChange::Created { hash }, written)
            }
            (AccountAction::SetPassword, Some(hash)) => {
                let written = storage.accounts.set_password(&nick, hash.clone());
                (AccountChange::Password { hash }, written)
            }
            (AccountAction::Delete, _) => (
                AccountChange::Deleted,
                storage.accounts.delete_account(&nick),
            ),
            // A new password that was not hashed: cannot happen.
            (_, None) => return,
        };
        let answers = self.accounts.answers.clone();
        match written {
            Ok(pending) => {
                tokio::spawn(async move {
                    let result = pending.await;
                    send_answer(
                        &answers,
                        Answer::Written {
                            job,
                            change,
                            result,
                        },
                    )
                    .await;
                });
            }
            Err(error) => self.account_written(job, change, Err(error)),
        }
    }

    /// The store's answer to an account request: the table follows it,
    /// and the requester is answered.
    pub(super) fn account_written(
        &mut self,
        job: AccountJob,
        change: AccountChange,
        result: Result<(), StoreError>,
    ) {
        let action = job.request.action;
        let key = key_of(&job.request.nick);
        if let AccountChange::Created { .. } = change {
            self.accounts.creating.remove(&key);
        }
        if let Err(error) = result {
            let code = match error {
                StoreError::AccountExists => Code::ACCOUNT_EXISTS,
                StoreError::NoSuchAccount => Code::NO_SUCH_ACCOUNT,
                error => {
                    warn!(%error, ?action, "could not write an account");
                    Code::STORE_FAILED
                }
            };
            let _ = job.reply.send(refusal(action, code, None));
            return;
        }
        let online = match self.registry.lookup(&key) {
            Lookup::Online(id, member) => Some((id, member.quiet())),
            Lookup::Unknown => None,
        };
        let shown_online = online.is_some_and(|(_, quiet)| !quiet);
        let online_flag = if shown_online { user_flags::ONLINE } else { 0 };
        let (nick, row) = match change {
            AccountChange::Created { hash } => {
                let nick = job.request.nick.clone();
                info!(%nick, "account created");
                // The guest who asked is now that account's session.
                if let Some((id, _)) = online
                    && id == job.id
                    && let Some(member) = self.registry.member_mut(id)
                {
                    member.account = true;
                }
                let known = Known {
                    nick: nick.clone(),
                    hash: hash.into(),
                    last_seen_ms: None,
                    last_number: Cell::new(0),
                };
                self.accounts.known.insert(key, known);
                let row = UserEntry {
                    flags: user_flags::REGISTERED | online_flag,
                    last_seen_ms: 0,
                    nick: nick.clone(),
                };
                (nick, Some(row))
            }
            AccountChange::Password { hash } => {
                let Some(known) = self.accounts.known.get_mut(&key) else {
                    return;
                };
                known.hash = hash.into();
                info!(nick = %known.nick, "password changed");
                (known.nick.clone(), None)
            }
            AccountChange::Deleted => {
                let nick = (self.accounts.known.remove(&key))
                    .map_or_else(|| job.request.nick.clone(), |known| known.nick);
                info!(%nick, "account deleted");
                // Its owner, if online, goes on as a guest.
                if let Some((id, _)) = online
                    && let Some(member) = self.registry.member_mut(id)
                {
                    member.account = false;
                }
                let row = UserEntry {
                    flags: online_flag,
                    last_seen_ms: 0,
                    nick: nick.clone(),
                };
                (nick, Some(row))
            }
        };
        let _ = job
            .reply
            .send(ServerFrame::AccountDone(AccountDone { action, nick }));
        if let Some(row) = row {
            self.tell_users(row);
        }
    }

    /// The `WHO` answer for member `id`: the table of users if it keeps
    /// one, else the roster.
    pub(super) fn who(&mut self, id: ConnId) {
        let Some(member) = self.registry.member(id) else {
            return;
        };
        let answer = if member.users() {
            Some(self.table_frames())
        } else {
            encode(&ServerFrame::Roster(self.registry.roster()))
        };
        if let Some(frames) = answer {
            self.queue_for(id, frames);
        }
    }

    /// The table of users as frames no larger than the hub's frame limit
    /// (which is what a client accepts by default): one `USERS` with as
    /// many rows as fit, then a `USER` for each row left, which adds it. A
    /// hub with more accounts than one frame holds is still read whole, by
    /// any client that follows the protocol.
    pub(super) fn table_frames(&self) -> Bytes {
        let rows = self.users_table();
        // The opcode and the count, then each row as a `USER` holds it.
        let mut size = 1 + 4;
        let fit = (rows.iter())
            .take_while(|row| {
                size += row.encoded_len();
                size <= self.max_frame
            })
            .count();
        let mut rows = rows.into_iter();
        let first: Vec<UserEntry> = rows.by_ref().take(fit).collect();
        let mut frames = BytesMut::new();
        let frames_ok =
            encode_into(&ServerFrame::Users(first), usize::MAX, &mut frames).and_then(|()| {
                rows.try_for_each(|row| {
                    encode_into(&ServerFrame::User(row), usize::MAX, &mut frames)
                })
            });
        if let Err(error) = frames_ok {
            warn!(%error, "could not encode the table of users");
        }
        frames.freeze()
    }
}
