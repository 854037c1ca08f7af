//! Server instances sharing one database.
//!
//! Every start of `reach server` is a new instance (`ins_…`) with a row in `server_instances`
//! that it refreshes every [`HEARTBEAT`]. A session belongs to the instance that opened it
//! (`sessions.instance_id`): its live state (sockets, consent timer) is in that process. So:
//! - a starting instance ends only the open sessions of instances that are gone — stopped
//!   (their row was removed at shutdown), or silent for [`EXPIRY`] (killed) — never those of a
//!   live instance;
//! - every live instance sweeps every [`HEARTBEAT`] and ends the sessions of instances that went
//!   silent meanwhile, so an instance's loss is noticed within seconds.
//!
//! Sessions ended this way get `server_restart` (found at start) or `server_lost` (found by a
//! sweep) as their reason.

use std::time::Duration;

use crate::db::{self, Db};

/// How often a live instance records that it is alive (and sweeps).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// Silence after which an instance counts as gone.
pub const EXPIRY: Duration = Duration::from_secs(10);

/// [`EXPIRY`] in milliseconds.
pub fn expiry_ms() -> i64 {
    i64::try_from(EXPIRY.as_millis()).unwrap_or(i64::MAX)
}

/// Registers instance `id` as alive now.
///
/// # Errors
/// On database failure.
pub async fn register(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    let now = db::now_ms();
    sqlx::query("INSERT INTO server_instances (id, started_at, seen_at) VALUES ($1, $2, $2)")
        .bind(id)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// Records that instance `id` is alive now (re-registering it if its row was swept).
///
/// # Errors
/// On database failure.
pub async fn beat(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    let done = sqlx::query("UPDATE server_instances SET seen_at = $1 WHERE id = $2")
        .bind(db::now_ms())
        .bind(id)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        register(db, id).await?;
    }
    Ok(())
}

/// Instance `id` stops: its row goes, so the others end its sessions at their next sweep.
///
/// # Errors
/// On database failure.
pub async fn retire(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM server_instances WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Ends the open sessions of every instance other than `own` that is gone (no row, or silent
/// for [`EXPIRY`]), with `reason`, and forgets the silent instances. Returns how many ended.
///
/// # Errors
/// On database failure.
pub async fn end_orphaned_sessions(db: &Db, own: &str, reason: &str) -> Result<u64, sqlx::Error> {
    let now = db::now_ms();
    let alive_since = now - expiry_ms();
    let ended = sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 \
         WHERE ended_at IS NULL AND (instance_id IS NULL OR (instance_id <> $3 AND instance_id NOT IN \
         (SELECT id FROM server_instances WHERE seen_at > $4)))",
    )
    .bind(now)
    .bind(reason)
    .bind(own)
    .bind(alive_since)
    .execute(db)
    .await?;
    sqlx::query("DELETE FROM server_instances WHERE seen_at <= $1 AND id <> $2")
        .bind(alive_since)
        .bind(own)
        .execute(db)
        .await?;
    Ok(ended.rows_affected())
}
