//! `POST/GET /api/sessions`, `GET/DELETE /api/sessions/{id}`, and
//! `POST /api/sessions/{id}/viewer-token` (5-minute token with the access mode signed in).

// `#[utoipa::path(params(...))]` expands to a path the lint calls over-qualified.
#![allow(unused_qualifications)]

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use reach_proto::access::{self, ViewerAccess};
use reach_proto::close;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::permissions::Permission;
use crate::auth::tokens;
use crate::cluster::{self, OpenError};
use crate::http::access::{requested_scope, token_grant};
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
    #[schema(value_type = Option<String>, example = "control")]
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
    /// Access signed into it: the lesser of the caller's permissions, the session's
    /// access and (attended) what the person at the machine allowed.
    #[schema(value_type = String, example = "view_only")]
    pub access: ViewerAccess,
    /// USB signed into it (the host's switch is still checked on every USB frame).
    pub usb: bool,
    /// Expiry (ms since the Unix epoch).
    pub expires_at_ms: i64,
}

fn offline() -> Error {
    Error::Conflict {
        code: "machine_offline",
        message: "the machine's agent is not connected".into(),
    }
}

fn with_viewers(state: &AppState, mut s: Session) -> Session {
    s.viewers = state.relay.viewer_count(&s.id);
    if s.ended_at_ms.is_some() {
        state.usb_attached.forget(&s.id);
    } else {
        s.usb_attached = state.usb_attached.of(&s.id);
    }
    s
}

/// Opens a managed session to an online machine. Asking again for the same machine and
/// scope while the caller's session is still open returns that session (200), not a second.
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", security(("bearer" = [])),
    request_body = CreateSession,
    responses((status = 201, body = Session), (status = 200, body = Session),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_session(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<CreateSession>,
) -> Result<(StatusCode, Json<Session>)> {
    let scope = requested_scope(&auth, body.access, body.usb)?;
    let machine = machines::get(&state.db, &auth.tenant_id, &body.machine_id)
        .await?
        .ok_or(Error::NotFound("machine"))?;
    if cluster::machine_home(&state, &machine.id).await?.is_none() {
        return Err(offline());
    }
    let same = (scope.access, scope.usb);
    let open = sessions::find_open(&state.db, &auth.tenant_id, &machine.id, &auth.user_id, same);
    if let Some(existing) = open.await?
        && cluster::session_access(&state, &auth.tenant_id, &existing.id)
            .await
            .is_some()
    {
        return Ok((StatusCode::OK, Json(with_viewers(&state, existing))));
    }
    let opening = Opening {
        tenant_id: &auth.tenant_id,
        machine_id: &machine.id,
        attended: false,
        created_by: &auth.user_id,
        technician: &auth.username,
        scope,
        consent_required: machine.require_consent,
    };
    let id = match cluster::open_session(&state, &opening).await {
        Ok(id) => id,
        Err(OpenError::Database(e)) => return Err(e.into()),
        Err(OpenError::Offline) => return Err(offline()),
        Err(OpenError::Elsewhere(message)) => {
            tracing::warn!(%message, "another instance did not open the session");
            return Err(Error::Conflict {
                code: "machine_offline",
                message: "the server holding the machine's agent did not open the session".into(),
            });
        }
    };
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

/// Ends a session and closes every viewer. Needs `control`, or being the technician who
/// opened it: watching never lets a user end someone else's session.
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
    let s = sessions::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("session"))?;
    if !access::may_end_session(auth.permissions.rights(), s.created_by == auth.user_id) {
        return Err(Error::Forbidden(Permission::Control));
    }
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

/// Mints a 5-minute viewer token carrying the one access rule's grant: the lesser of the
/// caller's permissions (`control` or `view`, else 403), the session's access and USB, and
/// what the person at the machine consented to.
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
    auth.require(Permission::View)?;
    let s = sessions::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("session"))?;
    let live = match s.ended_at_ms {
        None => cluster::session_access(&state, &auth.tenant_id, &id).await,
        Some(_) => None,
    };
    let Some((scope, consent)) = live else {
        return Err(Error::Conflict {
            code: "session_ended",
            message: "the session has ended".into(),
        });
    };
    let grant = token_grant(&auth, scope, consent)?;
    let issued = tokens::issue_viewer(&state, &auth.claims, &id, &grant).await?;
    Ok(Json(ViewerToken {
        token: issued.token,
        session_id: id,
        access: grant.access,
        usb: grant.usb.is_ok(),
        expires_at_ms: issued.claims.exp * 1000,
    }))
}
