//! `chinwag chat`: a line editor at a terminal, a script otherwise.
//!
//! At a terminal, `rustyline-async` keeps the line being typed at the bottom
//! and prints incoming events above it. Otherwise every input line is sent
//! as it is read, and the program exits once the input ends and every ack is
//! in, with status 1 if some message did not reach all of its recipients.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use chinwag_client::protocol::text::{self, Input};
use chinwag_client::{Ack, Client, ClientError, Event, Events, Who};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::{AsyncWriteExt as _, FutureExt as _, StreamExt as _};
use rustyline_async::{Readline, ReadlineEvent, SharedWriter};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::commands::report_close;
use crate::output::Format;
use crate::{EXIT_NOT_DELIVERED, interrupted, print_line};

/// The answer to one input line, waited for without holding up the input.
enum Answer {
    Ack(Result<Ack, ClientError>),
    Who(Result<Who, ClientError>),
}

impl Answer {
    /// The lines to print, and whether the request fully succeeded.
    fn lines(&self, format: Format, all: bool) -> (Vec<String>, bool) {
        match self {
            Self::Ack(Ok(ack)) => (format.ack(ack, all), ack.is_ok()),
            Self::Who(Ok(Who::Users(users))) => (format.users(users), true),
            Self::Who(Ok(who)) => (vec![format.roster(&who.online())], true),
            Self::Ack(Err(error)) | Self::Who(Err(error)) => (vec![format!("! {error}")], false),
        }
    }
}

/// What a line asked for, once acted on.
enum Step {
    Continue,
    /// Wait for this answer.
    Wait(BoxFuture<'static, Answer>),
    Quit,
}

/// Acts on one input line: queues a message or a `WHO`, or prints help or a
/// syntax error (`say` prints a line for the person).
async fn act(client: &Client, line: &str, say: &mut Vec<String>) -> Step {
    match text::parse_line(line) {
        Ok(Input::Send { to, text }) => match client.submit(to, text).await {
            Ok(pending) => Step::Wait(pending.map(Answer::Ack).boxed()),
            Err(error) => Step::Wait(std::future::ready(Answer::Ack(Err(error))).boxed()),
        },
        // Queued now, so that it goes out between the lines around it.
        Ok(Input::Who) => match client.submit_who_users().await {
            Ok(pending) => Step::Wait(pending.map(Answer::Who).boxed()),
            Err(error) => Step::Wait(std::future::ready(Answer::Who(Err(error))).boxed()),
        },
        Ok(Input::Help) => {
            say.push(format!("* {}", text::HELP));
            Step::Continue
        }
        Ok(Input::Quit) => Step::Quit,
        Ok(Input::Nothing) => Step::Continue,
        Err(error) => {
            say.push(format!("! {error}"));
            Step::Continue
        }
    }
}

pub(crate) async fn run(
    client: &Client,
    events: Events,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let result = if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        interactive(client, events, format).await
    } else {
        scripted(client, events, format).await
    };
    client.quit().await;
    result
}

/// At a terminal: read lines while printing events above them.
async fn interactive(
    client: &Client,
    mut events: Events,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (mut editor, mut screen) =
        Readline::new(format!("{}> ", client.nick())).context("cannot set up the terminal")?;
    // `Some(reason)` when the hub ended the session.
    let ended = async {
        if !format.json {
            let hello = format!("* joined as {}; /help for help", client.nick());
            show(&mut screen, &hello).await?;
        }
        show(&mut screen, &format.roster(&client.welcome().roster)).await?;
        let mut waiting = FuturesUnordered::new();
        // In raw mode Ctrl+C arrives as a key; this catches SIGTERM, so that
        // the terminal is restored and QUIT sent then too.
        let interrupted = interrupted();
        tokio::pin!(interrupted);
        loop {
            tokio::select! {
                () = &mut interrupted => return Ok(None),
                event = events.recv() => match event {
                    Some(Event::Closed { reason }) => return Ok(Some(reason)),
                    Some(event) => {
                        for line in format.event(&event) {
                            show(&mut screen, &line).await?;
                        }
                    }
                    None => return Ok(None),
                },
                Some(answer) = waiting.next(), if !waiting.is_empty() => {
                    let answer: Answer = answer;
                    for line in answer.lines(format, false).0 {
                        show(&mut screen, &line).await?;
                    }
                }
                input = editor.readline() => match input.context("cannot read the terminal")? {
                    ReadlineEvent::Line(line) => {
                        if !line.trim().is_empty() {
                            editor.add_history_entry(line.clone());
                        }
                        let mut say = Vec::new();
                        let step = act(client, &line, &mut say).await;
                        for line in say {
                            show(&mut screen, &line).await?;
                        }
                        match step {
                            Step::Continue => {}
                            Step::Wait(answer) => waiting.push(answer),
                            Step::Quit => return Ok(None),
                        }
                    }
                    // Ctrl+D and Ctrl+C leave.
                    ReadlineEvent::Eof | ReadlineEvent::Interrupted => return Ok(None),
                },
            }
        }
    }
    .await;
    // Print what is left and restore the terminal before saying anything
    // more, whatever happened.
    let _ = editor.flush();
    drop(editor);
    match ended {
        Ok(Some(reason)) => Ok(report_close(&reason, format)?),
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(error) => Err(error),
    }
}

/// Writes one line above the prompt. It shows once the editor is polled
/// again, which the loop does next.
async fn show(screen: &mut SharedWriter, line: &str) -> anyhow::Result<()> {
    screen
        .write_all(format!("{line}\n").as_bytes())
        .await
        .context("cannot write to the terminal")
}

/// Not at a terminal: send every line, wait for every answer, and exit 1 if
/// anything did not go through.
async fn scripted(client: &Client, mut events: Events, format: Format) -> anyhow::Result<ExitCode> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut input_done = false;
    let mut failed = false;
    // Answers print in the order of the lines that asked for them.
    let mut waiting = FuturesOrdered::new();
    let interrupted = interrupted();
    tokio::pin!(interrupted);
    loop {
        if input_done && waiting.is_empty() {
            break;
        }
        tokio::select! {
            // Leave without waiting for the answers still due: a failure if
            // there are some.
            () = &mut interrupted => {
                failed |= !waiting.is_empty();
                break;
            }
            line = lines.next_line(), if !input_done => {
                let Some(line) = line.context("cannot read standard input")? else {
                    input_done = true;
                    continue;
                };
                let mut say = Vec::new();
                let step = act(client, &line, &mut say).await;
                for line in say {
                    if line.starts_with('!') {
                        failed = true;
                        eprintln!("{line}");
                    } else {
                        print_line(&line)?;
                    }
                }
                match step {
                    Step::Continue => {}
                    Step::Wait(answer) => waiting.push_back(answer),
                    Step::Quit => input_done = true,
                }
            }
            Some(answer) = waiting.next(), if !waiting.is_empty() => {
                let answer: Answer = answer;
                let (lines, ok) = answer.lines(format, true);
                failed |= !ok;
                for line in lines {
                    print_line(&line)?;
                }
            }
            event = events.recv() => match event {
                Some(Event::Closed { reason }) => return Ok(report_close(&reason, format)?),
                Some(event) => {
                    for line in format.event(&event) {
                        print_line(&line)?;
                    }
                }
                None => return Ok(ExitCode::from(EXIT_NOT_DELIVERED)),
            },
        }
    }
    Ok(if failed {
        ExitCode::from(EXIT_NOT_DELIVERED)
    } else {
        ExitCode::SUCCESS
    })
}
