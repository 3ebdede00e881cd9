//! The operations of the API as OpenAPI path items. Each function documents one route of
//! the router (the test `every_route_is_documented` compares them with the `.route(…)` calls of
//! the source); request and response schemas come from the wire types themselves.
#![allow(dead_code)] // The functions exist for their `#[utoipa::path]` attributes.

use keyward_core::api::*;
use keyward_core::audit::{AuditEventView, AuditVerification, Checkpoint};
use keyward_core::events::{
    CreateWebhook, CreatedWebhook, DeliveryAttempt, WebhookPatch, WebhookView,
};
use keyward_core::model::{Role, ShownStatus, User, UserKind, Workspace};
use keyward_core::usage::{Granularity, RequestLog, UsageReport};
use keyward_core::{ApproveChange, CatalogueEntry, ChangeRequest, DecideChange, RoleId, UserId};

use super::{LeakLabel, LeakReport, Ready};

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    summary = "The process is up",
    responses(
        (status = 200, description = "OK", body = String, content_type = "text/plain")
    ),
    security(())
)]
fn healthz() {}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    summary = "The store answers",
    responses(
        (status = 200, description = "OK", body = Ready),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(())
)]
fn readyz() {}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    summary = "OpenMetrics text exposition (Prometheus)",
    responses(
        (status = 200, description = "OpenMetrics text format 1.0.0", body = String, content_type = "application/openmetrics-text")
    ),
    security(())
)]
fn metrics() {}

#[utoipa::path(
    post,
    path = "/v1/verify",
    tag = "verify",
    operation_id = "verify",
    summary = "Decide whether a presented token may make a request",
    description = "Needs `keyward.verify:tokens`.",
    request_body(content = VerifyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = VerifyResponse),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn verify() {}

/// Forward-auth answers every method the same way; the document lists five of them, under
/// `/auth` (nginx, Caddy, Traefik), `/auth/` and `/auth/{rest}` (Envoy's path prefix).
macro_rules! forward_auth {
    ($($name:ident $method:ident $path:literal $id:literal $([$($rest:tt)*])?;)*) => {$(
        #[utoipa::path(
            $method,
            path = $path,
            tag = "forward-auth",
            operation_id = $id,
            summary = "Forward-auth: may the original request pass?",
            description = "For reverse proxies (nginx `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`, Envoy `ext_authz`). Answers only peers in `policy.trusted_proxies` or sending `X-Keyward-Proxy-Secret`. The original request is `X-Forwarded-Method`/`X-Forwarded-Uri`, `X-Original-Method`/`X-Original-URI`, or this request under the `/auth` prefix; the route table of `[edge]` says what it needs. See docs/forward-auth.md.",
            params(
                ("X-Forwarded-Method" = Option<String>, Header, description = "The original method (Caddy, Traefik)"),
                ("X-Forwarded-Uri" = Option<String>, Header, description = "The original URI (Caddy, Traefik)"),
                ("X-Original-Method" = Option<String>, Header, description = "The original method (nginx)"),
                ("X-Original-URI" = Option<String>, Header, description = "The original URI (nginx); a rate-limit refusal is then a 403 with `X-Keyward-Code: RATE_LIMITED`")
                $($($rest)*)?
            ),
            responses(
                (status = 200, description = "Allowed: the principal is in the `X-Keyward-Token-Id`, `-Workspace-Id`, `-User-Id`, `-Role-Id`, `-Scope`, `-Permissions` and `-Metadata` headers (or `X-Keyward-Anonymous: true`)"),
                (status = 401, description = "No credential, or a token that is malformed, unknown, pending, revoked, expired, not yet valid or whose owner is disabled; see `WWW-Authenticate` and `X-Keyward-Code`", body = Problem, content_type = "application/problem+json"),
                (status = 403, description = "Not a trusted proxy, a route the table refuses, internal-only, an address off the allowlist, or a missing permission (`insufficient_scope`)", body = Problem, content_type = "application/problem+json"),
                (status = 429, description = "Rate limited; see `Retry-After`, `RateLimit` and `RateLimit-Policy` (policy `\"token\"` for a token's own budget, `\"user\"` for the budget its owner user's tokens share)", body = Problem, content_type = "application/problem+json"),
                (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
            ),
            security(("bearer" = []))
        )]
        fn $name() {}
    )*};
}

