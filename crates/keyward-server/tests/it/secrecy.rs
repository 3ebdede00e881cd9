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
    let with_typo = format!("{}A", &secret[..secret.len() - 1]);
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
