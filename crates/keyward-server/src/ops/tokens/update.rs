//! Changing a token: PATCH and activation. Each is a read-check-write on condition that the
//! token did not change meanwhile ([`crate::ops::concurrency::retrying`]), its checks redone on
//! every attempt, and drops the token's cache entry once committed.

use keyward_core::api::{TokenPatch, TokenView};
use keyward_core::audit::AuditDraft;
use keyward_core::change::token_needs_approval;
use keyward_core::model::{Token, TokenStatus};
use keyward_core::permission::check_within_role;
use keyward_core::{validate, ChangeTarget, DomainError, TokenId};
use keyward_store::Versioned;

use super::checks::{
    acting_role, ensure_holds, ensure_scope, ensure_within_caller, is_replaced, narrowing,
};
use super::visible_versioned;
use crate::error::ApiError;
use crate::ops::change_requests::{self, Outcome};
use crate::ops::concurrency::retrying;
use crate::ops::roles::workspace_settings;
use crate::ops::{catalogue, ensure_no_escalation, Caller};
use crate::state::AppState;

/// Changes a token (`keyward.tokens:write`); needs everything the token holds. Under
/// `require_approval` a change of its allowlist, or turning internal-only off, is kept as a
/// change request instead.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
    patch: &TokenPatch,
) -> Result<Outcome<TokenView>, ApiError> {
    caller.require("keyward.tokens:write")?;
    let out = retrying(|| update_once(state, caller, id, patch)).await?;
    if let Outcome::Applied(token) = &out {
        state.cache.invalidate_token(token.id);
    }
    Ok(out.map(|t| TokenView::of(&t, state.now())))
}

/// One read-check-write of a PATCH, on condition that the token did not change meanwhile.
async fn update_once(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
    patch: &TokenPatch,
) -> Result<Outcome<Token>, ApiError> {
    let mut current = visible_versioned(state, caller, id).await?;
    let before = current.value.clone();
    let audit = plan(state, caller, &mut current.value, patch).await?;
    if token_needs_approval(&before, &current.value)
        || role_allowlist_changes(state, caller, &before, &current.value).await?
    {
        let settings = workspace_settings(state, caller).await?;
        if settings.require_approval {
            let change = TokenPatch {
                reason: None,
                ..patch.clone()
            };
            let r = change_requests::hold(
                state,
                caller,
                &settings,
                ChangeTarget::Token(id),
                serde_json::to_value(&change).unwrap_or_default(),
                serde_json::to_value(TokenView::of(&before, state.now())).unwrap_or_default(),
                current.version,
                patch.reason.as_deref(),
            )
            .await?;
            return Ok(Outcome::Pending(Box::new(r)));
        }
    }
    state.store.update_token(&current, &audit).await?;
    Ok(Outcome::Applied(current.value))
}

/// Whether moving `before` to `after`'s role changes the role allowlist it acts under: a move to
/// a role with another allowlist is an allowlist change, and waits like one.
async fn role_allowlist_changes(
    state: &AppState,
    caller: &Caller,
    before: &Token,
    after: &Token,
) -> Result<bool, ApiError> {
    if before.role_id == after.role_id {
        return Ok(false);
    }
    let Some(owner) = state
        .store
        .user(caller.workspace_id(), before.owner_id)
        .await?
    else {
        return Ok(false);
    };
    let old = acting_role(state, &owner, before.role_id).await.ok();
    let new = acting_role(state, &owner, after.role_id).await?;
    Ok(old.is_none_or(|old| old.ip_allowlist != new.ip_allowlist))
}

/// An approved request's patch planned as the approver (who needs what a direct change
/// needs), on the token as it is now.
pub(crate) async fn plan_for_approval(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
    patch: &TokenPatch,
) -> Result<(Versioned<Token>, AuditDraft), ApiError> {
    caller.require("keyward.tokens:write")?;
    let mut current = visible_versioned(state, caller, id).await?;
    let audit = plan(state, caller, &mut current.value, patch).await?;
    Ok((current, audit))
}

