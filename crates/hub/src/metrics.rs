//! What the hub tells its operator (the admin endpoint's `/metrics` and
//! `/connz`), kept where each figure is made so that counting costs the
//! hot paths nothing they share:
//!
//! - the actor counts messages by outcome and samples routing latency in
//!   its own memory ([`Tally`]), and each registered user's messages in
//!   its [`Member`](crate::registry::Member); a scrape asks it for them
//!   with a command, as anyone else asks it anything;
//! - each connection counts the bytes it reads in its own [`ConnMeter`]
//!   (written by its reader alone), and its outbox counts what its writer
//!   wrote under the lock it already takes;
//! - the table of meters ([`Meters`]) is touched only when a connection
//!   comes and goes, and when a scrape reads it.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::SystemTime;

use chinwag_protocol::Code;
use chinwag_store::{Latencies, StoreStats};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;

use crate::front::Front;
use crate::outbox::Outbox;
use crate::registry::ConnId;
use crate::{Hub, HubError, HubStats};

/// The hub's figures at one moment ([`Hub::metrics`]). Counters count since
/// the hub started.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct HubMetrics {
    /// Connections served now (binary and text, registered or not).
    pub connections: usize,
    /// Users online now (registered nicknames: connections and in-process
    /// sessions).
    pub online: usize,
    /// Accounts (registered nicknames), online or not.
    pub accounts: usize,
    /// Messages routed (each `SEND` the hub took and gave an id).
    pub routed: u64,
    /// Copies queued for online recipients.
    pub delivered: u64,
    /// Copies stored for offline recipients (acknowledged `STORED`).
    pub stored: u64,
    /// Messages or copies refused, by the code their sender was given
    /// (`NO_SUCH_USER`, `RATE_LIMITED`, `MAILBOX_FULL`...).
    pub refused: BTreeMap<Code, u64>,
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Bytes queued for clients now, not yet written.
    pub queued_bytes: u64,
    /// Limits hit: slow consumers, flooders, refusals...
    pub limits: HubStats,
    /// Routing latency, sampled (one message per batch of the actor's
    /// commands): from its bytes' arrival off the socket to its being
    /// queued for every recipient.
    pub routing: Latencies,
    /// The store's figures, for a hub that keeps one.
    pub store: Option<StoreStats>,
}

/// One connection as `/connz` shows it ([`Hub::connections`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The hub's id for it: unique while the hub runs, in order of arrival.
    pub id: u64,
    /// Its nickname, once registered.
    pub nick: Option<String>,
    /// Where it came from.
    pub peer: String,
    /// The protocol it speaks.
    pub front: Front,
    /// When it was accepted.
    pub since: SystemTime,
    /// Messages it sent (`SEND`s routed).
    pub msgs_in: u64,
    /// Messages queued for it.
    pub msgs_out: u64,
    /// Bytes read from it.
    pub bytes_in: u64,
    /// Bytes written to it.
    pub bytes_out: u64,
    /// Bytes queued for it, not yet written.
    pub queued_bytes: u64,
}

/// What the actor counts in its own memory: plain integers, never shared.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub(crate) routed: u64,
    pub(crate) delivered: u64,
    pub(crate) stored: u64,
    pub(crate) refused: BTreeMap<Code, u64>,
    pub(crate) routing: Latencies,
    /// When the bytes of the batch's first message arrived; its latency is
    /// taken when the batch is done.
    pub(crate) sample: Option<Instant>,
}

impl Tally {
    /// Counts a message or a copy refused with `code`.
    pub(crate) fn refuse(&mut self, code: Code) {
        *self.refused.entry(code).or_default() += 1;
    }

    /// Counts a recipient's final status: delivered, stored or refused.
    pub(crate) fn status(&mut self, code: Code) {
        match code {
            Code::DELIVERED => self.delivered += 1,
            Code::STORED => self.stored += 1,
            code => self.refuse(code),
        }
    }

