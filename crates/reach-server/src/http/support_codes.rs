//! `POST/GET /api/support-codes`, `DELETE /api/support-codes/{id}` (permission
//! `support_codes`) and the public
//! `POST /api/support-codes/validate` (15/min per IP; 10 consecutive failures lock the IP
//! out for 15 minutes, shared with code presentation on the agent socket).
//!
//! Validation previews a code without consuming it; the first agent that presents it
//! consumes it (see `ws::agent`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::rngs::OsRng;
use reach_proto::support_code::SupportCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::permissions::Permission;
use crate::console_events::{ConsoleEvent, ConsoleEventKind};
use crate::db;
use crate::http::access::requested_scope;
use crate::http::error::{Error, ErrorBody, Result};
use crate::http::extract::{AuthUser, ClientIp, Json};
use crate::http::limit;
use crate::relay::redeem::{self, RedeemError, Redemption};
use crate::relay::store::credentials::{self, CodeRow};
use crate::state::AppState;
use reach_proto::access::ViewerAccess;

/// Default lifetime of a code.
pub const DEFAULT_TTL_SECS: u64 = 600;

/// Routes of this module.
pub fn router(state: &AppState) -> OpenApiRouter<AppState> {
    let validate = limit::per_ip(
        OpenApiRouter::new().routes(routes!(validate_code)),
        state.clone(),
        "support_code_validate",
        |s| &s.limits.support_code_validate,
    );
    OpenApiRouter::new()
        .routes(routes!(create_code, list_codes))
        .routes(routes!(revoke_code))
        .merge(validate)
}

/// A new code's options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCode {
    /// Access to ask the end user for (default `control` when permitted, else `view_only`).
    #[schema(value_type = Option<String>, example = "view_only")]
    pub access: Option<ViewerAccess>,
    /// Also ask for USB devices (needs permission `usb`).
    pub usb: Option<bool>,
    /// Lifetime in seconds, 60–86400 (default 600).
    pub ttl_secs: Option<u64>,
}

/// A created code: give it to the end user (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedCode {
    /// Id.
    pub id: String,
    /// `XXX-XXX-XXX`.
    pub code: String,
    /// Expiry (ms since the Unix epoch).
    pub expires_at_ms: i64,
    /// Access asked for.
    #[schema(value_type = String, example = "control")]
    pub access: ViewerAccess,
    /// USB asked for.
    pub usb: bool,
}

/// A code to preview.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateCode {
    /// The code as typed (case and dashes do not matter).
    pub code: String,
}

/// What an end user sees before running the agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct CodePreview {
    /// Technician who created the code.
    pub technician: String,
    /// Expiry (ms since the Unix epoch).
    pub expires_at_ms: i64,
    /// Access asked for.
    pub access: String,
    /// USB asked for.
    pub usb: bool,
}

/// Creates a support code.
#[utoipa::path(post, path = "/api/support-codes", tag = "support codes",
    security(("bearer" = [])), request_body = CreateCode,
    responses((status = 201, body = CreatedCode), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_code(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<CreateCode>,
) -> Result<(StatusCode, Json<CreatedCode>)> {
    auth.require(Permission::SupportCodes)?;
    let scope = requested_scope(&auth, body.access, body.usb)?;
    let (access, usb) = (scope.access, scope.usb);
    let ttl = body.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(60..=86_400).contains(&ttl) {
        return Err(Error::bad_request(
            "invalid_ttl",
            "ttl_secs must be between 60 and 86400",
        ));
    }
    let access_name = access.as_str();
    let row = CodeRow {
        id: db::new_id("spc"),
        tenant_id: auth.tenant_id.clone(),
        created_by: auth.user_id.clone(),
        technician: auth.username.clone(),
        access: access_name.to_owned(),
        usb,
        expires_at_ms: db::now_ms() + i64::try_from(ttl * 1000).unwrap_or(600_000),
    };
    let code = insert_fresh_code(&state, &row).await?;
    let details = json!({"code_id": row.id, "access": access_name, "usb": usb, "ttl_secs": ttl});
    state
        .audit(
            &auth.tenant_id,
            &auth.username,
            "support_code_created",
            details,
        )
        .await?;
    let created = CreatedCode {
        id: row.id,
        code: code.as_string(),
        expires_at_ms: row.expires_at_ms,
        access,
        usb,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Generates codes until one is not already stored (collisions are rare: 44.6 bits).
async fn insert_fresh_code(state: &AppState, row: &CodeRow) -> Result<SupportCode> {
    for _ in 0..5 {
        let code = SupportCode::generate(&mut OsRng).map_err(|e| Error::Internal(e.into()))?;
        match credentials::insert_code(&state.db, &credentials::code_hash(&code), row).await {
            Ok(()) => return Ok(code),
            Err(e) if db::is_unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Internal(anyhow::anyhow!(
        "could not generate a unique support code"
    )))
}

/// Previews a code without consuming it (public; rate-limited and locked out per IP).
#[utoipa::path(post, path = "/api/support-codes/validate", tag = "support codes",
    request_body = ValidateCode,
    responses((status = 200, body = CodePreview), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn validate_code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<ValidateCode>,
) -> Result<Json<CodePreview>> {
    let row = redeem::redeem(&state, ip, &body.code, Redemption::Preview)
        .await
        .map_err(|e| match e {
            RedeemError::LockedOut(r) => Error::RateLimited {
                retry_after_secs: r.as_header_secs(),
            },
            RedeemError::Unknown => Error::NotFound("support code"),
            RedeemError::Database(db) => db.into(),
        })?;
    Ok(Json(CodePreview {
        technician: row.technician,
        expires_at_ms: row.expires_at_ms,
        access: row.access,
        usb: row.usb,
    }))
}

/// A code that can still be redeemed (the code itself is never shown again: only its hash
/// is stored).
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveCode {
    /// Id.
    pub id: String,
    /// Technician who created it.
    pub technician: String,
    /// Access it asks for.
    pub access: String,
    /// USB it asks for.
    pub usb: bool,
    /// Expiry (ms since the Unix epoch).
    pub expires_at_ms: i64,
}

/// Codes of the caller's tenant that can still be redeemed.
#[utoipa::path(get, path = "/api/support-codes", tag = "support codes",
    security(("bearer" = [])),
    responses((status = 200, body = [ActiveCode]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_codes(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<ActiveCode>>> {
    auth.require(Permission::SupportCodes)?;
    let rows = credentials::list_active_codes(&state.db, &auth.tenant_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| ActiveCode {
                id: r.id,
                technician: r.technician,
                access: r.access,
                usb: r.usb,
                expires_at_ms: r.expires_at_ms,
            })
            .collect(),
    ))
}

/// Revokes a code nobody has used yet (404 when it is used, expired or not this tenant's).
#[utoipa::path(delete, path = "/api/support-codes/{id}", tag = "support codes",
    security(("bearer" = [])), params(("id" = String, Path, description = "Code id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn revoke_code(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    auth.require(Permission::SupportCodes)?;
    if !credentials::revoke_code(&state.db, &auth.tenant_id, &id).await? {
        return Err(Error::NotFound("support code"));
    }
    let details = json!({"code_id": id});
    state
        .audit(
            &auth.tenant_id,
            &auth.username,
            "support_code_revoked",
            details,
        )
        .await?;
    state.notify(ConsoleEvent::new(&auth.tenant_id, ConsoleEventKind::CodeRevoked).code(&id));
    Ok(StatusCode::NO_CONTENT)
}
