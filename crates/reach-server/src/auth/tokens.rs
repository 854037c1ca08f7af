//! Issuing, verifying and revoking tokens against the `auth_tokens` table.
//!
//! Every issued token has a row; verification requires a valid signature, an unexpired
//! `exp`, the expected purpose, and a row that is not revoked (and, for a viewer token, a
//! parent login token that is not revoked either). Revocations are also broadcast as
//! [`AuthEvent`]s so open WebSockets can close themselves.

use crate::auth::token::{Claims, FormatError, Purpose, TokenError, ViewerAccess};
use crate::db::{self, Db};
use crate::state::{AppState, AuthEvent};
use reach_proto::access::ViewerGrant;

/// A freshly issued token and its claims.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The encoded token (give it to the client once; never log it).
    pub token: String,
    /// Its claims.
    pub claims: Claims,
}

/// Issues and records a token.
///
/// # Errors
/// When the token row cannot be written.
pub async fn issue(
    state: &AppState,
    purpose: Purpose,
    tenant_id: &str,
    user_id: &str,
    ttl_secs: i64,
    parent_jti: Option<&str>,
) -> Result<Issued, sqlx::Error> {
    let now = db::now_ms() / 1000;
    let claims = Claims {
        purpose,
        tenant_id: tenant_id.to_owned(),
        user_id: user_id.to_owned(),
        iat: now,
        exp: now + ttl_secs,
        jti: db::new_id("tok"),
        parent_jti: parent_jti.map(str::to_owned),
    };
    sqlx::query(
        "INSERT INTO auth_tokens (jti, tenant_id, user_id, purpose, parent_jti, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&claims.jti)
    .bind(&claims.tenant_id)
    .bind(&claims.user_id)
    .bind(claims.purpose.kind())
    .bind(claims.parent_jti.clone())
    .bind(claims.exp * 1000)
    .execute(&state.db)
    .await?;
    Ok(Issued {
        token: state.tokens.sign(&claims),
        claims,
    })
}

/// Issues a login token for a user.
///
/// # Errors
/// When the token row cannot be written.
pub async fn issue_login(
    state: &AppState,
    tenant_id: &str,
    user_id: &str,
) -> Result<Issued, sqlx::Error> {
    let ttl = i64::try_from(state.config.login_token_ttl_secs).unwrap_or(i64::MAX / 2000);
    issue(state, Purpose::Login, tenant_id, user_id, ttl, None).await
}

/// Issues a viewer token for one session, minted by (and revoked with) a login token.
///
/// # Errors
/// When the token row cannot be written.
pub async fn issue_viewer(
    state: &AppState,
    login: &Claims,
    session_id: &str,
    grant: &ViewerGrant,
) -> Result<Issued, sqlx::Error> {
    let ttl = i64::try_from(state.config.viewer_token_ttl_secs).unwrap_or(300);
    let purpose = Purpose::Viewer {
        session_id: session_id.to_owned(),
        access: grant.access,
        usb: grant.usb.is_ok(),
    };
    issue(
        state,
        purpose,
        &login.tenant_id,
        &login.user_id,
        ttl,
        Some(&login.jti),
    )
    .await
}

/// Verifies a token that must have been issued for [`Purpose::Login`].
///
/// # Errors
/// See [`TokenError`].
pub async fn verify_login(state: &AppState, token: &str) -> Result<Claims, TokenError> {
    let claims = state.tokens.decode(token, db::now_ms() / 1000)?;
    if claims.purpose != Purpose::Login {
        return Err(FormatError::WrongPurpose.into());
    }
    ensure_not_revoked(&state.db, &claims).await?;
    Ok(claims)
}

/// A verified viewer token.
#[derive(Debug)]
pub struct ViewerTicket {
    /// Its claims.
    pub claims: Claims,
    /// The session it opens.
    pub session_id: String,
    /// Access signed in.
    pub access: ViewerAccess,
    /// Whether USB was signed in.
    pub usb: bool,
}

/// Verifies a viewer token.
///
/// # Errors
/// See [`TokenError`].
pub async fn verify_viewer(state: &AppState, token: &str) -> Result<ViewerTicket, TokenError> {
    let claims = state.tokens.decode(token, db::now_ms() / 1000)?;
    let Purpose::Viewer {
        session_id,
        access,
        usb,
    } = claims.purpose.clone()
    else {
        return Err(FormatError::WrongPurpose.into());
    };
    if claims.parent_jti.is_none() {
        return Err(FormatError::Malformed.into());
    }
    ensure_not_revoked(&state.db, &claims).await?;
    Ok(ViewerTicket {
        claims,
        session_id,
        access,
        usb,
    })
}

/// Fails unless the token (and its parent, if any) is recorded, unrevoked, and belongs to the
/// tenant and user its claims name.
async fn ensure_not_revoked(db: &Db, claims: &Claims) -> Result<(), TokenError> {
    let parent = claims
        .parent_jti
        .clone()
        .unwrap_or_else(|| claims.jti.clone());
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM auth_tokens \
         WHERE (jti = $1 OR jti = $2) AND tenant_id = $3 AND user_id = $4 \
         AND revoked_at IS NULL",
    )
    .bind(&claims.jti)
    .bind(&parent)
    .bind(&claims.tenant_id)
    .bind(&claims.user_id)
    .fetch_one(db)
    .await?;
    let expected = if parent == claims.jti { 1 } else { 2 };
    if live == expected {
        Ok(())
    } else {
        Err(TokenError::Revoked)
    }
}

