//! chinwag's durable store: registered accounts and the mailboxes of
//! messages waiting for their offline owners, in SQLite.
//!
//! # The promise
//!
//! A message answered [`StoreOutcome::Stored`] is on disk: the transaction
//! holding it has committed, and with the settings below that means its
//! bytes were fsync'd to the write-ahead log before `COMMIT` returned. It
//! survives `kill -9` of the process and, given a disk that honours fsync, a
//! power loss. A write that failed is answered [`StoreError::Failed`], never
//! `Stored`. The promise rests on:
//!
//! - SQLite in WAL mode with `synchronous=FULL` (`schema.rs`): each commit
//!   appends to `chinwag.db-wal` and fsyncs it; recovery after a crash
//!   replays committed frames and ignores a torn tail.
//! - Answers sent only after `COMMIT` has returned (`writer.rs`): group commit
//!   shares one fsync among many writes but answers none of them early.
//! - The reliable path's batches in the batch log (`logged.rs`): a group's
//!   frame is fsync'd before its `COMMIT`, and recovery takes it only if
//!   that `COMMIT` happened.
//! - One process per data directory (`lock.rs`).
//!
//! The crash test (`tests/crash.rs`) kills a writing process with `kill -9`
//! at random moments and checks that every acknowledged message is there.
//! `docs/durability.md` says what was shown and how to back up a running
//! store.
//!
//! # Shape
//!
//! [`Store::open`] takes the data directory's lock and starts two threads:
//! the writer, which owns the read-write connection and does group commit,
//! and the reader, with a read-only connection, to which the writer passes
//! reads once the writes queued before them have committed. The [`Store`]
//! handle is a cheap clone around the writer's bounded queue: handing over a
//! request never waits (a full queue is [`StoreError::Busy`] at once), and
//! each request carries a `tokio::sync::oneshot` on which its answer comes,
//! seen by the caller as a [`Pending`] to `.await` (or
//! [`wait`](Pending::wait) for outside a runtime). So the hub's actor can
//! hand a write over and go on routing, and take the answer later as a
//! message.
//!
//! The hub is to talk to the store through two object-safe traits,
//! [`MailStore`] and [`AccountStore`], so that a clustered backend can be
//! another implementation of them.
//!
//! # Layout
//!
//! | file | what it holds |
//! |---|---|
//! | `store.rs` | the [`Store`] handle: opening, handing requests over, the traits' SQLite implementation |
//! | `backend.rs` | the [`MailStore`] and [`AccountStore`] traits and the contract every backend keeps |
//! | `writer.rs` | the writer thread's group commit, and the reader thread |
//! | `batch_log/` | a log of the store's own: checksummed frames in segment files that are reused |
//! | `logged.rs` | the reliable path's batches in the batch log, and their hand-over to the tables at open |
//! | `jobs.rs` | requests as the threads see them: work on a connection and the oneshot to answer on |
//! | `queries.rs` | every SQL statement, one function each |
//! | `schema.rs` | the migrations and the connections' durability settings |
//! | `lock.rs` | the data directory's lock |
//! | `message.rs`, `account.rs` | what the store holds, and a store's outcomes |
//! | `pending.rs` | [`Pending`], an answer still to come |
//! | `stats.rs` | what the store tells its operator: commit latencies, whether it can write, its size |
//! | `config.rs`, `error.rs` | every limit with its default; the crate's error |
//!
//! # Example
//!
//! ```
//! use chinwag_store::{AccountStore, MailStore, NewAccount, Store, StoreConfig, StoreOutcome, StoredMessage};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(&StoreConfig::new(dir.path()))?;
//! store
//!     .create_account(NewAccount {
//!         nick: "Bob".into(),
//!         password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
//!         created_ms: 1_700_000_000_000,
//!     })?
//!     .wait()?;
//! let message = StoredMessage {
//!     recipient: "bob".into(),
//!     id: 42,
//!     sender: "alice".into(),
//!     to: vec!["bob".into()],
//!     ts_ms: 1_700_000_000_001,
//!     text: "see you at noon".into(),
//!     receipt: false,
//!     number: 0,
//! };
//! // `.await` it inside a runtime; `wait` blocks a plain thread.
//! assert_eq!(store.store_message(message)?.wait()?, StoreOutcome::Stored);
//! let mailbox = store.mailbox("BOB")?.wait()?;
//! assert_eq!(mailbox.messages[0].text, "see you at noon");
//! assert_eq!(store.confirm("bob", vec![42], 1)?.wait()?.removed, 1);
//! # Ok::<(), chinwag_store::StoreError>(())
//! ```

mod account;
mod backend;
mod batch_log;
mod blob;
mod checkpoint;
mod chunked_stack;
mod config;
mod error;
mod id_map;
mod index;
mod jobs;
mod journal;
mod kept_receipts;
mod lock;
mod logged;
mod message;
mod pending;
mod queries;
mod receipt_log;
mod release_log;
mod routed;
mod schema;
mod sent_log;
mod settling;
mod stats;
mod store;
mod writer;

pub use account::{Account, NewAccount};
pub use backend::{AccountStore, MailStore};
pub use config::{DEFAULT_DATA_DIR, StoreConfig};
pub use error::StoreError;
pub use jobs::Then;
pub use message::{
    Confirmed, Expired, KeptReceipt, LostNumbers, Mailbox, SentRecord, StoreOutcome, StoredMessage,
    to_names,
};
pub use pending::Pending;
pub use queries::{MAX_KEPT_RECEIPTS, SENT_MAX_AGE, SENT_WINDOW};
pub use routed::{CopyParts, Routed};
pub use stats::{LATENCY_BOUNDS_US, Latencies, StoreStats};
pub use store::Store;
