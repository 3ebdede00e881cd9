//! Usage records end to end: every verified request is stored once, also under concurrency
//! and across a graceful shutdown; `drop` counts what it drops; the usage endpoint's buckets,
//! codes, addresses and endpoints; retention keeps counts in roll-ups; bad parameters.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keyward_client::UsageParams;
use keyward_core::api::VerifyRequest;
use keyward_core::model::Scope;
use keyward_core::usage::{Granularity, UsageReport};
use keyward_core::{Clock, Code};
use keyward_server::usage::WhenFull;

use crate::support::{
    both_backends, code_of, problem_of, token_request, usage_settled, Backend, TestApp,
};

/// A verify call with the client's address, method and path, needing `perms`.
fn call<'a>(
    secret: &'a str,
    ip: String,
    method: &'a str,
    path: &'a str,
    perms: &[&'a str],
) -> VerifyRequest<'a> {
    VerifyRequest {
        token: secret.into(),
        ip: Some(ip.into()),
        method: Some(method.into()),
        path: Some(path.into()),
        permissions: Some(perms.iter().map(|p| (*p).into()).collect()),
    }
}

/// The `i`-th distinct address.
fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256)
}

/// A token of a new service user whose role grants `orders:read`.
async fn token(app: &TestApp) -> keyward_core::api::CreatedToken {
    app.catalogue(&["orders:read", "orders:write"]).await;
    let role = app
        .api_role("Orders", Scope::Workspace, &["orders:read"])
        .await;
    let owner = app.service_user("erp", Some(role.id)).await;
    // Thousands of requests at one instant of the manual clock: above any default limit. A
    // token may give out no higher limit than its own, so the admin's (the workspace
    // default) is raised first.
    let raise = keyward_core::api::WorkspacePatch {
        reason: None,
        name: None,
        settings: Some(keyward_core::api::SettingsPatch {
            default_rate_limit_per_minute: Some(1_000_000),
            ..Default::default()
        }),
    };
    app.admin.update_workspace(&raise).await.unwrap();
    let mut req = token_request(&owner);
    req.rate_limit_per_minute = Some(1_000_000);
    app.admin.create_token(&req).await.unwrap()
}

fn now(app: &TestApp) -> DateTime<Utc> {
    app.clock.as_ref().now()
}

/// A metric's value in the exposition text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

