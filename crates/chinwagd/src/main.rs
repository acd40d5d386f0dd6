//! `chinwagd`, the chinwag daemon: parses flags, sets up logging, binds, and
//! runs the hub until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use chinwag_hub::{Hub, HubConfig};
use clap::Parser;
use tokio::net::TcpListener;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

/// chinwag's messaging daemon.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on for the binary protocol.
    #[arg(long, default_value = "127.0.0.1:2446", env = "CHINWAG_LISTEN")]
    listen: SocketAddr,
    /// Also accept plain-text (netcat/telnet) users on this address. Off
    /// unless given.
    #[arg(long, value_name = "ADDR")]
    text_listen: Option<SocketAddr>,
    /// Connections served at once; the next one gets a "server full" error.
    #[arg(long, default_value_t = HubConfig::default().max_connections)]
    max_connections: usize,
    /// Largest frame payload accepted from a registered client, in bytes.
    #[arg(long, default_value_t = HubConfig::default().max_frame)]
    max_frame_bytes: usize,
    /// Log filter, in `tracing_subscriber`'s `EnvFilter` syntax
    /// (e.g. `info`, `chinwag_hub=debug`). `RUST_LOG` is used when unset.
    #[arg(long)]
    log: Option<String>,
    /// Seconds to wait on shutdown for queued frames to be flushed.
    #[arg(long, default_value_t = 5)]
    shutdown_grace_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = match &args.log {
        Some(filter) => EnvFilter::try_new(filter).context("invalid --log filter")?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not for journald or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let mut config = HubConfig::default();
    config.max_connections = args.max_connections;
    config.max_frame = args.max_frame_bytes;

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // A plain line on stdout, for scripts and tests that listen on port 0.
    println!("chinwagd listening on {addr}");

    let text_listener = match args.text_listen {
        Some(text_addr) => {
            let listener = TcpListener::bind(text_addr)
                .await
                .with_context(|| format!("cannot listen on {text_addr} for text"))?;
            println!("chinwagd text port on {}", listener.local_addr()?);
            Some(listener)
        }
        None => None,
    };

    let hub = Hub::start(config);
    let server = tokio::spawn({
        let hub = hub.clone();
        async move { hub.serve(listener).await }
    });
    let text_server = text_listener.map(|listener| {
        let hub = hub.clone();
        tokio::spawn(async move { hub.serve_text(listener).await })
    });

    shutdown_signal().await?;
    info!("shutting down");
    let grace = Duration::from_secs(args.shutdown_grace_secs);
    if tokio::time::timeout(grace, hub.shutdown()).await.is_err() {
        warn!(
            ?grace,
            "some connections did not flush in time; exiting anyway"
        );
    }
    for server in std::iter::once(server).chain(text_server) {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!(%error, "listener failed"),
            Err(error) => warn!(%error, "listener task failed"),
        }
    }
    info!("bye");
    Ok(())
}

/// Resolves on Ctrl+C (SIGINT) or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
        tokio::select! {
            result = ctrl_c => result.context("cannot listen for Ctrl+C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.context("cannot listen for Ctrl+C")?;
    Ok(())
}
