//! The rate-limit layer: put a [`RateLimiter`] in front of a route.
//!
//! ```ignore
//! let login = limit::per_ip(OpenApiRouter::new().routes(routes!(login)), state, "login",
//!     |s| &s.limits.login);
//! ```
//! The process's own [`RateLimiter`] is a fast first gate; the decision is the counter every
//! instance shares through the database ([`crate::counters::hit`], kind = the layer's name),
//! so N instances admit no more than one would. Refusals are 429 with `Retry-After` and are
//! counted in `/metrics`; when the shared counter cannot be updated the request is refused
//! (500).

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse as _, Response};
use utoipa_axum::router::OpenApiRouter;

use crate::counters::{self, Refused};
use crate::http::error::Error;
use crate::http::extract::ClientIp;
use crate::ratelimit::RateLimiter;
use crate::state::AppState;

/// Picks a limiter out of the state.
pub type Pick = fn(&AppState) -> &RateLimiter;

/// State of one rate-limit layer.
#[derive(Clone)]
pub struct Limit {
    state: AppState,
    name: &'static str,
    pick: Pick,
}

/// Applies a per-client-IP limit (`pick(state)`) to every route of `router`; every request
/// counts, before its body is read, so aborted or malformed attempts are counted too.
pub fn per_ip(
    router: OpenApiRouter<AppState>,
    state: AppState,
    name: &'static str,
    pick: Pick,
) -> OpenApiRouter<AppState> {
    router.route_layer(from_fn_with_state(Limit { state, name, pick }, check))
}

async fn check(State(limit): State<Limit>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let ip = match <ClientIp as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut parts,
        &limit.state,
    )
    .await
    {
        Ok(ClientIp(ip)) => ip,
        Err(err) => return err.into_response(),
    };
    let limiter = (limit.pick)(&limit.state);
    let refused = match limiter.check(ip, Instant::now()) {
        Err(retry) => Some(retry),
        Ok(()) => {
            let window = counters::Window {
                limit: u32::try_from(limiter.limit()).unwrap_or(u32::MAX),
                window: limiter.window(),
            };
            let subject = counters::ip_subject(ip);
            match counters::hit(&limit.state.db, limit.name, &subject, window).await {
                Ok(()) => None,
                Err(Refused::Held(retry)) => Some(retry),
                Err(Refused::Database(err)) => return Error::from(err).into_response(),
            }
        }
    };
    if let Some(retry) = refused {
        limit.state.metrics.rate_limited(limit.name);
        tracing::info!(limiter = limit.name, %ip, "rate limited");
        return Error::RateLimited {
            retry_after_secs: retry.as_header_secs(),
        }
        .into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}
