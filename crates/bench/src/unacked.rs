//! A reliable sender's window: at most so many data messages sent and not
//! yet acknowledged (`direct --reliable`), as the client library keeps
//! (`ClientOptions::max_pending`, 1,024 by default, the client ids per
//! account the hub remembers: a reliable client that kept more in flight
//! could not have them all recognised when it sent them again).
//!
//! The connection's receiver counts the acks of its data messages; the
//! sender, before writing message `seq`, waits until fewer than the window
//! are unacknowledged, writing out what it has buffered first.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// The window of messages sent on one connection and not yet acked.
#[derive(Debug)]
pub(crate) struct Unacked {
    /// Data messages acked so far.
    acked: AtomicU64,
    /// Woken at each ack, for a sender waiting for room.
    acks: Notify,
    window: u64,
}

impl Unacked {
    pub(crate) fn new(window: u64) -> Self {
        Self {
            acked: AtomicU64::new(0),
            acks: Notify::new(),
            window: window.max(1),
        }
    }

    /// A data message was acked (whatever its status).
    pub(crate) fn acked(&self) {
        self.acked.fetch_add(1, Ordering::Release);
        self.acks.notify_one();
    }

    /// Whether data message `seq` (counted from 0) may be sent now.
    pub(crate) fn has_room(&self, seq: u64) -> bool {
        seq < self
            .acked
            .load(Ordering::Acquire)
            .saturating_add(self.window)
    }

    /// Waits until data message `seq` may be sent. An ack that comes
    /// between the check and the wait leaves a permit in `acks`, so none is
    /// missed.
    pub(crate) async fn room(&self, seq: u64) {
        while !self.has_room(seq) {
            self.acks.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Unacked;

    #[tokio::test]
    async fn a_sender_waits_for_an_ack_once_the_window_is_full() {
        let window = Arc::new(Unacked::new(2));
        assert!(window.has_room(0) && window.has_room(1));
        assert!(!window.has_room(2));
        let waiting = tokio::spawn({
            let window = Arc::clone(&window);
            async move { window.room(2).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        window.acked();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("room after an ack")
            .expect("the task ends");
        assert!(window.has_room(2) && !window.has_room(3));
    }
}
