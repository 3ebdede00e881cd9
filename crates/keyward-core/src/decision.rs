//! The access decision (DESIGN §3) over a token's compiled, cacheable form.
//!
//! Steps 1 (format) and 2 (lookup) happen before a [`CompiledToken`] exists: the server parses
//! the secret with [`crate::TokenSecret::parse`] and looks the hash up. [`decide`] runs the rest
//! in order and the first failure decides. Steps 5–7 (internal-only, IP allowlists, rate limit)
//! slot in between the validity window and the permission check: each is one more function of
//! the same shape, reading the request and the compiled token.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Role, RoleKind, Scope, Token, TokenStatus, User, UserKind};
use crate::permission::{any_grants, CatalogueEntry};
use crate::{Permission, PermissionPattern, RoleId, TokenId, UserId, WorkspaceId};

/// The stable machine code of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    /// Allowed.
    Valid,
    /// Wrong prefix, length or checksum: refused without touching storage.
    Malformed,
    /// No token has this secret.
    NotFound,
    /// Created but not activated.
    Pending,
    /// Revoked.
    Revoked,
    /// The owning user is disabled.
    OwnerDisabled,
    /// Past `expires_at`.
    Expired,
    /// Before `not_before`.
    NotYetValid,
    /// An internal-only token used from outside the internal networks.
    InternalOnly,
    /// The source IP is not on an allowlist that applies.
    IpNotAllowed,
    /// Too many requests.
    RateLimited,
    /// A required permission is not granted.
    InsufficientPermissions,
}

impl Code {
    /// The wire name, e.g. `NOT_YET_VALID`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Code::Valid => "VALID",
            Code::Malformed => "MALFORMED",
            Code::NotFound => "NOT_FOUND",
            Code::Pending => "PENDING",
            Code::Revoked => "REVOKED",
            Code::OwnerDisabled => "OWNER_DISABLED",
            Code::Expired => "EXPIRED",
            Code::NotYetValid => "NOT_YET_VALID",
            Code::InternalOnly => "INTERNAL_ONLY",
            Code::IpNotAllowed => "IP_NOT_ALLOWED",
            Code::RateLimited => "RATE_LIMITED",
            Code::InsufficientPermissions => "INSUFFICIENT_PERMISSIONS",
        }
    }

    /// A short human explanation, safe to show to the caller.
    pub fn message(&self) -> &'static str {
        match self {
            Code::Valid => "token is valid",
            Code::Malformed => "token is malformed",
            Code::NotFound => "token does not exist",
            Code::Pending => "token is pending activation",
            Code::Revoked => "token has been revoked",
            Code::OwnerDisabled => "the token's owner is disabled",
            Code::Expired => "token has expired",
            Code::NotYetValid => "token is not valid yet",
            Code::InternalOnly => "token is only available for internal integration",
            Code::IpNotAllowed => "source IP address is not allowed",
            Code::RateLimited => "rate limit exceeded",
            Code::InsufficientPermissions => "token lacks a required permission",
        }
    }

    /// Whether the code means the token itself is unusable (RFC 6750 `invalid_token`).
    pub fn is_invalid_token(&self) -> bool {
        matches!(
            self,
            Code::Malformed
                | Code::NotFound
                | Code::Pending
                | Code::Revoked
                | Code::OwnerDisabled
                | Code::Expired
                | Code::NotYetValid
        )
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role a token acts with, as the decision needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRole {
    /// Id.
    pub id: RoleId,
    /// Name.
    pub name: String,
    /// Scope.
    pub scope: Scope,
    /// Granted patterns.
    pub permissions: Vec<PermissionPattern>,
}

/// Everything the decision needs about one token, resolved once and cached: the token, its
/// owner's state, its effective role, its narrowing and the effective permissions.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledToken {
    /// Token id.
    pub token_id: TokenId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Token name.
    pub name: String,
    /// Owner.
    pub owner_id: UserId,
    /// Owner's kind.
    pub owner_kind: UserKind,
    /// Owner disabled.
    pub owner_disabled: bool,
    /// Stored status.
    pub status: TokenStatus,
    /// Validity window start.
    pub not_before: Option<DateTime<Utc>>,
    /// Validity window end.
    pub expires_at: Option<DateTime<Utc>>,
    /// Metadata returned on success.
    pub metadata: serde_json::Value,
    /// The effective `api` role, if any: the token's own or its owner's. A `human` role never
    /// lands here, so a token can never act with one.
    pub role: Option<CompiledRole>,
    /// The token's narrowing.
    pub narrowing: Option<Vec<PermissionPattern>>,
    /// The catalogue permissions the token holds (role ∩ narrowing), for the principal.
    pub effective: Vec<Permission>,
}

