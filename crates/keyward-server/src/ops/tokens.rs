//! Tokens: create (the only answer with the secret), list, get, update, activate, revoke,
//! delete. User-scoped callers see and manage only their owner's tokens.
//!
//! # Layout
//! - this module: create, list, get, revoke, delete, and finding a visible token.
//! - [`checks`]: the acting role, scope, holding and restriction checks.
//! - [`update`]: PATCH and activation, each a read-check-write retried on conflict.

pub mod checks;
pub mod update;

pub use update::{activate, update};

use keyward_core::api::{CreateToken, CreatedToken, Page, TokenView};
use keyward_core::model::{ShownStatus, Token, TokenStatus};
use keyward_core::permission::check_within_role;
use keyward_core::{validate, DomainError, RoleId, TokenId, TokenSecret, UserId};
use keyward_store::{Cursor, TokenFilter, Versioned};
use serde::Deserialize;

use self::checks::{acting_role, ensure_scope, narrowing};
use super::paging::{into_page, page_request};
use super::{catalogue, ensure_no_escalation, limits, Caller};
use crate::error::ApiError;
use crate::events::{self, EventType};
use crate::state::AppState;

/// Creates a token (`keyward.tokens:create`); the answer is the only one with its secret.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    req: &CreateToken,
) -> Result<CreatedToken, ApiError> {
    caller.require("keyward.tokens:create")?;
    let ws_id = caller.workspace_id();
    let name = validate::name(&req.name, "name")?;
    let owner = state
        .store
        .user(ws_id, req.owner_id)
        .await?
        .ok_or_else(|| {
            DomainError::field(
                "UNKNOWN_REFERENCE",
                "owner_id",
                "no such user in this workspace",
            )
        })?;
    if caller.only_owner().is_some_and(|only| only != owner.id) {
        return Err(ApiError::forbidden(
            "SCOPE_VIOLATION",
            "a user-scoped token may create tokens only for its own owner",
        ));
    }
    let role = acting_role(state, &owner, req.role_id).await?;
    ensure_scope(caller, &role)?;
    let cat = catalogue(state, ws_id).await?;
    let narrowing = narrowing(req.permissions.as_deref(), &cat)?;
    if let Some(n) = &narrowing {
        check_within_role(n, &role.permissions, &cat, "permissions")?;
    }
    let metadata = req
        .metadata
        .clone()
        .unwrap_or_else(|| serde_json::json!({}));
    validate::metadata(&metadata, "metadata")?;
    let ws = state
        .store
        .workspace(ws_id)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    let now = state.now();
    let expires_at = validate::validity_window(
        now,
        now,
        req.not_before,
        req.expires_at,
        ws.settings.token_max_lifetime_days,
    )?;
    ensure_no_escalation(caller, &role.permissions, narrowing.as_deref(), &cat)?;

    let (rate_limit_per_minute, rate_limit_per) = validate::patch_rate_limit(
        (None, keyward_core::RateLimitPer::Token),
        req.rate_limit_per_minute.map(Some),
        req.rate_limit_per,
    )?;
    let secret = TokenSecret::generate(&ws.settings.token_prefix, &mut rand_core::OsRng);
    let hash = state.hasher.hash(&secret);
    let token = Token {
        id: TokenId::random(&mut rand_core::OsRng),
        workspace_id: ws_id,
        owner_id: owner.id,
        role_id: req.role_id,
        permissions: narrowing,
        name,
        metadata,
        status: if req.pending {
            TokenStatus::Pending
        } else {
            TokenStatus::Active
        },
        hash,
        start: secret.display_start(),
        not_before: req.not_before,
        expires_at,
        ip_allowlist: req
            .ip_allowlist
            .as_ref()
            .map(|l| l.parse("ip_allowlist"))
            .transpose()?
            .unwrap_or_default(),
        internal_only: req.internal_only,
        request_log: req.request_log,
        rate_limit_per_minute,
        rate_limit_per,
        created_at: now,
        updated_at: now,
        revoked_at: None,
        family_id: None,
        rotated_from: None,
        created_by: Some(super::change_requests::responsible_maker(state, caller).await?),
    };
    limits::ensure_token_within(&caller.limits(), &token, Some(&role), &ws.settings)?;
    let audit = caller
        .audit(state, "token.created", "token", token.id.to_string())
        .after(&TokenView::of(&token, now));
    state.store.create_token(&token, &audit).await?;
    state.cache.forget_unknown(&hash);
    events::emit(state, EventType::TokenCreated, &token).await?;
    tracing::info!(token = %token.id, owner = %owner.id, by = %caller.id(), "token created");
    Ok(CreatedToken {
        token: TokenView::of(&token, now),
        secret: secret.expose().to_owned(),
    })
}

