//! `GET/POST /api/machines`, `GET/PATCH /api/machines/{id}`: managed machines, searchable by
//! name, organization, site and tag, with their live online state. Other tenants' ids are 404.

// `#[utoipa::path(params(...))]` expands to a path the lint calls over-qualified.
#![allow(unused_qualifications)]

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use reach_proto::close;
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::permissions::Permission;
use crate::bus::AgentClose;
use crate::cluster;
use crate::http::error::{Error, ErrorBody, Result};
use crate::http::extract::{AuthUser, Json};
use crate::relay::lifecycle;
use crate::relay::store::credentials;
use crate::relay::store::machines::{self, Machine, MachineFields};
use crate::state::AppState;

/// Longest name, organization or site (characters).
pub const MAX_FIELD_CHARS: usize = 128;
/// Most tags per machine.
pub const MAX_TAGS: usize = 32;
/// Longest tag (characters).
pub const MAX_TAG_CHARS: usize = 64;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_machines, create_machine))
        .routes(routes!(get_machine, update_machine, delete_machine))
}

/// New machine.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMachine {
    /// Display name (1–128 characters).
    pub name: String,
    /// Organization (customer).
    pub organization: Option<String>,
    /// Site (location).
    pub site: Option<String>,
    /// Tags (at most 32 of at most 64 characters).
    pub tags: Option<Vec<String>>,
    /// Sessions need the consent of the person at the machine (default false).
    pub require_consent: Option<bool>,
}

/// Changes to a machine; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMachine {
    /// Display name.
    pub name: Option<String>,
    /// Organization.
    pub organization: Option<String>,
    /// Site.
    pub site: Option<String>,
    /// Tags (replaces the list).
    pub tags: Option<Vec<String>>,
    /// Consent policy.
    pub require_consent: Option<bool>,
}

/// Search filters; all optional, combined with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MachineQuery {
    /// Case-insensitive text in name, organization, site, host name or a tag.
    pub q: Option<String>,
    /// Exact organization (case-insensitive).
    pub organization: Option<String>,
    /// Exact site (case-insensitive).
    pub site: Option<String>,
    /// Has this tag (case-insensitive).
    pub tag: Option<String>,
    /// Only online (true) or offline (false) machines.
    pub online: Option<bool>,
}

fn check_fields(f: &MachineFields) -> Result<()> {
    let too_long = |s: &str| s.chars().count() > MAX_FIELD_CHARS;
    if f.name.trim().is_empty() || too_long(&f.name) {
        return Err(Error::bad_request(
            "invalid_name",
            "a machine name has 1 to 128 characters",
        ));
    }
    if too_long(&f.organization) || too_long(&f.site) {
        return Err(Error::bad_request(
            "invalid_field",
            "organization and site have at most 128 characters",
        ));
    }
    if f.tags.len() > MAX_TAGS
        || f.tags
            .iter()
            .any(|t| t.trim().is_empty() || t.chars().count() > MAX_TAG_CHARS)
    {
        return Err(Error::bad_request(
            "invalid_tags",
            "at most 32 tags of 1 to 64 characters",
        ));
    }
    Ok(())
}

/// With `online` set from every instance (the agent may be connected to another).
async fn with_online(state: &AppState, tenant_id: &str, mut m: Machine) -> Result<Machine> {
    m.online = cluster::online(state, tenant_id, std::slice::from_ref(&m.id))
        .await?
        .contains(&m.id);
    Ok(m)
}

