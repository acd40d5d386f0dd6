//! A map keyed by hub message id, for entries made in id order and taken
//! out in about the same order: what waits for the store, and what a
//! confirming connection owes receipts for.
//!
//! The hub's ids grow, so adding is a push at the back and taking the
//! oldest a pop at the front; one taken out of order is found by binary
//! search and its slot left empty until it reaches the front. Held in a
//! hash table, these were a cache miss each: the actor's handling of the
//! store's answers for reliable sessions was mostly waiting on memory
//! (`docs/performance.md`). Walked in id order, they are next to each other.

use std::collections::VecDeque;

#[derive(Debug)]
pub(super) struct IdRing<T> {
    ring: VecDeque<(u64, Option<T>)>,
    /// Slots still holding a value.
    live: usize,
}

impl<T> Default for IdRing<T> {
    fn default() -> Self {
        Self {
            ring: VecDeque::new(),
            live: 0,
        }
    }
}

impl<T> IdRing<T> {
    /// Where `id`'s slot is (or would be, in order).
    fn at(&self, id: u64) -> usize {
        match self.ring.front() {
            Some((first, _)) if *first == id => 0,
            _ => self.ring.partition_point(|(held, _)| *held < id),
        }
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
        }
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
}
