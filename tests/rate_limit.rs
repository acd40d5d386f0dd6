//! Flood control over real sockets, with `HubConfig::rate_limit` on.

mod support;

use std::time::Duration;

use chinwag::hub::{HubConfig, RateLimit};
use chinwag::protocol::{ClientFrame, Code, ServerFrame};
use support::{TestHub, register_all};

/// A burst of 3, then one request a second; still being refused a second
/// after the refusals began (with no pause of a second) is a flood.
fn limited() -> HubConfig {
    let mut config = HubConfig::default();
    config.rate_limit = Some(RateLimit {
        per_second: 1.0,
        burst: 3,
        grace: Duration::from_secs(1),
    });
    config
}

#[tokio::test]
async fn messages_over_the_rate_are_refused_with_their_id_and_the_connection_stays_open() {
    let hub = TestHub::with_config(limited()).await;
    let [mut alice, mut bob] = register_all(&hub, ["alice", "bob"]).await;
    for seq in 1..=6 {
        alice.send_to(&["bob"], &format!("{seq}")).await;
    }
    // The burst is delivered; of the rest, sent within microseconds, at most
    // one can have been let through by the refill.
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    while acked.len() + refused.len() < 6 {
        match alice.recv().await.expect("alice was closed") {
            ServerFrame::Ack(ack) => acked.push(ack.client_id),
            ServerFrame::Error(e) => {
                assert_eq!(e.code, Code::RATE_LIMITED);
                refused.push(e.reference);
            }
            other => panic!("alice got {other:?}"),
        }
    }
    assert!(acked.starts_with(&[1, 2, 3]), "{acked:?}");
    assert!(refused.len() >= 2, "acked {acked:?}, refused {refused:?}");
    // Refused messages were not delivered.
    for seq in &acked {
        assert_eq!(bob.expect_message().await.text, seq.to_string());
    }
    assert!(
        !bob.sync()
            .await
            .iter()
            .any(|f| matches!(f, ServerFrame::Message(_)))
    );
    // Flood control covers every request: a `WHO` over the rate is refused
    // like a message, and the connection stays open.
    alice.send(ClientFrame::Who).await;
    let refused = alice.expect_next_error().await;
    assert_eq!((refused.code, refused.reference), (Code::RATE_LIMITED, 0));
    assert_eq!(hub.hub.roster().await.unwrap(), ["alice", "bob"]);
    assert_eq!(hub.hub.stats().flooders, 0);
}

#[tokio::test]
async fn a_sender_that_keeps_flooding_is_disconnected_and_others_are_unaffected() {
    let hub = TestHub::with_config(limited()).await;
    let [mut flooder, mut bob] = register_all(&hub, ["flooder", "bob"]).await;
    // 50 a second, against a rate of 1, until the hub cuts it (after the
    // second of grace) or 10 s have passed: the pace of a program, not of a
    // pasted text, which stays connected (the test above).
    for seq in 0..500 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The hub may close while we are still writing.
        if flooder
            .write_raw_lossy(&support::encode(&chinwag::protocol::ClientFrame::Send(
                chinwag::protocol::SendFrame {
                    id: seq + 1,
                    to: support::users(&["bob"]),
                    text: "spam".to_owned(),
                },
            )))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut codes = Vec::new();
    loop {
        match flooder.recv().await {
            Some(ServerFrame::Error(e)) => {
                codes.push(e.code);
                if e.code == Code::FLOODING {
                    break;
                }
                assert_eq!(e.code, Code::RATE_LIMITED);
            }
            Some(ServerFrame::Ack(_) | ServerFrame::Presence(_)) => {}
            other => panic!("expected RATE_LIMITED errors then FLOODING, got {other:?}"),
        }
    }
    // Refused for about the grace (a second at 50 a second) before the cut.
    assert!(codes.len() > 20, "{}", codes.len());
    flooder.expect_eof().await;
    assert_eq!(bob.expect_presence().await, ("flooder".to_owned(), false));
    let _carol = hub.register("carol").await;
    assert_eq!(bob.expect_presence().await, ("carol".to_owned(), true));
}
