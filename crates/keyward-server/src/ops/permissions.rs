//! The workspace's permission catalogue. The `keyward.*` entries are built in; a workspace
//! adds its product's own (`orders:read`, `cart:write`, …) so that roles and tokens can only
//! name permissions that exist. Changing the catalogue drops the workspace's cache entries,
//! since effective permission lists are computed against it.

use keyward_core::api::{Page, PutPermission};
use keyward_core::{validate, CatalogueEntry, DomainError, Permission, WorkspaceId};
use keyward_store::PageRequest;

use super::{catalogue, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// The whole catalogue in one page (it is small: a workspace's own permissions plus the
/// built-in ones), shaped like every other list so clients need one way to read lists.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Page<CatalogueEntry>, ApiError> {
    caller.require("keyward.permissions:read")?;
    Ok(Page {
        items: catalogue(state, caller.workspace_id()).await?,
        next_cursor: None,
    })
}

/// Parses a permission named by a front end (a path segment, a form field), naming the field
/// `permission` when it is wrong.
pub fn parse_name(raw: &str) -> Result<Permission, ApiError> {
    Ok(Permission::parse(raw).map_err(|e| DomainError {
        field: Some("permission".into()),
        ..e
    })?)
}

/// Refuses the built-in `keyward.*` permissions: they are not the workspace's to change.
fn own_permission(p: &Permission) -> Result<(), ApiError> {
    if p.is_reserved() {
        return Err(DomainError::field(
            "RESERVED_PERMISSION",
            "permission",
            "the keyward.* permissions are built in and cannot be changed",
        )
        .into());
    }
    Ok(())
}

/// What [`put`] did.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    /// The entry as stored.
    pub entry: CatalogueEntry,
    /// Whether it is new (else its description was replaced).
    pub created: bool,
}

/// Adds a permission to the catalogue, or replaces its description.
pub async fn put(
    state: &AppState,
    caller: &Caller,
    permission: &Permission,
    req: &PutPermission,
) -> Result<PutOutcome, ApiError> {
    caller.require("keyward.permissions:write")?;
    caller.require_workspace_scope()?;
    own_permission(permission)?;
    let entry = CatalogueEntry {
        permission: permission.clone(),
        description: validate::description(&req.description, "description")?,
        builtin: false,
    };
    let ws = caller.workspace_id();
    let before = state
        .store
        .catalogue(ws)
        .await?
        .into_iter()
        .find(|e| e.permission == entry.permission);
    let mut audit = caller.audit(
        state,
        "permission.put",
        "permission",
        entry.permission.as_str(),
    );
    if let Some(b) = &before {
        audit = audit.before(b);
    }
    let created = state
        .store
        .put_permission(ws, &entry, &audit.after(&entry))
        .await?;
    // Effective permission lists are computed against the catalogue.
    state.cache.invalidate_workspace(ws);
    Ok(PutOutcome { entry, created })
}

/// Removes a permission no role names exactly.
pub async fn delete(state: &AppState, caller: &Caller, p: &Permission) -> Result<(), ApiError> {
    caller.require("keyward.permissions:write")?;
    caller.require_workspace_scope()?;
    own_permission(p)?;
    let ws = caller.workspace_id();
    let users = roles_naming(state, ws, p).await?;
    if !users.is_empty() {
        return Err(ApiError::conflict(
            "PERMISSION_IN_USE",
            format!("roles still grant {p} by name: {}", users.join(", ")),
        ));
    }
    state
        .store
        .delete_permission(
            ws,
            p,
            &caller.audit(state, "permission.deleted", "permission", p.as_str()),
        )
        .await
        .map_err(|e| match e {
            keyward_store::StoreError::NotFound => ApiError::NotFound("permission"),
            e => e.into(),
        })?;
    state.cache.invalidate_workspace(ws);
    Ok(())
}

/// Names of the roles that list `p` exactly (wildcards do not pin a permission).
async fn roles_naming(
    state: &AppState,
    ws: WorkspaceId,
    p: &Permission,
) -> Result<Vec<String>, ApiError> {
    let mut names = Vec::new();
    let mut page = PageRequest {
        limit: 500,
        after: None,
    };
    loop {
        let roles = state.store.list_roles(ws, &page).await?;
        let Some(last) = roles.last() else { break };
        page.after = Some(keyward_store::Cursor {
            created_at: last.created_at,
            id: last.id.uuid(),
        });
        let done = roles.len() < 500;
        names.extend(
            roles
                .into_iter()
                .filter(|r| {
                    r.permissions
                        .iter()
                        .any(|pat| pat.as_exact().as_ref() == Some(p))
                })
                .map(|r| r.name),
        );
        if done {
            break;
        }
    }
    Ok(names)
}
