//! Cold load: the latency of `Store::load_verification` (what the gate runs on a cache miss),
//! the store's single statement against the five reads it replaced
//! (`keyward_store::load_verification_by_parts`), on SQLite (a temp file) and PostgreSQL (a
//! fresh schema), for a plain workspace and a large one (7,000 allowlist entries in its
//! settings, 500 catalogue entries). The two are timed alternately, `KEYWARD_BENCH_LOADS`
//! times each (default 2,000); reported: p50 and p99 per case.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench cold_load`; PostgreSQL from
//! `KEYWARD_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`; skipped
//! when it cannot be used).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use keyward_core::audit::{Actor, AuditDraft, ChainKey};
use keyward_core::ip::IpAllowlist;
use keyward_core::model::{RoleKind, Scope, TokenStatus, UserKind, Workspace};
use keyward_core::{
    CatalogueEntry, Permission, PermissionPattern, Role, RoleId, Token, TokenHash, TokenHasher,
    TokenId, TokenSecret, User, UserId, WorkspaceId,
};
use keyward_store::{Store, StoreOptions, Versioned, WorkspaceBootstrap};
use rand_core::OsRng;
use sqlx::Connection;

fn main() {
    let url = std::env::var("KEYWARD_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let loads: usize = std::env::var("KEYWARD_BENCH_LOADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let path = std::env::temp_dir().join(format!("keyward-cold-{}.db", std::process::id()));
        let sqlite = options(format!("sqlite://{}", path.display()), None);
        bench("sqlite", keyward_store::open(&sqlite).await.unwrap(), loads).await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let schema = format!("kwbench_cold_{}", std::process::id());
        match keyward_store::open(&options(url.clone(), Some(schema.clone()))).await {
            Ok(store) => {
                bench("postgres", store, loads).await;
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Err(e) => eprintln!("cold_load: postgres SKIPPED, {url} cannot be used: {e}"),
        }
    });
}

fn options(url: String, schema: Option<String>) -> StoreOptions {
    StoreOptions {
        url,
        schema,
        max_connections: 4,
        chain_key: ChainKey::from_bytes([0x6b; 32]),
        sqlite_synchronous: keyward_store::SqliteSync::Normal,
    }
}

async fn bench(backend: &str, store: Arc<dyn Store>, loads: usize) {
    for (what, allowlist, catalogue) in [
        ("plain", 0, 1),
        ("7,000 allowlist + 500 catalogue", 7_000, 500),
    ] {
        let hash = workspace(&store, allowlist, catalogue).await;
        let (mut one, mut parts) = (Vec::new(), Vec::new());
        for i in 0..loads + 100 {
            let a = Instant::now();
            let x = store.load_verification(&hash).await.unwrap();
            let a = a.elapsed();
            let b = Instant::now();
            let y = keyward_store::load_verification_by_parts(store.as_ref(), &hash)
                .await
                .unwrap();
            let b = b.elapsed();
            assert_eq!(x, y);
            // The first 100 of each warm the pool and the statement caches.
            if i >= 100 {
                one.push(a);
                parts.push(b);
            }
        }
        // Of which decoding the workspace's settings (its allowlist parsed and merged).
        let w = store
            .load_verification(&hash)
            .await
            .unwrap()
            .unwrap()
            .workspace;
        let text = serde_json::to_string(&w.settings).unwrap();
        let mut decode = (0..loads.min(500))
            .map(|_| {
                let at = Instant::now();
                let s: keyward_core::model::WorkspaceSettings =
                    serde_json::from_str(&text).unwrap();
                std::hint::black_box(s);
                at.elapsed()
            })
            .collect::<Vec<_>>();
        println!(
            "cold load, {backend}, {what}: five reads {} | one statement {} | settings decode alone {}",
            shown(&mut parts),
            shown(&mut one),
            shown(&mut decode)
        );
    }
}

fn shown(took: &mut [Duration]) -> String {
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1];
    format!(
        "p50 {:.0} µs, p99 {:.0} µs",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    )
}

/// A workspace with `allowlist` addresses in its settings and `catalogue` own entries, whose
/// token inherits its owner's role; returns the token's hash.
async fn workspace(store: &Arc<dyn Store>, allowlist: usize, catalogue: usize) -> TokenHash {
    let now = Utc::now();
    let ws = WorkspaceId::random(&mut OsRng);
    let audit = |action: &str| AuditDraft::new(ws, now, Actor::SYSTEM, action, "workspace", "b");
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
        permissions: vec![PermissionPattern::parse("svc000:read").unwrap()],
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
        request_log: false,
        rate_limit_per_minute: None,
        rate_limit_per: keyward_core::RateLimitPer::Token,
        created_at: now,
        updated_at: now,
        revoked_at: None,
        family_id: None,
        rotated_from: None,
        created_by: None,
    };
    let hash = token.hash;
    let b = WorkspaceBootstrap {
        workspace: workspace.clone(),
        role,
        extra_roles: Vec::new(),
        user,
        token,
    };
    store
        .bootstrap_workspace(&b, &audit("workspace.created"))
        .await
        .unwrap();
    if allowlist > 0 {
        let text: Vec<String> = (0..allowlist)
            .map(|i| format!("10.{}.{}.1", i / 250, i % 250))
            .collect();
        let mut w = workspace;
        w.settings.ip_allowlist = IpAllowlist::parse_input(&text.join("\n"), "ips").unwrap();
        let version = store
            .workspace_versioned(ws)
            .await
            .unwrap()
            .unwrap()
            .version;
        let v = Versioned { value: w, version };
        store
            .update_workspace(&v, &audit("workspace.updated"))
            .await
            .unwrap();
    }
    for i in 0..catalogue {
        let entry = CatalogueEntry {
            permission: Permission::parse(&format!("svc{i:03}:read")).unwrap(),
            description: format!("Read service {i}"),
            builtin: false,
        };
        store
            .put_permission(ws, &entry, &audit("permission.put"))
            .await
            .unwrap();
    }
    hash
}
