//! Per-account login limits that slow guessing without letting an attacker lock the owner
//! out (pure: time is passed in).
//!
//! Two mechanisms, on top of the per-IP login limit (8/min):
//! - **Pair backoff** per account and client IP (IPv6 by /64): the first
//!   [`PAIR_FREE_FAILURES`] wrong passwords are free; after that each attempt from that pair
//!   must wait twice as long as the one before (1 s, 2 s, 4 s … at most 15 minutes), else it
//!   is refused with `Retry-After`. The attempt is counted before the password is checked, so
//!   parallel attempts cannot slip past; a success clears the pair. Only the guessing pair is
//!   held back: the owner at another IP is not.
//! - **Account slowdown**: when an account had more than [`ACCOUNT_FREE_FAILURES`] wrong
//!   passwords in the last minute from all IPs, every attempt for it is spaced
//!   [`ACCOUNT_SPACING`] apart by waiting before the password is checked, but never longer
//!   than [`ACCOUNT_MAX_WAIT`]: the account is slowed, never locked.
//!
//! This state is per process. With several instances the deciding counts are shared through
//! the database ([`crate::counters`]): the pair backoff is
//! [`crate::counters::LOGIN_PAIR_BACKOFF`] (this process's pair map is a fast first gate), and
//! the account's wrong passwords are counted by every instance
//! ([`crate::counters::ACCOUNT_FAILURES`], passed to [`LoginBackoff::admit_seen`]); the 0.5 s
//! spacing itself is kept per process.
//!
//! Memory is bounded ([`crate::ratelimit::MAX_KEYS`] entries per map); when full and nothing
//! can be pruned, new pairs are not tracked (the per-IP limit still applies), so a flood of
//! names cannot turn the limit into a lockout.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ratelimit::{MAX_KEYS, RetryAfter, client_key};

/// Wrong passwords per account and IP before backoff starts.
pub const PAIR_FREE_FAILURES: u32 = 3;
/// The first backoff delay; it doubles with every further failure.
pub const PAIR_BASE_DELAY: Duration = Duration::from_secs(1);
/// The longest backoff delay.
pub const PAIR_MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Wrong passwords per account per [`ACCOUNT_WINDOW`] (all IPs) before the slowdown.
pub const ACCOUNT_FREE_FAILURES: usize = 20;
/// The window of the account slowdown.
pub const ACCOUNT_WINDOW: Duration = Duration::from_secs(60);
/// Spacing between evaluated attempts of a slowed account.
pub const ACCOUNT_SPACING: Duration = Duration::from_millis(500);
/// Longest an attempt of a slowed account waits before it is evaluated anyway.
pub const ACCOUNT_MAX_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct Pair {
    attempts: u32,
    last: Instant,
}

#[derive(Debug, Default)]
struct Account {
    failures: VecDeque<Instant>,
    next_slot: Option<Instant>,
}

/// An admitted attempt: wait this long, then check the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Admitted {
    /// The account slowdown's wait (zero when the account is not under attack).
    pub wait: Duration,
}

/// The two per-account mechanisms (see the module docs).
#[derive(Debug, Default)]
pub struct LoginBackoff {
    pairs: Mutex<HashMap<(String, IpAddr), Pair>>,
    accounts: Mutex<HashMap<String, Account>>,
}

/// The key an account is counted under: tenant and user name as typed, case-folded, cut.
pub fn account_key(tenant: &str, username: &str) -> String {
    let cut = |s: &str| s.chars().take(64).collect::<String>().to_lowercase();
    format!("{}\n{}", cut(tenant), cut(username))
}

