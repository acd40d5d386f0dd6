//! Embeds a chinwag hub in a Tokio program: serves TCP on an ephemeral port,
//! attaches two in-process sessions, has them talk, then shuts down.
//!
//! Run it with:
//!
//! ```sh
//! cargo run --example embedded
//! ```
//!
//! While it runs (a few seconds), TCP clients can connect to the address it
//! prints and talk to the in-process users.

use std::time::Duration;

use chinwag::hub::{Hub, HubConfig};
use chinwag::protocol::{Recipients, ServerFrame, text};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hub = Hub::start(HubConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("hub listening on {}", listener.local_addr()?);
    let server = tokio::spawn({
        let hub = hub.clone();
        async move { hub.serve(listener).await }
    });

    let mut alice = hub.attach("alice").await?;
    let mut bob = hub.attach("bob").await?;

    alice
        .send(
            Recipients::Users(vec!["bob".into()]),
            "hi bob, from inside the process",
        )
        .await?;
    bob.send(Recipients::Everyone, "hello, everyone").await?;

    // Print what each of them sees for a moment.
    let deadline = tokio::time::sleep(Duration::from_secs(2));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            Some(frame) = alice.recv() => show("alice", &frame),
            Some(frame) = bob.recv() => show("bob", &frame),
        }
    }

    println!("online: {}", hub.roster().await?.join(", "));
    alice.quit().await;
    drop(bob);
    hub.shutdown().await;
    server.await??;
    Ok(())
}

/// Prints a frame the way the `chinwag` program shows it: the same line
/// formats (`chinwag::protocol::text`), a peer's text made visible.
fn show(who: &str, frame: &ServerFrame) {
    let line = match frame {
        ServerFrame::Welcome(w) => {
            format!("* welcome, {}; online: {}", w.nick, w.roster.join(", "))
        }
        ServerFrame::Message(m) => text::format_message(&text::utc_clock(m.ts_ms), m),
        ServerFrame::Presence(p) => text::format_presence(p),
        ServerFrame::Roster(r) => text::format_roster(r),
        ServerFrame::Ack(a) => {
            let failures = text::format_ack_failures(a);
            if failures.is_empty() {
                format!(
                    "* message {} delivered to {} user(s)",
                    a.client_id, a.delivered
                )
            } else {
                failures.join("\n")
            }
        }
        ServerFrame::AckRun(run) => format!("* {} messages delivered", run.count),
        ServerFrame::Error(e) => format!("! {}", text::visible(&e.message)),
        // Liveness, and accounts, the table of users, receipts and reliable
        // sessions, which this example does not ask for.
        ServerFrame::Ping(_)
        | ServerFrame::Receipts(_)
        | ServerFrame::ReceiptRuns(_)
        | ServerFrame::Pong(_)
        | ServerFrame::AccountDone(_)
        | ServerFrame::Mailbox(_)
        | ServerFrame::StoredMessage(_)
        | ServerFrame::Sequenced(_)
        | ServerFrame::Gap(_)
        | ServerFrame::Users(_)
        | ServerFrame::User(_) => return,
    };
    println!("[{who}] {line}");
}
