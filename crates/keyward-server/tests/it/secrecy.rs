//! A secret is shown once, by the call that creates it, and appears nowhere else: not in
//! listings, not in reads, not in any log line written while the test ran (at TRACE level).

use keyward_client::TokenQuery;
use keyward_core::model::Scope;

use crate::support::{both_backends, logs_contain, TestApp};

async fn secrets_are_shown_once_and_never_logged(app: TestApp) {
    let role = app.api_role("Secretive", Scope::Workspace, &[]).await;
    let owner = app.service_user("vault-sync", Some(role.id)).await;
    let created = app.token_for(&owner).await;
    let secret = created.secret.clone();
    assert!(secret.starts_with("kw_"));
    assert!(
        secret.starts_with(&created.token.start),
        "the display start is a prefix of the secret"
    );
    assert!(created.token.start.len() < 16);

    // Use it, fail with it, revoke it: every path that might log.
    assert!(app.verify(&secret, &[]).await.valid);
    assert!(!app.verify(&secret, &["nothing:here"]).await.valid);
    let typo = if secret.ends_with('A') { 'B' } else { 'A' };
    let with_typo = format!("{}{typo}", &secret[..secret.len() - 1]);
    app.verify(&with_typo, &[]).await;
    let as_token = app.client(&secret);
    let denied = as_token.list_users(&Default::default()).await;
    assert!(denied.is_err());
    app.admin.revoke_token(created.token.id).await.unwrap();
    let _ = as_token.list_users(&Default::default()).await;

    let one = serde_json::to_string(&app.admin.token(created.token.id).await.unwrap()).unwrap();
    let all = serde_json::to_string(&app.admin.list_tokens(&TokenQuery::default()).await.unwrap())
        .unwrap();
    for text in [&one, &all] {
        assert!(!text.contains(&secret), "a read returned the secret");
        assert!(
            !text.contains(&secret[created.token.start.len()..]),
            "a read returned part of it"
        );
    }
    assert!(format!("{created:?}").contains("redacted"));
    assert!(!format!("{created:?}").contains(&secret));
    // Give the log writers a moment, then search everything logged.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(logs_contain("token created"), "the capture works");
    assert!(!logs_contain(&secret), "the secret was logged");
    assert!(!logs_contain(&with_typo), "a presented secret was logged");
    assert!(
        !logs_contain(&app.admin_secret),
        "the admin secret was logged"
    );
}
both_backends!(secrets_are_shown_once_and_never_logged);

async fn a_secret_pasted_in_the_wrong_place_is_not_echoed(app: TestApp) {
    let secret = &app.admin_secret;
    let http = reqwest::Client::new();
    // Where an id belongs: in the path, and in a body field.
    let r = http
        .post(format!("{}/v1/tokens/{secret}/revoke", app.url))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("INVALID_ID"), "{body}");
    assert!(!body.contains(secret.as_str()), "{body}");
    let answers = [
        format!(r#"{{"owner_id": "{secret}", "name": "x"}}"#),
        format!(r#"{{"kind": "{secret}", "name": "x"}}"#),
        format!(
            r#"{{"owner_id": "usr_00000000000000000000000000000000", "name": "x", "permissions": ["{secret}"]}}"#
        ),
    ];
    for (path, body) in [
        ("tokens", &answers[0]),
        ("users", &answers[1]),
        ("tokens", &answers[2]),
    ] {
        let r = http
            .post(format!("{}/v1/{path}", app.url))
            .bearer_auth(secret)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error());
        let text = r.text().await.unwrap();
        assert!(!text.contains(secret.as_str()), "{path}: {text}");
    }
}
both_backends!(a_secret_pasted_in_the_wrong_place_is_not_echoed);
