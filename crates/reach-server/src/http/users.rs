//! `GET/POST /api/users`, `GET/PATCH/DELETE /api/users/{id}` (permission `manage_users`).
//! Ids of other tenants are 404, exactly like ids that do not exist.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::password;
use crate::auth::permissions::{Permission, Role};
use crate::auth::tokens;
use crate::db;
use crate::http::error::{Error, ErrorBody, Result};
use crate::http::extract::{AuthUser, Json};
use crate::state::{AppState, AuthEvent};
use crate::users::{self, User};

/// Routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
}

/// New user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name (1–64 of `A–Z a–z 0–9 . _ @ -`).
    pub username: String,
    /// Initial password (at least 8 characters).
    pub password: String,
    /// Role.
    pub role: Role,
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New role.
    pub role: Option<Role>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// New password (an admin reset; revokes the user's tokens).
    pub password: Option<String>,
}

/// Users of the caller's tenant.
#[utoipa::path(get, path = "/api/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = [User]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list_users(State(state): State<AppState>, auth: AuthUser) -> Result<Json<Vec<User>>> {
    auth.require(Permission::ManageUsers)?;
    Ok(Json(users::list(&state.db, &auth.tenant_id).await?))
}

/// Creates a user in the caller's tenant.
#[utoipa::path(post, path = "/api/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUser,
    responses((status = 201, body = User), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(req): Json<CreateUser>,
) -> Result<(StatusCode, Json<User>)> {
    auth.require(Permission::ManageUsers)?;
    refuse_owner_role(Some(req.role))?;
    users::check_username(&req.username).map_err(|m| Error::bad_request("invalid_username", m))?;
    password::check_policy(&req.password).map_err(|m| Error::bad_request("weak_password", m))?;
    let hash = state
        .passwords
        .hash(&req.password)
        .await
        .map_err(anyhow::Error::from)?;
    let user = match users::create(&state.db, &auth.tenant_id, &req.username, &hash, req.role).await
    {
        Ok(user) => user,
        Err(err) if db::is_unique_violation(&err) => {
            return Err(Error::Conflict {
                code: "username_taken",
                message: format!("a user named {:?} already exists", req.username),
            });
        }
        Err(err) => return Err(err.into()),
    };
    let details = json!({"user_id": user.id, "username": user.username, "role": user.role});
    state
        .audit(&auth.tenant_id, &auth.username, "user_created", details)
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// One user of the caller's tenant.
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = User), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<User>> {
    auth.require(Permission::ManageUsers)?;
    let user = users::get(&state.db, &auth.tenant_id, &id).await?;
    user.map(Json).ok_or(Error::NotFound("user"))
}

/// The `owner` role (the provider) is given by the bootstrap only: never granted here.
fn refuse_owner_role(role: Option<Role>) -> Result<()> {
    if role == Some(Role::Owner) {
        return Err(Error::bad_request(
            "owner_not_assignable",
            "the owner role belongs to the provider's first account and cannot be given",
        ));
    }
    Ok(())
}

/// The provider's owner account is not changed or deleted through the users API (its own
/// password changes through `POST /api/auth/change-password`).
fn protect_owner(target: &User) -> Result<()> {
    if target.role == Role::Owner {
        return Err(Error::Conflict {
            code: "owner_protected",
            message: "the provider's owner account cannot be changed or deleted here".into(),
        });
    }
    Ok(())
}

async fn ensure_not_last_admin(state: &AppState, target: &User, tenant_id: &str) -> Result<()> {
    if target.role == Role::Admin
        && !target.disabled
        && users::count_active_admins(&state.db, tenant_id).await? <= 1
    {
        return Err(Error::Conflict {
            code: "last_admin",
            message: "the last enabled admin cannot be removed, disabled or demoted".into(),
        });
    }
    Ok(())
}

/// Changes a user's role, disabled flag or password. Tokens of a disabled user or one whose
/// password was reset are revoked.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<UpdateUser>,
) -> Result<Json<User>> {
    auth.require(Permission::ManageUsers)?;
    let target = users::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    refuse_owner_role(req.role)?;
    protect_owner(&target)?;
    let demoted = req.role.is_some_and(|r| r != Role::Admin) || req.disabled == Some(true);
    if demoted {
        ensure_not_last_admin(&state, &target, &auth.tenant_id).await?;
    }
    let hash = match &req.password {
        Some(new) => {
            password::check_policy(new).map_err(|m| Error::bad_request("weak_password", m))?;
            Some(
                state
                    .passwords
                    .hash(new)
                    .await
                    .map_err(anyhow::Error::from)?,
            )
        }
        None => None,
    };
    let user = users::update(
        &state.db,
        &auth.tenant_id,
        &id,
        req.role,
        req.disabled,
        hash.as_deref(),
    )
    .await?
    .ok_or(Error::NotFound("user"))?;
    if req.disabled == Some(true) || hash.is_some() {
        tokens::revoke_user(&state, &auth.tenant_id, &id, None).await?;
    }
    state.publish(AuthEvent::UserChanged {
        tenant_id: auth.tenant_id.clone(),
        user_id: id.clone(),
    });
    let details = json!({"user_id": id, "role": req.role, "disabled": req.disabled,
        "password_reset": hash.is_some()});
    state
        .audit(&auth.tenant_id, &auth.username, "user_updated", details)
        .await?;
    Ok(Json(user))
}

/// Deletes a user of the caller's tenant and revokes their tokens.
#[utoipa::path(delete, path = "/api/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_user(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    auth.require(Permission::ManageUsers)?;
    let target = users::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    if target.id == auth.user_id {
        return Err(Error::Conflict {
            code: "cannot_delete_self",
            message: "you cannot delete your own account".into(),
        });
    }
    protect_owner(&target)?;
    ensure_not_last_admin(&state, &target, &auth.tenant_id).await?;
    tokens::revoke_user(&state, &auth.tenant_id, &id, None).await?;
    if !users::delete(&state.db, &auth.tenant_id, &id).await? {
        return Err(Error::NotFound("user"));
    }
    state.publish(AuthEvent::UserChanged {
        tenant_id: auth.tenant_id.clone(),
        user_id: id.clone(),
    });
    let details = json!({"user_id": id, "username": target.username});
    state
        .audit(&auth.tenant_id, &auth.username, "user_deleted", details)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
