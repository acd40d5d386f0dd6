//! `chinwagd`, the chinwag daemon: parses flags, sets up logging, binds, and
//! runs the hub until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use std::path::PathBuf;

use anyhow::Context;
use chinwag_hub::store::{DEFAULT_DATA_DIR, Store, StoreConfig};
use chinwag_hub::{Hub, HubConfig, RateLimit, Storage, TlsAcceptor, bind_tcp};
use clap::{Parser, Subcommand, ValueEnum};

mod account;
mod config;
mod logging;
mod reload;
mod systemd;
use tracing::{info, warn};

/// The daemon's allocator. The hub allocates each message's frames on the
/// actor's thread and the writers free them on others, which glibc's malloc
/// serves with arena locks and consolidation: a third of the hub's
/// instructions under direct load. jemalloc's thread caches absorb that
/// (direct messages/s up about 40%, fan-out to 1,000 about 30%; see
/// `docs/performance.md`), and with the decay settings in
/// `.cargo/config.toml` an idle connection costs less memory than with glibc.
/// The library crates leave the choice to whoever embeds them.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// chinwag's messaging daemon.
#[allow(
    clippy::doc_markdown,
    reason = "these comments are the --help text, where backticks would be printed"
)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "each is a flag of the command line"
)]
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Manage accounts on the data directory instead of running (the
    /// daemon must not be running on it).
    #[command(subcommand)]
    command: Option<Command>,
    /// The configuration file, TOML: every flag below is a key spelled
    /// as the flag without its dashes (`max-connections = 10000`). Flags
    /// win over the environment (`CHINWAGD_MAX_CONNECTIONS`), which wins
    /// over the file, which wins over the defaults. Default:
    /// /etc/chinwag/chinwagd.toml when it exists.
    #[arg(long, global = true, env = "CHINWAGD_CONFIG")]
    config: Option<PathBuf>,
    /// Check the configuration (flags, environment and file) and exit: 0
    /// and one line when it is good, else the error and 1.
    #[arg(long)]
    check_config: bool,
    /// Print the effective configuration as TOML, each setting with where
    /// it came from, and exit.
    #[arg(long)]
    print_config: bool,
    /// The data directory: accounts and mailboxes (`chinwag.db`, SQLite),
    /// created if missing. One daemon at a time may use it.
    #[arg(long, global = true, default_value = DEFAULT_DATA_DIR, env = "CHINWAG_DATA_DIR")]
    data_dir: PathBuf,
    /// Admit only registered users: a HELLO without a password is refused
    /// with ACCOUNT_REQUIRED.
    #[arg(long)]
    require_accounts: bool,
    /// Whether clients may register nicknames themselves (`chinwag account
    /// create`); closed, only the operator does (`chinwagd account create`).
    #[arg(long, value_enum, default_value_t = Registration::Open)]
    registration: Registration,
    /// Most messages one mailbox holds; past it, MAILBOX_FULL.
    #[arg(long, default_value_t = StoreConfig::default().mailbox_max_messages,
          value_parser = clap::value_parser!(u64).range(1..))]
    mailbox_max_messages: u64,
    /// Most bytes one mailbox holds (texts and names); past it, MAILBOX_FULL.
    #[arg(long, default_value_t = StoreConfig::default().mailbox_max_bytes,
          value_parser = clap::value_parser!(u64).range(1..))]
    mailbox_max_bytes: u64,
    /// How long a stored message waits before it is dropped unread (its
    /// owner is told how many at the next login). Units: s, m, h, d.
    #[arg(long, value_parser = humantime_secs, default_value = "30d")]
    mailbox_max_age: Duration,
    /// Address to listen on for the binary protocol.
    /// A host name is resolved, and the first address it has is used.
    #[arg(long, default_value = "127.0.0.1:2446", env = "CHINWAG_LISTEN")]
    listen: String,
    /// Also accept plain-text (netcat/telnet) users on this address. Off
    /// unless given.
    #[arg(long, value_name = "ADDR")]
    text_listen: Option<String>,
    /// Serve the admin HTTP endpoint on this address: /metrics
    /// (Prometheus), /healthz, /readyz and /connz. Off unless given; keep it
    /// on loopback or behind a firewall (it has no authentication).
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<String>,
    /// Also accept the binary protocol over TLS (1.2 or 1.3) on this
    /// address, with --tls-cert and --tls-key. Off unless given.
    #[arg(long, value_name = "ADDR")]
    tls_listen: Option<String>,
    /// The TLS certificate chain, PEM, the server's own certificate first
    /// (certbot's fullchain.pem). Read again on SIGHUP.
    #[arg(long, value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1;
    /// certbot's privkey.pem). Read again on SIGHUP.
    #[arg(long, value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Serve the web gateway on this address: the binary protocol over
    /// WebSocket at /ws (subprotocol chinwag.v1) and the web page at /.
    /// Off unless given.
    #[arg(long, value_name = "ADDR")]
    web_listen: Option<String>,
    /// Serve the web gateway over TLS (HTTPS and wss:), with --tls-cert
    /// and --tls-key (the same certificate as --tls-listen, reloaded with
    /// it).
    #[arg(long)]
    web_tls: bool,
    /// A web page origin allowed to open a WebSocket, as a browser sends
    /// it (https://chat.example.org); repeat or separate with commas.
    /// Default: only the gateway's own pages (the origin's host and port
    /// are those of the request's Host header). Clients that send no
    /// Origin (programs, not browsers) are always allowed.
    #[arg(long, value_name = "ORIGIN", value_delimiter = ',')]
    web_origin: Vec<String>,
    /// Registered users at once; a connection beyond gets a "server full" error.
    #[arg(long, default_value_t = HubConfig::default().max_connections, value_parser = positive)]
    max_connections: usize,
    /// Connections still waiting to register, capped apart from registered ones.
    #[arg(long, default_value_t = HubConfig::default().max_unregistered, value_parser = positive)]
    max_unregistered: usize,
    /// Connections from one address that have not registered yet (IPv6:
    /// one prefix, see --ipv6-prefix).
    #[arg(long, default_value_t = HubConfig::default().addresses.unregistered, value_parser = positive)]
    max_unregistered_per_address: usize,
    /// Registered connections from one address.
    #[arg(long, default_value_t = HubConfig::default().addresses.registered, value_parser = positive)]
    max_connections_per_address: usize,
    /// New connections one address may open per second, sustained.
    #[arg(long, default_value_t = HubConfig::default().addresses.connect_rate, value_parser = rate)]
    connect_rate: f64,
    /// New connections one address may open at once after a quiet spell.
    #[arg(long, default_value_t = HubConfig::default().addresses.connect_burst,
          value_parser = clap::value_parser!(u32).range(1..))]
    connect_burst: u32,
    /// IPv6 addresses are limited by this prefix length, not one by one.
    #[arg(long, default_value_t = HubConfig::default().addresses.ipv6_prefix,
          value_parser = clap::value_parser!(u8).range(0..=128))]
    ipv6_prefix: u8,
    /// Addresses not limited per address, as CIDRs (e.g. a trusted proxy:
    /// `10.0.0.5/32`); repeat or separate with commas. Default: loopback
    /// (`127.0.0.0/8` and `::1/128`); give `--exempt none` to limit everyone.
    #[arg(long, value_delimiter = ',', value_parser = exempt)]
    exempt: Vec<Option<chinwag_hub::ipnet::IpNet>>,
    /// Largest frame payload accepted from a registered client, in bytes.
    #[arg(long, default_value_t = HubConfig::default().max_frame, value_parser = positive)]
    max_frame_bytes: usize,
    /// Largest frame payload accepted before registration, in bytes.
    #[arg(long, default_value_t = HubConfig::default().max_frame_unregistered, value_parser = positive)]
    max_hello_bytes: usize,
    /// Time allowed to complete HELLO after connecting.
    #[arg(long, value_parser = humantime_secs, default_value = "5s")]
    registration_timeout: Duration,
    /// Time a frame's bytes may stop arriving midway before the connection is closed.
    #[arg(long, value_parser = humantime_secs, default_value = "10s")]
    frame_timeout: Duration,
    /// Silence after which a registered client is pinged.
    #[arg(long, value_parser = humantime_secs, default_value = "30s")]
    ping_interval: Duration,
    /// Consecutive unanswered pings after which a client is closed.
    #[arg(long, default_value_t = HubConfig::default().max_missed_pings,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_missed_pings: u32,
    /// Bytes of one connection's messages on their way through the hub at
    /// once; past them its socket is not read until some are routed.
    #[arg(long, default_value_t = HubConfig::default().max_in_flight_bytes, value_parser = positive)]
    max_in_flight_bytes: usize,
    /// Bytes queued for one client above which its publishers are paused.
    #[arg(long, default_value_t = HubConfig::default().outbox_high_water, value_parser = positive)]
    outbox_high_water: usize,
    /// Bytes queued for one client at which it is cut as a slow consumer.
    #[arg(long, default_value_t = HubConfig::default().outbox_limit, value_parser = positive)]
    outbox_limit: usize,
    /// Time a client's queue may stay above the high-water mark, or a write
    /// may make no progress, before it is cut as a slow consumer.
    #[arg(long, value_parser = humantime_secs, default_value = "10s")]
    slow_consumer_deadline: Duration,
    /// Flood control: messages per second per connection, e.g. `10/s`. Off unless given.
    #[arg(long, value_parser = rate)]
    rate_limit: Option<f64>,
    /// Flood control: messages that may be sent at once (with --rate-limit).
    #[arg(long, default_value_t = 20)]
    rate_burst: u32,
    /// Flood control: how long a client may keep flooding before it is disconnected.
    #[arg(long, value_parser = humantime_secs, default_value = "10s")]
    flood_grace: Duration,
    /// Log filter, in `tracing_subscriber`'s `EnvFilter` syntax
    /// (e.g. `info`, `chinwag_hub=debug`). `RUST_LOG` is used when unset.
    #[arg(long)]
    log: Option<String>,
    /// Log format: `text` lines or `json` objects on stderr, or straight to
    /// systemd's `journal`; `auto` is the journal when stderr is the
    /// journal's stream (run by systemd), else text.
    #[arg(long, value_enum, default_value_t = logging::LogFormat::Auto)]
    log_format: logging::LogFormat,
    /// Worker threads of the runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// How long to wait on shutdown for queued frames to be flushed (units
    /// as the other durations; `--shutdown-grace-secs 5`, its old name,
    /// still works).
    #[arg(long, alias = "shutdown-grace-secs", value_parser = grace, default_value = "5s")]
    shutdown_grace: Duration,
    /// A test hook, not for use: after this long, wedge the hub's actor for
    /// a minute (the systemd watchdog's test).
    #[arg(long, hide = true, value_parser = humantime_secs)]
    test_wedge_actor_after: Option<Duration>,
}