/// Applies `patch` to `token` with every check, as `caller`; returns the audit event.
async fn plan(
    state: &AppState,
    caller: &Caller,
    token: &mut Token,
    patch: &TokenPatch,
) -> Result<AuditDraft, ApiError> {
    let audit = caller
        .audit(state, "token.updated", "token", token.id.to_string())
        .before(&TokenView::of(token, state.now()));
    let ws_id = caller.workspace_id();
    let cat = catalogue(state, ws_id).await?;
    ensure_holds(state, caller, token, &cat).await?;
    if let Some(name) = &patch.name {
        token.name = validate::name(name, "name")?;
    }
    if let Some(metadata) = &patch.metadata {
        validate::metadata(metadata, "metadata")?;
        token.metadata = metadata.clone();
    }
    if let Some(list) = &patch.ip_allowlist {
        token.ip_allowlist = list.parse("ip_allowlist")?;
    }
    if let Some(internal_only) = patch.internal_only {
        token.internal_only = internal_only;
    }
    if let Some(on) = patch.request_log {
        token.request_log = on;
    }
    (token.rate_limit_per_minute, token.rate_limit_per) = validate::patch_rate_limit(
        (token.rate_limit_per_minute, token.rate_limit_per),
        patch.rate_limit_per_minute,
        patch.rate_limit_per,
    )?;
    if let Some(role_id) = patch.role_id {
        token.role_id = role_id;
    }
    if let Some(items) = &patch.permissions {
        token.permissions = narrowing(items.as_deref(), &cat)?;
    }
    if patch.role_id.is_some() || patch.permissions.is_some() {
        let owner = state
            .store
            .user(ws_id, token.owner_id)
            .await?
            .ok_or(ApiError::NotFound("owner"))?;
        let role = acting_role(state, &owner, token.role_id).await?;
        ensure_scope(caller, &role)?;
        if let Some(n) = &token.permissions {
            check_within_role(n, &role.permissions, &cat, "permissions")?;
        }
        ensure_no_escalation(
            caller,
            &role.permissions,
            token.permissions.as_deref(),
            &cat,
        )?;
    }
    let now = state.now();
    if patch.not_before.is_some() || patch.expires_at.is_some() {
        let ws = state
            .store
            .workspace(ws_id)
            .await?
            .ok_or(ApiError::NotFound("workspace"))?;
        let max = ws.settings.token_max_lifetime_days;
        if let Some(nb) = patch.not_before {
            token.not_before = validate::optional_time(nb, "not_before")?;
        }
        let before = token.expires_at;
        match patch.expires_at {
            Some(None) if max.is_some() => {
                return Err(DomainError::field(
                    "TOKEN_LIFETIME_EXCEEDED",
                    "expires_at",
                    "this workspace has a maximum token lifetime; the expiry cannot be removed",
                )
                .into())
            }
            Some(expires_at) => {
                // In the future, and within the maximum counted from the token's creation.
                token.expires_at = validate::validity_window(
                    now,
                    token.created_at,
                    token.not_before,
                    expires_at,
                    max,
                )?;
            }
            None => {
                if let (Some(nb), Some(e)) = (token.not_before, token.expires_at) {
                    if nb >= e {
                        return Err(DomainError::field(
                            "INVALID_EXPIRY",
                            "not_before",
                            "not_before must be earlier than expires_at",
                        )
                        .into());
                    }
                }
            }
        }
        // A replaced token's expiry is where its rotation's grace period ends: extending it
        // would bring back the secret the rotation retired.
        let later = match (before, token.expires_at) {
            (Some(b), Some(a)) => a > b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if later && is_replaced(state, token).await? {
            return Err(ApiError::conflict(
                "TOKEN_ROTATED",
                "this token was replaced by rotation; its expiry can be brought forward, \
                 not extended (its replacement carries on)",
            ));
        }
    }
    ensure_within_caller(state, caller, token).await?;
    token.updated_at = now;
    Ok(audit.after(&TokenView::of(token, now)))
}

/// Switches a pending token on (`keyward.tokens:write`); an active one stays as it is.
pub async fn activate(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
) -> Result<TokenView, ApiError> {
    caller.require("keyward.tokens:write")?;
    let token = retrying(|| activate_once(state, caller, id)).await?;
    state.cache.invalidate_token(token.id);
    Ok(TokenView::of(&token, state.now()))
}

/// One read-check-write of an activation.
async fn activate_once(state: &AppState, caller: &Caller, id: TokenId) -> Result<Token, ApiError> {
    let mut current = visible_versioned(state, caller, id).await?;
    let token = &mut current.value;
    let cat = catalogue(state, token.workspace_id).await?;
    ensure_holds(state, caller, token, &cat).await?;
    let now = state.now();
    match token.status {
        TokenStatus::Revoked => {
            return Err(ApiError::conflict(
                "TOKEN_REVOKED",
                "a revoked token cannot be activated",
            ))
        }
        TokenStatus::Active => return Ok(current.value),
        TokenStatus::Pending => {}
    }
    // Switching a token on hands out what it allows: no more than the caller is allowed.
    ensure_within_caller(state, caller, token).await?;
    let audit = caller
        .audit(state, "token.activated", "token", token.id.to_string())
        .before(&TokenView::of(token, now));
    token.status = TokenStatus::Active;
    token.updated_at = now;
    let audit = audit.after(&TokenView::of(token, now));
    state.store.update_token(&current, &audit).await?;
    Ok(current.value)
}
