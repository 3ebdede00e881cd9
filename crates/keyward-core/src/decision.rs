//! The access decision (DESIGN §3) over a token's compiled, cacheable form.
//!
//! Steps 1 (format) and 2 (lookup) happen before a [`CompiledToken`] exists: the server checks
//! the secret with [`crate::TokenSecret::check`] and looks the hash up. [`decide_access`] runs
//! steps 3–6 (status, validity window, internal-only, IP allowlists); step 7, the rate limit,
//! keeps state, so the caller runs it with [`crate::ratelimit`] unless [`rate_limit_exempt`]
//! says the source is internal; [`decide_permissions`] runs steps 8–9. [`decide`] is the whole
//! order without a rate limit. The first failure decides.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ip::IpAllowlist;
use crate::model::{
    effective_rate_limit, RateLimitPer, Role, RoleKind, Scope, Token, TokenStatus, User, UserKind,
    Workspace,
};
use crate::permission::{any_grants, CatalogueEntry};
use crate::{Permission, PermissionPattern, RoleId, TokenId, UserId, WorkspaceId};

/// The stable machine code of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Every code, in the order above.
    pub const ALL: [Code; 12] = [
        Code::Valid,
        Code::Malformed,
        Code::NotFound,
        Code::Pending,
        Code::Revoked,
        Code::OwnerDisabled,
        Code::Expired,
        Code::NotYetValid,
        Code::InternalOnly,
        Code::IpNotAllowed,
        Code::RateLimited,
        Code::InsufficientPermissions,
    ];

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
    /// Whether the workspace is the operator's (its verifier credentials may verify any
    /// workspace's tokens).
    pub operator: bool,
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
    /// Metadata returned on success, as compact JSON text: a parsed object costs a B-tree
    /// node (over 600 bytes) per cached token; [`CompiledToken::metadata_value`] parses it.
    pub metadata: Box<str>,
    /// The effective `api` role, if any: the token's own or its owner's. A `human` role never
    /// lands here, so a token can never act with one. Shared: a cache may hand the tokens of
    /// one role the same compiled role.
    pub role: Option<Arc<CompiledRole>>,
    /// The token's narrowing.
    pub narrowing: Option<Vec<PermissionPattern>>,
    /// The catalogue permissions the token holds (role ∩ narrowing), for the principal
    /// (shared like the role).
    pub effective: Arc<[Permission]>,
    /// Usable only from internal networks.
    pub internal_only: bool,
    /// The token's own allowlist.
    pub token_ips: IpAllowlist,
    /// The role's allowlist.
    pub role_ips: IpAllowlist,
    /// The workspace's allowlist.
    pub workspace_ips: IpAllowlist,
    /// The workspace's internal networks.
    pub internal_networks: IpAllowlist,
    /// Requests per minute: the token's override, else the role's, else the workspace default.
    pub rate_limit_per_minute: u32,
    /// Which budget step 7 spends: the token's own, or its owner user's (shared by all of
    /// the owner's tokens whose limit is per user). Set by the same level as the limit.
    pub rate_limit_per: RateLimitPer,
    /// Whether each verified request is kept as a usage record of its own.
    pub request_log: bool,
}

/// Which allowlist refused a source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IpLevel {
    /// The token's own list.
    Token,
    /// The role's list.
    Role,
    /// The workspace's list.
    Workspace,
}

impl IpLevel {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            IpLevel::Token => "token",
            IpLevel::Role => "role",
            IpLevel::Workspace => "workspace",
        }
    }
}

/// Why steps 3–6 refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The code.
    pub code: Code,
    /// For `IP_NOT_ALLOWED`: which list refused.
    pub ip_level: Option<IpLevel>,
}

impl From<Code> for Refusal {
    fn from(code: Code) -> Self {
        Self {
            code,
            ip_level: None,
        }
    }
}

