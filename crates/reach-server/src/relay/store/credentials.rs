//! Agent keys and support codes: stored as SHA-256 only; codes consumed by a conditional
//! update so exactly one presenter wins, even across server instances.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row as _;
use utoipa::ToSchema;

use crate::db::{self, Db};

/// An agent key as listed (never the key itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentKeyInfo {
    /// Id (`key_…`).
    pub id: String,
    /// Machine the key binds to.
    pub machine_id: String,
    /// First characters of the key, to recognise it (`cak_1a2b…`).
    pub prefix: String,
    /// Who issued it.
    pub created_by: String,
    /// Issue time (ms).
    pub created_at_ms: i64,
    /// Last successful agent connection (ms).
    pub last_used_at_ms: Option<i64>,
    /// Revocation time (ms); revoked keys never authenticate again.
    pub revoked_at_ms: Option<i64>,
}

/// A key that authenticated.
#[derive(Debug, Clone)]
pub struct KeyBinding {
    /// Key id.
    pub key_id: String,
    /// The machine the agent is bound to.
    pub machine_id: String,
    /// Tenant.
    pub tenant_id: String,
}

/// Stores a new key's hash.
///
/// # Errors
/// On database failure.
pub async fn insert_key(
    db: &Db,
    tenant_id: &str,
    machine_id: &str,
    key: &reach_proto::agent_key::AgentKey,
    created_by: &str,
) -> Result<AgentKeyInfo, sqlx::Error> {
    let info = AgentKeyInfo {
        id: db::new_id("key"),
        machine_id: machine_id.to_owned(),
        prefix: key.display_prefix(),
        created_by: created_by.to_owned(),
        created_at_ms: db::now_ms(),
        last_used_at_ms: None,
        revoked_at_ms: None,
    };
    sqlx::query(
        "INSERT INTO agent_keys (id, tenant_id, machine_id, key_hash, prefix, created_by, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&info.id)
    .bind(tenant_id)
    .bind(machine_id)
    .bind(key.hash().to_hex())
    .bind(&info.prefix)
    .bind(created_by)
    .bind(info.created_at_ms)
    .execute(db)
    .await?;
    Ok(info)
}

/// Keys of a machine, newest first.
///
/// # Errors
/// On database failure.
pub async fn list_keys(
    db: &Db,
    tenant_id: &str,
    machine_id: &str,
) -> Result<Vec<AgentKeyInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, machine_id, prefix, created_by, created_at, last_used_at, revoked_at \
         FROM agent_keys WHERE tenant_id = $1 AND machine_id = $2 ORDER BY created_at DESC",
    )
    .bind(tenant_id)
    .bind(machine_id)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AgentKeyInfo {
                id: r.try_get("id")?,
                machine_id: r.try_get("machine_id")?,
                prefix: r.try_get("prefix")?,
                created_by: r.try_get("created_by")?,
                created_at_ms: r.try_get("created_at")?,
                last_used_at_ms: r.try_get("last_used_at")?,
                revoked_at_ms: r.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Revokes a key; `false` when no such unrevoked key exists for that machine and tenant.
///
/// # Errors
/// On database failure.
pub async fn revoke_key(
    db: &Db,
    tenant_id: &str,
    machine_id: &str,
    key_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE agent_keys SET revoked_at = $1 WHERE tenant_id = $2 AND machine_id = $3 \
         AND id = $4 AND revoked_at IS NULL",
    )
    .bind(db::now_ms())
    .bind(tenant_id)
    .bind(machine_id)
    .bind(key_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Finds the unrevoked key with this hash; the stored hash is compared in constant time.
///
/// # Errors
/// On database failure.
pub async fn authenticate_key(
    db: &Db,
    key: &reach_proto::agent_key::AgentKey,
) -> Result<Option<KeyBinding>, sqlx::Error> {
    let presented = key.hash();
    let row = sqlx::query(
        "SELECT id, machine_id, tenant_id, key_hash FROM agent_keys \
         WHERE key_hash = $1 AND revoked_at IS NULL",
    )
    .bind(presented.to_hex())
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: String = row.try_get("key_hash")?;
    let matches =
        reach_proto::agent_key::AgentKeyHash::from_hex(&stored).is_ok_and(|h| h.ct_eq(&presented));
    if !matches {
        return Ok(None);
    }
    let binding = KeyBinding {
        key_id: row.try_get("id")?,
        machine_id: row.try_get("machine_id")?,
        tenant_id: row.try_get("tenant_id")?,
    };
    sqlx::query("UPDATE agent_keys SET last_used_at = $1 WHERE id = $2")
        .bind(db::now_ms())
        .bind(&binding.key_id)
        .execute(db)
        .await?;
    Ok(Some(binding))
}

/// Whether a key is still unrevoked (for periodic checks of live connections).
///
/// # Errors
/// On database failure.
pub async fn key_is_live(db: &Db, key_id: &str) -> Result<bool, sqlx::Error> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM agent_keys WHERE id = $1 AND revoked_at IS NULL")
            .bind(key_id)
            .fetch_one(db)
            .await?;
    Ok(n == 1)
}

/// A support code row.
#[derive(Debug, Clone)]
pub struct CodeRow {
    /// Id (`spc_…`).
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// User who created it.
    pub created_by: String,
    /// Technician's display name.
    pub technician: String,
    /// Access requested (`control` or `view_only`).
    pub access: String,
    /// USB requested.
    pub usb: bool,
    /// Expiry (ms).
    pub expires_at_ms: i64,
}

/// SHA-256 hex of a canonical code.
pub fn code_hash(code: &reach_proto::support_code::SupportCode) -> String {
    hex::encode(Sha256::digest(code.as_string().as_bytes()))
}

/// Stores a new code (hash only).
///
/// # Errors
/// On database failure; a hash collision with an existing code is a unique violation.
pub async fn insert_code(db: &Db, hash: &str, row: &CodeRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO support_codes (id, tenant_id, code_hash, created_by, technician, access, \
         usb, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&row.id)
    .bind(&row.tenant_id)
    .bind(hash)
    .bind(&row.created_by)
    .bind(&row.technician)
    .bind(&row.access)
    .bind(i64::from(row.usb))
    .bind(db::now_ms())
    .bind(row.expires_at_ms)
    .execute(db)
    .await?;
    Ok(())
}

const CODE_COLUMNS: &str = "id, tenant_id, created_by, technician, access, usb, expires_at";

fn code_from_row(r: &sqlx::any::AnyRow) -> Result<CodeRow, sqlx::Error> {
    let usb: i64 = r.try_get("usb")?;
    Ok(CodeRow {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        created_by: r.try_get("created_by")?,
        technician: r.try_get("technician")?,
        access: r.try_get("access")?,
        usb: usb != 0,
        expires_at_ms: r.try_get("expires_at")?,
    })
}

/// An unexpired, unused code (does not consume it).
///
/// # Errors
/// On database failure.
pub async fn preview_code(db: &Db, hash: &str) -> Result<Option<CodeRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CODE_COLUMNS} FROM support_codes WHERE code_hash = $1 \
         AND consumed_at IS NULL AND expires_at > $2"
    );
    let row = sqlx::query(&sql)
        .bind(hash)
        .bind(db::now_ms())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(code_from_row).transpose()
}

