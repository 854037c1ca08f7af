//! `GET/POST /api/tenants`, `GET/PATCH/DELETE /api/tenants/{id}` (permission `manage_tenants`,
//! the provider's `owner` role only). Without the permission every `{id}` route answers 404,
//! exactly like an id that does not exist, so tenant ids never leak.
//!
//! Suspending a tenant revokes its tokens (its consoles and viewers close at once), expires its
//! unused support codes, ends its live sessions and disconnects its agents; while suspended its
//! users cannot log in and its agents cannot connect. The provider's own tenant cannot be
//! suspended or deleted.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::permissions::{Permission, Role};
use crate::auth::{password, tokens};
use crate::db;
use crate::http::error::{Error, ErrorBody, Result};
use crate::http::extract::{AuthUser, Json};
use crate::relay::{lifecycle, store};
use crate::state::AppState;
use crate::tenants::{self, Tenant};
use crate::users::{self, User};
use reach_proto::close;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, update_tenant, delete_tenant))
}

/// A tenant with its size.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    /// The tenant.
    #[serde(flatten)]
    pub tenant: Tenant,
    /// Users in it.
    pub users: i64,
    /// Machines in it.
    pub machines: i64,
}

/// New tenant and its first admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Unique name (1–64 of `A–Z a–z 0–9 . _ -`); its users give it at login.
    pub name: String,
    /// The first admin's login name.
    pub admin_username: String,
    /// The first admin's password (at least 8 characters).
    pub admin_password: String,
}

/// A created tenant and its first admin.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    /// The tenant.
    pub tenant: Tenant,
    /// Its first admin.
    pub admin: User,
}

/// Changes to a tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    /// Suspend (`true`) or resume (`false`).
    pub suspended: bool,
}

/// Every tenant (permission `manage_tenants`).
#[utoipa::path(get, path = "/api/tenants", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = [TenantView]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_tenants(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<TenantView>>> {
    auth.require(Permission::ManageTenants)?;
    let mut out = Vec::new();
    for tenant in tenants::list(&state.db).await? {
        out.push(view(&state, tenant).await?);
    }
    Ok(Json(out))
}

async fn view(state: &AppState, tenant: Tenant) -> Result<TenantView> {
    let (users, machines) = tenants::counts(&state.db, &tenant.id).await?;
    Ok(TenantView {
        tenant,
        users,
        machines,
    })
}

/// Creates a tenant with its first admin (permission `manage_tenants`).
#[utoipa::path(post, path = "/api/tenants", tag = "tenants", security(("bearer" = [])),
    request_body = CreateTenant,
    responses((status = 201, body = CreatedTenant), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody)))]
async fn create_tenant(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(req): Json<CreateTenant>,
) -> Result<(StatusCode, Json<CreatedTenant>)> {
    auth.require(Permission::ManageTenants)?;
    tenants::check_name(&req.name).map_err(|m| Error::bad_request("invalid_name", m))?;
    users::check_username(&req.admin_username)
        .map_err(|m| Error::bad_request("invalid_username", m))?;
    password::check_policy(&req.admin_password)
        .map_err(|m| Error::bad_request("weak_password", m))?;
    let hash = state
        .passwords
        .hash(&req.admin_password)
        .await
        .map_err(anyhow::Error::from)?;
    let mut tx = state.db.begin().await?;
    let tenant = match tenants::create(&mut *tx, &req.name).await {
        Ok(t) => t,
        Err(err) if db::is_unique_violation(&err) => {
            return Err(Error::Conflict {
                code: "tenant_name_taken",
                message: format!("a tenant named {:?} already exists", req.name),
            });
        }
        Err(err) => return Err(err.into()),
    };
    let admin = users::create(
        &mut *tx,
        &tenant.id,
        &req.admin_username,
        &hash,
        Role::Admin,
    )
    .await?;
    tx.commit().await?;
    let details = json!({"tenant_id": tenant.id, "name": tenant.name, "admin_user_id": admin.id});
    state
        .audit(
            &auth.tenant_id,
            &auth.username,
            "tenant_created",
            details.clone(),
        )
        .await?;
    state
        .audit(&tenant.id, &auth.username, "tenant_created", details)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedTenant { tenant, admin })))
}

