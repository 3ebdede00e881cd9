//! The JSON shapes of keyward's HTTP API, shared by the server and the typed client so the two
//! cannot drift apart. Requests take permissions as plain strings: the server parses them and
//! names the offending entry when one is wrong.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::decision::Code;
use crate::model::{
    RateLimitPer, Role, RoleKind, Scope, ShownStatus, Token, User, UserKind, Workspace,
};
use crate::{CatalogueEntry, Permission, PermissionPattern, RoleId, TokenId, UserId, WorkspaceId};

/// Deserialises a field that distinguishes "absent" (`None`) from "null" (`Some(None)`), so a
/// PATCH can clear a value. Use with `#[serde(default, deserialize_with = "nullable")]`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An IP allowlist as a request gives it: text as people type it (one entry per line, or
/// comma-separated) or a JSON array of entries. An empty text or array clears the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum IpListInput {
    /// `"10.0.0.0/8, 192.168.1.7\n2001:db8::/32"`
    Text(String),
    /// `["10.0.0.0/8", "192.168.1.7"]`
    Entries(Vec<String>),
}

impl IpListInput {
    /// Parses and canonicalises the list; a bad entry is refused naming it and `field`.
    pub fn parse(&self, field: &str) -> Result<crate::ip::IpAllowlist, crate::DomainError> {
        match self {
            IpListInput::Text(text) => crate::ip::IpAllowlist::parse_input(text, field),
            IpListInput::Entries(items) => crate::ip::IpAllowlist::from_entries(items, field),
        }
    }
}

/// Rate-limit state of a verified token (draft-ietf-httpapi-ratelimit-headers quantities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RateLimitState {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Seconds until the full quota is available again.
    pub reset: u64,
    /// Which budget the request spent: the token's own (`token`) or the one its owner user's
    /// tokens share (`user`). Absent for the brute-force guard's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<RateLimitPer>,
}

/// An RFC 9457 problem document; `code` is keyward's stable machine code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:keyward:problem:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// This occurrence, explained.
    pub detail: String,
    /// Stable machine code, e.g. `UNKNOWN_PERMISSION`.
    pub code: String,
    /// The offending input field, for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// The problem of `status` with keyward's stable `code`: its type is
    /// `urn:keyward:problem:<code in kebab case>`, `title` the status's reason phrase.
    pub fn new(status: u16, title: &str, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!(
                "urn:keyward:problem:{}",
                code.to_ascii_lowercase().replace('_', "-")
            ),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            code: code.to_owned(),
            field: None,
        }
    }
}

/// `POST /v1/verify` request. Fields borrow from the request body where they can, so the hot
/// path does not copy them; build one with owned or borrowed strings (`"…".into()`). Its
/// `Debug` leaves the secret out.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest<'a> {
    /// The presented secret.
    #[serde(borrow)]
    pub token: Cow<'a, str>,
    /// The client's IP address, as seen by the caller.
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Cow<'a, str>>,
    /// The request's HTTP method.
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<Cow<'a, str>>,
    /// The request's path.
    #[serde(default, borrow, deserialize_with = "borrowed_opt")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Cow<'a, str>>,
    /// Permissions the request needs; all must be granted.
    #[serde(default, borrow, deserialize_with = "borrowed_list")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<Cow<'a, str>>>,
}

/// A string borrowed from the input when it has no escapes. serde borrows a `Cow<str>` field
/// marked `borrow` itself, but not one inside an `Option` or a `Vec`: those it copies.
#[derive(Deserialize)]
#[serde(transparent)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

fn borrowed_opt<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

fn borrowed_list<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Cow<'a, str>>>, D::Error> {
    let list = Option::<Vec<Borrowed<'a>>>::deserialize(d)?;
    Ok(list.map(|l| l.into_iter().map(|b| b.0).collect()))
}

impl std::fmt::Debug for VerifyRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("token", &"<redacted>")
            .field("ip", &self.ip)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// The owner of a verified token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OwnerRef {
    /// User id.
    pub id: UserId,
    /// Human or service.
    pub kind: UserKind,
}

