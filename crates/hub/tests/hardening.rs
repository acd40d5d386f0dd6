//! Limits and deadlines, over real sockets with shrunken limits: silent
//! peers, stalled frames, floods, and crowds that never register. No time
//! is asserted here: `deadlines.rs` checks when each deadline fires, at its
//! default, on a paused clock over in-memory pipes.

mod support;

use std::time::Duration;

use chinwag_hub::protocol::{ClientCodec, ClientFrame, Code, Recipients, SendFrame, ServerFrame};
use chinwag_hub::{HubConfig, RateLimit};
use futures::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use support::{Client, codes_until_closed, hello, next, register, settle, start};

async fn send_to(client: &mut Client, id: u64, to: &str, text: &str) {
    client
        .send(ClientFrame::Send(SendFrame {
            id,
            to: Recipients::Users(vec![to.into()]),
            text: text.into(),
        }))
        .await
        .unwrap();
}

/// Asserts `client` can still message `peer` (who reads it).
async fn still_talking(client: &mut Client, peer: &mut Client, text: &str, to: &str) {
    send_to(client, 999, to, text).await;
    loop {
        match next(peer).await {
            Some(ServerFrame::Message(m)) if m.text == text => return,
            Some(_) => {}
            None => panic!("{to} was disconnected"),
        }
    }
}

#[tokio::test]
async fn a_silent_peer_is_closed_after_two_unanswered_pings_and_a_live_one_is_not() {
    let mut config = HubConfig::default();
    // Half a second, so that the lively one answers in time on a loaded
    // machine; deadlines.rs checks the default timing on a paused clock.
    config.ping_interval = Duration::from_millis(500);
    config.max_missed_pings = 2;
    let (hub, addr) = start(config).await;

    let mut silent = register(addr, "silent").await;
    let mut lively = register(addr, "lively").await;

    // The lively one answers every ping for a while; the silent one never does.
    let answer = tokio::spawn(async move {
        let mut pings = 0;
        while pings < 3 {
            match next(&mut lively).await {
                Some(ServerFrame::Ping(token)) => {
                    pings += 1;
                    lively.send(ClientFrame::Pong(token)).await.unwrap();
                }
                Some(_) => {}
                None => panic!("a client that answers pings was closed"),
            }
        }
        lively
    });

    let mut pings = 0;
    let mut codes = Vec::new();
    while let Some(frame) = next(&mut silent).await {
        match frame {
            ServerFrame::Ping(_) => pings += 1,
            ServerFrame::Error(e) => codes.push(e.code),
            _ => {}
        }
    }
    assert_eq!(pings, 2);
    assert_eq!(codes, [Code::PING_TIMEOUT]);

    let mut lively = answer.await.unwrap();
    lively.send(ClientFrame::Who).await.unwrap();
    loop {
        if let Some(ServerFrame::Roster(roster)) = next(&mut lively).await {
            assert_eq!(roster, ["lively"]);
            break;
        }
    }
    assert_eq!(hub.stats().ping_timeouts, 1);
}

#[tokio::test]
async fn a_frame_that_stops_midway_is_closed_at_the_deadline() {
    let mut config = HubConfig::default();
    config.frame_timeout = Duration::from_millis(200);
    let (hub, addr) = start(config).await;
    let mut watcher = register(addr, "watcher").await;
    let mut staller = register(addr, "staller").await;

    // A SEND announcing 100 bytes, of which 10 arrive.
    let stream = staller.get_mut();
    stream
        .write_all(&[0, 0, 0, 100, 0x02, 0, 0, 0, 0, 0, 0, 0, 1, 0])
        .await
        .unwrap();
    assert_eq!(
        codes_until_closed(&mut staller).await,
        [Code::FRAME_TIMEOUT]
    );

    loop {
        if let Some(ServerFrame::Presence(p)) = next(&mut watcher).await
            && !p.online
        {
            assert_eq!(p.nick, "staller");
            break;
        }
    }
    assert_eq!(hub.stats().stalled_frames, 1);
}

#[tokio::test]
async fn eof_in_the_middle_of_a_frame_frees_the_nickname_at_once() {
    let (_hub, addr) = start(HubConfig::default()).await;
    let mut watcher = register(addr, "watcher").await;
    let mut leaver = register(addr, "leaver").await;
    let stream = leaver.get_mut();
    stream.write_all(&[0, 0, 0, 100, 0x02, 0, 0]).await.unwrap();
    stream.shutdown().await.unwrap();

    loop {
        if let Some(ServerFrame::Presence(p)) = next(&mut watcher).await
            && !p.online
        {
            assert_eq!(p.nick, "leaver");
            break;
        }
    }
    // Well before any deadline, the name can be taken again.
    let _again = register(addr, "leaver").await;
}

