//! What the benches share: a workspace bootstrapped straight into a gate's store.

use chrono::Utc;
use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::model::{RoleKind, Scope, TokenStatus, UserKind, Workspace};
use keyward_core::{
    CatalogueEntry, Permission, PermissionPattern, Role, RoleId, Token, TokenHasher, TokenId,
    TokenSecret, User, UserId, WorkspaceId,
};
use keyward_store::{Store, WorkspaceBootstrap};
use keyward_tower::Gate;
use rand_core::OsRng;

/// A gate's options over a fresh SQLite file in `dir`: tokens cached for a day, and the route
/// the layer benches call, `GET /orders/{id}` needing `orders:read`.
#[allow(dead_code)] // not every bench opens a gate of its own
pub fn orders_gate(dir: &std::path::Path) -> keyward_tower::GateOptions {
    let mut options: keyward_tower::GateOptions = toml::from_str(
        r#"
        sqlite_synchronous = "normal"
        cache.ttl_secs = 86400
        [[edge.routes]]
        route = "GET /orders/{id}"
        permissions = ["orders:read"]
        "#,
    )
    .unwrap();
    options.database_url = format!("sqlite://{}", dir.join("bench.db").display());
    options
}

/// What [`bootstrap`] made (not every bench reads every field).
#[allow(dead_code)]
pub struct Bootstrapped {
    /// The token's secret.
    pub secret: String,
    /// Its workspace.
    pub workspace: WorkspaceId,
    /// The role its owner holds (granting `orders:read`).
    pub role: RoleId,
}

/// A workspace with a `orders:read` api role, a service user holding it and a token with a
/// limit no bench reaches.
pub async fn bootstrap(gate: &Gate) -> Bootstrapped {
    bootstrap_store(gate.store().as_ref()).await
}

/// [`bootstrap`] straight into a store (the server's, in the allocation bench).
pub async fn bootstrap_store(store: &dyn Store) -> Bootstrapped {
    let now = Utc::now();
    let ws = WorkspaceId::random(&mut OsRng);
    let workspace = Workspace {
        id: ws,
        name: "Bench".into(),
        operator: false,
        settings: Default::default(),
        created_at: now,
        updated_at: now,
    };
    let role = Role {
        id: RoleId::random(&mut OsRng),
        workspace_id: ws,
        name: "Reader".into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::Workspace,
        permissions: vec![PermissionPattern::parse("orders:read").unwrap()],
        ip_allowlist: Default::default(),
        rate_limit_per_minute: None,
        rate_limit_per: keyward_core::RateLimitPer::Token,
        created_at: now,
        updated_at: now,
    };
    let role_id = role.id;
    let user = User {
        id: UserId::random(&mut OsRng),
        workspace_id: ws,
        kind: UserKind::Service,
        name: "bench".into(),
        email: None,
        role_id: Some(role.id),
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    let secret = TokenSecret::generate("kw", &mut OsRng);
    let token = Token {
        id: TokenId::random(&mut OsRng),
        workspace_id: ws,
        owner_id: user.id,
        role_id: None,
        permissions: None,
        name: "bench".into(),
        metadata: serde_json::json!({"team": "bench"}),
        status: TokenStatus::Active,
        hash: TokenHasher::default().hash(&secret),
        start: secret.display_start(),
        not_before: None,
        expires_at: None,
        ip_allowlist: Default::default(),
        internal_only: false,
        request_log: false,
        rate_limit_per_minute: Some(1_000_000_000),
        rate_limit_per: keyward_core::RateLimitPer::Token,
        created_at: now,
        updated_at: now,
        revoked_at: None,
        family_id: None,
        rotated_from: None,
        created_by: None,
    };
    let audit = |action: &str| AuditDraft::new(ws, now, Actor::SYSTEM, action, "workspace", "b");
    let b = WorkspaceBootstrap {
        workspace,
        role,
        extra_roles: Vec::new(),
        user,
        token,
    };
    store
        .bootstrap_workspace(&b, &audit("workspace.created"))
        .await
        .unwrap();
    let entry = CatalogueEntry {
        permission: Permission::parse("orders:read").unwrap(),
        description: "orders".into(),
        builtin: false,
    };
    store
        .put_permission(ws, &entry, &audit("permission.put"))
        .await
        .unwrap();
    Bootstrapped {
        secret: secret.expose().to_owned(),
        workspace: ws,
        role: role_id,
    }
}

/// Answers every request with an empty 200 (the service behind the layer in the benches).
#[derive(Clone)]
#[allow(dead_code)] // not every bench puts a layer in front of it
pub struct Trivial;

impl tower_service::Service<http::Request<()>> for Trivial {
    type Response = http::Response<bytes::Bytes>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<()>) -> Self::Future {
        criterion::black_box(&req);
        std::future::ready(Ok(http::Response::new(bytes::Bytes::new())))
    }
}
