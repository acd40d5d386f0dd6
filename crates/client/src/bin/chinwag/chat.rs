//! `chinwag chat`: a line editor at a terminal, a script otherwise.
//!
//! At a terminal, the line editor (`editor.rs`) keeps the line being typed
//! at the bottom, with a history kept across runs and Tab completing
//! nicknames, and incoming events print above it. Otherwise every input
//! line is sent as it is read, and the program exits once the input ends
//! and every ack is in, with status 1 if some message did not reach all of
//! its recipients.
//!
//! Both say when a recipient received a message sent from here, after its
//! ack: `* received by bob 12:03:11` (`receipts.rs`).
//!
//! Both take the text syntax of the protocol crate (`@bob hi`, `/who`)
//! and, for people used to IRC, `/msg bob hi` (the same as `@bob hi`) and
//! `/me waves` (sent to everyone as the text `* alice waves`). Those two
//! live here, not in the protocol's `parse_line`: the daemon's text port
//! does not take them.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use chinwag_client::protocol::text::{self, Input};
use chinwag_client::{Ack, Client, ClientError, Event, Events, Recipients, Who};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::{FutureExt as _, StreamExt as _};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::commands::report_close;
use crate::editor::{Completions, LineEditor, Read, Screen};
use crate::output::Format;
use crate::receipts::Sent;
use crate::{EXIT_NOT_DELIVERED, interrupted, print_line};

/// `/help`: one command per line.
const HELP: &[&str] = &[
    "* @nick text       to nick (Tab completes the name)",
    "* @a @b: text      to a and b",
    "* text             to everyone (//text sends /text)",
    "* /msg nick text   to nick, as @nick text",
    "* /me text         to everyone, as * yourname text",
    "* /who             who is online, and who is registered",
    "* /quit            leave (or Ctrl+D on an empty line)",
    "* /help            this",
    "* keys: Up/Down and Ctrl+R search the history, Tab completes, Ctrl+K cuts to the end",
    "*   of the line, Ctrl+C clears the line (twice: quit), Ctrl+D deletes a character",
];

/// The commands, for Tab.
const COMMANDS: &[&str] = &["/help", "/me", "/msg", "/quit", "/who"];

/// The history file: `--history` (or `CHINWAG_HISTORY`) if given, none if
/// that is empty; otherwise `$XDG_STATE_HOME/chinwag/history`, or
/// `~/.local/state/chinwag/history` (the XDG default); none without a home.
fn history_path(given: Option<PathBuf>) -> Option<PathBuf> {
    history_path_in(given, |name| std::env::var_os(name))
}

/// [`history_path`] with the environment given.
fn history_path_in(
    given: Option<PathBuf>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    // Read here rather than by clap, which refuses an empty variable, and
    // empty is how a user asks for no history.
    if let Some(path) = given.or_else(|| env("CHINWAG_HISTORY").map(PathBuf::from)) {
        return (!path.as_os_str().is_empty()).then_some(path);
    }
    let absolute = |name| env(name).map(PathBuf::from).filter(|dir| dir.is_absolute());
    // The XDG spec: a relative path is to be ignored.
    let state = absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local/state")))?;
    Some(state.join("chinwag").join("history"))
}

/// The answer to one input line, waited for without holding up the input.
enum Answer {
    Ack(Result<Ack, ClientError>),
    Who(Result<Who, ClientError>),
}

impl Answer {
    /// Remembers a message's id from its ack, for its receipts.
    fn remember(&self, sent: &mut Sent) {
        if let Self::Ack(Ok(ack)) = self {
            sent.remember(ack);
        }
    }

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

/// Parses one input line: `/msg` and `/me`, then the protocol's syntax.
fn parse(line: &str, nick: &str) -> Result<Input, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix('/') {
        let (command, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let args = args.trim_start();
        if command.eq_ignore_ascii_case("msg") {
            let (to, text) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
            let to: Vec<String> = to
                .split(',')
                .map(|name| name.trim_start_matches('@'))
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect();
            let text = text.trim_start();
            if to.is_empty() || text.is_empty() {
                return Err("usage: /msg nick text".into());
            }
            return Ok(Input::Send {
                to: Recipients::Users(to),
                text: text.to_owned(),
            });
        }
        if command.eq_ignore_ascii_case("me") {
            if args.trim().is_empty() {
                return Err("usage: /me text, as in /me waves".into());
            }
            return Ok(Input::Send {
                to: Recipients::Everyone,
                text: format!("* {nick} {args}"),
            });
        }
    }
    text::parse_line(line).map_err(|error| error.to_string())
}

/// Acts on one input line: queues a message or a `WHO`, or prints help or a
/// syntax error (`say` prints a line for the person).
async fn act(client: &Client, line: &str, say: &mut Vec<String>) -> Step {
    match parse(line, client.nick()) {
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
            say.extend(HELP.iter().map(|line| (*line).to_owned()));
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
    history: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let result = if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        interactive(client, events, format, history).await
    } else {
        scripted(client, events, format).await
    };
    client.quit().await;
    result
}

/// Who is online, as the roster and presence tell it: completion offers
/// them besides the table of users, which a hub without accounts does not
/// keep. A std mutex: held only to change or copy the set.
#[derive(Debug, Default, Clone)]
struct Online(Arc<Mutex<BTreeSet<String>>>);

impl Online {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn replace(&self, roster: &[String]) {
        *self.lock() = roster.iter().cloned().collect();
    }

