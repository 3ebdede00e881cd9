//! Creating a workspace together with its first admin: a service user holding the api role
//! "Workspace Admin" (`*` and `keyward.*` at workspace scope: everything in the product and in
//! keyward, so it can delegate any permission), and that user's first token; and the human
//! role "Dashboard Admin" (the same permissions) for the first person, whom the operator
//! creates and invites afterwards (`keyward user create --kind human … --role "Dashboard
//! Admin"`, `keyward user invite`).
//! Used on a fresh store (the operator's workspace) and by `POST /v1/workspaces`.

use keyward_core::api::{CreatedWorkspace, TokenView};
use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::model::{
    RateLimitPer, Role, RoleKind, Scope, Token, TokenStatus, User, UserKind, Workspace,
    WorkspaceSettings,
};
use keyward_core::{
    validate, DomainError, PermissionPattern, RoleId, TokenId, TokenSecret, UserId, WorkspaceId,
};
use keyward_store::WorkspaceBootstrap;

use crate::error::ApiError;
use crate::state::AppState;

/// Name of the admin role every workspace starts with.
pub const ADMIN_ROLE: &str = "Workspace Admin";

/// Name of the human role every workspace starts with, for the people who run it from the
/// dashboard: the same permissions as [`ADMIN_ROLE`], for persons.
pub const DASHBOARD_ADMIN_ROLE: &str = "Dashboard Admin";
/// The ready-made human role of people who request security changes.
pub const SECURITY_MANAGER_ROLE: &str = "Security Manager";
/// The ready-made human role of people who approve them.
pub const SECURITY_ADMIN_ROLE: &str = "Security Admin";

/// What a Security Manager holds: reading the workspace's set-up and its trail, and changing
/// the workspace's settings (which, under `require_approval`, requests the security ones).
const SECURITY_MANAGER_PERMISSIONS: [&str; 6] = [
    "keyward.workspace:*",
    "keyward.roles:read",
    "keyward.tokens:read",
    "keyward.users:read",
    "keyward.permissions:read",
    "keyward.audit:read",
];

/// The default rate limit of a new workspace's "Workspace Admin" role, and so of its first
/// token (`tokens.admin_rate_limit_per_minute`).
pub const ADMIN_RATE_LIMIT_PER_MINUTE: u32 = 6000;

