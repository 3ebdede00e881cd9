//! `SIGNATURE_MISSING` on the leak route: a report of a live token without
//! `Github-Public-Key-Identifier`, without `Github-Public-Key-Signature`, or without both, is
//! refused with 401 problem+json `SIGNATURE_MISSING` and revokes nothing (no event, no audit
//! entry, the token still verifies); the same body, signed, does revoke it, so the refusals
//! are what kept it alive.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keyward_core::events::EventType;
use keyward_core::Code;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};

use crate::support::{Backend, TestApp};

mod signature_missing_revokes_nothing {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

async fn run(backend: Backend) {
    if let Some((app, key)) = crate::leaks::spawn_with_leak_key(backend).await {
        signature_missing(app, key).await;
    }
}

/// Posts `body` to the leak route with the given signature headers; the status, the content
/// type and the body.
async fn post(
    app: &TestApp,
    key_id: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/leaks/github", app.url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(id) = key_id {
        req = req.header("Github-Public-Key-Identifier", id);
    }
    if let Some(sig) = signature {
        req = req.header("Github-Public-Key-Signature", sig);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        content_type,
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn leak_events(app: &TestApp, token: &keyward_core::api::CreatedToken) -> usize {
    let events = app
        .state
        .store
        .list_events(
            token.token.workspace_id,
            &keyward_store::PageRequest {
                limit: 100,
                after: None,
            },
        )
        .await
        .unwrap();
    events
        .iter()
        .filter(|e| {
            matches!(
                e.event_type,
                EventType::TokenLeaked | EventType::TokenRevoked
            )
        })
        .filter(|e| e.payload["data"]["id"] == token.token.id.to_string())
        .count()
}

async fn leak_audits(app: &TestApp, token: &keyward_core::api::CreatedToken) -> usize {
    let mut n = 0;
    for action in ["token.leaked", "token.revoked"] {
        let q = keyward_core::audit::AuditQuery {
            token: Some(token.token.id.to_string()),
            action: Some(action.into()),
            ..Default::default()
        };
        n += app.admin.audit(&q).await.unwrap().items.len();
    }
    n
}

async fn signature_missing(app: TestApp, key: SigningKey) {
    let owner = app.orders_reader().await;
    let leaked = app.token_for(&owner).await;
    let body = serde_json::to_vec(&json!([{
        "token": leaked.secret,
        "type": "keyward_token",
        "url": "https://github.com/o/r/blob/x",
        "source": "content",
    }]))
    .unwrap();
    let signature = STANDARD.encode(Signature::to_der(&key.sign(&body)).as_bytes());

    for (what, id, sig) in [
        ("neither header", None, None),
        ("no signature", Some("gh-key-1"), None),
        ("no key identifier", None, Some(signature.as_str())),
    ] {
        let (status, content_type, problem) = post(&app, id, sig, &body).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (401, Some("SIGNATURE_MISSING")),
            "{what}: {problem}"
        );
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{what}"
        );
        assert_eq!(problem["status"], 401, "{what}");
        assert!(!problem.to_string().contains(&leaked.secret), "{what}");
    }
    // Nothing was revoked, emitted or audited.
    assert_eq!(app.verify(&leaked.secret, &[]).await.code, Code::Valid);
    assert_eq!(leak_events(&app, &leaked).await, 0);
    assert_eq!(leak_audits(&app, &leaked).await, 0);

    // The same body with both headers revokes it: the missing headers were what refused it.
    let (status, _, labels) = post(&app, Some("gh-key-1"), Some(&signature), &body).await;
    assert_eq!(status, 200, "{labels}");
    assert_eq!(labels[0]["label"], "true_positive");
    assert_eq!(app.verify(&leaked.secret, &[]).await.code, Code::Revoked);
    assert_eq!(leak_events(&app, &leaked).await, 2);
    assert!(leak_audits(&app, &leaked).await >= 1);
}