/// Whether clients may create accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Registration {
    /// Anyone may register a free nickname.
    Open,
    /// Only the operator creates accounts.
    Closed,
}

/// What `chinwagd` can do besides running.
#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, delete accounts or set a password, on the data
    /// directory (with the daemon stopped).
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Print a shell completion script for chinwagd to standard output
    /// (e.g. `chinwagd completions bash > /etc/bash_completion.d/chinwagd`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print chinwagd's manual page (roff, section 8) to standard output
    /// (e.g. `chinwagd man > chinwagd.8`).
    Man,
}

/// Runs the daemon (or an account command). A failure is one line on
/// stderr, `chinwagd: ` and the error with its causes, and exit status 1:
/// never a backtrace, whatever `RUST_BACKTRACE` says (an operator reads it
/// in the journal; a bad flag is clap's, status 2).
fn main() -> std::process::ExitCode {
    match run_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chinwagd: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_main() -> anyhow::Result<()> {
    let loaded = config::load()?;
    match &loaded.args.command {
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory as _;
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Args::command(), "chinwagd", &mut script);
            return print_generated(&script);
        }
        Some(Command::Man) => {
            use clap::CommandFactory as _;
            let mut page = Vec::new();
            // Section 8: a daemon, administered by root (man-pages(7)).
            clap_mangen::Man::new(Args::command())
                .section("8")
                .manual("System Manager's Manual")
                .render(&mut page)
                .context("cannot render the manual page")?;
            return print_generated(&page);
        }
        _ => {}
    }
    if loaded.args.print_config {
        print!("{}", loaded.to_toml());
        return Ok(());
    }
    if loaded.args.check_config {
        match &loaded.file {
            Some(file) => println!("chinwagd: configuration OK ({})", file.display()),
            None => println!("chinwagd: configuration OK (no file)"),
        }
        return Ok(());
    }
    let effective = loaded.effective().clone();
    let args = loaded.args;
    if let Some(Command::Account(command)) = &args.command {
        return account::run(&args.data_dir, command);
    }
    // While the process has one thread: taking them clears $LISTEN_FDS.
    let activated = systemd::take_listeners()?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(args, activated, effective))
}

