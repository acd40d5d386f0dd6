//! A mailbox's messages by hub id, in id order: the index's map for each
//! account (`index.rs`).
//!
//! The hub's ids grow, so a message is nearly always stored after every
//! other in its mailbox (a push at the back), and confirmed nearly always
//! oldest first (a pop at the front). One taken out of the middle leaves
//! its slot empty until the front reaches it, or until empty slots
//! outnumber the rest, when they are dropped in one pass. Lookups are a
//! binary search of a contiguous ring. In a `BTreeMap` (before), taking a
//! message out was a walk down the tree and a rebalance, a cache miss a
//! level: a twelfth of the writer's time under `bench direct --reliable`.
//!
//! Ids are nearly always looked up in runs, each the one after the last
//! (confirmations of a run of messages, the receipts for them), and each
//! often twice (found, then taken out): the slot last found and the one
//! after it are tried before the search, which otherwise misses the cache
//! at nearly every step of a large ring.

use std::cell::Cell;
use std::collections::VecDeque;

/// Empty slots are dropped once there are more of them than this and than
/// live ones.
const MIN_COMPACT: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct IdMap<T> {
    ring: VecDeque<(u64, Option<T>)>,
    /// Slots holding a value.
    live: usize,
    /// The slot last found: it and the one after it are tried first.
    last: Cell<usize>,
}

impl<T> Default for IdMap<T> {
    fn default() -> Self {
        Self {
            ring: VecDeque::new(),
            live: 0,
            last: Cell::new(0),
        }
    }
}

impl<T> IdMap<T> {
    /// Where `id`'s slot is (`Ok`), or would go in order (`Err`).
    fn find(&self, id: u64) -> Result<usize, usize> {
        // An id outside the ring's is not held, at a glance. An owner's
        // receipts are forgotten oldest first, each looked up again once
        // taken out (one may be kept twice): that second look was a
        // binary search of the whole ring, ending before its first slot,
        // for every receipt (1.2% of the daemon's samples under `bench
        // direct --reliable`). And a receipt is kept, nearly always, for a
        // message after every other, whose look missed the slots tried
        // and was searched for in vain (1.8%).
        let (Some((first, _)), Some((newest, _))) = (self.ring.front(), self.ring.back()) else {
            return Err(0);
        };
        if id < *first {
            return Err(0);
        }
        if id > *newest {
            return Err(self.ring.len());
        }
        let last = self.last.get();
        let is_at = |at: usize| self.ring.get(at).is_some_and(|(held, _)| *held == id);
        let found = if is_at(0) {
            Ok(0)
        } else if is_at(last) {
            Ok(last)
        } else if is_at(last + 1) {
            Ok(last + 1)
        } else {
            self.ring.binary_search_by_key(&id, |(held, _)| *held)
        };
        if let Ok(at) = found {
            self.last.set(at);
        }
        found
    }

    /// The value for `id`.
    pub(crate) fn get(&self, id: u64) -> Option<&T> {
        let at = self.find(id).ok()?;
        self.ring.get(at)?.1.as_ref()
    }

