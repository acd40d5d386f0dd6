//! A connection's writer: everything the actor queued on its outbox goes
//! out in as few writes as the traffic allows, and a write that makes no
//! progress for the slow-consumer deadline cuts the connection.

use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chinwag_protocol::Code;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::outbox::Outbox;

/// Frames up to this size are copied into one buffer and written together;
/// larger ones are written from their own buffer.
const COALESCE_MAX: usize = 16 * 1024;

/// Scheduler turns a writer waits at most for more frames before writing.
const MAX_TURNS: usize = 64;

/// How long a writer holds frames at most, waiting for more: on a busy
/// runtime a turn can be long.
const MAX_HOLD: Duration = Duration::from_millis(1);

/// Bytes after which a writer stops waiting for more and writes, and the
/// most one coalesced write carries.
const WRITE_TARGET: usize = 64 * 1024;

/// Frames written from where they are, with vectored writes of this many
/// buffers at most, rather than copied into one buffer...
const MAX_IOVECS: usize = 16;

/// ...if they average at least this many bytes. Small frames are cheaper
/// to copy than for the kernel to gather: vectored writes of 100-byte frames
/// made fan-out to 100 subscribers a third slower. Large ones are not:
/// copying a busy direct connection's runs of messages (several KiB each,
/// written by the actor on the other core) was a tenth of the hub's time.
const VECTORED_MIN: usize = 1024;

/// Writes everything the outbox hands over, coalescing small frames so that a
/// busy connection makes one write for many frames. Returns once the outbox
/// is closed and drained (after shutting down the write side), or on a write
/// error or a write that made no progress within `deadline`.
pub(crate) async fn write_frames<W>(
    outbox: &Outbox,
    mut io: W,
    deadline: Duration,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut batch: Vec<Bytes> = Vec::new();
    let mut buf = BytesMut::new();
    // Whether frames were already waiting when the last write ended.
    let mut flowing = false;
    while outbox.take_all(&mut batch).await {
        // Under a flood (frames were already waiting when the last write
        // ended), let the tasks that were woken with us run first: they
        // often have more frames for this connection, and one write then
        // carries them all instead of a write each. Go on doing so while
        // each turn brings more, up to a point: the writes grow (fewer
        // system calls here and in every reader). A connection that had
        // caught up writes what woke it at once, one frame or a burst: at a
        // steady trickle (a few messages each millisecond to a hundred
        // readers) waiting for more only added latency, and a burst is
        // already as large as it will get.
        let mut taken: usize = batch.iter().map(Bytes::len).sum();
        let first = std::time::Instant::now();
        let turns = if flowing && batch.len() > 1 {
            MAX_TURNS
        } else {
            0
        };
        for _ in 0..turns {
            tokio::task::yield_now().await;
            let before = batch.len();
            outbox.take_ready(&mut batch);
            taken += batch[before..].iter().map(Bytes::len).sum::<usize>();
            if batch.len() == before || taken >= WRITE_TARGET || first.elapsed() >= MAX_HOLD {
                break;
            }
        }
        if let [frame] = batch.as_slice() {
            // Nothing to coalesce: write it from where it is.
            write_deadline(&mut io, frame, deadline, outbox).await?;
        } else if taken >= batch.len() * VECTORED_MIN {
            // Large buffers (runs of messages, their replies): written from
            // where they are, sixteen to a call, rather than copied first.
            write_vectored_deadline(&mut io, &batch, deadline, outbox).await?;
        } else {
            if buf.capacity() == 0 {
                // One allocation of the right size rather than a doubling chain.
                buf.reserve(taken.min(WRITE_TARGET));
            }
            for frame in &batch {
                if frame.len() > COALESCE_MAX {
                    write_deadline(&mut io, &buf, deadline, outbox).await?;
                    buf.clear();
                    write_deadline(&mut io, frame, deadline, outbox).await?;
                } else {
                    buf.extend_from_slice(frame);
                    if buf.len() >= WRITE_TARGET {
                        write_deadline(&mut io, &buf, deadline, outbox).await?;
                        buf.clear();
                    }
                }
            }
            write_deadline(&mut io, &buf, deadline, outbox).await?;
            buf.clear();
        }
        batch.clear();
        outbox.written(taken);
        // A connection between bursts keeps no buffer at all: allocating
        // once per burst costs little next to the write itself, and an idle
        // connection is then only its task and its socket.
        flowing = !outbox.is_empty();
        if !flowing {
            buf = BytesMut::new();
            batch = Vec::new();
        }
    }
    io.shutdown().await
}

