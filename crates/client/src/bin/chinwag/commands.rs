//! The one-shot subcommands: `send`, `listen` and `who`.

use std::process::ExitCode;

use chinwag_client::{Client, ClientError, CloseReason, Event, Events, Recipients};

use crate::output::Format;
use crate::{EXIT_NOT_DELIVERED, interrupted, print_line};

/// `chinwag send`: one message, its ack, an exit status that says whether
/// everyone got it.
pub(crate) async fn send(
    client: &Client,
    to: Vec<String>,
    all: bool,
    text: &str,
    format: Format,
) -> anyhow::Result<ExitCode> {
    // `everyone` and `all` are reserved nicknames (no user can have them):
    // `--to everyone` means what it says, as `--all` does.
    let everyone = |name: &String| {
        let name = name.strip_prefix('@').unwrap_or(name);
        name.eq_ignore_ascii_case("everyone") || name.eq_ignore_ascii_case("all")
    };
    let to = if all || (to.len() == 1 && to.iter().all(everyone)) {
        Recipients::Everyone
    } else {
        // `--to @bob` reads naturally to people used to the chat syntax.
        let names = to.into_iter().map(|name| match name.strip_prefix('@') {
            Some(bare) => bare.to_owned(),
            None => name,
        });
        Recipients::Users(names.collect())
    };
    let sent = client.send(to, text).await;
    client.quit().await;
    match sent {
        Ok(ack) => {
            for line in format.ack(&ack, true) {
                print_line(&line)?;
            }
            Ok(if ack.all_delivered() {
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
                    if let Some(line) = format.event(&event) {
                        print_line(&line)?;
                    }
                    if matches!(event, Event::Message(_)) {
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

/// `chinwag who`: the roster, without the nickname that asked.
pub(crate) async fn who(client: &Client, format: Format) -> anyhow::Result<ExitCode> {
    let roster = client.who().await;
    client.quit().await;
    let roster: Vec<String> = roster?
        .into_iter()
        .filter(|nick| !nick.eq_ignore_ascii_case(client.nick()))
        .collect();
    if roster.is_empty() && !format.json {
        print_line("* nobody else is online")?;
    } else {
        print_line(&format.roster(&roster))?;
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
