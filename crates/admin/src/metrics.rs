//! `/metrics`: the hub's figures as `OpenMetrics` text, through the
//! Prometheus project's client. A [`Collector`] holding one snapshot
//! encodes it at scrape time; nothing is registered or counted between
//! scrapes.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use chinwag_hub::protocol::Code;
use chinwag_hub::store::{LATENCY_BOUNDS_US, Latencies, StoreStats};
use chinwag_hub::{HubMetrics, HubStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

/// `figures` as an `OpenMetrics` text exposition (`# EOF` included).
pub(crate) fn encode(figures: HubMetrics, ready: bool) -> Result<String, fmt::Error> {
    let mut registry = Registry::with_prefix("chinwag");
    registry.register_collector(Box::new(Snapshot { figures, ready }));
    let mut body = String::with_capacity(8 * 1024);
    prometheus_client::encoding::text::encode(&mut body, &registry)?;
    Ok(body)
}

/// One scrape's figures.
#[derive(Debug)]
struct Snapshot {
    figures: HubMetrics,
    ready: bool,
}

/// The label a refusal or a disconnect is counted under: the code's name,
/// in lower case.
fn reason(code: Code) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        Code::NO_SUCH_USER => "no_such_user",
        Code::UNABLE_TO_DELIVER => "unable_to_deliver",
        Code::MAILBOX_FULL => "mailbox_full",
        Code::STORE_FAILED => "store_failed",
        Code::BAD_REQUEST => "bad_request",
        Code::RATE_LIMITED => "rate_limited",
        Code::NOT_REGISTERED => "not_registered",
        Code::SHUTTING_DOWN => "shutting_down",
        code => return Cow::Owned(format!("code_{}", code.0)),
    })
}

/// Microseconds in seconds (exact for every bound, and near enough for a
/// sum).
fn seconds(us: u64) -> f64 {
    Duration::from_micros(us).as_secs_f64()
}

/// Writes one metric family after another.
struct Families<'a, 'b> {
    encoder: &'a mut DescriptorEncoder<'b>,
}

impl Families<'_, '_> {
    fn counter(&mut self, name: &str, help: &str, unit: Option<&Unit>, value: u64) -> fmt::Result {
        let metric = ConstCounter::new(value);
        let family = self
            .encoder
            .encode_descriptor(name, help, unit, metric.metric_type())?;
        metric.encode(family)
    }

    fn gauge(&mut self, name: &str, help: &str, unit: Option<&Unit>, value: u64) -> fmt::Result {
        let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
        let family = self
            .encoder
            .encode_descriptor(name, help, unit, metric.metric_type())?;
        metric.encode(family)
    }