/// Writes what `completions` or `man` generated to stdout. A reader that
/// closed early (`chinwagd man | head -1`) is not an error: like other Unix
/// tools, the command ends quietly with success. (Generated into memory
/// first, because `clap_complete` panics when its writer fails.)
fn print_generated(text: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write to standard output"),
    }
}

async fn run(
    args: Args,
    activated: systemd::Activated,
    effective: std::collections::BTreeMap<String, Vec<String>>,
) -> anyhow::Result<()> {
    let filter = logging::init(args.log.as_deref(), args.log_format)?;

    let config = hub_config(&args);
    open_file_limit(config.max_connections + config.max_unregistered);

    // The store first: a second daemon on the same data directory stops
    // here, before it binds anything.
    let mut store_config = StoreConfig::new(&args.data_dir);
    store_config.mailbox_max_messages = args.mailbox_max_messages;
    store_config.mailbox_max_bytes = args.mailbox_max_bytes;
    store_config.max_age = args.mailbox_max_age;
    let store = tokio::task::spawn_blocking(move || Store::open(&store_config))
        .await
        .context("the store's opening failed")?
        .with_context(|| format!("cannot open the data directory {}", args.data_dir.display()))?;
    info!(data_dir = %args.data_dir.display(), "store open");

    // Before anything says we are up: a SIGTERM sent the moment the address
    // is printed must shut us down cleanly, not kill us by default action.
    let shutdown = shutdown_signal()?;
    let tls = tls_acceptor(&args)?;
    let origins = chinwag_web::Origins::allow(&args.web_origin).context("--web-origin")?;
    let Listeners {
        binary: listener,
        text: text_listener,
        admin: admin_listener,
        tls: tls_listener,
        web: web_listener,
    } = bind_listeners(&args, activated).await?;
    let addr = listener.local_addr()?;

    let hub = Hub::start_with_storage(config, Storage::sqlite(store))
        .await
        .context("cannot read the accounts")?;
    let readiness = chinwag_admin::Readiness::default();
    // On a thread and runtime of its own: /healthz answers (no) even when
    // the hub's workers are blocked.
    if let Some(listener) = admin_listener {
        chinwag_admin::serve_on_own_thread(listener.into_std()?, hub.clone(), readiness.clone())
            .context("cannot start the admin endpoint")?;
    }
    let server = tokio::spawn({
        let hub = hub.clone();
        async move { hub.serve(listener).await }
    });
    let text_server = text_listener.map(|listener| {
        let hub = hub.clone();
        tokio::spawn(async move { hub.serve_text(listener).await })
    });
    let tls_server = tls_listener.zip(tls.clone()).map(|(listener, tls)| {
        let hub = hub.clone();
        tokio::spawn(async move { hub.serve_tls(listener, tls).await })
    });
    let web_server = web_listener.map(|listener| {
        let mut web = chinwag_web::WebConfig::default();
        web.origins = origins;
        web.tls = if args.web_tls { tls.clone() } else { None };
        tokio::spawn(chinwag_web::serve(hub.clone(), listener, web))
    });

    // SIGHUP's handler is in place before systemd (or anyone watching) is
    // told we are ready: its default action ends the process, so a reload
    // asked for right after READY=1 would otherwise kill the daemon.
    #[cfg(unix)]
    let reloads = reload::on_sighup(filter, effective, hub.clone(), tls)?;
    readiness.set_ready(true);
    systemd::ready(&format!("listening on {addr}"));
    let watchdog = systemd::watchdog(hub.clone());
    if let Some(after) = args.test_wedge_actor_after {
        let hub = hub.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = hub.wedge_actor_for_tests(Duration::from_secs(60)).await;
        });
    }

    shutdown.await?;
    info!("shutting down");
    systemd::stopping();
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    #[cfg(unix)]
    reloads.abort();
    let grace = args.shutdown_grace;
    if tokio::time::timeout(grace, hub.shutdown()).await.is_err() {
        warn!(
            ?grace,
            "some connections did not flush in time; exiting anyway"
        );
    }
    for server in std::iter::once(server)
        .chain(text_server)
        .chain(tls_server)
        .chain(web_server)
    {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!(%error, "listener failed"),
            Err(error) => warn!(%error, "listener task failed"),
        }
    }
    // The admin endpoint was up while the hub drained, saying so on
    // /readyz; it ends with the process.
    info!("bye");
    Ok(())
}

