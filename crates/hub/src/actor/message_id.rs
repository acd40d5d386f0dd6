//! Hub message ids: increasing in routing order, and unique across restarts.
//!
//! Messages will outlive the process that routed them (a mailbox, a
//! receipt, a resumed session all name a message by its id), so a restarted
//! hub must not hand out an id it handed out before. The ids start at the
//! wall clock's nanoseconds since the Unix epoch when the hub starts, and go
//! up by one per message. One actor routes a few million messages a second,
//! far below the billion a second at which the count could catch up with
//! the clock, so the first id of a restarted hub is above the last of any
//! run before it, however long that run was. The promise rests on the clock:
//! a clock set back across a restart by more than the time the hub was down
//! could repeat ids (once the store exists, its last id will seed the count
//! instead, whichever is larger). A `u64` of nanoseconds lasts until 2554.

use std::time::{SystemTime, UNIX_EPOCH};

/// Hands out message ids.
#[derive(Debug)]
pub(super) struct MessageIds {
    last: u64,
}

impl MessageIds {
    /// Ids that begin just above the clock's nanoseconds since the epoch.
    pub(super) fn starting_now() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX / 2)
            });
        Self::starting_after(now)
    }

    /// Ids that begin at `last + 1`.
    pub(super) fn starting_after(last: u64) -> Self {
        Self { last }
    }

    /// The id [`next`](Self::next) would hand out.
    pub(super) fn peek(&self) -> u64 {
        self.last.wrapping_add(1)
    }

    /// The next id: one more than the last.
    pub(super) fn next(&mut self) -> u64 {
        self.last = self.last.wrapping_add(1);
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_at_the_clock_and_go_up_by_one() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let mut ids = MessageIds::starting_now();
        let taken: Vec<u64> = (0..1_000).map(|_| ids.next()).collect();
        assert!(u128::from(taken[0]) > before);
        assert!(taken.windows(2).all(|pair| pair[1] == pair[0] + 1));
    }

    #[test]
    fn a_seed_continues_from_where_it_says() {
        let mut ids = MessageIds::starting_after(41);
        assert_eq!((ids.next(), ids.next()), (42, 43));
    }
}