    /// A counter with one `label`, a sample per value.
    fn labelled(
        &mut self,
        (name, help): (&str, &str),
        label: &str,
        samples: &[(Cow<'_, str>, u64)],
    ) -> fmt::Result {
        let mut family = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (value, count) in samples {
            let labels = [(label, value.as_ref())];
            ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn histogram(&mut self, name: &str, help: &str, latencies: &Latencies) -> fmt::Result {
        // The encoder takes each bucket's own count and adds them up; it
        // writes `f64::MAX` as the `+Inf` bucket, which holds the samples
        // past the last bound.
        let within: u64 = latencies.buckets.iter().sum();
        let buckets: Vec<(f64, u64)> = (LATENCY_BOUNDS_US.iter())
            .zip(latencies.buckets)
            .map(|(&bound, count)| (seconds(bound), count))
            .chain([(f64::MAX, latencies.count - within)])
            .collect();
        let mut family = self.encoder.encode_descriptor(
            name,
            help,
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        family.encode_histogram::<NoLabelSet>(
            seconds(latencies.sum_us),
            latencies.count,
            &buckets,
            None,
        )
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let figures = &self.figures;
        let mut out = Families {
            encoder: &mut encoder,
        };
        out.gauge(
            "ready",
            "1 once the hub's listeners are bound and its store is open",
            None,
            u64::from(self.ready),
        )?;
        population(&mut out, figures)?;
        messages(&mut out, figures)?;
        traffic(&mut out, figures)?;
        limits(&mut out, &figures.limits)?;
        out.histogram(
            "routing_latency",
            "Routing latency, sampled once per batch of the actor: from a message's bytes arriving to its being queued for every recipient",
            &figures.routing,
        )?;
        if let Some(store) = &figures.store {
            store_figures(&mut out, store)?;
        }
        Ok(())
    }
}

/// Who is connected, online and registered.
fn population(out: &mut Families<'_, '_>, figures: &HubMetrics) -> fmt::Result {
    out.gauge(
        "connections",
        "Connections served now (binary and text, registered or not)",
        None,
        figures.connections as u64,
    )?;
    out.gauge(
        "users_online",
        "Users online now (registered nicknames, in-process sessions included)",
        None,
        figures.online as u64,
    )?;
    out.gauge(
        "accounts",
        "Accounts (registered nicknames), online or not",
        None,
        figures.accounts as u64,
    )
}

/// Messages by what became of them.
fn messages(out: &mut Families<'_, '_>, figures: &HubMetrics) -> fmt::Result {
    out.counter(
        "messages_routed",
        "Messages routed (each SEND the hub took and gave an id)",
        None,
        figures.routed,
    )?;
    out.counter(
        "messages_delivered",
        "Copies of messages queued for online recipients",
        None,
        figures.delivered,
    )?;
    out.counter(
        "messages_stored",
        "Copies of messages stored for offline recipients (acknowledged STORED)",
        None,
        figures.stored,
    )?;
    let refused: Vec<_> = (figures.refused.iter())
        .map(|(&code, &count)| (reason(code), count))
        .collect();
    out.labelled(
        (
            "messages_refused",
            "Messages or copies refused, by the code their sender was given",
        ),
        "reason",
        &refused,
    )
}

/// Bytes each way, and what waits to be written.
fn traffic(out: &mut Families<'_, '_>, figures: &HubMetrics) -> fmt::Result {
    out.counter(
        "read",
        "Bytes read from clients",
        Some(&Unit::Bytes),
        figures.bytes_in,
    )?;
    out.counter(
        "written",
        "Bytes written to clients",
        Some(&Unit::Bytes),
        figures.bytes_out,
    )?;
    out.gauge(
        "queued",
        "Bytes queued for clients now, not yet written",
        Some(&Unit::Bytes),
        figures.queued_bytes,
    )
}

/// The store's size, commits and health.
fn store_figures(out: &mut Families<'_, '_>, store: &StoreStats) -> fmt::Result {
    if let Some(bytes) = store.disk_bytes {
        out.gauge(
            "store_disk",
            "Bytes the store takes on disk (database, log and index)",
            Some(&Unit::Bytes),
            bytes,
        )?;
    }
    out.histogram(
        "store_commit",
        "How long each group commit of the store took, fsync included",
        &store.commits,
    )?;
    out.counter(
        "store_failed_commits",
        "Group commits that failed and were rolled back (full disk, I/O error)",
        None,
        store.failed_commits,
    )?;
    out.gauge(
        "store_writable",
        "1 while the store's last commit succeeded",
        None,
        u64::from(store.writable),
    )
}

/// Connections closed or refused for a limit, by which.
fn limits(out: &mut Families<'_, '_>, limits: &HubStats) -> fmt::Result {
    let closed = [
        ("slow_consumer", limits.slow_consumers),
        ("flooding", limits.flooders),
        ("malformed_frame", limits.malformed_frames),
        ("frame_too_large", limits.oversized_frames),
        ("frame_timeout", limits.stalled_frames),
        ("registration_timeout", limits.registration_timeouts),
        ("ping_timeout", limits.ping_timeouts),
        ("shed_unregistered", limits.shed_unregistered),
    ]
    .map(|(why, count)| (Cow::Borrowed(why), count));
    out.labelled(
        (
            "disconnects",
            "Connections the hub closed for a limit, by which (slow consumers, flooders...)",
        ),
        "reason",
        &closed,
    )?;
    let refused = [
        ("server_full", limits.server_full),
        ("address_rate", limits.address_rate_refusals),
        ("address_unregistered", limits.address_unregistered_refusals),
        ("address_registered", limits.address_registered_refusals),
    ]
    .map(|(why, count)| (Cow::Borrowed(why), count));
    out.labelled(
        (
            "connections_refused",
            "Connections or logins refused at the door, by which limit",
        ),
        "reason",
        &refused,
    )
}