    /// The value for `id`, to change.
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let at = self.find(id).ok()?;
        self.ring.get_mut(at)?.1.as_mut()
    }

    /// Whether it holds `id`.
    pub(crate) fn contains_key(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    /// Sets `id`'s value, answering the one it replaces.
    pub(crate) fn insert(&mut self, id: u64, value: T) -> Option<T> {
        if self.ring.back().is_none_or(|(last, _)| *last < id) {
            self.ring.push_back((id, Some(value)));
            self.live += 1;
            return None;
        }
        match self.find(id) {
            Ok(at) => {
                let old = self
                    .ring
                    .get_mut(at)
                    .and_then(|(_, slot)| slot.replace(value));
                if old.is_none() {
                    self.live += 1;
                }
                old
            }
            // Before the first (put back by a rolled-back group) is a push
            // at the front; between others (rare) shifts the shorter side.
            Err(at) => {
                self.ring.insert(at, (id, Some(value)));
                self.live += 1;
                None
            }
        }
    }

    /// Takes `id`'s value out.
    pub(crate) fn remove(&mut self, id: u64) -> Option<T> {
        let at = self.find(id).ok()?;
        let taken = self.ring.get_mut(at)?.1.take()?;
        self.live -= 1;
        while self.ring.front().is_some_and(|(_, slot)| slot.is_none()) {
            self.ring.pop_front();
            self.last.set(self.last.get().saturating_sub(1));
        }
        while self.ring.back().is_some_and(|(_, slot)| slot.is_none()) {
            self.ring.pop_back();
        }
        let empty = self.ring.len() - self.live;
        if empty > MIN_COMPACT && empty > self.live {
            self.ring.retain(|(_, slot)| slot.is_some());
        }
        Some(taken)
    }

    /// The highest id it holds, if any.
    pub(crate) fn last_key(&self) -> Option<u64> {
        self.ring.back().map(|(id, _)| *id)
    }

    /// How many values it holds.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// The ids it holds, in order.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        (self.ring.iter()).filter_map(|(id, slot)| slot.as_ref().map(|_| *id))
    }

    /// The ids and values, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        (self.ring.iter()).filter_map(|(id, slot)| Some((*id, slot.as_ref()?)))
    }

    /// The values, in id order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.ring.iter().filter_map(|(_, slot)| slot.as_ref())
    }

    /// Puts values added in any order (with
    /// [`push_unsorted`](Self::push_unsorted)) in id order; of one id added
    /// twice, the last stays.
    pub(crate) fn sort(&mut self) {
        let ring = self.ring.make_contiguous();
        ring.sort_by_key(|(id, _)| *id);
        let mut sorted: VecDeque<(u64, Option<T>)> = VecDeque::with_capacity(self.ring.len());
        for (id, slot) in self.ring.drain(..) {
            match sorted.back_mut() {
                Some((last, kept)) if *last == id => *kept = slot,
                _ => sorted.push_back((id, slot)),
            }
        }
        self.live = sorted.iter().filter(|(_, slot)| slot.is_some()).count();
        self.ring = sorted;
    }

    /// Adds a value in no particular order, as a store that opens reads
    /// them: [`sort`](Self::sort) must follow before any other use.
    pub(crate) fn push_unsorted(&mut self, id: u64, value: T) {
        self.ring.push_back((id, Some(value)));
        self.live += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_by_id_in_and_out_of_order() {
        let mut map = IdMap::default();
        for id in [3, 5, 9] {
            assert_eq!(map.insert(id, id * 10), None);
        }
        assert_eq!(map.insert(4, 40), None);
        assert_eq!(map.insert(5, 55), Some(50));
        assert_eq!((map.get(4), map.get(6)), (Some(&40), None));
        assert_eq!(map.remove(5), Some(55));
        assert_eq!(map.remove(5), None);
        assert!(!map.contains_key(5) && map.contains_key(9));
        assert_eq!(map.len(), 3);
        assert_eq!(map.remove(3), Some(30));
        // Before the first: not held, looked up or taken out again.
        assert_eq!((map.get(3), map.get(1)), (None, None));
        assert_eq!(map.remove(3), None);
        // Put back before the first, as a rolled-back group does.
        assert_eq!(map.insert(3, 33), None);
        if let Some(value) = map.get_mut(9) {
            *value = 99;
        }
        assert_eq!(map.keys().collect::<Vec<_>>(), [3, 4, 9]);
        assert_eq!(map.values().copied().collect::<Vec<_>>(), [33, 40, 99]);
    }

    #[test]
    fn empty_slots_left_in_the_middle_are_dropped_once_they_outnumber_the_rest() {
        let mut map = IdMap::default();
        // One message never confirmed, then many that are.
        map.insert(1, 0);
        for id in 2..10_000 {
            map.insert(id, id);
            assert_eq!(map.remove(id), Some(id));
            assert!(map.ring.len() <= 2 * MIN_COMPACT + 2, "{}", map.ring.len());
        }
        assert_eq!((map.len(), map.keys().collect::<Vec<_>>()), (1, vec![1]));
    }

    #[test]
    fn values_added_in_any_order_are_sorted() {
        let mut map = IdMap::default();
        for id in [7, 2, 9, 2, 4] {
            map.push_unsorted(id, id * 10);
        }
        map.sort();
        assert_eq!(map.keys().collect::<Vec<_>>(), [2, 4, 7, 9]);
        assert_eq!(map.len(), 4);
        assert_eq!(map.get(7), Some(&70));
    }
}
