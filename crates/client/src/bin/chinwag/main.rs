//! `chinwag`, the command-line client of a chinwag hub.
//!
//! ```text
//! chinwag chat --nick alice                     # talk; `@bob hi`, `/help`, `/quit`
//! chinwag send --nick alice --to bob hello      # send one message, print the ack
//! chinwag send --nick alice --to bob --wait received hello   # and bob's receipt
//! chinwag listen --nick bob --count 1           # print what arrives
//! chinwag who                                   # who is online, and who is registered
//! chinwag account create --nick alice           # register a nickname (asks a password)
//! chinwag bench fanout --subscribers 100        # load the hub and measure it
//! ```
//!
//! Every subcommand takes `--server HOST:PORT` (default `127.0.0.1:2446`) and
//! `--json` (one JSON object per line; see `output.rs`). Exit status: 0 on
//! success (a message stored for an offline registered recipient counts),
//! 1 when a message did not reach every recipient, the hub refused an
//! account request, or the hub ended the session (for `bench`: when a check
//! failed), 2 for usage and connection errors (a wrong password among
//! them), 3 when `send --wait received` saw no receipt from some recipient
//! within its timeout.
//!
//! `chat` and `listen` confirm the messages they show, so that a sender who
//! asked for receipts learns they were received, and ask for receipts of
//! the messages they send (`--no-receipts`: neither); `receipts.rs`.
//!
//! A registered nickname logs in with its password, from
//! `CHINWAG_PASSWORD`, `--password-stdin`, or a prompt at a terminal after
//! the hub says the nickname is registered (`password.rs`).
//!
//! `chinwag bench` is the `chinwag-bench` crate (`crates/bench`): this
//! program parses its flags and turns its verdict into the exit status.

mod account;
mod chat;
mod commands;
mod duration;
mod editor;
mod output;
mod password;
mod receipts;

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chinwag_bench::{BenchArgs, Verdict};
use chinwag_client::{Backoff, Client, ClientError, ClientOptions, Events, Recipients, TlsOptions};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::account::AccountCommand;

use crate::output::Format;

/// Some message did not reach every recipient, or the hub ended the session.
const EXIT_NOT_DELIVERED: u8 = 1;
/// Usage or connection error.
const EXIT_ERROR: u8 = 2;
/// `send --wait received`: some recipient's receipt did not come in time.
const EXIT_NOT_RECEIVED: u8 = 3;

/// How a registered nickname's password is given (see `password.rs`).
#[derive(Debug, Args)]
struct Login {
    /// Read the nickname's password from the first line of standard input
    /// (for a registered nickname). Or set `CHINWAG_PASSWORD`; at a terminal,
    /// chinwag asks when the hub says the nickname is registered. Logging in
    /// ends the account's session elsewhere, if it has one.
    #[arg(long)]
    password_stdin: bool,
}

/// What `send --wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Wait {
    /// Every recipient's client confirmed receiving the message.
    Received,
}

