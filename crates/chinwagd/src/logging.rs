//! Where the daemon's log goes, and in what form (`--log-format`).
//!
//! - `text`: lines on stderr, coloured only for a person at a terminal.
//! - `json`: one JSON object per line on stderr (time, level, target,
//!   fields), for a log shipper.
//! - `journal`: straight to systemd's journal, each field its own journal
//!   field (`journalctl -u chinwagd -o verbose` shows them), the level as
//!   the entry's priority.
//! - `auto` (the default): `journal` when stderr is the journal's stream
//!   (systemd says so in `$JOURNAL_STREAM`), else `text`.

use anyhow::Context as _;
use clap::ValueEnum;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// The journal under systemd, else text.
    Auto,
    /// Lines on stderr.
    Text,
    /// JSON objects on stderr, one per line.
    Json,
    /// systemd's journal.
    Journal,
}

/// Whether stderr is the journal's stream: `$JOURNAL_STREAM` is the
/// `device:inode` of the socket systemd connected it to.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream.to_string_lossy() == format!("{}:{}", stderr.dev(), stderr.ino())
}

/// Installs the subscriber: `filter` (`--log`, else `RUST_LOG`, else
/// `info`) in `format`.
pub(crate) fn init(filter: Option<&str>, format: LogFormat) -> anyhow::Result<()> {
    let filter = match filter {
        // The parser's error repeats its cause as its source: print it once.
        Some(filter) => EnvFilter::try_new(filter)
            .map_err(|error| anyhow::anyhow!("invalid --log filter {filter:?}: {error}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let format = match format {
        LogFormat::Auto if stderr_is_journal() => LogFormat::Journal,
        LogFormat::Auto => LogFormat::Text,
        other => other,
    };
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Journal => {
            let journal = tracing_journald::layer().context("cannot reach systemd's journal")?;
            registry.with(journal).init();
        }
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Text | LogFormat::Auto => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colours only for a person at a terminal, not for a file.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .init(),
    }
    Ok(())
}
