//! Request extractors: the authenticated user, the client IP, and a JSON body whose
//! rejections become our [`Error`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::permissions::{Permission, PermissionSet};
use crate::auth::token::Claims;
use crate::auth::tokens;
use crate::http::error::{Error, Result};
use crate::state::AppState;
use crate::users;

/// A JSON request body; malformed, mistyped or oversized bodies and a wrong content type
/// become 4xx [`Error`]s.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

impl<T: Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// The client's IP address (see [`crate::client_ip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no peer address on the request")))?;
        Ok(Self(crate::client_ip::resolve(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

/// The `Bearer` token of a request, if any (tokens are never read from URLs or cookies).
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

const MISSING: Error = Error::Unauthorized {
    code: "unauthenticated",
    message: "send a login token as `Authorization: Bearer <token>`",
};

/// A logged-in user of the REST API, from a valid, unrevoked login token of an enabled user.
/// Role and permissions are read fresh on every request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthUser {
    /// Tenant id.
    pub tenant_id: String,
    /// User id.
    pub user_id: String,
    /// Login name.
    pub username: String,
    /// Role name.
    pub role: String,
    /// What the user may do.
    #[serde(skip)]
    pub permissions: PermissionSet,
    /// The login token's claims (its `jti` mints viewer tokens and is revoked at logout).
    #[serde(skip)]
    pub claims: Claims,
}

impl AuthUser {
    /// Fails with 403 unless the user has `permission`.
    ///
    /// # Errors
    /// [`Error::Forbidden`].
    pub fn require(&self, permission: Permission) -> Result<()> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(Error::Forbidden(permission))
        }
    }

    /// Whether the user has `permission`.
    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// Resolves a login token to a user.
    ///
    /// # Errors
    /// 401 for a missing, invalid, expired or revoked token or a disabled/deleted user.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Self> {
        let claims = tokens::verify_login(state, token).await?;
        let user = users::get(&state.db, &claims.tenant_id, &claims.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(Error::Unauthorized {
                code: "token_revoked",
                message: "the account no longer exists or is disabled",
            })?;
        let role = user.role.as_str().to_owned();
        let permissions = users::role_permissions(&state.db, &role).await?;
        Ok(Self {
            tenant_id: claims.tenant_id.clone(),
            user_id: user.id,
            username: user.username,
            role,
            permissions,
            claims,
        })
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = bearer_token(parts).ok_or(MISSING)?;
        Self::from_token(state, token).await
    }
}