/// The daemon's listeners: handed over by systemd, or bound here.
struct Listeners {
    binary: tokio::net::TcpListener,
    text: Option<tokio::net::TcpListener>,
    admin: Option<tokio::net::TcpListener>,
    tls: Option<tokio::net::TcpListener>,
    web: Option<tokio::net::TcpListener>,
}

/// The TLS acceptor, with `--tls-listen` or `--web-tls`: its certificate
/// and key read now, so that a bad one stops the daemon at start-up.
fn tls_acceptor(args: &Args) -> anyhow::Result<Option<TlsAcceptor>> {
    if args.web_tls && args.web_listen.is_none() {
        anyhow::bail!("--web-tls needs --web-listen");
    }
    let user = match (&args.tls_listen, args.web_tls) {
        (Some(addr), _) => format!("--tls-listen {addr}"),
        (None, true) => "--web-tls".to_owned(),
        (None, false) => return Ok(None),
    };
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        anyhow::bail!("{user} needs --tls-cert and --tls-key");
    };
    let tls = TlsAcceptor::from_pem_files(cert, key).context("cannot load the TLS certificate")?;
    Ok(Some(tls))
}

/// Takes the listeners systemd passed, binds the others, and prints where
/// each listens (a plain line on stdout each, for scripts and tests that
/// listen on port 0).
async fn bind_listeners(args: &Args, activated: systemd::Activated) -> anyhow::Result<Listeners> {
    let listener = match activated.binary {
        Some(listener) => systemd::into_tokio(listener)?,
        None => bind_tcp(resolve(&args.listen).await?)
            .with_context(|| format!("cannot listen on {}", args.listen))?,
    };
    println!("chinwagd listening on {}", listener.local_addr()?);

    let text_listener = match (activated.text, &args.text_listen) {
        (Some(listener), _) => {
            let listener = systemd::into_tokio(listener)?;
            println!("chinwagd text port on {}", listener.local_addr()?);
            Some(listener)
        }
        (None, Some(text_addr)) => {
            let listener = bind_tcp(resolve(text_addr).await?)
                .with_context(|| format!("cannot listen on {text_addr} for text"))?;
            println!("chinwagd text port on {}", listener.local_addr()?);
            Some(listener)
        }
        (None, None) => None,
    };

    let admin_listener = match &args.admin_listen {
        Some(admin_addr) => {
            let listener = tokio::net::TcpListener::bind(resolve(admin_addr).await?)
                .await
                .with_context(|| format!("cannot listen on {admin_addr} for the admin endpoint"))?;
            println!(
                "chinwagd admin endpoint on http://{}",
                listener.local_addr()?
            );
            Some(listener)
        }
        None => None,
    };

    let tls_listener = match &args.tls_listen {
        Some(tls_addr) => {
            let listener = bind_tcp(resolve(tls_addr).await?)
                .with_context(|| format!("cannot listen on {tls_addr} for TLS"))?;
            println!("chinwagd TLS port on {}", listener.local_addr()?);
            Some(listener)
        }
        None => None,
    };

    let web_listener = match &args.web_listen {
        Some(web_addr) => {
            let listener = bind_tcp(resolve(web_addr).await?)
                .with_context(|| format!("cannot listen on {web_addr} for the web gateway"))?;
            let scheme = if args.web_tls { "https" } else { "http" };
            println!(
                "chinwagd web gateway on {scheme}://{}",
                listener.local_addr()?
            );
            Some(listener)
        }
        None => None,
    };

    Ok(Listeners {
        binary: listener,
        text: text_listener,
        admin: admin_listener,
        tls: tls_listener,
        web: web_listener,
    })
}

