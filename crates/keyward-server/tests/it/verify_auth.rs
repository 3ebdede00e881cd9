//! Who may ask `POST /v1/verify`: only a verifier credential (a token holding
//! `keyward.verify:tokens`), only about its own workspace's tokens unless it is the
//! operator's; the brute-force guard cannot be sidestepped or turned against a third party.

use keyward_core::api::{CreateWorkspace, VerifyRequest, VerifyResponse};
use keyward_core::model::Scope;
use keyward_core::{Code, TokenSecret};

use crate::support::{both_backends, problem_of, Backend, TestApp};

async fn verify_as(
    app: &TestApp,
    verifier: &str,
    local: &str,
    body: serde_json::Value,
) -> VerifyResponse {
    let (http, base) = app.http_from(local);
    let r = http
        .post(format!("{base}/v1/verify"))
        .bearer_auth(verifier)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn callers_must_hold_the_verify_permission(app: TestApp) {
    let role = app.api_role("Reader", Scope::Workspace, &[]).await;
    let owner = app.service_user("reader", Some(role.id)).await;
    let subject = app.token_for(&owner).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/verify", app.url);
    let body = serde_json::json!({ "token": subject.secret });

    // No credential: 401 problem+json with a Bearer challenge, and the body's secret is not
    // looked at (nothing echoed, no usage).
    let r = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let text = r.text().await.unwrap();
    assert!(text.contains("UNAUTHENTICATED"), "{text}");
    assert!(!text.contains(&subject.secret));

    // A garbage credential: 401 invalid_token.
    let r = http
        .post(&url)
        .bearer_auth("kw_nonsense")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    // A valid token without keyward.verify:tokens: 403 naming the permission.
    let p = problem_of(
        app.client(&subject.secret)
            .verify(&verify_req(&subject.secret))
            .await,
    );
    assert_eq!(p.code, "INSUFFICIENT_PERMISSIONS", "{p:?}");
    assert!(p.detail.contains("keyward.verify:tokens"), "{p:?}");

    // A dedicated verifier: a role holding only keyward.verify:tokens.
    let vrole = app
        .api_role("Verifier", Scope::Workspace, &["keyward.verify:tokens"])
        .await;
    let vuser = app.service_user("backend", Some(vrole.id)).await;
    let verifier = app.token_for(&vuser).await;
    let v = verify_as(&app, &verifier.secret, "127.0.0.1", body.clone()).await;
    assert_eq!(v.code, Code::Valid, "{v:?}");
    assert_eq!(v.token_id, Some(subject.token.id));

    // The verifier's own allowlist applies to where it calls from.
    app.admin
        .update_role(
            vrole.id,
            &keyward_core::api::RolePatch {
                ip_allowlist: Some(keyward_core::api::IpListInput::Text("127.0.0.4".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (http4, base) = app.http_from("127.0.0.5");
    let r = http4
        .post(format!("{base}/v1/verify"))
        .bearer_auth(&verifier.secret)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v = verify_as(&app, &verifier.secret, "127.0.0.4", body).await;
    assert_eq!(v.code, Code::Valid);
}
both_backends!(callers_must_hold_the_verify_permission);

fn verify_req(secret: &str) -> VerifyRequest<'_> {
    VerifyRequest {
        token: secret.into(),
        ..VerifyRequest::default()
    }
}

async fn verifiers_see_only_their_workspace_unless_operator(app: TestApp) {
    let b = app
        .admin
        .create_workspace(&CreateWorkspace {
            name: "Acme".into(),
            settings: None,
        })
        .await
        .unwrap();
    let admin_b = app.client(&b.admin_token.secret);
    // A token of the operator's workspace, and one of workspace B.
    let role = app.api_role("Plain", Scope::Workspace, &[]).await;
    let a_token = app
        .token_for(&app.service_user("a-sync", Some(role.id)).await)
        .await;
    let b_token = &b.admin_token.secret;

    // B's admin holds keyward.* and so keyward.verify:tokens: it verifies its own tokens…
    assert_eq!(
        admin_b.verify(&verify_req(b_token)).await.unwrap().code,
        Code::Valid
    );
    // …but another workspace's token is unknown to it: NOT_FOUND, no principal, no usage.
    let v = admin_b.verify(&verify_req(&a_token.secret)).await.unwrap();
    assert_eq!(v.code, Code::NotFound);
    assert!(v.token_id.is_none() && v.workspace_id.is_none(), "{v:?}");
    // The operator's verifier may verify any workspace's tokens.
    let v = app.verify(b_token, &[]).await;
    assert_eq!(v.code, Code::Valid);
    assert_eq!(v.workspace_id, Some(b.workspace.id));
    // One real use of A's token, by its own workspace: once it is counted, it is the only one.
    assert_eq!(app.verify(&a_token.secret, &[]).await.code, Code::Valid);
    let mut total = 0;
    for _ in 0..500 {
        let usage = app
            .admin
            .token_usage(a_token.token.id, &Default::default())
            .await
            .unwrap();
        total = usage.total;
        if total > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        total, 1,
        "a refused foreign lookup is no usage of the token"
    );
}
both_backends!(verifiers_see_only_their_workspace_unless_operator);

/// A peer naming `ip=<victim>` with garbage secrets used to make the victim's valid token
/// `RATE_LIMITED`: now the failures count only against the attacker's own view of that address,
/// and a token in use is answered from the cache even there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_is_per_verifier_and_never_refuses_a_token_in_use() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.policy.failed_verifications_per_minute = 5;
    })
    .await
    else {
        return;
    };
    let vrole = app
        .api_role("Verifier", Scope::Workspace, &["keyward.verify:tokens"])
        .await;
    let attacker = app
        .token_for(&app.service_user("attacker", Some(vrole.id)).await)
        .await;
    let honest = app
        .token_for(&app.service_user("honest", Some(vrole.id)).await)
        .await;
    let plain = app.api_role("Plain", Scope::Workspace, &[]).await;
    let victim = app
        .token_for(&app.service_user("victim", Some(plain.id)).await)
        .await;
    let victim_ip = "198.51.100.20";
    // The victim's token is in use through the honest verifier.
    let v = verify_as(
        &app,
        &honest.secret,
        "127.0.0.1",
        serde_json::json!({"token": victim.secret, "ip": victim_ip}),
    )
    .await;
    assert_eq!(v.code, Code::Valid);

    // The attacker floods garbage in the victim's name.
    for _ in 0..20 {
        let guess = TokenSecret::generate("kw", &mut rand_core::OsRng);
        let v = verify_as(
            &app,
            &attacker.secret,
            "127.0.0.1",
            serde_json::json!({"token": guess.expose(), "ip": victim_ip}),
        )
        .await;
        assert!(
            matches!(v.code, Code::NotFound | Code::RateLimited),
            "{v:?}"
        );
    }
    // The attacker's own budget for that address is spent: its next guess never reaches
    // storage.
    let guess = TokenSecret::generate("kw", &mut rand_core::OsRng);
    let v = verify_as(
        &app,
        &attacker.secret,
        "127.0.0.1",
        serde_json::json!({"token": guess.expose(), "ip": victim_ip}),
    )
    .await;
    assert_eq!(v.code, Code::RateLimited);
    // The honest verifier's view of the victim is untouched.
    for _ in 0..10 {
        let v = verify_as(
            &app,
            &honest.secret,
            "127.0.0.1",
            serde_json::json!({"token": victim.secret, "ip": victim_ip}),
        )
        .await;
        assert_eq!(v.code, Code::Valid, "{v:?}");
    }
    // Even through the attacker's credential, a token in use is not refused by the guard.
    let v = verify_as(
        &app,
        &attacker.secret,
        "127.0.0.1",
        serde_json::json!({"token": victim.secret, "ip": victim_ip}),
    )
    .await;
    assert_eq!(v.code, Code::Valid);
}
