//! A first end-to-end check: two clients over real sockets.

mod support;

use chinwag::protocol::{Code, Recipients};
use support::TestHub;

#[tokio::test]
async fn direct_message_crosses_real_sockets() {
    let hub = TestHub::start().await;
    let mut alice = hub.register("alice").await;
    let mut bob = hub.register("bob").await;
    assert_eq!(alice.expect_presence().await, ("bob".to_owned(), true));

    let id = alice.send_to(&["BOB", "nobody"], "hi bob").await;
    let message = bob.expect_message().await;
    assert_eq!(message.from, "alice");
    assert_eq!(message.text, "hi bob");
    assert_eq!(message.to, Recipients::Users(vec!["bob".into()]));

    let ack = alice.expect_ack(id).await;
    assert_eq!(ack.delivered, 1);
    assert_eq!(ack.statuses[0].status, Code::DELIVERED);
    assert_eq!(ack.statuses[1].status, Code::NO_SUCH_USER);
}
