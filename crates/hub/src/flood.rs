//! Flood control: a token bucket on the messages one connection sends,
//! and a count of refusals per grace period to tell a burst from a flood.

use tokio::time::Instant;

use crate::config::RateLimit;

/// grace period to tell a burst from a flood.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
    /// Start of the current grace period of refusals, and refusals in it.
    flood: Option<(Instant, f64)>,
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
        let grace = self.limit.grace;
        let (since, refused) = match self.flood {
            Some((since, refused)) if now.saturating_duration_since(since) <= grace => {
                (since, refused + 1.0)
            }
            _ => (now, 1.0),
        };
        self.flood = Some((since, refused));
        if refused > self.limit.per_second * grace.as_secs_f64() {
            Verdict::Disconnect
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate_then_cuts_a_flood() {
        let limit = RateLimit {
            per_second: 2.0,
            burst: 3,
            grace: Duration::from_secs(5),
        };
        let mut bucket = TokenBucket::new(limit);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Verdict::Pass);
        }
        assert_eq!(bucket.take(start), Verdict::Refuse);
        // Half a second later one token has come back.
        let later = start + Duration::from_millis(500);
        assert_eq!(bucket.take(later), Verdict::Pass);
        assert_eq!(bucket.take(later), Verdict::Refuse);
        // Flooding: 10 refusals (2/s x 5 s) in one grace period are
        // tolerated, the 11th is not. Two have happened already.
        let mut verdicts = Vec::new();
        for _ in 0..8 {
            verdicts.push(bucket.take(later));
        }
        assert!(verdicts.iter().all(|v| *v == Verdict::Refuse));
        assert_eq!(bucket.take(later), Verdict::Disconnect);
    }
}