    /// Notes when the bytes of a message to route arrived, if it is the
    /// batch's first.
    pub(crate) fn arrived(&mut self, at: Instant) {
        self.sample.get_or_insert(at);
    }

    /// At the end of a batch: the sample's latency, if it had one.
    pub(crate) fn batch_done(&mut self) {
        if let Some(at) = self.sample.take() {
            self.routing.record(at.elapsed());
        }
    }
}

/// What a scrape asks of the actor.
#[derive(Debug, Default)]
pub(crate) struct ActorFigures {
    pub(crate) tally: Tally,
    pub(crate) online: usize,
    pub(crate) accounts: usize,
    /// Per registered connection: messages sent and received.
    pub(crate) members: HashMap<ConnId, (u64, u64)>,
}

/// One connection's meter: what it is, and the bytes its reader read.
#[derive(Debug)]
pub(crate) struct ConnMeter {
    id: ConnId,
    peer: String,
    front: Front,
    since: SystemTime,
    /// Set once, when it registers.
    nick: OnceLock<String>,
    /// Written by the connection's reader alone (a load and a store, no
    /// locked instruction); read by scrapes.
    bytes_in: AtomicU64,
    outbox: Arc<Outbox>,
}

impl ConnMeter {
    pub(crate) fn registered(&self, nick: &str) {
        let _ = self.nick.set(nick.to_owned());
    }

    fn read(&self, bytes: usize) {
        let total = self.bytes_in.load(Ordering::Relaxed) + bytes as u64;
        self.bytes_in.store(total, Ordering::Relaxed);
    }

    fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }
}

/// Every connection's meter, and the totals of those gone.
#[derive(Debug, Default)]
pub(crate) struct Meters {
    table: Mutex<MeterTable>,
}

#[derive(Debug, Default)]
struct MeterTable {
    live: HashMap<ConnId, Arc<ConnMeter>>,
    /// Bytes in and out of connections that have closed, so that the
    /// totals only ever grow.
    gone_in: u64,
    gone_out: u64,
}

impl Meters {
    fn lock(&self) -> std::sync::MutexGuard<'_, MeterTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A meter for a connection just accepted, in the table until the
    /// returned guard is dropped.
    pub(crate) fn enlist(
        self: &Arc<Self>,
        id: ConnId,
        peer: String,
        front: Front,
        outbox: Arc<Outbox>,
    ) -> MeterGuard {
        let meter = Arc::new(ConnMeter {
            id,
            peer,
            front,
            since: SystemTime::now(),
            nick: OnceLock::new(),
            bytes_in: AtomicU64::new(0),
            outbox,
        });
        self.lock().live.insert(id, meter.clone());
        MeterGuard {
            meters: self.clone(),
            meter,
        }
    }

    /// Bytes in, bytes out and bytes queued, over every connection ever.
    fn totals(&self) -> (u64, u64, u64) {
        let table = self.lock();
        let (mut bytes_in, mut bytes_out, mut queued) = (table.gone_in, table.gone_out, 0);
        for meter in table.live.values() {
            let (written, waiting) = meter.outbox.traffic();
            bytes_in += meter.bytes_in();
            bytes_out += written;
            queued += waiting;
        }
        (bytes_in, bytes_out, queued)
    }

    fn snapshot(&self) -> Vec<Arc<ConnMeter>> {
        self.lock().live.values().cloned().collect()
    }
}

/// A connection's place in the table of meters; leaving it adds the
/// connection's bytes to the totals of those gone, in the same step.
#[derive(Debug)]
pub(crate) struct MeterGuard {
    meters: Arc<Meters>,
    pub(crate) meter: Arc<ConnMeter>,
}

impl Drop for MeterGuard {
    fn drop(&mut self) {
        let mut table = self.meters.lock();
        if table.live.remove(&self.meter.id).is_some() {
            table.gone_in += self.meter.bytes_in();
            table.gone_out += self.meter.outbox.traffic().0;
        }
    }
}

