//! The read side of a binary connection: frames that stop arriving midway
//! time out, and the read buffer follows the traffic.
//!
//! The codec knows whether it holds part of a frame and owns the read
//! buffer; the socket reader knows when bytes last arrived and how much each
//! read brought. They share a [`ReadState`]:
//!
//! - [`StallGuard`] turns "part of a frame, and no bytes for the deadline"
//!   into a `TimedOut` read error. Idle time between frames is not a stall
//!   (liveness pings deal with that).
//! - [`StallCodec`] sizes the buffer before each read, as nats-server does:
//!   a read that fills the buffer doubles it (up to [`MAX_READ`]), two reads
//!   in a row that fill less than half of it halve it (down to
//!   [`MIN_READ`]). A busy sender is then read in a few large reads instead
//!   of a read per frame or two, and a quiet one holds a small buffer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_util::codec::Decoder;

/// The read buffer a connection starts with, and the least it shrinks to.
pub(crate) const MIN_READ: usize = 256;

/// The most a single read asks for.
pub(crate) const MAX_READ: usize = 64 * 1024;

/// What the reader and the codec of one connection tell each other. Both
/// live in the connection's task, so relaxed atomics are only a way to
/// share without a lock.
#[derive(Debug, Default)]
struct ReadState {
    /// The codec holds part of a frame.
    partial: AtomicBool,
    /// Bytes the last read brought, and the room it had; `room` is zero once
    /// the codec has taken them into account.
    read: AtomicUsize,
    room: AtomicUsize,
}

/// A decoder that records whether it holds an incomplete frame, and sizes
/// the read buffer before each read.
#[derive(Debug)]
pub(crate) struct StallCodec<D> {
    pub(crate) inner: D,
    state: Arc<ReadState>,
    /// The room the next read gets.
    target: usize,
    /// Reads in a row that filled less than half their room.
    small_reads: u8,
}

/// A reader that fails with `TimedOut` when the codec holds part of a frame
/// and no byte has arrived for `timeout`.
#[derive(Debug)]
pub(crate) struct StallGuard<R> {
    inner: R,
    state: Arc<ReadState>,
    timeout: Duration,
    /// When the last bytes arrived.
    last_read: Instant,
    /// Armed only when a read finds nothing while part of a frame is
    /// buffered, rather than pushed back on every read.
    deadline: Pin<Box<Sleep>>,
}

/// Pairs a reader with a decoder so that stalled frames time out and the
/// read buffer adapts.
pub(crate) fn guard<R, D>(
    reader: R,
    decoder: D,
    timeout: Duration,
) -> (StallGuard<R>, StallCodec<D>) {
    let state = Arc::new(ReadState::default());
    let guard = StallGuard {
        inner: reader,
        state: state.clone(),
        timeout,
        last_read: Instant::now(),
        deadline: Box::pin(tokio::time::sleep(timeout)),
    };
    (
        guard,
        StallCodec {
            inner: decoder,
            state,
            target: MIN_READ,
            small_reads: 0,
        },
    )
}

impl<R> StallGuard<R> {
    /// When bytes last arrived (or when reading began).
    pub(crate) fn last_read(&self) -> Instant {
        self.last_read
    }
}

impl<D> StallCodec<D> {
    /// Gives back a buffer grown by traffic, for a connection gone quiet.
    pub(crate) fn release(&mut self, buffer: &mut BytesMut) {
        self.target = MIN_READ;
        self.small_reads = 0;
        if buffer.is_empty() && buffer.capacity() > MIN_READ {
            *buffer = BytesMut::with_capacity(MIN_READ);
        }
    }

