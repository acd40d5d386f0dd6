//! The front ends: what a connection speaks on its transport. Each turns
//! its bytes into the requests every connection shares (`connection.rs`)
//! and the hub's frames back into its own bytes.
//!
//! - `binary.rs`: the length-prefixed frames of `docs/protocol.md`;
//! - `text.rs` and `lines.rs`: newline-delimited UTF-8, for `nc` and `telnet`;
//! - `reader.rs`: the binary read side's stall deadline and buffer sizing.

mod binary;
mod lines;
mod reader;
mod text;

use std::time::Duration;

use chinwag_protocol::{Code, ErrorFrame, ServerFrame, encode_frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout};

use crate::Hub;
use crate::admission::{Peer, Ticket};
use crate::listener::Transport;

/// How long a connection closed for bad input keeps reading (and discarding)
/// so that its error frame is not lost to a TCP reset.
const LINGER: Duration = Duration::from_millis(500);

/// How long a newcomer waits for the place of an unregistered connection
/// shed to make room for it.
const SHED_WAIT: Duration = Duration::from_secs(1);

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Front {
    /// The binary protocol of `docs/protocol.md`: `chinwag`, the client
    /// library, and any other client of the protocol.
    Binary,
    /// Plain text, a line at a time: the first line is the nickname, the
    /// others use the `@nick text` syntax, so that `nc` or `telnet` is a
    /// working client.
    Text,
}

impl Front {
    /// Serves one accepted connection in a task of its own, until it ends;
    /// `slot` is its place under the hub's limit of unregistered
    /// connections. (Each front end's future is spawned as it is, so that a
    /// connection's task is the size of its own front end's state.)
    pub(crate) fn spawn<T: Transport>(
        self,
        hub: &Hub,
        io: T,
        peer: impl Peer,
        slot: OwnedSemaphorePermit,
        ticket: Ticket,
    ) {
        let tracker = &hub.shared.tracker;
        match self {
            Self::Binary => tracker.spawn(binary::serve(hub.clone(), io, peer, slot, ticket)),
            Self::Text => tracker.spawn(text::serve(hub.clone(), io, peer, slot, ticket)),
        };
    }

    /// Serves a connection once a place under the limit of unregistered
    /// connections comes free (one shed for it, or one changing hands), or
    /// refuses it if none comes within [`SHED_WAIT`]. Rare, so one future
    /// for both front ends.
    pub(crate) async fn serve_when_room<T: Transport>(
        self,
        hub: Hub,
        io: T,
        peer: impl Peer,
        ticket: Ticket,
    ) {
        let unregistered = hub.shared.unregistered.clone();
        let Ok(Ok(slot)) = timeout(SHED_WAIT, unregistered.acquire_owned()).await else {
            hub.shared.counters.record(Code::SERVER_FULL);
            return self.refuse(io).await;
        };
        match self {
            Self::Binary => binary::serve(hub, io, peer, slot, ticket).await,
            Self::Text => text::serve(hub, io, peer, slot, ticket).await,
        }
    }

    /// As [`refuse`](Self::refuse), without waiting for the peer to read
    /// the words: for a connection accepted on the last descriptor, which
    /// must be given back at once.
    pub(crate) async fn refuse_at_once<T: Transport>(self, mut io: T) {
        let (_, mut write) = io.split();
        let _ = write.write_all(&self.last_words()).await;
        let _ = write.shutdown().await;
    }

    /// This front end's words for a connection refused as the server is
    /// full.
    fn last_words(self) -> Vec<u8> {
        match self {
            Self::Binary => {
                let error = ServerFrame::Error(ErrorFrame::new(Code::SERVER_FULL, 0));
                encode_frame(&error, usize::MAX).map_or_else(|_| Vec::new(), |frame| frame.to_vec())
            }
            Self::Text => b"! error: server full\n".to_vec(),
        }
    }

    /// Tells a connection over the limit that the server is full, in this
    /// front end's words, and closes it.
    pub(crate) async fn refuse<T: Transport>(self, mut io: T) {
        let last_words = self.last_words();
        let (mut read, mut write) = io.split();
        if timeout(LINGER, write.write_all(&last_words)).await.is_ok() {
            let _ = write.shutdown().await;
            linger(&mut read).await;
        }
    }
}

/// Reads and discards for a moment, so that the peer reads our last frame
/// before the close instead of a reset caused by its unread bytes.
async fn linger<R: AsyncRead + Unpin>(io: &mut R) {
    // On the heap: an array here would make every connection's task, which
    // holds this future's state for its whole life, 4 KiB larger.
    let mut scratch = vec![0u8; 4096];
    let until = Instant::now() + LINGER;
    while let Ok(Ok(n)) = tokio::time::timeout_at(until, io.read(&mut scratch)).await {
        if n == 0 {
            break;
        }
    }
}
