//! GitHub secret-scanning alerts: a validly signed report revokes the token and labels it
//! `true_positive`; unknown strings are `false_positive`; an unknown key, a bad signature or
//! a malformed body is refused and revokes nothing. The key pair is made here.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keyward_core::events::EventType;
use keyward_core::{Code, TokenSecret};
use keyward_server::leaks::GithubKey;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::support::{Backend, TestApp};

mod github_alerts {
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
    if let Some((app, key)) = spawn_with_leak_key(backend).await {
        alerts(app, key).await;
    }
}

/// The app with a fresh GitHub signing key configured as `gh-key-1`, and that key.
pub(crate) async fn spawn_with_leak_key(backend: Backend) -> Option<(TestApp, SigningKey)> {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let configured = GithubKey {
        key_identifier: "gh-key-1".into(),
        key: pem,
    };
    let app = TestApp::spawn_with(backend, |c| {
        c.leaks.github_public_keys = vec![configured];
    })
    .await?;
    Some((app, key))
}

fn sign(key: &SigningKey, body: &[u8]) -> String {
    let sig: Signature = key.sign(body);
    STANDARD.encode(sig.to_der().as_bytes())
}

async fn post(app: &TestApp, key_id: &str, signature: &str, body: &[u8]) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/v1/leaks/github", app.url))
        .header("content-type", "application/json")
        .header("Github-Public-Key-Identifier", key_id)
        .header("Github-Public-Key-Signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn hash(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn alerts(app: TestApp, key: SigningKey) {
    let owner = app.orders_reader().await;
    let leaked = app.token_for(&owner).await;
    let bystander = app.token_for(&owner).await;
    let unknown = TokenSecret::generate("kw", &mut rand_core::OsRng);
    let report = |token: &str| json!({"token": token, "type": "keyward_token", "url": "https://github.com/o/r/blob/x", "source": "content"});

    // Refused: a bad signature, an unknown key, no signature. Nothing is revoked.
    let body = serde_json::to_vec(&json!([report(&leaked.secret)])).unwrap();
    let (status, problem) = post(&app, "gh-key-1", &sign(&key, b"other body"), &body).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("INVALID_SIGNATURE"))
    );
    let (status, problem) = post(&app, "gh-key-1", "bm90IGEgc2lnbmF0dXJl", &body).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("INVALID_SIGNATURE"))
    );
    let (status, problem) = post(&app, "gh-key-2", &sign(&key, &body), &body).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("UNKNOWN_KEY"))
    );
    let res = reqwest::Client::new()
        .post(format!("{}/v1/leaks/github", app.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let other = SigningKey::random(&mut rand_core::OsRng);
    let (status, _) = post(&app, "gh-key-1", &sign(&other, &body), &body).await;
    assert_eq!(status, 401);
    assert_eq!(app.verify(&leaked.secret, &[]).await.code, Code::Valid);

    // Malformed bodies, validly signed: refused.
    for bad in [&b"not json"[..], &b"{\"token\": 1}"[..]] {
        let (status, problem) = post(&app, "gh-key-1", &sign(&key, bad), bad).await;
        assert!(status == 400 || status == 422, "{status} {problem}");
        assert!(problem["code"].is_string());
    }
    assert_eq!(app.verify(&leaked.secret, &[]).await.code, Code::Valid);

    // A valid alert: the keyward token is revoked, the rest are false positives.
    let body = serde_json::to_vec(&json!([
        report(&leaked.secret),
        report(unknown.expose()),
        report("ghp_notkeyward"),
    ]))
    .unwrap();
    let (status, labels) = post(&app, "gh-key-1", &sign(&key, &body), &body).await;
    assert_eq!(status, 200, "{labels}");
    let labels = labels.as_array().unwrap();
    assert_eq!(labels.len(), 3);
    assert_eq!(labels[0]["token_hash"], hash(&leaked.secret));
    assert_eq!(labels[0]["token_type"], "keyward_token");
    assert_eq!(labels[0]["label"], "true_positive");
    assert_eq!(labels[1]["label"], "false_positive");
    assert_eq!(labels[2]["label"], "false_positive");
    assert!(!Value::Array(labels.clone())
        .to_string()
        .contains(&leaked.secret));

    assert_eq!(app.verify(&leaked.secret, &[]).await.code, Code::Revoked);
    assert_eq!(app.verify(&bystander.secret, &[]).await.code, Code::Valid);
    let events = app
        .state
        .store
        .list_events(
            leaked.token.workspace_id,
            &keyward_store::PageRequest {
                limit: 100,
                after: None,
            },
        )
        .await
        .unwrap();
    let count = |events: &[keyward_core::events::Event], t: EventType| {
        events
            .iter()
            .filter(|e| e.event_type == t && e.payload["data"]["id"] == leaked.token.id.to_string())
            .count()
    };
    assert_eq!(count(&events, EventType::TokenCreated), 1);
    assert_eq!(count(&events, EventType::TokenLeaked), 1);
    assert_eq!(count(&events, EventType::TokenRevoked), 1);
    // Reported again: still a true positive, no second revocation event.
    let (status, labels) = post(&app, "gh-key-1", &sign(&key, &body), &body).await;
    assert_eq!(status, 200);
    assert_eq!(labels[0]["label"], "true_positive");
    let events = app
        .state
        .store
        .list_events(
            leaked.token.workspace_id,
            &keyward_store::PageRequest {
                limit: 100,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(count(&events, EventType::TokenLeaked), 2);
    assert_eq!(count(&events, EventType::TokenRevoked), 1);
    // Audited twice, by keyward itself, with where it was found and never the secret: the
    // first report revoked, the second found it revoked already.
    let q = keyward_core::audit::AuditQuery {
        token: Some(leaked.token.id.to_string()),
        action: Some("token.leaked".into()),
        ..Default::default()
    };
    let audited = app.admin.audit(&q).await.unwrap().items;
    assert_eq!(audited.len(), 2);
    assert!(audited
        .iter()
        .all(|e| e.actor.kind == keyward_core::audit::ActorKind::System));
    let revoked: Vec<_> = audited
        .iter()
        .map(|e| e.after.as_ref().unwrap()["revoked"].as_bool())
        .collect();
    assert_eq!(revoked, [Some(true), Some(false)]);
    assert_eq!(
        audited[0].after.as_ref().unwrap()["report"]["url"],
        "https://github.com/o/r/blob/x"
    );
    assert!(!serde_json::to_string(&audited)
        .unwrap()
        .contains(&leaked.secret));
    assert!(!crate::support::logs_contain(&leaked.secret));
    assert!(!crate::support::logs_contain(unknown.expose()));
}