/// Machines of the caller's tenant, filtered.
#[utoipa::path(get, path = "/api/machines", tag = "machines", security(("bearer" = [])),
    params(MachineQuery),
    responses((status = 200, body = [Machine]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_machines(
    State(state): State<AppState>,
    auth: AuthUser,
    query: std::result::Result<Query<MachineQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Machine>>> {
    auth.require(Permission::View)?;
    let Query(q) = query?;
    let all = machines::list(&state.db, &auth.tenant_id).await?;
    let ids: Vec<String> = all.iter().map(|m| m.id.clone()).collect();
    let on = cluster::online(&state, &auth.tenant_id, &ids).await?;
    let found = all
        .into_iter()
        .map(|mut m| {
            m.online = on.contains(&m.id);
            m
        })
        .filter(|m| {
            machines::matches(
                m,
                q.q.as_deref(),
                q.organization.as_deref(),
                q.site.as_deref(),
                q.tag.as_deref(),
            ) && q.online.is_none_or(|o| m.online == o)
        })
        .collect();
    Ok(Json(found))
}

/// Creates a machine (permission `manage_machines`); issue it a key next.
#[utoipa::path(post, path = "/api/machines", tag = "machines", security(("bearer" = [])),
    request_body = CreateMachine,
    responses((status = 201, body = Machine), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_machine(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<CreateMachine>,
) -> Result<(StatusCode, Json<Machine>)> {
    auth.require(Permission::ManageMachines)?;
    let fields = MachineFields {
        name: body.name.trim().to_owned(),
        organization: body.organization.unwrap_or_default(),
        site: body.site.unwrap_or_default(),
        tags: body.tags.unwrap_or_default(),
        require_consent: body.require_consent.unwrap_or(false),
    };
    check_fields(&fields)?;
    let machine = machines::create(&state.db, &auth.tenant_id, &fields, false).await?;
    let details = json!({"machine_id": machine.id, "name": machine.name});
    state
        .audit(&auth.tenant_id, &auth.username, "machine_created", details)
        .await?;
    Ok((StatusCode::CREATED, Json(machine)))
}

/// One machine.
#[utoipa::path(get, path = "/api/machines/{id}", tag = "machines", security(("bearer" = [])),
    params(("id" = String, Path, description = "Machine id")),
    responses((status = 200, body = Machine), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_machine(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Machine>> {
    auth.require(Permission::View)?;
    let m = machines::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("machine"))?;
    Ok(Json(with_online(&state, &auth.tenant_id, m).await?))
}

/// Edits name, organization, site, tags or consent policy (permission `manage_machines`).
#[utoipa::path(patch, path = "/api/machines/{id}", tag = "machines", security(("bearer" = [])),
    params(("id" = String, Path, description = "Machine id")), request_body = UpdateMachine,
    responses((status = 200, body = Machine), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn update_machine(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(body): Json<UpdateMachine>,
) -> Result<Json<Machine>> {
    auth.require(Permission::ManageMachines)?;
    let m = machines::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("machine"))?;
    let fields = MachineFields {
        name: body.name.map_or(m.name, |n| n.trim().to_owned()),
        organization: body.organization.unwrap_or(m.organization),
        site: body.site.unwrap_or(m.site),
        tags: body.tags.unwrap_or(m.tags),
        require_consent: body.require_consent.unwrap_or(m.require_consent),
    };
    check_fields(&fields)?;
    machines::update(&state.db, &auth.tenant_id, &id, &fields).await?;
    state
        .audit(
            &auth.tenant_id,
            &auth.username,
            "machine_updated",
            json!({"machine_id": id}),
        )
        .await?;
    let m = machines::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("machine"))?;
    Ok(Json(with_online(&state, &auth.tenant_id, m).await?))
}

/// Deletes a machine (permission `manage_machines`): its keys are revoked and its agent
/// disconnected, its live sessions end (`machine_deleted`), then the machine and its keys are
/// removed. Session history and the audit log keep its id.
#[utoipa::path(delete, path = "/api/machines/{id}", tag = "machines", security(("bearer" = [])),
    params(("id" = String, Path, description = "Machine id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_machine(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    auth.require(Permission::ManageMachines)?;
    machines::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("machine"))?;
    for session_id in cluster::open_sessions(&state, &auth.tenant_id, Some(&id)).await? {
        lifecycle::end(
            &state,
            &auth.tenant_id,
            &session_id,
            &auth.username,
            "machine_deleted",
            close::NORMAL,
        )
        .await?;
    }
    for key in credentials::list_keys(&state.db, &auth.tenant_id, &id).await? {
        cluster::close_key(&state, &auth.tenant_id, &key.id).await;
    }
    cluster::close_machine(&state, &auth.tenant_id, &id, AgentClose::Revoked).await;
    if !machines::delete(&state.db, &auth.tenant_id, &id).await? {
        return Err(Error::NotFound("machine"));
    }
    state
        .audit(
            &auth.tenant_id,
            &auth.username,
            "machine_deleted",
            json!({"machine_id": id}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
