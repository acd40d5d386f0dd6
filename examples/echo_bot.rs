//! An echo bot built on the chinwag client library: it joins as `echo` and
//! sends every direct message straight back to its sender. Broadcasts are
//! ignored, so that two bots cannot echo each other forever through everyone.
//!
//! It shows connecting with automatic reconnection, reading events, and
//! replying without waiting for each reply's ack before reading on (the
//! acks are collected beside the event loop).
//!
//! Run a hub, the bot, and talk to it:
//!
//! ```sh
//! cargo run -p chinwagd &
//! cargo run --example echo_bot -- 127.0.0.1:2446
//! cargo run -p chinwag-client --bin chinwag -- chat --nick alice    # then type: @echo hello
//! ```
//!
//! The address defaults to `127.0.0.1:2446`. Ctrl+C stops the bot.

use chinwag::client::{Backoff, Client, ClientOptions, Event, PendingAck, Recipients};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2446".to_owned());
    let options = ClientOptions::default().reconnect(Backoff::default());
    let (client, mut events) = Client::connect_with(addr.as_str(), "echo", options).await?;
    println!("echo bot joined {addr} as {}", client.nick());

    let mut replies: FuturesUnordered<PendingAck> = FuturesUnordered::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            Some(reply) = replies.next(), if !replies.is_empty() => match reply {
                Ok(ack) if ack.all_delivered() => {}
                Ok(_) => eprintln!("a reply found its sender gone"),
                Err(error) => eprintln!("a reply failed: {error}"),
            },
            event = events.recv() => match event {
                Some(Event::Message(message)) => {
                    let direct = matches!(message.to, Recipients::Users(_));
                    if !direct || message.from.eq_ignore_ascii_case(client.nick()) {
                        continue;
                    }
                    println!("<{}> {}", message.from, message.text);
                    let to = Recipients::Users(vec![message.from]);
                    match client.submit(to, message.text).await {
                        Ok(pending) => replies.push(pending),
                        Err(error) => eprintln!("cannot reply: {error}"),
                    }
                }
                Some(Event::Disconnected { reason }) => eprintln!("disconnected ({reason}); reconnecting"),
                Some(Event::Reconnected { after, .. }) => println!("back after {after:?}"),
                Some(Event::Closed { reason }) => {
                    eprintln!("closed: {reason}");
                    break;
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    client.quit().await;
    Ok(())
}
