//! Rate-limit, lockout and backoff counters shared through the database by every server
//! instance (table `rate_counters`), so N instances do not multiply an attacker's guesses.
//!
//! A counter is a row keyed by `(kind, subject)` — e.g. kind `support_code_lockout`, subject
//! a client IP ([`ip_subject`]). Each attempt is counted by one atomic statement
//! (`INSERT … ON CONFLICT … DO UPDATE … RETURNING`, the same SQL on SQLite and PostgreSQL)
//! *before* the attempt is evaluated, and that statement's returned row decides: parallel
//! attempts on any instance are serialised by the row, so none can slip past. Two shapes:
//! - [`Window`]: at most `limit` attempts per fixed window that starts at the first attempt
//!   (refused attempts are not counted).
//! - [`Escalation`]: the first `free - 1` attempts are free; the attempt that makes `free` and
//!   every later admitted one holds the subject back for `base`, then twice as long each time,
//!   at most `cap`; a subject quiet for `keep` (or whose hold ended, with `base == cap`) starts
//!   over. [`SUPPORT_CODE_LOCKOUT`] and [`LOGIN_PAIR_BACKOFF`] are escalations; [`clear`]
//!   forgets a subject after a success.
//!
//! Times are the instances' wall clocks in milliseconds (keep them synchronised). Expired rows
//! are deleted at most once a minute per instance ([`PRUNE_EVERY`]). A database error refuses
//! the attempt (fail closed). [`Window::step`] and [`Escalation::step`] are the pure models of
//! the SQL below, and a test checks the database against them.

mod model;

pub use model::{Admitted, Counter, Escalation, Window};

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::Row as _;

use crate::db::{self, Db};
use crate::ratelimit::{RetryAfter, client_key};
use model::ms;

/// How often one instance deletes expired counters.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// 10 consecutive wrong support codes per client IP (validate and agent socket alike): 15
/// minutes out.
pub const SUPPORT_CODE_LOCKOUT: Escalation = Escalation {
    free: 10,
    base: Duration::from_secs(15 * 60),
    cap: Duration::from_secs(15 * 60),
    keep: Duration::from_secs(15 * 60),
};

/// Per account and client IP: 3 free wrong passwords, then 1 s, 2 s, 4 s … at most 15
/// minutes between attempts; forgotten after a quiet day or a success.
pub const LOGIN_PAIR_BACKOFF: Escalation = Escalation {
    free: crate::login_backoff::PAIR_FREE_FAILURES,
    base: crate::login_backoff::PAIR_BASE_DELAY,
    cap: crate::login_backoff::PAIR_MAX_DELAY,
    keep: Duration::from_secs(24 * 3600),
};

/// Wrong passwords per account (all IPs, all instances) in a fixed window: the account
/// slowdown of [`crate::login_backoff`] starts past
/// [`crate::login_backoff::ACCOUNT_FREE_FAILURES`] of them (the count is not capped).
pub const ACCOUNT_FAILURES: Window = Window {
    limit: u32::MAX,
    window: crate::login_backoff::ACCOUNT_WINDOW,
};

/// Kind of [`ACCOUNT_FAILURES`] counters (subject: the account key).
pub const KIND_LOGIN_ACCOUNT: &str = "login_account_failures";
/// Kind of [`SUPPORT_CODE_LOCKOUT`] counters.
pub const KIND_SUPPORT_CODE: &str = "support_code_lockout";
/// Kind of [`LOGIN_PAIR_BACKOFF`] counters.
pub const KIND_LOGIN_PAIR: &str = "login_pair";

/// Why an attempt was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The subject is over its limit or held back; retry after this long.
    #[error("held back; retry later")]
    Held(RetryAfter),
    /// The shared counter could not be updated: the attempt is refused (fail closed).
    #[error("database error while counting an attempt")]
    Database(#[from] sqlx::Error),
}

/// The subject a client IP is counted under (IPv4 address, or IPv6 /64).
pub fn ip_subject(ip: IpAddr) -> String {
    client_key(ip).to_string()
}

/// The subject of an account (see [`crate::login_backoff::account_key`]) from a client IP.
pub fn pair_subject(account: &str, ip: IpAddr) -> String {
    format!("{}\n{account}", client_key(ip))
}

const HIT_SQL: &str = "INSERT INTO rate_counters \
     (kind, subject, hits, held_until, expires_at, admitted) VALUES ($1, $2, 1, 0, $3 + $5, 1) \
     ON CONFLICT (kind, subject) DO UPDATE SET \
     hits = CASE WHEN rate_counters.expires_at <= $3 THEN 1 \
       WHEN rate_counters.hits < $4 THEN rate_counters.hits + 1 ELSE rate_counters.hits END, \
     admitted = CASE WHEN rate_counters.expires_at <= $3 OR rate_counters.hits < $4 \
       THEN 1 ELSE 0 END, \
     held_until = CASE WHEN rate_counters.expires_at <= $3 THEN 0 \
       ELSE rate_counters.held_until END, \
     expires_at = CASE WHEN rate_counters.expires_at <= $3 THEN $3 + $5 \
       ELSE rate_counters.expires_at END \
     RETURNING hits, held_until, expires_at, admitted";