    fn follow(&self, event: &Event) {
        match event {
            Event::Presence(presence) if presence.online => {
                self.lock().insert(presence.nick.clone());
            }
            Event::Presence(presence) => {
                self.lock().remove(&presence.nick);
            }
            Event::Roster(roster) => self.replace(roster),
            Event::Reconnected { welcome, .. } => self.replace(&welcome.roster),
            _ => {}
        }
    }
}

/// At a terminal: read lines while printing events above them.
async fn interactive(
    client: &Client,
    mut events: Events,
    format: Format,
    history: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let online = Online::default();
    online.replace(&client.welcome().roster);
    let completions = Completions {
        nicks: Box::new({
            let client = client.clone();
            let online = online.clone();
            move || {
                let mut nicks: Vec<String> = client
                    .users()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|user| user.nick)
                    .collect();
                nicks.extend(online.lock().iter().cloned());
                nicks
            }
        }),
        own: client.nick().to_owned(),
        commands: COMMANDS,
    };
    let (mut editor, screen, warnings) = LineEditor::start(
        format!("{}> ", client.nick()),
        history_path(history),
        completions,
    )?;
    // `Some(reason)` when the hub ended the session.
    let ended = async {
        if !format.json {
            let hello = format!("* joined as {}; /help for help", client.nick());
            screen.show(&hello).await?;
        }
        screen
            .show(&format.roster(&client.welcome().roster))
            .await?;
        for warning in warnings {
            screen.show(&warning).await?;
        }
        let mut waiting = FuturesUnordered::new();
        let mut sent = Sent::default();
        // In raw mode Ctrl+C arrives as a key; this catches SIGTERM (and a
        // Ctrl+C between two lines), so that the terminal is restored and
        // QUIT sent then too.
        let interrupted = interrupted();
        tokio::pin!(interrupted);
        loop {
            tokio::select! {
                () = &mut interrupted => return Ok(None),
                event = events.recv() => match event {
                    Some(Event::Closed { reason }) => return Ok(Some(reason)),
                    Some(Event::Receipt(receipt)) => {
                        // Its message's ack is in by now: shown first, and
                        // its id learnt.
                        while let Some(Some(answer)) = waiting.next().now_or_never() {
                            show(&screen, &answer, format, &mut sent).await?;
                        }
                        screen.show(&sent.line(format, &receipt)).await?;
                    }
                    Some(event) => {
                        online.follow(&event);
                        for line in format.event(&event) {
                            screen.show(&line).await?;
                        }
                    }
                    None => return Ok(None),
                },
                Some(answer) = waiting.next(), if !waiting.is_empty() => {
                    show(&screen, &answer, format, &mut sent).await?;
                }
                read = editor.read() => match read {
                    Some(Read::Line(line)) => {
                        let mut say = Vec::new();
                        let step = act(client, &line, &mut say).await;
                        for line in say {
                            screen.show(&line).await?;
                        }
                        match step {
                            Step::Continue => {}
                            Step::Wait(answer) => waiting.push(answer),
                            Step::Quit => return Ok(None),
                        }
                    }
                    Some(Read::Warning(warning)) => screen.show(&warning).await?,
                    // Ctrl+D on an empty line, Ctrl+C twice.
                    Some(Read::Quit) | None => return Ok(None),
                    Some(Read::Failed(error)) => {
                        return Err(anyhow::Error::new(error).context("cannot read the terminal"));
                    }
                },
            }
        }
    }
    .await;
    // Print what is left and restore the terminal before saying anything
    // more, whatever happened.
    editor.close(screen).await;
    match ended {
        Ok(Some(reason)) => Ok(report_close(&reason, format)?),
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(error) => Err(error),
    }
}