/// Flushes `io`, within `deadline` as a write: a TLS stream keeps the tail
/// of what it was given when the socket would block, and sends it only
/// when flushed. A plain socket's flush is done at the first poll, and no
/// clock is read for it.
async fn flush_deadline<W>(io: &mut W, deadline: Duration, outbox: &Outbox) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut flush = std::pin::pin!(io.flush());
    if let Some(flushed) = futures::FutureExt::now_or_never(flush.as_mut()) {
        return flushed;
    }
    match timeout(deadline, flush).await {
        Ok(flushed) => flushed,
        Err(_) => Err(no_progress(outbox)),
    }
}

/// As [`write_deadline`], for several buffers written with vectored writes.
async fn write_vectored_deadline<W>(
    io: &mut W,
    frames: &[Bytes],
    deadline: Duration,
    outbox: &Outbox,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    for group in frames.chunks(MAX_IOVECS) {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        for (slice, frame) in slices.iter_mut().zip(group) {
            *slice = IoSlice::new(frame);
        }
        let mut left = &mut slices[..group.len()];
        while !left.is_empty() {
            let Ok(written) = timeout(deadline, io.write_vectored(left)).await else {
                return Err(no_progress(outbox));
            };
            match written? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                written => IoSlice::advance_slices(&mut left, written),
            }
        }
    }
    flush_deadline(io, deadline, outbox).await
}

/// A write that made no progress before the deadline: the peer is cut as a
/// slow consumer.
fn no_progress(outbox: &Outbox) -> io::Error {
    outbox.close(Some(Code::SLOW_CONSUMER), false);
    io::Error::new(
        io::ErrorKind::TimedOut,
        "write made no progress before the deadline",
    )
}

/// Writes all of `bytes` and flushes them, cutting the connection as a slow
/// consumer when one write (or the flush) makes no progress for `deadline`. The deadline is per write, not
/// for the whole: a reader that keeps taking bytes, however slowly, is not
/// cut by it (the outbox's own bounds deal with one that falls behind).
pub(crate) async fn write_deadline<W>(
    io: &mut W,
    mut bytes: &[u8],
    deadline: Duration,
    outbox: &Outbox,
) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    while !bytes.is_empty() {
        let Ok(written) = timeout(deadline, io.write(bytes)).await else {
            return Err(no_progress(outbox));
        };
        match written? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            written => bytes = &bytes[written..],
        }
    }
    flush_deadline(io, deadline, outbox).await
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    /// Writes everything queued on an outbox through a pipe that takes a
    /// few bytes at a time, and returns what came out.
    async fn written_through_a_narrow_pipe(frames: &[Bytes]) -> Vec<u8> {
        let outbox = Outbox::new(usize::MAX / 2, usize::MAX / 2);
        for frame in frames {
            assert!(outbox.push(frame.clone()).is_ok());
        }
        outbox.close(None, true);
        let (ours, mut theirs) = tokio::io::duplex(777);
        let reading = tokio::spawn(async move {
            let mut out = Vec::new();
            theirs.read_to_end(&mut out).await.map(|_| out)
        });
        let written = write_frames(&outbox, ours, Duration::from_secs(5)).await;
        assert!(written.is_ok(), "{written:?}");
        match reading.await {
            Ok(Ok(out)) => out,
            other => panic!("reading failed: {other:?}"),
        }
    }

    #[tokio::test]
    async fn many_large_buffers_and_many_small_frames_arrive_whole_and_in_order() {
        // Large ones go out vectored, sixteen to a call, with partial writes
        // in between; small ones are copied together.
        let large: Vec<Bytes> = (0..40u8)
            .map(|i| Bytes::from(vec![i; 1024 + 97 * usize::from(i)]))
            .collect();
        let small: Vec<Bytes> = (0..300u16)
            .map(|i| Bytes::from(i.to_be_bytes().repeat(20)))
            .collect();
        let mixed: Vec<Bytes> = large.iter().chain(&small).cloned().collect();
        for frames in [large, small, mixed] {
            assert_eq!(
                written_through_a_narrow_pipe(&frames).await,
                frames.concat()
            );
        }
    }
}
