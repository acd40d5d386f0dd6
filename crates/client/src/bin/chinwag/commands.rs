//! The one-shot subcommands: `send`, `listen` and `who`.

use std::process::ExitCode;
use std::time::Duration;

use chinwag_client::protocol::options;
use chinwag_client::{Ack, Client, ClientError, CloseReason, Event, Events, Recipients, Who};

use crate::output::Format;
use crate::{EXIT_NOT_DELIVERED, interrupted, print_line, receipts};

/// The recipients of `chinwag send --to ...` (or `--all`).
pub(crate) fn recipients(to: Vec<String>, all: bool) -> Recipients {
    // `everyone` and `all` are reserved nicknames (no user can have them):
    // `--to everyone` means what it says, as `--all` does.
    let everyone = |name: &String| {
        let name = name.strip_prefix('@').unwrap_or(name);
        name.eq_ignore_ascii_case("everyone") || name.eq_ignore_ascii_case("all")
    };
    if all || (to.len() == 1 && to.iter().all(everyone)) {
        Recipients::Everyone
    } else {
        // `--to @bob` reads naturally to people used to the chat syntax.
        let names = to.into_iter().map(|name| match name.strip_prefix('@') {
            Some(bare) => bare.to_owned(),
            None => name,
        });
        Recipients::Users(names.collect())
    }
}

/// `chinwag send`: one message, its ack, an exit status that says whether
/// everyone got it (a copy stored in an offline recipient's mailbox
/// counts). With `wait` (`--wait received`), then the recipients'
/// receipts, for at most that long (`receipts::wait`); the client asked
/// for them.
pub(crate) async fn send(
    client: &Client,
    mut events: Events,
    to: Recipients,
    text: &str,
    wait: Option<Duration>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let Some(timeout) = wait else {
        // Nothing but the ack matters here; dropped events are discarded.
        drop(events);
        let sent = client.send(to, text).await;
        client.quit().await;
        return answer(sent, format);
    };
    let granted = client.welcome().options.unwrap_or(0);
    if granted & options::RECEIPTS == 0 {
        client.quit().await;
        anyhow::bail!("this hub sends no receipts (it is older than them): nothing was sent");
    }
    let sent = client.send(to, text).await;
    let status = match &sent {
        Ok(ack) if ack.is_ok() => {
            for line in format.ack(ack, true) {
                print_line(&line)?;
            }
            receipts::wait(ack, &mut events, timeout, format).await
        }
        // Not everyone got it: no need to wait to know the answer.
        _ => {
            client.quit().await;
            return answer(sent, format);
        }
    };
    client.quit().await;
    status
}

/// Prints what became of a message sent, and picks the exit status.
fn answer(sent: Result<Ack, ClientError>, format: Format) -> anyhow::Result<ExitCode> {
    match sent {
        Ok(ack) => {
            for line in format.ack(&ack, true) {
                print_line(&line)?;
            }
            Ok(if ack.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NOT_DELIVERED)
            })
        }
        Err(error @ ClientError::Rejected { .. }) => {
            eprintln!("chinwag: not sent: {error}");
            Ok(ExitCode::from(EXIT_NOT_DELIVERED))
        }
        Err(error) => Err(error.into()),
    }
}

/// `chinwag listen`: prints events until interrupted, until `count`
/// messages arrived, or until the hub ends the session (exit 1).
pub(crate) async fn listen(
    client: &Client,
    mut events: Events,
    count: Option<u64>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let listened = async {
        print_line(&format.roster(&client.welcome().roster))?;
        let mut messages = 0;
        if count == Some(0) {
            return Ok(ExitCode::SUCCESS);
        }
        let interrupted = interrupted();
        tokio::pin!(interrupted);
        loop {
            let event = tokio::select! {
                () = &mut interrupted => return Ok(ExitCode::SUCCESS),
                event = events.recv() => event,
            };
            match event {
                None => return Ok(ExitCode::SUCCESS),
                Some(Event::Closed { reason }) => return Ok(report_close(&reason, format)?),
                Some(event) => {
                    for line in format.event(&event) {
                        print_line(&line)?;
                    }
                    if matches!(event, Event::Message(_) | Event::Stored(_)) {
                        messages += 1;
                        if Some(messages) == count {
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                }
            }
        }
    };
    let result: anyhow::Result<ExitCode> = listened.await;
    client.quit().await;
    result
}

/// `chinwag who`: the table of users (or, from a hub that keeps none, the
/// roster), without the nickname that asked.
pub(crate) async fn who(client: &Client, format: Format) -> anyhow::Result<ExitCode> {
    let who = client.who_users().await;
    client.quit().await;
    let me = |nick: &String| nick.eq_ignore_ascii_case(client.nick());
    let lines = match who? {
        Who::Users(mut users) => {
            users.retain(|user| !me(&user.nick));
            if users.is_empty() && !format.json {
                vec!["* nobody else is known".to_owned()]
            } else {
                format.users(&users)
            }
        }
        Who::Roster(mut roster) => {
            roster.retain(|nick| !me(nick));
            if roster.is_empty() && !format.json {
                vec!["* nobody else is online".to_owned()]
            } else {
                vec![format.roster(&roster)]
            }
        }
        // `Who` may grow; a hub's answer this program cannot show is empty.
        _ => Vec::new(),
    };
    for line in lines {
        print_line(&line)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Says how the session ended (JSON on stdout, and one line on stderr unless
/// it was a quit) and picks the exit status.
pub(crate) fn report_close(reason: &CloseReason, format: Format) -> std::io::Result<ExitCode> {
    if format.json {
        print_line(&Format::closed_record(reason))?;
    }
    if matches!(reason, CloseReason::Quit) {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("chinwag: {reason}");
        Ok(ExitCode::from(EXIT_NOT_DELIVERED))
    }
}