/// A read half whose bytes are counted on its connection's meter.
#[derive(Debug)]
pub(crate) struct Metered<R> {
    inner: R,
    meter: Arc<ConnMeter>,
}

impl<R> Metered<R> {
    pub(crate) fn new(inner: R, meter: Arc<ConnMeter>) -> Self {
        Self { inner, meter }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Metered<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_ready() {
            this.meter.read(buf.filled().len() - before);
        }
        polled
    }
}

impl Hub {
    /// The hub's figures now: one round trip through the actor (behind
    /// whatever is queued for it), and a look at every connection's meter.
    ///
    /// # Errors
    /// [`HubError::Closed`] once the hub has shut down.
    pub async fn metrics(&self) -> Result<HubMetrics, HubError> {
        let figures = self.actor_figures().await?;
        let (bytes_in, bytes_out, queued_bytes) = self.shared.meters.totals();
        let limits = self.stats();
        let mut refused = figures.tally.refused;
        if limits.rate_limited > 0 {
            *refused.entry(Code::RATE_LIMITED).or_default() += limits.rate_limited;
        }
        Ok(HubMetrics {
            connections: self.connection_count(),
            online: figures.online,
            accounts: figures.accounts,
            routed: figures.tally.routed,
            delivered: figures.tally.delivered,
            stored: figures.tally.stored,
            refused,
            bytes_in,
            bytes_out,
            queued_bytes,
            limits,
            routing: figures.tally.routing,
            store: self.store_stats(),
        })
    }

    /// The store's figures now, for a hub that keeps one: no round trip
    /// through the actor (a look at the store's counters and the size of
    /// its files).
    pub fn store_stats(&self) -> Option<StoreStats> {
        self.shared.mail.as_ref().map(|mail| mail.stats())
    }

    /// Every connection served now (binary and text; in-process sessions
    /// have none), in no particular order.
    ///
    /// # Errors
    /// [`HubError::Closed`] once the hub has shut down.
    pub async fn connections(&self) -> Result<Vec<ConnectionInfo>, HubError> {
        let figures = self.actor_figures().await?;
        let meters = self.shared.meters.snapshot();
        Ok(meters
            .into_iter()
            .map(|meter| {
                let (msgs_in, msgs_out) =
                    (figures.members.get(&meter.id).copied()).unwrap_or_default();
                let (bytes_out, queued_bytes) = meter.outbox.traffic();
                ConnectionInfo {
                    id: meter.id.0,
                    nick: meter.nick.get().cloned(),
                    peer: meter.peer.clone(),
                    front: meter.front,
                    since: meter.since,
                    msgs_in,
                    msgs_out,
                    bytes_in: meter.bytes_in(),
                    bytes_out,
                    queued_bytes,
                }
            })
            .collect())
    }

    async fn actor_figures(&self) -> Result<ActorFigures, HubError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.command(crate::command::Command::Figures { reply })
            .await?;
        answer.await.map_err(|_| HubError::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted_by_outcome() {
        let mut tally = Tally::default();
        for code in [
            Code::DELIVERED,
            Code::DELIVERED,
            Code::STORED,
            Code::NO_SUCH_USER,
            Code::NO_SUCH_USER,
            Code::MAILBOX_FULL,
        ] {
            tally.status(code);
        }
        assert_eq!((tally.delivered, tally.stored), (2, 1));
        assert_eq!(tally.refused.get(&Code::NO_SUCH_USER), Some(&2));
        assert_eq!(tally.refused.get(&Code::MAILBOX_FULL), Some(&1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_samples_its_first_message_only() {
        let mut tally = Tally::default();
        let first = Instant::now();
        tokio::time::advance(std::time::Duration::from_millis(3)).await;
        tally.arrived(first);
        tally.arrived(Instant::now());
        tally.batch_done();
        tally.batch_done();
        assert_eq!(tally.routing.count, 1);
        assert_eq!(tally.routing.sum_us, 3_000);
    }
}
