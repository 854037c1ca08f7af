//! `POST /api/auth/login`, `POST /api/auth/logout`, `POST /api/auth/change-password`,
//! `GET /api/me`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::password;
use crate::auth::permissions::Permission;
use crate::auth::tokens;
use crate::counters::{self, Refused};
use crate::http::error::{Error, ErrorBody, Result};
use crate::http::extract::{AuthUser, ClientIp, Json};
use crate::http::limit;
use crate::ratelimit::RetryAfter;
use crate::state::AppState;
use crate::{login_backoff, tenants, users};

/// Routes of this module; login and change-password are rate-limited per client IP.
pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let login = limit::per_ip(
        OpenApiRouter::new().routes(routes!(login)),
        state.clone(),
        "login",
        |s| &s.limits.login,
    );
    let change = limit::per_ip(
        OpenApiRouter::new().routes(routes!(change_password)),
        state.clone(),
        "change_password",
        |s| &s.limits.change_password,
    );
    OpenApiRouter::new()
        .merge(login)
        .merge(change)
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Login request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Tenant name; default `default`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A login token.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: i64,
    /// The logged-in user.
    pub user: users::User,
}

const BAD_LOGIN: Error = Error::Unauthorized {
    code: "invalid_credentials",
    message: "unknown user or wrong password",
};

