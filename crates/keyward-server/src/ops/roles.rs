//! Roles: a kind, a scope and permission patterns checked against the catalogue. Editing a
//! role changes every token acting with it on its next request (its cache entries are
//! dropped). Reading needs `keyward.roles:read`; changing needs `keyward.roles:write`,
//! workspace scope, and everything the role grants, before and after.

use keyward_core::api::{CreateRole, Page, RolePatch};
use keyward_core::audit::AuditDraft;
use keyward_core::change::role_needs_approval;
use keyward_core::model::WorkspaceSettings;
use keyward_core::permission::{check_against_catalogue, parse_patterns};
use keyward_core::ChangeTarget;
use keyward_core::{validate, PermissionPattern, RateLimitPer, Role, RoleId};
use keyward_store::{Cursor, Versioned};

use super::change_requests::{self, Outcome};
use super::concurrency::retrying;
use super::paging::into_page;
use super::{catalogue, ensure_no_escalation, limits, Caller, PageParams};
use crate::error::ApiError;
use crate::state::AppState;

/// Parses, checks against the catalogue, and refuses escalation.
async fn permissions(
    state: &AppState,
    caller: &Caller,
    items: &[String],
) -> Result<Vec<PermissionPattern>, ApiError> {
    let patterns = parse_patterns(items, "permissions")?;
    let cat = catalogue(state, caller.workspace_id()).await?;
    check_against_catalogue(&patterns, &cat, "permissions")?;
    ensure_no_escalation(caller, &patterns, None, &cat)?;
    Ok(patterns)
}

/// Creates a role.
pub async fn create(state: &AppState, caller: &Caller, req: &CreateRole) -> Result<Role, ApiError> {
    caller.require("keyward.roles:write")?;
    caller.require_workspace_scope()?;
    let now = state.now();
    let (rate_limit_per_minute, rate_limit_per) = validate::patch_rate_limit(
        (None, RateLimitPer::Token),
        req.rate_limit_per_minute.map(Some),
        req.rate_limit_per,
    )?;
    let role = Role {
        id: RoleId::random(&mut rand_core::OsRng),
        workspace_id: caller.workspace_id(),
        name: validate::name(&req.name, "name")?,
        description: validate::description(&req.description, "description")?,
        kind: req.kind,
        scope: req.scope,
        permissions: permissions(state, caller, &req.permissions).await?,
        ip_allowlist: req
            .ip_allowlist
            .as_ref()
            .map(|l| l.parse("ip_allowlist"))
            .transpose()?
            .unwrap_or_default(),
        rate_limit_per_minute,
        rate_limit_per,
        created_at: now,
        updated_at: now,
    };
    ensure_within_caller(state, caller, &role).await?;
    let audit = caller.audit(state, "role.created", "role", role.id.to_string());
    state.store.create_role(&role, &audit.after(&role)).await?;
    Ok(role)
}

/// Lists the workspace's roles.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    page: &PageParams,
) -> Result<Page<Role>, ApiError> {
    caller.require("keyward.roles:read")?;
    let (page, size) = page.request()?;
    let items = state.store.list_roles(caller.workspace_id(), &page).await?;
    Ok(into_page(
        items,
        size,
        |r| Cursor {
            created_at: r.created_at,
            id: r.id.uuid(),
        },
        |r| r,
    ))
}

/// One role.
pub async fn get(state: &AppState, caller: &Caller, id: RoleId) -> Result<Role, ApiError> {
    caller.require("keyward.roles:read")?;
    find(state, caller, id).await
}

async fn find(state: &AppState, caller: &Caller, id: RoleId) -> Result<Role, ApiError> {
    state
        .store
        .role(caller.workspace_id(), id)
        .await?
        .ok_or(ApiError::NotFound("role"))
}

/// Refuses (403) `role`, as it would be stored, if its tokens would be less restricted than the
/// caller (its allowlist with the workspace's, its rate limit or the default).
async fn ensure_within_caller(
    state: &AppState,
    caller: &Caller,
    role: &Role,
) -> Result<(), ApiError> {
    let ws = state
        .store
        .workspace(role.workspace_id)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    limits::ensure_role_within(caller, role, &ws.settings)
}

/// Changes a role; every token acting with it sees the change on its next request. Under
/// `require_approval` a change of its allowlist is kept as a change request instead.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: RoleId,
    patch: &RolePatch,
) -> Result<Outcome<Role>, ApiError> {
    caller.require("keyward.roles:write")?;
    caller.require_workspace_scope()?;
    let out = retrying(|| update_once(state, caller, id, patch)).await?;
    if let Outcome::Applied(role) = &out {
        state.cache.invalidate_role(role.id);
    }
    Ok(out)
}

