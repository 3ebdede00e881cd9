//! The operations layer: everything an admin action means, whichever front end asks for it.
//!
//! One module per resource. An operation authorizes the caller (its `keyward.*` permission and
//! scope), works only inside the caller's workspace, validates its input, refuses escalation
//! (permissions, [`ensure_no_escalation`]; restrictions, [`limits`]), stores the change
//! with its audit draft in one transaction, then invalidates the cache entries the change
//! affects, queues its events and logs it. The JSON API ([`crate::admin`]) and the dashboard
//! are thin front ends over it, and the approval of change requests calls it too, so an action
//! is authorized, audited and invalidated the same way whoever asks and however.
//!
//! The rule: no axum or HTTP types here. Every operation takes `&AppState`, the acting
//! [`Caller`] (a token or a person, [`principal`]) and typed input — typed ids (`TokenId`,
//! `RoleId`…), the request structs of [`keyward_core::api`], a [`PageParams`] or a module's own
//! query struct — and returns typed output or an [`ApiError`]. Choosing the status code and
//! the body is the front end's business. Query structs keep `limit`, `cursor` and the like as
//! given, and are checked after the caller is authorized, so a caller without the permission
//! learns nothing from how its input is refused.
//!
//! # Layout
//! - [`principal`]: [`Caller`], the acting token or person.
//! - [`paging`], [`concurrency`] (read-check-write with retries), [`limits`] (delegation of
//!   restrictions); here, the catalogue, role references and the escalation check.
//! - [`tokens`] (with [`tokens::checks`] and [`tokens::update`]), [`rotation`], [`usage`],
//!   [`roles`], [`users`], [`permissions`], [`workspaces`], [`webhooks`], [`audit`].
//! - [`change_requests`]: security changes held for another person's approval, and how they
//!   are approved, rejected, cancelled, expired and applied.

pub mod audit;
pub mod change_requests;
pub mod concurrency;
pub mod limits;
pub mod paging;
pub mod permissions;
pub mod principal;
pub mod roles;
pub mod rotation;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod webhooks;
pub mod workspaces;

pub use paging::PageParams;
pub use principal::Caller;

use keyward_core::delegation::first_escalation;
use keyward_core::{CatalogueEntry, DomainError, PermissionPattern, Role, RoleId, WorkspaceId};

use crate::error::ApiError;
use crate::state::AppState;

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
    match first_escalation(caller, patterns, narrowing, catalogue) {
        None => Ok(()),
        Some(p) => Err(ApiError::forbidden(
            "PRIVILEGE_ESCALATION",
            match caller.token() {
                Some(_) => {
                    format!("this would grant {p}, which the calling token does not hold itself")
                }
                None => format!("this would grant {p}, which you do not hold yourself"),
            },
        )),
    }
}
