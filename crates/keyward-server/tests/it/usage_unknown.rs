//! Unknown and malformed secrets belong to no token and leave no usage record: after many
//! verifies of well-formed unknown secrets and of malformed strings, then two verifies of a
//! real token (one valid, one lacking a permission), the pipeline has written exactly the real
//! token's two records (and dropped none), and the token's usage shows exactly those two.

use std::sync::atomic::Ordering;
use std::time::Duration;

use keyward_client::UsageParams;
use keyward_core::api::VerifyRequest;
use keyward_core::model::Scope;
use keyward_core::{Code, TokenSecret};

use crate::support::{both_backends, TestApp};

/// A verify of `secret` as the product's backend sends it, needing `perms`.
fn call<'a>(secret: &'a str, ip: String, perms: &[&'a str]) -> VerifyRequest<'a> {
    VerifyRequest {
        token: secret.into(),
        ip: Some(ip.into()),
        method: Some("GET".into()),
        path: Some("/orders".into()),
        permissions: Some(perms.iter().map(|p| (*p).into()).collect()),
    }
}

/// Waits until the pipeline has accounted for at least `n` records (written or dropped), then
/// for two more flush intervals and an empty queue, so that anything queued before them is
/// accounted for too. The bound only keeps a broken pipeline from hanging the suite.
async fn settled(app: &TestApp, n: u64) {
    let c = app.state.usage.counters();
    let done = || c.written.load(Ordering::SeqCst) + c.dropped.load(Ordering::SeqCst);
    for _ in 0..6_000 {
        if done() >= n && app.state.usage.queue_depth() == 0 {
            let flush = app.state.usage.config().flush_interval_ms;
            tokio::time::sleep(Duration::from_millis(2 * flush + 100)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "usage pipeline did not account for {n} records: {} done",
        done()
    );
}

/// How many requests the database's usage holds, raw records and minute counts together, read
/// behind the application's back.
async fn usage_rows(app: &TestApp) -> i64 {
    use sqlx::Connection as _;
    let db = &app.config.database;
    let sql = "SELECT CAST((SELECT COUNT(*) FROM usage_records) + \
               (SELECT COALESCE(SUM(requests), 0) FROM usage_minutes) AS BIGINT)";
    if db.url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let path = format!("SET search_path TO \"{}\"", db.schema);
        sqlx::raw_sql(&path).execute(&mut conn).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }
}

/// `secret` with one character of its random part changed: its checksum no longer matches.
fn typo(secret: &str) -> String {
    let mut chars: Vec<char> = secret.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

async fn unknown_and_malformed_secrets_leave_no_usage_record(app: TestApp) {
    app.catalogue(&["orders:read", "orders:write"]).await;
    let role = app
        .api_role("Orders", Scope::Workspace, &["orders:read"])
        .await;
    let owner = app.service_user("erp", Some(role.id)).await;
    let real = app.token_for(&owner).await;
    let malformed = [
        "kw_short".to_owned(),
        "x".repeat(80),
        typo(&real.secret),
        "not a token at all".to_owned(),
    ];
    // Below the brute-force guard's 60 failures a minute, so every answer is the secret's own.
    const EACH: usize = 25;
    for i in 0..EACH {
        let unknown = TokenSecret::generate("kw", &mut rand_core::OsRng);
        let v = app
            .admin
            .verify(&call(unknown.expose(), format!("192.0.2.{i}"), &[]))
            .await
            .unwrap();
        assert_eq!(v.code, Code::NotFound, "unknown secret {i}");
        let bad = &malformed[i % malformed.len()];
        let v = app
            .admin
            .verify(&call(bad, format!("198.51.100.{i}"), &["orders:read"]))
            .await
            .unwrap();
        assert_eq!(v.code, Code::Malformed, "malformed string {}", i % 4);
    }
    // The real token, last: once its records are written, anything queued before is too.
    let v = app
        .admin
        .verify(&call(&real.secret, "203.0.113.1".into(), &["orders:read"]))
        .await
        .unwrap();
    assert_eq!(v.code, Code::Valid);
    let v = app
        .admin
        .verify(&call(&real.secret, "203.0.113.1".into(), &["orders:write"]))
        .await
        .unwrap();
    assert_eq!(v.code, Code::InsufficientPermissions);
    settled(&app, 2).await;

    let c = app.state.usage.counters();
    assert_eq!(
        c.written.load(Ordering::SeqCst),
        2,
        "exactly the real token's verifies are written, none of the {} others",
        2 * EACH
    );
    assert_eq!(c.dropped.load(Ordering::SeqCst), 0);
    assert_eq!(c.write_errors.load(Ordering::SeqCst), 0);
    let usage = app
        .admin
        .token_usage(real.token.id, &UsageParams::default())
        .await
        .unwrap();
    assert_eq!(usage.total, 2);
    assert_eq!(usage.codes.len(), 2);
    assert_eq!(usage.codes["VALID"], 1);
    assert_eq!(usage.codes["INSUFFICIENT_PERMISSIONS"], 1);
    assert_eq!(usage.distinct_ips, 1);
    // The stored requests, whoever they belong to: only those two.
    assert_eq!(usage_rows(&app).await, 2);
}
both_backends!(unknown_and_malformed_secrets_leave_no_usage_record);
