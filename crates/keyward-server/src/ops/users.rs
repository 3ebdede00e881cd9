//! Users, human and service. Disabling a user stops all its tokens at once; re-enabling
//! restores them. User-scoped callers see only their own user; changing users needs
//! `keyward.users:write`, workspace scope, and everything the user holds.

use std::collections::hash_map::{Entry, HashMap};

use keyward_core::api::{CreateUser, Page, UserPatch};
use keyward_core::model::{RoleKind, ShownStatus, User, UserKind};
use keyward_core::{validate, DomainError, Role, RoleId, Token, UserId, WorkspaceId};
use keyward_store::{Cursor, PageRequest, TokenFilter, UserFilter};
use serde::Deserialize;

use super::concurrency::retrying;
use super::paging::{into_page, page_request};
use super::{catalogue, ensure_no_escalation, referenced_role, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// Creates a user.
pub async fn create(state: &AppState, caller: &Caller, req: &CreateUser) -> Result<User, ApiError> {
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
    check_role(state, caller, ws, user.kind, user.role_id).await?;
    let audit = caller.audit(state, "user.created", "user", user.id.to_string());
    state.store.create_user(&user, &audit.after(&user)).await?;
    Ok(user)
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
pub(crate) async fn ensure_holds_user(
    state: &AppState,
    caller: &Caller,
    user: &User,
) -> Result<(), ApiError> {
    let ws = user.workspace_id;
    let cat = catalogue(state, ws).await?;
    let mut roles: HashMap<RoleId, Option<Role>> = HashMap::new();
    if let Some(role) = role_of(state, &mut roles, ws, user.role_id).await? {
        ensure_no_escalation(caller, &role.permissions, None, &cat)?;
    }
    for token in live_tokens(state, user).await? {
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
    Ok(())
}

/// The user's tokens that are neither revoked nor expired (those hold nothing, and
/// re-enabling the user does not revive them), all pages of them.
async fn live_tokens(state: &AppState, user: &User) -> Result<Vec<Token>, ApiError> {
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
    let mut live = Vec::new();
    loop {
        let tokens = state
            .store
            .list_tokens(user.workspace_id, &filter, &page)
            .await?;
        let full = tokens.len() == page.limit as usize;
        if let Some(last) = tokens.last() {
            page.after = Some(Cursor {
                created_at: last.created_at,
                id: last.id.uuid(),
            });
        }
        live.extend(tokens.into_iter().filter(|t| {
            !matches!(
                t.shown_status(filter.now),
                ShownStatus::Revoked | ShownStatus::Expired
            )
        }));
        if !full {
            return Ok(live);
        }
    }
}

/// Under `require_approval`, refuses moving `user` to a role with another IP allowlist while
/// live tokens of theirs inherit their role: that would change those tokens' allowlist without
/// a second person. (Give the tokens a role of their own first, which waits for approval; then
/// the user's role can change.) Change requests do not target users.
async fn ensure_no_inherited_allowlist_change(
    state: &AppState,
    user: &User,
    to: Option<RoleId>,
) -> Result<(), ApiError> {
    let ws = user.workspace_id;
    if to == user.role_id
        || !state
            .store
            .workspace(ws)
            .await?
            .is_some_and(|w| w.settings.require_approval)
    {
        return Ok(());
    }
    let mut roles: HashMap<RoleId, Option<Role>> = HashMap::new();
    let old = role_of(state, &mut roles, ws, user.role_id)
        .await?
        .map(|r| r.ip_allowlist.clone());
    let new = role_of(state, &mut roles, ws, to)
        .await?
        .map(|r| r.ip_allowlist.clone());
    if old == new {
        return Ok(());
    }
    let inheriting = live_tokens(state, user)
        .await?
        .iter()
        .any(|t| t.role_id.is_none());
    if inheriting {
        return Err(ApiError::conflict(
            "APPROVAL_REQUIRED",
            "this workspace requires approval of allowlist changes, and tokens of this user \
             inherit its role: moving the user to a role with another IP allowlist would \
             change theirs at once. Give those tokens a role of their own first (that \
             change waits for approval), then change the user's role",
        ));
    }
    Ok(())
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

/// `?kind=&disabled=&limit=&cursor=`: which users a list answers.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Only users of this kind.
    pub kind: Option<UserKind>,
    /// Only disabled (or only enabled) users.
    pub disabled: Option<bool>,
    /// Items per page (1–200).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Lists the users the caller may see.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: &UserQuery,
) -> Result<Page<User>, ApiError> {
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
    Ok(into_page(
        items,
        size,
        |u| Cursor {
            created_at: u.created_at,
            id: u.id.uuid(),
        },
        |u| u,
    ))
}

/// A user of the caller's workspace that the caller may see (404 otherwise).
pub(crate) async fn visible(
    state: &AppState,
    caller: &Caller,
    id: UserId,
) -> Result<User, ApiError> {
    let user = state.store.user(caller.workspace_id(), id).await?;
    user.filter(|u| caller.only_owner().is_none_or(|only| only == u.id))
        .ok_or(ApiError::NotFound("user"))
}

/// One user.
pub async fn get(state: &AppState, caller: &Caller, id: UserId) -> Result<User, ApiError> {
    caller.require("keyward.users:read")?;
    visible(state, caller, id).await
}

/// Changes a user; its tokens see the change on their next request.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: UserId,
    patch: &UserPatch,
) -> Result<User, ApiError> {
    caller.require("keyward.users:write")?;
    caller.require_workspace_scope()?;
    let user = retrying(|| update_once(state, caller, id, patch)).await?;
    state.cache.invalidate_user(user.id);
    if user.disabled {
        // A disabled person is signed out everywhere, not only refused at the next request.
        state
            .store
            .delete_user_sessions(user.workspace_id, user.id)
            .await?;
    }
    Ok(user)
}

/// One read-check-write of a PATCH, on condition that the user did not change meanwhile.
async fn update_once(
    state: &AppState,
    caller: &Caller,
    id: UserId,
    patch: &UserPatch,
) -> Result<User, ApiError> {
    let mut current = state
        .store
        .user_versioned(caller.workspace_id(), id)
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
                "you cannot change your own role (nor a token its owner's); ask another admin",
            ));
        }
        check_role(state, caller, user.workspace_id, user.kind, role_id).await?;
        ensure_no_inherited_allowlist_change(state, user, role_id).await?;
        user.role_id = role_id;
    }
    if let Some(disabled) = patch.disabled {
        if disabled && user.id == caller.owner_id() {
            return Err(ApiError::conflict(
                "SELF_LOCKOUT",
                "you cannot disable your own user (nor a token its owner); ask another admin",
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

/// Deletes a user that owns no tokens; never the caller's own.
pub async fn delete(state: &AppState, caller: &Caller, id: UserId) -> Result<(), ApiError> {
    caller.require("keyward.users:write")?;
    caller.require_workspace_scope()?;
    let user = visible(state, caller, id).await?;
    ensure_holds_user(state, caller, &user).await?;
    if user.id == caller.owner_id() {
        return Err(ApiError::conflict(
            "SELF_LOCKOUT",
            "you cannot delete your own user (nor a token its owner)",
        ));
    }
    let audit = caller
        .audit(state, "user.deleted", "user", user.id.to_string())
        .before(&user);
    state
        .store
        .delete_user(user.workspace_id, user.id, &audit)
        .await?;
    state.cache.invalidate_user(user.id);
    Ok(())
}