/// The hub's settings from the flags.
pub(crate) fn hub_config(args: &Args) -> HubConfig {
    let mut config = HubConfig::default();
    config.max_connections = args.max_connections;
    config.max_unregistered = args.max_unregistered;
    config.max_frame = args.max_frame_bytes;
    config.max_frame_unregistered = args.max_hello_bytes;
    config.registration_timeout = args.registration_timeout;
    config.frame_timeout = args.frame_timeout;
    config.ping_interval = args.ping_interval;
    config.max_missed_pings = args.max_missed_pings;
    config.max_in_flight_bytes = args.max_in_flight_bytes;
    config.outbox_high_water = args.outbox_high_water;
    config.outbox_limit = args.outbox_limit;
    config.slow_consumer_deadline = args.slow_consumer_deadline;
    config.addresses.unregistered = args.max_unregistered_per_address;
    config.addresses.registered = args.max_connections_per_address;
    config.addresses.connect_rate = args.connect_rate;
    config.addresses.connect_burst = args.connect_burst;
    config.addresses.ipv6_prefix = args.ipv6_prefix;
    if !args.exempt.is_empty() {
        config.addresses.exempt = args.exempt.iter().flatten().copied().collect();
    }
    config.rate_limit = args.rate_limit.map(|per_second| RateLimit {
        per_second,
        burst: args.rate_burst.max(1),
        grace: args.flood_grace,
    });

    config.accounts.require_accounts = args.require_accounts;
    config.accounts.registration_open = args.registration == Registration::Open;
    config.accounts.mailbox_max_age = args.mailbox_max_age;
    config
}