/// Revokes one token and every token it minted.
///
/// # Errors
/// On database failure.
pub async fn revoke(state: &AppState, jti: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auth_tokens SET revoked_at = $1 \
         WHERE (jti = $2 OR parent_jti = $2) AND revoked_at IS NULL",
    )
    .bind(db::now_ms())
    .bind(jti)
    .execute(&state.db)
    .await?;
    state.publish(AuthEvent::TokenRevoked {
        jti: jti.to_owned(),
    });
    Ok(())
}

/// Revokes every token of a user except `keep_jti` (and what `keep_jti` minted).
///
/// # Errors
/// On database failure.
pub async fn revoke_user(
    state: &AppState,
    tenant_id: &str,
    user_id: &str,
    keep_jti: Option<&str>,
) -> Result<(), sqlx::Error> {
    let keep = keep_jti.unwrap_or("");
    sqlx::query(
        "UPDATE auth_tokens SET revoked_at = $1 \
         WHERE tenant_id = $2 AND user_id = $3 AND revoked_at IS NULL \
         AND jti <> $4 AND (parent_jti IS NULL OR parent_jti <> $4)",
    )
    .bind(db::now_ms())
    .bind(tenant_id)
    .bind(user_id)
    .bind(keep)
    .execute(&state.db)
    .await?;
    state.publish(AuthEvent::UserTokensRevoked {
        tenant_id: tenant_id.to_owned(),
        user_id: user_id.to_owned(),
        keep_jti: keep_jti.map(str::to_owned),
    });
    Ok(())
}

/// Revokes every token of a tenant (it was suspended); its sockets close on the event.
///
/// # Errors
/// On database failure.
pub async fn revoke_tenant(state: &AppState, tenant_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE auth_tokens SET revoked_at = $1 WHERE tenant_id = $2 AND revoked_at IS NULL",
    )
    .bind(db::now_ms())
    .bind(tenant_id)
    .execute(&state.db)
    .await?;
    state.publish(AuthEvent::TenantSuspended {
        tenant_id: tenant_id.to_owned(),
    });
    Ok(())
}

/// Deletes rows of tokens that expired more than a day ago (they fail on `exp` anyway).
///
/// # Errors
/// On database failure.
pub async fn purge_expired(db: &Db) -> Result<u64, sqlx::Error> {
    let cutoff = db::now_ms() - 86_400_000;
    let done = sqlx::query("DELETE FROM auth_tokens WHERE expires_at < $1")
        .bind(cutoff)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