/// Talk to a chinwag hub.
#[derive(Debug, Parser)]
#[command(name = "chinwag", version)]
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
    /// Speak TLS to the hub (its --tls-listen port). Its certificate must
    /// name the host of --server (or --tls-server-name) and chain to the
    /// system's roots (or to --ca).
    #[arg(long, global = true)]
    tls: bool,
    /// With --tls: trust only the certificates in this PEM file (a private
    /// CA, or the hub's own self-signed certificate), not the system's roots.
    #[arg(long, global = true, value_name = "FILE", requires = "tls")]
    ca: Option<std::path::PathBuf>,
    /// With --tls: the name the hub's certificate must carry, when it is
    /// not the host of --server (e.g. --server 10.0.0.5:2449 for a
    /// certificate of chat.example.org).
    #[arg(long, global = true, value_name = "NAME", requires = "tls")]
    tls_server_name: Option<String>,
    /// Print one JSON object per line instead of text for people.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a shell completion script for chinwag to standard output
    /// (e.g. `chinwag completions bash > ~/.local/share/bash-completion/completions/chinwag`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print chinwag's manual page (roff) to standard output
    /// (e.g. `chinwag man > chinwag.1`).
    Man,
    /// Chat interactively: `@bob hello` (or `/msg bob hello`) to bob, `hello`
    /// to everyone, `/me waves`, `/who`, `/quit`, `/help`. At a terminal,
    /// Tab completes nicknames, and Up and Ctrl+R search the history of
    /// lines typed, kept across runs. With input that is not a terminal,
    /// sends each line, waits for every ack, prints the results and exits
    /// (1 if a message did not reach every recipient).
    ///
    /// Logged in to an account, messages that waited for you come first,
    /// marked "(while you were away)".
    Chat {
        /// Your nickname.
        #[arg(long)]
        nick: String,
        /// Do not reconnect when the connection is lost. By default the
        /// session reconnects, with backoff (100 ms doubling up to 30 s,
        /// for as long as it takes: a restarted hub, a dropped network),
        /// logs in again and goes on; never after another login to the
        /// account replaced it.
        #[arg(long)]
        no_reconnect: bool,
        /// Reconnect when the connection is lost: the default (kept for
        /// scripts written when it was not).
        #[arg(long, hide = true, conflicts_with = "no_reconnect")]
        reconnect: bool,
        /// The history of lines typed at a terminal, at most 1,000 (a line
        /// typed with a leading space is not kept). By default
        /// `$XDG_STATE_HOME/chinwag/history`, or
        /// `~/.local/state/chinwag/history`; empty: keep none. Also from
        /// `CHINWAG_HISTORY` (which may be empty).
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// Neither confirm the messages you receive nor ask for receipts.
        /// By default chat confirms each message it shows, so that its
        /// sender may learn you received it, and says when someone
        /// received yours: "* received by bob 12:03:11"; logged in, it is a
        /// reliable session, which this turns off too.
        #[arg(long)]
        no_receipts: bool,
        #[command(flatten)]
        login: Login,
    },
    /// Send one message, print what became of it per recipient, and exit 0
    /// only if every recipient got it or, registered and offline, has it in
    /// its mailbox ("* stored for bob"), 1 if not.
    ///
    /// With --wait received, then wait until each recipient's client
    /// confirms receiving it ("* received by bob 12:03:11"; `chinwag chat`
    /// and `listen` confirm what they show), and exit 3 if some did not
    /// within --timeout: offline (a stored message is confirmed at its
    /// owner's next login), or running a client that does not confirm.
    Send {
        /// Your nickname.
        #[arg(long)]
        nick: String,
        #[command(flatten)]
        login: Login,
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
        /// Wait for more than the ack: `received`, until every recipient's
        /// client has confirmed receiving the message (exit 3 if some did
        /// not within --timeout). Not for a message to everyone, which
        /// gets no receipts.
        #[arg(long, value_enum, value_name = "WHAT", conflicts_with = "all")]
        wait: Option<Wait>,
        /// How long --wait waits: 10s, 500ms, 2m.
        #[arg(
            long,
            value_name = "DURATION",
            value_parser = duration::parse,
            default_value = "10s",
            requires = "wait"
        )]
        timeout: Duration,
        /// The message; several words are joined with spaces.
        #[arg(required = true, value_name = "TEXT")]
        text: Vec<String>,
    },
    /// Print incoming messages and presence until interrupted. Logged in to
    /// an account, messages that waited for you come first, marked
    /// "(while you were away)".
    Listen {
        /// Your nickname.
        #[arg(long)]
        nick: String,
        /// Exit after this many messages (stored ones included).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Do not reconnect when the connection is lost. By default the
        /// session reconnects, with backoff (100 ms doubling up to 30 s,
        /// for as long as it takes: a restarted hub, a dropped network),
        /// logs in again and goes on; never after another login to the
        /// account replaced it.
        #[arg(long)]
        no_reconnect: bool,
        /// Reconnect when the connection is lost: the default (kept for
        /// scripts written when it was not).
        #[arg(long, hide = true, conflicts_with = "no_reconnect")]
        reconnect: bool,
        /// Neither confirm the messages printed nor ask for receipts. By
        /// default listen confirms each message it prints, so that its
        /// sender may learn you received it, and prints the receipts that
        /// come for messages this nickname sent earlier; logged in, it is a
        /// reliable session, which this turns off too (what was not
        /// printed when the connection dropped is not sent again).
        #[arg(long)]
        no_receipts: bool,
        #[command(flatten)]
        login: Login,
    },
    /// Print everyone the hub knows (besides the nickname used to ask):
    /// each registered user, online or offline with when it was last seen,
    /// and each guest online. With --json, flags as fields: online,
    /// registered, `last_seen_ms`.
    Who {
        /// The nickname to ask as; `who-<pid>` by default.
        #[arg(long)]
        nick: Option<String>,
        #[command(flatten)]
        login: Login,
    },
    /// Create an account (register a nickname with a password), change its
    /// password, or delete it. No login needed: each request goes on a
    /// connection of its own, which registers no nickname.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
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
    let tls = tls_options(&cli)?;
    let server = &Server {
        addr: cli.server.as_str(),
        tls,
    };
    match cli.command {
        // Generated into memory, then printed: `clap_complete` panics when
        // its writer fails, and a reader that closed early (`chinwag man |
        // head -1`) is no error (see `main`).
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "chinwag", &mut script);
            print_all(&script)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            use clap::CommandFactory as _;
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .manual("User Commands")
                .render(&mut page)?;
            print_all(&page)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Chat {
            nick,
            no_reconnect,
            history,
            no_receipts,
            login,
            ..
        } => {
            let (client, events) =
                connect(server, &nick, !no_reconnect, !no_receipts, &login).await?;
            chat::run(&client, events, format, history).await
        }
        Command::Send {
            nick,
            login,
            to,
            all,
            text,
            wait,
            timeout,
        } => {
            let to = commands::recipients(to, all);
            let wait = wait.map(|Wait::Received| timeout);
            if wait.is_some() && to == Recipients::Everyone {
                anyhow::bail!(
                    "a message to everyone gets no receipts: name its recipients with --to \
                     to wait for theirs"
                );
            }
            let options = ClientOptions::default()
                .quiet(true)
                .presence(false)
                .receipts(wait.is_some());
            let (client, events) = join(server, &nick, options, &login).await?;
            commands::send(&client, events, to, &text.join(" "), wait, format).await
        }
        Command::Listen {
            nick,
            count,
            no_reconnect,
            no_receipts,
            login,
            ..
        } => {
            let (client, events) =
                connect(server, &nick, !no_reconnect, !no_receipts, &login).await?;
            commands::listen(&client, events, count, format).await
        }
        Command::Who { nick, login } => {
            let nick = nick.unwrap_or_else(|| format!("who-{}", std::process::id()));
            // Not announced, but asking for the table of users, which only
            // comes with presence.
            let options = ClientOptions::default().quiet(true).users(true);
            let (client, events) = join(server, &nick, options, &login).await?;
            drop(events);
            commands::who(&client, format).await
        }
        Command::Account { command } => account::run(server, command, format).await,
        Command::Bench(args) => match chinwag_bench::run(
            server.addr,
            format.json,
            args,
            server.tls.as_ref().map(|tls| chinwag_bench::Tls {
                config: tls.client_config(),
                server_name: tls.server_name(),
            }),
        )
        .await?
        {
            Verdict::Passed => Ok(ExitCode::SUCCESS),
            Verdict::Failed => Ok(ExitCode::from(EXIT_NOT_DELIVERED)),
        },
    }
}