/// Exchanges a user name and password for a login token.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
        (status = 401, description = "Unknown user or wrong password (same answer)", body = ErrorBody),
        (status = 429, description = "Too many attempts from this IP, or for this account from \
            this IP (backoff)", body = ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<Json<LoginResponse>> {
    let tenant_name = req.tenant.as_deref().unwrap_or(tenants::DEFAULT_TENANT);
    let account = login_backoff::account_key(tenant_name, &req.username);
    let backoff = &state.limits.login_backoff;
    let wait = admit_login(&state, &account, ip).await?;
    if !wait.is_zero() {
        state.metrics.rate_limited("login_account_slowed");
        tokio::time::sleep(wait).await;
    }
    let tenant = tenants::find_by_name(&state.db, tenant_name).await?;
    let found = match &tenant {
        Some(t) if users::check_username(&req.username).is_ok() => {
            users::find_for_login(&state.db, &t.id, &req.username).await?
        }
        _ => None,
    };
    let stored = found.as_ref().map(|(_, hash)| hash.as_str());
    let password_ok = req.password.len() <= password::MAX_PASSWORD_BYTES
        && state.passwords.verify(&req.password, stored).await;
    let user = found
        .map(|(user, _)| user)
        .filter(|u| password_ok && !u.disabled);
    let (Some(tenant), Some(user)) = (tenant.clone(), user) else {
        backoff.record_failure(&account, Instant::now());
        count_failure(&state, &account).await?;
        state.metrics.login("failed");
        if let Some(t) = &tenant {
            let name: String = req.username.chars().take(64).collect();
            let details = json!({"username": name, "ip": ip.to_string()});
            state
                .audit(&t.id, "anonymous", "login_failed", details)
                .await?;
        }
        tracing::info!(%ip, "login failed");
        return Err(BAD_LOGIN);
    };
    if tenant.suspended() {
        let details = json!({"username": user.username, "ip": ip.to_string()});
        state
            .audit(&tenant.id, "anonymous", "login_refused_suspended", details)
            .await?;
        return Err(Error::Unauthorized {
            code: "tenant_suspended",
            message: "this organisation is suspended; ask your provider",
        });
    }
    backoff.record_success(&account, ip);
    let pair = counters::pair_subject(&account, ip);
    counters::clear(&state.db, counters::KIND_LOGIN_PAIR, &pair).await?;
    let issued = tokens::issue_login(&state, &tenant.id, &user.id).await?;
    state.metrics.login("ok");
    let details = json!({"user_id": user.id, "ip": ip.to_string(), "jti": issued.claims.jti});
    state
        .audit(&tenant.id, &user.username, "login_ok", details)
        .await?;
    tracing::info!(%ip, user = %user.username, tenant = %tenant.name, "login ok");
    Ok(Json(LoginResponse {
        token: issued.token,
        expires_at: issued.claims.exp,
        user,
    }))
}

/// Admits one login attempt for `account` from `ip`, counting it before the password is
/// checked: the process's own backoff is a fast first gate, the counters every instance
/// shares decide (pair backoff; the account's wrong passwords for the slowdown). Returns how
/// long to wait before checking the password (the account slowdown).
async fn admit_login(state: &AppState, account: &str, ip: IpAddr) -> Result<Duration> {
    let held = |retry: RetryAfter| {
        state.metrics.rate_limited("login_account_ip");
        Error::RateLimited {
            retry_after_secs: retry.as_header_secs(),
        }
    };
    let failures = counters::current(&state.db, counters::KIND_LOGIN_ACCOUNT, account).await?;
    let failures = usize::try_from(failures).unwrap_or(usize::MAX);
    let admitted = state
        .limits
        .login_backoff
        .admit_seen(account, ip, failures, Instant::now())
        .map_err(held)?;
    let pair = counters::pair_subject(account, ip);
    let shared = counters::LOGIN_PAIR_BACKOFF;
    match counters::reserve(&state.db, counters::KIND_LOGIN_PAIR, &pair, &shared).await {
        Ok(_) => Ok(admitted.wait),
        Err(Refused::Held(retry)) => Err(held(retry)),
        Err(Refused::Database(err)) => Err(err.into()),
    }
}

/// Counts a wrong password for `account` in the counter every instance shares.
async fn count_failure(state: &AppState, account: &str) -> Result<()> {
    let window = counters::ACCOUNT_FAILURES;
    match counters::hit(&state.db, counters::KIND_LOGIN_ACCOUNT, account, window).await {
        Ok(()) | Err(Refused::Held(_)) => Ok(()),
        Err(Refused::Database(err)) => Err(err.into()),
    }
}

/// Revokes the presented login token and every viewer token it minted.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Logged out"), (status = 401, body = ErrorBody)))]
async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode> {
    tokens::revoke(&state, &auth.claims.jti).await?;
    let details = json!({"user_id": auth.user_id, "jti": auth.claims.jti});
    state
        .audit(&auth.tenant_id, &auth.username, "logout", details)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Password change request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// Current password.
    pub old_password: String,
    /// New password (at least 8 characters).
    pub new_password: String,
}

/// Changes the caller's password; every other token of the user is revoked.
#[utoipa::path(post, path = "/api/auth/change-password", tag = "auth", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses((status = 204, description = "Changed"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Old password wrong", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(req): Json<ChangePasswordRequest>,
) -> Result<StatusCode> {
    password::check_policy(&req.new_password)
        .map_err(|m| Error::bad_request("weak_password", m))?;
    let stored = users::password_hash(&state.db, &auth.tenant_id, &auth.user_id).await?;
    let old_ok = req.old_password.len() <= password::MAX_PASSWORD_BYTES
        && state
            .passwords
            .verify(&req.old_password, stored.as_deref())
            .await;
    if !old_ok {
        return Err(Error::Refused {
            code: "wrong_password",
            message: "the old password is wrong",
        });
    }
    let hash = state
        .passwords
        .hash(&req.new_password)
        .await
        .map_err(anyhow::Error::from)?;
    users::update(
        &state.db,
        &auth.tenant_id,
        &auth.user_id,
        None,
        None,
        Some(&hash),
    )
    .await?;
    tokens::revoke_user(
        &state,
        &auth.tenant_id,
        &auth.user_id,
        Some(&auth.claims.jti),
    )
    .await?;
    let details = json!({"user_id": auth.user_id});
    state
        .audit(&auth.tenant_id, &auth.username, "password_changed", details)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// User id.
    pub user_id: String,
    /// Login name.
    pub username: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Role name.
    pub role: String,
    /// Permissions of the role.
    pub permissions: Vec<Permission>,
    /// Token expiry, seconds since the Unix epoch.
    pub token_expires_at: i64,
}

/// Who the token belongs to and what they may do.
#[utoipa::path(get, path = "/api/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(auth: AuthUser) -> Json<Me> {
    Json(Me {
        permissions: auth.permissions.iter().collect(),
        token_expires_at: auth.claims.exp,
        user_id: auth.user_id,
        username: auth.username,
        tenant_id: auth.tenant_id,
        role: auth.role,
    })
}