/// The tenant `id`, for a caller who may manage tenants; 404 for anyone else.
async fn managed(state: &AppState, auth: &AuthUser, id: &str) -> Result<Tenant> {
    if !auth.can(Permission::ManageTenants) {
        return Err(Error::NotFound("tenant"));
    }
    tenants::get(&state.db, id)
        .await?
        .ok_or(Error::NotFound("tenant"))
}

fn not_own(auth: &AuthUser, tenant: &Tenant, what: &str) -> Result<()> {
    if tenant.id == auth.tenant_id {
        return Err(Error::Conflict {
            code: "own_tenant",
            message: format!("the provider's own tenant cannot be {what}"),
        });
    }
    Ok(())
}

/// One tenant.
#[utoipa::path(get, path = "/api/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 200, body = TenantView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_tenant(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<TenantView>> {
    let tenant = managed(&state, &auth, &id).await?;
    Ok(Json(view(&state, tenant).await?))
}

/// Suspends or resumes a tenant. Suspending closes its consoles, viewers and agents and ends
/// its live sessions at once.
#[utoipa::path(patch, path = "/api/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tenant id")), request_body = UpdateTenant,
    responses((status = 200, body = TenantView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn update_tenant(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<UpdateTenant>,
) -> Result<Json<TenantView>> {
    let tenant = managed(&state, &auth, &id).await?;
    not_own(&auth, &tenant, "suspended")?;
    let at = req.suspended.then(db::now_ms);
    if req.suspended != tenant.suspended() {
        tenants::set_suspended(&state.db, &id, at).await?;
        if req.suspended {
            shut_out(&state, &auth, &id).await?;
        }
        let event = if req.suspended {
            "tenant_suspended"
        } else {
            "tenant_resumed"
        };
        let details = json!({"tenant_id": id, "name": tenant.name});
        state
            .audit(&auth.tenant_id, &auth.username, event, details.clone())
            .await?;
        state.audit(&id, &auth.username, event, details).await?;
    }
    let tenant = managed(&state, &auth, &id).await?;
    Ok(Json(view(&state, tenant).await?))
}

/// Everything of a tenant that is connected or could connect is shut out: tokens revoked (and
/// their sockets closed), unused support codes expired, live sessions ended, agents closed.
async fn shut_out(state: &AppState, auth: &AuthUser, tenant_id: &str) -> Result<()> {
    tokens::revoke_tenant(state, tenant_id).await?;
    store::credentials::expire_codes(&state.db, tenant_id).await?;
    for session_id in crate::cluster::open_sessions(state, tenant_id, None).await? {
        let reason = "tenant_suspended";
        lifecycle::end(
            state,
            tenant_id,
            &session_id,
            &auth.username,
            reason,
            close::NORMAL,
        )
        .await?;
    }
    for machine in store::machines::list(&state.db, tenant_id).await? {
        let why = crate::bus::AgentClose::TenantSuspended;
        crate::cluster::close_machine(state, tenant_id, &machine.id, why).await;
    }
    Ok(())
}

/// Deletes a suspended tenant with its users, machines, keys, codes and sessions (its audit
/// records stay).
#[utoipa::path(delete, path = "/api/tenants/{id}", tag = "tenants", security(("bearer" = [])),
    params(("id" = String, Path, description = "Tenant id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_tenant(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let tenant = managed(&state, &auth, &id).await?;
    not_own(&auth, &tenant, "deleted")?;
    if !tenant.suspended() {
        return Err(Error::Conflict {
            code: "not_suspended",
            message: "suspend the tenant first (PATCH with {\"suspended\": true})".into(),
        });
    }
    if !tenants::delete(&state.db, &id).await? {
        return Err(Error::NotFound("tenant"));
    }
    let details = json!({"tenant_id": id, "name": tenant.name});
    state
        .audit(&auth.tenant_id, &auth.username, "tenant_deleted", details)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
