//! The line editor of `chinwag chat` at a terminal: rustyline, on a thread
//! of its own, bridged to the async side by channels.
//!
//! rustyline's `readline` blocks, so it runs on the editor thread. That
//! thread hands each line over, then waits to be told to read the next
//! one ([`LineEditor::read`] tells it): what a line asks for (the help, an
//! error) prints before the next prompt, and after `/quit` no prompt comes
//! back. Lines from the hub go to the printer thread, which gives them to
//! rustyline's external printer: above the prompt, the line being typed
//! redrawn below them.
//!
//! Keys are rustyline's emacs bindings (Up and Down, Ctrl+R to search the
//! history, Ctrl+K to cut to the end of the line, Ctrl+D to delete the
//! character under the cursor or, on an empty line, to quit), Tab
//! completing nicknames and commands ([`complete`]), and Ctrl+C as a
//! shell has it ([`CtrlC`]): it clears the line, and a second one on the
//! empty line quits.
//!
//! The history is kept in a file, at most [`HISTORY_SIZE`] lines, appended
//! to after each line (so that it survives however the program ends, and
//! two sessions at once both keep theirs). A line typed with a leading
//! space is not kept, as in a shell. Passwords are never typed here: the
//! prompt for one comes before the editor starts (`password.rs`).

use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Editor, Event, EventContext,
    EventHandler, ExternalPrinter as _, KeyEvent, Movement, RepeatCount,
};
use tokio::sync::{mpsc, oneshot};

/// At most this many lines are kept in the history (the oldest go first).
pub(crate) const HISTORY_SIZE: usize = 1_000;

/// Lines waiting for the printer thread. A full queue holds up the chat
/// loop, which then stops reading events, and so the client stops reading
/// its socket: a slow terminal slows the hub's sending, it does not grow a
/// queue.
const SCREEN_QUEUE: usize = 64;

/// How long closing waits for the printer thread to write what is queued,
/// and for the editor thread to put the terminal back.
const CLOSE_PATIENCE: Duration = Duration::from_secs(1);

/// The hint shown on an empty line after one Ctrl+C.
const CTRL_C_HINT: &str = "(Ctrl+C again or Ctrl+D to quit)";

/// What the editor thread read.
#[derive(Debug)]
pub(crate) enum Read {
    /// A line, without its line ending.
    Line(String),
    /// Ctrl+D on an empty line, or Ctrl+C twice.
    Quit,
    /// Something to tell the person (the history file failed); a line
    /// follows.
    Warning(String),
    /// The terminal failed.
    Failed(ReadlineError),
}

/// What the editor needs to know to complete a word.
pub(crate) struct Completions {
    /// The nicknames known now (duplicates and any case allowed).
    pub(crate) nicks: Box<dyn Fn() -> Vec<String> + Send>,
    /// Our own nickname, never offered.
    pub(crate) own: String,
    /// The commands, with their slash (`/who`).
    pub(crate) commands: &'static [&'static str],
}

/// Prints lines above the prompt. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Screen {
    lines: mpsc::Sender<String>,
}

impl Screen {
    /// Prints one line above the prompt (or, between prompts, where the
    /// cursor is).
    pub(crate) async fn show(&self, line: &str) -> anyhow::Result<()> {
        self.lines
            .send(line.to_owned())
            .await
            .ok()
            .context("cannot write to the terminal")
    }
}

/// The line editor's handle, on the async side.
#[derive(Debug)]
pub(crate) struct LineEditor {
    lines: mpsc::Receiver<Read>,
    /// Tells the editor thread to read the next line; dropped, it ends.
    resume: std::sync::mpsc::SyncSender<()>,
    /// A line was handed over and the thread waits for `resume`.
    owed: bool,
    /// The editor thread is in `readline`: the terminal is in raw mode and
    /// only rustyline can put it back, or [`Restore`] if it cannot.
    reading: bool,
    /// Resolve when the threads end (the sender dropped): the editor's
    /// once rustyline has put the terminal back, the printer's once it
    /// has written every line queued. Neither thread is joined: one
    /// stuck must not keep the program from exiting.
    editor_done: oneshot::Receiver<()>,
    printer_done: oneshot::Receiver<()>,
    restore: Restore,
}

