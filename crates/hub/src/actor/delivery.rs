//! One message's fan-out: queueing it for each recipient found, counting
//! what became of it for each, and parking the sender's permit on the
//! recipients it congested.

use std::sync::Arc;

use bytes::Bytes;
use chinwag_protocol::{Code, Utf8};
use tokio::sync::OwnedSemaphorePermit;

use super::enqueue;
use crate::outbox::{Outbox, Pressure, PushError};
use crate::registry::{ConnId, IdSet, Member, Registry};

/// A recipient as the sender named it, who that is if anyone, and what
/// became of the message for them.
pub(super) struct Named<'a, 'r> {
    pub(super) name: Utf8<'a>,
    pub(super) found: Option<(ConnId, &'r Member)>,
    /// Not online, but registered (or online in a reliable session, which
    /// is given its messages once stored): the account's nickname as
    /// registered. The message is stored for it.
    pub(super) offline: Option<&'r str>,
    /// Online in a reliable session (this connection): its stored copy is
    /// delivered to it once the store has it, if it is still there.
    pub(super) held: Option<ConnId>,
    pub(super) status: Code,
}

/// A sender's in-flight permit while its messages are routed. Dropped once
/// they are...
pub(super) struct InFlight {
    whole: Option<OwnedSemaphorePermit>,
    /// ...unless a recipient is congested: then it is shared by every
    /// congested recipient, and released when the last of them has drained.
    shared: Option<Arc<OwnedSemaphorePermit>>,
}

impl InFlight {
    pub(super) fn new(permit: OwnedSemaphorePermit) -> Self {
        Self {
            whole: Some(permit),
            shared: None,
        }
    }

    /// The permit, shared: whoever holds a clone keeps it taken (the store,
    /// until the commit holding these messages returns). Lent, so that a
    /// holder who has it already takes no clone.
    pub(super) fn share(&mut self) -> Option<&Arc<OwnedSemaphorePermit>> {
        if let Some(permit) = self.whole.take() {
            self.shared = Some(Arc::new(permit));
        }
        self.shared.as_ref()
    }

    /// Leaves the permit with a congested recipient, until it drains.
    fn park(&mut self, outbox: &Outbox) {
        if let Some(permit) = self.whole.take() {
            self.shared = Some(Arc::new(permit));
        }
        if let Some(shared) = &self.shared {
            outbox.hold(shared.clone());
        }
    }
}

/// The bookkeeping of one message's fan-out.
pub(super) struct Delivery<'a, 'n> {
    pub(super) permit: &'a mut InFlight,
    pub(super) congested: &'a mut IdSet,
    /// Consumers to wake at the end of the batch.
    pub(super) wakes: &'a mut Vec<Arc<Outbox>>,
    /// Recipients this message overflowed, to be removed once it is routed.
    pub(super) cut: Vec<ConnId>,
    pub(super) delivered: u32,
    /// The recipients of a broadcast it could not be queued for.
    pub(super) failures: Vec<(Utf8<'n>, Code)>,
    /// The recipients whose queue this message left above its high-water
    /// mark: behind, for now.
    pub(super) behind: Vec<Arc<Outbox>>,
}

impl<'a> Delivery<'a, '_> {
    /// A message's fan-out under `permit`, nothing delivered yet.
    pub(super) fn new(
        permit: &'a mut InFlight,
        congested: &'a mut IdSet,
        wakes: &'a mut Vec<Arc<Outbox>>,
    ) -> Self {
        Self {
            permit,
            congested,
            wakes,
            cut: Vec::new(),
            delivered: 0,
            failures: Vec::new(),
            behind: Vec::new(),
        }
    }
}

impl<'n> Delivery<'_, 'n> {
    /// Queues `frame` for the `named` recipients found, or for everyone
    /// online but the sender.
    pub(super) fn fan_out(
        &mut self,
        from: ConnId,
        mut frame: Bytes,
        named: Option<&mut [Named<'_, '_>]>,
        registry: &'n Registry,
    ) {
        match named {
            Some(named) => {
                // The last recipient gets the frame itself: a `Bytes`
                // shared for the first time costs an allocation.
                let mut left = named.iter().filter(|named| named.found.is_some()).count();
                for recipient in named {
                    if let Some((id, member)) = recipient.found {
                        left -= 1;
                        let frame = if left == 0 {
                            std::mem::take(&mut frame)
                        } else {
                            frame.clone()
                        };
                        recipient.status = self.push(id, member, frame);
                    }
                }
            }
            None => {
                for (id, member) in registry.online() {
                    if id == from {
                        continue;
                    }
                    let status = self.push(id, member, frame.clone());
                    if status != Code::DELIVERED {
                        self.failures.push((member.nick.as_str().into(), status));
                    }
                }
            }
        }
    }

    /// Paces the sender once the message is queued, if its audience as a
    /// whole is behind: when at least half of the recipients it reached
    /// are above their high-water mark (for a message to one user, that
    /// one), the sender's permit is parked on each of them until they
    /// drain, so a publisher faster than the hub is slowed rather than
    /// anyone cut. A minority that falls behind does not pace anyone: each
    /// laggard has its own bounded queue, and is cut when the queue passes
    /// its limit, stays above the mark past the slow-consumer deadline, or
    /// a write to it makes no progress for that long. The publisher and
    /// every other recipient go on at full speed meanwhile.
    pub(super) fn pace(&mut self) {
        if self.behind.is_empty() {
            return;
        }
        if self.behind.len() * 2 >= self.delivered as usize {
            for outbox in &self.behind {
                self.permit.park(outbox);
            }
        }
        self.behind.clear();
    }

    fn push(&mut self, id: ConnId, member: &Member, frame: Bytes) -> Code {
        let queued = enqueue(id, &member.outbox, frame, self.wakes, self.congested);
        self.counted(id, member, queued)
    }

    /// Counts the outcome of queueing (or reserving room for) the message
    /// for `member`, and says what it was.
    pub(super) fn counted(
        &mut self,
        id: ConnId,
        member: &Member,
        queued: Result<Pressure, PushError>,
    ) -> Code {
        match queued {
            Ok(pressure) => {
                self.delivered += 1;
                member.received(1);
                if pressure == Pressure::Congested {
                    self.behind.push(member.outbox.clone());
                }
                Code::DELIVERED
            }
            Err(error) => {
                if error == PushError::Overflow {
                    self.cut.push(id);
                }
                Code::UNABLE_TO_DELIVER
            }
        }
    }
}
