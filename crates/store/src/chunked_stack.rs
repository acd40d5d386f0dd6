//! A stack kept in chunks of fixed size: the index's undo records
//! (`index.rs`).
//!
//! A group commit records every change it makes to the index, to undo them
//! if its transaction is rolled back, and forgets them all once it commits.
//! A burst's groups make hundreds of thousands of changes each. In one
//! `Vec`, each doubling copied every record so far into fresh memory (a
//! tenth of the writer's samples under `bench direct --reliable` were that
//! copy and its page faults). Here the stack grows a chunk at a time, with
//! nothing copied, and the chunks emptied at a commit are kept for the next
//! group until [`trim`](ChunkedStack::trim) gives them back.

/// Records in a chunk: 256 KiB of 64-byte undo records.
const CHUNK: usize = 4096;

#[derive(Debug)]
pub(crate) struct ChunkedStack<T> {
    /// Every chunk, those in use first (the last of them not full), then
    /// the empty ones kept for reuse.
    chunks: Vec<Vec<T>>,
    /// How many chunks are in use.
    used: usize,
}

impl<T> Default for ChunkedStack<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            used: 0,
        }
    }
}

impl<T> ChunkedStack<T> {
    pub(crate) fn push(&mut self, value: T) {
        let last = self.used.checked_sub(1);
        let room = last.and_then(|last| self.chunks.get_mut(last));
        if let Some(chunk) = room.filter(|chunk| chunk.len() < CHUNK) {
            chunk.push(value);
            return;
        }
        // The last chunk in use is full (or none is): the next one, kept
        // from an earlier group or new.
        if self.used == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.get_mut(self.used) {
            chunk.push(value);
        }
        self.used += 1;
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        let last = self.chunks.get_mut(self.used.checked_sub(1)?)?;
        let value = last.pop();
        if last.is_empty() {
            self.used -= 1;
        }
        value
    }

    #[cfg(test)]
    pub(crate) fn last(&self) -> Option<&T> {
        self.chunks.get(self.used.checked_sub(1)?)?.last()
    }

    /// Empties it, keeping its chunks.
    pub(crate) fn clear(&mut self) {
        for chunk in self.chunks.iter_mut().take(self.used) {
            chunk.clear();
        }
        self.used = 0;
    }

    /// How many records its chunks have room for.
    pub(crate) fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    /// Gives back the empty chunks past room for `keep` records.
    pub(crate) fn trim(&mut self, keep: usize) {
        let kept = self.used.max(keep.div_ceil(CHUNK));
        self.chunks.truncate(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_pop_last_first_across_chunks_and_chunks_are_reused() {
        let mut stack = ChunkedStack::default();
        let many = CHUNK * 2 + 10;
        for value in 0..many {
            stack.push(value);
        }
        assert_eq!(stack.last(), Some(&(many - 1)));
        assert_eq!(stack.capacity(), CHUNK * 3);
        // Popped across a chunk's edge, last first.
        let popped: Vec<usize> = (0..20).filter_map(|_| stack.pop()).collect();
        assert_eq!(popped, ((many - 20)..many).rev().collect::<Vec<_>>());
        stack.push(7);
        assert_eq!(stack.last(), Some(&7));
        stack.clear();
        assert_eq!((stack.pop(), stack.last()), (None, None));
        // The chunks stay for the next group, and only trimming gives them
        // back, never one in use.
        assert_eq!(stack.capacity(), CHUNK * 3);
        for value in 0..=CHUNK {
            stack.push(value);
        }
        assert_eq!(stack.capacity(), CHUNK * 3);
        stack.trim(0);
        assert_eq!(stack.capacity(), CHUNK * 2);
        stack.clear();
        stack.trim(CHUNK);
        assert_eq!(stack.capacity(), CHUNK);
        let all: Vec<usize> = std::iter::from_fn(|| stack.pop()).collect();
        assert!(all.is_empty());
    }
}
