//! Every SQL statement the store runs, one function each.
//!
//! The writes run inside the writer's group transaction and return
//! `rusqlite::Result<Result<T, StoreError>>`: the outer error is SQLite
//! failing (it fails the whole group), the inner one a refusal that is this
//! request's answer alone (no such account, say), which fails nothing else.
//! The reads run on the reader's connection.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::message::fold;
use crate::{Account, Expired, Mailbox, NewAccount, StoreError, StoreOutcome, StoredMessage};

/// A mailbox's limits, as the writer applies them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quota {
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
}

/// A refusal, or done, as the answer of a write that changed `changed` rows.
fn changed_or(changed: usize, refusal: StoreError) -> Result<(), StoreError> {
    if changed == 0 { Err(refusal) } else { Ok(()) }
}

/// Stores `messages` in order (each against its mailbox's quota, counting
/// the ones before it), counts them in their accounts, and raises the last
/// message id past them.
pub(crate) fn store(
    conn: &Connection,
    quota: Quota,
    messages: &[StoredMessage],
) -> rusqlite::Result<Vec<StoreOutcome>> {
    let mut usage = conn.prepare_cached(
        "SELECT mailbox_count, mailbox_bytes FROM accounts WHERE nick_folded = ?1",
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO mailbox (recipient, id, sender, to_names, ts_ms, text, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT DO NOTHING",
    )?;
    let mut outcomes = Vec::with_capacity(messages.len());
    // What this request added to each mailbox, counted in once at the end.
    let mut added: Vec<(String, u64, u64)> = Vec::new();
    for message in messages {
        let recipient = fold(&message.recipient);
        let earlier = added.iter().find(|(folded, ..)| *folded == recipient);
        let (more, more_bytes) = earlier.map_or((0, 0), |&(_, count, bytes)| (count, bytes));
        let used: Option<(u64, u64)> = usage
            .query_row([&recipient], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let bytes = message.stored_bytes();
        let outcome = match used.map(|(count, used)| (count + more, used + more_bytes)) {
            None => StoreOutcome::NoSuchAccount,
            Some((count, used)) if count >= quota.messages || used + bytes > quota.bytes => {
                StoreOutcome::MailboxFull
            }
            Some(_) => {
                let inserted = insert.execute(params![
                    recipient,
                    message.id,
                    message.sender,
                    message.to_names(),
                    message.ts_ms,
                    message.text,
                    bytes,
                ])?;
                // A message already there (the same id) counts as stored,
                // and is counted once.
                if inserted > 0 {
                    match added.iter_mut().find(|(folded, ..)| *folded == recipient) {
                        Some((_, count, total)) => {
                            *count += 1;
                            *total += bytes;
                        }
                        None => added.push((recipient, 1, bytes)),
                    }
                }
                StoreOutcome::Stored
            }
        };
        outcomes.push(outcome);
    }
    let mut count = conn.prepare_cached(
        "UPDATE accounts SET mailbox_count = mailbox_count + ?2,
                             mailbox_bytes = mailbox_bytes + ?3
         WHERE nick_folded = ?1",
    )?;
    for (recipient, messages, bytes) in &added {
        count.execute(params![recipient, messages, bytes])?;
    }
    if let Some(last) = messages.iter().map(|message| message.id).max() {
        conn.prepare_cached(
            "UPDATE hub_state SET value = max(value, ?1) WHERE key = 'last_message_id'",
        )?
        .execute([last])?;
    }
    Ok(outcomes)
}

/// Takes `count` messages of `bytes` off a mailbox's counts.
fn uncount(conn: &Connection, recipient: &str, count: u64, bytes: u64) -> rusqlite::Result<()> {
    if count == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE accounts SET mailbox_count = max(0, mailbox_count - ?2),
                             mailbox_bytes = max(0, mailbox_bytes - ?3)
         WHERE nick_folded = ?1",
    )?
    .execute(params![recipient, count, bytes])?;
    Ok(())
}

/// Removes the named messages from a mailbox; answers how many went.
pub(crate) fn confirm(conn: &Connection, recipient: &str, ids: &[u64]) -> rusqlite::Result<u64> {
    let recipient = fold(recipient);
    let mut delete = conn
        .prepare_cached("DELETE FROM mailbox WHERE recipient = ?1 AND id = ?2 RETURNING bytes")?;
    let (mut removed, mut bytes) = (0, 0);
    // An id past i64 cannot be stored, so it is not there to remove.
    for id in ids.iter().filter_map(|&id| i64::try_from(id).ok()) {
        let gone: Option<u64> = delete
            .query_row(params![recipient, id], |row| row.get(0))
            .optional()?;
        if let Some(size) = gone {
            removed += 1;
            bytes += size;
        }
    }
    uncount(conn, &recipient, removed, bytes)?;
    Ok(removed)
}

/// Deletes messages routed before `now_ms - max_age`, counting them per
/// mailbox, and adds each count to the account's untold ones.
pub(crate) fn expire(
    conn: &Connection,
    now_ms: u64,
    max_age: Duration,
) -> rusqlite::Result<Vec<Expired>> {
    let max_age_ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
    // Clamped into i64 so that a far-future clock reads as "everything".
    let cutoff = i64::try_from(now_ms.saturating_sub(max_age_ms)).unwrap_or(i64::MAX);
    let counts: Vec<(String, String, u64, u64)> = conn
        .prepare_cached(
            "SELECT a.nick_folded, a.nick, count(*), sum(m.bytes)
             FROM mailbox m JOIN accounts a ON a.nick_folded = m.recipient
             WHERE m.ts_ms < ?1
             GROUP BY m.recipient
             ORDER BY m.recipient",
        )?
        .query_map([cutoff], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut tell = conn.prepare_cached(
        "UPDATE accounts SET expired_untold = expired_untold + ?2 WHERE nick_folded = ?1",
    )?;
    for (folded, _, dropped, bytes) in &counts {
        tell.execute(params![folded, dropped])?;
        uncount(conn, folded, *dropped, *bytes)?;
    }
    conn.prepare_cached("DELETE FROM mailbox WHERE ts_ms < ?1")?
        .execute([cutoff])?;
    Ok(counts
        .into_iter()
        .map(|(_, recipient, dropped, _)| Expired { recipient, dropped })
        .collect())
}

/// Takes `told` off a mailbox's count of expired messages not yet told.
pub(crate) fn clear_expired(
    conn: &Connection,
    recipient: &str,
    told: u64,
) -> rusqlite::Result<Result<(), StoreError>> {
    update_account(
        conn,
        recipient,
        "UPDATE accounts SET expired_untold = max(0, expired_untold - ?2)
         WHERE nick_folded = ?1",
        &told,
    )
}

/// Creates an account, unless its nickname is taken.
pub(crate) fn create_account(
    conn: &Connection,
    account: &NewAccount,
) -> rusqlite::Result<Result<(), StoreError>> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO accounts (nick_folded, nick, password_hash, created_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            fold(&account.nick),
            account.nick,
            account.password_hash,
            account.created_ms,
        ])?;
    Ok(changed_or(changed, StoreError::AccountExists))
}

