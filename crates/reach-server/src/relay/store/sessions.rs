//! Session rows.

use serde::Serialize;
use sqlx::Row as _;
use utoipa::ToSchema;

use reach_proto::access::ViewerAccess;

use crate::db::{self, Db};

/// A session as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    /// Id (`ses_…`).
    pub id: String,
    /// Machine.
    pub machine_id: String,
    /// `managed` or `attended`.
    pub kind: String,
    /// User id of the technician who opened it (or created the code).
    pub created_by: String,
    /// Technician's display name.
    pub technician: String,
    /// Access asked for (`control` or `view_only`).
    #[schema(value_type = String, example = "control")]
    pub access: ViewerAccess,
    /// USB asked for.
    pub usb: bool,
    /// `not_required`, `pending`, `granted` or `denied`.
    pub consent: String,
    /// Creation time (ms).
    pub created_at_ms: i64,
    /// End time (ms), if ended.
    pub ended_at_ms: Option<i64>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Viewers connected now (on this server instance).
    pub viewers: usize,
    /// Claims attached to technicians' kernels now (`reach usb attach`; this server instance).
    pub usb_attached: Vec<crate::usb_attached::AttachedClaim>,
}

const COLUMNS: &str = "id, machine_id, kind, created_by, technician, access, usb, consent, \
    created_at, ended_at, end_reason";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Session, sqlx::Error> {
    let usb: i64 = r.try_get("usb")?;
    Ok(Session {
        id: r.try_get("id")?,
        machine_id: r.try_get("machine_id")?,
        kind: r.try_get("kind")?,
        created_by: r.try_get("created_by")?,
        technician: r.try_get("technician")?,
        access: access_from_row(r)?,
        usb: usb != 0,
        consent: r.try_get("consent")?,
        created_at_ms: r.try_get("created_at")?,
        ended_at_ms: r.try_get("ended_at")?,
        end_reason: r.try_get("end_reason")?,
        viewers: 0,
        usb_attached: Vec::new(),
    })
}

/// The stored access name as the one access type; an unknown name is a decode error,
/// never a silent grant.
fn access_from_row(r: &sqlx::any::AnyRow) -> Result<ViewerAccess, sqlx::Error> {
    let name: String = r.try_get("access")?;
    ViewerAccess::from_name(&name).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: "access".into(),
        source: format!("unknown access {name:?}").into(),
    })
}

/// What a new session row holds.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// Tenant.
    pub tenant_id: &'a str,
    /// Machine.
    pub machine_id: &'a str,
    /// `managed` or `attended`.
    pub kind: &'a str,
    /// Creating user id.
    pub created_by: &'a str,
    /// Technician's display name.
    pub technician: &'a str,
    /// Access asked for.
    pub access: ViewerAccess,
    /// USB asked for.
    pub usb: bool,
    /// Initial consent state name.
    pub consent: &'a str,
    /// The server instance that holds its live state ([`crate::instances`]).
    pub instance_id: &'a str,
}

/// Inserts a session and returns its id.
///
/// # Errors
/// On database failure.
pub async fn insert(db: &Db, s: &NewSession<'_>) -> Result<String, sqlx::Error> {
    let id = db::new_id("ses");
    sqlx::query(
        "INSERT INTO sessions (id, tenant_id, machine_id, kind, created_by, technician, access, \
         usb, consent, created_at, instance_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(s.tenant_id)
    .bind(s.machine_id)
    .bind(s.kind)
    .bind(s.created_by)
    .bind(s.technician)
    .bind(s.access.as_str())
    .bind(i64::from(s.usb))
    .bind(s.consent)
    .bind(db::now_ms())
    .bind(s.instance_id)
    .execute(db)
    .await?;
    Ok(id)
}

/// One session of a tenant.
///
/// # Errors
/// On database failure.
pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<Option<Session>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Sessions of a tenant, newest first (live ones only unless `include_ended`).
///
/// # Errors
/// On database failure.
pub async fn list(
    db: &Db,
    tenant_id: &str,
    include_ended: bool,
) -> Result<Vec<Session>, sqlx::Error> {
    let filter = if include_ended {
        ""
    } else {
        " AND ended_at IS NULL"
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions WHERE tenant_id = $1{filter} \
         ORDER BY created_at DESC LIMIT 1000"
    );
    let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(db).await?;
    rows.iter().map(from_row).collect()
}

/// The newest open managed session `created_by` opened on `machine_id` with this access
/// and USB flag, if any.
///
/// # Errors
/// On database failure.
pub async fn find_open(
    db: &Db,
    tenant_id: &str,
    machine_id: &str,
    created_by: &str,
    scope: (ViewerAccess, bool),
) -> Result<Option<Session>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions WHERE tenant_id = $1 AND machine_id = $2 \
         AND created_by = $3 AND access = $4 AND usb = $5 AND kind = 'managed' \
         AND ended_at IS NULL ORDER BY created_at DESC LIMIT 1"
    );
    let row = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(machine_id)
        .bind(created_by)
        .bind(scope.0.as_str())
        .bind(i64::from(scope.1))
        .fetch_optional(db)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Records the consent state.
///
/// # Errors
/// On database failure.
pub async fn set_consent(db: &Db, id: &str, consent: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET consent = $1 WHERE id = $2")
        .bind(consent)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Ends a session; `false` if it had already ended.
///
/// # Errors
/// On database failure.
pub async fn end(db: &Db, id: &str, reason: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE id = $3 AND ended_at IS NULL",
    )
    .bind(db::now_ms())
    .bind(reason)
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
