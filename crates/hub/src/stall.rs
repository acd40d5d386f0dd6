//! Closing connections whose frames stop arriving midway.
//!
//! The codec knows whether it holds part of a frame; the socket reader knows
//! when bytes last arrived. [`StallCodec`] publishes the first to
//! [`StallGuard`], which turns "part of a frame, and no bytes for the
//! deadline" into a `TimedOut` read error. Idle time between frames is not
//! a stall (liveness pings deal with that).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_util::codec::Decoder;

/// A decoder that records whether it is holding an incomplete frame.
#[derive(Debug)]
pub(crate) struct StallCodec<D> {
    pub(crate) inner: D,
    partial: Arc<AtomicBool>,
}

/// A reader that fails with `TimedOut` when the codec holds part of a frame
/// and no byte has arrived for `timeout`.
#[derive(Debug)]
pub(crate) struct StallGuard<R> {
    inner: R,
    partial: Arc<AtomicBool>,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

/// Pairs a reader with a decoder so that stalled frames time out.
pub(crate) fn guard<R, D>(
    reader: R,
    decoder: D,
    timeout: Duration,
) -> (StallGuard<R>, StallCodec<D>) {
    let partial = Arc::new(AtomicBool::new(false));
    let guard = StallGuard {
        inner: reader,
        partial: partial.clone(),
        timeout,
        deadline: Box::pin(tokio::time::sleep(timeout)),
    };
    (
        guard,
        StallCodec {
            inner: decoder,
            partial,
        },
    )
}

impl<D: Decoder> Decoder for StallCodec<D> {
    type Item = D::Item;
    type Error = D::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<D::Item>, D::Error> {
        let result = self.inner.decode(src);
        let partial = matches!(result, Ok(None)) && !src.is_empty();
        self.partial.store(partial, Ordering::Relaxed);
        result
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for StallGuard<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + this.timeout;
                    this.deadline.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.partial.load(Ordering::Relaxed)
                    && this.deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "frame stalled midway",
                    )));
                }
                Poll::Pending
            }
            ready @ Poll::Ready(Err(_)) => ready,
        }
    }
}
