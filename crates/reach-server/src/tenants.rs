//! Tenants: every user, machine, session, code, key and audit record belongs to one.
//! The first start creates `default` (see [`crate::bootstrap`]); the provider's `owner` manages
//! the others through `/api/tenants` ([`crate::http::tenants`]).

use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

use crate::db::{self, Db};

/// Name of the tenant created on first start.
pub const DEFAULT_TENANT: &str = "default";
/// Longest tenant name (characters).
pub const MAX_NAME_CHARS: usize = 64;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Tenant {
    /// Id (`ten_…`).
    pub id: String,
    /// Unique name, used at login.
    pub name: String,
    /// Creation time (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// When it was suspended (its users cannot log in and its agents cannot connect), if it is.
    pub suspended_at_ms: Option<i64>,
}

impl Tenant {
    /// Whether the tenant is suspended.
    pub fn suspended(&self) -> bool {
        self.suspended_at_ms.is_some()
    }
}

/// Checks a tenant name: 1–64 of `A–Z a–z 0–9 . _ -`.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || !name.chars().all(ok_char) {
        return Err(format!(
            "tenant names have 1 to {MAX_NAME_CHARS} characters from A-Z a-z 0-9 . _ -"
        ));
    }
    Ok(())
}

const COLUMNS: &str = "id, name, created_at, suspended_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at_ms: row.try_get("created_at")?,
        suspended_at_ms: row.try_get("suspended_at")?,
    })
}

/// Creates a tenant.
///
/// # Errors
/// On database failure, including a name that already exists (unique violation).
pub async fn create<'e, E>(db: E, name: &str) -> Result<Tenant, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let tenant = Tenant {
        id: db::new_id("ten"),
        name: name.to_owned(),
        created_at_ms: db::now_ms(),
        suspended_at_ms: None,
    };
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(tenant.created_at_ms)
        .execute(db)
        .await?;
    Ok(tenant)
}

/// A tenant's name by id (`None` when there is no such tenant).
///
/// # Errors
/// On database failure.
pub async fn name_of(db: &Db, id: &str) -> Result<Option<String>, sqlx::Error> {
    Ok(get(db, id).await?.map(|t| t.name))
}

/// A tenant by id.
///
/// # Errors
/// On database failure.
pub async fn get(db: &Db, id: &str) -> Result<Option<Tenant>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
    row.as_ref().map(from_row).transpose()
}

/// Finds a tenant by name.
///
/// # Errors
/// On database failure.
pub async fn find_by_name(db: &Db, name: &str) -> Result<Option<Tenant>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE name = $1");
    let row = sqlx::query(&sql).bind(name).fetch_optional(db).await?;
    row.as_ref().map(from_row).transpose()
}

/// Every tenant, oldest first.
///
/// # Errors
/// On database failure.
pub async fn list(db: &Db) -> Result<Vec<Tenant>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM tenants ORDER BY created_at, id");
    let rows = sqlx::query(&sql).fetch_all(db).await?;
    rows.iter().map(from_row).collect()
}

/// Whether the tenant is suspended (an unknown tenant counts as suspended: fail closed).
///
/// # Errors
/// On database failure.
pub async fn is_suspended(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    Ok(get(db, id).await?.is_none_or(|t| t.suspended()))
}

/// Suspends (`Some(now)`) or resumes (`None`) a tenant; false when there is no such tenant.
///
/// # Errors
/// On database failure.
pub async fn set_suspended(db: &Db, id: &str, at: Option<i64>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE tenants SET suspended_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a tenant with its users, tokens, machines, keys, support codes and sessions, in one
/// transaction. Its audit records stay (the server never deletes audit rows).
///
/// # Errors
/// On database failure.
pub async fn delete(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    for table in [
        "auth_tokens",
        "support_codes",
        "agent_keys",
        "sessions",
        "machines",
        "users",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE tenant_id = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// How many users and machines a tenant has.
///
/// # Errors
/// On database failure.
pub async fn counts(db: &Db, id: &str) -> Result<(i64, i64), sqlx::Error> {
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1")
        .bind(id)
        .fetch_one(db)
        .await?;
    let machines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM machines WHERE tenant_id = $1")
        .bind(id)
        .fetch_one(db)
        .await?;
    Ok((users, machines))
}
