//! The receipts kept for one account as their owner: the index's map for
//! each account (`index.rs`), found by message id and recipient.
//!
//! A receipt is kept when its message is confirmed and forgotten when its
//! owner confirms it, milliseconds later for a reliable session. A
//! recipient confirms its messages in the order it was sent them, so an
//! owner's receipts nearly always come in message order, and leave it
//! oldest first: pushed at the back of an [`IdMap`] and taken from its
//! front, both within a few cache lines. One that comes out of order (a
//! message to several recipients, one of them behind the others) goes to
//! an ordered map beside it, so that no order of confirmations costs more
//! than a walk down a tree. In a `BTreeMap` alone (before), every receipt
//! cost that walk twice, and its removal a rebalance: a fifteenth of the
//! daemon's samples under `bench direct --reliable`. A hash table was
//! worse still: a receipt's slot is a cache miss wherever the hash puts it.

use std::collections::BTreeMap;

use smallvec::SmallVec;

use crate::id_map::IdMap;
use crate::index::{Name, ReceiptRow};

/// The receipts for one message: each one's row and recipient. A message
/// has one recipient nearly always.
type Rows = SmallVec<[(ReceiptRow, Name); 1]>;

#[derive(Debug, Clone, Default)]
pub(crate) struct KeptReceipts {
    /// Those that came in message order.
    in_order: IdMap<Rows>,
    /// Those that came after a later message's.
    out_of_order: BTreeMap<(u64, ReceiptRow), Name>,
    /// How many receipts there are.
    count: u64,
}