fn pair_delay(attempts: u32) -> Option<Duration> {
    let over = attempts.checked_sub(PAIR_FREE_FAILURES)?;
    let factor = 1u32.checked_shl(over).unwrap_or(u32::MAX);
    Some(PAIR_BASE_DELAY.saturating_mul(factor).min(PAIR_MAX_DELAY))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LoginBackoff {
    /// Admits one attempt for `account` from `ip` at `now`, counting it against the pair
    /// before the password is checked.
    ///
    /// # Errors
    /// [`RetryAfter`] while the pair is backing off.
    pub fn admit(&self, account: &str, ip: IpAddr, now: Instant) -> Result<Admitted, RetryAfter> {
        self.admit_seen(account, ip, 0, now)
    }

    /// [`LoginBackoff::admit`], with `shared_failures` wrong passwords for the account in the
    /// last [`ACCOUNT_WINDOW`] counted by every instance (see [`crate::counters`]): the
    /// slowdown starts when either count passes [`ACCOUNT_FREE_FAILURES`].
    ///
    /// # Errors
    /// [`RetryAfter`] while the pair is backing off.
    pub fn admit_seen(
        &self,
        account: &str,
        ip: IpAddr,
        shared_failures: usize,
        now: Instant,
    ) -> Result<Admitted, RetryAfter> {
        self.reserve_pair(account, ip, now)?;
        Ok(Admitted {
            wait: self.account_wait(account, shared_failures, now),
        })
    }

    fn reserve_pair(&self, account: &str, ip: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        let key = (account.to_owned(), client_key(ip));
        let mut pairs = lock(&self.pairs);
        if pairs.len() >= MAX_KEYS && !pairs.contains_key(&key) {
            pairs.retain(|_, p| now.duration_since(p.last) < PAIR_MAX_DELAY);
            if pairs.len() >= MAX_KEYS {
                return Ok(());
            }
        }
        let pair = pairs.entry(key).or_insert(Pair {
            attempts: 0,
            last: now,
        });
        if let Some(delay) = pair_delay(pair.attempts) {
            let since = now.duration_since(pair.last);
            if since < delay {
                return Err(RetryAfter(delay - since));
            }
        }
        pair.attempts = pair.attempts.saturating_add(1);
        pair.last = now;
        Ok(())
    }

    fn account_wait(&self, account: &str, shared_failures: usize, now: Instant) -> Duration {
        let mut accounts = lock(&self.accounts);
        let attacked = shared_failures > ACCOUNT_FREE_FAILURES;
        if attacked && !accounts.contains_key(account) && accounts.len() < MAX_KEYS {
            accounts.insert(account.to_owned(), Account::default());
        }
        let Some(state) = accounts.get_mut(account) else {
            return Duration::ZERO;
        };
        while state
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= ACCOUNT_WINDOW)
        {
            state.failures.pop_front();
        }
        if state.failures.len().max(shared_failures) <= ACCOUNT_FREE_FAILURES {
            state.next_slot = None;
            return Duration::ZERO;
        }
        let slot = state.next_slot.map_or(now, |s| s.max(now));
        let wait = slot.duration_since(now).min(ACCOUNT_MAX_WAIT);
        state.next_slot = Some((slot + ACCOUNT_SPACING).min(now + ACCOUNT_MAX_WAIT));
        wait
    }

    /// Counts a wrong password for the account slowdown (the pair was counted on admission).
    pub fn record_failure(&self, account: &str, now: Instant) {
        let mut accounts = lock(&self.accounts);
        if accounts.len() >= MAX_KEYS && !accounts.contains_key(account) {
            accounts.retain(|_, a| {
                a.failures
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < ACCOUNT_WINDOW)
            });
            if accounts.len() >= MAX_KEYS {
                return;
            }
        }
        let state = accounts.entry(account.to_owned()).or_default();
        if state.failures.len() > ACCOUNT_FREE_FAILURES * 4 {
            state.failures.pop_front();
        }
        state.failures.push_back(now);
    }

    /// Clears the pair's count after a correct password.
    pub fn record_success(&self, account: &str, ip: IpAddr) {
        lock(&self.pairs).remove(&(account.to_owned(), client_key(ip)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn after_three_free_failures_each_attempt_waits_twice_as_long() {
        let b = LoginBackoff::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.admit("acct", A, t0).is_ok());
        }
        assert_eq!(b.admit("acct", A, t0).unwrap_err().as_header_secs(), 1);
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.admit("acct", A, t1).is_ok());
        assert_eq!(b.admit("acct", A, t1).unwrap_err().as_header_secs(), 2);
        assert!(
            b.admit("acct", B, t1).is_ok(),
            "other IPs are not held back"
        );
        assert!(
            b.admit("other", A, t1).is_ok(),
            "other accounts are not held back"
        );
    }

    #[test]
    fn the_delay_is_capped_at_fifteen_minutes() {
        assert_eq!(pair_delay(2), None);
        assert_eq!(pair_delay(3), Some(Duration::from_secs(1)));
        assert_eq!(pair_delay(200), Some(PAIR_MAX_DELAY));
    }

    #[test]
    fn a_success_clears_the_pair() {
        let b = LoginBackoff::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            let _ = b.admit("acct", A, t0).unwrap();
        }
        b.record_success("acct", A);
        assert!(b.admit("acct", A, t0).is_ok());
    }

    #[test]
    fn a_flooded_account_is_slowed_but_never_refused() {
        let b = LoginBackoff::default();
        let t0 = Instant::now();
        for _ in 0..=ACCOUNT_FREE_FAILURES {
            b.record_failure("acct", t0);
        }
        let waits: Vec<Duration> = (0..20)
            .map(|i| {
                let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i));
                b.admit("acct", ip, t0).unwrap().wait
            })
            .collect();
        assert_eq!(waits[0], Duration::ZERO);
        assert_eq!(waits[1], ACCOUNT_SPACING);
        assert!(waits.iter().all(|w| *w <= ACCOUNT_MAX_WAIT));
        let later = t0 + ACCOUNT_WINDOW;
        assert_eq!(b.admit("acct", A, later).unwrap().wait, Duration::ZERO);
    }

    #[test]
    fn failures_counted_by_other_instances_slow_the_account_here_too() {
        let b = LoginBackoff::default();
        let t0 = Instant::now();
        assert_eq!(
            b.admit_seen("acct", A, ACCOUNT_FREE_FAILURES, t0)
                .unwrap()
                .wait,
            Duration::ZERO
        );
        let first = b
            .admit_seen("acct", B, ACCOUNT_FREE_FAILURES + 1, t0)
            .unwrap();
        let second = b
            .admit_seen("acct", B, ACCOUNT_FREE_FAILURES + 1, t0)
            .unwrap();
        assert_eq!((first.wait, second.wait), (Duration::ZERO, ACCOUNT_SPACING));
    }

    #[test]
    fn account_keys_ignore_case() {
        assert_eq!(
            account_key("Default", "Admin"),
            account_key("default", "admin")
        );
        assert_ne!(account_key("a", "bc"), account_key("ab", "c"));
    }
}