forward_auth! {
    forward_auth_get get "/auth" "forward_auth_get";
    forward_auth_post post "/auth" "forward_auth_post";
    forward_auth_put put "/auth" "forward_auth_put";
    forward_auth_patch patch "/auth" "forward_auth_patch";
    forward_auth_delete delete "/auth" "forward_auth_delete";
    forward_auth_root_get get "/auth/" "forward_auth_root_get";
    forward_auth_root_post post "/auth/" "forward_auth_root_post";
    forward_auth_root_put put "/auth/" "forward_auth_root_put";
    forward_auth_root_patch patch "/auth/" "forward_auth_root_patch";
    forward_auth_root_delete delete "/auth/" "forward_auth_root_delete";
    forward_auth_prefixed_get get "/auth/{rest}" "forward_auth_prefixed_get" [, ("rest" = String, Path, description = "The original path (Envoy's `path_prefix: /auth`)")];
    forward_auth_prefixed_post post "/auth/{rest}" "forward_auth_prefixed_post" [, ("rest" = String, Path, description = "The original path (Envoy's `path_prefix: /auth`)")];
    forward_auth_prefixed_put put "/auth/{rest}" "forward_auth_prefixed_put" [, ("rest" = String, Path, description = "The original path (Envoy's `path_prefix: /auth`)")];
    forward_auth_prefixed_patch patch "/auth/{rest}" "forward_auth_prefixed_patch" [, ("rest" = String, Path, description = "The original path (Envoy's `path_prefix: /auth`)")];
    forward_auth_prefixed_delete delete "/auth/{rest}" "forward_auth_prefixed_delete" [, ("rest" = String, Path, description = "The original path (Envoy's `path_prefix: /auth`)")];
}