/// Runs `sql`, an UPDATE of one account (`?1` its folded nickname, `?2`
/// `value`).
fn update_account(
    conn: &Connection,
    nick: &str,
    sql: &str,
    value: &dyn rusqlite::ToSql,
) -> rusqlite::Result<Result<(), StoreError>> {
    let changed = conn
        .prepare_cached(sql)?
        .execute(params![fold(nick), value])?;
    Ok(changed_or(changed, StoreError::NoSuchAccount))
}

/// Replaces an account's password hash.
pub(crate) fn set_password(
    conn: &Connection,
    nick: &str,
    password_hash: &str,
) -> rusqlite::Result<Result<(), StoreError>> {
    update_account(
        conn,
        nick,
        "UPDATE accounts SET password_hash = ?2 WHERE nick_folded = ?1",
        &password_hash,
    )
}

/// Records when an account's owner was last seen.
pub(crate) fn set_last_seen(
    conn: &Connection,
    nick: &str,
    at_ms: u64,
) -> rusqlite::Result<Result<(), StoreError>> {
    update_account(
        conn,
        nick,
        "UPDATE accounts SET last_seen_ms = ?2 WHERE nick_folded = ?1",
        &at_ms,
    )
}

/// Deletes an account and its mailbox, in the same transaction.
pub(crate) fn delete_account(
    conn: &Connection,
    nick: &str,
) -> rusqlite::Result<Result<(), StoreError>> {
    let folded = fold(nick);
    conn.prepare_cached("DELETE FROM mailbox WHERE recipient = ?1")?
        .execute([&folded])?;
    let changed = conn
        .prepare_cached("DELETE FROM accounts WHERE nick_folded = ?1")?
        .execute([&folded])?;
    Ok(changed_or(changed, StoreError::NoSuchAccount))
}