    /// Adjusts `target` to the last read, then makes room for the next.
    fn size_for_next_read(&mut self, buffer: &mut BytesMut) {
        let room = self.state.room.swap(0, Ordering::Relaxed);
        if room > 0 {
            let read = self.state.read.load(Ordering::Relaxed);
            if read >= room {
                self.target = (self.target * 2).min(MAX_READ);
                self.small_reads = 0;
            } else if read < self.target / 2 {
                self.small_reads += 1;
                if self.small_reads >= 2 {
                    self.target = (self.target / 2).max(MIN_READ);
                    self.small_reads = 0;
                }
            } else {
                self.small_reads = 0;
            }
        }
        let room = buffer.capacity() - buffer.len();
        if room < self.target {
            buffer.reserve(self.target);
        } else if buffer.is_empty() && buffer.capacity() > 2 * self.target {
            *buffer = BytesMut::with_capacity(self.target);
        }
    }
}

impl<D: Decoder> Decoder for StallCodec<D> {
    type Item = D::Item;
    type Error = D::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<D::Item>, D::Error> {
        let result = self.inner.decode(src);
        let partial = matches!(result, Ok(None)) && !src.is_empty();
        self.state.partial.store(partial, Ordering::Relaxed);
        if matches!(result, Ok(None)) {
            // The caller reads next.
            self.size_for_next_read(src);
        }
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
        let room = buf.remaining();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                if read > 0 {
                    this.last_read = Instant::now();
                }
                this.state.read.store(read, Ordering::Relaxed);
                this.state.room.store(room, Ordering::Relaxed);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.state.partial.load(Ordering::Relaxed) {
                    let due = this.last_read + this.timeout;
                    if this.deadline.deadline() != due {
                        this.deadline.as_mut().reset(due);
                    }
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "frame stalled midway",
                        )));
                    }
                }
                Poll::Pending
            }
            ready @ Poll::Ready(Err(_)) => ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::FramedRead;

    /// Takes whatever has been read, as the real codec takes whole frames.
    struct Drain;

    impl Decoder for Drain {
        type Item = usize;
        type Error = io::Error;

        fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<usize>> {
            let len = src.len();
            src.clear();
            Ok((len > 0).then_some(len))
        }
    }

    /// Sends each of `writes` through a guarded reader and returns the room
    /// the codec means to give the next read after each.
    async fn targets(writes: &[usize]) -> Vec<usize> {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let (rx, codec) = guard(rx, Drain, Duration::from_secs(5));
        let mut reader = FramedRead::with_capacity(rx, codec, MIN_READ);
        let mut seen = Vec::new();
        for &n in writes {
            tx.write_all(&vec![b'x'; n]).await.unwrap();
            let mut got = 0;
            while got < n {
                got += reader.next().await.unwrap().unwrap();
            }
            // Let the codec see that the buffer is empty, as before a read.
            let mut buffer = std::mem::take(reader.read_buffer_mut());
            reader.decoder_mut().size_for_next_read(&mut buffer);
            seen.push((reader.decoder().target, buffer.capacity()));
            *reader.read_buffer_mut() = buffer;
        }
        seen.into_iter()
            .map(|(target, capacity)| {
                assert!(
                    capacity >= target && capacity <= 2 * target.max(MIN_READ) + MIN_READ,
                    "capacity {capacity} for target {target}"
                );
                target
            })
            .collect()
    }

    #[tokio::test]
    async fn a_busy_reader_grows_its_buffer_and_a_quiet_one_shrinks_it() {
        let seen = targets(&[[200_000].as_slice(), &[10; 20]].concat()).await;
        assert_eq!(seen[0], MAX_READ, "{seen:?}");
        assert_eq!(*seen.last().unwrap(), MIN_READ, "{seen:?}");
        // It takes two small reads in a row to halve the buffer.
        assert!(seen.windows(3).all(|w| w[2] >= w[0] / 2), "{seen:?}");
    }

    #[tokio::test]
    async fn release_gives_back_an_empty_grown_buffer() {
        let (_, mut codec) = guard(tokio::io::empty(), Drain, Duration::from_secs(1));
        codec.target = MAX_READ;
        let mut buffer = BytesMut::with_capacity(MAX_READ);
        codec.release(&mut buffer);
        assert_eq!(codec.target, MIN_READ);
        assert!(buffer.capacity() < MAX_READ);
    }
}
