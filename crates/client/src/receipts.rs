//! The receipts a reliable session has handed to the application, so that
//! one the hub sends again is not handed over twice.
//!
//! The hub keeps a reliable session's receipts until its client confirms
//! them (`CONFIRM_RECEIPTS`, `docs/protocol.md` section 8.10): one sent on
//! a connection that dropped before its confirmation comes again at the
//! next login. The client remembers the receipts it handed over, the newest
//! [`REMEMBERED`] of them, confirms one that comes again, and does not hand
//! it over again.

use std::collections::{HashSet, VecDeque};

use chinwag_protocol::ReceiptKey;

/// Receipts remembered at most: as many as the hub remembers unconfirmed
/// messages per connection, far more than one connection's worth of
/// receipts in flight.
pub(crate) const REMEMBERED: usize = 65_536;

/// The receipts handed over, newest last.
#[derive(Debug, Default)]
pub(crate) struct SeenReceipts {
    seen: HashSet<ReceiptKey>,
    order: VecDeque<ReceiptKey>,
}

impl SeenReceipts {
    /// Whether `key` comes for the first time; remembers it either way.
    pub(crate) fn first_time(&mut self, key: &ReceiptKey) -> bool {
        if self.seen.contains(key) {
            return false;
        }
        if self.order.len() == REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(key.clone());
        self.order.push_back(key.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(message_id: u64, recipient: &str) -> ReceiptKey {
        ReceiptKey {
            message_id,
            recipient: recipient.to_owned(),
        }
    }

    #[test]
    fn a_receipt_is_new_once_per_message_and_recipient() {
        let mut seen = SeenReceipts::default();
        assert!(seen.first_time(&key(1, "bob")));
        assert!(seen.first_time(&key(1, "carol")));
        assert!(seen.first_time(&key(2, "bob")));
        assert!(!seen.first_time(&key(1, "bob")));
        assert!(!seen.first_time(&key(1, "carol")));
    }

    #[test]
    fn the_oldest_are_forgotten_past_the_bound() {
        let mut seen = SeenReceipts::default();
        for id in 0..=REMEMBERED as u64 {
            assert!(seen.first_time(&key(id, "bob")));
        }
        assert!(seen.first_time(&key(0, "bob")), "the oldest was forgotten");
        assert!(!seen.first_time(&key(REMEMBERED as u64, "bob")));
        assert_eq!(seen.order.len(), REMEMBERED);
    }
}