impl CompiledToken {
    /// Resolves a token against its workspace, its owner, the role it acts with (the token's
    /// own, else the owner's) and the workspace catalogue.
    pub fn compile(
        token: &Token,
        workspace: &Workspace,
        owner: &User,
        role: Option<&Role>,
        catalogue: &[CatalogueEntry],
    ) -> Self {
        let role = role.filter(|r| r.kind == RoleKind::Api && r.workspace_id == token.workspace_id);
        let (rate_limit_per_minute, rate_limit_per) =
            effective_rate_limit(token, role, &workspace.settings);
        let role_ips = role.map(|r| r.ip_allowlist.clone()).unwrap_or_default();
        let role = role.map(|r| {
            Arc::new(CompiledRole {
                id: r.id,
                name: r.name.clone(),
                scope: r.scope,
                permissions: r.permissions.clone(),
            })
        });
        let mut compiled = Self {
            token_id: token.id,
            workspace_id: token.workspace_id,
            operator: workspace.operator,
            name: token.name.clone(),
            owner_id: owner.id,
            owner_kind: owner.kind,
            owner_disabled: owner.disabled,
            status: token.status,
            not_before: token.not_before,
            expires_at: token.expires_at,
            metadata: token.metadata.to_string().into_boxed_str(),
            role,
            narrowing: token.permissions.clone(),
            effective: Arc::from([]),
            internal_only: token.internal_only,
            token_ips: token.ip_allowlist.clone(),
            role_ips,
            workspace_ips: workspace.settings.ip_allowlist.clone(),
            internal_networks: workspace.settings.internal_networks.clone(),
            rate_limit_per_minute,
            rate_limit_per,
            request_log: token.request_log,
        };
        let mut effective: Vec<Permission> = catalogue
            .iter()
            .map(|e| &e.permission)
            .filter(|p| compiled.grants(p))
            .cloned()
            .collect();
        effective.sort();
        compiled.effective = effective.into();
        compiled
    }

    /// Whether the token holds `p`: its role grants it, and its narrowing (if any) does too.
    pub fn grants(&self, p: &Permission) -> bool {
        let Some(role) = &self.role else {
            return false;
        };
        any_grants(&role.permissions, p) && self.narrowing.as_ref().is_none_or(|n| any_grants(n, p))
    }

    /// The metadata as a JSON value (`null` if the text were not JSON, which
    /// [`CompiledToken::compile`] never makes).
    pub fn metadata_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.metadata).unwrap_or_default()
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
    /// The client's address, when known. With no address, any allowlist refuses.
    pub ip: Option<IpAddr>,
    /// Internal networks configured for the whole server (added to the workspace's).
    pub server_internal: &'a IpAllowlist,
}

/// The whole decision without a rate limit: steps 3–6, then 8–9.
pub fn decide(token: &CompiledToken, req: &DecisionRequest<'_>) -> Code {
    match decide_access(token, req) {
        Err(refusal) => refusal.code,
        Ok(()) => decide_permissions(token, req.required),
    }
}

/// Steps 3–6: status, validity window, internal-only, IP allowlists.
pub fn decide_access(token: &CompiledToken, req: &DecisionRequest<'_>) -> Result<(), Refusal> {
    check_status(token)?;
    check_window(token, req.now)?;
    if token.internal_only && !is_internal(token, req) {
        return Err(Code::InternalOnly.into());
    }
    check_ips(token, req.ip)
}

/// Whether step 7 is skipped: requests from internal networks are not rate limited.
pub fn rate_limit_exempt(token: &CompiledToken, req: &DecisionRequest<'_>) -> bool {
    is_internal(token, req)
}

/// Steps 8–9: every required permission must be granted.
pub fn decide_permissions(token: &CompiledToken, required: &[Permission]) -> Code {
    match check_permissions(token, required) {
        Ok(()) => Code::Valid,
        Err(code) => code,
    }
}

/// The required permissions `token` lacks, in request order.
pub fn missing_permissions<'a>(
    token: &CompiledToken,
    required: &'a [Permission],
) -> Vec<&'a Permission> {
    required.iter().filter(|p| !token.grants(p)).collect()
}

fn is_internal(token: &CompiledToken, req: &DecisionRequest<'_>) -> bool {
    req.ip
        .is_some_and(|ip| token.internal_networks.contains(ip) || req.server_internal.contains(ip))
}

/// Each list that is set must allow the source; the narrowest (the token's) is asked first.
fn check_ips(token: &CompiledToken, ip: Option<IpAddr>) -> Result<(), Refusal> {
    let lists = [
        (IpLevel::Token, &token.token_ips),
        (IpLevel::Role, &token.role_ips),
        (IpLevel::Workspace, &token.workspace_ips),
    ];
    for (level, list) in lists {
        if !list.is_empty() && !ip.is_some_and(|ip| list.contains(ip)) {
            return Err(Refusal {
                code: Code::IpNotAllowed,
                ip_level: Some(level),
            });
        }
    }
    Ok(())
}

fn check_status(token: &CompiledToken) -> Result<(), Refusal> {
    match token.status {
        TokenStatus::Pending => Err(Code::Pending.into()),
        TokenStatus::Revoked => Err(Code::Revoked.into()),
        TokenStatus::Active if token.owner_disabled => Err(Code::OwnerDisabled.into()),
        TokenStatus::Active => Ok(()),
    }
}

fn check_window(token: &CompiledToken, now: DateTime<Utc>) -> Result<(), Refusal> {
    if token.expires_at.is_some_and(|e| now >= e) {
        return Err(Code::Expired.into());
    }
    if token.not_before.is_some_and(|nb| now < nb) {
        return Err(Code::NotYetValid.into());
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
