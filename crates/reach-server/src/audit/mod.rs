//! The server's hash-chained audit log (SPEC §11), stored in `audit_log`.
//!
//! Each tenant has its own chain: `seq` runs 1, 2, 3… and every row carries its
//! predecessor's hash and its own, computed with [`reach_audit::AuditRecord`] and keyed with
//! the chain key derived from the server secret (`k1:` hashes), so whoever can only write
//! the database cannot recompute the chain after editing a row. Rows are only
//! inserted. Appends are serialised across every server instance on the database: a writer
//! reads the newest row and inserts `seq + 1` inside one transaction that first takes the
//! tenant's append lock in the database (PostgreSQL: `pg_advisory_xact_lock`; SQLite:
//! `BEGIN IMMEDIATE`, the database's write lock), so no two writers build on the same head.
//! Within a process a mutex queues appends before they reach the database. The primary key
//! `(tenant_id, seq)` remains the last line: a racing second insert fails and retries on the
//! new head.
//!
//! Truncation (deleting the newest rows) is detected through heads recorded periodically by
//! [`checkpoint`] into `audit_heads` and into a mirror file in the data directory, both
//! authenticated with a key the database does not hold. A head only moves forward over a
//! chain that verifies, and a forged head is reported, never overwritten (see `heads`).
//!
//! # Adding an event
//! Call `state.audit(tenant_id, actor, "event_type", json!({…})).await?` (or [`record`]
//! with a bare pool) after the action succeeded; never put secrets or payloads in `details`.

mod heads;

use std::path::Path;

use reach_audit::{AuditRecord, ChainHead, GENESIS_HASH};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Connection as _, Row as _, Transaction};
use utoipa::ToSchema;

use crate::db::{self, Db};

pub use heads::{BadHead, HEAD_MIRROR_FILE, checkpoint, record_heads};

/// Attempts before an append gives up under contention.
const MAX_APPEND_ATTEMPTS: usize = 50;
/// Longest actor name stored (characters); longer ones are cut.
const MAX_ACTOR_CHARS: usize = 128;

/// Serialises appends within this process so they rarely need to retry.
static APPEND_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Appends a record to `tenant_id`'s chain, keyed with `chain_key`; returns its `seq`.
///
/// # Errors
/// On database failure, or when contention persists past 50 attempts.
pub async fn record(
    db: &Db,
    chain_key: &[u8; 32],
    tenant_id: &str,
    actor: &str,
    event_type: &str,
    details: serde_json::Value,
) -> Result<i64, sqlx::Error> {
    let actor: String = actor.chars().take(MAX_ACTOR_CHARS).collect();
    let _guard = APPEND_LOCK.lock().await;
    for _ in 0..MAX_APPEND_ATTEMPTS {
        let mut conn = db.acquire().await?;
        let mut tx = begin_append(&mut conn, tenant_id).await?;
        let (last_seq, last_hash) = last(&mut *tx, tenant_id).await?;
        let record = AuditRecord::new(
            last_seq + 1,
            db::now_ms(),
            tenant_id,
            &actor,
            event_type,
            details.clone(),
            last_hash,
        )
        .keyed(chain_key);
        match insert(&mut *tx, &record).await {
            Ok(()) => {
                tx.commit().await?;
                return Ok(record.id);
            }
            Err(err) if db::is_unique_violation(&err) => continue,
            Err(err) => return Err(err),
        }
    }
    Err(sqlx::Error::Protocol(
        "audit append kept colliding with other writers".into(),
    ))
}

/// Begins an append transaction holding `tenant_id`'s append lock in the database until it
/// ends: on SQLite the write lock (`BEGIN IMMEDIATE`, waiting up to the busy timeout), on
/// PostgreSQL a transaction-scoped advisory lock keyed by the tenant.
async fn begin_append<'c>(
    conn: &'c mut AnyConnection,
    tenant_id: &str,
) -> Result<Transaction<'c, Any>, sqlx::Error> {
    if conn.backend_name() == "SQLite" {
        return conn.begin_with("BEGIN IMMEDIATE").await;
    }
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(append_lock_key(tenant_id))
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The PostgreSQL advisory lock key of a tenant's chain (64 bits of a hash of its id).
pub fn append_lock_key(tenant_id: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("reach-audit-append\n{tenant_id}"));
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

pub(crate) async fn last<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    tenant_id: &str,
) -> Result<(i64, String), sqlx::Error> {
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

async fn insert<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    r: &AuditRecord,
) -> Result<(), sqlx::Error> {
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

fn record_from_row(tenant_id: &str, row: &AnyRow) -> Result<AuditRecord, sqlx::Error> {
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

/// A tenant's records with `seq >= from_seq`, in order.
pub(crate) async fn records_from(
    db: &Db,
    tenant_id: &str,
    from_seq: i64,
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    let rows: Vec<AnyRow> = sqlx::query(
        "SELECT seq, ts_ms, actor, event_type, details, prev_hash, hash FROM audit_log \
         WHERE tenant_id = $1 AND seq >= $2 ORDER BY seq",
    )
    .bind(tenant_id)
    .bind(from_seq)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| record_from_row(tenant_id, row))
        .collect()
}

/// Result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Verification {
    /// Whether the chain is intact and every recorded head is authentic and agrees with it.
    pub ok: bool,
    /// First record id that fails (for a forged head: the id it claims), when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at_id: Option<i64>,
    /// Records checked.
    pub records: i64,
    /// The valid recorded head furthest along, if any (every valid head is checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub head: Option<ChainHead>,
    /// Recorded heads whose MAC fails (rewritten without the server secret) or that the chain
    /// no longer agrees with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bad_heads: Vec<BadHead>,
}

/// Verifies a tenant's whole chain (keyed with `chain_key`) against every recorded head —
/// from the database and, if given, the mirror file.
///
/// # Errors
/// On database failure.
pub async fn verify(
    db: &Db,
    keys: &AuditKeys,
    tenant_id: &str,
    mirror: Option<&Path>,
) -> Result<Verification, sqlx::Error> {
    let records = records_from(db, tenant_id, 1).await?;
    let heads = heads::all(db, &keys.head, tenant_id, mirror).await?;
    let count = i64::try_from(records.len()).unwrap_or(i64::MAX);
    let chain =
        reach_audit::verify_chain_against(&records, &heads.chain_heads(), Some(&keys.chain))
            .err()
            .map(|b| b.broken_at_id);
    let mut bad_heads = heads.bad.clone();
    for (source, head) in &heads.valid {
        let agrees = records
            .binary_search_by_key(&head.id, |r| r.id)
            .is_ok_and(|i| records[i].hash == head.hash);
        if !agrees {
            bad_heads.push(BadHead {
                source,
                seq: head.id,
                reason: "disagrees",
            });
        }
    }
    let forged = heads.bad.iter().map(|b| b.seq.max(1)).min();
    let broken_at_id = match (chain, forged) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(Verification {
        ok: broken_at_id.is_none(),
        broken_at_id,
        records: count,
        head: heads.furthest().cloned(),
        bad_heads,
    })
}

/// The two keys of the audit log, derived from the server secret (never stored in the
/// database).
#[derive(Clone)]
pub struct AuditKeys {
    /// Keys each record's hash (`k1:` hashes).
    pub chain: [u8; 32],
    /// Authenticates recorded heads.
    pub head: [u8; 32],
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKeys { <redacted> }")
    }
}
