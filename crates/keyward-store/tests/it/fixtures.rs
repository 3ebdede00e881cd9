//! Builders of domain objects, and the millisecond normalisation that storage applies.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keyward_core::model::{RoleKind, Scope, TokenStatus, UserKind};
use keyward_core::{
    CatalogueEntry, Permission, PermissionPattern, Role, RoleId, Token, TokenHasher, TokenId,
    TokenSecret, User, UserId, Workspace, WorkspaceId, WorkspaceSettings,
};
use keyward_store::{Store, TokenFilter, Versioned, WorkspaceBootstrap};
use rand_core::OsRng;

/// Now, with a sub-millisecond part, so that truncation by the store is exercised.
pub fn now() -> DateTime<Utc> {
    at(Utc::now().timestamp_millis()) + Duration::nanoseconds(123_456)
}

/// The instant `ms` milliseconds after the epoch (exactly).
pub fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("a representable instant")
}

/// Storage keeps milliseconds: the value as it must read back.
pub trait Ms {
    fn ms(&self) -> Self;
}

impl Ms for DateTime<Utc> {
    fn ms(&self) -> Self {
        at(self.timestamp_millis())
    }
}

impl Ms for Option<DateTime<Utc>> {
    fn ms(&self) -> Self {
        self.as_ref().map(Ms::ms)
    }
}

impl Ms for Workspace {
    fn ms(&self) -> Self {
        Self {
            created_at: self.created_at.ms(),
            updated_at: self.updated_at.ms(),
            ..self.clone()
        }
    }
}

impl Ms for User {
    fn ms(&self) -> Self {
        Self {
            created_at: self.created_at.ms(),
            updated_at: self.updated_at.ms(),
            ..self.clone()
        }
    }
}

impl Ms for Role {
    fn ms(&self) -> Self {
        Self {
            created_at: self.created_at.ms(),
            updated_at: self.updated_at.ms(),
            ..self.clone()
        }
    }
}

impl Ms for Token {
    fn ms(&self) -> Self {
        Self {
            not_before: self.not_before.ms(),
            expires_at: self.expires_at.ms(),
            created_at: self.created_at.ms(),
            updated_at: self.updated_at.ms(),
            revoked_at: self.revoked_at.ms(),
            ..self.clone()
        }
    }
}

impl<T: Ms> Ms for Vec<T> {
    fn ms(&self) -> Self {
        self.iter().map(Ms::ms).collect()
    }
}

pub fn patterns(texts: &[&str]) -> Vec<PermissionPattern> {
    texts
        .iter()
        .map(|t| PermissionPattern::parse(t).expect("a valid pattern"))
        .collect()
}

pub fn permission(text: &str) -> Permission {
    Permission::parse(text).expect("a valid permission")
}

pub fn entry(text: &str, description: &str) -> CatalogueEntry {
    CatalogueEntry {
        permission: permission(text),
        description: description.to_owned(),
        builtin: false,
    }
}

pub fn workspace(name: &str, created_at: DateTime<Utc>) -> Workspace {
    Workspace {
        id: WorkspaceId::random(&mut OsRng),
        name: name.to_owned(),
        operator: false,
        settings: WorkspaceSettings::default(),
        created_at,
        updated_at: created_at,
    }
}

pub fn role(ws: WorkspaceId, name: &str, kind: RoleKind) -> Role {
    let t = now();
    Role {
        id: RoleId::random(&mut OsRng),
        workspace_id: ws,
        name: name.to_owned(),
        description: format!("the {name} role"),
        kind,
        scope: Scope::Workspace,
        permissions: patterns(&["orders:read", "orders:write"]),
        ip_allowlist: Default::default(),
        rate_limit_per_minute: None,
        rate_limit_per: keyward_core::RateLimitPer::Token,
        created_at: t,
        updated_at: t,
    }
}

pub fn user(ws: WorkspaceId, kind: UserKind, name: &str) -> User {
    let t = now();
    User {
        id: UserId::random(&mut OsRng),
        workspace_id: ws,
        kind,
        name: name.to_owned(),
        email: None,
        role_id: None,
        disabled: false,
        created_at: t,
        updated_at: t,
    }
}

/// An active token of `owner` without a role, narrowing, expiry or metadata.
pub fn token(owner: &User, name: &str) -> Token {
    token_with_secret(owner, name).0
}

pub fn token_with_secret(owner: &User, name: &str) -> (Token, TokenSecret) {
    let secret = TokenSecret::generate("kw", &mut OsRng);
    let t = now();
    let token = Token {
        id: TokenId::random(&mut OsRng),
        workspace_id: owner.workspace_id,
        owner_id: owner.id,
        role_id: None,
        permissions: None,
        name: name.to_owned(),
        metadata: serde_json::json!({}),
        status: TokenStatus::Active,
        hash: TokenHasher::default().hash(&secret),
        start: secret.display_start(),
        not_before: None,
        expires_at: None,
        ip_allowlist: Default::default(),
        internal_only: false,
        request_log: false,
        rate_limit_per_minute: None,
        rate_limit_per: keyward_core::RateLimitPer::Token,
        created_at: t,
        updated_at: t,
        revoked_at: None,
        family_id: None,
        rotated_from: None,
        created_by: Some(owner.id),
    };
    (token, secret)
}

