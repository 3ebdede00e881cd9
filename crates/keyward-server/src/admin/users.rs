//! `/v1/users`: human and service users. Disabling a user stops all its tokens at once;
//! re-enabling restores them. User-scoped callers see only their own user.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::collections::hash_map::{Entry, HashMap};

use keyward_core::api::{CreateUser, Page, UserPatch};
use keyward_core::model::{RoleKind, ShownStatus, User, UserKind};
use keyward_core::{validate, DomainError, Role, RoleId, UserId, WorkspaceId};
use keyward_store::{Cursor, PageRequest, TokenFilter, UserFilter};
use serde::Deserialize;

use super::concurrency::retrying;
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
/// everything the user holds: every permission its role grants and every permission each of
/// its live tokens holds (role ∩ narrowing, the token's own role or the user's). Otherwise a
/// weaker admin could switch a stronger user, and with it all its tokens, on or off.
async fn ensure_holds_user(state: &AppState, caller: &Caller, user: &User) -> Result<(), ApiError> {
    let ws = user.workspace_id;
    let cat = catalogue(state, ws).await?;
    let mut roles: HashMap<RoleId, Option<Role>> = HashMap::new();
    if let Some(role) = role_of(state, &mut roles, ws, user.role_id).await? {
        ensure_no_escalation(caller, &role.permissions, None, &cat)?;
    }
    let filter = TokenFilter {
        owner_id: Some(user.id),
        role_id: None,
        status: None,
        now: state.now(),
    };
    let mut page = PageRequest {
        limit: 200,
        after: None,
    };
    loop {
        let tokens = state.store.list_tokens(ws, &filter, &page).await?;
        for token in &tokens {
            // Revoked and expired tokens hold nothing, and re-enabling does not revive them.
            if matches!(
                token.shown_status(filter.now),
                ShownStatus::Revoked | ShownStatus::Expired
            ) {
                continue;
            }
            let role_id = token.role_id.or(user.role_id);
            let Some(role) = role_of(state, &mut roles, ws, role_id).await? else {
                continue;
            };
            // A token never acts with a human role: such a token holds nothing.
            if role.kind != RoleKind::Api {
                continue;
            }
            ensure_no_escalation(
                caller,
                &role.permissions,
                token.permissions.as_deref(),
                &cat,
            )?;
        }
        match tokens.last() {
            Some(last) if tokens.len() == page.limit as usize => {
                page.after = Some(Cursor {
                    created_at: last.created_at,
                    id: last.id.uuid(),
                });
            }
            _ => return Ok(()),
        }
    }
}

/// The role `id` names, looked up once per request.
async fn role_of<'a>(
    state: &AppState,
    roles: &'a mut HashMap<RoleId, Option<Role>>,
    ws: WorkspaceId,
    id: Option<RoleId>,
) -> Result<Option<&'a Role>, ApiError> {
    let Some(id) = id else { return Ok(None) };
    let role = match roles.entry(id) {
        Entry::Occupied(known) => known.into_mut(),
        Entry::Vacant(slot) => slot.insert(state.store.role(ws, id).await?),
    };
    Ok(role.as_ref())
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
    let user = retrying(|| update_once(&state, &caller, &id, &patch)).await?;
    state.cache.invalidate_user(user.id);
    Ok(Json(user))
}

/// One read-check-write of a PATCH, on condition that the user did not change meanwhile.
async fn update_once(
    state: &AppState,
    caller: &Caller,
    id: &str,
    patch: &UserPatch,
) -> Result<User, ApiError> {
    let user_id: UserId = path_id(id)?;
    let mut current = state
        .store
        .user_versioned(caller.workspace_id(), user_id)
        .await?
        .filter(|u| caller.only_owner().is_none_or(|only| only == u.value.id))
        .ok_or(ApiError::NotFound("user"))?;
    let user = &mut current.value;
    let audit = caller
        .audit(state, "user.updated", "user", user.id.to_string())
        .before(user);
    ensure_holds_user(state, caller, user).await?;
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
        check_role(state, caller, user.workspace_id, user.kind, role_id).await?;
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
    state
        .store
        .update_user(&current, &audit.after(&current.value))
        .await?;
    Ok(current.value)
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require("keyward.users:write")?;
    caller.require_workspace_scope()?;
    let user = visible(&state, &caller, &id).await?;
    ensure_holds_user(&state, &caller, &user).await?;
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
