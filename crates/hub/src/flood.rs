//! Flood control: a token bucket on the requests one connection makes
//! (messages, `WHO`s, `PING`s), and a clock on how long it has kept
//! exceeding its rate, to tell a burst from a flood.
//!
//! A request over the rate is refused (`RATE_LIMITED`). A flood begins at
//! the first refusal and goes on while refusals keep coming less than
//! [`QUIET`] apart; a client still being refused [`RateLimit::grace`] after
//! its flood began is disconnected (`FLOODING`). So a person who pastes a
//! long text at once loses the lines over the burst but stays connected,
//! while a program that keeps sending too fast is cut after the grace.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::RateLimit;

/// A pause in refusals this long ends a flood.
pub(crate) const QUIET: Duration = Duration::from_secs(1);

/// A connection's token bucket, and its flood if it is in one.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
    /// When the current flood began, and its latest refusal.
    flood: Option<(Instant, Instant)>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Refuse,
    Disconnect,
}

impl TokenBucket {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            refilled: Instant::now(),
            flood: None,
        }
    }

    pub(crate) fn take(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Pass;
        }
        let since = match self.flood {
            Some((since, last)) if now.saturating_duration_since(last) < QUIET => since,
            _ => now,
        };
        self.flood = Some((since, now));
        if now.saturating_duration_since(since) > self.limit.grace {
            Verdict::Disconnect
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> TokenBucket {
        TokenBucket::new(RateLimit {
            per_second: 10.0,
            burst: 20,
            grace: Duration::from_secs(10),
        })
    }

    #[test]
    fn a_pasted_text_loses_what_is_over_the_burst_but_stays_connected() {
        let mut bucket = bucket();
        let now = Instant::now();
        let verdicts: Vec<Verdict> = (0..500).map(|_| bucket.take(now)).collect();
        assert!(verdicts[..20].iter().all(|v| *v == Verdict::Pass));
        assert!(verdicts[20..].iter().all(|v| *v == Verdict::Refuse));
        // Later, at the rate, everything passes again.
        let later = now + Duration::from_secs(5);
        assert_eq!(bucket.take(later), Verdict::Pass);
    }

    #[test]
    fn sending_faster_than_the_rate_for_longer_than_the_grace_is_a_flood() {
        let mut bucket = bucket();
        let start = Instant::now();
        // Twice the rate: a request every 50 ms.
        let mut cut_at = None;
        for i in 0..1_000u32 {
            let now = start + Duration::from_millis(50) * i;
            if bucket.take(now) == Verdict::Disconnect {
                cut_at = Some(now - start);
                break;
            }
        }
        // The burst lasts 2 s at this pace, then refusals for the grace.
        let cut_at = cut_at.expect("the flooder was never cut");
        assert!(
            cut_at > Duration::from_secs(12) && cut_at < Duration::from_secs(13),
            "{cut_at:?}"
        );
    }

    #[test]
    fn a_pause_ends_a_flood() {
        let mut bucket = bucket();
        let start = Instant::now();
        for _ in 0..30 {
            bucket.take(start);
        }
        // Refused again 9 s later, after a pause longer than QUIET: a new
        // flood, not one that has lasted 9 s.
        let later = start + Duration::from_secs(9);
        for _ in 0..200 {
            assert_ne!(bucket.take(later), Verdict::Disconnect);
        }
        let still = later + Duration::from_secs(11);
        for _ in 0..300 {
            assert_ne!(bucket.take(still), Verdict::Disconnect);
        }
    }
}
