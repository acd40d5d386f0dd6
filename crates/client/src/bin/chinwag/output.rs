//! What the program prints: the lines of `chinwag_protocol::text` for
//! people, or one JSON object per line with `--json`.
//!
//! JSON records, each with a `type`:
//!
//! | `type` | fields |
//! |---|---|
//! | `message` | `id`, `ts` (RFC 3339, UTC), `from`, `to` (list; empty for everyone), `text`; `stored: true` for one that waited in the mailbox |
//! | `mailbox` | `count` (stored messages that follow), `expired` (dropped unread) |
//! | `presence` | `nick`, `online`, `ts` |
//! | `ack` | `id` (the hub's message id), `delivered` (count), `broadcast`, `ok` (everyone got it or has it in its mailbox), `statuses` (`nick`, `status`, `code`) |
//! | `receipt` | `id` (the hub's message id, as in its `ack`), `recipient` (whose client confirmed receiving it), `ts` (when the hub had the confirmation) |
//! | `roster` | `online` (list) |
//! | `users` | `users` (list of `nick`, `online`, `registered`, `last_seen_ms`: milliseconds since the Unix epoch, or null while online or if never seen) |
//! | `user` | a change to the table: `nick`, `online`, `registered`, `last_seen_ms` (neither online nor registered: the row is gone) |
//! | `account` | `action` (`create`, `set password`, `delete`), `nick` |
//! | `error` | `code`, `message`, `reference` |
//! | `disconnected`, `closed` | `reason` |
//! | `reconnected` | `after_ms`, `attempts` |

use chinwag_client::AccountAction;
use chinwag_client::protocol::text;
use chinwag_client::{
    AccountDone, Ack, CloseReason, Code, ErrorFrame, Event, MailboxHeader, Message, Presence,
    Receipt, Recipients, UserEntry,
};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// How to print: for people or for programs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Format {
    pub(crate) json: bool,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Record<'a> {
    Message {
        id: u64,
        ts: String,
        from: &'a str,
        to: &'a [String],
        text: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        stored: bool,
    },
    Gap {
        first: u64,
        last: u64,
        reason: &'static str,
    },
    Mailbox {
        count: u32,
        expired: u32,
    },
    Presence {
        nick: &'a str,
        online: bool,
        ts: String,
    },
    Ack {
        id: u64,
        delivered: u32,
        broadcast: bool,
        ok: bool,
        statuses: Vec<Outcome<'a>>,
    },
    Receipt {
        id: u64,
        recipient: &'a str,
        ts: String,
    },
    Roster {
        online: &'a [String],
    },
    Users {
        users: Vec<Row<'a>>,
    },
    User(Row<'a>),
    Account {
        action: &'static str,
        nick: &'a str,
    },
    Error {
        code: u16,
        message: &'a str,
        reference: u64,
    },
    Disconnected {
        reason: String,
    },
    Reconnected {
        after_ms: u64,
        attempts: u32,
    },
    Closed {
        reason: String,
    },
}

/// A row of the table of users, its flags as fields.
#[derive(Serialize)]
struct Row<'a> {
    nick: &'a str,
    online: bool,
    registered: bool,
    last_seen_ms: Option<u64>,
}

impl<'a> Row<'a> {
    fn new(user: &'a UserEntry) -> Self {
        Self {
            nick: &user.nick,
            online: user.online(),
            registered: user.registered(),
            last_seen_ms: Some(user.last_seen_ms).filter(|&ms| ms != 0),
        }
    }
}

#[derive(Serialize)]
struct Outcome<'a> {
    nick: &'a str,
    status: String,
    code: u16,
}

