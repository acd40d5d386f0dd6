//! What connections and sessions ask of the actor: the [`Command`]s of its
//! queue, and the answers some of them wait for.

use std::sync::Arc;

use chinwag_protocol::{Code, Nick, SendPayload};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::outbox::Outbox;
use crate::registry::ConnId;

/// The actor's answer to a [`Command::Join`]: registered, or refused with a
/// code and the unregistered place handed back.
pub(crate) type JoinReply = oneshot::Sender<Result<(), (Code, Option<OwnedSemaphorePermit>)>>;

/// A request to register `nick` for connection `id`, whose frames go to
/// `outbox`.
#[derive(Debug)]
pub(crate) struct Join {
    pub(crate) id: ConnId,
    pub(crate) nick: Nick,
    pub(crate) outbox: Arc<Outbox>,
    /// The options `HELLO` asked for, if it carried the field.
    pub(crate) options: Option<u32>,
    /// The connection's place under the limit of unregistered ones. It is
    /// given up before the `WELCOME` is queued, so that no one who has read
    /// that `WELCOME` finds the place still taken, and handed back with a
    /// refusal.
    pub(crate) unregistered: Option<OwnedSemaphorePermit>,
    pub(crate) reply: JoinReply,
}

/// What connections and sessions ask of the actor.
#[derive(Debug)]
pub(crate) enum Command {
    /// Register a nickname.
    Join(Join),
    /// Route a message. The permit is the sender's in-flight slot: dropped
    /// once routed, or parked on a congested recipient's outbox.
    Send {
        id: ConnId,
        send: SendPayload,
        permit: OwnedSemaphorePermit,
    },
    /// Route several messages of one sender, in order: those a connection
    /// found already read behind one another. One permit covers them all,
    /// and is released once they are routed, or once the last congested
    /// recipient any of them was parked on has drained.
    SendMany {
        id: ConnId,
        sends: Vec<SendPayload>,
        permit: OwnedSemaphorePermit,
    },
    /// The status of the `recipient`th entry of the acknowledgement of
    /// `message_id`, which was waiting for it (from a store's commit, or a
    /// remote node's answer).
    #[expect(
        dead_code,
        reason = "sent by the mailbox's store and by remote nodes; neither exists yet"
    )]
    Settle {
        message_id: u64,
        recipient: usize,
        status: Code,
    },
    /// Queue a `ROSTER` frame for connection `id`.
    Who { id: ConnId },
    /// Connection `id` is gone. `done` is answered once the actor has handled
    /// everything the connection sent before, so that the acks of its last
    /// messages are queued before its outbox closes.
    Leave {
        id: ConnId,
        done: Option<oneshot::Sender<()>>,
    },
    /// Answer with the roster (for embedders).
    Roster { reply: oneshot::Sender<Vec<String>> },
}
