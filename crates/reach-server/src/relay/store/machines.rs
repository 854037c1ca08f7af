//! Machines: metadata, hello details, search.

use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

use crate::db::{self, Db};

/// A machine as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Machine {
    /// Id (`mch_…`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Organization (customer).
    pub organization: String,
    /// Site (location).
    pub site: String,
    /// Free tags.
    pub tags: Vec<String>,
    /// OS reported by the agent.
    pub os: String,
    /// Agent version reported by the agent.
    pub agent_version: String,
    /// Host name reported by the agent.
    pub hostname: String,
    /// Capabilities reported by the agent (`supports_h264`, `supports_usb`, `screens`).
    #[schema(value_type = Object)]
    pub capabilities: serde_json::Value,
    /// Sessions need the consent of the person at the machine.
    pub require_consent: bool,
    /// Created by a support code (attended support).
    pub attended: bool,
    /// An agent is connected now.
    pub online: bool,
    /// Last time an agent was seen (ms since the Unix epoch).
    pub last_seen_at_ms: Option<i64>,
    /// Creation time (ms since the Unix epoch).
    pub created_at_ms: i64,
}

/// Editable fields.
#[derive(Debug, Clone, Default)]
pub struct MachineFields {
    /// Display name.
    pub name: String,
    /// Organization.
    pub organization: String,
    /// Site.
    pub site: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Consent policy.
    pub require_consent: bool,
}

const COLUMNS: &str = "id, name, organization, site, tags, os, agent_version, hostname, \
    capabilities, require_consent, attended, last_seen_at, created_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Machine, sqlx::Error> {
    let tags: String = row.try_get("tags")?;
    let caps: String = row.try_get("capabilities")?;
    let require_consent: i64 = row.try_get("require_consent")?;
    let attended: i64 = row.try_get("attended")?;
    Ok(Machine {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        organization: row.try_get("organization")?,
        site: row.try_get("site")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        os: row.try_get("os")?,
        agent_version: row.try_get("agent_version")?,
        hostname: row.try_get("hostname")?,
        capabilities: serde_json::from_str(&caps).unwrap_or(serde_json::Value::Null),
        require_consent: require_consent != 0,
        attended: attended != 0,
        online: false,
        last_seen_at_ms: row.try_get("last_seen_at")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

/// Creates a machine.
///
/// # Errors
/// On database failure.
pub async fn create(
    db: &Db,
    tenant_id: &str,
    fields: &MachineFields,
    attended: bool,
) -> Result<Machine, sqlx::Error> {
    let id = db::new_id("mch");
    sqlx::query(
        "INSERT INTO machines (id, tenant_id, name, organization, site, tags, require_consent, \
         attended, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(&fields.name)
    .bind(&fields.organization)
    .bind(&fields.site)
    .bind(serde_json::to_string(&fields.tags).unwrap_or_else(|_| "[]".into()))
    .bind(i64::from(fields.require_consent))
    .bind(i64::from(attended))
    .bind(db::now_ms())
    .execute(db)
    .await?;
    get(db, tenant_id, &id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

/// One machine of a tenant.
///
/// # Errors
/// On database failure.
pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<Option<Machine>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM machines WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Machines of a tenant, by name (at most 5,000).
///
/// # Errors
/// On database failure.
pub async fn list(db: &Db, tenant_id: &str) -> Result<Vec<Machine>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM machines WHERE tenant_id = $1 ORDER BY name, id LIMIT 5000");
    let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(db).await?;
    rows.iter().map(from_row).collect()
}

/// Replaces the editable fields.
///
/// # Errors
/// On database failure.
pub async fn update(
    db: &Db,
    tenant_id: &str,
    id: &str,
    fields: &MachineFields,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE machines SET name = $1, organization = $2, site = $3, tags = $4, \
         require_consent = $5 WHERE tenant_id = $6 AND id = $7",
    )
    .bind(&fields.name)
    .bind(&fields.organization)
    .bind(&fields.site)
    .bind(serde_json::to_string(&fields.tags).unwrap_or_else(|_| "[]".into()))
    .bind(i64::from(fields.require_consent))
    .bind(tenant_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Stores what an agent said in its hello and marks it seen now.
///
/// # Errors
/// On database failure.
pub async fn record_hello(
    db: &Db,
    machine_id: &str,
    hello: &reach_proto::v1::AgentHello,
) -> Result<(), sqlx::Error> {
    let caps = hello.capabilities.clone().unwrap_or_default();
    let screens: Vec<serde_json::Value> = caps
        .screens
        .iter()
        .map(|s| {
            serde_json::json!({"index": s.index, "x": s.x, "y": s.y, "width": s.width,
                "height": s.height, "primary": s.primary, "name": clip(&s.name, 64)})
        })
        .collect();
    let caps = serde_json::json!({"supports_h264": caps.supports_h264,
        "supports_usb": caps.supports_usb, "screens": screens});
    sqlx::query(
        "UPDATE machines SET os = $1, agent_version = $2, hostname = $3, capabilities = $4, \
         last_seen_at = $5 WHERE id = $6",
    )
    .bind(clip(&hello.os, 64))
    .bind(clip(&hello.agent_version, 64))
    .bind(clip(&hello.hostname, 255))
    .bind(caps.to_string())
    .bind(db::now_ms())
    .bind(machine_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Marks a machine seen now.
///
/// # Errors
/// On database failure.
pub async fn touch(db: &Db, machine_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE machines SET last_seen_at = $1 WHERE id = $2")
        .bind(db::now_ms())
        .bind(machine_id)
        .execute(db)
        .await?;
    Ok(())
}

/// At most `max` characters of agent-supplied text.
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Whether `m` matches every given filter (case-insensitive substring for `q`).
pub fn matches(
    m: &Machine,
    q: Option<&str>,
    organization: Option<&str>,
    site: Option<&str>,
    tag: Option<&str>,
) -> bool {
    let has = |hay: &str, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
    let q_ok = q.is_none_or(|q| {
        has(&m.name, q)
            || has(&m.organization, q)
            || has(&m.site, q)
            || has(&m.hostname, q)
            || m.tags.iter().any(|t| has(t, q))
    });
    q_ok && organization.is_none_or(|o| m.organization.eq_ignore_ascii_case(o))
        && site.is_none_or(|s| m.site.eq_ignore_ascii_case(s))
        && tag.is_none_or(|t| m.tags.iter().any(|x| x.eq_ignore_ascii_case(t)))
}

/// Deletes a machine of `tenant_id` and its agent keys (in one transaction); whether it
/// existed. Session history keeps the machine id.
///
/// # Errors
/// On database failure.
pub async fn delete(db: &Db, tenant_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM agent_keys WHERE tenant_id = $1 AND machine_id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let gone = sqlx::query("DELETE FROM machines WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(gone > 0)
}
