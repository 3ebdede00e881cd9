//! `/v1/tokens`: create (the only answer with the secret), list, get, update, activate,
//! revoke, delete. User-scoped callers see and manage only their owner's tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::{CreateToken, CreatedToken, Page, TokenPatch, TokenView};
use keyward_core::model::{RoleKind, Scope, ShownStatus, Token, TokenStatus, User, UserKind};
use keyward_core::permission::{check_against_catalogue, check_within_role, parse_patterns};
use keyward_core::{
    validate, DomainError, PermissionPattern, Role, RoleId, TokenId, TokenSecret, UserId,
};
use keyward_store::{Cursor, TokenFilter, Versioned};
use serde::Deserialize;

use super::concurrency::retrying;
use super::{catalogue, ensure_no_escalation, into_page, limits, page_request, referenced_role};
use crate::error::ApiError;
use crate::extract::{path_id, ApiJson, ApiQuery, Caller};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", post(create).get(list))
        .route("/v1/tokens/{id}", get(show).patch(update).delete(remove))
        .route("/v1/tokens/{id}/activate", post(activate))
        .route("/v1/tokens/{id}/revoke", post(revoke))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
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
    let role = acting_role(&state, &owner, req.role_id).await?;
    ensure_scope(&caller, &role)?;
    let cat = catalogue(&state, ws_id).await?;
    let narrowing = narrowing(req.permissions.as_deref(), &cat)?;
    if let Some(n) = &narrowing {
        check_within_role(n, &role.permissions, &cat, "permissions")?;
    }
    let metadata = req.metadata.unwrap_or_else(|| serde_json::json!({}));
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
    ensure_no_escalation(&caller, &role.permissions, narrowing.as_deref(), &cat)?;

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
        rate_limit_per_minute: req
            .rate_limit_per_minute
            .map(|n| validate::rate_limit(n, "rate_limit_per_minute"))
            .transpose()?,
        created_at: now,
        updated_at: now,
        revoked_at: None,
        family_id: None,
        rotated_from: None,
    };
    let bound = limits::of_caller(&caller);
    limits::ensure_token_within(&bound, &token, Some(&role), &ws.settings)?;
    let audit = caller
        .audit(&state, "token.created", "token", token.id.to_string())
        .after(&TokenView::of(&token, now));
    state.store.create_token(&token, &audit).await?;
    state.cache.forget_unknown(&hash);
    crate::events::emit(&state, crate::events::EventType::TokenCreated, &token).await?;
    tracing::info!(token = %token.id, owner = %owner.id, by = %caller.token.token_id, "token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: TokenView::of(&token, now),
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// The `api` role a token will act with: its own, else its owner's. A human role is refused.
async fn acting_role(
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
fn ensure_scope(caller: &Caller, role: &Role) -> Result<(), ApiError> {
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

/// Changing or activating a token needs everything the token holds: otherwise a weaker
/// token could extend or switch on a stronger one.
pub(crate) async fn ensure_holds(
    state: &AppState,
    caller: &Caller,
    token: &Token,
    cat: &[keyward_core::CatalogueEntry],
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

fn narrowing(
    items: Option<&[String]>,
    cat: &[keyward_core::CatalogueEntry],
) -> Result<Option<Vec<PermissionPattern>>, ApiError> {
    let Some(items) = items else { return Ok(None) };
    let patterns = parse_patterns(items, "permissions")?;
    check_against_catalogue(&patterns, cat, "permissions")?;
    Ok(Some(patterns))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    owner_id: Option<UserId>,
    role_id: Option<RoleId>,
    status: Option<ShownStatus>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<TokenView>>, ApiError> {
    caller.require("keyward.tokens:read")?;
    let (page, size) = page_request(q.limit, q.cursor.as_deref())?;
    let owner_id = match (caller.only_owner(), q.owner_id) {
        (Some(only), Some(asked)) if only != asked => {
            return Ok(Json(Page {
                items: vec![],
                next_cursor: None,
            }))
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
    Ok(Json(into_page(
        items,
        size,
        |t| Cursor {
            created_at: t.created_at,
            id: t.id.uuid(),
        },
        |t| TokenView::of(&t, now),
    )))
}

/// A token of the caller's workspace that the caller may see.
pub(crate) async fn visible(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<Token, ApiError> {
    let id: TokenId = path_id(raw_id)?;
    let token = state.store.token(caller.workspace_id(), id).await?;
    token
        .filter(|t| caller.only_owner().is_none_or(|only| only == t.owner_id))
        .ok_or(ApiError::NotFound("token"))
}

/// [`visible`], with the row version a change of it must name.
pub(crate) async fn visible_versioned(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<Versioned<Token>, ApiError> {
    let id: TokenId = path_id(raw_id)?;
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

/// Refuses (403) `token`, as it would be stored, if it is less restricted than the caller.
async fn ensure_within_caller(
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
    let bound = limits::of_caller(caller);
    limits::ensure_token_within(&bound, token, role.as_ref(), &ws.settings)
}

/// Whether `token` has been replaced by rotation.
async fn is_replaced(state: &AppState, token: &Token) -> Result<bool, ApiError> {
    let family = state
        .store
        .token_family(token.workspace_id, token.family())
        .await?;
    Ok(family.iter().any(|t| t.rotated_from == Some(token.id)))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    caller.require("keyward.tokens:read")?;
    let token = visible(&state, &caller, &id).await?;
    super::usage::with_last_use(&state, TokenView::of(&token, state.now())).await
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<TokenPatch>,
) -> Result<Json<TokenView>, ApiError> {
    caller.require("keyward.tokens:write")?;
    let token = retrying(|| update_once(&state, &caller, &id, &patch)).await?;
    state.cache.invalidate_token(token.id);
    Ok(Json(TokenView::of(&token, state.now())))
}

/// One read-check-write of a PATCH, on condition that the token did not change meanwhile.
async fn update_once(
    state: &AppState,
    caller: &Caller,
    id: &str,
    patch: &TokenPatch,
) -> Result<Token, ApiError> {
    let mut current = visible_versioned(state, caller, id).await?;
    let token = &mut current.value;
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
    if let Some(limit) = patch.rate_limit_per_minute {
        token.rate_limit_per_minute = limit
            .map(|n| validate::rate_limit(n, "rate_limit_per_minute"))
            .transpose()?;
    }
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
    let audit = audit.after(&TokenView::of(token, now));
    state.store.update_token(&current, &audit).await?;
    Ok(current.value)
}

async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    caller.require("keyward.tokens:write")?;
    let token = retrying(|| activate_once(&state, &caller, &id)).await?;
    state.cache.invalidate_token(token.id);
    Ok(Json(TokenView::of(&token, state.now())))
}

/// One read-check-write of an activation.
async fn activate_once(state: &AppState, caller: &Caller, id: &str) -> Result<Token, ApiError> {
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

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    caller.require("keyward.tokens:revoke")?;
    let mut token = visible(&state, &caller, &id).await?;
    revoke_as(&state, &caller, &mut token).await?;
    Ok(Json(TokenView::of(&token, state.now())))
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
    tracing::info!(token = %token.id, by = %caller.token.token_id, "token revoked");
    crate::events::emit(state, crate::events::EventType::TokenRevoked, token).await?;
    Ok(true)
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require("keyward.tokens:delete")?;
    let token = visible(&state, &caller, &id).await?;
    let audit = caller
        .audit(&state, "token.deleted", "token", token.id.to_string())
        .before(&TokenView::of(&token, state.now()));
    state
        .store
        .delete_token(token.workspace_id, token.id, &audit)
        .await?;
    state.cache.invalidate_token(token.id);
    tracing::info!(token = %token.id, by = %caller.token.token_id, "token deleted");
    Ok(StatusCode::NO_CONTENT)
}
