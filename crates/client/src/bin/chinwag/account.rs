//! `chinwag account create | passwd | delete`: account requests made
//! without registering, with the passwords from `password.rs`.

use std::io::{self, BufRead as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use chinwag_client::{AccountAction, AccountDone, AccountRequest, ClientError};
use clap::Subcommand;

use crate::output::Format;
use crate::password::{self, HOW};
use crate::{EXIT_NOT_DELIVERED, print_line};

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Register a nickname with a password (8 to 1024 bytes). At a terminal
    /// the password is asked twice; otherwise it comes from
    /// --password-stdin or `CHINWAG_PASSWORD`. Messages sent to the nickname
    /// while you are offline then wait in its mailbox.
    Create {
        /// The nickname to register.
        #[arg(long)]
        nick: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change an account's password: the current one, then the new one. At
    /// a terminal both are asked (the new one twice); otherwise they come
    /// from --password-stdin (two lines: current, new) or `CHINWAG_PASSWORD`
    /// and `CHINWAG_NEW_PASSWORD`.
    Passwd {
        /// The account's nickname.
        #[arg(long)]
        nick: String,
        /// Read the current password and then the new one from the first
        /// two lines of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account and the messages waiting in its mailbox, for good;
    /// asks for confirmation unless --yes. The password comes as for
    /// `create`. If its owner is online, it stays online as a guest.
    Delete {
        /// The account's nickname.
        #[arg(long)]
        nick: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Do not ask for confirmation (needed when standard input is not a
        /// terminal).
        #[arg(long)]
        yes: bool,
    },
}

pub(crate) async fn run(
    server: &crate::Server<'_>,
    command: AccountCommand,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (nick, done) = match command {
        AccountCommand::Create {
            nick,
            password_stdin,
        } => {
            let password = match password::from_stdin_or_env(password_stdin)? {
                Some(password) => password,
                None if password::can_prompt() => password::prompt_new(&nick, "password").await?,
                None => bail!("no password for the new account {nick}: {HOW}"),
            };
            password::check_new(&password)?;
            let done = exchange(server, AccountAction::Create, &nick, &password, "").await;
            (nick, done)
        }
        AccountCommand::Passwd {
            nick,
            password_stdin,
        } => {
            let (current, new) = passwords_to_change(&nick, password_stdin).await?;
            password::check_new(&new)?;
            let done = exchange(server, AccountAction::SetPassword, &nick, &current, &new).await;
            (nick, done)
        }
        AccountCommand::Delete {
            nick,
            password_stdin,
            yes,
        } => {
            let password = match password::from_stdin_or_env(password_stdin)? {
                Some(password) => password,
                None if password::can_prompt() => {
                    password::prompt(format!("password for {nick}: ")).await?
                }
                None => bail!("no password for {nick}: {HOW}"),
            };
            if !yes && !confirm_delete(&nick)? {
                eprintln!("chinwag: nothing deleted");
                return Ok(ExitCode::from(EXIT_NOT_DELIVERED));
            }
            let done = exchange(server, AccountAction::Delete, &nick, &password, "").await;
            (nick, done)
        }
    };
    report(server.addr, &nick, done, format)
}

/// One account request to `server`, over TLS if it says so.
async fn exchange(
    server: &crate::Server<'_>,
    action: AccountAction,
    nick: &str,
    password: &str,
    new_password: &str,
) -> Result<AccountDone, ClientError> {
    let request = AccountRequest {
        action,
        nick: nick.to_owned(),
        password: password.to_owned(),
        new_password: new_password.to_owned(),
    };
    chinwag_client::account_with_tls(server.addr, request, server.tls.as_ref()).await
}

/// The current and the new password for `account passwd`.
async fn passwords_to_change(nick: &str, from_stdin: bool) -> anyhow::Result<(String, String)> {
    if from_stdin {
        let mut input = io::stdin().lock();
        let current = password::read_line(&mut input, "current password")?;
        let new = password::read_line(&mut input, "new password")?;
        return Ok((current, new));
    }
    let current = match std::env::var(password::ENV).ok().filter(|p| !p.is_empty()) {
        Some(current) => current,
        None if password::can_prompt() => {
            password::prompt(format!("current password for {nick}: ")).await?
        }
        None => bail!("no current password for {nick}: {HOW}"),
    };
    let new = match std::env::var(password::NEW_ENV)
        .ok()
        .filter(|p| !p.is_empty())
    {
        Some(new) => new,
        None if password::can_prompt() => password::prompt_new(nick, "new password").await?,
        None => bail!(
            "no new password for {nick}: give it in the CHINWAG_NEW_PASSWORD environment \
             variable, or as the second line of standard input with --password-stdin"
        ),
    };
    Ok((current, new))
}

/// Asks at the terminal whether to delete; only `yes` does.
fn confirm_delete(nick: &str) -> anyhow::Result<bool> {
    if !password::can_prompt() {
        bail!(
            "not deleting {nick} without confirmation: standard input is not a terminal; pass --yes"
        );
    }
    let mut stderr = io::stderr().lock();
    write!(
        stderr,
        "delete the account {nick} and the messages waiting for it, for good? type yes: "
    )?;
    stderr.flush()?;
    let mut answer = String::new();
    io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

/// Prints what was done; a refusal is exit status 1, anything else that
/// went wrong an error (status 2).
fn report(
    server: &str,
    nick: &str,
    done: Result<AccountDone, ClientError>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    match done {
        Ok(done) => {
            print_line(&format.account_done(&done))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(ClientError::Rejected { message, .. }) => {
            eprintln!(
                "chinwag: {server} refused: {}",
                chinwag_client::protocol::text::visible(&message)
            );
            Ok(ExitCode::from(EXIT_NOT_DELIVERED))
        }
        Err(error) => Err(error).with_context(|| format!("account request for {nick} failed")),
    }
}
