//! A map keyed by hub message id, for entries made in id order and taken
//! out in about the same order: what waits for the store, what a
//! confirming connection owes receipts for, and the stored messages a
//! reliable session was given and has not confirmed.
//!
//! The hub's ids grow, so adding is a push at the back and taking the
//! oldest a pop at the front; one taken out of order is found by binary
//! search and its slot left empty until it reaches the front. Held in a
//! hash table, these were a cache miss each: the actor's handling of the
//! store's answers for reliable sessions was mostly waiting on memory
//! (`docs/performance.md`). Walked in id order, they are next to each other.

use std::cell::Cell;
use std::collections::VecDeque;

/// Empty slots are dropped once there are more of them than this and than
/// live ones.
const MIN_COMPACT: usize = 64;

#[derive(Debug)]
pub(super) struct IdRing<T> {
    ring: VecDeque<(u64, Option<T>)>,
    /// Slots still holding a value.
    live: usize,
    /// The slot last found: it and the one after it are tried before a
    /// search.
    last: Cell<usize>,
}

impl<T> Default for IdRing<T> {
    fn default() -> Self {
        Self {
            ring: VecDeque::new(),
            live: 0,
            last: Cell::new(0),
        }
    }
}

impl<T> IdRing<T> {
    /// Where `id`'s slot is (or would be, in order). The ids only grow,
    /// so `id` is at most `id - first` slots from the front, and exactly
    /// there while they are dense (a reliable session's messages, routed
    /// one after the other): looked at first, then searched below it. A
    /// binary search of the whole ring was a cache miss a step, two
    /// fifths of the actor's own time acting on the store's answers.
    fn at(&self, id: u64) -> usize {
        let (Some(&(first, _)), Some(&(newest, _))) = (self.ring.front(), self.ring.back()) else {
            return 0;
        };
        // An id after every one held is not held, at a glance: a session's
        // copies given (`stored_out`) are looked up as each new one comes,
        // and that look was a search of the whole ring for every
        // message, 500,000 a run of `bench direct --reliable` (counted).
        if id > newest {
            return self.ring.len();
        }
        let Some(past) = id.checked_sub(first) else {
            return 0;
        };
        let end = usize::try_from(past).map_or(self.ring.len(), |past| past.min(self.ring.len()));
        let is_at = |at: usize| self.ring.get(at).is_some_and(|(held, _)| *held == id);
        if is_at(end) {
            return end;
        }
        // Ids are nearly always looked up in order, and one never taken
        // out (a message its recipient does not confirm) keeps the front
        // behind them, so that `end` misses: the slot after the last one
        // found is tried next. Searched for (before), each receipt owed to
        // a connection that left a message unconfirmed cost a binary search
        // of its ring, a cache miss a step: 7.5% of the daemon's samples
        // under `bench direct --receipts`, whose warm-up messages are not
        // confirmed.
        let last = self.last.get();
        for at in [last, last + 1] {
            if at < end && is_at(at) {
                self.last.set(at);
                return at;
            }
        }
        // The first slot in `..end` whose id is not below `id` (`end` if
        // none is).
        let (mut low, mut high) = (0, end);
        while low < high {
            let mid = low + (high - low) / 2;
            if self.ring[mid].0 < id {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        if is_at(low) {
            self.last.set(low);
        }
        low
    }

    /// Sets `id`'s value, answering the one it replaces.
    pub(super) fn insert(&mut self, id: u64, value: T) -> Option<T> {
        if self.ring.back().is_none_or(|(last, _)| *last < id) {
            self.ring.push_back((id, Some(value)));
            self.live += 1;
            return None;
        }
        // Not after the last: kept in order all the same.
        let at = self.at(id);
        match self.ring.get_mut(at) {
            Some((held, slot)) if *held == id => {
                let old = slot.replace(value);
                if old.is_none() {
                    self.live += 1;
                }
                old
            }
            _ => {
                self.ring.insert(at, (id, Some(value)));
                self.live += 1;
                None
            }
        }
    }

    pub(super) fn get(&self, id: u64) -> Option<&T> {
        match self.ring.get(self.at(id)) {
            Some((held, slot)) if *held == id => slot.as_ref(),
            _ => None,
        }
    }

    /// Takes `id`'s value out.
    pub(super) fn remove(&mut self, id: u64) -> Option<T> {
        let at = self.at(id);
        let taken = match self.ring.get_mut(at) {
            Some((held, slot)) if *held == id => slot.take(),
            _ => None,
        };
        if taken.is_some() {
            self.live -= 1;
            self.trim();
            self.compact();
        }
        taken
    }

    /// Takes the oldest value out.
    pub(super) fn pop_oldest(&mut self) -> Option<(u64, T)> {
        self.trim();
        let (id, value) = self.ring.pop_front()?;
        self.live -= 1;
        self.trim();
        value.map(|value| (id, value))
    }

    /// Drops the empty slots at the front.
    fn trim(&mut self) {
        while self.ring.front().is_some_and(|(_, slot)| slot.is_none()) {
            self.ring.pop_front();
            self.last.set(self.last.get().saturating_sub(1));
        }
    }

    /// Drops every empty slot, once they outnumber the live ones: behind a
    /// value never taken out, they would otherwise pile up until it is.
    fn compact(&mut self) {
        let empty = self.ring.len() - self.live;
        if empty > MIN_COMPACT && empty > self.live {
            self.ring.retain(|(_, slot)| slot.is_some());
            self.last.set(0);
        }
    }

    /// Adds the ids of `ids` it does not hold, each with `value()`, and
    /// answers those it added, in id order. Many ids older than those held
    /// (a mailbox read at a login, after live messages) are merged in one
    /// pass: added one at a time, each would shift all the ones before it.
    pub(super) fn add_missing(
        &mut self,
        ids: impl IntoIterator<Item = u64>,
        value: impl Fn() -> T,
    ) -> Vec<u64> {
        let mut added: Vec<u64> = ids
            .into_iter()
            .filter(|id| self.get(*id).is_none())
            .collect();
        added.sort_unstable();
        added.dedup();
        if added
            .first()
            .is_some_and(|first| self.ring.back().is_none_or(|(last, _)| last < first))
        {
            self.ring
                .extend(added.iter().map(|id| (*id, Some(value()))));
        } else {
            let old = std::mem::take(&mut self.ring);
            let mut old = old.into_iter().peekable();
            let mut new = added.iter().peekable();
            let mut ring = VecDeque::with_capacity(old.len() + new.len());
            loop {
                let take_old = match (old.peek(), new.peek()) {
                    (Some((held, _)), Some(id)) => held < *id,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => break,
                };
                if take_old {
                    ring.extend(old.next());
                } else {
                    ring.extend(new.next().map(|id| (*id, Some(value()))));
                }
            }
            self.ring = ring;
        }
        self.live += added.len();
        added
    }

    pub(super) fn len(&self) -> usize {
        self.live
    }

    pub(super) fn is_empty(&self) -> bool {
        self.live == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_by_id_in_and_out_of_order() {
        let mut ring = IdRing::default();
        for id in [3, 5, 9] {
            assert_eq!(ring.insert(id, id * 10), None);
        }
        // Out of order: kept in order all the same.
        assert_eq!(ring.insert(4, 40), None);
        assert_eq!(ring.insert(5, 55), Some(50));
        assert_eq!((ring.get(4), ring.get(6)), (Some(&40), None));
        assert_eq!(ring.remove(5), Some(55));
        assert_eq!(ring.remove(5), None);
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.pop_oldest(), Some((3, 30)));
        assert_eq!(ring.remove(4), Some(40));
        // Emptied at the front: the empty slot of 5 went with it.
        assert_eq!(ring.ring.len(), 1);
        assert_eq!(ring.pop_oldest(), Some((9, 90)));
        assert!(ring.is_empty() && ring.pop_oldest().is_none());
    }

    #[test]
    fn behind_a_value_never_taken_out_the_rest_come_and_go_and_do_not_pile_up() {
        let mut ring = IdRing::default();
        // Sparse ids, as one connection's among everyone's; the first is
        // never taken out.
        let ids: Vec<u64> = (0..10_000).map(|n| 7 + n * 100).collect();
        for &id in &ids {
            ring.insert(id, id * 2);
        }
        for &id in &ids[1..] {
            assert_eq!(ring.get(id), Some(&(id * 2)));
            assert_eq!(ring.remove(id), Some(id * 2));
            assert_eq!(ring.remove(id), None);
            let slots = ring.ring.len();
            assert!(slots <= 2 * ring.len() + MIN_COMPACT + 1, "{slots}");
        }
        assert_eq!((ring.len(), ring.get(7)), (1, Some(&14)));
        assert!(ring.ring.len() <= MIN_COMPACT + 1);
        // Out of order and in the middle still work, and what is not held
        // is not found.
        for id in [500, 300, 400, 200] {
            ring.insert(id, id);
        }
        assert_eq!(ring.get(250), None);
        assert_eq!(ring.remove(300), Some(300));
        assert_eq!(ring.remove(200), Some(200));
        assert_eq!(ring.get(400), Some(&400));
        assert_eq!(ring.pop_oldest(), Some((7, 14)));
        assert_eq!(ring.pop_oldest(), Some((400, 400)));
        assert_eq!(ring.pop_oldest(), Some((500, 500)));
        assert!(ring.is_empty() && ring.ring.is_empty());
    }

    #[test]
    fn ids_added_together_are_merged_in_order_and_only_once() {
        let mut ring = IdRing::default();
        for id in [10, 20, 30] {
            ring.insert(id, 'l');
        }
        ring.remove(20);
        // Older, newer, between, held already, and repeated.
        let added = ring.add_missing([25, 5, 40, 10, 5, 1], || 'm');
        assert_eq!(added, [1, 5, 25, 40]);
        assert_eq!(ring.len(), 6);
        let held: Vec<(u64, char)> = std::iter::from_fn(|| ring.pop_oldest()).collect();
        assert_eq!(
            held,
            [
                (1, 'm'),
                (5, 'm'),
                (10, 'l'),
                (25, 'm'),
                (30, 'l'),
                (40, 'm')
            ]
        );
        // All after the last: appended.
        assert_eq!(ring.add_missing([7, 3], || 'n'), [3, 7]);
        assert_eq!(ring.add_missing([9, 8], || 'n'), [8, 9]);
        assert_eq!(
            (ring.get(3), ring.get(9), ring.len()),
            (Some(&'n'), Some(&'n'), 4)
        );
    }

    #[test]
    fn dense_and_sparse_ids_are_found_where_they_are() {
        let mut ring = IdRing::default();
        // Dense from 100, then gaps, then dense again.
        let ids: Vec<u64> = (100..200)
            .chain((300..400).step_by(7))
            .chain(1000..1050)
            .collect();
        for &id in &ids {
            ring.insert(id, id);
        }
        for &id in &ids {
            assert_eq!(ring.get(id), Some(&id), "{id}");
        }
        for missing in [0, 99, 200, 301, 999, 1050, u64::MAX] {
            assert_eq!(ring.get(missing), None, "{missing}");
        }
        // Inserted between others, out of order: still in order.
        assert_eq!(ring.insert(250, 250), None);
        assert_eq!(ring.insert(99, 99), None);
        assert_eq!(ring.get(250), Some(&250));
        assert_eq!(ring.pop_oldest(), Some((99, 99)));
        assert_eq!(ring.remove(150), Some(150));
        assert_eq!(ring.get(151), Some(&151));
        assert_eq!(ring.get(150), None);
    }
}
