//! Bounded waits: a hub that hangs fails the test instead of stalling the
//! suite. No test asserts how fast anything is on a real clock.

use std::fmt::Debug;
use std::time::Duration;

use tokio::time::Instant;

/// How long a test waits for something it expects before failing.
/// Generous: the tests must pass on a loaded two-core machine; this only
/// stops a broken test from hanging. On a paused clock it is paused time
/// too, so a test that waits past it (a deadline of minutes) says how long
/// it waits instead (see [`RawClient::with_patience`](crate::RawClient::with_patience)).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Awaits `future`, failing the test (naming `what`) if it is not done
/// within `limit`.
///
/// # Panics
/// If `limit` passes first.
pub async fn guard<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    let Ok(output) = tokio::time::timeout(limit, future).await else {
        panic!("{what}: not done within {limit:?}");
    };
    output
}

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
///
/// # Panics
/// If [`PATIENCE`] runs out first.
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    guard(PATIENCE, what, future).await
}

/// Waits until `current()` is `want`, which something else brings about
/// (a connection task ending, a counter it records), looking again every
/// 10 ms.
///
/// # Panics
/// If it is not so within [`PATIENCE`].
pub async fn settle<T: PartialEq + Debug>(what: &str, mut current: impl FnMut() -> T, want: T) {
    let settled = tokio::time::timeout(PATIENCE, async {
        while current() != want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "{what} stuck at {:?} (want {want:?})",
        current()
    );
}

/// Awaits `future` and says how long it took by Tokio's clock. On a paused
/// clock over in-memory pipes that is exactly the time the hub's timers
/// made pass: what a test of a deadline asserts.
pub async fn timed<F: Future>(future: F) -> (F::Output, Duration) {
    let start = Instant::now();
    let output = future.await;
    (output, start.elapsed())
}