/// Consumes a code atomically: exactly one caller gets `Some`, however many race.
///
/// # Errors
/// On database failure.
pub async fn consume_code(db: &Db, hash: &str) -> Result<Option<CodeRow>, sqlx::Error> {
    let now = db::now_ms();
    let done = sqlx::query(
        "UPDATE support_codes SET consumed_at = $1 WHERE code_hash = $2 \
         AND consumed_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(hash)
    .execute(db)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    let sql = format!("SELECT {CODE_COLUMNS} FROM support_codes WHERE code_hash = $1");
    let row = sqlx::query(&sql).bind(hash).fetch_optional(db).await?;
    row.as_ref().map(code_from_row).transpose()
}

/// The tenant's codes that can still be redeemed, soonest expiry first.
///
/// # Errors
/// On database failure.
pub async fn list_active_codes(db: &Db, tenant_id: &str) -> Result<Vec<CodeRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {CODE_COLUMNS} FROM support_codes WHERE tenant_id = $1 \
         AND consumed_at IS NULL AND expires_at > $2 ORDER BY expires_at LIMIT 500"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(db::now_ms())
        .fetch_all(db)
        .await?;
    rows.iter().map(code_from_row).collect()
}

/// Expires every unused support code of a tenant (it was suspended); returns how many.
///
/// # Errors
/// On database failure.
pub async fn expire_codes(db: &Db, tenant_id: &str) -> Result<u64, sqlx::Error> {
    let now = db::now_ms();
    let done = sqlx::query(
        "UPDATE support_codes SET expires_at = $1 WHERE tenant_id = $2 \
         AND consumed_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(tenant_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes an unused code of the tenant (it expires now); `false` when there is no such
/// redeemable code.
///
/// # Errors
/// On database failure.
pub async fn revoke_code(db: &Db, tenant_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let now = db::now_ms();
    let done = sqlx::query(
        "UPDATE support_codes SET expires_at = $1 WHERE id = $2 AND tenant_id = $3 \
         AND consumed_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .bind(tenant_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Links a consumed code to the session it created.
///
/// # Errors
/// On database failure.
pub async fn link_code_session(
    db: &Db,
    code_id: &str,
    session_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE support_codes SET session_id = $1 WHERE id = $2")
        .bind(session_id)
        .bind(code_id)
        .execute(db)
        .await?;
    Ok(())
}
