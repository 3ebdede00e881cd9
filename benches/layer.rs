//! The embedded layer's added cost per request: a trivial tower service called in process
//! (no network) through `KeywardLayer` with a cached token, against the same service alone.
//! The token is real (a workspace bootstrapped into a SQLite file in the temp directory), so
//! the usage writer stores what the layer records, on a runtime worker off the measured thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::Utc;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::model::{RoleKind, Scope, TokenStatus, UserKind, Workspace};
use keyward_core::{
    CatalogueEntry, Permission, PermissionPattern, Role, RoleId, Token, TokenHasher, TokenId,
    TokenSecret, User, UserId, WorkspaceId,
};
use keyward_store::WorkspaceBootstrap;
use keyward_tower::{Gate, GateOptions, KeywardLayer, PeerAddr};
use rand_core::OsRng;
use tower_layer::Layer;
use tower_service::Service;

/// Answers every request with an empty 200.
#[derive(Clone)]
struct Trivial;

impl Service<Request<()>> for Trivial {
    type Response = Response<Bytes>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Bytes>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        black_box(&req);
        ready(Ok(Response::new(Bytes::new())))
    }
}

/// A workspace with a `orders:read` api role, a service user holding it and a token with a
/// limit no bench reaches; returns the token's secret.
async fn bootstrap(gate: &Gate) -> String {
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
    let store = gate.store();
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
    secret.expose().to_owned()
}

fn request(bearer: Option<&str>) -> Request<()> {
    let mut b = Request::get("/orders/7").extension(PeerAddr("203.0.113.9:4711".parse().unwrap()));
    if let Some(value) = bearer {
        b = b.header(http::header::AUTHORIZATION, value);
    }
    b.body(()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("keyward-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut options: GateOptions = toml::from_str(
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
    let gate = Arc::new(rt.block_on(Gate::open(&options)).unwrap());
    let secret = rt.block_on(bootstrap(&gate));
    let bearer = format!("Bearer {secret}");

    let mut bare = Trivial;
    let mut layered = KeywardLayer::new(gate.clone()).layer(Trivial);
    // The first call loads the token into the cache; every measured one is a cache hit.
    let first = rt.block_on(layered.call(request(Some(&bearer)))).unwrap();
    assert_eq!(first.status(), 200);

    let mut group = c.benchmark_group("layer");
    group.bench_function("trivial service alone", |b| {
        b.iter(|| rt.block_on(bare.call(request(Some(&bearer)))).unwrap())
    });
    group.bench_function("through KeywardLayer, cached token", |b| {
        b.iter(|| {
            let res = rt.block_on(layered.call(request(Some(&bearer)))).unwrap();
            debug_assert_eq!(res.status(), 200);
            res
        })
    });
    group.bench_function("through KeywardLayer, no credential (401)", |b| {
        b.iter(|| rt.block_on(layered.call(request(None))).unwrap())
    });
    group.finish();

    rt.block_on(gate.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
