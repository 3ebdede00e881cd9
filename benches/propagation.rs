//! Propagation: how long after a change made on one node has been acknowledged another node's
//! decisions follow it. Two embedded gates (two nodes, each with its own cache, pool and
//! change feed) share a fresh schema of PostgreSQL. Gate A's store flips the token's role
//! between granting `orders:read` and not, 1,000 times (`KEYWARD_BENCH_CHANGES`); after each
//! commit returns, gate B is asked (a cached decision, then the reload the change forces)
//! until its answer changes. Reported: p50, p99 and max over the changes.
//!
//! `cargo bench --manifest-path benches/Cargo.toml --bench propagation`; PostgreSQL from
//! `KEYWARD_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`). The
//! caches' TTL is a day, so only the change feed can explain a change seen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use http::{Request, StatusCode};
use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::PermissionPattern;
use keyward_tower::{Gate, GateOptions, KeywardLayer, PeerAddr};
use sqlx::Connection;
use tower_layer::Layer;
use tower_service::Service;

fn main() {
    let url = std::env::var("KEYWARD_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let changes: usize = std::env::var("KEYWARD_BENCH_CHANGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&url, changes));
}

async fn run(url: &str, changes: usize) {
    let schema = format!("kwbench_{}_{}", std::process::id(), Utc::now().timestamp());
    let mut options: GateOptions = toml::from_str(
        r#"
        cache.ttl_secs = 86400
        [[edge.routes]]
        route = "GET /orders/{id}"
        permissions = ["orders:read"]
        "#,
    )
    .unwrap();
    options.database_url = url.to_owned();
    options.schema = schema.clone();
    options.audit.chain_key = "6b".repeat(32);
    let a = match Gate::open(&options).await {
        Ok(gate) => Arc::new(gate),
        Err(e) => {
            eprintln!("propagation: SKIPPED, PostgreSQL at {url} cannot be used: {e}");
            return;
        }
    };
    let b = Arc::new(Gate::open(&options).await.unwrap());
    let boot = fixture::bootstrap(&a).await;
    let bearer = format!("Bearer {}", boot.secret);
    let mut on_b = KeywardLayer::new(b.clone()).layer(fixture::Trivial);
    let ask = |on_b: &mut _| {
        let req = Request::get("/orders/7")
            .header(http::header::AUTHORIZATION, bearer.as_str())
            .extension(PeerAddr("203.0.113.9:4711".parse().unwrap()))
            .body(())
            .unwrap();
        Service::call(on_b, req)
    };
    assert_eq!(ask(&mut on_b).await.unwrap().status(), StatusCode::OK);

    let grants = [
        vec![PermissionPattern::parse("orders:read").unwrap()],
        vec![PermissionPattern::parse("orders:write").unwrap()],
    ];
    let mut took = Vec::with_capacity(changes);
    for i in 0..changes {
        // Change 0 takes orders:read away, change 1 gives it back, and so on.
        let allowed_after = i % 2 == 1;
        let mut role = a
            .store()
            .role_versioned(boot.workspace, boot.role)
            .await
            .unwrap()
            .unwrap();
        role.value.permissions = grants[usize::from(!allowed_after)].clone();
        role.value.updated_at = Utc::now();
        let audit = AuditDraft::new(
            boot.workspace,
            Utc::now(),
            Actor::SYSTEM,
            "role.updated",
            "role",
            boot.role.to_string(),
        );
        a.store().update_role(&role, &audit).await.unwrap();
        let committed = Instant::now();
        loop {
            let status = ask(&mut on_b).await.unwrap().status();
            if (status == StatusCode::OK) == allowed_after {
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(10),
                "change {i} never arrived"
            );
            tokio::task::yield_now().await;
        }
        took.push(committed.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1];
    println!(
        "propagation over {changes} role edits, node A's commit → node B's decision: \
         p50 {:?}, p99 {:?}, max {:?}",
        at(0.50),
        at(0.99),
        took[took.len() - 1]
    );
    a.shutdown().await;
    b.shutdown().await;
    drop(on_b);
    if let Ok(mut conn) = sqlx::PgConnection::connect(url).await {
        let _ = sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await;
    }
}