// $4 free, $5 base, $6 cap, $7 shift cap, $8 keep, $9 `held_until` after a first attempt.
// "Live": not expired; "held": live and held. The hold after attempt n = old hits + 1 is
// 0 below `free`, `cap` from `free + shift cap` on, else `base << (n - free)`.
const RESERVE_SQL: &str = "INSERT INTO rate_counters \
     (kind, subject, hits, held_until, expires_at, admitted) \
     VALUES ($1, $2, 1, $9, $3 + $8, 1) \
     ON CONFLICT (kind, subject) DO UPDATE SET \
     hits = CASE WHEN rate_counters.expires_at <= $3 THEN 1 \
       WHEN rate_counters.held_until > $3 THEN rate_counters.hits \
       ELSE rate_counters.hits + 1 END, \
     admitted = CASE WHEN rate_counters.expires_at <= $3 OR rate_counters.held_until <= $3 \
       THEN 1 ELSE 0 END, \
     held_until = CASE WHEN rate_counters.expires_at <= $3 THEN $9 \
       WHEN rate_counters.held_until > $3 THEN rate_counters.held_until \
       WHEN rate_counters.hits + 1 < $4 THEN 0 \
       WHEN rate_counters.hits + 1 - $4 >= $7 THEN $3 + $6 \
       ELSE $3 + ($5 << CAST(rate_counters.hits + 1 - $4 AS INTEGER)) END, \
     expires_at = CASE WHEN rate_counters.expires_at > $3 AND rate_counters.held_until > $3 \
       THEN rate_counters.expires_at ELSE $3 + $8 END \
     RETURNING hits, held_until, expires_at, admitted";

fn counter(row: &sqlx::any::AnyRow) -> Result<Counter, sqlx::Error> {
    Ok(Counter {
        hits: row.try_get("hits")?,
        held_until: row.try_get("held_until")?,
        expires_at: row.try_get("expires_at")?,
        admitted: row.try_get::<i64, _>("admitted")? != 0,
    })
}

/// Counts one attempt of `subject` against the shared `window` of `kind` at `now` (ms) and
/// returns the resulting row.
///
/// # Errors
/// On database failure.
pub async fn hit_at(
    db: &Db,
    kind: &str,
    subject: &str,
    window: Window,
    now: i64,
) -> Result<Counter, sqlx::Error> {
    let row = sqlx::query(HIT_SQL)
        .bind(kind)
        .bind(subject)
        .bind(now)
        .bind(i64::from(window.limit.max(1)))
        .bind(ms(window.window))
        .fetch_one(db)
        .await?;
    counter(&row)
}

/// Counts one attempt of `subject` against the shared `window` of `kind`, now.
///
/// # Errors
/// [`Refused::Held`] over the limit; [`Refused::Database`] when it cannot be counted.
pub async fn hit(db: &Db, kind: &str, subject: &str, window: Window) -> Result<(), Refused> {
    let now = db::now_ms();
    prune_now_and_then(db, now);
    let row = hit_at(db, kind, subject, window, now).await?;
    Window::decide(row, now).map_err(Refused::Held)
}

/// Counts one attempt of `subject` against the shared escalation `e` of `kind` at `now`
/// (ms) and returns the resulting row.
///
/// # Errors
/// On database failure.
pub async fn reserve_at(
    db: &Db,
    kind: &str,
    subject: &str,
    e: &Escalation,
    now: i64,
) -> Result<Counter, sqlx::Error> {
    let row = sqlx::query(RESERVE_SQL)
        .bind(kind)
        .bind(subject)
        .bind(now)
        .bind(i64::from(e.free.max(1)))
        .bind(ms(e.base))
        .bind(ms(e.cap))
        .bind(i64::from(e.shift_cap()))
        .bind(e.keep_ms())
        .bind(e.held_until(1, now))
        .fetch_one(db)
        .await?;
    counter(&row)
}

/// Reserves one attempt of `subject` under the shared escalation `e` of `kind`, now: it
/// counts before the caller evaluates it.
///
/// # Errors
/// [`Refused::Held`] while held back; [`Refused::Database`] when it cannot be counted.
pub async fn reserve(
    db: &Db,
    kind: &str,
    subject: &str,
    e: &Escalation,
) -> Result<Admitted, Refused> {
    let now = db::now_ms();
    prune_now_and_then(db, now);
    let row = reserve_at(db, kind, subject, e, now).await?;
    Escalation::decide(row, now).map_err(Refused::Held)
}

/// The attempts `subject` has counted under `kind` and that have not expired.
///
/// # Errors
/// On database failure.
pub async fn current(db: &Db, kind: &str, subject: &str) -> Result<i64, sqlx::Error> {
    let hits = sqlx::query_scalar(
        "SELECT hits FROM rate_counters WHERE kind = $1 AND subject = $2 AND expires_at > $3",
    )
    .bind(kind)
    .bind(subject)
    .bind(db::now_ms())
    .fetch_optional(db)
    .await?;
    Ok(hits.unwrap_or(0))
}

/// Forgets `subject`'s counter of `kind` (after a success).
///
/// # Errors
/// On database failure.
pub async fn clear(db: &Db, kind: &str, subject: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM rate_counters WHERE kind = $1 AND subject = $2")
        .bind(kind)
        .bind(subject)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes every counter that expired by `now` (ms); returns how many.
///
/// # Errors
/// On database failure.
pub async fn prune(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM rate_counters WHERE expires_at <= $1")
        .bind(now)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

static LAST_PRUNE: AtomicI64 = AtomicI64::new(0);

/// Starts a [`prune`] in the background when this process has not pruned for
/// [`PRUNE_EVERY`].
fn prune_now_and_then(db: &Db, now: i64) {
    let last = LAST_PRUNE.load(Ordering::Relaxed);
    if now.saturating_sub(last) < ms(PRUNE_EVERY)
        || LAST_PRUNE
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let db = db.clone();
    tokio::spawn(async move {
        if let Err(err) = prune(&db, now).await {
            tracing::warn!(error = %err, "could not prune expired rate counters");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_ips_and_accounts_apart() {
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(ip_subject(v6a), ip_subject(v6b));
        assert_eq!(pair_subject("t\nu", v6a), "2001:db8::\nt\nu");
    }
}
