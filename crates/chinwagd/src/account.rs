//! `chinwagd account ...`: the operator's commands on a data directory's
//! accounts, for a daemon that is not running (the directory is locked
//! while one is; a client can still `chinwag account create` against a
//! running hub whose registration is open).

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use chinwag_hub::protocol::Nick;
use chinwag_hub::store::{AccountStore, NewAccount, Store, StoreConfig, StoreError};
use chinwag_hub::{check_new_password, hash_password};
use clap::Subcommand;

/// The environment variable a password may come from.
const PASSWORD_ENV: &str = "CHINWAG_PASSWORD";

/// An operator's account command.
#[allow(
    clippy::doc_markdown,
    reason = "these comments are the --help text, where backticks would be printed"
)]
#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Register a nickname.
    Create {
        /// The nickname.
        #[arg(long)]
        nick: String,
        /// Read the password from the first line of standard input
        /// (otherwise CHINWAG_PASSWORD, or a prompt on a terminal).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password (no need to know the old one).
    Passwd {
        /// The nickname.
        #[arg(long)]
        nick: String,
        /// Read the new password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every account: nickname, created, last seen, stored messages.
    List,
    /// Delete an account and every message stored for it.
    Delete {
        /// The nickname.
        #[arg(long)]
        nick: String,
    },
}

/// Carries out `command` on the data directory `data_dir`.
pub(crate) fn run(data_dir: &Path, command: &AccountCommand) -> anyhow::Result<()> {
    let store = Store::open(&StoreConfig::new(data_dir)).map_err(|error| match error {
        StoreError::Locked { .. } => anyhow::anyhow!(
            "{error}: stop the daemon first, or create accounts through it with `chinwag account create`"
        ),
        error => anyhow::Error::new(error)
            .context(format!("cannot open the data directory {}", data_dir.display())),
    })?;
    match command {
        AccountCommand::Create {
            nick,
            password_stdin,
        } => {
            let nick = parse_nick(nick)?;
            let password = password(*password_stdin, "Password for the new account")?;
            let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
            let account = NewAccount {
                nick: nick.to_string(),
                password_hash: hash,
                created_ms: now_ms(),
            };
            match store.create_account(account)?.wait() {
                Ok(()) => println!("created account {nick}"),
                Err(StoreError::AccountExists) => bail!("an account {nick} exists already"),
                Err(error) => return Err(error).context("cannot create the account"),
            }
        }
        AccountCommand::Passwd {
            nick,
            password_stdin,
        } => {
            let nick = parse_nick(nick)?;
            let password = password(*password_stdin, "New password")?;
            let hash = hash_password(&password).map_err(anyhow::Error::msg)?;
            match store.set_password(nick.as_str(), hash)?.wait() {
                Ok(()) => println!("password of {nick} changed"),
                Err(StoreError::NoSuchAccount) => bail!("no account {nick}"),
                Err(error) => return Err(error).context("cannot change the password"),
            }
        }
        AccountCommand::List => {
            let accounts = store.accounts()?.wait()?;
            println!(
                "{:<32} {:<20} {:<20} stored",
                "nick", "created", "last seen"
            );
            for account in accounts {
                println!(
                    "{:<32} {:<20} {:<20} {}",
                    account.nick,
                    utc(account.created_ms),
                    account.last_seen_ms.map_or_else(|| "never".to_owned(), utc),
                    account.mailbox_count,
                );
            }
        }
        AccountCommand::Delete { nick } => {
            let nick = parse_nick(nick)?;
            match store.delete_account(nick.as_str())?.wait() {
                Ok(()) => println!("deleted account {nick} and its stored messages"),
                Err(StoreError::NoSuchAccount) => bail!("no account {nick}"),
                Err(error) => return Err(error).context("cannot delete the account"),
            }
        }
    }
    Ok(())
}

fn parse_nick(nick: &str) -> anyhow::Result<Nick> {
    Nick::parse(nick.as_bytes()).map_err(|error| anyhow::anyhow!("{nick:?}: {error}"))
}

/// A new password: from standard input's first line, `CHINWAG_PASSWORD`, or
/// asked twice on the terminal.
fn password(from_stdin: bool, prompt: &str) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if let Ok(password) = std::env::var(PASSWORD_ENV) {
        password
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{prompt}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        bail!("no password: give --password-stdin or set {PASSWORD_ENV}");
    };
    check_new_password(&password).map_err(anyhow::Error::msg)?;
    Ok(password)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A time as `2026-12-04 07:30 UTC`.
fn utc(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || format!("{ms} ms"),
            |at| at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_the_calendar_ones() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_735_689_600_000), "2025-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000 + 3_660_000), "2000-02-29 01:01 UTC");
    }
}
