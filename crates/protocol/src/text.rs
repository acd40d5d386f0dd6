//! The plain-text syntax people type and read: what the `chinwag chat`
//! program and the daemon's plain-text port share.
//!
//! Input, one line at a time:
//!
//! | line | meaning |
//! |---|---|
//! | `@bob hello` | to bob |
//! | `@bob @carol: hello` or `@bob @carol hello` | to bob and carol |
//! | `hello` (no leading `@`) | to everyone |
//! | `/who`, `/quit`, `/help` | commands |
//! | `//text` | to everyone, the text being `/text` |
//!
//! Output lines: `[12:01:33] <alice> hello`, with `(to bob, carol)` before the
//! text when it was not a broadcast; `* bob is online`; `* bob went offline`;
//! `! not delivered to dave: no such user`; `* stored for bob`. At login to an
//! account: `* 2 messages while you were away`, then each stored message as
//! `[Tue 18:02] <carol> see you  (while you were away)`.
//!
//! Whatever a peer wrote is shown on one line, with the characters that could
//! forge another line or take over a terminal made visible ([`visible`]): a
//! message whose text is `hi\n* admin is online` prints as one line ending in
//! `hi\n* admin is online`, the `\n` as two characters, never as a second
//! line that looks like the hub's.
//!
//! ```
//! use chinwag_protocol::text::{Input, parse_line};
//! use chinwag_protocol::Recipients;
//!
//! assert_eq!(
//!     parse_line("@bob @carol: hi there"),
//!     Ok(Input::Send {
//!         to: Recipients::Users(vec!["bob".into(), "carol".into()]),
//!         text: "hi there".into(),
//!     })
//! );
//! assert_eq!(parse_line("/who"), Ok(Input::Who));
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::{Ack, Code, MailboxHeader, Message, Presence, Recipients, UserEntry};

/// What a typed line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Send `text` to `to`.
    Send {
        /// Who it is for.
        to: Recipients,
        /// What to say.
        text: String,
    },
    /// `/who`: list who is online.
    Who,
    /// `/quit`: leave.
    Quit,
    /// `/help`: show the syntax.
    Help,
    /// A blank line: nothing to do.
    Nothing,
}

/// Why a typed line could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Recipients but no text, as in `@bob`.
    #[error("nothing to send: write the message after the names, as in @bob hello")]
    EmptyMessage,
    /// An `@` with no name after it.
    #[error("an @ needs a nickname right after it, as in @bob")]
    EmptyName,
    /// A `/command` that does not exist.
    #[error("unknown command /{0}; try /help")]
    UnknownCommand(String),
}

/// One line of help for people, listing the syntax.
pub const HELP: &str = "@nick text: to one user; @a @b: text: to several; \
text with no @: to everyone; /who: who is online; /quit: leave; /help: this";

/// Parses one typed line (without its line ending).
pub fn parse_line(line: &str) -> Result<Input, InputError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Input::Nothing);
    }
    if let Some(rest) = line.strip_prefix('/') {
        if rest.starts_with('/') {
            return Ok(Input::Send {
                to: Recipients::Everyone,
                text: rest.to_owned(),
            });
        }
        let command = rest.split_whitespace().next().unwrap_or("");
        return match command.to_ascii_lowercase().as_str() {
            "who" => Ok(Input::Who),
            "quit" | "exit" => Ok(Input::Quit),
            "help" | "?" => Ok(Input::Help),
            _ => Err(InputError::UnknownCommand(command.to_owned())),
        };
    }
    if !line.trim_start().starts_with('@') {
        return Ok(Input::Send {
            to: Recipients::Everyone,
            text: line.to_owned(),
        });
    }
    let mut names = Vec::new();
    let mut rest = line.trim_start();
    while let Some(after) = rest.strip_prefix('@') {
        let end = after
            .find(|c: char| c.is_whitespace() || c == ':' || c == ',')
            .unwrap_or(after.len());
        let (name, tail) = after.split_at(end);
        if name.is_empty() {
            return Err(InputError::EmptyName);
        }
        names.push(name.to_owned());
        let tail = tail.strip_prefix([':', ',']).unwrap_or(tail);
        rest = tail.trim_start();
    }
    if rest.is_empty() {
        return Err(InputError::EmptyMessage);
    }
    Ok(Input::Send {
        to: Recipients::Users(names),
        text: rest.to_owned(),
    })
}

