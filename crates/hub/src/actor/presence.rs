//! Comings and goings: `PRESENCE` notices, gathered over a batch of
//! commands and queued once per follower.

use bytes::{Bytes, BytesMut};
use chinwag_protocol::{Presence, ServerFrame};

use super::{Actor, encode, enqueue};
use crate::outbox::PushError;
use crate::registry::{ConnId, Member};

/// `PRESENCE` notices waiting to be queued. A storm of connections (a
/// restart, a load balancer failing over) is n joins each announced to
/// everyone: n^2 notices. The joins and leaves of one batch of commands go
/// out together instead, as one buffer per recipient holding all of their
/// frames, so each recipient costs one queue slot and one wake-up per batch
/// rather than per notice. The wire is the same; only the queueing changes.
///
/// Order is kept: the actor queues these before it handles any other
/// command, and before waking anyone.
#[derive(Debug, Default)]
pub(super) struct PendingPresence {
    /// The encoded frames, one after another.
    frames: BytesMut,
    /// Who joined during the batch, and where in `frames` the notices that
    /// came after their own begin: they see only those.
    joined: Vec<(ConnId, usize)>,
}

impl PendingPresence {
    /// `subject` joined now without being announced (it asked for
    /// `QUIET`): like anyone who joined during the batch, it sees only the
    /// notices after this point (its roster has the earlier ones).
    pub(super) fn joined_quietly(&mut self, subject: ConnId) {
        self.joined.push((subject, self.frames.len()));
    }
}

impl Actor {
    /// Tells those who follow presence, but `subject`, that `nick` came or
    /// went, once the batch's notices are flushed.
    pub(super) fn presence(&mut self, subject: ConnId, nick: String, online: bool) {
        let frame = ServerFrame::Presence(Presence {
            online,
            ts_ms: self.now_ms,
            nick,
        });
        let Some(frame) = encode(&frame) else { return };
        let pending = &mut self.presence;
        pending.frames.extend_from_slice(&frame);
        if online {
            pending.joined.push((subject, pending.frames.len()));
        }
    }

    /// Queues the batch's presence notices to those who follow presence:
    /// all of them for those who were online before it, and for those who
    /// joined during it the ones after their own.
    pub(super) fn flush_presence(&mut self) {
        while !self.presence.frames.is_empty() {
            let all = self.presence.frames.split().freeze();
            let mut joined = std::mem::take(&mut self.presence.joined);
            joined.sort_unstable();
            // Their departures are announced in turn, hence the loop.
            self.tell_watchers(|id, _| {
                let from = joined
                    .binary_search_by_key(&id, |&(joiner, _)| joiner)
                    .map_or(0, |at| joined[at].1);
                (from < all.len()).then(|| all.slice(from..))
            });
            joined.clear();
            self.presence.joined = joined;
        }
    }

    /// Queues for each of those who follow presence the frames
    /// `frames_for` gives it, if any; whoever that overflows is cut, and
    /// leaves once all are queued.
    pub(super) fn tell_watchers(
        &mut self,
        mut frames_for: impl FnMut(ConnId, &Member) -> Option<Bytes>,
    ) {
        let mut cut = Vec::new();
        for (id, member) in self.registry.watchers() {
            let Some(frames) = frames_for(id, member) else {
                continue;
            };
            let queued = enqueue(
                id,
                &member.outbox,
                frames,
                &mut self.wakes,
                &mut self.congested,
            );
            if queued == Err(PushError::Overflow) {
                cut.push(id);
            }
        }
        for id in cut {
            self.leave(id);
        }
    }
}
