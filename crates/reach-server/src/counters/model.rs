//! The pure model of the shared counters: what one attempt does to a counter row
//! ([`Window::step`], [`Escalation::step`] — exactly what the SQL in the parent module does) and
//! how the resulting row decides ([`Window::decide`], [`Escalation::decide`]).

use std::time::Duration;

use crate::ratelimit::RetryAfter;

/// A counter row as the database holds it (times in ms since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Attempts counted.
    pub hits: i64,
    /// Attempts are refused until then (0: not held).
    pub held_until: i64,
    /// The row is forgotten then.
    pub expires_at: i64,
    /// Whether the last attempt was admitted.
    pub admitted: bool,
}

/// An admitted attempt of an [`Escalation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Admitted {
    /// Attempts counted so far, this one included.
    pub attempts: i64,
    /// This attempt started a hold (for the support-code lockout: it used the last try).
    pub started_hold: bool,
}

pub(super) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn retry_at(until: i64, now: i64) -> RetryAfter {
    let left = u64::try_from(until.saturating_sub(now)).unwrap_or(0).max(1);
    RetryAfter(Duration::from_millis(left))
}

/// At most `limit` attempts per fixed `window` (starting at the first attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Attempts admitted per window (at least 1).
    pub limit: u32,
    /// The window.
    pub window: Duration,
}

impl Window {
    /// The row after one attempt at `now` (the model of the SQL in [`hit`]).
    pub fn step(self, old: Option<Counter>, now: i64) -> Counter {
        let limit = i64::from(self.limit.max(1));
        match old {
            Some(c) if c.expires_at > now => Counter {
                hits: if c.hits < limit { c.hits + 1 } else { c.hits },
                held_until: c.held_until,
                expires_at: c.expires_at,
                admitted: c.hits < limit,
            },
            _ => Counter {
                hits: 1,
                held_until: 0,
                expires_at: now.saturating_add(ms(self.window)),
                admitted: true,
            },
        }
    }

    /// Admits or refuses by the row the attempt produced.
    ///
    /// # Errors
    /// [`RetryAfter`] until the window ends.
    pub fn decide(row: Counter, now: i64) -> Result<(), RetryAfter> {
        if row.admitted {
            Ok(())
        } else {
            Err(retry_at(row.expires_at, now))
        }
    }
}

/// Escalating holds after `free` attempts (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    /// The admitted attempt with this number starts holding the subject back (at least 1).
    pub free: u32,
    /// The first hold; it doubles with every further attempt.
    pub base: Duration,
    /// The longest hold.
    pub cap: Duration,
    /// A subject without attempts (and not held) this long starts over (at least `cap`).
    pub keep: Duration,
}

impl Escalation {
    /// The smallest shift `s` with `base << s >= cap`: attempts that far past `free` hold for
    /// `cap`.
    pub fn shift_cap(&self) -> u32 {
        let (base, cap) = (ms(self.base).max(1), ms(self.cap));
        (0..62)
            .find(|&s| base.saturating_mul(1i64 << s) >= cap)
            .unwrap_or(62)
    }

    /// The hold (ms) after admitted attempt number `n`.
    pub fn hold_ms(&self, n: i64) -> i64 {
        let over = n - i64::from(self.free.max(1));
        if over < 0 {
            0
        } else if over >= i64::from(self.shift_cap()) {
            ms(self.cap)
        } else {
            ms(self.base) << over
        }
    }

    /// `held_until` after admitted attempt number `n` at `now`: 0 when it starts no hold (a
    /// concurrent attempt counted with a slightly older clock reading must not see a hold).
    pub fn held_until(&self, n: i64, now: i64) -> i64 {
        match self.hold_ms(n) {
            0 => 0,
            hold => now.saturating_add(hold),
        }
    }

    pub(super) fn keep_ms(&self) -> i64 {
        ms(self.keep.max(self.cap))
    }

    /// The row after one attempt at `now` (the model of the SQL in [`reserve`]).
    pub fn step(&self, old: Option<Counter>, now: i64) -> Counter {
        match old {
            Some(c) if c.expires_at > now && c.held_until > now => Counter {
                admitted: false,
                ..c
            },
            Some(c) if c.expires_at > now => Counter {
                hits: c.hits + 1,
                held_until: self.held_until(c.hits + 1, now),
                expires_at: now.saturating_add(self.keep_ms()),
                admitted: true,
            },
            _ => Counter {
                hits: 1,
                held_until: self.held_until(1, now),
                expires_at: now.saturating_add(self.keep_ms()),
                admitted: true,
            },
        }
    }

