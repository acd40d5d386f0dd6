//! What the program does with receipts (`docs/protocol.md`, section 8.10):
//! `chat` tells the receipts for the messages it sent from others ([`Sent`]),
//! and `send --wait received` waits for every recipient's ([`wait`]).
//!
//! A receipt names a message by the hub's id, which the sender learns from
//! the message's ack. The hub sends the `ACK` before any `RECEIPT` for the
//! message, and the client library answers the ack before it hands the
//! receipt over as an event; but a program waiting for both may see the
//! event first, so `chat` takes every answer already in before it prints a
//! receipt.

use std::collections::{HashSet, VecDeque};
use std::process::ExitCode;
use std::time::Duration;

use chinwag_client::protocol::text;
use chinwag_client::{Ack, Code, Event, Events, Receipt};

use crate::commands::report_close;
use crate::output::Format;
use crate::{EXIT_NOT_DELIVERED, EXIT_NOT_RECEIVED, duration, print_line};

/// Message ids a chat remembers having sent: far more than a person has
/// waiting for receipts at once; past it the oldest are forgotten, and
/// their late receipts read as for a message sent earlier.
const REMEMBERED: usize = 4_096;

/// The messages this program sent to named users that reached someone, by
/// the hub's id, so that a receipt can say it is for one of them.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    ids: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Sent {
    /// Remembers the message of `ack` if a receipt can come for it: to
    /// named users, delivered or stored for at least one.
    pub(crate) fn remember(&mut self, ack: &Ack) {
        let reached = ack
            .statuses()
            .iter()
            .any(|s| s.status == Code::DELIVERED || s.status == Code::STORED);
        if !ack.is_broadcast() && reached {
            self.insert(ack.message_id());
        }
    }

    fn insert(&mut self, id: u64) {
        if !self.ids.insert(id) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
    }

    /// The line for a receipt: `* received by bob 12:03:11` for one of
    /// these messages.
    pub(crate) fn line(&self, format: Format, receipt: &Receipt) -> String {
        format.receipt(receipt, self.ids.contains(&receipt.message_id))
    }
}

/// `send --wait received`: prints each receipt for the message of `ack`
/// as it comes, and answers 0 once every recipient's has come,
/// [`EXIT_NOT_RECEIVED`] (saying who did not confirm) if `timeout` passes
/// first, and [`EXIT_NOT_DELIVERED`] if the session ends first. `ack` is
/// of a message to named users that reached every one of them.
pub(crate) async fn wait(
    ack: &Ack,
    events: &mut Events,
    timeout: Duration,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let mut waiting: Vec<&str> = ack.statuses().iter().map(|s| s.nick.as_str()).collect();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    while !waiting.is_empty() {
        let event = tokio::select! {
            () = &mut deadline => {
                let names: Vec<_> = waiting.iter().map(|nick| text::visible(nick)).collect();
                eprintln!(
                    "chinwag: no receipt within {} from {}: not confirmed by their client \
                     (offline, or not confirming what it receives)",
                    duration::show(timeout),
                    names.join(", ")
                );
                return Ok(ExitCode::from(EXIT_NOT_RECEIVED));
            }
            event = events.recv() => event,
        };
        match event {
            Some(Event::Receipt(receipt)) if receipt.message_id == ack.message_id() => {
                let at = waiting
                    .iter()
                    .position(|nick| nick.eq_ignore_ascii_case(&receipt.recipient));
                // A recipient's second receipt for it says nothing new.
                if let Some(at) = at {
                    waiting.remove(at);
                    print_line(&format.receipt(&receipt, true))?;
                }
            }
            // For a message this nickname sent before, stored for its
            // recipient until now: said, or it would be lost.
            Some(Event::Receipt(receipt)) => print_line(&format.receipt(&receipt, false))?,
            Some(Event::Closed { reason }) => return Ok(report_close(&reason, format)?),
            Some(_) => {}
            None => return Ok(ExitCode::from(EXIT_NOT_DELIVERED)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_says_whether_it_is_for_a_message_sent_here() {
        let mut sent = Sent::default();
        sent.insert(7);
        let receipt = |message_id| Receipt {
            message_id,
            received_ms: 0,
            recipient: "bob".into(),
        };
        let people = Format { json: false };
        assert!(!sent.line(people, &receipt(7)).contains("sent earlier"));
        assert!(
            sent.line(people, &receipt(6))
                .contains("(message 6, sent earlier)")
        );
    }

    #[test]
    fn remembers_a_bounded_number_of_messages() {
        let mut sent = Sent::default();
        for id in 1..=u64::try_from(REMEMBERED).unwrap() + 1 {
            sent.insert(id);
        }
        assert_eq!(sent.ids.len(), REMEMBERED);
        assert!(!sent.ids.contains(&1));
        assert!(sent.ids.contains(&2));
    }
}
