//! The caller's own workspace (read, change) and the operator's view of all workspaces. Only
//! callers of the operator's workspace may create or list workspaces; a new workspace comes
//! with its own admin token, so the operator never needs access inside it.

use keyward_core::api::{CreateWorkspace, CreatedWorkspace, Page, WorkspacePatch};
use keyward_core::audit::AuditDraft;
use keyward_core::change::workspace_needs_approval;
use keyward_core::model::{Workspace, WorkspaceSettings};
use keyward_core::validate;
use keyward_core::ChangeTarget;
use keyward_store::{Cursor, Versioned};

use super::change_requests::{self, Outcome};
use super::concurrency::retrying;
use super::paging::into_page;
use super::{Caller, PageParams};
use crate::bootstrap::{create_workspace, patch_settings};
use crate::error::ApiError;
use crate::state::AppState;

async fn own(state: &AppState, caller: &Caller) -> Result<Workspace, ApiError> {
    state
        .store
        .workspace(caller.workspace_id())
        .await?
        .ok_or(ApiError::NotFound("workspace"))
}

/// The caller's workspace (`keyward.workspace:read`).
pub async fn get(state: &AppState, caller: &Caller) -> Result<Workspace, ApiError> {
    caller.require("keyward.workspace:read")?;
    own(state, caller).await
}

/// Changes the caller's workspace (`keyward.workspace:write`, workspace scope); every token of
/// it sees the change on its next request. Under `require_approval` a security change is kept
/// as a change request instead ([`change_requests`]).
pub async fn update(
    state: &AppState,
    caller: &Caller,
    patch: &WorkspacePatch,
) -> Result<Outcome<Workspace>, ApiError> {
    caller.require("keyward.workspace:write")?;
    caller.require_workspace_scope()?;
    let out = retrying(|| update_once(state, caller, patch)).await?;
    if let Outcome::Applied(ws) = &out {
        state.cache.invalidate_workspace(ws.id);
    }
    Ok(out)
}

/// One read-check-write of a PATCH, on condition that the workspace did not change meanwhile.
async fn update_once(
    state: &AppState,
    caller: &Caller,
    patch: &WorkspacePatch,
) -> Result<Outcome<Workspace>, ApiError> {
    let mut current = read(state, caller).await?;
    let before = current.value.clone();
    let audit = plan(state, caller, &mut current.value, patch)?;
    if workspace_needs_approval(&before.settings, &current.value.settings) {
        let change = WorkspacePatch {
            reason: None,
            ..patch.clone()
        };
        let r = change_requests::hold(
            state,
            caller,
            &before.settings,
            ChangeTarget::Workspace,
            serde_json::to_value(&change).unwrap_or_default(),
            serde_json::to_value(&before).unwrap_or_default(),
            current.version,
            patch.reason.as_deref(),
        )
        .await?;
        return Ok(Outcome::Pending(Box::new(r)));
    }
    state.store.update_workspace(&current, &audit).await?;
    Ok(Outcome::Applied(current.value))
}

async fn read(state: &AppState, caller: &Caller) -> Result<Versioned<Workspace>, ApiError> {
    state
        .store
        .workspace_versioned(caller.workspace_id())
        .await?
        .ok_or(ApiError::NotFound("workspace"))
}

/// Applies `patch` to `ws` with every check, as `caller`; returns the audit event.
fn plan(
    state: &AppState,
    caller: &Caller,
    ws: &mut Workspace,
    patch: &WorkspacePatch,
) -> Result<AuditDraft, ApiError> {
    let audit = caller
        .audit(state, "workspace.updated", "workspace", ws.id.to_string())
        .before(ws);
    if let Some(name) = &patch.name {
        ws.name = validate::name(name, "name")?;
    }
    if let Some(p) = &patch.settings {
        ws.settings = patch_settings(ws.settings.clone(), p)?;
    }
    ensure_no_self_lockout(state, caller, &ws.settings)?;
    ws.updated_at = state.now();
    Ok(audit.after(ws))
}

/// An approved request's patch planned as the approver (who needs what a direct change
/// needs), on the workspace as it is now.
pub(crate) async fn plan_for_approval(
    state: &AppState,
    caller: &Caller,
    patch: &WorkspacePatch,
) -> Result<(Versioned<Workspace>, AuditDraft), ApiError> {
    caller.require("keyward.workspace:write")?;
    caller.require_workspace_scope()?;
    let mut current = read(state, caller).await?;
    let audit = plan(state, caller, &mut current.value, patch)?;
    Ok((current, audit))
}

/// Refuses (409 `SELF_LOCKOUT`) settings under which the calling request itself would be
/// refused: a workspace allowlist that does not allow its address, or, for an internal-only
/// caller, internal networks (with the server's own) that no longer hold its address.
fn ensure_no_self_lockout(
    state: &AppState,
    caller: &Caller,
    settings: &WorkspaceSettings,
) -> Result<(), ApiError> {
    let list = &settings.ip_allowlist;
    if !list.is_empty() && !caller.ip.is_some_and(|ip| list.contains(ip)) {
        return Err(ApiError::conflict(
            "SELF_LOCKOUT",
            "the new workspace allowlist does not allow the address this request comes from",
        ));
    }
    let internal = |ip| {
        settings.internal_networks.contains(ip) || state.verifier.internal_networks().contains(ip)
    };
    if caller.internal_only() && !caller.ip.is_some_and(internal) {
        return Err(ApiError::conflict(
            "SELF_LOCKOUT",
            "the calling token is internal-only and the new internal networks do not hold \
             the address this request comes from",
        ));
    }
    Ok(())
}

async fn require_operator(
    state: &AppState,
    caller: &Caller,
    permission: &str,
) -> Result<(), ApiError> {
    caller.require(permission)?;
    if !own(state, caller).await?.operator {
        return Err(ApiError::forbidden(
            "OPERATOR_ONLY",
            "only tokens of the operator's workspace may manage workspaces",
        ));
    }
    Ok(())
}

/// Creates a workspace with its first admin (`keyward.workspaces:create`, operator only); the
/// answer carries the admin token's secret.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    req: &CreateWorkspace,
) -> Result<CreatedWorkspace, ApiError> {
    require_operator(state, caller, "keyward.workspaces:create").await?;
    let settings = match &req.settings {
        Some(p) => patch_settings(WorkspaceSettings::default(), p)?,
        None => WorkspaceSettings::default(),
    };
    create_workspace(state, &req.name, settings, false, caller.actor(), caller.ip).await
}

/// Lists every workspace (`keyward.workspaces:read`, operator only).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    page: &PageParams,
) -> Result<Page<Workspace>, ApiError> {
    require_operator(state, caller, "keyward.workspaces:read").await?;
    let (page, size) = page.request()?;
    let items = state.store.list_workspaces(&page).await?;
    Ok(into_page(
        items,
        size,
        |w| Cursor {
            created_at: w.created_at,
            id: w.id.uuid(),
        },
        |w| w,
    ))
}