/// The role a verified token acts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleRef {
    /// Role id.
    pub id: RoleId,
    /// Role name.
    pub name: String,
}

/// `POST /v1/verify` answer. The principal fields are present when `valid`; `token_id` also when
/// the token exists but is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    /// Whether the request is allowed.
    pub valid: bool,
    /// The decision's stable code.
    pub code: Code,
    /// A short explanation.
    pub message: String,
    /// The token, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<TokenId>,
    /// Workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<WorkspaceId>,
    /// Token name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerRef>,
    /// Role acted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleRef>,
    /// `user` or `workspace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Effective permissions (catalogue permissions granted by role ∩ narrowing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<Permission>>,
    /// For `INSUFFICIENT_PERMISSIONS`: the required permissions that are not granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_permissions: Option<Vec<Permission>>,
    /// Token metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// For `IP_NOT_ALLOWED`: which allowlist refused (`token`, `role` or `workspace`); the
    /// lists themselves are never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_by: Option<crate::decision::IpLevel>,
    /// For `RATE_LIMITED`: seconds until a request would pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The token's rate-limit state after this request (absent when exempt or not reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitState>,
}

/// A page of a listing; pass `next_cursor` back as `cursor` for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Present when there are more items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Partial workspace settings: absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// New token prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_prefix: Option<String>,
    /// New default rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_rate_limit_per_minute: Option<u32>,
    /// What the default limit counts: `token` (each token) or `user` (each owner user's
    /// tokens together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_rate_limit_per: Option<RateLimitPer>,
    /// New maximum lifetime; `null` removes it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub token_max_lifetime_days: Option<Option<u32>>,
    /// New warning lead time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_warning_days: Option<u32>,
    /// Require 2FA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_2fa: Option<bool>,
    /// Require another person's approval of security changes (`require_ip_approval` is
    /// accepted as its earlier name).
    #[serde(
        default,
        alias = "require_ip_approval",
        skip_serializing_if = "Option::is_none"
    )]
    pub require_approval: Option<bool>,
    /// Approvals a change request needs (1–5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals_required: Option<u32>,
    /// Hours a change request waits before it expires (1–720).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_expiry_hours: Option<u32>,
    /// New workspace allowlist (applies to every API call); empty clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allowlist: Option<IpListInput>,
    /// New internal networks; empty clears them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_networks: Option<IpListInput>,
}

/// `PATCH /v1/workspace`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspacePatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Settings to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsPatch>,
    /// Why: kept with the change request when the change needs approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /v1/workspaces` (operator only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// Name.
    pub name: String,
    /// Settings that differ from the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsPatch>,
}

/// The answer to creating a workspace: it comes with an admin service user, an admin role
/// (`keyward.*`, workspace scope) and that user's first token, whose secret is shown only here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedWorkspace {
    /// The workspace.
    pub workspace: Workspace,
    /// Its admin service user.
    pub admin_user: User,
    /// Its admin role.
    pub admin_role: Role,
    /// The admin token, with its secret.
    pub admin_token: CreatedToken,
}

/// `POST /v1/users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Human or service.
    pub kind: UserKind,
    /// Display name.
    pub name: String,
    /// E-mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Role (human role for humans, api role for service users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<RoleId>,
}

/// `PATCH /v1/users/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New e-mail; `null` removes it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub email: Option<Option<String>>,
    /// New role; `null` removes it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub role_id: Option<Option<RoleId>>,
    /// Disable or re-enable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// `POST /v1/roles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// Name, unique in the workspace.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Human or api.
    pub kind: RoleKind,
    /// User or workspace.
    pub scope: Scope,
    /// Permission patterns.
    pub permissions: Vec<String>,
    /// Addresses tokens acting with the role must come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allowlist: Option<IpListInput>,
    /// Requests per minute for tokens acting with the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// What the role's limit counts: `token` (the default) or `user`. Needs
    /// `rate_limit_per_minute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per: Option<RateLimitPer>,
}

