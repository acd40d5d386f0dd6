//! A connection's write half, shared (behind an async mutex) by whoever
//! sends on it and its receiver task, which answers the hub's `PING`s (and
//! with receipts the task that writes its `CONFIRM`s, `receipts.rs`); and
//! writing one frame on it.

use std::sync::Arc;

use bytes::BytesMut;
use chinwag_protocol::{ClientFrame, DEFAULT_MAX_FRAME, ProtocolError, encode_into};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::transport::WriteHalf;

/// A connection's write half, shared by its sender and its receiver task.
pub(crate) type SharedWrite = Arc<Mutex<WriteHalf>>;

/// Writes one frame on its own (registration, pongs).
pub(crate) async fn send_frame(
    write: &SharedWrite,
    frame: &ClientFrame,
) -> Result<(), ProtocolError> {
    let mut buf = BytesMut::with_capacity(64);
    encode_into(frame, DEFAULT_MAX_FRAME, &mut buf)?;
    let mut write = write.lock().await;
    write.write_all(&buf).await?;
    // TLS sends the tail of a write only when flushed.
    write.flush().await?;
    Ok(())
}
