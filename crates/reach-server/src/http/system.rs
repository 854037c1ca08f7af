//! `GET /healthz`, `GET /readyz`, `GET /metrics`, `GET /openapi.json`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use serde::Serialize;
use subtle::ConstantTimeEq as _;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::permissions::Permission;
use crate::http::error::{Error, ErrorBody, Result};
use crate::http::extract::{AuthUser, Json, bearer_token};
use crate::state::AppState;

/// Routes of this module (`/openapi.json` is added by [`crate::http::router`]).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: &'static str,
}

/// Liveness and database reachability (no authentication).
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health), (status = 500, body = ErrorBody)))]
async fn healthz(State(state): State<AppState>) -> Result<Json<Health>> {
    sqlx::query("SELECT 1").execute(&state.db).await?;
    Ok(Json(Health { status: "ok" }))
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`, `draining` (the server is stopping), `database_unreachable` or
    /// `bus_unreachable` (the NATS bus shared with other instances is down).
    pub status: &'static str,
}

/// Readiness for a load balancer (no authentication): 200 when the database (and the bus,
/// if configured) answers and the server is not stopping, else 503 — send new connections elsewhere.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, body = Ready), (status = 503, body = Ready)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let unready = |status| (StatusCode::SERVICE_UNAVAILABLE, Json(Ready { status }));
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return unready("draining");
    }
    if sqlx::query("SELECT 1").execute(&state.db).await.is_err() {
        return unready("database_unreachable");
    }
    if state.bus.as_ref().is_some_and(|b| !b.reachable()) {
        return unready("bus_unreachable");
    }
    (StatusCode::OK, Json(Ready { status: "ready" }))
}

/// Prometheus counters. Needs a login token with permission `audit`, or the configured
/// metrics token (`REACH_METRICS_TOKEN`) as bearer.
#[utoipa::path(get, path = "/metrics", tag = "system", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn metrics(State(state): State<AppState>, mut parts: Parts) -> Result<impl IntoResponse> {
    let token = bearer_token(&parts).unwrap_or_default().to_owned();
    let scraper = state.config.metrics_token.as_ref().is_some_and(|t| {
        !token.is_empty() && bool::from(t.expose().as_bytes().ct_eq(token.as_bytes()))
    });
    if !scraper {
        let auth = <AuthUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(
            &mut parts, &state,
        )
        .await?;
        auth.require(Permission::Audit)?;
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}

/// The 404 for unknown routes.
pub async fn fallback(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let path = uri.path();
    let api = path.starts_with("/api/") || path.starts_with("/ws/");
    if method == axum::http::Method::GET && !api {
        // The embedded web console and viewer (crate reach-web).
        if let Some(response) = reach_web::response_for(path) {
            return response;
        }
    }
    Error::NotFound("route").into_response()
}
