//! A refused admin call says when to come back: a token limited to 3 requests a minute gets
//! its 3 calls of `GET /v1/workspace`, then 429 problem+json `RATE_LIMITED` with
//! `Retry-After` (whole seconds until one more passes), `RateLimit-Policy` naming the quota
//! and `RateLimit` with nothing remaining. A refusal costs nothing, exactly one call passes once
//! `Retry-After` has elapsed (on the manual clock), and another token is not affected.

use chrono::Duration;
use keyward_core::model::Scope;

use crate::support::{both_backends, token_request, TestApp};

/// The status, the headers that matter and the body of one `GET /v1/workspace` as `secret`.
struct Answer {
    status: u16,
    content_type: Option<String>,
    retry_after: Option<String>,
    policy: Option<String>,
    state: Option<String>,
    body: serde_json::Value,
}

async fn get_workspace(app: &TestApp, secret: &str) -> Answer {
    let (http, base) = app.http_from("127.0.0.1");
    let res = http
        .get(format!("{base}/v1/workspace"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (content_type, retry_after, policy, state) = (
        header("content-type"),
        header("retry-after"),
        header("ratelimit-policy"),
        header("ratelimit"),
    );
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        content_type,
        retry_after,
        policy,
        state,
        body,
    }
}

/// Checks `a` is the 429 of a 3/min quota with `retry` seconds to wait and `reset` seconds
/// until the whole quota is back.
fn assert_refused(a: &Answer, retry: u64, reset: u64, secret: &str) {
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(a.content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(a.body["code"], "RATE_LIMITED");
    assert_eq!(a.body["status"], 429);
    let retry_after: u64 = a
        .retry_after
        .as_deref()
        .expect("a 429 carries Retry-After")
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(retry_after > 0);
    assert_eq!(retry_after, retry, "one call per 20 s at 3/min");
    assert_eq!(a.policy.as_deref(), Some("\"token\";q=3;w=60"));
    assert_eq!(
        a.state.as_deref(),
        Some(format!("\"token\";r=0;t={reset}").as_str())
    );
    assert!(!a.body.to_string().contains(secret));
}

async fn a_refused_admin_call_answers_429_with_rate_limit_headers(app: TestApp) {
    let role = app
        .api_role("Reader", Scope::Workspace, &["keyward.workspace:read"])
        .await;
    let user = app.service_user("scripted", Some(role.id)).await;
    let mut req = token_request(&user);
    req.rate_limit_per_minute = Some(3);
    let limited = app.admin.create_token(&req).await.unwrap();
    let secret = limited.secret.as_str();

    for n in 1..=3 {
        let a = get_workspace(&app, secret).await;
        assert_eq!(a.status, 200, "call {n} of 3: {}", a.body);
        assert_eq!(a.retry_after, None);
    }
    // The fourth, at the same instant: 20 s until one more passes, 60 s until all 3 do.
    assert_refused(&get_workspace(&app, secret).await, 20, 60, secret);
    // A refusal is not counted: asking again changes nothing.
    assert_refused(&get_workspace(&app, secret).await, 20, 60, secret);
    // Another token has its own quota.
    let other = get_workspace(&app, &app.admin_secret).await;
    assert_eq!(other.status, 200, "{}", other.body);

    // One second early: still refused, and told so.
    app.clock.advance(Duration::seconds(19));
    assert_refused(&get_workspace(&app, secret).await, 1, 41, secret);
    // Retry-After was true: exactly one call passes, then the next waits a full interval.
    app.clock.advance(Duration::seconds(1));
    let a = get_workspace(&app, secret).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_refused(&get_workspace(&app, secret).await, 20, 60, secret);
}
both_backends!(a_refused_admin_call_answers_429_with_rate_limit_headers);
