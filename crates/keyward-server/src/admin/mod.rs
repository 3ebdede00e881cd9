//! The admin REST API, one module per resource. Every handler authenticates the caller (a
//! keyward token), checks its `keyward.*` permission, works only inside the caller's
//! workspace, and invalidates the cache entries its change affects.

pub mod audit;
pub mod concurrency;
pub mod limits;
pub mod permissions;
pub mod roles;
pub mod rotation;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod webhooks;
pub mod workspaces;

use keyward_core::delegation::first_escalation;
use keyward_core::{CatalogueEntry, DomainError, PermissionPattern, Role, RoleId, WorkspaceId};
use keyward_store::{Cursor, PageRequest};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;

/// Items per page unless the caller asks otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most items per page.
pub const MAX_LIMIT: u32 = 200;

/// `?limit=&cursor=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Items per page (1–200).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The store request: one more item than asked, to learn whether there is a next page.
    pub fn request(&self) -> Result<(PageRequest, usize), ApiError> {
        page_request(self.limit, self.cursor.as_deref())
    }
}

/// Parses limit and cursor; returns the store request and the page size.
pub fn page_request(
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<(PageRequest, usize), ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(DomainError::field(
            "INVALID_LIMIT",
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )
        .into());
    }
    let after = cursor
        .map(|c| {
            Cursor::decode(c).ok_or_else(|| {
                DomainError::field(
                    "INVALID_CURSOR",
                    "cursor",
                    "cursor is not one this API gave out",
                )
            })
        })
        .transpose()?;
    Ok((
        PageRequest {
            limit: limit + 1,
            after,
        },
        limit as usize,
    ))
}

/// Cuts the extra item off and names the cursor of the next page.
pub fn into_page<T, V>(
    mut items: Vec<T>,
    size: usize,
    cursor: impl Fn(&T) -> Cursor,
    view: impl Fn(T) -> V,
) -> keyward_core::api::Page<V> {
    let more = items.len() > size;
    items.truncate(size);
    let next_cursor = if more {
        items.last().map(|t| cursor(t).encode())
    } else {
        None
    };
    keyward_core::api::Page {
        items: items.into_iter().map(view).collect(),
        next_cursor,
    }
}

/// The workspace's full catalogue.
pub async fn catalogue(state: &AppState, ws: WorkspaceId) -> Result<Vec<CatalogueEntry>, ApiError> {
    Ok(keyward_store::traits::full_catalogue(
        state.store.catalogue(ws).await?,
    ))
}

/// A role of the caller's workspace named in a request body, or a 422 naming `field`.
pub async fn referenced_role(
    state: &AppState,
    ws: WorkspaceId,
    id: RoleId,
    field: &str,
) -> Result<Role, ApiError> {
    state.store.role(ws, id).await?.ok_or_else(|| {
        DomainError::field(
            "UNKNOWN_REFERENCE",
            field,
            format!("no role {id} in this workspace"),
        )
        .into()
    })
}

/// Refuses (403) a grant of anything the caller does not hold itself.
pub fn ensure_no_escalation(
    caller: &Caller,
    patterns: &[PermissionPattern],
    narrowing: Option<&[PermissionPattern]>,
    catalogue: &[CatalogueEntry],
) -> Result<(), ApiError> {
    match first_escalation(&caller.token, patterns, narrowing, catalogue) {
        None => Ok(()),
        Some(p) => Err(ApiError::forbidden(
            "PRIVILEGE_ESCALATION",
            format!("this would grant {p}, which the calling token does not hold itself"),
        )),
    }
}
