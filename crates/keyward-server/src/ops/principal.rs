//! The acting principal of an operation: who asks, from where, holding what.
//!
//! A [`Caller`] is either a keyward token that passed the decision (the admin API's extractor
//! in [`crate::extract`] builds it with [`Caller::of_token`]) or a person signed in to the
//! dashboard (the dashboard builds it with [`Caller::person`]). Operations read it only through
//! the methods here, so both are authorized, checked for escalation, audited and logged the
//! same way; only the token behind a token caller differs, and the verify API, which needs
//! that token on its fast path, does not go through a `Caller` at all.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::delegation::{effective_ips, Grants, Limits};
use keyward_core::model::{RoleKind, Scope, User, Workspace};
use keyward_core::permission::any_grants;
use keyward_core::{
    CatalogueEntry, Code, Permission, PermissionPattern, Role, TokenId, UserId, WorkspaceId,
};

use crate::cache::CachedToken;
use crate::denials::{Denial, Denials};
use crate::error::ApiError;
use crate::state::AppState;

/// Who is acting: a token of the admin API, or a person of the dashboard.
pub struct Caller {
    principal: Principal,
    /// The client address the request came from (for a person, the session's).
    pub ip: Option<IpAddr>,
    /// Where a token's refused permission is counted for the audit trail.
    denials: Arc<Denials>,
}

enum Principal {
    /// A token that passed the decision, including the workspace's, role's and token's
    /// allowlists and the rate limit.
    Token(Arc<CachedToken>),
    /// A person, with what their `human` role gives them.
    Person(Person),
}

struct Person {
    user_id: UserId,
    workspace_id: WorkspaceId,
    scope: Scope,
    /// The human role's patterns; empty when the person holds nothing.
    permissions: Vec<PermissionPattern>,
    /// The catalogue permissions those patterns grant.
    effective: Vec<Permission>,
    limits: Limits,
}

/// The id a log line names the caller by: its token, or the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerId {
    /// A token.
    Token(TokenId),
    /// A person.
    Person(UserId),
}

impl fmt::Display for CallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallerId::Token(id) => id.fmt(f),
            CallerId::Person(id) => id.fmt(f),
        }
    }
}

impl Caller {
    /// A token caller: `token` passed the decision for a request from `ip`.
    pub fn of_token(token: Arc<CachedToken>, ip: Option<IpAddr>, denials: Arc<Denials>) -> Self {
        Self {
            principal: Principal::Token(token),
            ip,
            denials,
        }
    }

    /// A person signed in from `ip`. What they may do is their `human` role's permissions and
    /// scope: a role of kind `api` (that is for tokens) or of another workspace, no role, a
    /// disabled user or a user of another workspace grant nothing (scope `user`). What they
    /// may hand out is bounded like a token's: never internal-only, from the addresses the
    /// role's and the workspace's allowlists both allow, any rate limit the workspace's rules
    /// accept (a person has none of their own), no expiry.
    pub fn person(
        user: &User,
        role: Option<&Role>,
        workspace: &Workspace,
        catalogue: &[CatalogueEntry],
        ip: Option<IpAddr>,
        denials: Arc<Denials>,
    ) -> Self {
        let counts = user.workspace_id == workspace.id && !user.disabled;
        let role = role.filter(|r| {
            counts
                && r.kind == RoleKind::Human
                && r.workspace_id == workspace.id
                && user.role_id == Some(r.id)
        });
        let permissions = role.map(|r| r.permissions.clone()).unwrap_or_default();
        let effective = catalogue
            .iter()
            .filter(|e| any_grants(&permissions, &e.permission))
            .map(|e| e.permission.clone())
            .collect();
        let mut lists = vec![&workspace.settings.ip_allowlist];
        lists.extend(role.map(|r| &r.ip_allowlist));
        let limits = Limits {
            internal_only: false,
            allowed_ips: effective_ips(&lists),
            rate_limit_per_minute: u32::MAX,
            // A person's own requests are not rate limited: they may hand out either budget.
            rate_limit_per: keyward_core::RateLimitPer::Token,
            expires_at: None,
        };
        Self {
            principal: Principal::Person(Person {
                user_id: user.id,
                workspace_id: workspace.id,
                scope: role.map_or(Scope::User, |r| r.scope),
                permissions,
                effective,
                limits,
            }),
            ip,
            denials,
        }
    }

    /// The token behind a token caller.
    pub fn token(&self) -> Option<&Arc<CachedToken>> {
        match &self.principal {
            Principal::Token(t) => Some(t),
            Principal::Person(_) => None,
        }
    }

    /// The calling token's id; `None` for a person.
    pub fn token_id(&self) -> Option<TokenId> {
        self.token().map(|t| t.token_id)
    }