/// Creates a workspace and its first admin; the answer carries the admin token's secret.
pub async fn create_workspace(
    state: &AppState,
    name: &str,
    settings: WorkspaceSettings,
    operator: bool,
    by: Actor,
    ip: Option<std::net::IpAddr>,
) -> Result<CreatedWorkspace, ApiError> {
    validate::settings(&settings)?;
    let rng = &mut rand_core::OsRng;
    let now = state.now();
    let workspace = Workspace {
        id: WorkspaceId::random(rng),
        name: validate::name(name, "name")?,
        operator,
        settings,
        created_at: now,
        updated_at: now,
    };
    let admin_patterns = ["*", "keyward.*"]
        .iter()
        .map(|p| PermissionPattern::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let role = Role {
        id: RoleId::random(rng),
        workspace_id: workspace.id,
        name: ADMIN_ROLE.into(),
        description: "Full control of this workspace through keyward's admin API".into(),
        kind: RoleKind::Api,
        scope: Scope::Workspace,
        permissions: admin_patterns.clone(),
        ip_allowlist: Default::default(),
        // Scripting against the admin API should not meet the workspace default (150/min).
        rate_limit_per_minute: Some(state.admin_rate_limit),
        rate_limit_per: RateLimitPer::Token,
        created_at: now,
        updated_at: now,
    };
    let dashboard_admin = Role {
        id: RoleId::random(rng),
        name: DASHBOARD_ADMIN_ROLE.into(),
        description: "Full control of this workspace in the dashboard, for people".into(),
        kind: RoleKind::Human,
        permissions: admin_patterns,
        rate_limit_per_minute: None,
        ..role.clone()
    };
    let security_role = |name: &str, description: &str, approve: bool| {
        let mut patterns: Vec<&str> = SECURITY_MANAGER_PERMISSIONS.to_vec();
        if approve {
            patterns.push("keyward.security:approve");
        }
        let permissions = patterns
            .iter()
            .map(|p| PermissionPattern::parse(p))
            .collect::<Result<Vec<_>, _>>();
        permissions.map(|permissions| Role {
            id: RoleId::random(&mut rand_core::OsRng),
            name: name.into(),
            description: description.into(),
            kind: RoleKind::Human,
            permissions,
            rate_limit_per_minute: None,
            ..role.clone()
        })
    };
    let security_manager = security_role(
        SECURITY_MANAGER_ROLE,
        "Requests security changes (IP allowlists, internal networks, security settings); \
         they apply once a Security Admin approves",
        false,
    )?;
    let security_admin = security_role(
        SECURITY_ADMIN_ROLE,
        "Approves or rejects the security changes other people request",
        true,
    )?;
    let user = User {
        id: UserId::random(rng),
        workspace_id: workspace.id,
        kind: UserKind::Service,
        name: "admin".into(),
        email: None,
        role_id: Some(role.id),
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    let secret = TokenSecret::generate(&workspace.settings.token_prefix, rng);
    let token = Token {
        id: TokenId::random(rng),
        workspace_id: workspace.id,
        owner_id: user.id,
        role_id: None,
        permissions: None,
        name: "bootstrap admin".into(),
        metadata: serde_json::json!({}),
        status: TokenStatus::Active,
        hash: state.hasher.hash(&secret),
        start: secret.display_start(),
        not_before: None,
        expires_at: None,
        ip_allowlist: Default::default(),
        internal_only: false,
        request_log: false,
        rate_limit_per_minute: None,
        rate_limit_per: RateLimitPer::Token,
        created_at: now,
        updated_at: now,
        revoked_at: None,
        family_id: None,
        rotated_from: None,
        created_by: Some(user.id),
    };
    let bootstrap = WorkspaceBootstrap {
        workspace,
        role,
        user,
        token,
        extra_roles: vec![dashboard_admin, security_manager, security_admin],
    };
    // The new workspace's trail starts with its creation (by the operator, or by keyward
    // itself on a fresh database), listing what it was created with.
    let audit = AuditDraft::new(
        bootstrap.workspace.id,
        now,
        by,
        "workspace.created",
        "workspace",
        bootstrap.workspace.id.to_string(),
    )
    .ip(ip)
    .after(&serde_json::json!({
        "workspace": &bootstrap.workspace,
        "admin_role": &bootstrap.role,
        "roles": &bootstrap.extra_roles,
        "admin_user": &bootstrap.user,
        "admin_token": TokenView::of(&bootstrap.token, now),
    }));
    state.store.bootstrap_workspace(&bootstrap, &audit).await?;
    tracing::info!(workspace = %bootstrap.workspace.id, operator, "workspace created");
    Ok(CreatedWorkspace {
        admin_token: keyward_core::api::CreatedToken {
            token: TokenView::of(&bootstrap.token, now),
            secret: secret.expose().to_owned(),
        },
        workspace: bootstrap.workspace,
        admin_user: bootstrap.user,
        admin_role: bootstrap.role,
    })
}

/// Applies a settings patch, field by field.
pub fn patch_settings(
    mut s: WorkspaceSettings,
    p: &keyward_core::api::SettingsPatch,
) -> Result<WorkspaceSettings, DomainError> {
    if let Some(v) = &p.token_prefix {
        s.token_prefix = v.clone();
    }
    if let Some(v) = p.default_rate_limit_per_minute {
        s.default_rate_limit_per_minute = v;
    }
    if let Some(v) = p.default_rate_limit_per {
        s.default_rate_limit_per = v;
    }
    if let Some(v) = p.token_max_lifetime_days {
        s.token_max_lifetime_days = v;
    }
    if let Some(v) = p.expiry_warning_days {
        s.expiry_warning_days = v;
    }
    if let Some(v) = p.require_2fa {
        s.require_2fa = v;
    }
    if let Some(v) = p.require_approval {
        s.require_approval = v;
    }
    if let Some(v) = p.approvals_required {
        s.approvals_required = v;
    }
    if let Some(v) = p.approval_expiry_hours {
        s.approval_expiry_hours = v;
    }
    if let Some(v) = &p.ip_allowlist {
        s.ip_allowlist = v.parse("settings.ip_allowlist")?;
    }
    if let Some(v) = &p.internal_networks {
        s.internal_networks = v.parse("settings.internal_networks")?;
    }
    validate::settings(&s)?;
    Ok(s)
}
