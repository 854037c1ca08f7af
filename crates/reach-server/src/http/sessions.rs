//! `POST/GET /api/sessions`, `GET/DELETE /api/sessions/{id}`, and
//! `POST /api/sessions/{id}/viewer-token` (5-minute token with the access mode signed in).

// `#[utoipa::path(params(...))]` expands to a path the lint calls over-qualified.
#![allow(unused_qualifications)]

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use reach_proto::close;
use reach_proto::policy;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::permissions::Permission;
use crate::auth::token::ViewerAccess;
use crate::auth::tokens;
use crate::http::error::{Error, ErrorBody, Result};
use crate::http::extract::{AuthUser, Json};
use crate::relay::lifecycle::{self, Opening};
use crate::relay::store::machines;
use crate::relay::store::sessions::{self, Session};
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions, create_session))
        .routes(routes!(get_session, end_session))
        .routes(routes!(mint_viewer_token))
}

/// A managed session to open.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// An online machine of the caller's tenant.
    pub machine_id: String,
    /// Access asked for (default `control` when permitted, else `view_only`).
    pub access: Option<ViewerAccess>,
    /// Also ask for USB devices (needs permission `usb`).
    pub usb: Option<bool>,
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// Include ended sessions (default false).
    pub include_ended: Option<bool>,
}

/// A viewer token for one session.
#[derive(Debug, Serialize, ToSchema)]
pub struct ViewerToken {
    /// Send it as the first message on `/ws/viewer` (never in a URL).
    pub token: String,
    /// Session it opens.
    pub session_id: String,
    /// Access signed into it.
    pub access: ViewerAccess,
    /// Expiry (ms since the Unix epoch).
    pub expires_at_ms: i64,
}

fn to_policy(a: ViewerAccess) -> policy::ViewerAccess {
    match a {
        ViewerAccess::Control => policy::ViewerAccess::Control,
        ViewerAccess::ViewOnly => policy::ViewerAccess::ViewOnly,
    }
}

/// Access the caller's permissions give: `control` (admin or control) or `view_only`.
fn best_access(auth: &AuthUser) -> Result<ViewerAccess> {
    if auth.can(Permission::Control) {
        Ok(ViewerAccess::Control)
    } else if auth.can(Permission::View) {
        Ok(ViewerAccess::ViewOnly)
    } else {
        Err(Error::Forbidden(Permission::View))
    }
}

fn with_viewers(state: &AppState, mut s: Session) -> Session {
    s.viewers = state.relay.viewer_count(&s.id);
    s
}

/// Opens a managed session to an online machine.
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", security(("bearer" = [])),
    request_body = CreateSession,
    responses((status = 201, body = Session), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_session(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<CreateSession>,
) -> Result<(StatusCode, Json<Session>)> {
    let access = match body.access {
        Some(ViewerAccess::Control) => auth
            .require(Permission::Control)
            .map(|()| ViewerAccess::Control)?,
        Some(ViewerAccess::ViewOnly) => auth
            .require(Permission::View)
            .map(|()| ViewerAccess::ViewOnly)?,
        None => best_access(&auth)?,
    };
    let usb = body.usb.unwrap_or(false);
    if usb {
        auth.require(Permission::Usb)?;
    }
    let machine = machines::get(&state.db, &auth.tenant_id, &body.machine_id)
        .await?
        .ok_or(Error::NotFound("machine"))?;
    if !state.relay.is_online(&machine.id) {
        return Err(Error::Conflict {
            code: "machine_offline",
            message: "the machine's agent is not connected".into(),
        });
    }
    let opening = Opening {
        tenant_id: &auth.tenant_id,
        machine_id: &machine.id,
        attended: false,
        created_by: &auth.user_id,
        technician: &auth.username,
        access: to_policy(access),
        usb,
        consent_required: machine.require_consent,
    };
    let id = lifecycle::open(&state, &opening).await?;
    let s = sessions::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("session"))?;
    Ok((StatusCode::CREATED, Json(with_viewers(&state, s))))
}

/// Sessions of the caller's tenant.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", security(("bearer" = [])),
    params(SessionQuery),
    responses((status = 200, body = [Session]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_sessions(
    State(state): State<AppState>,
    auth: AuthUser,
    query: std::result::Result<Query<SessionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Session>>> {
    auth.require(Permission::View)?;
    let Query(q) = query?;
    let list = sessions::list(&state.db, &auth.tenant_id, q.include_ended.unwrap_or(false)).await?;
    Ok(Json(
        list.into_iter().map(|s| with_viewers(&state, s)).collect(),
    ))
}

/// One session.
#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = Session), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_session(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Session>> {
    auth.require(Permission::View)?;
    let s = sessions::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("session"))?;
    Ok(Json(with_viewers(&state, s)))
}

/// Ends a session and closes every viewer.
#[utoipa::path(delete, path = "/api/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn end_session(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    auth.require(Permission::View)?;
    sessions::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("session"))?;
    lifecycle::end(
        &state,
        &auth.tenant_id,
        &id,
        &auth.username,
        "ended_by_user",
        close::NORMAL,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mints a 5-minute viewer token: `control` for admins and `control` permission,
/// `view_only` for `view`, else 403.
#[utoipa::path(post, path = "/api/sessions/{id}/viewer-token", tag = "sessions",
    security(("bearer" = [])), params(("id" = String, Path, description = "Session id")),
    responses((status = 200, body = ViewerToken), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn mint_viewer_token(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<ViewerToken>> {
    let access = best_access(&auth)?;
    let s = sessions::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("session"))?;
    if s.ended_at_ms.is_some() {
        return Err(Error::Conflict {
            code: "session_ended",
            message: "the session has ended".into(),
        });
    }
    let issued = tokens::issue_viewer(&state, &auth.claims, &id, access).await?;
    Ok(Json(ViewerToken {
        token: issued.token,
        session_id: id,
        access,
        expires_at_ms: issued.claims.exp * 1000,
    }))
}
