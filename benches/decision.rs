//! Benchmarks of the hot path's pure parts: the decision on a compiled (cached) token, and
//! the format check plus hash that precede the cache lookup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use keyward_core::model::{RoleKind, Scope, TokenStatus, UserKind, Workspace};
use keyward_core::permission::builtin_catalogue;
use keyward_core::{
    decide, CatalogueEntry, CompiledToken, DecisionRequest, Permission, PermissionPattern, Role,
    RoleId, Token, TokenHasher, TokenId, TokenSecret, User, UserId, WorkspaceId,
};
use rand_core::OsRng;

/// A realistic token: a role of 8 patterns over a catalogue of 60 product permissions, a
/// narrowing of 4, metadata, an expiry, two required permissions.
fn compiled() -> CompiledToken {
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let ws = WorkspaceId::random(&mut OsRng);
    let mut catalogue: Vec<CatalogueEntry> = builtin_catalogue();
    for r in [
        "orders",
        "cart",
        "customers",
        "invoices",
        "shipments",
        "products",
        "reports",
        "billing.plans",
        "billing.usage",
        "webhooks",
    ] {
        for a in ["read", "write", "create", "delete", "export", "admin"] {
            catalogue.push(CatalogueEntry {
                permission: Permission::parse(&format!("{r}:{a}")).unwrap(),
                description: String::new(),
                builtin: false,
            });
        }
    }
    let pats = |v: &[&str]| {
        v.iter()
            .map(|s| PermissionPattern::parse(s).unwrap())
            .collect::<Vec<_>>()
    };
    let role = Role {
        id: RoleId::random(&mut OsRng),
        workspace_id: ws,
        name: "Integration".into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::Workspace,
        permissions: pats(&[
            "orders:*",
            "cart:*",
            "customers:read",
            "invoices:read",
            "billing.*:read",
            "reports:export",
            "products:read",
            "shipments:read",
        ]),
        ip_allowlist: Default::default(),
        rate_limit_per_minute: None,
        rate_limit_per: keyward_core::RateLimitPer::Token,
        created_at: t0,
        updated_at: t0,
    };
    let owner = User {
        id: UserId::random(&mut OsRng),
        workspace_id: ws,
        kind: UserKind::Service,
        name: "erp".into(),
        email: None,
        role_id: Some(role.id),
        disabled: false,
        created_at: t0,
        updated_at: t0,
    };
    let secret = TokenSecret::generate("kw", &mut OsRng);
    let token = Token {
        id: TokenId::random(&mut OsRng),
        workspace_id: ws,
        owner_id: owner.id,
        role_id: None,
        permissions: Some(pats(&[
            "orders:*",
            "cart:write",
            "billing.*:read",
            "customers:read",
        ])),
        name: "erp sync".into(),
        metadata: serde_json::json!({"env": "prod", "team": "ops"}),
        status: TokenStatus::Active,
        hash: TokenHasher::default().hash(&secret),
        start: secret.display_start(),
        not_before: Some(t0),
        expires_at: Some(t0 + chrono::Duration::days(365)),
        ip_allowlist: Default::default(),
        internal_only: false,
        request_log: false,
        rate_limit_per_minute: None,
        rate_limit_per: keyward_core::RateLimitPer::Token,
        created_at: t0,
        updated_at: t0,
        revoked_at: None,
        family_id: None,
        rotated_from: None,
        created_by: None,
    };
    let workspace = Workspace {
        id: ws,
        name: "Acme".into(),
        operator: false,
        settings: Default::default(),
        created_at: t0,
        updated_at: t0,
    };
    CompiledToken::compile(&token, &workspace, &owner, Some(&role), &catalogue)
}

fn bench(c: &mut Criterion) {
    let token = compiled();
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let required = [
        Permission::parse("orders:write").unwrap(),
        Permission::parse("billing.usage:read").unwrap(),
    ];
    let ip: std::net::IpAddr = "203.0.113.9".parse().unwrap();
    let internal = keyward_core::ip::IpAllowlist::default();
    c.bench_function("decide (cached token, 2 required permissions)", |b| {
        b.iter(|| {
            decide(
                black_box(&token),
                black_box(&DecisionRequest {
                    now,
                    required: &required,
                    ip: Some(ip),
                    server_internal: &internal,
                }),
            )
        })
    });
    let secret = TokenSecret::generate("kw", &mut OsRng).expose().to_owned();
    let hasher = TokenHasher::default();
    c.bench_function("format check + SHA-256 of a presented secret", |b| {
        b.iter(|| hasher.hash_checked(TokenSecret::check(black_box(&secret)).unwrap()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