/// Shows an answer at the terminal (only what went wrong, or was stored),
/// remembering a message's id for its receipts.
async fn show(
    screen: &Screen,
    answer: &Answer,
    format: Format,
    sent: &mut Sent,
) -> anyhow::Result<()> {
    answer.remember(sent);
    for line in answer.lines(format, false).0 {
        screen.show(&line).await?;
    }
    Ok(())
}

/// Prints an answer to a piped chat (what became of each recipient),
/// remembering a message's id for its receipts; whether it fully
/// succeeded.
fn print(answer: &Answer, format: Format, sent: &mut Sent) -> std::io::Result<bool> {
    answer.remember(sent);
    let (lines, ok) = answer.lines(format, true);
    for line in lines {
        print_line(&line)?;
    }
    Ok(ok)
}

/// Not at a terminal: send every line, wait for every answer, and exit 1 if
/// anything did not go through.
async fn scripted(client: &Client, mut events: Events, format: Format) -> anyhow::Result<ExitCode> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut input_done = false;
    let mut failed = false;
    // Answers print in the order of the lines that asked for them.
    let mut waiting = FuturesOrdered::new();
    let mut sent = Sent::default();
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
                failed |= !print(&answer, format, &mut sent)?;
            }
            event = events.recv() => match event {
                Some(Event::Closed { reason }) => return Ok(report_close(&reason, format)?),
                Some(Event::Receipt(receipt)) => {
                    // Its message's ack is in by now, and so are those of
                    // the lines before it: printed first, and its id learnt.
                    while let Some(Some(answer)) = waiting.next().now_or_never() {
                        failed |= !print(&answer, format, &mut sent)?;
                    }
                    print_line(&sent.line(format, &receipt))?;
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_kept_under_the_state_directory() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| OsString::from(value))
            }
        };
        let both = env(&[("XDG_STATE_HOME", "/state"), ("HOME", "/home/a")]);
        assert_eq!(
            history_path_in(None, both),
            Some(PathBuf::from("/state/chinwag/history"))
        );
        let relative = env(&[("XDG_STATE_HOME", "state"), ("HOME", "/home/a")]);
        assert_eq!(
            history_path_in(None, relative),
            Some(PathBuf::from("/home/a/.local/state/chinwag/history"))
        );
        assert_eq!(history_path_in(None, env(&[])), None);
        assert_eq!(
            history_path_in(Some("/tmp/h".into()), both),
            Some(PathBuf::from("/tmp/h"))
        );
        assert_eq!(history_path_in(Some(PathBuf::new()), both), None);
        // The variable, empty or not, and the flag before it.
        let none = env(&[("CHINWAG_HISTORY", ""), ("HOME", "/home/a")]);
        assert_eq!(history_path_in(None, none), None);
        let given = env(&[("CHINWAG_HISTORY", "/h"), ("HOME", "/home/a")]);
        assert_eq!(history_path_in(None, given), Some(PathBuf::from("/h")));
        assert_eq!(
            history_path_in(Some("/f".into()), given),
            Some(PathBuf::from("/f"))
        );
    }

    #[test]
    fn msg_and_me_are_read_before_the_text_syntax() {
        let to = |names: &[&str]| Recipients::Users(names.iter().map(|n| (*n).into()).collect());
        assert_eq!(
            parse("/msg bob  hi there", "alice"),
            Ok(Input::Send {
                to: to(&["bob"]),
                text: "hi there".into()
            })
        );
        assert_eq!(
            parse("/MSG @bob,carol hi", "alice"),
            Ok(Input::Send {
                to: to(&["bob", "carol"]),
                text: "hi".into()
            })
        );
        assert_eq!(
            parse("/me waves  twice", "alice"),
            Ok(Input::Send {
                to: Recipients::Everyone,
                text: "* alice waves  twice".into()
            })
        );
        assert!(parse("/msg bob", "alice").is_err());
        assert!(parse("/msg", "alice").is_err());
        assert!(parse("/me ", "alice").is_err());
        // Everything else is the protocol's syntax.
        assert_eq!(parse("/who", "alice"), Ok(Input::Who));
        assert_eq!(
            parse("//me", "alice"),
            Ok(Input::Send {
                to: Recipients::Everyone,
                text: "/me".into()
            })
        );
        assert!(parse("/mess", "alice").is_err());
    }
}
