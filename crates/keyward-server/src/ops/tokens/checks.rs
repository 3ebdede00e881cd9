//! The checks a token operation runs before it changes anything: which role a token acts with,
//! what a caller must hold to hand it out or change it, and how restricted it must stay.

use keyward_core::model::{RoleKind, Scope, Token, User, UserKind};
use keyward_core::permission::{check_against_catalogue, parse_patterns};
use keyward_core::{CatalogueEntry, DomainError, PermissionPattern, Role, RoleId};

use crate::error::ApiError;
use crate::ops::{ensure_no_escalation, limits, referenced_role, Caller};
use crate::state::AppState;

/// The `api` role a token will act with: its own, else its owner's. A human role is refused.
pub(crate) async fn acting_role(
    state: &AppState,
    owner: &User,
    own: Option<RoleId>,
) -> Result<Role, ApiError> {
    let ws = owner.workspace_id;
    let role = match own {
        Some(id) => referenced_role(state, ws, id, "role_id").await?,
        None => match owner.role_id {
            Some(id) => referenced_role(state, ws, id, "owner_id").await?,
            None => {
                return Err(DomainError::field(
                    "ROLE_REQUIRED",
                    "role_id",
                    "the owner has no role to inherit: give the token an api role",
                )
                .into())
            }
        },
    };
    if role.kind != RoleKind::Api {
        let whose = if own.is_some() {
            "role"
        } else {
            "owner's role"
        };
        return Err(DomainError::field(
            "ROLE_KIND_MISMATCH",
            "role_id",
            format!(
                "the {whose} '{}' is a human role; tokens may only use api roles",
                role.name
            ),
        )
        .into());
    }
    if own.is_none() && owner.kind == UserKind::Human {
        return Err(DomainError::field(
            "ROLE_REQUIRED",
            "role_id",
            "a human user's token needs its own api role",
        )
        .into());
    }
    Ok(role)
}

/// A user-scoped caller may not hand out workspace scope.
pub(crate) fn ensure_scope(caller: &Caller, role: &Role) -> Result<(), ApiError> {
    if caller.only_owner().is_some() && role.scope == Scope::Workspace {
        return Err(ApiError::forbidden(
            "SCOPE_VIOLATION",
            format!(
                "a user-scoped token cannot give a token the workspace-scoped role '{}'",
                role.name
            ),
        ));
    }
    Ok(())
}

/// Changing, activating or rotating a token needs everything the token holds: otherwise a
/// weaker caller could extend or switch on a stronger token.
pub(crate) async fn ensure_holds(
    state: &AppState,
    caller: &Caller,
    token: &Token,
    cat: &[CatalogueEntry],
) -> Result<(), ApiError> {
    let Some(owner) = state.store.user(token.workspace_id, token.owner_id).await? else {
        return Ok(());
    };
    // A token whose role is gone or unusable holds nothing, so anyone may fix it.
    let Ok(role) = acting_role(state, &owner, token.role_id).await else {
        return Ok(());
    };
    ensure_scope(caller, &role)?;
    ensure_no_escalation(caller, &role.permissions, token.permissions.as_deref(), cat)
}

/// A token's narrowing as asked for: parsed and checked against the catalogue.
pub(crate) fn narrowing(
    items: Option<&[String]>,
    cat: &[CatalogueEntry],
) -> Result<Option<Vec<PermissionPattern>>, ApiError> {
    let Some(items) = items else { return Ok(None) };
    let patterns = parse_patterns(items, "permissions")?;
    check_against_catalogue(&patterns, cat, "permissions")?;
    Ok(Some(patterns))
}

/// Refuses (403) `token`, as it would be stored, if it is less restricted than the caller.
pub(crate) async fn ensure_within_caller(
    state: &AppState,
    caller: &Caller,
    token: &Token,
) -> Result<(), ApiError> {
    let ws = state
        .store
        .workspace(token.workspace_id)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    let owner = state
        .store
        .user(token.workspace_id, token.owner_id)
        .await?
        .ok_or(ApiError::NotFound("owner"))?;
    // A role that cannot be resolved adds no list: the check then reads the token as less
    // restricted than it may be, never as more.
    let role = acting_role(state, &owner, token.role_id).await.ok();
    limits::ensure_token_within(&caller.limits(), token, role.as_ref(), &ws.settings)
}

/// Whether `token` has been replaced by rotation.
pub(crate) async fn is_replaced(state: &AppState, token: &Token) -> Result<bool, ApiError> {
    let family = state
        .store
        .token_family(token.workspace_id, token.family())
        .await?;
    Ok(family.iter().any(|t| t.rotated_from == Some(token.id)))
}
