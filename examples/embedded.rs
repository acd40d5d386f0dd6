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
use chinwag::protocol::{Recipients, ServerFrame};

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

    println!("online: {:?}", hub.roster().await?);
    alice.quit().await;
    drop(bob);
    hub.shutdown().await;
    server.await??;
    Ok(())
}

fn show(who: &str, frame: &ServerFrame) {
    match frame {
        ServerFrame::Message(m) => println!("[{who}] <{}> {}", m.from, m.text),
        ServerFrame::Presence(p) => {
            let state = if p.online {
                "is online"
            } else {
                "went offline"
            };
            println!("[{who}] * {} {state}", p.nick);
        }
        ServerFrame::Ack(a) => println!(
            "[{who}] ack #{}: delivered to {} recipient(s)",
            a.client_id, a.delivered
        ),
        other => println!("[{who}] {other:?}"),
    }
}
