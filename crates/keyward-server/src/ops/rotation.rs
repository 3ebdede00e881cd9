//! Rotation and bulk revocation.
//!
//! - [`rotate`]: a new secret (shown once) for a token with the same owner, role, narrowing,
//!   allowlists, limits and metadata; the old secret keeps working until the grace period
//!   ends (0 = at once), then is refused as `EXPIRED`. The two form a family.
//! - [`family`]: every token of the family, oldest first.
//! - [`revoke_user_tokens`]: revokes every token of a user at once.

use chrono::Duration;
use keyward_core::api::{RevokedTokens, RotateToken, RotatedToken, TokenView};
use keyward_core::events::EventType;
use keyward_core::model::ShownStatus;
use keyward_core::{validate, DomainError, Token, TokenId, TokenSecret, UserId};
use keyward_store::{PageRequest, TokenFilter};

use super::concurrency::retrying;
use super::tokens::checks::ensure_holds;
use super::tokens::{revoke_as, visible, visible_versioned};
use super::{catalogue, limits, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// The longest grace period: a rotation that never ends would be two live secrets.
const MAX_GRACE_SECS: u64 = 90 * 24 * 3600;

/// Rotates a token (`keyward.tokens:create`); the answer is the only one with the new secret.
pub async fn rotate(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
    req: &RotateToken,
) -> Result<RotatedToken, ApiError> {
    caller.require("keyward.tokens:create")?;
    if req.grace_period_secs > MAX_GRACE_SECS {
        return Err(DomainError::field(
            "INVALID_GRACE_PERIOD",
            "grace_period_secs",
            "the grace period may be at most 90 days",
        )
        .into());
    }
    let (answer, old, new) = retrying(|| rotate_once(state, caller, id, req)).await?;
    state.cache.invalidate_token(old.id);
    state.cache.forget_unknown(&new.hash);
    // The rotation is committed: its new secret must reach the caller even if the event
    // cannot be queued (the audit event is already stored with the change).
    if let Err(e) = crate::events::emit(state, EventType::TokenRotated, &new).await {
        tracing::warn!(token = %new.id, error = ?e, "token.rotated event not queued");
    }
    tracing::info!(token = %new.id, previous = %old.id, by = %caller.id(), "token rotated");
    Ok(answer)
}

/// One read-check-write of a rotation, on condition that the old token did not change
/// meanwhile. Returns the answer, the old token as stored and the new one.
async fn rotate_once(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
    req: &RotateToken,
) -> Result<(RotatedToken, Token, Token), ApiError> {
    let mut current = visible_versioned(state, caller, id).await?;
    let old = &mut current.value;
    let cat = catalogue(state, old.workspace_id).await?;
    ensure_holds(state, caller, old, &cat).await?;
    let now = state.now();
    match old.shown_status(now) {
        ShownStatus::Revoked => {
            return Err(ApiError::conflict(
                "TOKEN_REVOKED",
                "a revoked token cannot be rotated",
            ))
        }
        ShownStatus::Expired => {
            return Err(ApiError::conflict(
                "TOKEN_EXPIRED",
                "an expired token cannot be rotated; create a new one",
            ))
        }
        ShownStatus::Active | ShownStatus::Pending => {}
    }
    let ws = state
        .store
        .workspace(old.workspace_id)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    // Without an explicit expiry the new token lives as long as the old one was meant to.
    // Checked: a lifetime counted from now may end past the latest date accepted (9999).
    let renewal = old
        .expires_at
        .map(|e| validate::add(now, e - old.created_at, "expires_at"));
    let wanted = match req.expires_at {
        Some(e) => Some(e),
        None => renewal.clone().transpose()?,
    };
    let renewed = renewal.and_then(Result::ok);
    let expires_at = validate::validity_window(
        now,
        now,
        old.not_before.filter(|nb| *nb > now),
        wanted,
        ws.settings.token_max_lifetime_days,
    )?;

    let secret = TokenSecret::generate(&ws.settings.token_prefix, &mut rand_core::OsRng);
    let new = Token {
        id: TokenId::random(&mut rand_core::OsRng),
        hash: state.hasher.hash(&secret),
        start: secret.display_start(),
        not_before: old.not_before.filter(|nb| *nb > now),
        expires_at,
        created_at: now,
        updated_at: now,
        revoked_at: None,
        family_id: Some(old.family()),
        rotated_from: Some(old.id),
        // Whoever rotates learns the new secret, so the new token is theirs to answer for.
        created_by: Some(super::change_requests::responsible_maker(state, caller).await?),
        ..old.clone()
    };
    // The new token copies the old one's restrictions, so it is no less restricted than the
    // caller when the old one is not. Its expiry: a token renewing itself may reach the
    // lifetime it renews (that is what rotation is for); anything else, an override included,
    // expires no later than the caller.
    let mut bound = caller.limits();
    if caller.token_id() == Some(old.id) {
        bound.expires_at = match (bound.expires_at, renewed) {
            (Some(own), Some(renewed)) => Some(own.max(renewed)),
            _ => None,
        };
    }
    let owner = state
        .store
        .user(old.workspace_id, old.owner_id)
        .await?
        .ok_or(ApiError::NotFound("owner"))?;
    let role = match new.role_id.or(owner.role_id) {
        Some(role_id) => state.store.role(old.workspace_id, role_id).await?,
        None => None,
    };
    limits::ensure_token_within(&bound, &new, role.as_ref(), &ws.settings)?;

    let audit = caller
        .audit(state, "token.rotated", "token", new.id.to_string())
        .before(&TokenView::of(old, now));
    let grace = Duration::seconds(i64::try_from(req.grace_period_secs).unwrap_or(0));
    let end = validate::add(now, grace, "grace_period_secs")?;
    old.expires_at = Some(old.expires_at.map_or(end, |e| e.min(end)));
    old.updated_at = now;
    let answer = RotatedToken {
        token: TokenView::of(&new, now),
        secret: secret.expose().to_owned(),
        previous: TokenView::of(old, now),
    };
    let audit = audit.after(&serde_json::json!({
        "token": &answer.token,
        "previous": &answer.previous,
        "grace_period_secs": req.grace_period_secs,
    }));
    state.store.rotate_token(&current, &new, &audit).await?;
    Ok((answer, current.value, new))
}

/// Every token of `id`'s family that the caller may see, oldest first (`keyward.tokens:read`).
pub async fn family(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
) -> Result<Vec<TokenView>, ApiError> {
    caller.require("keyward.tokens:read")?;
    let token = visible(state, caller, id).await?;
    let now = state.now();
    let members = state
        .store
        .token_family(token.workspace_id, token.family())
        .await?;
    Ok(members
        .iter()
        .filter(|t| caller.only_owner().is_none_or(|only| only == t.owner_id))
        .map(|t| TokenView::of(t, now))
        .collect())
}

/// Revokes every token of a user (`keyward.tokens:revoke`), each audited on its own.
pub async fn revoke_user_tokens(
    state: &AppState,
    caller: &Caller,
    user: UserId,
) -> Result<RevokedTokens, ApiError> {
    caller.require("keyward.tokens:revoke")?;
    let user = super::users::visible(state, caller, user).await?;
    let filter = TokenFilter {
        owner_id: Some(user.id),
        role_id: None,
        status: None,
        now: state.now(),
    };
    let mut revoked = Vec::new();
    let mut page = PageRequest {
        limit: 200,
        after: None,
    };
    loop {
        let tokens = state
            .store
            .list_tokens(user.workspace_id, &filter, &page)
            .await?;
        // Each token is revoked and audited on its own, so its trail is complete.
        for mut token in tokens.iter().cloned() {
            if revoke_as(state, caller, &mut token).await? {
                revoked.push(token.id);
            }
        }
        match tokens.last() {
            Some(last) if tokens.len() == page.limit as usize => {
                page.after = Some(keyward_store::Cursor {
                    created_at: last.created_at,
                    id: last.id.uuid(),
                });
            }
            _ => break,
        }
    }
    tracing::info!(user = %user.id, count = revoked.len(), by = %caller.id(), "user's tokens revoked");
    Ok(RevokedTokens { revoked })
}
