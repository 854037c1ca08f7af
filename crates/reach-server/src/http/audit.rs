//! `GET /api/audit` and `GET /api/audit/verify` (permission `audit`), scoped to the caller's
//! tenant.

// `#[utoipa::path(params(AuditQuery))]` expands to a path the lint calls over-qualified.
#![allow(unused_qualifications)]

use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::{self, AuditEntry, Verification};
use crate::auth::permissions::Permission;
use crate::http::error::{Error, ErrorBody, Result};
use crate::http::extract::{AuthUser, Json};
use crate::state::AppState;

/// Largest page.
pub const MAX_PAGE: i64 = 500;
const DEFAULT_PAGE: i64 = 100;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(verify_audit))
}

/// Filters and paging of the audit list (newest first).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this event type, e.g. `login_failed`.
    pub event_type: Option<String>,
    /// Only this actor (user name).
    pub user: Option<String>,
    /// Only records at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// Only records before this time (ms since the Unix epoch).
    pub until_ms: Option<i64>,
    /// Only records with an id below this (use the previous page's `next_before_id`).
    pub before_id: Option<i64>,
    /// Page size, 1–500 (default 100).
    pub limit: Option<i64>,
}

/// One page of audit records.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Records, newest first.
    pub items: Vec<AuditEntry>,
    /// Pass as `before_id` for the next page; absent on the last page.
    pub next_before_id: Option<i64>,
}

/// Lists audit records of the caller's tenant.
#[utoipa::path(get, path = "/api/audit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    auth: AuthUser,
    query: std::result::Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>> {
    auth.require(Permission::Audit)?;
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::bad_request(
            "invalid_query",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    let filter = audit::Filter {
        event_type: q.event_type,
        actor: q.user,
        since_ms: q.since_ms,
        until_ms: q.until_ms,
        before_id: q.before_id,
        limit,
    };
    let items = audit::list(&state.db, &auth.tenant_id, &filter).await?;
    let full_page = i64::try_from(items.len()).is_ok_and(|n| n == limit);
    let next_before_id = items.last().filter(|e| full_page && e.id > 1).map(|e| e.id);
    Ok(Json(AuditPage {
        items,
        next_before_id,
    }))
}

/// Verifies the caller's tenant's audit chain against every recorded head: `{"ok":true}` or
/// `{"ok":false,"broken_at_id":N}` (plus `bad_heads` when a recorded head was forged).
#[utoipa::path(get, path = "/api/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = Verification), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn verify_audit(State(state): State<AppState>, auth: AuthUser) -> Result<Json<Verification>> {
    auth.require(Permission::Audit)?;
    let mirror = state.config.data_dir.join(audit::HEAD_MIRROR_FILE);
    let keys = &state.audit_keys;
    let result = audit::verify(&state.db, keys, &auth.tenant_id, Some(&mirror)).await?;
    if !result.ok {
        tracing::warn!(tenant = %auth.tenant_id, broken_at_id = ?result.broken_at_id, "audit chain broken");
    }
    Ok(Json(result))
}