/// One read-check-write of a PATCH, on condition that the role did not change meanwhile.
async fn update_once(
    state: &AppState,
    caller: &Caller,
    id: RoleId,
    patch: &RolePatch,
) -> Result<Outcome<Role>, ApiError> {
    let mut current = read(state, caller, id).await?;
    let before = current.value.clone();
    let audit = plan(state, caller, &mut current.value, patch).await?;
    if role_needs_approval(&before, &current.value) {
        let settings = workspace_settings(state, caller).await?;
        if settings.require_approval {
            let change = RolePatch {
                reason: None,
                ..patch.clone()
            };
            let r = change_requests::hold(
                state,
                caller,
                &settings,
                ChangeTarget::Role(id),
                serde_json::to_value(&change).unwrap_or_default(),
                serde_json::to_value(&before).unwrap_or_default(),
                current.version,
                patch.reason.as_deref(),
            )
            .await?;
            return Ok(Outcome::Pending(Box::new(r)));
        }
    }
    state.store.update_role(&current, &audit).await?;
    Ok(Outcome::Applied(current.value))
}

async fn read(state: &AppState, caller: &Caller, id: RoleId) -> Result<Versioned<Role>, ApiError> {
    state
        .store
        .role_versioned(caller.workspace_id(), id)
        .await?
        .ok_or(ApiError::NotFound("role"))
}

/// The caller's workspace settings.
pub(crate) async fn workspace_settings(
    state: &AppState,
    caller: &Caller,
) -> Result<WorkspaceSettings, ApiError> {
    Ok(state
        .store
        .workspace(caller.workspace_id())
        .await?
        .ok_or(ApiError::NotFound("workspace"))?
        .settings)
}

/// Applies `patch` to `role` with every check, as `caller`; returns the audit event.
async fn plan(
    state: &AppState,
    caller: &Caller,
    role: &mut Role,
    patch: &RolePatch,
) -> Result<AuditDraft, ApiError> {
    let audit = caller
        .audit(state, "role.updated", "role", role.id.to_string())
        .before(&*role);
    // Changing (or deleting) a role one does not fully hold would be escalation by other means.
    let cat = catalogue(state, role.workspace_id).await?;
    ensure_no_escalation(caller, &role.permissions, None, &cat)?;
    if let Some(name) = &patch.name {
        role.name = validate::name(name, "name")?;
    }
    if let Some(d) = &patch.description {
        role.description = validate::description(d, "description")?;
    }
    if let Some(scope) = patch.scope {
        role.scope = scope;
    }
    if let Some(items) = &patch.permissions {
        role.permissions = permissions(state, caller, items).await?;
    }
    if let Some(list) = &patch.ip_allowlist {
        role.ip_allowlist = list.parse("ip_allowlist")?;
    }
    (role.rate_limit_per_minute, role.rate_limit_per) = validate::patch_rate_limit(
        (role.rate_limit_per_minute, role.rate_limit_per),
        patch.rate_limit_per_minute,
        patch.rate_limit_per,
    )?;
    ensure_within_caller(state, caller, role).await?;
    role.updated_at = state.now();
    Ok(audit.after(&*role))
}

/// An approved request's patch planned as the approver (who needs what a direct change
/// needs), on the role as it is now.
pub(crate) async fn plan_for_approval(
    state: &AppState,
    caller: &Caller,
    id: RoleId,
    patch: &RolePatch,
) -> Result<(Versioned<Role>, AuditDraft), ApiError> {
    caller.require("keyward.roles:write")?;
    caller.require_workspace_scope()?;
    let mut current = read(state, caller, id).await?;
    let audit = plan(state, caller, &mut current.value, patch).await?;
    Ok((current, audit))
}

/// Deletes a role that nothing uses.
pub async fn delete(state: &AppState, caller: &Caller, id: RoleId) -> Result<(), ApiError> {
    caller.require("keyward.roles:write")?;
    caller.require_workspace_scope()?;
    let role = find(state, caller, id).await?;
    let cat = catalogue(state, role.workspace_id).await?;
    ensure_no_escalation(caller, &role.permissions, None, &cat)?;
    let audit = caller
        .audit(state, "role.deleted", "role", role.id.to_string())
        .before(&role);
    state
        .store
        .delete_role(role.workspace_id, role.id, &audit)
        .await?;
    state.cache.invalidate_role(role.id);
    Ok(())
}