#[utoipa::path(
    get,
    path = "/v1/workspace",
    tag = "workspace",
    operation_id = "workspace_show",
    summary = "The caller's workspace",
    description = "Needs `keyward.workspace:read`.",
    responses(
        (status = 200, description = "OK", body = Workspace),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn workspace_show() {}

#[utoipa::path(
    patch,
    path = "/v1/workspace",
    tag = "workspace",
    operation_id = "workspace_update",
    summary = "Change the caller's workspace and its security settings",
    description = "Needs `keyward.workspace:write`. Under `require_approval`, a security change answers 202 with a change request instead.",
    request_body(content = WorkspacePatch, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = Workspace),
        (status = 202, description = "Not applied: the workspace requires approval of this security change, which waits as this change request", body = ChangeRequest),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn workspace_update() {}

#[utoipa::path(
    get,
    path = "/v1/workspaces",
    tag = "workspace",
    operation_id = "workspaces_list",
    summary = "All workspaces (operator workspace only)",
    description = "Needs `keyward.workspaces:read`.",
    params(
        ("limit" = Option<u32>, Query, description = "Items per page (1–200, default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "OK", body = Page<Workspace>),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn workspaces_list() {}

#[utoipa::path(
    post,
    path = "/v1/workspaces",
    tag = "workspace",
    operation_id = "workspaces_create",
    summary = "Create a workspace with its first admin token (operator workspace only)",
    description = "Needs `keyward.workspaces:create`.",
    request_body(content = CreateWorkspace, content_type = "application/json"),
    responses(
        (status = 201, description = "OK", body = CreatedWorkspace),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn workspaces_create() {}

#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "users",
    operation_id = "users_list",
    summary = "List users",
    description = "Needs `keyward.users:read`.",
    params(
        ("kind" = Option<UserKind>, Query, description = "Only `human` or `service` users"),
        ("disabled" = Option<bool>, Query, description = "Only disabled (true) or enabled (false) users"),
        ("limit" = Option<u32>, Query, description = "Items per page (1–200, default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "OK", body = Page<User>),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn users_list() {}

#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    operation_id = "users_create",
    summary = "Create a human or service user",
    description = "Needs `keyward.users:write`.",
    request_body(content = CreateUser, content_type = "application/json"),
    responses(
        (status = 201, description = "OK", body = User),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn users_create() {}

#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    tag = "users",
    operation_id = "users_show",
    summary = "Read a user",
    description = "Needs `keyward.users:read`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 200, description = "OK", body = User),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn users_show() {}

#[utoipa::path(
    patch,
    path = "/v1/users/{id}",
    tag = "users",
    operation_id = "users_update",
    summary = "Rename, re-role, disable or enable a user",
    description = "Needs `keyward.users:write`. Under `require_approval`, moving a user whose live tokens inherit its role to a role with another IP allowlist is refused (409 `APPROVAL_REQUIRED`): give the tokens a role of their own first.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    request_body(content = UserPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = User),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn users_update() {}

#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    tag = "users",
    operation_id = "users_delete",
    summary = "Delete a user",
    description = "Needs `keyward.users:write`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn users_delete() {}

#[utoipa::path(
    post,
    path = "/v1/users/{id}/revoke-tokens",
    tag = "users",
    operation_id = "users_revoke_tokens",
    summary = "Revoke every token of a user",
    description = "Needs `keyward.tokens:revoke`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 200, description = "OK", body = RevokedTokens),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn users_revoke_tokens() {}

#[utoipa::path(
    post,
    path = "/v1/users/{id}/invitations",
    tag = "users",
    operation_id = "users_invite",
    summary = "Invite a person to the dashboard",
    description = "Needs `keyward.users:write` at workspace scope. Creates a one-time link (shown once, expiring after `[dashboard] invitation_hours`) with which a human user sets their password and enrols two-factor authentication; it replaces the user's earlier unused links.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 201, description = "Created; the link is shown only here", body = CreatedInvitation),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it (a service user, no e-mail address)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn users_invite() {}

#[utoipa::path(
    get,
    path = "/v1/roles",
    tag = "roles",
    operation_id = "roles_list",
    summary = "List roles",
    description = "Needs `keyward.roles:read`.",
    params(
        ("limit" = Option<u32>, Query, description = "Items per page (1–200, default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "OK", body = Page<Role>),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn roles_list() {}

#[utoipa::path(
    post,
    path = "/v1/roles",
    tag = "roles",
    operation_id = "roles_create",
    summary = "Create a role",
    description = "Needs `keyward.roles:write`.",
    request_body(content = CreateRole, content_type = "application/json"),
    responses(
        (status = 201, description = "OK", body = Role),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn roles_create() {}

#[utoipa::path(
    get,
    path = "/v1/roles/{id}",
    tag = "roles",
    operation_id = "roles_show",
    summary = "Read a role",
    description = "Needs `keyward.roles:read`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 200, description = "OK", body = Role),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn roles_show() {}

#[utoipa::path(
    patch,
    path = "/v1/roles/{id}",
    tag = "roles",
    operation_id = "roles_update",
    summary = "Change a role (every token using it, at once)",
    description = "Needs `keyward.roles:write`. Under `require_approval`, a security change answers 202 with a change request instead.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    request_body(content = RolePatch, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = Role),
        (status = 202, description = "Not applied: the workspace requires approval of this security change, which waits as this change request", body = ChangeRequest),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn roles_update() {}

#[utoipa::path(
    delete,
    path = "/v1/roles/{id}",
    tag = "roles",
    operation_id = "roles_delete",
    summary = "Delete a role that nothing uses",
    description = "Needs `keyward.roles:write`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn roles_delete() {}

#[utoipa::path(
    get,
    path = "/v1/permissions",
    tag = "permissions",
    operation_id = "permissions_list",
    summary = "The permission catalogue, built-in entries included",
    description = "Needs `keyward.permissions:read`.",
    responses(
        (status = 200, description = "OK", body = Page<CatalogueEntry>),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn permissions_list() {}

#[utoipa::path(
    put,
    path = "/v1/permissions/{permission}",
    tag = "permissions",
    operation_id = "permissions_put",
    summary = "Add a permission or change its description",
    description = "Needs `keyward.permissions:write`.",
    params(
        ("permission" = String, Path, description = "The permission, `resource:action`")
    ),
    request_body(content = PutPermission, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = CatalogueEntry),
        (status = 201, description = "Added", body = CatalogueEntry),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn permissions_put() {}

#[utoipa::path(
    delete,
    path = "/v1/permissions/{permission}",
    tag = "permissions",
    operation_id = "permissions_delete",
    summary = "Remove a permission no role or token names",
    description = "Needs `keyward.permissions:write`.",
    params(
        ("permission" = String, Path, description = "The permission, `resource:action`")
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn permissions_delete() {}

#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "tokens",
    operation_id = "tokens_list",
    summary = "List tokens (never their secrets)",
    description = "Needs `keyward.tokens:read`.",
    params(
        ("owner_id" = Option<UserId>, Query, description = "Only this user's tokens"),
        ("role_id" = Option<RoleId>, Query, description = "Only tokens with this own role"),
        ("status" = Option<ShownStatus>, Query, description = "Only tokens in this status"),
        ("limit" = Option<u32>, Query, description = "Items per page (1–200, default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "OK", body = Page<TokenView>),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_list() {}

#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "tokens",
    operation_id = "tokens_create",
    summary = "Create a token; its secret is in this answer only",
    description = "Needs `keyward.tokens:create`.",
    request_body(content = CreateToken, content_type = "application/json"),
    responses(
        (status = 201, description = "OK", body = CreatedToken),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_create() {}

#[utoipa::path(
    get,
    path = "/v1/tokens/{id}",
    tag = "tokens",
    operation_id = "tokens_show",
    summary = "Read a token, with its last use",
    description = "Needs `keyward.tokens:read`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 200, description = "OK", body = TokenView),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_show() {}

#[utoipa::path(
    patch,
    path = "/v1/tokens/{id}",
    tag = "tokens",
    operation_id = "tokens_update",
    summary = "Change a token",
    description = "Needs `keyward.tokens:write`. Under `require_approval`, a security change answers 202 with a change request instead.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    request_body(content = TokenPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = TokenView),
        (status = 202, description = "Not applied: the workspace requires approval of this security change, which waits as this change request", body = ChangeRequest),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_update() {}

#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "tokens",
    operation_id = "tokens_delete",
    summary = "Delete a token",
    description = "Needs `keyward.tokens:delete`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_delete() {}

#[utoipa::path(
    post,
    path = "/v1/tokens/{id}/activate",
    tag = "tokens",
    operation_id = "tokens_activate",
    summary = "Activate a pending token",
    description = "Needs `keyward.tokens:write`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 200, description = "OK", body = TokenView),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_activate() {}

#[utoipa::path(
    post,
    path = "/v1/tokens/{id}/revoke",
    tag = "tokens",
    operation_id = "tokens_revoke",
    summary = "Revoke a token (final)",
    description = "Needs `keyward.tokens:revoke`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 200, description = "OK", body = TokenView),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_revoke() {}

#[utoipa::path(
    post,
    path = "/v1/tokens/{id}/rotate",
    tag = "tokens",
    operation_id = "tokens_rotate",
    summary = "Replace a token's secret, the old one working for a grace period",
    description = "Needs `keyward.tokens:create`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    request_body(content = RotateToken, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = RotatedToken),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Conflicts with the current state", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_rotate() {}

#[utoipa::path(
    get,
    path = "/v1/tokens/{id}/family",
    tag = "tokens",
    operation_id = "tokens_family",
    summary = "Every token of a rotation family, oldest first",
    description = "Needs `keyward.tokens:read`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 200, description = "OK", body = Vec<TokenView>),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_family() {}

#[utoipa::path(
    get,
    path = "/v1/tokens/{id}/usage",
    tag = "tokens",
    operation_id = "tokens_usage",
    summary = "A token's usage: buckets, codes, addresses, endpoints",
    description = "Needs `keyward.tokens:read`.",
    params(
        ("id" = String, Path, description = "The object's id"),
        ("from" = Option<DateTime<Utc>>, Query, description = "Start, RFC 3339, inclusive (default: 7 days of whole buckets)"),
        ("to" = Option<DateTime<Utc>>, Query, description = "End, RFC 3339, exclusive"),
        ("granularity" = Option<Granularity>, Query, description = "`hour` (default) or `day`")
    ),
    responses(
        (status = 200, description = "OK", body = UsageReport),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_usage() {}

#[utoipa::path(
    get,
    path = "/v1/tokens/{id}/usage/requests",
    tag = "tokens",
    operation_id = "tokens_usage_requests",
    summary = "A token's per-request log: its latest requests kept one by one",
    description = "Needs `keyward.tokens:read`. Only requests made while the token's `request_log` was on are kept one by one (the others are counted per minute in `/usage`), for `usage.raw_retention_days`.",
    params(
        ("id" = String, Path, description = "The object's id"),
        ("limit" = Option<u32>, Query, description = "How many, newest first: 1–1000 (default 100)")
    ),
    responses(
        (status = 200, description = "OK", body = RequestLog),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn tokens_usage_requests() {}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    operation_id = "audit_list",
    summary = "Query the audit trail",
    description = "Needs `keyward.audit:read`.",
    params(
        ("actor" = Option<String>, Query, description = "Only events by this token or user (`tok_…`, `usr_…`)"),
        ("token" = Option<String>, Query, description = "Only events about or by this token"),
        ("action" = Option<String>, Query, description = "One action, or a family (`token.*`)"),
        ("from" = Option<DateTime<Utc>>, Query, description = "From (RFC 3339), inclusive"),
        ("to" = Option<DateTime<Utc>>, Query, description = "Until (RFC 3339), exclusive"),
        ("order" = Option<String>, Query, description = "`asc` (default) or `desc`"),
        ("limit" = Option<u32>, Query, description = "Events per page (1–1000, default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "OK", body = Page<AuditEventView>),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn audit_list() {}

#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    tag = "audit",
    operation_id = "audit_verify",
    summary = "Check the workspace's audit hash chain",
    description = "Needs `keyward.audit:read`.",
    responses(
        (status = 200, description = "OK", body = AuditVerification),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn audit_verify() {}

#[utoipa::path(
    post,
    path = "/v1/audit/verify",
    tag = "audit",
    operation_id = "audit_verify_checkpoint",
    summary = "Check the chain and that it still passes through a checkpoint",
    description = "Needs `keyward.audit:read`.",
    request_body(content = Checkpoint, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = AuditVerification),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn audit_verify_checkpoint() {}

#[utoipa::path(
    get,
    path = "/v1/audit/checkpoint",
    tag = "audit",
    operation_id = "audit_checkpoint",
    summary = "A signed head of the chain, to keep elsewhere",
    description = "Needs `keyward.audit:read`.",
    responses(
        (status = 200, description = "OK", body = Checkpoint),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn audit_checkpoint() {}

#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    operation_id = "webhooks_list",
    summary = "List webhook subscriptions",
    description = "Needs `keyward.webhooks:read`.",
    params(
        ("limit" = Option<u32>, Query, description = "Items per page (1–200, default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "OK", body = Page<WebhookView>),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn webhooks_list() {}

#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    operation_id = "webhooks_create",
    summary = "Subscribe a URL; its signing secret is in this answer only",
    description = "Needs `keyward.webhooks:write`; naming `change_request.created` (it carries approval codes, and a subscription to all types does not get it) also needs `keyward.security:approve`.",
    request_body(content = CreateWebhook, content_type = "application/json"),
    responses(
        (status = 201, description = "OK", body = CreatedWebhook),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn webhooks_create() {}

#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "webhooks_show",
    summary = "Read a subscription",
    description = "Needs `keyward.webhooks:read`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 200, description = "OK", body = WebhookView),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn webhooks_show() {}

#[utoipa::path(
    patch,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "webhooks_update",
    summary = "Change a subscription",
    description = "Needs `keyward.webhooks:write`; changing the URL or types of a subscription naming `change_request.created` also needs `keyward.security:approve`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    request_body(content = WebhookPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = WebhookView),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn webhooks_update() {}

#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "webhooks_delete",
    summary = "Delete a subscription",
    description = "Needs `keyward.webhooks:write`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn webhooks_delete() {}

#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    operation_id = "webhooks_rotate_secret",
    summary = "A new signing secret, shown once",
    description = "Needs `keyward.webhooks:write`.",
    params(
        ("id" = String, Path, description = "The object's id")
    ),
    responses(
        (status = 200, description = "OK", body = CreatedWebhook),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn webhooks_rotate_secret() {}

#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    operation_id = "webhooks_deliveries",
    summary = "Every delivery attempt of a subscription",
    description = "Needs `keyward.webhooks:read`.",
    params(
        ("id" = String, Path, description = "The object's id"),
        ("limit" = Option<u32>, Query, description = "Items per page (1–200, default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "OK", body = Page<DeliveryAttempt>),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, allowlist, internal-only, delegation)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn webhooks_deliveries() {}

#[utoipa::path(
    post,
    path = "/v1/leaks/github",
    tag = "leaks",
    operation_id = "leaks_github",
    summary = "GitHub secret-scanning partner alerts (signed, not token-authenticated)",
    request_body(content = Vec<LeakReport>, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = Vec<LeakLabel>),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(())
)]
fn leaks_github() {}

#[utoipa::path(
    get,
    path = "/v1/change-requests",
    tag = "change-requests",
    operation_id = "change_requests_list",
    summary = "Change requests, newest first",
    description = "Holders of `keyward.security:approve` (workspace scope) see every request of the workspace; anyone else only their own.",
    params(
        ("state" = Option<String>, Query, description = "pending, applied, rejected, cancelled, expired or failed"),
        ("target_kind" = Option<String>, Query, description = "workspace, role or token"),
        ("target_id" = Option<String>, Query, description = "A role or token id"),
        ("requested_by" = Option<String>, Query, description = "The requesting user's id"),
        ("limit" = Option<u32>, Query, description = "Items per page (1–200, default 50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "OK", body = Page<ChangeRequest>),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, requester approving, not a person, wrong code)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn change_requests_list() {}

#[utoipa::path(
    get,
    path = "/v1/change-requests/{id}",
    tag = "change-requests",
    operation_id = "change_requests_show",
    summary = "One change request (never its approval code)",
    description = "Approvers see any; others only their own.",
    params(
        ("id" = String, Path, description = "The change request's id (`chg_…`)")
    ),
    responses(
        (status = 200, description = "OK", body = ChangeRequest),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, requester approving, not a person, wrong code)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn change_requests_show() {}

#[utoipa::path(
    post,
    path = "/v1/change-requests/{id}/approve",
    tag = "change-requests",
    operation_id = "change_requests_approve",
    summary = "Approve with the one-time code; the last approval needed applies the change",
    description = "Needs `keyward.security:approve`, workspace scope, a human user other than the requester, and what applying the change directly needs.",
    params(
        ("id" = String, Path, description = "The change request's id (`chg_…`)")
    ),
    request_body(content = ApproveChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The change request as it now stands", body = ChangeRequest),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already, expired, approved by you already, or STALE (the target changed; the request failed)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, requester approving, not a person, wrong code)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn change_requests_approve() {}

#[utoipa::path(
    post,
    path = "/v1/change-requests/{id}/reject",
    tag = "change-requests",
    operation_id = "change_requests_reject",
    summary = "Reject a pending change request",
    description = "Needs `keyward.security:approve`, workspace scope, and a human user other than the requester.",
    params(
        ("id" = String, Path, description = "The change request's id (`chg_…`)")
    ),
    request_body(content = DecideChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The change request as it now stands", body = ChangeRequest),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already, expired, approved by you already, or STALE (the target changed; the request failed)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, requester approving, not a person, wrong code)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn change_requests_reject() {}

#[utoipa::path(
    post,
    path = "/v1/change-requests/{id}/cancel",
    tag = "change-requests",
    operation_id = "change_requests_cancel",
    summary = "Withdraw one's own pending change request",
    description = "Only the requesting person (with any of their tokens or the dashboard).",
    params(
        ("id" = String, Path, description = "The change request's id (`chg_…`)")
    ),
    request_body(content = DecideChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The change request as it now stands", body = ChangeRequest),
        (status = 400, description = "Malformed JSON or wrong media type", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decided already, expired, approved by you already, or STALE (the target changed; the request failed)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not do this (permission, requester approving, not a person, wrong code)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object in the caller's workspace", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid input; `field` names it", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
fn change_requests_cancel() {}
