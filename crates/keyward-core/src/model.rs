//! The domain's records: workspaces, users, roles and tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ip::IpAllowlist;
use crate::{PermissionPattern, RoleId, TokenHash, TokenId, UserId, WorkspaceId};

/// Default rate limit of a workspace, in requests per minute.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 150;
/// Default days before expiry at which a warning is sent.
pub const DEFAULT_EXPIRY_WARNING_DAYS: u32 = 7;
/// Hours a change request waits for approval unless the workspace says otherwise.
pub const DEFAULT_APPROVAL_EXPIRY_HOURS: u32 = 72;
/// Default token prefix.
pub const DEFAULT_TOKEN_PREFIX: &str = "kw";

/// What a rate limit counts: each token's requests on their own, or the requests of all the
/// tokens of one owner user together (one budget shared by an integration's tokens, as in
/// "150 requests per minute per user").
///
/// Each level that can set a limit (the workspace default, the role, the token) sets what it
/// counts with it: the level that supplies a token's effective limit also supplies what that
/// limit counts, and a level without a limit sets neither (so `per = "user"` needs a limit at
/// the same level).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitPer {
    /// Every token has a budget of its own (the default).
    #[default]
    Token,
    /// All the tokens of one owner user share one budget.
    User,
}

impl RateLimitPer {
    /// The wire and stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RateLimitPer::Token => "token",
            RateLimitPer::User => "user",
        }
    }

    /// Parses the wire and stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "token" => Some(RateLimitPer::Token),
            "user" => Some(RateLimitPer::User),
            _ => None,
        }
    }
}

impl std::fmt::Display for RateLimitPer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant. Everything else belongs to exactly one workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workspace {
    /// Id.
    pub id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// The operator's workspace may create and list other workspaces.
    pub operator: bool,
    /// Security and token settings.
    pub settings: WorkspaceSettings,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A workspace's settings. Missing fields read as their defaults, so stored settings written by
/// an older version stay readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct WorkspaceSettings {
    /// Prefix of new tokens' secrets (`kw` → `kw_…`).
    pub token_prefix: String,
    /// Requests per minute a token may make unless its role or itself says otherwise.
    pub default_rate_limit_per_minute: u32,
    /// What the default limit counts: each token (`token`, the default) or each owner user's
    /// tokens together (`user`).
    pub default_rate_limit_per: RateLimitPer,
    /// Longest lifetime a new token may have, in days; `None` for no maximum.
    pub token_max_lifetime_days: Option<u32>,
    /// Days before expiry at which `token.expiring` is sent.
    pub expiry_warning_days: u32,
    /// Human users must use two-factor authentication.
    pub require_2fa: bool,
    /// Security changes (allowlists, internal networks, weakening these settings) wait for
    /// another person's approval as change requests. Also read as `require_ip_approval`, its
    /// earlier name.
    #[serde(alias = "require_ip_approval")]
    pub require_approval: bool,
    /// How many people (other than the requester) must approve a change request, 1–5.
    pub approvals_required: u32,
    /// Hours a change request waits for its approvals before it expires, 1–720.
    pub approval_expiry_hours: u32,
    /// Addresses every API call of the workspace must come from; empty restricts nothing.
    pub ip_allowlist: IpAllowlist,
    /// The workspace's internal networks: where `internal_only` tokens work, and whose
    /// requests are exempt from rate limits.
    pub internal_networks: IpAllowlist,
}

impl WorkspaceSettings {
    /// The default limit with what it counts.
    pub fn default_rate_limit(&self) -> (u32, RateLimitPer) {
        (
            self.default_rate_limit_per_minute,
            self.default_rate_limit_per,
        )
    }
}

/// A token's effective rate limit and what it counts: the token's own limit, else its role's,
/// else the workspace default, each with the `per` of the level that set it.
pub fn effective_rate_limit(
    token: &Token,
    role: Option<&Role>,
    settings: &WorkspaceSettings,
) -> (u32, RateLimitPer) {
    token
        .rate_limit()
        .or(role.and_then(Role::rate_limit))
        .unwrap_or(settings.default_rate_limit())
}

impl Default for WorkspaceSettings {
    fn default() -> Self {
        Self {
            token_prefix: DEFAULT_TOKEN_PREFIX.to_owned(),
            default_rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            default_rate_limit_per: RateLimitPer::Token,
            token_max_lifetime_days: None,
            expiry_warning_days: DEFAULT_EXPIRY_WARNING_DAYS,
            require_2fa: false,
            require_approval: false,
            approvals_required: 1,
            approval_expiry_hours: DEFAULT_APPROVAL_EXPIRY_HOURS,
            ip_allowlist: IpAllowlist::default(),
            internal_networks: IpAllowlist::default(),
        }
    }
}

/// Whether a user is a person or an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    /// An employee: logs into the dashboard.
    Human,
    /// An integration user: never logs in, exists to own tokens.
    Service,
}

