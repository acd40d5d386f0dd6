//! `chinwag`, the command-line client of a chinwag hub.
//!
//! ```text
//! chinwag chat --nick alice                     # talk; `@bob hi`, `/who`, `/quit`
//! chinwag send --nick alice --to bob hello      # send one message, print the ack
//! chinwag listen --nick bob --count 1           # print what arrives
//! chinwag who                                   # who is online
//! chinwag bench fanout --subscribers 100        # load the hub and measure it
//! ```
//!
//! Every subcommand takes `--server HOST:PORT` (default `127.0.0.1:2446`) and
//! `--json` (one JSON object per line; see `output.rs`). Exit status: 0 on
//! success, 1 when a message did not reach every recipient or the hub ended
//! the session (for `bench`: when a check failed), 2 for usage and
//! connection errors.
//!
//! `chinwag bench` is the `chinwag-bench` crate (`crates/bench`): this
//! program parses its flags and turns its verdict into the exit status.

mod chat;
mod commands;
mod output;

use std::io::{self, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use chinwag_bench::{BenchArgs, Verdict};
use chinwag_client::{Backoff, Client, ClientOptions, Events};
use clap::{Parser, Subcommand};

use crate::output::Format;

/// Some message did not reach every recipient, or the hub ended the session.
const EXIT_NOT_DELIVERED: u8 = 1;
/// Usage or connection error.
const EXIT_ERROR: u8 = 2;

/// Talk to a chinwag hub.
#[derive(Debug, Parser)]
#[command(name = "chinwag", version, about)]
struct Cli {
    /// The hub's address.
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:2446",
        env = "CHINWAG_SERVER"
    )]
    server: String,
    /// Print one JSON object per line instead of text for people.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Chat interactively: `@bob hello` to bob, `hello` to everyone, `/who`,
    /// `/quit`, `/help`. With input that is not a terminal, sends each line,
    /// waits for every ack, prints the results and exits (1 if a message did
    /// not reach every recipient).
    Chat {
        /// Your nickname.
        #[arg(long)]
        nick: String,
        /// Reconnect (with backoff) when the connection is lost.
        #[arg(long)]
        reconnect: bool,
    },
    /// Send one message, print what became of it per recipient, and exit 0
    /// only if every recipient got it.
    Send {
        /// Your nickname.
        #[arg(long)]
        nick: String,
        /// A recipient; repeat it, or separate names with commas.
        #[arg(
            long,
            value_name = "NICK",
            value_delimiter = ',',
            required_unless_present = "all"
        )]
        to: Vec<String>,
        /// Send to everyone online instead.
        #[arg(long, conflicts_with = "to")]
        all: bool,
        /// The message; several words are joined with spaces.
        #[arg(required = true, value_name = "TEXT")]
        text: Vec<String>,
    },
    /// Print incoming messages and presence until interrupted.
    Listen {
        /// Your nickname.
        #[arg(long)]
        nick: String,
        /// Exit after this many messages.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Reconnect (with backoff) when the connection is lost.
        #[arg(long)]
        reconnect: bool,
    },
    /// Print who is online (besides the nickname used to ask).
    Who {
        /// The nickname to ask as; `who-<pid>` by default.
        #[arg(long)]
        nick: Option<String>,
    },
    /// Load the hub and measure it (as hubload measures other hubs),
    /// checking every delivery; exit 1 if anything was lost, duplicated,
    /// out of order, or cut. With --json, one JSON object at the end.
    Bench(BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = if matches!(cli.command, Command::Bench(_)) {
        // The load generator needs both cores' worth of workers.
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(chinwag_bench::WORKER_THREADS)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chinwag: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // A reader that went away (`chinwag listen | head -1`) is no error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chinwag: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let format = Format { json: cli.json };
    let server = cli.server.as_str();
    match cli.command {
        Command::Chat { nick, reconnect } => {
            let (client, events) = connect(server, &nick, reconnect).await?;
            chat::run(&client, events, format).await
        }
        Command::Send {
            nick,
            to,
            all,
            text,
        } => {
            let (client, events) = connect_quietly(server, &nick).await?;
            // Nothing but the ack matters here; dropped events are discarded.
            drop(events);
            commands::send(&client, to, all, &text.join(" "), format).await
        }
        Command::Listen {
            nick,
            count,
            reconnect,
        } => {
            let (client, events) = connect(server, &nick, reconnect).await?;
            commands::listen(&client, events, count, format).await
        }
        Command::Who { nick } => {
            let nick = nick.unwrap_or_else(|| format!("who-{}", std::process::id()));
            let (client, events) = connect_quietly(server, &nick).await?;
            drop(events);
            commands::who(&client, format).await
        }
        Command::Bench(args) => match chinwag_bench::run(server, format.json, args).await? {
            Verdict::Passed => Ok(ExitCode::SUCCESS),
            Verdict::Failed => Ok(ExitCode::from(EXIT_NOT_DELIVERED)),
        },
    }
}

async fn connect(server: &str, nick: &str, reconnect: bool) -> anyhow::Result<(Client, Events)> {
    let mut options = ClientOptions::default();
    if reconnect {
        options = options.reconnect(Backoff::default());
    }
    Client::connect_with(server, nick, options)
        .await
        .with_context(|| format!("cannot join {server} as {nick}"))
}

/// Connects for a one-shot command (`send`, `who`): not announced to
/// anyone and following no one (`QUIET` and `NO_PRESENCE`), so that others
/// do not see it come and go.
async fn connect_quietly(server: &str, nick: &str) -> anyhow::Result<(Client, Events)> {
    let options = ClientOptions::default().quiet(true).presence(false);
    Client::connect_with(server, nick, options)
        .await
        .with_context(|| format!("cannot join {server} as {nick}"))
}

/// Prints one line on stdout, flushed, so that a program reading the other
/// end of a pipe sees each line as it happens.
pub(crate) fn print_line(line: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|cause| cause.kind() == io::ErrorKind::BrokenPipe)
}

/// Resolves on Ctrl+C or, on Unix, SIGTERM. If a handler cannot be
/// installed, that signal is simply never seen.
pub(crate) async fn interrupted() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