impl Record<'_> {
    fn to_line(&self) -> String {
        // Serializing these plain records cannot fail: no maps with
        // non-string keys, no failing `Serialize` impls.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Format {
    /// The lines for an event; none for events printed elsewhere
    /// ([`Event::Closed`]) or not at all (for people: the table of users
    /// and its changes, which `/who` shows).
    pub(crate) fn event(self, event: &Event) -> Vec<String> {
        let line = match event {
            Event::Message(message) => self.message(message),
            Event::Stored(message) => self.stored(message),
            Event::Mailbox(header) => return self.mailbox(*header),
            Event::Gap(gap) => self.gap(gap),
            Event::Presence(presence) => self.presence(presence),
            Event::Roster(roster) => self.roster(roster),
            Event::Users(users) if self.json => return self.users(users),
            Event::User(user) if self.json => Record::User(Row::new(user)).to_line(),
            Event::AccountDone(done) => self.account_done(done),
            // Here, nothing says which message it is for: see `receipts.rs`.
            Event::Receipt(receipt) => self.receipt(receipt, false),
            Event::Error(error) => self.error(error),
            Event::Disconnected { reason } => {
                if self.json {
                    Record::Disconnected {
                        reason: reason.to_string(),
                    }
                    .to_line()
                } else {
                    format!("* disconnected ({reason}); reconnecting")
                }
            }
            Event::Reconnected {
                after, attempts, ..
            } => {
                if self.json {
                    Record::Reconnected {
                        after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                        attempts: *attempts,
                    }
                    .to_line()
                } else {
                    format!("* reconnected after {:.1}s", after.as_secs_f64())
                }
            }
            _ => return Vec::new(),
        };
        vec![line]
    }

    pub(crate) fn message(self, message: &Message) -> String {
        if self.json {
            message_record(message, false)
        } else {
            text::format_message(&clock(message.ts_ms), message)
        }
    }

    /// A message that waited in the mailbox: `[Tue 18:02] <carol> see you
    /// (while you were away)`.
    fn stored(self, message: &Message) -> String {
        if self.json {
            message_record(message, true)
        } else {
            text::format_stored_message(&day_clock(message.ts_ms), message)
        }
    }

    /// `* messages 7 to 9 for you were lost: mailbox full` (a reliable
    /// session's numbers that will never come).
    fn gap(self, gap: &chinwag_client::Gap) -> String {
        let reason = gap.reason.description().unwrap_or("lost");
        if self.json {
            Record::Gap {
                first: gap.first,
                last: gap.last,
                reason,
            }
            .to_line()
        } else if gap.first == gap.last {
            format!("* message {} for you was lost: {reason}", gap.first)
        } else {
            format!(
                "* messages {} to {} for you were lost (those not shown): {reason}",
                gap.first, gap.last
            )
        }
    }

    /// `* 2 messages while you were away`, `* 3 messages expired unread`;
    /// for people, nothing for an empty mailbox.
    fn mailbox(self, header: MailboxHeader) -> Vec<String> {
        if self.json {
            let record = Record::Mailbox {
                count: header.count,
                expired: header.expired,
            };
            vec![record.to_line()]
        } else {
            text::format_mailbox(&header)
        }
    }

    /// The table of users: one line per user for people, one record for
    /// programs.
    pub(crate) fn users(self, users: &[UserEntry]) -> Vec<String> {
        if self.json {
            let users = users.iter().map(Row::new).collect();
            vec![Record::Users { users }.to_line()]
        } else {
            users
                .iter()
                .map(|user| text::format_user(user, &day_clock(user.last_seen_ms)))
                .collect()
        }
    }

    pub(crate) fn account_done(self, done: &AccountDone) -> String {
        if self.json {
            Record::Account {
                action: done.action.describe(),
                nick: &done.nick,
            }
            .to_line()
        } else {
            let nick = text::visible(&done.nick);
            match done.action {
                AccountAction::Create => format!("* account {nick} created"),
                AccountAction::SetPassword => format!("* password changed for {nick}"),
                AccountAction::Delete => format!("* account {nick} deleted"),
            }
        }
    }

    /// A receipt: `* received by bob 12:03:11` (local time), for a message
    /// this program sent (`sent_here`), and with the message's id for one
    /// sent before it started (a message stored for days, confirmed at its
    /// owner's login).
    pub(crate) fn receipt(self, receipt: &Receipt, sent_here: bool) -> String {
        if self.json {
            return Record::Receipt {
                id: receipt.message_id,
                recipient: &receipt.recipient,
                ts: rfc3339(receipt.received_ms),
            }
            .to_line();
        }
        let line = format!(
            "* received by {} {}",
            text::visible(&receipt.recipient),
            clock(receipt.received_ms)
        );
        if sent_here {
            line
        } else {
            format!("{line} (message {}, sent earlier)", receipt.message_id)
        }
    }

    fn presence(self, presence: &Presence) -> String {
        if self.json {
            Record::Presence {
                nick: &presence.nick,
                online: presence.online,
                ts: rfc3339(presence.ts_ms),
            }
            .to_line()
        } else {
            text::format_presence(presence)
        }
    }

    pub(crate) fn roster(self, roster: &[String]) -> String {
        if self.json {
            Record::Roster { online: roster }.to_line()
        } else {
            text::format_roster(roster)
        }
    }

    fn error(self, error: &ErrorFrame) -> String {
        if self.json {
            Record::Error {
                code: error.code.0,
                message: &error.message,
                reference: error.reference,
            }
            .to_line()
        } else {
            format!("! {}", text::visible(&error.message))
        }
    }

    /// The JSON record of how the session ended (people get a line on
    /// stderr instead).
    pub(crate) fn closed_record(reason: &CloseReason) -> String {
        Record::Closed {
            reason: reason.to_string(),
        }
        .to_line()
    }

    /// The lines for an ack. `all` also reports recipients that got the
    /// message (`send`, piped `chat`); otherwise only failures are shown, as
    /// in an interactive chat where silence means it went through.
    pub(crate) fn ack(self, ack: &Ack, all: bool) -> Vec<String> {
        if self.json {
            let statuses = ack
                .statuses()
                .iter()
                .map(|s| Outcome {
                    nick: &s.nick,
                    status: s.status.to_string(),
                    code: s.status.0,
                })
                .collect();
            let record = Record::Ack {
                id: ack.message_id(),
                delivered: ack.delivered(),
                broadcast: ack.is_broadcast(),
                ok: ack.is_ok(),
                statuses,
            };
            return vec![record.to_line()];
        }
        let mut lines = Vec::new();
        if all {
            if ack.is_broadcast() {
                let n = ack.delivered();
                let users = if n == 1 { "user" } else { "users" };
                lines.push(format!("* delivered to {n} {users}"));
            } else {
                lines.extend(
                    ack.statuses()
                        .iter()
                        .filter(|s| s.status == Code::DELIVERED)
                        .map(|s| format!("* delivered to {}", text::visible(&s.nick))),
                );
            }
        }
        // Said even where silence means delivered: the recipient has not
        // read it yet.
        lines.extend(text::format_ack_stored(ack.frame()));
        lines.extend(text::format_ack_failures(ack.frame()));
        lines
    }
}