/// `PATCH /v1/roles/{id}`. The kind cannot change: it decides who may hold the role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// New permission patterns (replacing the old ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// New allowlist; empty clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allowlist: Option<IpListInput>,
    /// New rate limit; `null` falls back to the workspace default (and what it counts).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_limit_per_minute: Option<Option<u32>>,
    /// What the role's limit counts: `token` or `user` (only with a limit of the role's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per: Option<RateLimitPer>,
    /// Why: kept with the change request when the change needs approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `PUT /v1/permissions/{permission}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPermission {
    /// What it allows.
    #[serde(default)]
    pub description: String,
}

/// The permission catalogue, as one page of a list (`next_cursor` is always absent).
pub type Catalogue = Page<CatalogueEntry>;

/// `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// The user the token acts for.
    pub owner_id: UserId,
    /// Display name.
    pub name: String,
    /// The token's own `api` role; absent to inherit the owner's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<RoleId>,
    /// Narrowing of the role's permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// Free-form JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Not usable before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// Not usable from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Create as `pending` (needs activation) instead of `active`.
    #[serde(default)]
    pub pending: bool,
    /// Addresses the token must be used from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allowlist: Option<IpListInput>,
    /// Usable only from internal networks.
    #[serde(default)]
    pub internal_only: bool,
    /// Requests per minute (overrides the role's and the workspace's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// What the token's own limit counts: `token` (the default) or `user` (shared with the
    /// owner's other per-user tokens). Needs `rate_limit_per_minute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per: Option<RateLimitPer>,
    /// Keep each verified request as a record of its own (a per-request log, for a token
    /// under investigation) instead of counting requests per minute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub request_log: bool,
}

/// `PATCH /v1/tokens/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenPatch {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New role; `null` to inherit the owner's.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub role_id: Option<Option<RoleId>>,
    /// New narrowing; `null` removes it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub permissions: Option<Option<Vec<String>>>,
    /// New metadata (replacing the old).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// New start of validity; `null` removes it.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<Option<DateTime<Utc>>>,
    /// New expiry; `null` removes it (refused under a maximum lifetime).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// New allowlist; empty clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allowlist: Option<IpListInput>,
    /// Internal-only on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_only: Option<bool>,
    /// New rate limit; `null` falls back to the role's or the workspace's (and what it counts).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_limit_per_minute: Option<Option<u32>>,
    /// What the token's own limit counts: `token` or `user` (only with a limit of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per: Option<RateLimitPer>,
    /// The per-request log on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_log: Option<bool>,
    /// Why: kept with the change request when the change needs approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A token as the API shows it: never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenView {
    /// Id.
    pub id: TokenId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Owner.
    pub owner_id: UserId,
    /// Own role, if any (else the owner's role applies).
    pub role_id: Option<RoleId>,
    /// Narrowing, if any.
    pub permissions: Option<Vec<PermissionPattern>>,
    /// Name.
    pub name: String,
    /// Metadata.
    pub metadata: serde_json::Value,
    /// `pending`, `active`, `revoked` or `expired`.
    pub status: ShownStatus,
    /// The first characters of the secret.
    pub start: String,
    /// When the token was last used (a verified request), if ever. Filled by `GET` of one
    /// token only; listings leave the three usage facts empty.
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// The client address of that request, when known.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub last_used_ip: Option<std::net::IpAddr>,
    /// Its endpoint (`"METHOD path"`), when the caller named it.
    #[serde(default)]
    pub last_used_endpoint: Option<String>,
    /// Start of validity.
    pub not_before: Option<DateTime<Utc>>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// The token's own allowlist.
    #[serde(default)]
    pub ip_allowlist: crate::ip::IpAllowlist,
    /// Usable only from internal networks.
    #[serde(default)]
    pub internal_only: bool,
    /// The token's own rate limit.
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
    /// What the token's own limit counts (`token` when it has none).
    #[serde(default)]
    pub rate_limit_per: RateLimitPer,
    /// Whether each verified request is kept as a record of its own
    /// (`GET /v1/tokens/{id}/usage/requests`).
    #[serde(default)]
    pub request_log: bool,
    /// Creation.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Revocation.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Its rotation family (the id of the family's first token).
    pub family_id: TokenId,
    /// The token it replaced by rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<TokenId>,
    /// Who made it (created it, or rotated the token it replaced); absent for tokens made
    /// before keyward recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
}