/// Installs the handlers for Ctrl+C (SIGINT) and SIGTERM at once, and
/// returns what resolves when either arrives.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = anyhow::Result<()>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
        let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            Ok(())
        })
    }
    #[cfg(not(unix))]
    {
        // Windows installs its handler when first polled.
        Ok(async {
            tokio::signal::ctrl_c()
                .await
                .context("cannot listen for Ctrl+C")
        })
    }
}

/// Seconds, as a whole or decimal number (`5`, `0.5`), or with an `s` or
/// `ms` suffix (`5s`, `500ms`).
fn humantime_secs(text: &str) -> Result<Duration, String> {
    let units = [
        ("ms", 0.001),
        ("s", 1.0),
        ("m", 60.0),
        ("h", 3_600.0),
        ("d", 86_400.0),
    ];
    let (number, scale) = units
        .iter()
        .find_map(|&(unit, scale)| Some((text.strip_suffix(unit)?, scale)))
        .unwrap_or((text, 1.0));
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 5, 5s, 500ms, 10m, 2h or 30d"))?;
    let duration =
        Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))?;
    if duration.is_zero() {
        return Err(format!("{text:?}: a deadline or period must be above zero"));
    }
    Ok(duration)
}

/// A count or size that must be at least 1.
/// A duration as [`humantime_secs`] reads it, or zero: not waiting at all
/// is a choice a shutdown grace may make.
fn grace(text: &str) -> Result<Duration, String> {
    let number = text
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if number.parse::<f64>() == Ok(0.0) {
        return Ok(Duration::ZERO);
    }
    humantime_secs(text)
}

fn positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(value) => Ok(value),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// A `--listen` address, `HOST:PORT` or `IP:PORT`: a host name is resolved
/// and its first address used.
async fn resolve(text: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(text)
        .await
        .with_context(|| format!("cannot resolve {text:?}; give HOST:PORT or IP:PORT"))?
        .next()
        .with_context(|| format!("{text:?} resolves to no address"))
}

/// A rate such as `10`, `10/s` or `600/min`, in messages per second.
fn rate(text: &str) -> Result<f64, String> {
    let (number, per) = match text.split_once('/') {
        Some((n, "s" | "sec")) => (n, 1.0),
        Some((n, "m" | "min")) => (n, 60.0),
        Some(_) => return Err(format!("{text:?}: use a rate like 10/s or 600/min")),
        None => (text, 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a rate like 10/s"))?;
    if value > 0.0 && value.is_finite() {
        Ok(value / per)
    } else {
        Err(format!("{text:?}: the rate must be above zero"))
    }
}

/// An `--exempt` value: a CIDR (an address alone means just it), or `none`.
fn exempt(text: &str) -> Result<Option<chinwag_hub::ipnet::IpNet>, String> {
    use chinwag_hub::ipnet::IpNet;
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(Some(net));
    }
    text.parse::<std::net::IpAddr>()
        .map(|ip| Some(IpNet::from(ip)))
        .map_err(|_| format!("{text:?} is not an address or a CIDR such as 10.0.0.0/8"))
}

/// Descriptors the daemon needs besides one per connection: its listeners,
/// logs, the runtime's own, and the hub's reserve.
const SPARE_FILES: usize = 64;

/// Raises the soft limit on open files to the hard one (systemd's default
/// soft limit of 1,024 would hang the users beyond about 1,000), and says at
/// start-up when even that cannot hold `connections` at once. The hub keeps
/// a descriptor in reserve, so that a connection over the limit is told
/// `SERVER_FULL` rather than left hanging.
fn open_file_limit(connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let needed = connections + SPARE_FILES;
            if usize::try_from(limit).is_ok_and(|limit| limit < needed) {
                warn!(
                    limit,
                    needed,
                    "the open-file limit cannot hold --max-connections and --max-unregistered; \
                     connections beyond it are refused with SERVER_FULL (raise LimitNOFILE= or ulimit -n)"
                );
            } else {
                info!(limit, "open-file limit");
            }
        }
        Err(error) => warn!(%error, "cannot read or raise the open-file limit"),
    }
}
