//! Webhooks end to end: deliveries reach a real local receiver, signed (checked here with an
//! independent HMAC), retried with backoff on the manual clock and logged; filters and
//! disabled subscriptions are respected; the secret is shown once; bad URLs are refused.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{Backend, TestApp};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

/// A local HTTP receiver answering scripted statuses (then 200).
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(script: &[u16]) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (g, s) = (got.clone(), script.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    g.lock().unwrap().push(Received { headers, body });
                    let code = s.lock().unwrap().pop_front().unwrap_or(200);
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got }
    }

    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// Waits for `cond`; the bound only keeps a broken worker from hanging the suite.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Fast polling, 1 s base backoff.
pub fn fast(c: &mut keyward_server::Config) {
    c.webhooks.poll_interval_ms = 20;
    c.webhooks.backoff_base_secs = 1;
    c.webhooks.backoff_max_secs = 60;
}

/// An authenticated raw call; answers the status and JSON body.
pub async fn call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http
        .request(method.parse().unwrap(), format!("{}{path}", app.url))
        .bearer_auth(&app.admin_secret);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Creates a subscription; answers its id and secret.
pub async fn subscribe(app: &TestApp, body: Value) -> (String, String) {
    let (status, created) = call(app, "POST", "/v1/webhooks", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    (
        created["webhook"]["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn attempts(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, page) = call(app, "GET", &format!("/v1/webhooks/{id}/deliveries"), None).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn wait_attempts(app: &TestApp, id: &str, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let log = attempts(app, id).await;
        if log.len() >= n {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the delivery log never reached {n} attempts");
}

/// The signature as the Standard Webhooks scheme defines it, computed independently.
fn expected_signature(secret: &str, r: &Received) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert!((24..=32).contains(&key.len()));
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", r.body).as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

async fn service_token(app: &TestApp) -> keyward_core::api::CreatedToken {
    let owner = app.orders_reader().await;
    app.token_for(&owner).await
}

mod signed_retried {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(app) = TestApp::spawn_with(Backend::Sqlite, fast).await {
            signed_retried_and_logged(app).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = TestApp::spawn_with(Backend::Postgres, fast).await {
            signed_retried_and_logged(app).await;
        }
    }
}

async fn signed_retried_and_logged(app: TestApp) {
    let rx = Receiver::start(&[500, 500]).await;
    let (id, secret) = subscribe(
        &app,
        json!({"url": rx.url, "event_types": ["token.created"], "description": "erp"}),
    )
    .await;
    let created = service_token(&app).await;

    wait_attempts(&app, &id, 1).await;
    app.clock.advance(chrono::Duration::seconds(1));
    wait_attempts(&app, &id, 2).await;
    // Not yet due: the second retry waits 2 s.
    app.clock.advance(chrono::Duration::seconds(1));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(rx.count(), 2);
    app.clock.advance(chrono::Duration::seconds(1));
    let log = wait_attempts(&app, &id, 3).await;

    assert_eq!(log.len(), 3, "{log:?}");
    let codes: Vec<_> = log.iter().map(|a| a["status_code"].as_u64()).collect();
    assert_eq!(codes, vec![Some(500), Some(500), Some(200)]);
    assert_eq!(log.iter().filter(|a| a["succeeded"] == true).count(), 1);
    assert_eq!(log[2]["delivery_status"], "succeeded");
    assert_eq!(log[0]["delivery_status"], "pending");
    assert_eq!(log[0]["event_type"], "token.created");

    let got = rx.all();
    assert_eq!(got.len(), 3);
    let event_id = got[0].headers["webhook-id"].to_str().unwrap().to_owned();
    assert!(event_id.starts_with("msg_"));
    for r in &got {
        assert_eq!(r.headers["webhook-id"], event_id.as_str());
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(
            r.headers["webhook-signature"].to_str().unwrap(),
            expected_signature(&secret, r)
        );
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["type"], "token.created");
        assert_eq!(body["data"]["id"], created.token.id.to_string());
        assert_eq!(body["data"]["status"], "active");
        assert!(body["timestamp"].is_string());
        assert!(!r.body.contains(&created.secret));
    }
    // Timestamps follow the injected clock.
    let ts: Vec<i64> = got
        .iter()
        .map(|r| {
            r.headers["webhook-timestamp"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(ts[1] - ts[0], 1);
    assert_eq!(ts[2] - ts[1], 2);
    assert!(!crate::support::logs_contain(&secret));
}

mod filters {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(app) = TestApp::spawn_with(Backend::Sqlite, fast).await {
            filters_disabled_and_secrecy(app).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = TestApp::spawn_with(Backend::Postgres, fast).await {
            filters_disabled_and_secrecy(app).await;
        }
    }
}

async fn filters_disabled_and_secrecy(app: TestApp) {
    let (all, revoked_only, off) = (
        Receiver::start(&[]).await,
        Receiver::start(&[]).await,
        Receiver::start(&[]).await,
    );
    let (all_id, all_secret) = subscribe(&app, json!({"url": all.url})).await;
    let (_, _) = subscribe(
        &app,
        json!({"url": revoked_only.url, "event_types": ["token.revoked"]}),
    )
    .await;
    let (off_id, _) = subscribe(&app, json!({"url": off.url, "enabled": false})).await;

    let created = service_token(&app).await;
    let (status, _) = call(
        &app,
        "POST",
        &format!("/v1/tokens/{}/revoke", created.token.id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    eventually("both events at the catch-all", || all.count() == 2).await;
    eventually("the revocation at the filtered one", || {
        revoked_only.count() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(revoked_only.count(), 1);
    // Deliveries are concurrent and not ordered: compare as a set.
    let mut types: Vec<String> = all
        .all()
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(types, vec!["token.created", "token.revoked"]);
    let body: Value = serde_json::from_str(&revoked_only.all()[0].body).unwrap();
    assert_eq!(body["type"], "token.revoked");
    assert_eq!(body["data"]["status"], "revoked");
    assert_eq!(off.count(), 0, "a disabled subscription gets nothing");
    assert!(attempts(&app, &off_id).await.is_empty());

    // The secret never appears again: not in reads, lists or logs.
    let (_, one) = call(&app, "GET", &format!("/v1/webhooks/{all_id}"), None).await;
    let (_, list) = call(&app, "GET", "/v1/webhooks", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    for v in [&one, &list] {
        let text = v.to_string();
        assert!(
            !text.contains(&all_secret) && !text.contains("secret"),
            "{text}"
        );
    }
    let (status, patched) = call(
        &app,
        "PATCH",
        &format!("/v1/webhooks/{all_id}"),
        Some(json!({"enabled": false, "event_types": ["token.leaked"]})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["enabled"], false);
    assert!(!patched.to_string().contains("secret"));
    let (status, rotated) = call(
        &app,
        "POST",
        &format!("/v1/webhooks/{all_id}/rotate-secret"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != all_secret);
    let (_, again) = call(&app, "GET", &format!("/v1/webhooks/{all_id}"), None).await;
    assert!(!again.to_string().contains(new_secret));
    assert!(!crate::support::logs_contain(&all_secret));
    assert!(!crate::support::logs_contain(new_secret));

    // Bad input is refused, naming the field.
    for bad in [
        json!({"url": "ftp://example.com/x"}),
        json!({"url": "http://"}),
        json!({"url": "not a url"}),
    ] {
        let (status, problem) = call(&app, "POST", "/v1/webhooks", Some(bad)).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["field"], "url");
        assert_eq!(problem["code"], "INVALID_URL");
    }
    let (status, problem) = call(
        &app,
        "POST",
        "/v1/webhooks",
        Some(json!({"url": all.url, "event_types": ["token.exploded"]})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(problem["field"], "event_types[0]");
    let (status, _) = call(&app, "DELETE", &format!("/v1/webhooks/{all_id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, "GET", &format!("/v1/webhooks/{all_id}"), None).await;
    assert_eq!(status, 404);
}
