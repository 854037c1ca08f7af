//! The REST API: one module per feature, each exposing `router()`, merged here.
//!
//! Handlers are annotated with `#[utoipa::path]` and registered with `routes!`, so the
//! OpenAPI document served at `/openapi.json` is generated from exactly the routes that exist.

pub mod access;
pub mod agent_keys;
pub mod audit;
pub mod auth;
pub mod error;
pub mod extract;
pub mod limit;
pub mod machines;
pub mod sessions;
pub mod support_codes;
pub mod system;
pub mod tenants;
pub mod uniform;
pub mod users;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub use error::{Error, Result};
pub use extract::{AuthUser, ClientIp, Json};

#[derive(OpenApi)]
#[openapi(
    info(title = "Reach API", description = "REST API of the Reach server. Authenticate with \
        `Authorization: Bearer <token>` from `POST /api/auth/login`."),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every feature router, merged, with its OpenAPI description.
pub fn api(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(system::router())
        .merge(auth::router(state))
        .merge(users::router())
        .merge(tenants::router())
        .merge(audit::router())
        .merge(machines::router())
        .merge(agent_keys::router())
        .merge(support_codes::router(state))
        .merge(sessions::router())
        .merge(crate::ws::router())
}

/// The OpenAPI document of [`api`].
pub fn openapi(state: &AppState) -> utoipa::openapi::OpenApi {
    api(state).split_for_parts().1
}

/// The complete application: routes, `/openapi.json`, JSON 404/405, body cap, metrics,
/// request logging, and [`uniform`] responses (nosniff; every error JSON).
pub fn router(state: AppState) -> Router {
    let (router, doc) = api(&state).split_for_parts();
    let doc = Arc::new(doc);
    router
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(doc.as_ref().clone()) }),
        )
        .fallback(system::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), observe))
        .layer(axum::middleware::from_fn(uniform::uniform))
        .with_state(state)
}

async fn method_not_allowed() -> Response {
    let body = error::ErrorBody {
        error: "method_not_allowed".into(),
        message: "this route does not accept that method".into(),
    };
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// Counts every response by route template and status, and logs it without query strings,
/// headers or bodies (so no token or password reaches the log).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.metrics.http_request(method.as_str(), &route, status);
    tracing::debug!(%method, route, status, elapsed_us = started.elapsed().as_micros(), "request");
    response
}