    /// The id log lines name the caller by.
    pub fn id(&self) -> CallerId {
        match &self.principal {
            Principal::Token(t) => CallerId::Token(t.token_id),
            Principal::Person(p) => CallerId::Person(p.user_id),
        }
    }

    /// The caller's workspace.
    pub fn workspace_id(&self) -> WorkspaceId {
        match &self.principal {
            Principal::Token(t) => t.workspace_id,
            Principal::Person(p) => p.workspace_id,
        }
    }

    /// The user the caller acts for: the token's owner, or the person.
    pub fn owner_id(&self) -> UserId {
        match &self.principal {
            Principal::Token(t) => t.owner_id,
            Principal::Person(p) => p.user_id,
        }
    }

    /// The caller's scope (`user` without a role: the narrower reading).
    pub fn scope(&self) -> Scope {
        match &self.principal {
            Principal::Token(t) => t.scope(),
            Principal::Person(p) => p.scope,
        }
    }

    /// Whether the caller may be used only from internal networks (never for a person).
    pub fn internal_only(&self) -> bool {
        match &self.principal {
            Principal::Token(t) => t.internal_only,
            Principal::Person(_) => false,
        }
    }

    /// The caller's own effective limits, which bound what it may hand out.
    pub fn limits(&self) -> Limits {
        match &self.principal {
            Principal::Token(t) => Limits::of_caller(&t.compiled),
            Principal::Person(p) => p.limits.clone(),
        }
    }

    /// The catalogue permissions the caller holds (for showing what it may do).
    pub fn effective_permissions(&self) -> &[Permission] {
        match &self.principal {
            Principal::Token(t) => &t.effective,
            Principal::Person(p) => &p.effective,
        }
    }

    /// Fails with 403 unless the caller holds `permission`. A token's refusal is counted as a
    /// security denial of that token (the tally is about tokens); a person's is only refused.
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        let p = Permission::parse(permission).map_err(ApiError::Invalid)?;
        if Grants::grants(self, &p) {
            return Ok(());
        }
        if let Principal::Token(t) = &self.principal {
            self.denials.record(Denial {
                workspace: t.workspace_id,
                token: t.token_id,
                owner: t.owner_id,
                code: Code::InsufficientPermissions,
                refused_by: None,
                ip: self.ip,
                missing_permission: Some(p.as_str()),
            });
        }
        Err(ApiError::MissingPermission(permission.to_owned()))
    }

    /// Whether the caller holds `permission` (for a front end deciding what to show); refuses
    /// nothing and counts nothing.
    pub fn holds(&self, permission: &str) -> bool {
        Permission::parse(permission).is_ok_and(|p| Grants::grants(self, &p))
    }

    /// Fails with 403 unless the caller's role has workspace scope.
    pub fn require_workspace_scope(&self) -> Result<(), ApiError> {
        match self.scope() {
            Scope::Workspace => Ok(()),
            Scope::User => Err(ApiError::forbidden(
                "WORKSPACE_SCOPE_REQUIRED",
                "this action needs a token whose role has workspace scope",
            )),
        }
    }

    /// Who the caller is, for the audit trail: its token acting for its owner, or the person.
    pub fn actor(&self) -> Actor {
        match &self.principal {
            Principal::Token(t) => Actor::token(t.token_id, t.owner_id),
            Principal::Person(p) => Actor::person(p.user_id),
        }
    }

    /// The audit event of a change this caller makes in its workspace, from its address.
    pub fn audit(
        &self,
        state: &AppState,
        action: &str,
        target_kind: &str,
        target_id: impl Into<String>,
    ) -> AuditDraft {
        AuditDraft::new(
            self.workspace_id(),
            state.now(),
            self.actor(),
            action,
            target_kind,
            target_id,
        )
        .ip(self.ip)
    }

    /// For user-scoped callers, the only owner whose objects they may see.
    pub fn only_owner(&self) -> Option<UserId> {
        (self.scope() == Scope::User).then_some(self.owner_id())
    }
}

/// What the caller holds, for [`keyward_core::delegation::first_escalation`]: a token's role ∩
/// narrowing, or the person's role.
impl Grants for Caller {
    fn grants(&self, p: &Permission) -> bool {
        match &self.principal {
            Principal::Token(t) => t.compiled.grants(p),
            Principal::Person(person) => person.permissions.as_slice().grants(p),
        }
    }

    fn covers(&self, p: &PermissionPattern) -> bool {
        match &self.principal {
            Principal::Token(t) => Grants::covers(&t.compiled, p),
            Principal::Person(person) => person.permissions.as_slice().covers(p),
        }
    }
}
