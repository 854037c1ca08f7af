//! Capped exponential backoff with jitter, sans-IO: the caller supplies the randomness.

use std::time::Duration;

/// Reconnect delays: `base · 2^attempt`, capped at `cap`, then scaled by a jitter
/// factor in `[0.5, 1.0)` so a fleet of agents does not reconnect in lock-step.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The delay before the next attempt. `jitter` is a uniform sample of `[0, 1)`.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(20));
        let raw = self.base.saturating_mul(factor).min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        raw.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// Called after a successful authentication: start again from `base`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_until_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let got: Vec<u64> = (0..6).map(|_| b.next_delay(0.999_999).as_secs()).collect();
        assert_eq!(got, vec![0, 1, 3, 7, 9, 9]);
    }

    #[test]
    fn jitter_keeps_the_delay_between_half_and_full() {
        let mut lo = Backoff::new(Duration::from_secs(8), Duration::from_secs(60));
        let mut hi = lo.clone();
        assert_eq!(lo.next_delay(0.0), Duration::from_secs(4));
        assert!(hi.next_delay(0.99) < Duration::from_secs(8));
    }

    #[test]
    fn reset_starts_again_from_base() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..10 {
            b.next_delay(0.0);
        }
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(500));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(b.next_delay(0.5) <= Duration::from_secs(60));
        }
    }
}