async fn ten_thousand_concurrent_verifies_make_ten_thousand_records(app: TestApp) {
    let created = token(&app).await;
    let secret = Arc::new(created.secret.clone());
    let t0 = now(&app);
    const N: usize = 10_000;
    const TASKS: usize = 64;
    let mut tasks = Vec::new();
    for k in 0..TASKS {
        let client = app.admin.clone();
        let secret = secret.clone();
        tasks.push(tokio::spawn(async move {
            for i in (k..N).step_by(TASKS) {
                // Every tenth request needs a permission the token lacks.
                let perms: &[&str] = if i % 10 == 0 {
                    &["orders:write"]
                } else {
                    &["orders:read"]
                };
                let path = format!("/orders/{}", i % 5);
                let v = client
                    .verify(&call(&secret, ip(i), "GET", &path, perms))
                    .await
                    .unwrap();
                let want = if i % 10 == 0 {
                    Code::InsufficientPermissions
                } else {
                    Code::Valid
                };
                assert_eq!(v.code, want);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The latest request, an hour later: its facts are the last use.
    app.clock.advance(chrono::Duration::hours(1));
    let last = app
        .admin
        .verify(&call(
            &created.secret,
            "192.0.2.7".into(),
            "post",
            "/orders/9?api_key=zzz",
            &[],
        ))
        .await
        .unwrap();
    assert_eq!(last.code, Code::Valid);
    usage_settled(&app, N as u64 + 1).await;

    let metrics = app.admin.metrics().await.unwrap();
    assert_eq!(
        metric(&metrics, "keyward_usage_records_written_total"),
        N as u64 + 1
    );
    assert_eq!(metric(&metrics, "keyward_usage_records_dropped_total"), 0);

    let hour = Granularity::Hour.floor(t0);
    let report = app
        .admin
        .token_usage(
            created.token.id,
            &UsageParams {
                from: Some(hour),
                to: Some(hour + chrono::Duration::hours(2)),
                granularity: Some(Granularity::Hour),
            },
        )
        .await
        .unwrap();
    assert_eq!(report.total, N as u64 + 1);
    assert_eq!(
        report.buckets.iter().map(|b| b.count).collect::<Vec<_>>(),
        vec![N as u64, 1],
        "exactly the concurrent requests in the first hour"
    );
    assert_eq!(report.codes["VALID"], 9_001);
    assert_eq!(report.codes["INSUFFICIENT_PERMISSIONS"], 1_000);
    assert_eq!(report.distinct_ips, N as u64 + 1);
    assert_eq!(report.endpoints.len(), 6);
    assert_eq!(report.endpoints[0].count, 2_000);
    let last_used = report.last_used.unwrap();
    assert_eq!(last_used.at, now(&app));
    assert_eq!(last_used.ip, Some("192.0.2.7".parse().unwrap()));
    assert_eq!(
        last_used.endpoint.as_deref(),
        Some("POST /orders/9"),
        "the method upper-cased, the query string not kept"
    );

    // The token's own view carries the same facts.
    let view = app.admin.token(created.token.id).await.unwrap();
    assert_eq!(view.last_used_at, Some(now(&app)));
    assert_eq!(view.last_used_ip, Some("192.0.2.7".parse().unwrap()));
    assert_eq!(view.last_used_endpoint.as_deref(), Some("POST /orders/9"));
}
both_backends!(ten_thousand_concurrent_verifies_make_ten_thousand_records);

async fn shutdown_writes_every_queued_record(backend: Backend) {
    // Batches that neither fill nor time out during the test, and a tiny channel with
    // back-pressure: only the shutdown can write these records, and none may be dropped.
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.usage.batch_size = 1_000_000;
        c.usage.flush_interval_ms = 3_600_000;
        c.usage.channel_capacity = 4;
        c.usage.when_full = WhenFull::Wait;
    })
    .await
    else {
        return;
    };
    let created = token(&app).await;
    const N: usize = 300;
    let mut tasks = Vec::new();
    for k in 0..8 {
        let client = app.admin.clone();
        let secret = created.secret.clone();
        tasks.push(tokio::spawn(async move {
            for i in (k..N).step_by(8) {
                client
                    .verify(&call(&secret, ip(i), "GET", "/x", &[]))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counters = app.state.usage.counters();
    assert_eq!(
        counters.written.load(Ordering::SeqCst),
        0,
        "nothing flushed yet"
    );

    let t0 = now(&app);
    let token_id = created.token.id;
    let state = app.shutdown().await;
    let c = state.usage.counters();
    assert_eq!(c.written.load(Ordering::SeqCst), N as u64);
    assert_eq!(c.dropped.load(Ordering::SeqCst), 0);
    let stored = state
        .store
        .usage(&keyward_store::UsageQuery {
            workspace_id: created.token.workspace_id,
            token_id,
            from: t0 - chrono::Duration::hours(1),
            to: t0 + chrono::Duration::hours(1),
            granularity: Granularity::Hour,
            top: 1,
        })
        .await
        .unwrap();
    assert_eq!(stored.cells.iter().map(|c| c.2).sum::<u64>(), N as u64);
    assert_eq!(stored.distinct_ips, N as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_writes_every_queued_record_sqlite() {
    shutdown_writes_every_queued_record(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_writes_every_queued_record_postgres() {
    shutdown_writes_every_queued_record(Backend::Postgres).await;
}

/// Holds the database's write lock on usage records until dropped (committed).
enum Lock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

async fn lock_usage_table(app: &TestApp, backend: Backend) -> Lock {
    use sqlx::Connection as _;
    let db = &app.config.database;
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            Lock::Sqlite(conn)
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(&format!(
                "BEGIN; LOCK TABLE \"{}\".usage_minutes IN EXCLUSIVE MODE",
                db.schema
            ))
            .execute(&mut conn)
            .await
            .unwrap();
            Lock::Postgres(conn)
        }
    }
}

async fn unlock(lock: Lock) {
    match lock {
        Lock::Sqlite(mut c) => sqlx::raw_sql("COMMIT").execute(&mut c).await.map(drop),
        Lock::Postgres(mut c) => sqlx::raw_sql("COMMIT").execute(&mut c).await.map(drop),
    }
    .unwrap();
}

async fn drop_policy_counts_what_it_drops(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.usage.channel_capacity = 2;
        c.usage.batch_size = 1;
        c.usage.flush_interval_ms = 1;
        c.usage.when_full = WhenFull::Drop;
    })
    .await
    else {
        return;
    };
    let created = token(&app).await;
    // The writer blocks on its first batch while the table is locked: the batch (1 record)
    // and the channel (2) hold three records at most; the rest must be dropped.
    let lock = lock_usage_table(&app, backend).await;
    const N: u64 = 40;
    for i in 0..N as usize {
        let v = app
            .admin
            .verify(&call(&created.secret, ip(i), "GET", "/x", &[]))
            .await
            .unwrap();
        assert_eq!(
            v.code,
            Code::Valid,
            "verification does not wait for storage"
        );
    }
    let during = app.admin.metrics().await.unwrap();
    assert!(metric(&during, "keyward_usage_records_dropped_total") >= N - 3);
    assert!(metric(&during, "keyward_usage_queue_depth") <= 2);
    unlock(lock).await;
    usage_settled(&app, N).await;

    let metrics = app.admin.metrics().await.unwrap();
    let written = metric(&metrics, "keyward_usage_records_written_total");
    let dropped = metric(&metrics, "keyward_usage_records_dropped_total");
    assert_eq!(written + dropped, N, "{metrics}");
    assert!(dropped >= N - 3, "{metrics}");
    assert_eq!(metric(&metrics, "keyward_usage_queue_depth"), 0);
    let report = app
        .admin
        .token_usage(created.token.id, &UsageParams::default())
        .await
        .unwrap();
    assert_eq!(report.total, written, "what was counted written is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_policy_counts_what_it_drops_sqlite() {
    drop_policy_counts_what_it_drops(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_policy_counts_what_it_drops_postgres() {
    drop_policy_counts_what_it_drops(Backend::Postgres).await;
}

async fn report(
    app: &TestApp,
    id: keyward_core::TokenId,
    from: DateTime<Utc>,
    hours: i64,
    g: Granularity,
) -> UsageReport {
    app.admin
        .token_usage(
            id,
            &UsageParams {
                from: Some(from),
                to: Some(from + chrono::Duration::hours(hours)),
                granularity: Some(g),
            },
        )
        .await
        .unwrap()
}

async fn usage_report_counts_by_hour_day_code_address_and_endpoint(app: TestApp) {
    let created = token(&app).await;
    let id = created.token.id;
    let s = created.secret.as_str();
    let t0 = now(&app); // 12:00
    let a = || "10.0.0.1".to_owned();
    let b = || "10.0.0.2".to_owned();
    let mut sent = 0;
    for (ip, method, path, perms) in [
        (a(), "GET", "/a", &["orders:read"][..]),
        (a(), "GET", "/a", &["orders:read"][..]),
        (a(), "GET", "/a?page=2", &["orders:read"][..]),
        (b(), "DELETE", "/a", &["orders:write"][..]),
    ] {
        app.admin
            .verify(&call(s, ip, method, path, perms))
            .await
            .unwrap();
        sent += 1;
    }
    app.clock.advance(chrono::Duration::minutes(90)); // 13:30
    for _ in 0..2 {
        app.admin
            .verify(&call(s, b(), "POST", "/b", &[]))
            .await
            .unwrap();
        sent += 1;
    }
    app.clock.advance(chrono::Duration::days(1)); // next day, 13:30
    app.admin
        .verify(&call(s, "2001:db8::1".into(), "GET", "/c", &[]))
        .await
        .unwrap();
    sent += 1;
    // Malformed and unknown secrets belong to no token: no record.
    let unknown = keyward_core::TokenSecret::generate("kw", &mut rand_core::OsRng);
    app.admin
        .verify(&call(unknown.expose(), a(), "GET", "/a", &[]))
        .await
        .unwrap();
    usage_settled(&app, sent).await;

    let r = report(&app, id, t0, 3, Granularity::Hour).await;
    assert_eq!((r.from, r.granularity), (t0, Granularity::Hour));
    let buckets: Vec<(String, u64)> = r
        .buckets
        .iter()
        .map(|b| (b.start.format("%H:%M").to_string(), b.count))
        .collect();
    assert_eq!(
        buckets,
        vec![
            ("12:00".into(), 4),
            ("13:00".into(), 2),
            ("14:00".into(), 0)
        ]
    );
    assert_eq!(r.total, 6);
    assert_eq!(r.codes.len(), 2);
    assert_eq!(r.codes["VALID"], 5);
    assert_eq!(r.codes["INSUFFICIENT_PERMISSIONS"], 1);
    assert_eq!(r.distinct_ips, 2);
    let ips: Vec<(&str, u64)> = r.ips.iter().map(|i| (i.ip.as_str(), i.count)).collect();
    assert_eq!(ips, vec![("10.0.0.1", 3), ("10.0.0.2", 3)]);
    let endpoints: Vec<(&str, u64)> = r
        .endpoints
        .iter()
        .map(|e| (e.endpoint.as_str(), e.count))
        .collect();
    assert_eq!(
        endpoints,
        vec![("GET /a", 3), ("POST /b", 2), ("DELETE /a", 1)]
    );
    let last = r.last_used.unwrap();
    assert_eq!(last.ip, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(last.endpoint.as_deref(), Some("GET /c"));

    // By day, over two days, starting mid-day: buckets start at midnight UTC.
    let d = report(&app, id, t0, 48, Granularity::Day).await;
    let days: Vec<(String, u64)> = d
        .buckets
        .iter()
        .map(|b| (b.start.to_rfc3339(), b.count))
        .collect();
    assert_eq!(
        days,
        vec![
            ("2026-06-01T00:00:00+00:00".into(), 6),
            ("2026-06-02T00:00:00+00:00".into(), 1),
            ("2026-06-03T00:00:00+00:00".into(), 0),
        ]
    );
    assert_eq!(d.total, 7);

    // The default: the 7 days of whole hours ending with the current one.
    let default = app
        .admin
        .token_usage(id, &UsageParams::default())
        .await
        .unwrap();
    let hour = chrono::Duration::hours(1);
    assert_eq!(default.to, Granularity::Hour.floor(now(&app)) + hour);
    assert_eq!(default.buckets.len(), 7 * 24);
    assert_eq!(default.total, 7);

    // Seeing usage takes what seeing the token takes.
    let reader_role = app
        .api_role("No admin", Scope::Workspace, &["orders:read"])
        .await;
    let reader = app.service_user("reader", Some(reader_role.id)).await;
    let reader_token = app.token_for(&reader).await;
    let reader = app.client(&reader_token.secret);
    assert_eq!(
        code_of(reader.token_usage(id, &UsageParams::default()).await),
        "INSUFFICIENT_PERMISSIONS"
    );
}
both_backends!(usage_report_counts_by_hour_day_code_address_and_endpoint);

async fn retention_prunes_raw_records_but_keeps_counts(app: TestApp) {
    let created = token(&app).await;
    let id = created.token.id;
    let t0 = now(&app);
    for i in 0..5 {
        app.admin
            .verify(&call(&created.secret, ip(i), "GET", "/r", &[]))
            .await
            .unwrap();
    }
    usage_settled(&app, 5).await;
    let before = report(&app, id, t0, 1, Granularity::Hour).await;
    assert_eq!((before.total, before.distinct_ips), (5, 5));

    // 29 days on, nothing is old enough yet.
    app.clock.advance(chrono::Duration::days(29));
    let m = app.state.usage.maintain_now().await.unwrap();
    assert_eq!(m.rolled_up, 0);

    // Past the raw retention (30 days): rolled up, raw records gone, counts kept.
    app.clock.advance(chrono::Duration::days(2));
    let m = app.state.usage.maintain_now().await.unwrap();
    assert_eq!(m.rolled_up, 5);
    let after = report(&app, id, t0, 1, Granularity::Hour).await;
    assert_eq!(after.total, 5);
    assert_eq!(after.codes["VALID"], 5);
    assert_eq!(after.buckets[0].count, 5);
    assert_eq!(
        after.distinct_ips, 0,
        "addresses only while raw records are kept"
    );
    assert!(after.ips.is_empty() && after.endpoints.is_empty());
    assert_eq!(
        after.last_used, before.last_used,
        "the last use is kept apart"
    );

    // Past the roll-up retention (400 days): gone.
    app.clock.advance(chrono::Duration::days(370));
    let m = app.state.usage.maintain_now().await.unwrap();
    assert_eq!(m.pruned_rollups, 1);
    assert_eq!(report(&app, id, t0, 1, Granularity::Hour).await.total, 0);
}
both_backends!(retention_prunes_raw_records_but_keeps_counts);

async fn bad_usage_parameters_are_refused_by_field(app: TestApp) {
    let created = token(&app).await;
    let id = created.token.id;
    let http = reqwest::Client::new();
    for (query, code, field) in [
        ("from=yesterday", "INVALID_TIME", Some("from")),
        ("to=2026-13-01T00:00:00Z", "INVALID_TIME", Some("to")),
        (
            "granularity=week",
            "INVALID_GRANULARITY",
            Some("granularity"),
        ),
        (
            "from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z",
            "INVALID_RANGE",
            Some("from"),
        ),
        (
            "from=2020-01-01T00:00:00Z&to=2026-06-01T00:00:00Z",
            "RANGE_TOO_LARGE",
            Some("from"),
        ),
        ("since=2026-06-01T00:00:00Z", "INVALID_QUERY", None),
    ] {
        let r = http
            .get(format!("{}/v1/tokens/{id}/usage?{query}", app.url))
            .bearer_auth(&app.admin_secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{query}");
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/problem+json",
            "{query}"
        );
        let p: keyward_core::api::Problem = r.json().await.unwrap();
        assert_eq!(
            (p.code.as_str(), p.field.as_deref()),
            (code, field),
            "{query}"
        );
    }
    // The same range by day is fine.
    let ok = app
        .admin
        .token_usage(
            id,
            &UsageParams {
                from: Some("2020-01-01T00:00:00Z".parse().unwrap()),
                to: Some("2026-06-01T00:00:00Z".parse().unwrap()),
                granularity: Some(Granularity::Day),
            },
        )
        .await
        .unwrap();
    assert_eq!(ok.total, 0);

    // Unknown or malformed ids, and another workspace's tokens, as for the token itself.
    let unknown = keyward_core::TokenId::random(&mut rand_core::OsRng);
    let p = problem_of(
        app.admin
            .token_usage(unknown, &UsageParams::default())
            .await,
    );
    assert_eq!(p.status, 404);
    let r = http
        .get(format!("{}/v1/tokens/usr_nope/usage", app.url))
        .bearer_auth(&app.admin_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}
both_backends!(bad_usage_parameters_are_refused_by_field);

/// `usage.enabled = false`, the measuring aid: verifications work and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_switched_off_records_nothing() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.usage.enabled = false)
        .await
        .unwrap();
    let created = token(&app).await;
    let t0 = now(&app);
    for _ in 0..20 {
        assert_eq!(
            app.verify(&created.secret, &["orders:read"]).await.code,
            Code::Valid
        );
    }
    // Give a writer that should not exist the time to write.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let metrics = app.admin.metrics().await.unwrap();
    assert_eq!(metric(&metrics, "keyward_usage_records_written_total"), 0);
    assert_eq!(metric(&metrics, "keyward_usage_records_dropped_total"), 0);
    let report = report(
        &app,
        created.token.id,
        t0 - chrono::Duration::hours(1),
        2,
        Granularity::Hour,
    )
    .await;
    assert_eq!(report.total, 0);
    assert!(app
        .admin
        .token(created.token.id)
        .await
        .unwrap()
        .last_used_at
        .is_none());
}
