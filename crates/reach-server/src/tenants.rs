//! Tenants: every user, machine, session, code, key and audit record belongs to one.
//! There is no tenant API yet; the first start creates `default` (see [`crate::bootstrap`]).

use sqlx::Row as _;

use crate::db::{self, Db};

/// Name of the tenant created on first start.
pub const DEFAULT_TENANT: &str = "default";

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Id (`ten_…`).
    pub id: String,
    /// Unique name, used at login.
    pub name: String,
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
    };
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(db::now_ms())
        .execute(db)
        .await?;
    Ok(tenant)
}

/// A tenant's name by id (`None` when there is no such tenant).
///
/// # Errors
/// On database failure.
pub async fn name_of(db: &Db, id: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT name FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.map(|row| row.try_get("name")).transpose()
}

/// Finds a tenant by name.
///
/// # Errors
/// On database failure.
pub async fn find_by_name(db: &Db, name: &str) -> Result<Option<Tenant>, sqlx::Error> {
    let row = sqlx::query("SELECT id, name FROM tenants WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await?;
    row.map(|row| {
        Ok(Tenant {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
        })
    })
    .transpose()
}