fn message_record(message: &Message, stored: bool) -> String {
    let to = match &message.to {
        Recipients::Users(to) => to.as_slice(),
        Recipients::Everyone => &[],
    };
    Record::Message {
        id: message.id,
        ts: rfc3339(message.ts_ms),
        from: &message.from,
        to,
        text: &message.text,
        stored,
    }
    .to_line()
}

/// The day and time in the local time zone, for what may be days old (a
/// stored message, when someone was last seen): `Tue 18:02` within the
/// last six days, `Tue 3 Nov 18:02` before, so that a weekday never
/// stands for two dates.
pub(crate) fn day_clock(ts_ms: u64) -> String {
    let Some(ts) = timestamp(ts_ms) else {
        return text::utc_clock(ts_ms);
    };
    let zoned = ts.to_zoned(TimeZone::system());
    let recent = Timestamp::now().duration_since(ts) < SignedDuration::from_hours(6 * 24);
    let pattern = if recent {
        "%a %H:%M"
    } else {
        "%a %-d %b %H:%M"
    };
    zoned.strftime(pattern).to_string()
}

/// `HH:MM:SS` in the local time zone (from `TZ` or the system's setting;
/// UTC when neither is known), for people.
pub(crate) fn clock(ts_ms: u64) -> String {
    match timestamp(ts_ms) {
        Some(ts) => ts
            .to_zoned(TimeZone::system())
            .strftime("%H:%M:%S")
            .to_string(),
        None => text::utc_clock(ts_ms),
    }
}