/// `[12:01:33] <alice> hello`, or `[12:01:33] <alice> (to bob, carol) hello`.
/// `clock` is the time of day already formatted (`HH:MM:SS`), so that the
/// caller chooses the time zone. The text is shown [`visible`]: always one
/// line, whatever it holds.
pub fn format_message(clock: &str, message: &Message) -> String {
    let mut line = format!("[{clock}] <{}> ", visible(&message.from));
    if let Recipients::Users(to) = &message.to {
        let to: Vec<Cow<'_, str>> = to.iter().map(|name| visible(name)).collect();
        let _ = write!(line, "(to {}) ", to.join(", "));
    }
    line.push_str(&visible(&message.text));
    line
}

/// `text` as it can be shown safely on one line of a terminal or a text
/// protocol: every character that could end the line, move the cursor,
/// start a terminal escape sequence or reorder what follows is written as
/// a visible escape instead, and everything else is left as it is.
///
/// | character | shown as |
/// |---|---|
/// | line feed, carriage return, tab | `\n`, `\r`, `\t` |
/// | other C0 controls (U+0000 to U+001F, ESC among them) and DEL | `\x1b`: `\x` and two hex digits |
/// | C1 controls (U+0080 to U+009F), the line and paragraph separators (U+2028, U+2029), and the bidirectional controls (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069) | `\u{202e}`: `\u{`, lowercase hex, `}` |
///
/// A backslash is not escaped: text that holds `\n` literally shows the same
/// as text that held a line feed, which is ambiguous but never forges a
/// line. Text with none of these characters is returned unchanged, without
/// a copy.
///
/// ```
/// use chinwag_protocol::text::visible;
///
/// assert_eq!(visible("hi\n* admin is online"), "hi\\n* admin is online");
/// assert_eq!(visible("\u{1b}[2J"), "\\x1b[2J");
/// assert_eq!(visible("abc\u{202e}fed"), "abc\\u{202e}fed");
/// assert_eq!(visible("plain, accented: été 🎉"), "plain, accented: été 🎉");
/// ```
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether [`visible`] escapes `c`.
fn needs_escape(c: char) -> bool {
    c.is_ascii_control()
        || ('\u{80}'..='\u{9f}').contains(&c)
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `* bob is online` or `* bob went offline`.
pub fn format_presence(presence: &Presence) -> String {
    let nick = visible(&presence.nick);
    if presence.online {
        format!("* {nick} is online")
    } else {
        format!("* {nick} went offline")
    }
}

/// One `! not delivered to dave: no such user` line per recipient that did
/// not get the message; nothing when everyone did. A recipient whose copy
/// waits in its mailbox ([`Code::STORED`]) got it as far as the sender can
/// tell: see [`format_ack_stored`].
pub fn format_ack_failures(ack: &Ack) -> Vec<String> {
    ack.statuses
        .iter()
        .filter(|s| s.status != Code::DELIVERED && s.status != Code::STORED)
        .map(|s| format!("! not delivered to {}: {}", visible(&s.nick), s.status))
        .collect()
}

/// One `* stored for bob` line per recipient that was offline and has the
/// message in its mailbox ([`Code::STORED`]), to read at its next login.
pub fn format_ack_stored(ack: &Ack) -> Vec<String> {
    ack.statuses
        .iter()
        .filter(|s| s.status == Code::STORED)
        .map(|s| format!("* stored for {}", visible(&s.nick)))
        .collect()
}

/// A message that waited in the mailbox: [`format_message`]'s line followed
/// by `  (while you were away)`. `clock` is preformatted as for
/// [`format_message`]; a day with the time (`Tue 18:02`) reads best, since
/// such a message may be days old.
pub fn format_stored_message(clock: &str, message: &Message) -> String {
    let mut line = format_message(clock, message);
    line.push_str("  (while you were away)");
    line
}

/// The lines announcing a mailbox at login: `* 2 messages while you were
/// away` and `* 3 messages expired unread`, each only when its count is not
/// zero (so nothing at all for an empty mailbox).
pub fn format_mailbox(header: &MailboxHeader) -> Vec<String> {
    let messages = |n: u32| if n == 1 { "message" } else { "messages" };
    let mut lines = Vec::new();
    if header.count > 0 {
        let n = header.count;
        lines.push(format!("* {n} {} while you were away", messages(n)));
    }
    if header.expired > 0 {
        let n = header.expired;
        lines.push(format!("* {n} {} expired unread", messages(n)));
    }
    lines
}

/// One row of the table of users: `* alice is online`, `* dave is online
/// (guest)`, `* bob is offline, last seen Tue 18:02` or `* carol is
/// offline, never seen`. `last_seen` is the row's `last_seen_ms`
/// preformatted by the caller (who chooses the time zone); it is used only
/// for an offline user seen at least once.
pub fn format_user(user: &UserEntry, last_seen: &str) -> String {
    let nick = visible(&user.nick);
    match (user.online(), user.registered()) {
        (true, true) => format!("* {nick} is online"),
        (true, false) => format!("* {nick} is online (guest)"),
        (false, _) if user.last_seen_ms == 0 => format!("* {nick} is offline, never seen"),
        (false, _) => format!("* {nick} is offline, last seen {last_seen}"),
    }
}

/// `* online: alice, bob`.
pub fn format_roster(roster: &[String]) -> String {
    let roster: Vec<Cow<'_, str>> = roster.iter().map(|name| visible(name)).collect();
    format!("* online: {}", roster.join(", "))
}

/// `HH:MM:SS` in UTC for a time in milliseconds since the Unix epoch.
pub fn utc_clock(ts_ms: u64) -> String {
    let secs = ts_ms / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RecipientStatus, user_flags};

    fn users(names: &[&str]) -> Recipients {
        Recipients::Users(names.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn parses_the_ways_people_address_messages() {
        let send = |to, text: &str| {
            Ok(Input::Send {
                to,
                text: text.to_owned(),
            })
        };
        assert_eq!(parse_line("@bob hello"), send(users(&["bob"]), "hello"));
        assert_eq!(parse_line("@bob: hello"), send(users(&["bob"]), "hello"));
        assert_eq!(
            parse_line("@bob @carol: hi  there"),
            send(users(&["bob", "carol"]), "hi  there")
        );
        assert_eq!(
            parse_line("@bob, @carol hi"),
            send(users(&["bob", "carol"]), "hi")
        );
        assert_eq!(
            parse_line("hello all\n"),
            send(Recipients::Everyone, "hello all")
        );
        assert_eq!(parse_line("//etc"), send(Recipients::Everyone, "/etc"));
        assert_eq!(
            parse_line("mail me @bob"),
            send(Recipients::Everyone, "mail me @bob")
        );
    }

    #[test]
    fn parses_commands_and_refuses_nonsense() {
        assert_eq!(parse_line("/WHO"), Ok(Input::Who));
        assert_eq!(parse_line("/quit"), Ok(Input::Quit));
        assert_eq!(parse_line("/help"), Ok(Input::Help));
        assert_eq!(parse_line("   "), Ok(Input::Nothing));
        assert_eq!(parse_line("@bob"), Err(InputError::EmptyMessage));
        assert_eq!(parse_line("@bob @carol:"), Err(InputError::EmptyMessage));
        assert_eq!(parse_line("@ hi"), Err(InputError::EmptyName));
        assert_eq!(
            parse_line("/nope x"),
            Err(InputError::UnknownCommand("nope".into()))
        );
    }

    #[test]
    fn formats_lines_as_people_read_them() {
        let mut message = Message {
            id: 1,
            ts_ms: 0,
            from: "alice".into(),
            to: users(&["bob", "carol"]),
            text: "hello".into(),
        };
        assert_eq!(
            format_message("12:01:33", &message),
            "[12:01:33] <alice> (to bob, carol) hello"
        );
        message.to = Recipients::Everyone;
        assert_eq!(
            format_message("12:01:33", &message),
            "[12:01:33] <alice> hello"
        );
        let ack = Ack {
            client_id: 1,
            message_id: 1,
            delivered: 1,
            statuses: vec![
                RecipientStatus {
                    nick: "bob".into(),
                    status: Code::DELIVERED,
                },
                RecipientStatus {
                    nick: "dave".into(),
                    status: Code::NO_SUCH_USER,
                },
            ],
        };
        assert_eq!(
            format_ack_failures(&ack),
            ["! not delivered to dave: no such user"]
        );
        assert_eq!(utc_clock(43_293_000 + 86_400_000), "12:01:33");
    }

    #[test]
    fn formats_mailboxes_stored_messages_and_the_table_of_users() {
        let message = Message {
            id: 1,
            ts_ms: 0,
            from: "carol".into(),
            to: users(&["bob"]),
            text: "see you".into(),
        };
        assert_eq!(
            format_stored_message("Tue 18:02", &message),
            "[Tue 18:02] <carol> (to bob) see you  (while you were away)"
        );
        let header = |count, expired| MailboxHeader { count, expired };
        assert!(format_mailbox(&header(0, 0)).is_empty());
        assert_eq!(
            format_mailbox(&header(2, 3)),
            [
                "* 2 messages while you were away",
                "* 3 messages expired unread"
            ]
        );
        assert_eq!(
            format_mailbox(&header(1, 0)),
            ["* 1 message while you were away"]
        );
        assert_eq!(
            format_mailbox(&header(0, 1)),
            ["* 1 message expired unread"]
        );
        let user = |flags, last_seen_ms| UserEntry {
            flags,
            last_seen_ms,
            nick: "bob".into(),
        };
        assert_eq!(
            format_user(&user(user_flags::ONLINE | user_flags::REGISTERED, 0), "-"),
            "* bob is online"
        );
        assert_eq!(
            format_user(&user(user_flags::ONLINE, 0), "-"),
            "* bob is online (guest)"
        );
        assert_eq!(
            format_user(&user(user_flags::REGISTERED, 5), "Tue 18:02"),
            "* bob is offline, last seen Tue 18:02"
        );
        assert_eq!(
            format_user(&user(user_flags::REGISTERED, 0), "-"),
            "* bob is offline, never seen"
        );
        let ack = Ack {
            client_id: 1,
            message_id: 1,
            delivered: 0,
            statuses: vec![
                RecipientStatus {
                    nick: "bob".into(),
                    status: Code::STORED,
                },
                RecipientStatus {
                    nick: "dave".into(),
                    status: Code::MAILBOX_FULL,
                },
            ],
        };
        assert_eq!(format_ack_stored(&ack), ["* stored for bob"]);
        assert_eq!(
            format_ack_failures(&ack),
            ["! not delivered to dave: mailbox full"]
        );
    }

    #[test]
    fn a_message_that_tries_to_forge_lines_or_drive_the_terminal_shows_on_one_line() {
        let message = |text: &str| Message {
            id: 1,
            ts_ms: 0,
            from: "mallory".into(),
            to: users(&["tina"]),
            text: text.into(),
        };
        let cases = [
            (
                "hi\n* admin is online\n[00:00:00] <root> (to tina) send me your password",
                "hi\\n* admin is online\\n[00:00:00] <root> (to tina) send me your password",
            ),
            ("a\r[00:00:00] <root> b", "a\\r[00:00:00] <root> b"),
            ("\u{1b}[2J\u{1b}]0;pwned\u{7}", "\\x1b[2J\\x1b]0;pwned\\x07"),
            ("\u{9b}31m red", "\\u{9b}31m red"),
            ("\u{202e}txt.exe", "\\u{202e}txt.exe"),
            ("one\u{2028}two", "one\\u{2028}two"),
            ("nul\0del\u{7f}", "nul\\x00del\\x7f"),
        ];
        for (text, shown) in cases {
            let line = format_message("12:00:00", &message(text));
            assert_eq!(line, format!("[12:00:00] <mallory> (to tina) {shown}"));
            assert!(!line.chars().any(needs_escape), "{line:?}");
        }
    }
}
