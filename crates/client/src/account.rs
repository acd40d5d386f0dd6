//! Account requests without registering: connect, send `ACCOUNT` before any
//! `HELLO`, wait for the answer, quit. For creating an account, changing
//! its password or deleting it from a program that does not otherwise
//! talk to the hub (`chinwag account ...`). A registered client can also
//! make them: [`Client::account`](crate::Client::account).

use std::time::Duration;

use chinwag_protocol::{
    AccountAction, AccountDone, AccountRequest, ClientFrame, Nick, ServerFrame,
};
use tokio::net::{ToSocketAddrs, lookup_host};
use tracing::debug;

use crate::connection::Unregistered;
use crate::{ClientError, TlsOptions};

/// How long an account request may take, connecting included. Generous:
/// the hub hashes passwords with argon2id on purpose slowly, and a busy hub
/// queues them.
pub const ACCOUNT_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one account request to the hub at `addr` without registering, and
/// waits for its answer (at most [`ACCOUNT_TIMEOUT`]).
///
/// ```no_run
/// use chinwag_client::{AccountAction, AccountRequest, account};
///
/// # async fn demo() -> Result<(), chinwag_client::ClientError> {
/// let request = AccountRequest {
///     action: AccountAction::Create,
///     nick: "alice".into(),
///     password: "correct horse battery".into(),
///     new_password: String::new(),
/// };
/// let done = account("127.0.0.1:2446", request).await?;
/// println!("registered {}", done.nick);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`ClientError::InvalidNick`] before anything is sent;
/// [`ClientError::Rejected`] with the hub's code when it refuses the
/// request: `ACCOUNT_EXISTS`, `NICK_TAKEN` (a guest online uses the
/// nickname), `REGISTRATION_CLOSED`, `BAD_PASSWORD`, `LOGIN_THROTTLED`,
/// `NO_SUCH_ACCOUNT`, `ACCOUNTS_UNAVAILABLE`, or `BAD_REQUEST` for a
/// password shorter than 8 bytes or longer than 1024;
/// [`ClientError::Refused`] when the hub ends the connection first (for
/// example `SERVER_FULL`); and the connection errors of
/// [`Client::connect`](crate::Client::connect).
pub async fn account(
    addr: impl ToSocketAddrs,
    request: AccountRequest,
) -> Result<AccountDone, ClientError> {
    account_with_tls(addr, request, None).await
}

/// As [`account`], over TLS with `tls` (a hub's `--tls-listen` port) when
/// given: the password then crosses the network encrypted.
///
/// # Errors
/// As [`account`], and the TLS errors of
/// [`Client::connect_with`](crate::Client::connect_with).
pub async fn account_with_tls(
    addr: impl ToSocketAddrs,
    request: AccountRequest,
    tls: Option<&TlsOptions>,
) -> Result<AccountDone, ClientError> {
    Nick::parse(request.nick.as_bytes())?;
    let addrs: Vec<_> = lookup_host(addr)
        .await
        .map_err(ClientError::Resolve)?
        .collect();
    tokio::time::timeout(ACCOUNT_TIMEOUT, exchange(&addrs, request, tls))
        .await
        .map_err(|_| ClientError::Timeout)?
}

async fn exchange(
    addrs: &[std::net::SocketAddr],
    request: AccountRequest,
    tls: Option<&TlsOptions>,
) -> Result<AccountDone, ClientError> {
    let mut conn = Unregistered::connect(addrs, tls).await?;
    let action = request.action;
    conn.write(&ClientFrame::Account(request)).await?;
    let answer = loop {
        match conn.next("answering the account request").await? {
            ServerFrame::AccountDone(done) if done.action == action => break Ok(done),
            ServerFrame::Error(error) if error.code.is_fatal() => {
                break Err(ClientError::Refused {
                    code: error.code,
                    message: error.message,
                });
            }
            ServerFrame::Error(error) if error.reference == u64::from(action.to_u8()) => {
                break Err(ClientError::Rejected {
                    code: error.code,
                    message: error.message,
                });
            }
            other => debug!(
                ?other,
                "ignoring a frame while waiting for ACCOUNT's answer"
            ),
        }
    };
    // Leave politely; the answer is in either way.
    if answer.is_ok() || matches!(answer, Err(ClientError::Rejected { .. })) {
        let _ = conn.write(&ClientFrame::Quit).await;
    }
    answer
}

/// Registers `nick` with `password` ([`account`] with
/// [`AccountAction::Create`]).
///
/// # Errors
/// As [`account`].
pub async fn create_account(
    addr: impl ToSocketAddrs,
    nick: &str,
    password: &str,
) -> Result<AccountDone, ClientError> {
    account(addr, request(AccountAction::Create, nick, password, "")).await
}

/// Replaces the password of `nick` ([`account`] with
/// [`AccountAction::SetPassword`]).
///
/// # Errors
/// As [`account`].
pub async fn change_password(
    addr: impl ToSocketAddrs,
    nick: &str,
    password: &str,
    new_password: &str,
) -> Result<AccountDone, ClientError> {
    let request = request(AccountAction::SetPassword, nick, password, new_password);
    account(addr, request).await
}

/// Deletes the account `nick` and its mailbox ([`account`] with
/// [`AccountAction::Delete`]). If its owner is online, it stays online as
/// a guest.
///
/// # Errors
/// As [`account`].
pub async fn delete_account(
    addr: impl ToSocketAddrs,
    nick: &str,
    password: &str,
) -> Result<AccountDone, ClientError> {
    account(addr, request(AccountAction::Delete, nick, password, "")).await
}

fn request(action: AccountAction, nick: &str, password: &str, new: &str) -> AccountRequest {
    AccountRequest {
        action,
        nick: nick.to_owned(),
        password: password.to_owned(),
        new_password: new.to_owned(),
    }
}
