//! `POST/GET /api/machines/{id}/keys`, `DELETE /api/machines/{id}/keys/{key_id}`: agent keys
//! (permission `manage_machines`). A key is shown once; only its SHA-256 is stored.
//! Revoking a key closes the live agent connection that used it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::rngs::OsRng;
use reach_proto::agent_key::AgentKey;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::permissions::Permission;
use crate::http::error::{Error, ErrorBody, Result};
use crate::http::extract::{AuthUser, Json};
use crate::relay::store::credentials::{self, AgentKeyInfo};
use crate::relay::store::machines;
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, issue_key))
        .routes(routes!(revoke_key))
}

/// A freshly issued key: `key` is shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKey {
    /// The agent key (`cak_…`); store it on the machine, it cannot be shown again.
    pub key: String,
    /// The key's listing entry.
    #[serde(flatten)]
    pub info: AgentKeyInfo,
}

async fn machine_in_tenant(state: &AppState, auth: &AuthUser, id: &str) -> Result<()> {
    machines::get(&state.db, &auth.tenant_id, id)
        .await?
        .map(|_| ())
        .ok_or(Error::NotFound("machine"))
}

/// Issues a new agent key for the machine.
#[utoipa::path(post, path = "/api/machines/{id}/keys", tag = "machines", security(("bearer" = [])),
    params(("id" = String, Path, description = "Machine id")),
    responses((status = 201, body = IssuedKey), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn issue_key(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<IssuedKey>)> {
    auth.require(Permission::ManageMachines)?;
    machine_in_tenant(&state, &auth, &id).await?;
    let key = AgentKey::generate(&mut OsRng).map_err(|e| Error::Internal(e.into()))?;
    let info =
        credentials::insert_key(&state.db, &auth.tenant_id, &id, &key, &auth.username).await?;
    let details = json!({"machine_id": id, "key_id": info.id, "prefix": info.prefix});
    state
        .audit(&auth.tenant_id, &auth.username, "key_issued", details)
        .await?;
    let key = key.expose().to_owned();
    Ok((StatusCode::CREATED, Json(IssuedKey { key, info })))
}

/// The machine's keys (never the keys themselves).
#[utoipa::path(get, path = "/api/machines/{id}/keys", tag = "machines", security(("bearer" = [])),
    params(("id" = String, Path, description = "Machine id")),
    responses((status = 200, body = [AgentKeyInfo]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_keys(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Vec<AgentKeyInfo>>> {
    auth.require(Permission::ManageMachines)?;
    machine_in_tenant(&state, &auth, &id).await?;
    Ok(Json(
        credentials::list_keys(&state.db, &auth.tenant_id, &id).await?,
    ))
}

/// Revokes a key and disconnects the agent using it.
#[utoipa::path(delete, path = "/api/machines/{id}/keys/{key_id}", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Machine id"),
        ("key_id" = String, Path, description = "Key id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn revoke_key(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    auth.require(Permission::ManageMachines)?;
    if !credentials::revoke_key(&state.db, &auth.tenant_id, &id, &key_id).await? {
        return Err(Error::NotFound("key"));
    }
    crate::cluster::close_key(&state, &auth.tenant_id, &key_id).await;
    let details = json!({"machine_id": id, "key_id": key_id});
    state
        .audit(&auth.tenant_id, &auth.username, "key_revoked", details)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
