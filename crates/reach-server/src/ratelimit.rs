//! Per-client-IP rate limits and failure lockouts (pure: time is passed in).
//!
//! [`RateLimiter`] allows `limit` requests per sliding `window` per key; [`Lockout`] blocks a
//! key for a while after too many consecutive failures. Both are bounded in memory
//! ([`MAX_KEYS`]); when full they fail closed. IPv6 clients are keyed by their /64, since one
//! host usually owns a whole /64.
//!
//! The HTTP middleware that applies a limiter to a route lives in [`crate::http::limit`].
//! State is per process: these are a fast first gate in front of the counters every instance
//! shares through the database ([`crate::counters`]), which make the limiting decision.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most distinct keys a limiter tracks at once.
pub const MAX_KEYS: usize = 100_000;

/// A refusal: retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up, at least 1 (for the `Retry-After` header).
    pub fn as_header_secs(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

/// The key a client IP is counted under (IPv4 address, or IPv6 /64 prefix).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::from(seg)
            }
        },
    }
}

/// At most `limit` events per sliding `window` per key.
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    hits: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` events per `window`.
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Events allowed per window.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Counts one event for `ip` at `now`, or refuses it (refused events are not counted).
    ///
    /// # Errors
    /// [`RetryAfter`] when the key is over its limit.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        let key = client_key(ip);
        let mut hits = self
            .hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if hits.len() >= MAX_KEYS && !hits.contains_key(&key) {
            hits.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
            if hits.len() >= MAX_KEYS {
                return Err(RetryAfter(self.window));
            }
        }
        let times = hits.entry(key).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(RetryAfter(
                self.window.saturating_sub(now.duration_since(oldest)),
            ));
        }
        times.push_back(now);
        Ok(())
    }
}

/// One reserved attempt (see [`Lockout::reserve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Reservation {
    /// This attempt used the last try: the key is locked out unless it succeeds.
    pub started_lockout: bool,
}

#[derive(Debug, Default)]
struct FailureState {
    consecutive: u32,
    locked_until: Option<Instant>,
}

/// Locks a key out for `duration` after `max_failures` consecutive failures.
#[derive(Debug)]
pub struct Lockout {
    max_failures: u32,
    duration: Duration,
    state: Mutex<HashMap<IpAddr, FailureState>>,
}

impl Lockout {
    /// A lockout after `max_failures` consecutive failures, lasting `duration`.
    pub fn new(max_failures: u32, duration: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            duration,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, FailureState>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves one attempt for `ip`: refuses a locked-out key, otherwise counts the attempt
    /// as a failure at once, before the caller evaluates it. Parallel attempts therefore
    /// cannot all pass the check before any of them is recorded: at most `max_failures`
    /// attempts are evaluated per lockout. A success clears the count
    /// ([`Lockout::record_success`]).
    ///
    /// # Errors
    /// [`RetryAfter`] while the key is locked out.
    pub fn reserve(&self, ip: IpAddr, now: Instant) -> Result<Reservation, RetryAfter> {
        let mut state = self.lock();
        let key = client_key(ip);
        if state.len() >= MAX_KEYS && !state.contains_key(&key) {
            state.retain(|_, s| s.locked_until.is_some_and(|u| u > now));
            if state.len() >= MAX_KEYS {
                return Err(RetryAfter(self.duration));
            }
        }
        let entry = state.entry(key).or_default();
        match entry.locked_until {
            Some(until) if until > now => return Err(RetryAfter(until - now)),
            Some(_) => *entry = FailureState::default(),
            None => {}
        }
        entry.consecutive += 1;
        let started_lockout = entry.consecutive >= self.max_failures;
        if started_lockout {
            entry.locked_until = Some(now + self.duration);
        }
        Ok(Reservation { started_lockout })
    }

    /// Clears the failure count after a success.
    pub fn record_success(&self, ip: IpAddr) {
        self.lock().remove(&client_key(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn the_event_past_the_limit_is_refused_until_the_window_slides() {
        let limiter = RateLimiter::new(8, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..8 {
            assert!(limiter.check(A, t0 + Duration::from_secs(i)).is_ok());
        }
        let refused = limiter.check(A, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(refused.as_header_secs(), 50);
        assert!(limiter.check(B, t0 + Duration::from_secs(10)).is_ok());
        assert!(limiter.check(A, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_share_a_counter() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        let now = Instant::now();
        assert!(limiter.check("2001:db8::1".parse().unwrap(), now).is_ok());
        assert!(limiter.check("2001:db8::2".parse().unwrap(), now).is_err());
        assert!(
            limiter
                .check("2001:db8:0:1::1".parse().unwrap(), now)
                .is_ok()
        );
    }

    #[test]
    fn ten_reserved_attempts_lock_out_for_the_duration() {
        let lockout = Lockout::new(10, Duration::from_secs(900));
        let t0 = Instant::now();
        for _ in 0..9 {
            assert!(!lockout.reserve(A, t0).unwrap().started_lockout);
        }
        assert!(lockout.reserve(A, t0).unwrap().started_lockout);
        assert_eq!(lockout.reserve(A, t0).unwrap_err().as_header_secs(), 900);
        assert!(lockout.reserve(B, t0).is_ok());
        assert!(lockout.reserve(A, t0 + Duration::from_secs(900)).is_ok());
    }

    #[test]
    fn attempts_in_flight_count_before_they_are_evaluated() {
        let lockout = Lockout::new(3, Duration::from_secs(900));
        let t0 = Instant::now();
        let admitted = (0..100).filter(|_| lockout.reserve(A, t0).is_ok()).count();
        assert_eq!(admitted, 3);
    }

    #[test]
    fn a_success_clears_the_reserved_attempts() {
        let lockout = Lockout::new(2, Duration::from_secs(900));
        let t0 = Instant::now();
        let _ = lockout.reserve(A, t0).unwrap();
        assert!(lockout.reserve(A, t0).unwrap().started_lockout);
        lockout.record_success(A);
        assert!(!lockout.reserve(A, t0).unwrap().started_lockout);
    }
}