/// RFC 3339 in UTC with milliseconds (`2026-01-02T03:04:05.678Z`), for
/// programs: a fixed width, so that the strings also sort by time.
fn rfc3339(ts_ms: u64) -> String {
    timestamp(ts_ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S.%3fZ")
        .to_string()
}

fn timestamp(ts_ms: u64) -> Option<Timestamp> {
    Timestamp::from_millisecond(i64::try_from(ts_ms).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_messages_carry_the_documented_fields() {
        let message = Message {
            id: 7,
            ts_ms: 1_700_000_000_123,
            from: "alice".into(),
            to: Recipients::Everyone,
            text: "hi \"all\"".into(),
        };
        let line = Format { json: true }.message(&message);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["type"], "message");
        assert_eq!(value["id"], 7);
        assert_eq!(value["ts"], "2023-11-14T22:13:20.123Z");
        assert_eq!(value["from"], "alice");
        assert_eq!(value["to"], serde_json::json!([]));
        assert_eq!(value["text"], "hi \"all\"");
    }

    #[test]
    fn stored_messages_and_the_table_read_as_documented() {
        let message = Message {
            id: 7,
            ts_ms: 1_700_000_000_123,
            from: "carol".into(),
            to: Recipients::Users(vec!["bob".into()]),
            text: "see you".into(),
        };
        let line = Format { json: true }.stored(&message);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["type"], "message");
        assert_eq!(value["stored"], true);
        // Live messages do not carry the field.
        let line = Format { json: true }.message(&message);
        assert!(!line.contains("stored"), "{line}");

        let people = Format { json: false }.stored(&message);
        assert!(
            people.ends_with("> (to bob) see you  (while you were away)"),
            "{people}"
        );
        assert!(people.starts_with('['), "{people}");

        let users = [
            UserEntry {
                flags: chinwag_client::user_flags::REGISTERED,
                last_seen_ms: 1_700_000_000_123,
                nick: "bob".into(),
            },
            UserEntry {
                flags: chinwag_client::user_flags::ONLINE,
                last_seen_ms: 0,
                nick: "dave".into(),
            },
        ];
        let lines = Format { json: true }.users(&users);
        let value: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(value["type"], "users");
        assert_eq!(
            value["users"],
            serde_json::json!([
                {"nick": "bob", "online": false, "registered": true, "last_seen_ms": 1_700_000_000_123_u64},
                {"nick": "dave", "online": true, "registered": false, "last_seen_ms": null},
            ])
        );
        let lines = Format { json: false }.users(&users);
        assert!(
            lines[0].starts_with("* bob is offline, last seen "),
            "{lines:?}"
        );
        assert_eq!(lines[1], "* dave is online (guest)");
    }

    #[test]
    fn receipts_read_as_documented() {
        let receipt = Receipt {
            message_id: 12,
            received_ms: 1_700_000_000_123,
            recipient: "bob".into(),
        };
        let line = Format { json: true }.receipt(&receipt, true);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"type": "receipt", "id": 12, "recipient": "bob", "ts": "2023-11-14T22:13:20.123Z"})
        );
        let people = Format { json: false };
        let at = clock(1_700_000_000_123);
        assert_eq!(
            people.receipt(&receipt, true),
            format!("* received by bob {at}")
        );
        assert_eq!(
            people.receipt(&receipt, false),
            format!("* received by bob {at} (message 12, sent earlier)")
        );
        // A nickname is shown as any text from the hub is.
        let odd = Receipt {
            recipient: "b\x1bob".into(),
            ..receipt
        };
        assert!(!people.receipt(&odd, true).contains('\x1b'));
    }

    #[test]
    fn day_clock_names_the_day_and_the_date_when_it_is_old() {
        let now = u64::try_from(Timestamp::now().as_millisecond()).unwrap();
        let recent = day_clock(now);
        // `Tue 18:02`
        assert_eq!(recent.len(), 9, "{recent}");
        let old = day_clock(1_700_000_000_123);
        // `Tue 14 Nov 22:13`, whatever the zone's day.
        assert!(old.contains(" Nov "), "{old}");
        assert!(old.len() >= 15, "{old}");
    }

    #[test]
    fn clock_is_a_time_of_day_and_ts_is_rfc3339() {
        // Whatever the zone, it is a time of day.
        let clock = clock(1_700_000_000_123);
        assert_eq!(clock.len(), 8, "{clock}");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_120), "2023-11-14T22:13:20.120Z");
    }
}