impl LineEditor {
    /// Starts the editor with the history in `history` (none kept if
    /// `None`). Problems with the history file do not stop it: they are
    /// returned (later ones come as [`Read::Warning`]) for the screen, and
    /// the history is then kept only in memory.
    pub(crate) fn start(
        prompt: String,
        history: Option<PathBuf>,
        completions: Completions,
    ) -> anyhow::Result<(Self, Screen, Vec<String>)> {
        let config = Config::builder()
            .max_history_size(HISTORY_SIZE)
            .context("cannot set up the line editor")?
            .history_ignore_dups(true)
            .context("cannot set up the line editor")?
            .history_ignore_space(true)
            .completion_type(CompletionType::List)
            .auto_add_history(false)
            .build();
        let ctrl_c = Arc::new(AtomicBool::new(false));
        let mut editor: Editor<Helper, FileHistory> =
            Editor::with_config(config).context("cannot set up the terminal")?;
        editor.set_helper(Some(Helper {
            completions,
            ctrl_c: Arc::clone(&ctrl_c),
        }));
        // Every key goes through this handler first: it sees Ctrl+C, and it
        // sees that some other key came between two of them.
        editor.bind_sequence(
            Event::Any,
            EventHandler::Conditional(Box::new(CtrlC { armed: ctrl_c })),
        );
        let mut warnings = Vec::new();
        let history = history.and_then(|path| match editor.load_history(&path) {
            Ok(()) => Some(path),
            Err(ReadlineError::Io(error)) if error.kind() == io::ErrorKind::NotFound => Some(path),
            Err(error) => {
                warnings.push(format!(
                    "! cannot read the history in {}: {error}; this session's is not kept",
                    path.display()
                ));
                None
            }
        });
        let mut printer = editor
            .create_external_printer()
            .context("cannot set up the terminal")?;
        let restore = Restore::save();

        let (screen_tx, mut screen_rx) = mpsc::channel::<String>(SCREEN_QUEUE);
        let (printer_done_tx, printer_done) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("chinwag-printer".into())
            .spawn(move || {
                let _done = printer_done_tx;
                while let Some(mut line) = screen_rx.blocking_recv() {
                    line.push('\n');
                    if printer.print(line).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the printer thread")?;
        let screen = Screen { lines: screen_tx };

        // One line at a time: the thread waits for `resume` after each.
        let (lines_tx, lines_rx) = mpsc::channel(1);
        let (resume_tx, resume_rx) = std::sync::mpsc::sync_channel(1);
        let (editor_done_tx, editor_done) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("chinwag-editor".into())
            .spawn(move || {
                edit(
                    &mut editor,
                    &prompt,
                    history.as_deref(),
                    &lines_tx,
                    &resume_rx,
                );
                // rustyline puts the terminal back between lines already;
                // this is for the history and the printer's pipe.
                drop(editor);
                drop(editor_done_tx);
            })
            .context("cannot start the line editor's thread")?;
        let handle = Self {
            lines: lines_rx,
            resume: resume_tx,
            owed: false,
            reading: true,
            editor_done,
            printer_done,
            restore,
        };
        Ok((handle, screen, warnings))
    }

    /// The next line read, or `None` once the editor thread has ended.
    /// Cancel-safe: dropped before a line comes, the line comes next time.
    pub(crate) async fn read(&mut self) -> Option<Read> {
        if self.owed {
            self.owed = false;
            // The thread waits on it, so the queue of one is empty.
            let _ = self.resume.try_send(());
            self.reading = true;
        }
        let read = self.lines.recv().await;
        // The thread sent it between two `readline`s.
        self.reading = false;
        self.owed = matches!(read, Some(Read::Line(_)));
        read
    }

    /// Ends the editor, after the lines shown so far are printed, and
    /// leaves the terminal as it found it.
    pub(crate) async fn close(self, screen: Screen) {
        let Self {
            lines,
            resume,
            reading,
            editor_done,
            printer_done,
            restore,
            ..
        } = self;
        // A thread waiting to read again ends (its history is saved
        // already).
        drop(resume);
        drop(lines);
        // The printer ends once the Screen is dropped and its queue is
        // written. Through rustyline it needs the editor thread reading
        // keys, so it is waited for first, but not forever.
        drop(screen);
        let _ = tokio::time::timeout(CLOSE_PATIENCE, printer_done).await;
        if reading {
            // The thread is in `readline`, waiting for a key, and nothing
            // can make it return: put the terminal back ourselves. The
            // thread ends with the program.
            restore.restore();
        } else {
            let _ = tokio::time::timeout(CLOSE_PATIENCE, editor_done).await;
        }
    }
}

/// The editor thread: reads lines until told to stop, or the terminal
/// says to quit or fails.
fn edit(
    editor: &mut Editor<Helper, FileHistory>,
    prompt: &str,
    mut history: Option<&Path>,
    lines: &mpsc::Sender<Read>,
    resume: &std::sync::mpsc::Receiver<()>,
) {
    loop {
        let read = match editor.readline(prompt) {
            Ok(line) => {
                // An ignored line (blank, repeated, a leading space) is not
                // added, and nothing is written.
                let added = !line.trim().is_empty() && editor.add_history_entry(&line).is_ok();
                if let Some(path) = history.filter(|_| added)
                    && let Err(error) = append_history(editor, path)
                {
                    let _ = lines.blocking_send(Read::Warning(format!(
                        "! cannot keep the history in {}: {error:#}",
                        path.display()
                    )));
                    // Said once; the history goes on in memory.
                    history = None;
                }
                Read::Line(line)
            }
            // Ctrl+C twice (see `CtrlC`), or Ctrl+D on an empty line.
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => Read::Quit,
            Err(error) => Read::Failed(error),
        };
        let more = matches!(read, Read::Line(_));
        if lines.blocking_send(read).is_err() || !more || resume.recv().is_err() {
            return;
        }
    }
}

/// Appends the lines not yet written to the history file, creating its
/// directory if need be (rustyline creates the file readable by its owner
/// only, and keeps it to [`HISTORY_SIZE`] lines).
fn append_history(editor: &mut Editor<Helper, FileHistory>, path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    editor.append_history(path)?;
    Ok(())
}

/// Ctrl+C as a shell has it: on a line with text, clears it; on an empty
/// line right after a Ctrl+C, quits; on an empty line otherwise, asks for
/// a second one (with a hint, see [`Helper`]). Any other key disarms it.
/// Bound to every key (`Event::Any`), it passes the others on unchanged.
struct CtrlC {
    armed: Arc<AtomicBool>,
}

impl ConditionalEventHandler for CtrlC {
    fn handle(
        &self,
        event: &Event,
        _: RepeatCount,
        _: bool,
        context: &EventContext<'_>,
    ) -> Option<Cmd> {
        if event.get(0) != Some(&KeyEvent::ctrl('C')) {
            self.armed.store(false, Ordering::Relaxed);
            return None;
        }
        let armed = self.armed.swap(true, Ordering::Relaxed);
        Some(if !context.line().is_empty() {
            Cmd::Kill(Movement::WholeBuffer)
        } else if armed {
            Cmd::Interrupt
        } else {
            // Redrawn, the line shows the hint.
            Cmd::Repaint
        })
    }
}

/// Completion, and the hint after one Ctrl+C.
struct Helper {
    completions: Completions,
    ctrl_c: Arc<AtomicBool>,
}

impl Completer for Helper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let nicks: Vec<String> = (self.completions.nicks)()
            .into_iter()
            .filter(|nick| !nick.eq_ignore_ascii_case(&self.completions.own))
            .collect();
        let (start, words) = complete(line, pos, &nicks, self.completions.commands);
        let pairs = words
            .into_iter()
            .map(|replacement| Pair {
                display: replacement.trim_end().to_owned(),
                replacement,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Helper {
    type Hint = String;

    fn hint(&self, line: &str, _: usize, _: &rustyline::Context<'_>) -> Option<String> {
        (line.is_empty() && self.ctrl_c.load(Ordering::Relaxed)).then(|| CTRL_C_HINT.to_owned())
    }
}

impl Highlighter for Helper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        // Dim, so that it does not look typed.
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

impl Validator for Helper {}

impl rustyline::Helper for Helper {}

/// The completions of the word that ends at `pos` in `line`: where the word
/// starts, and what may replace it (each ending with a space).
///
/// - `@ali` completes to `@alice `, anywhere in the line;
/// - the nickname after `/msg` completes without an `@`;
/// - a `/command` at the start of the line completes to the command.
///
/// Nicknames compare without ASCII case, as the hub compares them, and
/// complete to their own spelling.
pub(crate) fn complete(
    line: &str,
    pos: usize,
    nicks: &[String],
    commands: &[&str],
) -> (usize, Vec<String>) {
    let Some(before) = line.get(..pos) else {
        return (pos, Vec::new());
    };
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    let starts_with = |candidate: &str, prefix: &str| {
        candidate
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    let matching_nicks = |prefix: &str, sigil: &str| {
        let mut found: Vec<&String> = nicks
            .iter()
            .filter(|nick| starts_with(nick, prefix))
            .collect();
        found.sort_by_key(|nick| nick.to_ascii_lowercase());
        found.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        found
            .into_iter()
            .map(|nick| format!("{sigil}{nick} "))
            .collect()
    };
    let words = if let Some(prefix) = word.strip_prefix('@') {
        matching_nicks(prefix, "@")
    } else if start == 0 && word.starts_with('/') {
        commands
            .iter()
            .filter(|command| starts_with(command, word))
            .map(|command| format!("{command} "))
            .collect()
    } else if is_msg(&before[..start]) {
        matching_nicks(word, "")
    } else {
        Vec::new()
    };
    (start, words)
}

/// Whether `before` is `/msg` and spaces: the next word is a nickname.
fn is_msg(before: &str) -> bool {
    let mut words = before.split_whitespace();
    before.starts_with('/')
        && words
            .next()
            .is_some_and(|command| command.eq_ignore_ascii_case("/msg"))
        && words.next().is_none()
}

/// The terminal's settings before rustyline changed them, to put back when
/// the program leaves while rustyline is still reading keys (the hub ended
/// the session, or SIGTERM).
#[derive(Debug)]
struct Restore {
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl Restore {
    fn save() -> Self {
        Self {
            #[cfg(unix)]
            saved: nix::sys::termios::tcgetattr(io::stdin()).ok(),
        }
    }

    /// Puts the settings back, turns bracketed paste off again (rustyline
    /// turns it on), and ends the line being typed.
    fn restore(self) {
        use std::io::Write as _;
        #[cfg(unix)]
        if let Some(saved) = self.saved {
            use nix::sys::termios::{SetArg, tcsetattr};
            let _ = tcsetattr(io::stdin(), SetArg::TCSADRAIN, &saved);
        }
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(b"\x1b[?2004l\r\n");
        let _ = stdout.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMANDS: &[&str] = &["/help", "/me", "/msg", "/quit", "/who"];

    fn nicks() -> Vec<String> {
        ["alice", "Alan", "bob", "bobby", "BOB"]
            .map(String::from)
            .to_vec()
    }

    fn at_end(line: &str) -> (usize, Vec<String>) {
        complete(line, line.len(), &nicks(), COMMANDS)
    }

    #[test]
    fn at_names_complete_anywhere_in_the_line() {
        assert_eq!(at_end("@ali"), (0, vec!["@alice ".to_owned()]));
        assert_eq!(
            at_end("hi @AL"),
            (3, vec!["@Alan ".to_owned(), "@alice ".to_owned()])
        );
        // One row per nickname, whatever the case.
        assert_eq!(
            at_end("@bob"),
            (0, vec!["@bob ".to_owned(), "@bobby ".to_owned()])
        );
        assert_eq!(at_end("@zed"), (0, Vec::new()));
        // In the middle of a line, up to the cursor.
        assert_eq!(
            complete("@bo hello", 3, &nicks(), COMMANDS),
            (0, vec!["@bob ".to_owned(), "@bobby ".to_owned()])
        );
    }

    #[test]
    fn the_nickname_after_msg_completes_bare() {
        assert_eq!(at_end("/msg ali"), (5, vec!["alice ".to_owned()]));
        assert_eq!(at_end("/MSG  ali"), (6, vec!["alice ".to_owned()]));
        // Not the text after it, nor a bare word anywhere else.
        assert_eq!(at_end("/msg alice ali"), (11, Vec::new()));
        assert_eq!(at_end("ali"), (0, Vec::new()));
        assert_eq!(at_end("hello ali"), (6, Vec::new()));
    }

    #[test]
    fn commands_complete_at_the_start_only() {
        assert_eq!(
            at_end("/m"),
            (0, vec!["/me ".to_owned(), "/msg ".to_owned()])
        );
        assert_eq!(at_end("/H"), (0, vec!["/help ".to_owned()]));
        assert_eq!(at_end("x /h"), (2, Vec::new()));
    }

    #[test]
    fn words_split_at_any_whitespace_and_non_ascii_is_safe() {
        assert_eq!(
            at_end("é\t@a"),
            (3, vec!["@Alan ".to_owned(), "@alice ".to_owned()])
        );
        // A cursor inside a character completes nothing.
        assert_eq!(complete("é", 1, &nicks(), COMMANDS), (1, Vec::new()));
    }
}
