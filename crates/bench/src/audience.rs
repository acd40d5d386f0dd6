//! The audience of a broadcast, shared by `fanout` and `latency`: N
//! subscribers and one publisher, connected, registered, and warmed up
//! until every subscriber has seen a message.

use chinwag_protocol::Recipients;

use crate::conn::{self, Peer, STREAM_READ_BUFFER, Spec};
use crate::context::Ctx;
use crate::error::SetupError;
use crate::receiver::Expect;
use crate::sender::Sender;
use crate::wait::{count_ready, not_ready};

/// Connects `subscribers` receivers (`s0`, `s1`, ...) of one publisher's
/// broadcasts, then the publisher (`pub`), which is the last peer returned.
/// Receivers expect `messages` data messages and record latencies from
/// sequence number `record_from` on; `stuck` stuck readers are in the
/// audience besides.
pub(crate) async fn connect(
    ctx: &Ctx,
    subscribers: u32,
    messages: u64,
    size: usize,
    record_from: u64,
    stuck: u32,
) -> Result<Vec<Peer>, SetupError> {
    let specs = (0..subscribers)
        .map(|i| Spec {
            nick: format!("s{i}"),
            expect: Expect {
                from: Some(0),
                messages,
                size,
                record_from,
                ack_recipients: None,
                stuck: 0,
            },
            source: None,
            read_buffer: STREAM_READ_BUFFER,
            presence: true,
            receipts: None,
        })
        .collect();
    let mut peers =
        conn::connect_many(ctx, specs, &mut ctx.bar(subscribers.into(), "connecting")).await?;
    let publisher = conn::connect(
        ctx,
        Spec {
            nick: "pub".to_owned(),
            expect: Expect {
                from: None,
                messages: 0,
                size,
                record_from: 0,
                ack_recipients: Some(subscribers),
                stuck,
            },
            source: None,
            read_buffer: STREAM_READ_BUFFER,
            presence: true,
            receipts: None,
        },
    )
    .await?;
    peers.push(publisher);
    Ok(peers)
}

/// Builds the publisher's sender (the last of `peers`) and sends warm-up
/// messages until every receiver has seen one. Returns the sender, whether
/// all were ready, and the failures found on the way.
pub(crate) async fn warm_up(
    ctx: &Ctx,
    peers: &[Peer],
    size: usize,
) -> Result<(Sender, bool, Vec<String>), SetupError> {
    let (publisher, receivers) = peers
        .split_last()
        .ok_or(SetupError::Task("no publisher".to_owned()))?;
    let mut sender = Sender::new(publisher, 0, Recipients::Everyone, size, ctx.clock)?;
    let mut failures = Vec::new();
    let all_ready = match sender
        .warm_up(ctx.ready_until(), || {
            count_ready(receivers) == receivers.len()
        })
        .await
    {
        Ok(all) => all,
        Err(error) => {
            failures.push(format!("pub: warm-up failed: {error}"));
            false
        }
    };
    failures.extend(not_ready(count_ready(receivers), receivers.len()));
    Ok((sender, all_ready, failures))
}
