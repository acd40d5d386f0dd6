//! What the program prints: the lines of `chinwag_protocol::text` for
//! people, or one JSON object per line with `--json`.
//!
//! JSON records, each with a `type`:
//!
//! | `type` | fields |
//! |---|---|
//! | `message` | `id`, `ts` (RFC 3339, UTC), `from`, `to` (list; empty for everyone), `text` |
//! | `presence` | `nick`, `online`, `ts` |
//! | `ack` | `id` (the hub's message id), `delivered` (count), `broadcast`, `ok` (everyone got it), `statuses` (`nick`, `status`, `code`) |
//! | `roster` | `online` (list) |
//! | `error` | `code`, `message`, `reference` |
//! | `disconnected`, `closed` | `reason` |
//! | `reconnected` | `after_ms`, `attempts` |

use chinwag_client::protocol::text;
use chinwag_client::{Ack, CloseReason, Code, ErrorFrame, Event, Message, Presence, Recipients};
use jiff::Timestamp;
use jiff::tz::TimeZone;
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
    Roster {
        online: &'a [String],
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
    /// The line for an event; `None` for events printed elsewhere
    /// ([`Event::Closed`]) or not at all.
    pub(crate) fn event(self, event: &Event) -> Option<String> {
        Some(match event {
            Event::Message(message) => self.message(message),
            Event::Presence(presence) => self.presence(presence),
            Event::Roster(roster) => self.roster(roster),
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
            _ => return None,
        })
    }

    pub(crate) fn message(self, message: &Message) -> String {
        if self.json {
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
            }
            .to_line()
        } else {
            text::format_message(&clock(message.ts_ms), message)
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
                ok: ack.all_delivered(),
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
        lines.extend(text::format_ack_failures(ack.frame()));
        lines
    }
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
    fn clock_is_a_time_of_day_and_ts_is_rfc3339() {
        // Whatever the zone, it is a time of day.
        let clock = clock(1_700_000_000_123);
        assert_eq!(clock.len(), 8, "{clock}");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_120), "2023-11-14T22:13:20.120Z");
    }
}