impl TokenView {
    /// The view of `t` as of `now`.
    pub fn of(t: &Token, now: DateTime<Utc>) -> Self {
        Self {
            id: t.id,
            workspace_id: t.workspace_id,
            owner_id: t.owner_id,
            role_id: t.role_id,
            permissions: t.permissions.clone(),
            name: t.name.clone(),
            metadata: t.metadata.clone(),
            status: t.shown_status(now),
            start: t.start.clone(),
            last_used_at: None,
            last_used_ip: None,
            last_used_endpoint: None,
            not_before: t.not_before,
            expires_at: t.expires_at,
            ip_allowlist: t.ip_allowlist.clone(),
            internal_only: t.internal_only,
            rate_limit_per_minute: t.rate_limit_per_minute,
            rate_limit_per: t.rate_limit_per,
            request_log: t.request_log,
            created_at: t.created_at,
            updated_at: t.updated_at,
            revoked_at: t.revoked_at,
            family_id: t.family(),
            rotated_from: t.rotated_from,
            created_by: t.created_by,
        }
    }
}

/// The body of `POST /v1/tokens/{id}/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateToken {
    /// How long the old secret keeps working, in seconds; 0 (the default) ends it at once.
    #[serde(default)]
    pub grace_period_secs: u64,
    /// The new token's expiry. Without it, the new token gets the old one's lifetime (its
    /// `expires_at` minus its creation), counted from now, within the workspace's maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The answer of a rotation: the new token with its secret (shown once), and the old one as
/// it now is (expiring at the end of the grace period).
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RotatedToken {
    /// The new token.
    pub token: TokenView,
    /// The new secret. Shown once.
    pub secret: String,
    /// The token it replaces.
    pub previous: TokenView,
}

impl std::fmt::Debug for RotatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedToken")
            .field("token", &self.token)
            .field("secret", &"<redacted>")
            .field("previous", &self.previous)
            .finish()
    }
}

/// What a bulk revocation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokedTokens {
    /// The tokens revoked now (already revoked ones are not listed).
    pub revoked: Vec<TokenId>,
}

/// A freshly created token: the only answer that ever carries the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The token.
    pub token: TokenView,
    /// The secret. Shown once; keyward keeps only its hash.
    pub secret: String,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("token", &self.token)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A created invitation (`POST /v1/users/{id}/invitations`): the one-time link with which a
/// person sets their password. Shown once: it is in no log, event or later answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedInvitation {
    /// The person invited.
    pub user_id: UserId,
    /// The one-time link.
    pub url: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verify_request_borrows_its_strings_from_the_body() {
        let body = r#"{"token":"kw_x","ip":"192.0.2.1","method":"GET","path":"/a",
            "permissions":["orders:read","cart:read"]}"#;
        let req: VerifyRequest<'_> = serde_json::from_str(body).unwrap();
        let borrowed = |c: &Cow<'_, str>| matches!(c, Cow::Borrowed(_));
        assert!(borrowed(&req.token));
        assert!([&req.ip, &req.method, &req.path]
            .iter()
            .all(|c| c.as_ref().is_some_and(borrowed)));
        let perms = req.permissions.as_deref().unwrap();
        assert_eq!(perms, ["orders:read", "cart:read"]);
        assert!(perms.iter().all(borrowed));
        // An escaped string cannot be borrowed, and still reads right.
        let req: VerifyRequest<'_> =
            serde_json::from_str(r#"{"token":"t","permissions":["a\u003ab"],"ip":null}"#).unwrap();
        assert_eq!(req.permissions.unwrap(), ["a:b"]);
        assert_eq!(req.ip, None);
        let req: VerifyRequest<'_> = serde_json::from_str(r#"{"token":"t"}"#).unwrap();
        assert_eq!((req.ip, req.permissions), (None, None));
    }
}
