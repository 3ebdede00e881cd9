//! The cost of durable SQLite commits on admin writes: token creates and revokes per second
//! with `sqlite_synchronous = "normal"` and `"full"`. A measurement, not a check, so it is
//! ignored by default:
//! `cargo test -p keyward-server --test it durability -- --ignored --nocapture`.

use std::time::Instant;

use keyward_core::model::Scope;
use keyward_store::SqliteSync;

use crate::support::{token_request, Backend, TestApp};

const N: usize = 200;
const PARALLEL: usize = 8;

async fn measure(sync: SqliteSync) -> (f64, f64, f64) {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.database.sqlite_synchronous = sync)
        .await
        .unwrap();
    let perms = [
        "keyward.tokens:create",
        "keyward.tokens:revoke",
        "keyward.tokens:read",
    ];
    let role = app.api_role("Bench", Scope::Workspace, &perms).await;
    let owner = app.service_user("bench", Some(role.id)).await;
    let mut req = token_request(&owner);
    req.rate_limit_per_minute = Some(1_000_000);
    let bench = app.client(&app.admin.create_token(&req).await.unwrap().secret);

    let started = Instant::now();
    let mut ids = Vec::with_capacity(N);
    for _ in 0..N {
        ids.push(bench.create_token(&req).await.unwrap().token.id);
    }
    let creates = N as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for id in &ids {
        bench.revoke_token(*id).await.unwrap();
    }
    let revokes = N as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..PARALLEL {
        let (bench, req) = (bench.clone(), req.clone());
        tasks.spawn(async move {
            for _ in 0..N / PARALLEL {
                bench.create_token(&req).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let parallel = N as f64 / started.elapsed().as_secs_f64();
    app.shutdown().await;
    (creates, revokes, parallel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn admin_writes_per_second_normal_vs_full() {
    for round in 0..2 {
        for sync in [SqliteSync::Normal, SqliteSync::Full] {
            let (c, r, p) = measure(sync).await;
            println!(
                "round {round} {sync:?}: {c:.0} creates/s, {r:.0} revokes/s sequential; \
                 {p:.0} creates/s with {PARALLEL} in parallel"
            );
        }
    }
}