/// A user of a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Human or service.
    pub kind: UserKind,
    /// Display name.
    pub name: String,
    /// Contact address, unique in the workspace when set.
    pub email: Option<String>,
    /// The user's role: a `human` role for humans, an `api` role for service users.
    pub role_id: Option<RoleId>,
    /// A disabled user's tokens stop working at once (and work again on re-enabling).
    pub disabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Who a role is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleKind {
    /// For people using the dashboard.
    Human,
    /// For tokens and service users.
    Api,
}

/// How far a role's permissions reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Only what the owner may see personally ("agent").
    User,
    /// Account-wide ("admin").
    Workspace,
}

impl Scope {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Workspace => "workspace",
        }
    }
}

/// A role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Role {
    /// Id.
    pub id: RoleId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Name, unique in the workspace.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Human or api.
    pub kind: RoleKind,
    /// User or workspace scope.
    pub scope: Scope,
    /// Granted permission patterns.
    pub permissions: Vec<PermissionPattern>,
    /// Addresses every token acting with this role must come from; empty restricts nothing.
    #[serde(default)]
    pub ip_allowlist: IpAllowlist,
    /// Requests per minute for tokens acting with this role (overrides the workspace default).
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
    /// What the role's limit counts (`token` unless the role sets a limit per `user`).
    #[serde(default)]
    pub rate_limit_per: RateLimitPer,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Role {
    /// The role's own limit with what it counts; `None` when it inherits the workspace's.
    pub fn rate_limit(&self) -> Option<(u32, RateLimitPer)> {
        self.rate_limit_per_minute.map(|l| (l, self.rate_limit_per))
    }
}

/// A token's stored status. `expired` is not stored: it follows from `expires_at` and the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// Created but not yet usable.
    Pending,
    /// Usable.
    Active,
    /// Permanently refused.
    Revoked,
}

impl TokenStatus {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenStatus::Pending => "pending",
            TokenStatus::Active => "active",
            TokenStatus::Revoked => "revoked",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(TokenStatus::Pending),
            "active" => Some(TokenStatus::Active),
            "revoked" => Some(TokenStatus::Revoked),
            _ => None,
        }
    }
}

/// A token as stored: never the secret, only its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Id.
    pub id: TokenId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// The user the token acts for.
    pub owner_id: UserId,
    /// The token's own `api` role; `None` to inherit the owner's.
    pub role_id: Option<RoleId>,
    /// Further narrowing: effective = role ∩ narrowing. `None` for no narrowing.
    pub permissions: Option<Vec<PermissionPattern>>,
    /// Display name.
    pub name: String,
    /// Free-form JSON object returned with every successful verification.
    pub metadata: serde_json::Value,
    /// Stored status.
    pub status: TokenStatus,
    /// Hash of the secret.
    pub hash: TokenHash,
    /// The first characters of the secret, for display.
    pub start: String,
    /// Not usable before this instant.
    pub not_before: Option<DateTime<Utc>>,
    /// Not usable from this instant on.
    pub expires_at: Option<DateTime<Utc>>,
    /// Addresses the token must be used from; empty restricts nothing.
    pub ip_allowlist: IpAllowlist,
    /// Usable only from the workspace's (or the server's) internal networks.
    pub internal_only: bool,
    /// Requests per minute (overrides the role's and the workspace's).
    pub rate_limit_per_minute: Option<u32>,
    /// What the token's own limit counts (`token` unless it sets a limit per `user`).
    pub rate_limit_per: RateLimitPer,
    /// Whether each of the token's verified requests is kept as a record of its own (a
    /// per-request log, for a token under investigation) instead of being counted per minute.
    pub request_log: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The first token of its rotation family; `None` when it is the first itself.
    pub family_id: Option<TokenId>,
    /// The token it replaced by rotation, if any.
    pub rotated_from: Option<TokenId>,
    /// Who made it: the user whose credential created it or, for a rotation's new token,
    /// rotated it (whoever made a token knows its secret). `None` for tokens made before
    /// keyward recorded it.
    pub created_by: Option<UserId>,
}

impl Token {
    /// The token's own limit with what it counts; `None` when it inherits.
    pub fn rate_limit(&self) -> Option<(u32, RateLimitPer)> {
        self.rate_limit_per_minute.map(|l| (l, self.rate_limit_per))
    }

    /// Its rotation family: the id of the family's first token.
    pub fn family(&self) -> TokenId {
        self.family_id.unwrap_or(self.id)
    }
}

/// The status shown to people: the stored one, or `expired` once `expires_at` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShownStatus {
    /// Created but not yet usable.
    Pending,
    /// Usable (possibly not yet valid, see `not_before`).
    Active,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl Token {
    /// The status as of `now`.
    pub fn shown_status(&self, now: DateTime<Utc>) -> ShownStatus {
        match self.status {
            TokenStatus::Revoked => ShownStatus::Revoked,
            _ if self.expires_at.is_some_and(|e| e <= now) => ShownStatus::Expired,
            TokenStatus::Pending => ShownStatus::Pending,
            TokenStatus::Active => ShownStatus::Active,
        }
    }
}