/// Connects for a session (`chat`, `listen`): confirming what it is
/// handed and asking for receipts unless told not to (`receipts`), and,
/// logged in to an account, in a reliable session: what was sent to it and
/// not printed when the connection dropped (or the program was killed)
/// comes again at the next login, and is printed once. A reliable session
/// confirms what it prints, so `--no-receipts` (confirm nothing) goes
/// without one.
async fn connect(
    server: &Server<'_>,
    nick: &str,
    reconnect: bool,
    receipts: bool,
    login: &Login,
) -> anyhow::Result<(Client, Events)> {
    let mut options = ClientOptions::default()
        .confirms(receipts)
        .receipts(receipts)
        .reliable(receipts);
    if reconnect {
        options = options.reconnect(Backoff::default());
    }
    join(server, nick, options, login).await
}

/// Connects as `nick` with `options`, logging in with the password if one
/// is given. Without one, a registered nickname is refused; at a terminal
/// the person is then asked for it, and the program connects again with
/// it (rather than keep the first connection waiting while someone types,
/// which the connection timeout would cut short). One-shot commands
/// (`send`, `who`) pass `QUIET` options, so that others do not see them
/// come and go.
async fn join(
    server: &Server<'_>,
    nick: &str,
    mut options: ClientOptions,
    login: &Login,
) -> anyhow::Result<(Client, Events)> {
    options.tls.clone_from(&server.tls);
    let addr = server.addr;
    let options = match password::from_stdin_or_env(login.password_stdin)? {
        Some(password) => options.password(password),
        None => options,
    };
    let context = || format!("cannot join {addr} as {nick}");
    match Client::connect_with(addr, nick, options.clone()).await {
        Err(ClientError::NickRegistered { .. }) if options.password.is_none() => {
            if !password::can_prompt() {
                anyhow::bail!(
                    "cannot join {addr} as {nick}: {nick} is registered and needs its password: {}",
                    password::HOW
                );
            }
            let password = password::prompt(format!("password for {nick}: ")).await?;
            Client::connect_with(addr, nick, options.password(password))
                .await
                .with_context(context)
        }
        connected => connected.with_context(context),
    }
}

/// The hub to talk to: its address, and TLS if asked for.
pub(crate) struct Server<'a> {
    pub(crate) addr: &'a str,
    pub(crate) tls: Option<TlsOptions>,
}

/// TLS as `--tls`, `--ca` and `--tls-server-name` say: the certificate
/// must name the host of `--server` unless told another name.
fn tls_options(cli: &Cli) -> anyhow::Result<Option<TlsOptions>> {
    if !cli.tls {
        return Ok(None);
    }
    let name = cli
        .tls_server_name
        .as_deref()
        .unwrap_or_else(|| host_of(&cli.server));
    let tls = match &cli.ca {
        Some(ca) => TlsOptions::with_ca_file(name, ca)?,
        None => TlsOptions::new(name)?,
    };
    Ok(Some(tls))
}

/// The host part of `HOST:PORT` (`[::1]:2449` gives `::1`).
fn host_of(server: &str) -> &str {
    if let Some(rest) = server.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host;
    }
    server.rsplit_once(':').map_or(server, |(host, _)| host)
}

/// Prints one line on stdout, flushed, so that a program reading the other
/// end of a pipe sees each line as it happens.
pub(crate) fn print_line(line: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

/// Prints `text` on stdout, flushed.
fn print_all(text: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text)?;
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
