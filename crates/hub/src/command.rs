//! What connections and sessions ask of the actor: the [`Command`]s of its
//! queue, and the answers some of them wait for.

use std::net::IpAddr;
use std::sync::Arc;

use chinwag_protocol::{AccountRequest, Code, Nick, SendPayload, ServerFrame};
use chinwag_store::{Mailbox, StoreError};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use crate::metrics::ActorFigures;
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
    /// The account's password, to log in to a registered nickname.
    pub(crate) password: Option<String>,
    /// The source address, which the throttle on wrong passwords counts
    /// under (none for exempt addresses and in-process sessions).
    pub(crate) address: Option<IpAddr>,
    pub(crate) reply: JoinReply,
}

/// An `ACCOUNT` request, and where its answer goes: an `ACCOUNT_DONE` or an
/// `ERROR` for the connection to queue. The connection waits for it before
/// reading on, so each has at most one password being checked.
#[derive(Debug)]
pub(crate) struct AccountJob {
    pub(crate) id: ConnId,
    pub(crate) address: Option<IpAddr>,
    pub(crate) request: AccountRequest,
    pub(crate) reply: oneshot::Sender<ServerFrame>,
}

/// Work done off the actor (a password hashed or checked, a store's
/// answer), coming back to it.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A login's password was checked; for a reliable session whose
    /// account's sent messages were not in memory, they were read.
    Login {
        join: Join,
        ok: bool,
        sent: Option<Result<Vec<chinwag_store::SentRecord>, StoreError>>,
    },
    /// An account request's password was checked (`ok`), and for a new
    /// account or password, the new hash made.
    Checked {
        job: AccountJob,
        ok: bool,
        hash: Option<Result<String, String>>,
    },
    /// The store carried out an account request (or failed to).
    Written {
        job: AccountJob,
        change: AccountChange,
        result: Result<(), StoreError>,
    },
    /// The statuses of acknowledgements that waited for the store
    /// ([`Settled`]). `batch` numbers the request, in the order handed
    /// over.
    /// `lost`: when the commit failed, the numbered copies for accounts
    /// offline (each account and number), whose numbers are to be told.
    Stored {
        batch: u64,
        settled: Settled,
        lost: Vec<(String, u64)>,
    },
    /// Numbers lost to a failed commit that the store could not record
    /// either: tried again at the actor's next sweep.
    Unrecorded(Vec<(String, chinwag_store::LostNumbers)>),
    /// A mailbox read at login, for connection `id`, and for a reliable
    /// session the numbers its account lost since it was last told.
    Mailbox {
        id: ConnId,
        mailbox: Result<Mailbox, StoreError>,
        gaps: Vec<chinwag_store::LostNumbers>,
    },
    /// Numbers a reliable session's account lost, taken from the store to
    /// be told to connection `id` (`GAP`).
    Gaps {
        id: ConnId,
        gaps: Vec<chinwag_store::LostNumbers>,
    },
    /// What the age limit's sweep dropped, per mailbox.
    Expired(Vec<chinwag_store::Expired>),
    /// Stored messages `nick` confirmed, whose senders are owed a receipt:
    /// each message's id and sender.
    Confirmed {
        nick: String,
        /// When the confirmation was handed to the store.
        received_ms: u64,
        confirmed: chinwag_store::Confirmed,
    },
    /// The receipts kept for connection `id`'s account while it was
    /// offline, taken at its login.
    KeptReceipts {
        id: ConnId,
        kept: Vec<chinwag_store::KeptReceipt>,
    },
}

/// What a written account request changes in the actor's table.
#[derive(Debug)]
pub(crate) enum AccountChange {
    /// The nickname is the request's.
    Created {
        hash: String,
    },
    Password {
        hash: String,
    },
    Deleted,
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
        /// When its bytes arrived (for the routing latency the admin
        /// endpoint shows).
        arrived: Instant,
    },
    /// Route several messages of one sender, in order: those a connection
    /// found already read behind one another. One permit covers them all,
    /// and is released once they are routed, or once the last congested
    /// recipient any of them was parked on has drained.
    SendMany {
        id: ConnId,
        sends: Vec<SendPayload>,
        permit: OwnedSemaphorePermit,
        /// When the last of their bytes arrived.
        arrived: Instant,
    },
    /// Create an account, change its password or delete it.
    Account(AccountJob),
    /// Connection `id` has handled these stored messages.
    Confirm { id: ConnId, ids: Vec<u64> },
    /// Connection `id` (a reliable session) has handled these receipts,
    /// in runs (a `CONFIRM_RECEIPTS` key is a run of one).
    ConfirmReceipts {
        id: ConnId,
        runs: Vec<chinwag_protocol::ReceiptKeyRun>,
    },
    /// Work done elsewhere, answered.
    Answer(Box<Answer>),
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
    /// Take the account policy and the slow-consumer deadline of a new
    /// configuration (`reconfigure.rs`).
    Reconfigure(Arc<crate::HubConfig>),
    /// Answer with the actor's figures (the admin endpoint).
    Figures {
        reply: oneshot::Sender<ActorFigures>,
    },
    /// Block the actor's thread for this long: a test hook that wedges the
    /// actor (`Hub::wedge_actor_for_tests`).
    Wedge(std::time::Duration),
}

/// A batch's statuses from the store, its messages in the order handed
/// over: each message's id and how many of `statuses` are its, and the
/// statuses one after another, each its recipient's index in the
/// message's `ACK` and its code. Flat, so that the store's thread makes two
/// vectors for a batch rather than one for each message, each freed by
/// the actor's thread (a free of another thread's memory costs more).
#[derive(Debug, Default)]
pub(crate) struct Settled {
    pub(crate) messages: Vec<(u64, usize)>,
    pub(crate) statuses: Vec<(usize, Code)>,
}
