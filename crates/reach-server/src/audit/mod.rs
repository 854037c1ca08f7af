//! The server's hash-chained audit log (SPEC §11), stored in `audit_log`.
//!
//! Each tenant has its own chain: `seq` runs 1, 2, 3… and every row carries its
//! predecessor's hash and its own, computed with [`reach_audit::AuditRecord`]. Rows are only
//! inserted. Appends are safe under concurrent writers, also across server instances: a
//! writer reads the newest row and inserts `seq + 1`; the primary key `(tenant_id, seq)` makes
//! a racing second insert fail, and the loser retries on the new head.
//!
//! Truncation (deleting the newest rows) is detected through heads recorded periodically by
//! [`checkpoint`] into `audit_heads` and into a mirror file in the data directory, both
//! authenticated with a key the database does not hold.
//!
//! # Adding an event
//! Call `state.audit(tenant_id, actor, "event_type", json!({…})).await?` (or [`record`]
//! with a bare pool) after the action succeeded; never put secrets or payloads in `details`.

mod heads;

use std::path::Path;

use reach_audit::{AuditRecord, ChainHead, GENESIS_HASH};
use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

use crate::db::{self, Db};

use heads::HeadState;
pub use heads::{HEAD_MIRROR_FILE, checkpoint, record_heads};

/// Attempts before an append gives up under contention.
const MAX_APPEND_ATTEMPTS: usize = 50;
/// Longest actor name stored (characters); longer ones are cut.
const MAX_ACTOR_CHARS: usize = 128;

/// Serialises appends within this process so they rarely need to retry.
static APPEND_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Appends a record to `tenant_id`'s chain; returns its `seq`.
///
/// # Errors
/// On database failure, or when contention persists past 50 attempts.
pub async fn record(
    db: &Db,
    tenant_id: &str,
    actor: &str,
    event_type: &str,
    details: serde_json::Value,
) -> Result<i64, sqlx::Error> {
    let actor: String = actor.chars().take(MAX_ACTOR_CHARS).collect();
    let _guard = APPEND_LOCK.lock().await;
    for _ in 0..MAX_APPEND_ATTEMPTS {
        let (last_seq, last_hash) = last(db, tenant_id).await?;
        let record = AuditRecord::new(
            last_seq + 1,
            db::now_ms(),
            tenant_id,
            &actor,
            event_type,
            details.clone(),
            last_hash,
        );
        match insert(db, &record).await {
            Ok(()) => return Ok(record.id),
            Err(err) if db::is_unique_violation(&err) => continue,
            Err(err) => return Err(err),
        }
    }
    Err(sqlx::Error::Protocol(
        "audit append kept colliding with other writers".into(),
    ))
}

pub(crate) async fn last(db: &Db, tenant_id: &str) -> Result<(i64, String), sqlx::Error> {
    let row = sqlx::query(
        "SELECT seq, hash FROM audit_log WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(tenant_id)
    .fetch_optional(db)
    .await?;
    match row {
        Some(row) => Ok((row.try_get("seq")?, row.try_get("hash")?)),
        None => Ok((0, GENESIS_HASH.to_owned())),
    }
}

async fn insert(db: &Db, r: &AuditRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log \
         (tenant_id, seq, ts_ms, actor, event_type, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.tenant)
    .bind(r.id)
    .bind(r.ts_ms)
    .bind(&r.actor)
    .bind(&r.event_type)
    .bind(reach_audit::canonical_json(&r.details))
    .bind(&r.prev_hash)
    .bind(&r.hash)
    .execute(db)
    .await?;
    Ok(())
}

/// One audit record as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Position in the tenant's chain.
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Who acted.
    pub actor: String,
    /// What happened.
    pub event_type: String,
    /// Event details.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// Previous record's hash.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only records at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only records before this time (ms).
    pub until_ms: Option<i64>,
    /// Only records with a smaller id (keyset pagination, newest first).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// Newest-first page of a tenant's records.
///
/// # Errors
/// On database failure.
pub async fn list(db: &Db, tenant_id: &str, f: &Filter) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, ts_ms, actor, event_type, details, prev_hash, hash FROM audit_log \
         WHERE tenant_id = $1 \
         AND ($2 IS NULL OR event_type = $2) AND ($3 IS NULL OR actor = $3) \
         AND ($4 IS NULL OR ts_ms >= $4) AND ($5 IS NULL OR ts_ms < $5) \
         AND ($6 IS NULL OR seq < $6) \
         ORDER BY seq DESC LIMIT $7",
    )
    .bind(tenant_id)
    .bind(f.event_type.clone())
    .bind(f.actor.clone())
    .bind(f.since_ms)
    .bind(f.until_ms)
    .bind(f.before_id)
    .bind(f.limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            let record = record_from_row(tenant_id, row)?;
            Ok(AuditEntry {
                id: record.id,
                ts_ms: record.ts_ms,
                actor: record.actor,
                event_type: record.event_type,
                details: record.details,
                prev_hash: record.prev_hash,
                hash: record.hash,
            })
        })
        .collect()
}

fn record_from_row(tenant_id: &str, row: &sqlx::any::AnyRow) -> Result<AuditRecord, sqlx::Error> {
    let details: String = row.try_get("details")?;
    Ok(AuditRecord {
        id: row.try_get("seq")?,
        ts_ms: row.try_get("ts_ms")?,
        tenant: tenant_id.to_owned(),
        actor: row.try_get("actor")?,
        event_type: row.try_get("event_type")?,
        // Unparseable details (a tampered row) hash differently and fail verification.
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Verification {
    /// Whether the chain is intact.
    pub ok: bool,
    /// First record id that fails, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at_id: Option<i64>,
    /// Records checked.
    pub records: i64,
    /// The recorded head the chain was checked against, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub head: Option<ChainHead>,
}

/// Verifies a tenant's whole chain against its newest recorded head (from the database or,
/// if given, the mirror file, whichever is further along).
///
/// # Errors
/// On database failure.
pub async fn verify(
    db: &Db,
    head_key: &[u8; 32],
    tenant_id: &str,
    mirror: Option<&Path>,
) -> Result<Verification, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, ts_ms, actor, event_type, details, prev_hash, hash FROM audit_log \
         WHERE tenant_id = $1 ORDER BY seq",
    )
    .bind(tenant_id)
    .fetch_all(db)
    .await?;
    let records = rows
        .iter()
        .map(|row| record_from_row(tenant_id, row))
        .collect::<Result<Vec<_>, _>>()?;
    let head = heads::newest(db, head_key, tenant_id, mirror).await?;
    let count = i64::try_from(records.len()).unwrap_or(i64::MAX);
    let outcome = match &head {
        HeadState::Forged(seq) => Err(*seq),
        HeadState::Valid(head) => {
            reach_audit::verify_chain(&records, Some(head)).map_err(|b| b.broken_at_id)
        }
        HeadState::None => reach_audit::verify_chain(&records, None).map_err(|b| b.broken_at_id),
    };
    let head = match head {
        HeadState::Valid(head) => Some(head),
        _ => None,
    };
    Ok(Verification {
        ok: outcome.is_ok(),
        broken_at_id: outcome.err(),
        records: count,
        head,
    })
}