impl CompiledToken {
    /// Resolves a token against its owner, the role it acts with (the token's own, else the
    /// owner's) and the workspace catalogue.
    pub fn compile(
        token: &Token,
        owner: &User,
        role: Option<&Role>,
        catalogue: &[CatalogueEntry],
    ) -> Self {
        let role = role
            .filter(|r| r.kind == RoleKind::Api && r.workspace_id == token.workspace_id)
            .map(|r| CompiledRole {
                id: r.id,
                name: r.name.clone(),
                scope: r.scope,
                permissions: r.permissions.clone(),
            });
        let mut compiled = Self {
            token_id: token.id,
            workspace_id: token.workspace_id,
            name: token.name.clone(),
            owner_id: owner.id,
            owner_kind: owner.kind,
            owner_disabled: owner.disabled,
            status: token.status,
            not_before: token.not_before,
            expires_at: token.expires_at,
            metadata: token.metadata.clone(),
            role,
            narrowing: token.permissions.clone(),
            effective: Vec::new(),
        };
        let mut effective: Vec<Permission> = catalogue
            .iter()
            .map(|e| &e.permission)
            .filter(|p| compiled.grants(p))
            .cloned()
            .collect();
        effective.sort();
        compiled.effective = effective;
        compiled
    }

    /// Whether the token holds `p`: its role grants it, and its narrowing (if any) does too.
    pub fn grants(&self, p: &Permission) -> bool {
        let Some(role) = &self.role else {
            return false;
        };
        any_grants(&role.permissions, p) && self.narrowing.as_ref().is_none_or(|n| any_grants(n, p))
    }

    /// The token's scope (`user` when it has no role: the narrower reading).
    pub fn scope(&self) -> Scope {
        self.role.as_ref().map_or(Scope::User, |r| r.scope)
    }
}

/// One verification request, as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct DecisionRequest<'a> {
    /// The current time, from the injected clock.
    pub now: DateTime<Utc>,
    /// Permissions the request needs; all must be granted.
    pub required: &'a [Permission],
}

/// Steps 3–9 of the decision for a token found in storage (or the cache).
pub fn decide(token: &CompiledToken, req: &DecisionRequest<'_>) -> Code {
    if let Err(code) = check_status(token) {
        return code;
    }
    if let Err(code) = check_window(token, req.now) {
        return code;
    }
    // Steps 5–7 (internal-only, IP allowlists, rate limit) go here.
    if let Err(code) = check_permissions(token, req.required) {
        return code;
    }
    Code::Valid
}

/// The required permissions `token` lacks, in request order.
pub fn missing_permissions<'a>(
    token: &CompiledToken,
    required: &'a [Permission],
) -> Vec<&'a Permission> {
    required.iter().filter(|p| !token.grants(p)).collect()
}

fn check_status(token: &CompiledToken) -> Result<(), Code> {
    match token.status {
        TokenStatus::Pending => Err(Code::Pending),
        TokenStatus::Revoked => Err(Code::Revoked),
        TokenStatus::Active if token.owner_disabled => Err(Code::OwnerDisabled),
        TokenStatus::Active => Ok(()),
    }
}

fn check_window(token: &CompiledToken, now: DateTime<Utc>) -> Result<(), Code> {
    if token.expires_at.is_some_and(|e| now >= e) {
        return Err(Code::Expired);
    }
    if token.not_before.is_some_and(|nb| now < nb) {
        return Err(Code::NotYetValid);
    }
    Ok(())
}

fn check_permissions(token: &CompiledToken, required: &[Permission]) -> Result<(), Code> {
    if required.iter().all(|p| token.grants(p)) {
        Ok(())
    } else {
        Err(Code::InsufficientPermissions)
    }
}

#[cfg(test)]
mod tests;