/// The columns [`account_from_row`] reads, in its order.
const ACCOUNT_COLUMNS: &str =
    "nick, password_hash, created_ms, last_seen_ms, mailbox_count, mailbox_bytes";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        nick: row.get(0)?,
        password_hash: row.get(1)?,
        created_ms: row.get(2)?,
        last_seen_ms: row.get(3)?,
        mailbox_count: row.get(4)?,
        mailbox_bytes: row.get(5)?,
    })
}

/// One account.
pub(crate) fn account(conn: &Connection, nick: &str) -> rusqlite::Result<Option<Account>> {
    conn.prepare_cached(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE nick_folded = ?1"
    ))?
    .query_row([fold(nick)], account_from_row)
    .optional()
}

/// Every account, by folded nickname.
pub(crate) fn accounts(conn: &Connection) -> rusqlite::Result<Vec<Account>> {
    conn.prepare_cached(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY nick_folded"
    ))?
    .query_map([], account_from_row)?
    .collect()
}

/// A mailbox, oldest first, read in one read transaction so that its
/// messages and its expired count agree.
pub(crate) fn mailbox(
    conn: &Connection,
    recipient: &str,
) -> rusqlite::Result<Result<Mailbox, StoreError>> {
    let recipient = fold(recipient);
    let tx = conn.unchecked_transaction()?;
    let owner: Option<(String, u64)> = tx
        .prepare_cached("SELECT nick, expired_untold FROM accounts WHERE nick_folded = ?1")?
        .query_row([&recipient], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((nick, expired)) = owner else {
        return Ok(Err(StoreError::NoSuchAccount));
    };
    let messages = tx
        .prepare_cached(
            "SELECT id, sender, to_names, ts_ms, text FROM mailbox
             WHERE recipient = ?1 ORDER BY id",
        )?
        .query_map([&recipient], |row| {
            Ok(StoredMessage {
                recipient: nick.clone(),
                id: row.get(0)?,
                sender: row.get(1)?,
                to: StoredMessage::split_names(&row.get::<_, String>(2)?),
                ts_ms: row.get(3)?,
                text: row.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    tx.finish()?;
    Ok(Ok(Mailbox { messages, expired }))
}

/// The highest message id the store was handed.
pub(crate) fn last_message_id(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT value FROM hub_state WHERE key = 'last_message_id'",
        [],
        |row| row.get(0),
    )
}

/// Sets the database's page ceiling from a size in bytes (`None`: the
/// largest SQLite allows), answering the ceiling now in force in bytes.
/// SQLite never sets it below the pages already in use.
pub(crate) fn set_max_db_bytes(conn: &Connection, bytes: Option<u64>) -> rusqlite::Result<u64> {
    let page_size: u64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    // SQLite's own ceiling on max_page_count.
    let pages = bytes.map_or(4_294_967_294, |bytes| (bytes / page_size.max(1)).max(1));
    let pages: u64 = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
        row.get(0)
    })?;
    Ok(pages * page_size)
}
