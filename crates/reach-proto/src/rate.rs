//! Token bucket for viewer -> agent input, with time passed in.

use std::time::{Duration, Instant};

/// A token bucket: `capacity` tokens, refilled at `per_sec` tokens per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(per_sec: u32, capacity: u32, now: Instant) -> Self {
        Self {
            capacity: f64::from(capacity),
            per_sec: f64::from(per_sec),
            tokens: f64::from(capacity),
            last: now,
        }
    }

    /// Takes one token if there is one at `now`. Time going backwards adds nothing.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next token, for callers that want to wait instead of drop.
    pub fn wait_hint(&self) -> Duration {
        if self.tokens >= 1.0 || self.per_sec <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_above_capacity_is_cut_at_capacity() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(200, 200, t0);
        let passed = (0..1000).filter(|_| b.try_take(t0)).count();
        assert_eq!(passed, 200);
    }

    #[test]
    fn tokens_refill_at_the_configured_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(200, 200, t0);
        while b.try_take(t0) {}
        let t1 = t0 + Duration::from_millis(500);
        let passed = (0..1000).filter(|_| b.try_take(t1)).count();
        assert_eq!(passed, 100);
        assert!(b.wait_hint() > Duration::ZERO);
    }

    #[test]
    fn a_long_pause_does_not_overfill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(200, 200, t0);
        let t1 = t0 + Duration::from_secs(3600);
        assert_eq!((0..1000).filter(|_| b.try_take(t1)).count(), 200);
    }

    #[test]
    fn time_going_backwards_adds_no_tokens() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(200, 1, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(5)));
        assert!(!b.try_take(t0));
    }
}
