//! Harness for the end-to-end tests: what every harness shares comes from
//! `chinwag-testkit` (a hub on an ephemeral port, a raw protocol client over
//! a real socket, bounded waits); what only these tests use is here.
//!
//! Every wait is bounded by [`PATIENCE`] so that a hub that hangs fails the
//! test instead of stalling the suite; no test asserts how fast anything is.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::time::{SystemTime, UNIX_EPOCH};

pub use chinwag_testkit::{
    PATIENCE, RawClient, TestHub, encode, guard, raw_frame, settle, users, within,
};

/// Registers one client per name, in order, and consumes the PRESENCE each
/// later arrival causes at the earlier ones, so every client's next frame is
/// fresh.
pub async fn register_all<const N: usize>(hub: &TestHub, names: [&str; N]) -> [RawClient; N] {
    let mut clients = Vec::with_capacity(N);
    for name in names {
        clients.push(hub.register(name).await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        for joined in &names[i + 1..] {
            assert_eq!(client.expect_presence().await, ((*joined).to_owned(), true));
        }
    }
    clients.try_into().ok().unwrap()
}

/// Milliseconds since the Unix epoch, by this machine's clock.
pub fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A tiny deterministic generator (xorshift64), so that "random" input is
/// the same on every run.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}
