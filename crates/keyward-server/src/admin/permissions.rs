//! `/v1/permissions`: the workspace's permission catalogue. The `keyward.*` entries are built
//! in; a workspace adds its product's own (`orders:read`, `cart:write`, …) so that roles and
//! tokens can only name permissions that exist.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use keyward_core::api::{Page, PutPermission};
use keyward_core::{validate, CatalogueEntry, DomainError, Permission};
use keyward_store::PageRequest;

use super::catalogue;
use crate::error::ApiError;
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/permissions", get(list))
        .route("/v1/permissions/{permission}", put(upsert).delete(remove))
}

/// The whole catalogue in one page (it is small: a workspace's own permissions plus the
/// built-in ones), shaped like every other list so clients need one way to read lists.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Page<CatalogueEntry>>, ApiError> {
    caller.require("keyward.permissions:read")?;
    Ok(Json(Page {
        items: catalogue(&state, caller.workspace_id()).await?,
        next_cursor: None,
    }))
}

fn own_permission(raw: &str) -> Result<Permission, ApiError> {
    let p = Permission::parse(raw).map_err(|e| DomainError {
        field: Some("permission".into()),
        ..e
    })?;
    if p.is_reserved() {
        return Err(DomainError::field(
            "RESERVED_PERMISSION",
            "permission",
            "the keyward.* permissions are built in and cannot be changed",
        )
        .into());
    }
    Ok(p)
}

async fn upsert(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    ApiJson(req): ApiJson<PutPermission>,
) -> Result<(StatusCode, Json<CatalogueEntry>), ApiError> {
    caller.require("keyward.permissions:write")?;
    caller.require_workspace_scope()?;
    let entry = CatalogueEntry {
        permission: own_permission(&raw)?,
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
        &state,
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
    state.cache.invalidate_workspace(caller.workspace_id());
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require("keyward.permissions:write")?;
    caller.require_workspace_scope()?;
    let p = own_permission(&raw)?;
    let ws = caller.workspace_id();
    let users = roles_naming(&state, ws, &p).await?;
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
            &p,
            &caller.audit(&state, "permission.deleted", "permission", p.as_str()),
        )
        .await
        .map_err(|e| match e {
            keyward_store::StoreError::NotFound => ApiError::NotFound("permission"),
            e => e.into(),
        })?;
    state.cache.invalidate_workspace(ws);
    Ok(StatusCode::NO_CONTENT)
}

/// Names of the roles that list `p` exactly (wildcards do not pin a permission).
async fn roles_naming(
    state: &AppState,
    ws: keyward_core::WorkspaceId,
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
