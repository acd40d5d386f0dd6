//! An answer still to come.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::StoreError;

/// The answer to a request the store has taken: a future, or a value to
/// block on from a thread outside any async runtime.
///
/// A write's answer is sent only after the transaction holding it has
/// committed (or been rolled back: then it is [`StoreError::Failed`]). If the
/// store stops before answering, the answer is [`StoreError::Closed`].
/// Dropping a `Pending` does not cancel the request; the answer is dropped.
#[must_use = "the answer to a store request arrives through its Pending"]
pub struct Pending<T> {
    answer: oneshot::Receiver<Result<T, StoreError>>,
}

impl<T> Pending<T> {
    /// A pending answer and the sender that will answer it.
    pub(crate) fn channel() -> (oneshot::Sender<Result<T, StoreError>>, Self) {
        let (reply, answer) = oneshot::channel();
        (reply, Self { answer })
    }

    /// Blocks this thread until the answer comes.
    ///
    /// # Panics
    ///
    /// If called from within an asynchronous execution context (tokio's
    /// rule for blocking receives): `.await` the `Pending` there instead.
    pub fn wait(self) -> Result<T, StoreError> {
        self.answer
            .blocking_recv()
            .unwrap_or(Err(StoreError::Closed))
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(StoreError::Closed)))
    }
}

impl<T> fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}