impl KeptReceipts {
    /// How many receipts are kept.
    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Keeps the receipt of `message_id` by `recipient` at `row` (one at
    /// that row already is replaced).
    pub(crate) fn insert(&mut self, message_id: u64, row: ReceiptRow, recipient: Name) {
        if let Some(kept) = self.out_of_order.get_mut(&(message_id, row)) {
            *kept = recipient;
            return;
        }
        // Nearly always the receipt of a message after every other kept,
        // which the map answers at a glance as not held, and pushed at the
        // back.
        if let Some(rows) = self.in_order.get_mut(message_id) {
            if let Some(kept) = rows.iter_mut().find(|(at, _)| *at == row) {
                kept.1 = recipient;
            } else {
                rows.push((row, recipient));
                self.count += 1;
            }
            return;
        }
        if (self.in_order.last_key()).is_none_or(|last| last < message_id) {
            let mut rows = Rows::new();
            rows.push((row, recipient));
            self.in_order.insert(message_id, rows);
        } else {
            self.out_of_order.insert((message_id, row), recipient);
        }
        self.count += 1;
    }

    /// The row of a receipt of `message_id` by `recipient`.
    pub(crate) fn find(&self, message_id: u64, recipient: &str) -> Option<ReceiptRow> {
        let in_order = (self.in_order.get(message_id))
            .and_then(|rows| rows.iter().find(|(_, name)| **name == *recipient))
            .map(|(row, _)| *row);
        in_order.or_else(|| {
            if self.out_of_order.is_empty() {
                return None;
            }
            let first = (message_id, ReceiptRow::Kept(i64::MIN));
            (self.out_of_order.range(first..))
                .take_while(|((id, _), _)| *id == message_id)
                .find(|(_, name)| ***name == *recipient)
                .map(|((_, row), _)| *row)
        })
    }

    /// The recipient of the receipt of `message_id` at `row`.
    pub(crate) fn get(&self, message_id: u64, row: ReceiptRow) -> Option<&Name> {
        let in_order = (self.in_order.get(message_id))
            .and_then(|rows| rows.iter().find(|(at, _)| *at == row))
            .map(|(_, name)| name);
        in_order.or_else(|| self.out_of_order.get(&(message_id, row)))
    }

    /// Takes out the receipt of `message_id` at `row`, answering its
    /// recipient.
    pub(crate) fn remove(&mut self, message_id: u64, row: ReceiptRow) -> Option<Name> {
        let taken = match self.in_order.get_mut(message_id) {
            Some(rows) => match rows.iter().position(|(at, _)| *at == row) {
                Some(at) => {
                    let (_, recipient) = rows.swap_remove(at);
                    if rows.is_empty() {
                        self.in_order.remove(message_id);
                    }
                    Some(recipient)
                }
                None => None,
            },
            None => None,
        };
        let taken = taken.or_else(|| self.out_of_order.remove(&(message_id, row)))?;
        self.count -= 1;
        Some(taken)
    }

    /// Every receipt as message id, row and recipient, oldest message
    /// first (and within one message, by row).
    pub(crate) fn sorted(&self) -> Vec<(u64, ReceiptRow, Name)> {
        let in_order = (self.in_order.iter())
            .flat_map(|(id, rows)| (rows.iter()).map(move |(row, name)| (id, *row, name.clone())));
        let out_of_order =
            (self.out_of_order.iter()).map(|(&(id, row), name)| (id, row, name.clone()));
        let mut all: Vec<(u64, ReceiptRow, Name)> = in_order.chain(out_of_order).collect();
        all.sort_unstable_by_key(|(id, row, _)| (*id, *row));
        all
    }

    /// Forgets them all.
    pub(crate) fn clear(&mut self) {
        self.in_order = IdMap::default();
        self.out_of_order.clear();
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn name(nick: &str) -> Name {
        Arc::from(nick)
    }

    fn batch(at: u32) -> ReceiptRow {
        ReceiptRow::Batch {
            row: 3,
            at,
            received_ms: 7,
        }
    }

    fn order(kept: &KeptReceipts) -> Vec<(u64, ReceiptRow)> {
        (kept.sorted().into_iter())
            .map(|(id, row, _)| (id, row))
            .collect()
    }

    #[test]
    fn receipts_in_and_out_of_order_are_found_and_read_in_message_order() {
        let mut kept = KeptReceipts::default();
        kept.insert(20, batch(0), name("bob"));
        // Before the last: beside the ring.
        kept.insert(10, batch(40), name("bob"));
        // A second recipient of a message in the ring joins it there.
        kept.insert(20, ReceiptRow::Kept(5), name("cat"));
        kept.insert(30, batch(80), name("bob"));
        assert_eq!(kept.len(), 4);
        assert_eq!(kept.out_of_order.len(), 1);
        // The same row again replaces, and counts once.
        kept.insert(10, batch(40), name("bob"));
        kept.insert(20, batch(0), name("bob"));
        assert_eq!(kept.len(), 4);
        assert_eq!(kept.find(20, "cat"), Some(ReceiptRow::Kept(5)));
        assert_eq!(kept.find(20, "bob"), Some(batch(0)));
        assert_eq!(kept.find(10, "bob"), Some(batch(40)));
        assert_eq!((kept.find(20, "dan"), kept.find(15, "bob")), (None, None));
        assert_eq!(kept.get(10, batch(40)).map(|n| &**n), Some("bob"));
        assert_eq!(kept.get(20, ReceiptRow::Kept(5)).map(|n| &**n), Some("cat"));
        assert_eq!(kept.get(10, batch(41)), None);
        assert_eq!(
            order(&kept),
            [
                (10, batch(40)),
                (20, ReceiptRow::Kept(5)),
                (20, batch(0)),
                (30, batch(80))
            ]
        );
        // Taken out one at a time, from either.
        assert_eq!(kept.remove(20, batch(0)).as_deref(), Some("bob"));
        assert_eq!(kept.remove(20, batch(0)), None);
        assert_eq!(kept.remove(10, batch(40)).as_deref(), Some("bob"));
        assert_eq!(kept.remove(20, ReceiptRow::Kept(5)).as_deref(), Some("cat"));
        assert_eq!(kept.len(), 1);
        assert_eq!(order(&kept), [(30, batch(80))]);
        kept.clear();
        assert_eq!((kept.len(), kept.sorted().len()), (0, 0));
    }

    #[test]
    fn a_receipt_kept_twice_is_found_until_both_are_taken_out() {
        let mut kept = KeptReceipts::default();
        kept.insert(9, ReceiptRow::Kept(1), name("bob"));
        kept.insert(12, ReceiptRow::Kept(2), name("bob"));
        // Message 9's ring slot has gone: the second goes beside it.
        kept.remove(9, ReceiptRow::Kept(1));
        kept.insert(9, ReceiptRow::Kept(3), name("bob"));
        kept.insert(9, ReceiptRow::Kept(4), name("bob"));
        let mut taken = Vec::new();
        while let Some(row) = kept.find(9, "bob") {
            assert!(kept.remove(9, row).is_some());
            taken.push(row);
        }
        taken.sort();
        assert_eq!(taken, [ReceiptRow::Kept(3), ReceiptRow::Kept(4)]);
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn any_order_of_keeping_and_taking_out_matches_an_ordered_map() {
        // A small deterministic generator: no dependency for a shuffle.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        let mut kept = KeptReceipts::default();
        let mut model: BTreeMap<(u64, ReceiptRow), Name> = BTreeMap::new();
        let names = ["bob", "cat", "dan"].map(name);
        for step in 0..20_000 {
            let id = next(300) + step / 100;
            let row = ReceiptRow::Kept(i64::try_from(next(4)).unwrap_or(0));
            let who = names[usize::try_from(next(3)).unwrap_or(0)].clone();
            if next(3) == 0 {
                assert_eq!(kept.remove(id, row), model.remove(&(id, row)));
            } else {
                kept.insert(id, row, who.clone());
                model.insert((id, row), who);
            }
            assert_eq!(kept.len(), model.len() as u64);
        }
        let all: Vec<(u64, ReceiptRow, Name)> = (model.iter())
            .map(|(&(id, row), name)| (id, row, name.clone()))
            .collect();
        assert_eq!(kept.sorted(), all);
        for (&(id, row), name) in &model {
            assert_eq!(kept.get(id, row), Some(name));
        }
    }
}
