//! `chinwag bench`: load a chinwag hub and measure it, the way hubload
//! measures the hubs people would otherwise pick, so that the figures
//! compare; and check every delivery on the way.
//!
//! ```text
//! chinwag bench fanout  --subscribers 100 --messages 100000 --size 64
//! chinwag bench direct  --pairs 50 --messages 50000 --size 64
//! chinwag bench direct  --pairs 50 --messages 50000 --size 64 --receipts
//! chinwag bench latency --subscribers 100 --rate 5000 --duration 10
//! chinwag bench conns   --count 10000 --source-ips 4 --server-pid PID
//! chinwag bench store   --senders 50 --messages 200000 --size 256 --window 16
//! ```
//!
//! Every workload first sends warm-up messages until each receiver has seen
//! one (`store`: until each sender's first message is acked), then
//! measures. Every delivery is checked: a run in which anything is
//! lost, duplicated, out of order or corrupt, an ack is wrong or missing, the
//! hub sends an error or cuts a connection, fails ([`Verdict::Failed`]; the
//! `chinwag` program exits with status 1). Setup problems (cannot connect,
//! nickname refused, bad flags) are a [`SetupError`] (status 2).
//!
//! The bench speaks the wire protocol itself, through `chinwag-protocol`
//! and a decoder of its own; it uses neither the client library nor the hub.
//!
//! # Entry point
//!
//! [`run`], given the hub's address and the parsed [`BenchArgs`], on a Tokio
//! runtime with [`WORKER_THREADS`] workers. The `chinwag` program (crate
//! `chinwag-client`, feature `cli`) parses the command line with
//! `chinwag bench` as its subcommand and calls it.
//!
//! # Layout
//!
//! Each module imports only modules listed before it, so that none imports
//! one that imports it back:
//!
//! - `cast.rs`: the count-to-float casts the figures need.
//! - `error.rs`: [`SetupError`].
//! - `clock.rs`: the clock that stamps messages and deliveries.
//! - `payload.rs`: the text of every message (a header with sender,
//!   sequence number and send time) and the id that marks warm-ups.
//! - `bar.rs`: the progress bar on stderr.
//! - `procstat.rs`: CPU time and memory of the bench and the hub, from
//!   `/proc`.
//! - `codec.rs`: the decoder, which reads bench messages in place.
//! - `ws.rs`: a WebSocket to the hub's web gateway as a byte stream
//!   (`--ws`): each frame written one binary message, the messages read
//!   one stream.
//! - `transport.rs`: how connections travel (plain TCP, TLS, WebSocket
//!   over either): their handshakes and the halves every workload reads
//!   and writes.
//! - `shared_write.rs`: a connection's write half, shared by its sender and
//!   its receiver.
//! - `receipts.rs`: with receipts, confirming what a connection receives
//!   (through a writer task of its own) and checking the receipts of what
//!   it sent.
//! - `receiver.rs`: the task that reads one connection and checks every
//!   frame.
//! - `report.rs`: the delivery checks, and the table or JSON object printed.
//! - `context.rs`: what every part of a run shares, and the report it
//!   builds.
//! - `conn.rs`: opening and registering connections, many at a time.
//! - `sender.rs`: writing `SEND` frames in batches.
//! - `wait.rs`: waiting on the receivers (deliveries, warm-up, the end).
//! - `stuck.rs`: registered readers that never read, for `latency --stuck`.
//! - `audience.rs`: the subscribers and publisher of a broadcast.
//! - `mailbox.rs`: the registered recipients of `store`, their accounts
//!   created over the wire and their mailboxes emptied after a run.
//! - `fanout.rs`, `direct.rs`, `latency.rs`, `conns.rs`, `store.rs`: the
//!   workloads, each saying what it does and what it reports.
//! - `command.rs`: [`BenchArgs`] and [`run`], which dispatches to a workload
//!   and prints its report.

mod audience;
mod bar;
mod cast;
mod clock;
mod codec;
mod command;
mod conn;
mod conns;
mod context;
mod direct;
mod error;
mod fanout;
mod latency;
mod mailbox;
mod payload;
mod procstat;
mod receipts;
mod receiver;
mod report;
mod sender;
mod shared_write;
mod store;
mod stuck;
mod transport;
mod unacked;
mod wait;
mod ws;
mod ws_frame;

pub use self::command::{BenchArgs, Verdict, WORKER_THREADS, run};
pub use self::error::SetupError;
pub use self::transport::Tls;
