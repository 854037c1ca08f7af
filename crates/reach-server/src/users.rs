//! Users of a tenant: storage and validation. Every query is scoped by tenant, so a user id
//! from another tenant is simply not found.

use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

use crate::auth::permissions::{Permission, PermissionSet, Role};
use crate::db::{self, Db};

/// Longest user name (characters).
pub const MAX_USERNAME_CHARS: usize = 64;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct User {
    /// Id (`usr_…`).
    pub id: String,
    /// Login name, unique within the tenant.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Disabled users cannot log in and their tokens stop working.
    pub disabled: bool,
    /// Creation time (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// Last change (ms since the Unix epoch).
    pub updated_at_ms: i64,
}

/// Checks a user name: 1–64 of `A–Z a–z 0–9 . _ @ -`.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_username(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-');
    if name.is_empty() || name.chars().count() > MAX_USERNAME_CHARS || !name.chars().all(ok_char) {
        return Err(format!(
            "user names have 1 to {MAX_USERNAME_CHARS} characters from A-Z a-z 0-9 . _ @ -"
        ));
    }
    Ok(())
}

const COLUMNS: &str = "id, username, role, disabled, created_at, updated_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    let role: String = row.try_get("role")?;
    let disabled: i64 = row.try_get("disabled")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        // An unknown stored role is shown as the least privileged one; it grants nothing
        // beyond what `role_permissions` holds for it anyway.
        role: Role::from_name(&role).unwrap_or(Role::Viewer),
        disabled: disabled != 0,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

/// Creates a user.
///
/// # Errors
/// On database failure; a taken name is a unique violation.
pub async fn create<'e, E>(
    db: E,
    tenant_id: &str,
    username: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let now = db::now_ms();
    let user = User {
        id: db::new_id("usr"),
        username: username.to_owned(),
        role,
        disabled: false,
        created_at_ms: now,
        updated_at_ms: now,
    };
    sqlx::query(
        "INSERT INTO users (id, tenant_id, username, password_hash, role, disabled, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
    )
    .bind(&user.id)
    .bind(tenant_id)
    .bind(username)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now)
    .execute(db)
    .await?;
    Ok(user)
}

/// A user by id within a tenant.
///
/// # Errors
/// On database failure.
pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A user and their password hash, by name within a tenant.
///
/// # Errors
/// On database failure.
pub async fn find_for_login(
    db: &Db,
    tenant_id: &str,
    username: &str,
) -> Result<Option<(User, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE tenant_id = $1 AND username = $2"
    );
    let row = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(username)
        .fetch_optional(db)
        .await?;
    row.map(|row| Ok((from_row(&row)?, row.try_get("password_hash")?)))
        .transpose()
}

/// The password hash of a user.
///
/// # Errors
/// On database failure.
pub async fn password_hash(
    db: &Db,
    tenant_id: &str,
    id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// All users of a tenant, by name.
///
/// # Errors
/// On database failure.
pub async fn list(db: &Db, tenant_id: &str) -> Result<Vec<User>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY username");
    let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(db).await?;
    rows.iter().map(from_row).collect()
}

/// Changes role, disabled flag and/or password hash; returns the updated user.
///
/// # Errors
/// On database failure.
pub async fn update(
    db: &Db,
    tenant_id: &str,
    id: &str,
    role: Option<Role>,
    disabled: Option<bool>,
    password_hash: Option<&str>,
) -> Result<Option<User>, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET role = COALESCE($1, role), disabled = COALESCE($2, disabled), \
         password_hash = COALESCE($3, password_hash), updated_at = $4 \
         WHERE tenant_id = $5 AND id = $6",
    )
    .bind(role.map(Role::as_str))
    .bind(disabled.map(i64::from))
    .bind(password_hash)
    .bind(db::now_ms())
    .bind(tenant_id)
    .bind(id)
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    get(db, tenant_id, id).await
}

/// Deletes a user; `false` when there was none.
///
/// # Errors
/// On database failure.
pub async fn delete(db: &Db, tenant_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Number of enabled admins in a tenant (the last one may not be removed or demoted).
///
/// # Errors
/// On database failure.
pub async fn count_active_admins(db: &Db, tenant_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role IN ('admin', 'owner') \
         AND disabled = 0",
    )
    .bind(tenant_id)
    .fetch_one(db)
    .await
}

/// The permissions a role grants, read from `role_permissions`.
///
/// # Errors
/// On database failure.
pub async fn role_permissions(db: &Db, role: &str) -> Result<PermissionSet, sqlx::Error> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT permission FROM role_permissions WHERE role = $1")
            .bind(role)
            .fetch_all(db)
            .await?;
    Ok(names
        .iter()
        .filter_map(|n| Permission::from_name(n))
        .collect())
}
