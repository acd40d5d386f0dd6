//! The progress bar on stderr that a long phase of a run (connecting,
//! delivering) shows.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Runs shorter than this show no progress bar.
const BAR_AFTER: Duration = Duration::from_secs(2);

/// A progress bar on stderr that appears only once a phase has run for a
/// couple of seconds, and never with `--json` or when stderr is not a
/// terminal.
#[derive(Debug)]
pub(crate) struct Bar {
    progress: ProgressBar,
    enabled: bool,
    shown: bool,
    started: Instant,
}

impl Bar {
    pub(crate) fn new(enabled: bool, len: u64, what: &'static str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {human_pos}/{human_len} ({per_sec}, {eta})",
        );
        if let Ok(style) = style {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what);
        Self {
            progress: bar,
            enabled: enabled && std::io::stderr().is_terminal(),
            shown: false,
            started: Instant::now(),
        }
    }

    pub(crate) fn set(&mut self, position: u64) {
        if self.enabled && !self.shown && self.started.elapsed() >= BAR_AFTER {
            self.progress.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        self.progress.set_position(position);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.progress.finish_and_clear();
    }
}