/// A new workspace with its admin role, service user (holding the role) and token (inheriting
/// it), as the server bootstraps one.
pub fn bootstrap(name: &str) -> WorkspaceBootstrap {
    let ws = workspace(name, now());
    let mut admin_role = role(ws.id, "admin", RoleKind::Api);
    admin_role.permissions = patterns(&["*", "keyward.*"]);
    let mut admin = user(ws.id, UserKind::Service, "admin");
    admin.role_id = Some(admin_role.id);
    let admin_token = token(&admin, "bootstrap");
    WorkspaceBootstrap {
        workspace: ws,
        role: admin_role,
        extra_roles: vec![],
        user: admin,
        token: admin_token,
    }
}

/// Bootstraps a new workspace in `store`.
pub async fn new_workspace(store: &Arc<dyn Store>, name: &str) -> WorkspaceBootstrap {
    let b = bootstrap(name);
    store
        .bootstrap_workspace(&b, &ev(&b))
        .await
        .expect("bootstrapping a workspace");
    b
}

/// A token filter that keeps everything.
pub fn any_token() -> TokenFilter {
    TokenFilter {
        owner_id: None,
        role_id: None,
        status: None,
        now: Utc::now(),
    }
}

/// Something that belongs to a workspace, so a test can audit a change of it.
pub trait Workspaced {
    /// The workspace.
    fn ws(&self) -> WorkspaceId;
}

impl Workspaced for WorkspaceId {
    fn ws(&self) -> WorkspaceId {
        *self
    }
}
impl Workspaced for Workspace {
    fn ws(&self) -> WorkspaceId {
        self.id
    }
}
impl Workspaced for WorkspaceBootstrap {
    fn ws(&self) -> WorkspaceId {
        self.workspace.id
    }
}
impl Workspaced for User {
    fn ws(&self) -> WorkspaceId {
        self.workspace_id
    }
}
impl Workspaced for Role {
    fn ws(&self) -> WorkspaceId {
        self.workspace_id
    }
}
impl Workspaced for Token {
    fn ws(&self) -> WorkspaceId {
        self.workspace_id
    }
}
impl<T: Workspaced> Workspaced for &T {
    fn ws(&self) -> WorkspaceId {
        (*self).ws()
    }
}

/// The audit event of a change made by the system in `x`'s workspace.
pub fn ev<T: Workspaced>(x: &T) -> keyward_core::audit::AuditDraft {
    keyward_core::audit::AuditDraft::new(
        x.ws(),
        now(),
        keyward_core::audit::Actor::SYSTEM,
        "test.change",
        "test",
        "x",
    )
}

/// The version `t`'s row is at now (0 when it is gone), as a fresh read would carry it.
pub async fn version_of_token(store: &Arc<dyn Store>, t: &Token) -> i64 {
    let v = store.token_versioned(t.workspace_id, t.id).await.unwrap();
    v.map_or(0, |v| v.version)
}

/// Stores `t` as a change computed from a fresh read (so it is not refused as stale).
pub async fn put_token(
    store: &Arc<dyn Store>,
    t: &Token,
    audit: &keyward_core::audit::AuditDraft,
) -> keyward_store::Result<()> {
    let version = version_of_token(store, t).await;
    let v = Versioned {
        value: t.clone(),
        version,
    };
    store.update_token(&v, audit).await
}

/// Like [`put_token`], for a role.
pub async fn put_role(
    store: &Arc<dyn Store>,
    r: &Role,
    audit: &keyward_core::audit::AuditDraft,
) -> keyward_store::Result<()> {
    let v = store.role_versioned(r.workspace_id, r.id).await.unwrap();
    let version = v.map_or(0, |v| v.version);
    store
        .update_role(
            &Versioned {
                value: r.clone(),
                version,
            },
            audit,
        )
        .await
}

/// Like [`put_token`], for a user.
pub async fn put_user(
    store: &Arc<dyn Store>,
    u: &User,
    audit: &keyward_core::audit::AuditDraft,
) -> keyward_store::Result<()> {
    let v = store.user_versioned(u.workspace_id, u.id).await.unwrap();
    let version = v.map_or(0, |v| v.version);
    store
        .update_user(
            &Versioned {
                value: u.clone(),
                version,
            },
            audit,
        )
        .await
}

/// Like [`put_token`], for a workspace.
pub async fn put_workspace(
    store: &Arc<dyn Store>,
    w: &Workspace,
    audit: &keyward_core::audit::AuditDraft,
) -> keyward_store::Result<()> {
    let v = store.workspace_versioned(w.id).await.unwrap();
    let version = v.map_or(0, |v| v.version);
    store
        .update_workspace(
            &Versioned {
                value: w.clone(),
                version,
            },
            audit,
        )
        .await
}

/// `old` rotated to `new`, as a rotation that read `old` just now.
pub async fn rotate(
    store: &Arc<dyn Store>,
    old: &Token,
    new: &Token,
    audit: &keyward_core::audit::AuditDraft,
) -> keyward_store::Result<()> {
    let version = version_of_token(store, old).await;
    let v = Versioned {
        value: old.clone(),
        version,
    };
    store.rotate_token(&v, new, audit).await
}