    /// Admits or refuses by the row the attempt produced.
    ///
    /// # Errors
    /// [`RetryAfter`] until the hold ends.
    pub fn decide(row: Counter, now: i64) -> Result<Admitted, RetryAfter> {
        if row.admitted {
            Ok(Admitted {
                attempts: row.hits,
                started_hold: row.held_until > now,
            })
        } else {
            Err(retry_at(row.held_until, now))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::{LOGIN_PAIR_BACKOFF, SUPPORT_CODE_LOCKOUT};

    const W: Window = Window {
        limit: 3,
        window: Duration::from_secs(60),
    };

    fn run_window(times: &[i64]) -> Vec<bool> {
        let mut row = None;
        times
            .iter()
            .map(|&t| {
                let next = W.step(row, t);
                row = Some(next);
                Window::decide(next, t).is_ok()
            })
            .collect()
    }

    #[test]
    fn a_window_admits_its_limit_then_refuses_until_it_ends() {
        assert_eq!(
            run_window(&[0, 1, 2, 3, 59_999, 60_000, 60_001]),
            [true, true, true, false, false, true, true]
        );
        let mut row = None;
        for t in [0, 0, 0, 10_000] {
            row = Some(W.step(row, t));
        }
        let row = row.unwrap();
        assert_eq!(row.hits, 3, "refused attempts are not counted");
        assert_eq!(
            Window::decide(row, 10_000).unwrap_err().as_header_secs(),
            50
        );
    }

    #[test]
    fn the_lockout_holds_after_the_tenth_attempt_for_fifteen_minutes_then_starts_over() {
        let e = SUPPORT_CODE_LOCKOUT;
        let mut row = None;
        for n in 1..=10 {
            let next = e.step(row, 1000);
            row = Some(next);
            let admitted = Escalation::decide(next, 1000).unwrap();
            assert_eq!(admitted.attempts, n);
            assert_eq!(admitted.started_hold, n == 10);
        }
        let held = e.step(row, 2000);
        assert_eq!(
            Escalation::decide(held, 2000).unwrap_err().as_header_secs(),
            899
        );
        let later = 1000 + ms(e.cap);
        let fresh = Escalation::decide(e.step(Some(held), later), later).unwrap();
        assert_eq!(fresh.attempts, 1);
    }

    #[test]
    fn quiet_subjects_start_over() {
        let e = SUPPORT_CODE_LOCKOUT;
        let row = e.step(Some(e.step(None, 0)), 1);
        assert_eq!(row.hits, 2);
        assert_eq!(e.step(Some(row), 1 + ms(e.keep)).hits, 1);
    }

    #[test]
    fn the_login_backoff_doubles_from_one_second_to_fifteen_minutes() {
        let e = LOGIN_PAIR_BACKOFF;
        assert_eq!(e.shift_cap(), 10);
        let holds: Vec<i64> = (1..=14).map(|n| e.hold_ms(n)).collect();
        assert_eq!(
            holds,
            [
                0, 0, 1000, 2000, 4000, 8000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000,
                900_000, 900_000
            ]
        );
        assert_eq!(e.hold_ms(i64::from(u32::MAX)), 900_000);
        assert_eq!(SUPPORT_CODE_LOCKOUT.shift_cap(), 0);
        assert_eq!(SUPPORT_CODE_LOCKOUT.hold_ms(9), 0);
        assert_eq!(SUPPORT_CODE_LOCKOUT.hold_ms(10), 900_000);
    }

    #[test]
    fn a_held_attempt_is_refused_and_not_counted() {
        let e = LOGIN_PAIR_BACKOFF;
        let mut row = None;
        for _ in 0..3 {
            row = Some(e.step(row, 0));
        }
        let refused = e.step(row, 500);
        assert!(!refused.admitted);
        assert_eq!(refused.hits, 3);
        assert_eq!(
            Escalation::decide(refused, 500).unwrap_err(),
            RetryAfter(Duration::from_millis(500))
        );
        let next = Escalation::decide(e.step(Some(refused), 1000), 1000).unwrap();
        assert_eq!(next.attempts, 4);
    }
}
