//! Watching a run's connections from the workload's own task (the
//! coordinator): waiting until every delivery and ack has arrived
//! ([`wait_for`]), then with receipts every receipt ([`wait_for_receipts`]),
//! the warm-up barrier ([`count_ready`], [`not_ready`]),
//! when the last delivery came ([`last_delivery_ns`]), and at the end
//! stopping the receivers and collecting what they counted ([`collect`]).
//!
//! The receivers publish their progress in atomics ([`Progress`]), and the
//! coordinator polls them every [`POLL_EVERY`] rather than being told of
//! each delivery.
//!
//! [`Progress`]: crate::receiver::Progress

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::bar::Bar;
use crate::conn::Peer;
use crate::context::{Ctx, READY_TIMEOUT};
use crate::receiver::Tally;

/// Stop waiting for deliveries after this long without any.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the coordinator looks at the receivers' progress.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// How waiting for the deliveries ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Every message and ack arrived.
    Complete,
    /// A connection ended.
    Cut,
    /// Nothing arrived for [`IDLE_TIMEOUT`].
    Idle,
    /// The run's deadline passed.
    Deadline,
}

impl Wait {
    /// Why the run failed, if it ended this way.
    pub(crate) fn failure(self) -> Option<String> {
        match self {
            Self::Complete | Self::Cut => None,
            Self::Idle => Some(format!(
                "nothing arrived for {} s; gave up waiting",
                IDLE_TIMEOUT.as_secs()
            )),
            Self::Deadline => {
                Some("the deadline (0.9 × --timeout) passed before everything arrived".to_owned())
            }
        }
    }
}

/// Waits until `deliveries` data messages and `acks` acks have arrived over
/// `peers`, a connection ends, nothing arrives for a while, or the deadline.
pub(crate) async fn wait_for(
    ctx: &Ctx,
    peers: &[Peer],
    deliveries: u64,
    acks: u64,
    bar: &mut Bar,
) -> Wait {
    wait_until(ctx, peers, || {
        let delivered: u64 = peers
            .iter()
            .map(|p| p.progress.delivered.load(Relaxed))
            .sum();
        let acked: u64 = peers.iter().map(|p| p.progress.acks.load(Relaxed)).sum();
        bar.set(delivered);
        (delivered + acked, delivered >= deliveries && acked >= acks)
    })
    .await
}

/// Waits until `receipts` good receipts have arrived over `peers`, a
/// connection ends, none arrives for a while, or the deadline.
pub(crate) async fn wait_for_receipts(
    ctx: &Ctx,
    peers: &[Peer],
    receipts: u64,
    bar: &mut Bar,
) -> Wait {
    wait_until(ctx, peers, || {
        let received: u64 = peers
            .iter()
            .map(|p| p.progress.receipts.load(Relaxed))
            .sum();
        bar.set(received);
        (received, received >= receipts)
    })
    .await
}

/// Polls `progress` (how much has arrived, and whether all of it) until it
/// says all, a connection ends, it stands still for [`IDLE_TIMEOUT`], or
/// the deadline.
async fn wait_until(ctx: &Ctx, peers: &[Peer], mut progress: impl FnMut() -> (u64, bool)) -> Wait {
    let mut last_seen = u64::MAX;
    let mut last_change = Instant::now();
    loop {
        let (seen, complete) = progress();
        if complete {
            return Wait::Complete;
        }
        if peers.iter().any(Peer::ended) {
            return Wait::Cut;
        }
        let now = Instant::now();
        if seen != last_seen {
            last_seen = seen;
            last_change = now;
        } else if now.duration_since(last_change) > IDLE_TIMEOUT {
            return Wait::Idle;
        }
        if now >= ctx.deadline {
            return Wait::Deadline;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// How many of `peers` have seen a warm-up message.
pub(crate) fn count_ready(peers: &[Peer]) -> usize {
    peers
        .iter()
        .filter(|p| p.progress.ready.load(Relaxed))
        .count()
}

/// Stops every receiver and collects what each counted.
pub(crate) async fn collect(ctx: &Ctx, peers: &mut [Peer]) -> Vec<Tally> {
    ctx.stop.cancel();
    futures::future::join_all(peers.iter_mut().map(Peer::tally)).await
}

/// The latest delivery over `peers`, in [`Clock`](crate::clock::Clock)
/// nanoseconds.
pub(crate) fn last_delivery_ns(peers: &[Peer]) -> u64 {
    peers
        .iter()
        .map(|p| p.progress.last_ns.load(Relaxed))
        .max()
        .unwrap_or(0)
}

/// The failure of a warm-up that did not reach every receiver.
pub(crate) fn not_ready(ready: usize, receivers: usize) -> Option<String> {
    (ready < receivers).then(|| {
        format!(
            "only {ready} of {receivers} receivers saw a warm-up message within {} s",
            READY_TIMEOUT.as_secs()
        )
    })
}
