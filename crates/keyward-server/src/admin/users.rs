//! `/v1/users`: human and service users. Disabling a user stops all its tokens at once;
//! re-enabling restores them. User-scoped callers see only their own user.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::{CreateUser, Page, UserPatch};
use keyward_core::model::{RoleKind, User, UserKind};
use keyward_core::{validate, DomainError, RoleId, UserId, WorkspaceId};
use keyward_store::{Cursor, UserFilter};
use serde::Deserialize;

use super::{catalogue, ensure_no_escalation, into_page, page_request, referenced_role};
use crate::error::ApiError;
use crate::extract::{path_id, ApiJson, ApiQuery, Caller};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/users", post(create).get(list))
        .route("/v1/users/{id}", get(show).patch(update).delete(remove))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    caller.require("keyward.users:write")?;
    caller.require_workspace_scope()?;
    let ws = caller.workspace_id();
    let now = state.now();
    let user = User {
        id: UserId::random(&mut rand_core::OsRng),
        workspace_id: ws,
        kind: req.kind,
        name: validate::name(&req.name, "name")?,
        email: req
            .email
            .as_deref()
            .map(|e| validate::email(e, "email"))
            .transpose()?,
        role_id: req.role_id,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    check_role(&state, &caller, ws, user.kind, user.role_id).await?;
    let audit = caller.audit(&state, "user.created", "user", user.id.to_string());
    state.store.create_user(&user, &audit.after(&user)).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// A user's role must exist, match the user's kind (human ↔ human, service ↔ api), and grant
/// nothing the caller lacks.
async fn check_role(
    state: &AppState,
    caller: &Caller,
    ws: WorkspaceId,
    kind: UserKind,
    role_id: Option<RoleId>,
) -> Result<(), ApiError> {
    let Some(id) = role_id else { return Ok(()) };
    let role = referenced_role(state, ws, id, "role_id").await?;
    let expected = match kind {
        UserKind::Human => RoleKind::Human,
        UserKind::Service => RoleKind::Api,
    };
    if role.kind != expected {
        let message = match kind {
            UserKind::Service => format!(
                "'{}' is a human role; a service user needs an api role",
                role.name
            ),
            UserKind::Human => format!(
                "'{}' is an api role; a human user needs a human role",
                role.name
            ),
        };
        return Err(DomainError::field("ROLE_KIND_MISMATCH", "role_id", message).into());
    }
    let cat = catalogue(state, ws).await?;
    ensure_no_escalation(caller, &role.permissions, None, &cat)
}

/// Managing a user (renaming, disabling, re-enabling, changing its role, deleting it) needs
/// everything its current role grants: a weaker admin cannot switch a stronger one on or off.
async fn ensure_holds_role(state: &AppState, caller: &Caller, user: &User) -> Result<(), ApiError> {
    let Some(role_id) = user.role_id else {
        return Ok(());
    };
    let Some(role) = state.store.role(user.workspace_id, role_id).await? else {
        return Ok(());
    };
    let cat = catalogue(state, user.workspace_id).await?;
    ensure_no_escalation(caller, &role.permissions, None, &cat)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    kind: Option<UserKind>,
    disabled: Option<bool>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<User>>, ApiError> {
    caller.require("keyward.users:read")?;
    let (page, size) = page_request(q.limit, q.cursor.as_deref())?;
    let filter = UserFilter {
        kind: q.kind,
        disabled: q.disabled,
        id: caller.only_owner(),
    };
    let items = state
        .store
        .list_users(caller.workspace_id(), &filter, &page)
        .await?;
    Ok(Json(into_page(
        items,
        size,
        |u| Cursor {
            created_at: u.created_at,
            id: u.id.uuid(),
        },
        |u| u,
    )))
}

pub(crate) async fn visible(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<User, ApiError> {
    let id: UserId = path_id(raw_id)?;
    let user = state.store.user(caller.workspace_id(), id).await?;
    user.filter(|u| caller.only_owner().is_none_or(|only| only == u.id))
        .ok_or(ApiError::NotFound("user"))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    caller.require("keyward.users:read")?;
    Ok(Json(visible(&state, &caller, &id).await?))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<User>, ApiError> {
    caller.require("keyward.users:write")?;
    caller.require_workspace_scope()?;
    let mut user = visible(&state, &caller, &id).await?;
    let audit = caller
        .audit(&state, "user.updated", "user", user.id.to_string())
        .before(&user);
    ensure_holds_role(&state, &caller, &user).await?;
    if let Some(name) = &patch.name {
        user.name = validate::name(name, "name")?;
    }
    if let Some(email) = &patch.email {
        user.email = email
            .as_deref()
            .map(|e| validate::email(e, "email"))
            .transpose()?;
    }
    if let Some(role_id) = patch.role_id {
        if user.id == caller.owner_id() && role_id != user.role_id {
            return Err(ApiError::conflict(
                "SELF_LOCKOUT",
                "a token cannot change its own owner's role; use another admin's token",
            ));
        }
        check_role(&state, &caller, user.workspace_id, user.kind, role_id).await?;
        user.role_id = role_id;
    }
    if let Some(disabled) = patch.disabled {
        if disabled && user.id == caller.owner_id() {
            return Err(ApiError::conflict(
                "SELF_LOCKOUT",
                "a token cannot disable its own owner; use another admin's token",
            ));
        }
        user.disabled = disabled;
    }
    user.updated_at = state.now();
    state.store.update_user(&user, &audit.after(&user)).await?;
    state.cache.invalidate_user(user.id);
    Ok(Json(user))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require("keyward.users:write")?;
    caller.require_workspace_scope()?;
    let user = visible(&state, &caller, &id).await?;
    ensure_holds_role(&state, &caller, &user).await?;
    if user.id == caller.owner_id() {
        return Err(ApiError::conflict(
            "SELF_LOCKOUT",
            "a token cannot delete its own owner",
        ));
    }
    let audit = caller
        .audit(&state, "user.deleted", "user", user.id.to_string())
        .before(&user);
    state
        .store
        .delete_user(user.workspace_id, user.id, &audit)
        .await?;
    state.cache.invalidate_user(user.id);
    Ok(StatusCode::NO_CONTENT)
}