/// A pasted burst over the rate is refused beyond the burst, but the sender
/// stays connected: only a flood that goes on past the grace is cut
/// (`deadlines.rs` times that on a paused clock).
#[tokio::test]
async fn a_burst_over_the_rate_is_refused_but_not_cut_and_others_are_unaffected() {
    let mut config = HubConfig::default();
    config.rate_limit = Some(RateLimit {
        per_second: 5.0,
        burst: 3,
        grace: Duration::from_secs(2),
    });
    let (hub, addr) = start(config).await;
    let mut flooder = register(addr, "flooder").await;
    let mut alice = register(addr, "alice").await;
    let mut bob = register(addr, "bob").await;

    for id in 1..=40 {
        send_to(&mut flooder, id, "bob", "spam").await;
    }
    let mut delivered = 0;
    let mut limited = Vec::new();
    while delivered + limited.len() < 40 {
        match next(&mut flooder).await {
            Some(ServerFrame::Ack(_)) => delivered += 1,
            Some(ServerFrame::Error(e)) => {
                assert_eq!(e.code, Code::RATE_LIMITED);
                limited.push(e.reference);
            }
            Some(_) => {}
            None => panic!("the sender of a burst was cut"),
        }
    }
    assert!(delivered >= 3, "the burst goes through: {delivered}");
    assert!(limited.iter().all(|id| (1..=40).contains(id)));

    still_talking(&mut alice, &mut bob, "alice is fine", "bob").await;
    let stats = hub.stats();
    assert_eq!(stats.rate_limited, limited.len() as u64);
    assert_eq!(stats.flooders, 0);
    assert!(hub.roster().await.unwrap().contains(&"flooder".to_owned()));
}

#[tokio::test]
async fn a_slowloris_crowd_is_closed_at_the_deadline_while_real_users_carry_on() {
    let mut config = HubConfig::default();
    // Long enough that bob, registering among the crowd on a loaded
    // machine, is never caught by it himself.
    config.registration_timeout = Duration::from_secs(2);
    config.max_unregistered = 1_000;
    let (hub, addr) = start(config).await;
    let mut alice = register(addr, "alice").await;

    // 300 connections that dribble one byte of a HELLO and never finish it.
    let mut crowd = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&[0]).await.unwrap();
        crowd.push(Framed::new(stream, ClientCodec::default()));
    }
    // Meanwhile real users register and talk.
    let mut bob = register(addr, "bob").await;
    still_talking(&mut alice, &mut bob, "still here", "bob").await;
    still_talking(&mut bob, &mut alice, "me too", "alice").await;

    for client in &mut crowd {
        assert_eq!(
            codes_until_closed(client).await,
            [Code::REGISTRATION_TIMEOUT]
        );
    }
    // Only the two real users are left.
    settle("connections", || hub.connection_count(), 2).await;
    assert_eq!(hub.stats().registration_timeouts, 300);
}

/// Anonymous connections wait in a pool of their own. When it is full, a
/// newcomer sheds the one that has made no progress and waited longest,
/// which is told `SERVER_FULL`, and takes its place (`docs/limits.md`).
#[tokio::test]
async fn unregistered_connections_are_capped_apart_and_the_oldest_idle_one_is_shed() {
    let mut config = HubConfig::default();
    config.max_unregistered = 5;
    config.max_connections = 10;
    let (hub, addr) = start(config).await;

    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(addr).await.unwrap());
        // Accepted in this order: each is in the pool before the next.
        settle("connections", || hub.connection_count(), idle.len()).await;
    }
    // The sixth anonymous connection sheds the first, the oldest...
    let mut sixth = Framed::new(
        TcpStream::connect(addr).await.unwrap(),
        ClientCodec::default(),
    );
    let mut first = Framed::new(idle.remove(0), ClientCodec::default());
    assert_eq!(codes_until_closed(&mut first).await, [Code::SERVER_FULL]);
    // ...and takes its place.
    sixth.send(hello("carol")).await.unwrap();
    assert!(matches!(
        next(&mut sixth).await,
        Some(ServerFrame::Welcome(_))
    ));
    assert_eq!(hub.stats().shed_unregistered, 1);
    // Once one anonymous connection goes, its place is free again.
    drop(idle.pop());
    settle("connections", || hub.connection_count(), 4).await;
    let _alice = register(addr, "alice").await;
    let _bob = register(addr, "bob").await;
    assert_eq!(hub.connection_count(), 6);
}

/// A connection's unregistered place is free by the time its `WELCOME` can be
/// read: with room for one anonymous connection, users registering one after
/// another, each connecting the moment the previous one was welcomed, are
/// never refused. (The place used to be let go only after the `WELCOME` was
/// queued, and a quick newcomer then found it taken.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unregistered_place_is_free_once_the_welcome_is_read() {
    let mut config = HubConfig::default();
    config.max_unregistered = 1;
    let (hub, addr) = start(config).await;

    let mut users = Vec::new();
    for i in 0..200 {
        users.push(register(addr, &format!("u{i}")).await);
        assert_eq!(hub.connection_count(), i + 1);
    }
    assert_eq!(hub.stats().server_full, 0);
    // A nickname refused hands the place back: the next one gets it.
    let mut taken = support::connect(addr).await;
    taken.send(support::hello("u0")).await.unwrap();
    assert!(matches!(
        next(&mut taken).await,
        Some(ServerFrame::Error(e)) if e.code == Code::NICK_TAKEN
    ));
    assert_eq!(hub.connection_count(), 201);
    // ...as an unregistered one: there is no room for another.
    let mut crowded = support::connect(addr).await;
    assert_eq!(codes_until_closed(&mut crowded).await, [Code::SERVER_FULL]);
    taken.send(support::hello("u200")).await.unwrap();
    assert!(matches!(
        next(&mut taken).await,
        Some(ServerFrame::Welcome(_))
    ));
    assert_eq!(hub.connection_count(), 201);
}
