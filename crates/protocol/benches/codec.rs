//! Codec micro-benchmarks: encoding and decoding one frame of each kind the
//! hot path handles (a client's SEND, the hub's MESSAGE and ACK).
//!
//! `cargo bench -p chinwag-protocol`

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use chinwag_protocol::{
    Ack, ClientCodec, ClientFrame, ClientFrameOf, Code, FrameCodec, HubCodec, Message,
    RecipientStatus, Recipients, SendFrame, SendPayload, ServerFrame, encode_frame,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::codec::{Decoder, Encoder};

fn text(len: usize) -> String {
    "x".repeat(len)
}

fn frames() -> Vec<(&'static str, ClientFrame, ServerFrame)> {
    let direct = SendFrame {
        id: 42,
        to: Recipients::Users(vec!["bob".into()]),
        text: text(64),
    };
    let broadcast = SendFrame {
        id: 43,
        to: Recipients::Everyone,
        text: text(64),
    };
    let message = |to: Recipients, len| {
        ServerFrame::Message(Message {
            id: 1_000_000,
            ts_ms: 1_790_000_000_000,
            from: "alice".into(),
            to,
            text: text(len),
        })
    };
    vec![
        (
            "direct 64 B",
            ClientFrame::Send(direct),
            message(Recipients::Users(vec!["bob".into()]), 64),
        ),
        (
            "broadcast 64 B",
            ClientFrame::Send(broadcast),
            message(Recipients::Everyone, 64),
        ),
        (
            "broadcast 16 KiB",
            ClientFrame::Send(SendFrame {
                id: 44,
                to: Recipients::Everyone,
                text: text(16 * 1024),
            }),
            message(Recipients::Everyone, 16 * 1024),
        ),
    ]
}

fn bench_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    for (name, send, message) in frames() {
        let send_bytes = encode_frame(&send, usize::MAX).unwrap();
        let message_bytes = encode_frame(&message, usize::MAX).unwrap();

        group.bench_function(format!("encode SEND {name}"), |b| {
            let mut codec = ClientCodec::default();
            let mut dst = BytesMut::with_capacity(32 * 1024);
            b.iter(|| {
                dst.clear();
                codec.encode(black_box(&send), &mut dst).unwrap();
            });
        });
        group.bench_function(format!("decode SEND {name}"), |b| {
            let mut codec = HubCodec::default();
            b.iter(|| {
                let mut src = BytesMut::from(&send_bytes[..]);
                black_box(codec.decode(&mut src).unwrap());
            });
        });
        // As the hub reads it: checked, and kept in the bytes it came in.
        group.bench_function(format!("read SEND in place {name} (the hub's way)"), |b| {
            let mut codec = FrameCodec::<ClientFrameOf<SendPayload>>::default();
            b.iter(|| {
                let mut src = BytesMut::from(&send_bytes[..]);
                black_box(codec.decode(&mut src).unwrap());
            });
        });
        group.bench_function(format!("encode MESSAGE {name} (once per message)"), |b| {
            b.iter(|| black_box(encode_frame(black_box(&message), usize::MAX).unwrap()));
        });
        group.bench_function(format!("decode MESSAGE {name}"), |b| {
            let mut codec = ClientCodec::default();
            b.iter(|| {
                let mut src = BytesMut::from(&message_bytes[..]);
                black_box(codec.decode(&mut src).unwrap());
            });
        });
        // What a recipient costs once the frame is encoded: a reference count.
        group.bench_function(format!("share MESSAGE {name} with one recipient"), |b| {
            let shared: Bytes = message_bytes.clone();
            b.iter(|| black_box(shared.clone()));
        });
    }

    let ack = ServerFrame::Ack(Ack {
        client_id: 42,
        message_id: 1_000_000,
        delivered: 1,
        statuses: vec![RecipientStatus {
            nick: "bob".into(),
            status: Code::DELIVERED,
        }],
    });
    group.bench_function("encode ACK one recipient", |b| {
        b.iter(|| black_box(encode_frame(black_box(&ack), usize::MAX).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