/// `?owner_id=&role_id=&status=&limit=&cursor=`: which tokens a list answers.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// Only this owner's tokens.
    pub owner_id: Option<UserId>,
    /// Only tokens with this role of their own.
    pub role_id: Option<RoleId>,
    /// Only tokens shown with this status.
    pub status: Option<ShownStatus>,
    /// Items per page (1–200).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Lists the tokens the caller may see (`keyward.tokens:read`), newest first.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: &TokenQuery,
) -> Result<Page<TokenView>, ApiError> {
    caller.require("keyward.tokens:read")?;
    let (page, size) = page_request(q.limit, q.cursor.as_deref())?;
    let owner_id = match (caller.only_owner(), q.owner_id) {
        (Some(only), Some(asked)) if only != asked => {
            return Ok(Page {
                items: vec![],
                next_cursor: None,
            })
        }
        (Some(only), _) => Some(only),
        (None, asked) => asked,
    };
    let now = state.now();
    let filter = TokenFilter {
        owner_id,
        role_id: q.role_id,
        status: q.status,
        now,
    };
    let items = state
        .store
        .list_tokens(caller.workspace_id(), &filter, &page)
        .await?;
    Ok(into_page(
        items,
        size,
        |t| Cursor {
            created_at: t.created_at,
            id: t.id.uuid(),
        },
        |t| TokenView::of(&t, now),
    ))
}

/// One token with its last use (`keyward.tokens:read`).
pub async fn get(state: &AppState, caller: &Caller, id: TokenId) -> Result<TokenView, ApiError> {
    caller.require("keyward.tokens:read")?;
    let token = visible(state, caller, id).await?;
    super::usage::with_last_use(state, TokenView::of(&token, state.now())).await
}

/// Revokes a token (`keyward.tokens:revoke`); revoking a revoked token changes nothing.
pub async fn revoke(state: &AppState, caller: &Caller, id: TokenId) -> Result<TokenView, ApiError> {
    caller.require("keyward.tokens:revoke")?;
    let mut token = visible(state, caller, id).await?;
    revoke_as(state, caller, &mut token).await?;
    Ok(TokenView::of(&token, state.now()))
}

/// Revokes `token` on behalf of `caller`: stored with its audit event, dropped from the cache,
/// `token.revoked` queued. Returns whether it was revoked now (false if it already was, also
/// when a concurrent request revoked it first). The store changes only the status and its
/// times, so a revocation neither undoes nor is undone by a concurrent PATCH or rotation.
pub(crate) async fn revoke_as(
    state: &AppState,
    caller: &Caller,
    token: &mut Token,
) -> Result<bool, ApiError> {
    if token.status == TokenStatus::Revoked {
        return Ok(false);
    }
    let now = state.now();
    let audit = caller
        .audit(state, "token.revoked", "token", token.id.to_string())
        .before(&TokenView::of(token, now));
    token.status = TokenStatus::Revoked;
    token.revoked_at = Some(now);
    token.updated_at = now;
    let audit = audit.after(&TokenView::of(token, now));
    let revoked = state
        .store
        .revoke_token(token.workspace_id, token.id, now, &audit)
        .await?;
    state.cache.invalidate_token(token.id);
    if !revoked {
        return Ok(false);
    }
    tracing::info!(token = %token.id, by = %caller.id(), "token revoked");
    events::emit(state, EventType::TokenRevoked, token).await?;
    Ok(true)
}

/// Deletes a token (`keyward.tokens:delete`).
pub async fn delete(state: &AppState, caller: &Caller, id: TokenId) -> Result<(), ApiError> {
    caller.require("keyward.tokens:delete")?;
    let token = visible(state, caller, id).await?;
    let audit = caller
        .audit(state, "token.deleted", "token", token.id.to_string())
        .before(&TokenView::of(&token, state.now()));
    state
        .store
        .delete_token(token.workspace_id, token.id, &audit)
        .await?;
    state.cache.invalidate_token(token.id);
    tracing::info!(token = %token.id, by = %caller.id(), "token deleted");
    Ok(())
}

/// A token of the caller's workspace that the caller may see (404 otherwise).
pub(crate) async fn visible(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
) -> Result<Token, ApiError> {
    let token = state.store.token(caller.workspace_id(), id).await?;
    token
        .filter(|t| caller.only_owner().is_none_or(|only| only == t.owner_id))
        .ok_or(ApiError::NotFound("token"))
}

/// [`visible`], with the row version a change of it must name.
pub(crate) async fn visible_versioned(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
) -> Result<Versioned<Token>, ApiError> {
    let token = state
        .store
        .token_versioned(caller.workspace_id(), id)
        .await?;
    token
        .filter(|t| {
            caller
                .only_owner()
                .is_none_or(|only| only == t.value.owner_id)
        })
        .ok_or(ApiError::NotFound("token"))
}
