//! One operations layer: a token created in the dashboard is authorized, audited (the person
//! as actor, the session's address) and usable exactly like one created through the API; a
//! section the person's role does not give is neither shown nor reachable.

use keyward_client::TokenQuery;
use keyward_core::audit::{ActorKind, AuditQuery};
use keyward_core::model::Scope;
use keyward_core::Code;

use super::browserless::{by_id, onboard, person};
use crate::support::{both_backends, token_request, TestApp};

const PASSWORD: &str = "correct horse battery staple";

async fn a_dashboard_token_is_an_api_token(app: TestApp) {
    app.catalogue(&["orders:read", "orders:write"]).await;
    let ops = person(
        &app,
        "ops@example.com",
        &[
            "keyward.tokens:*",
            "keyward.users:read",
            "keyward.roles:read",
            "orders:read",
        ],
    )
    .await;
    let (mut jar, _, _) = onboard(&app, &ops, PASSWORD).await;
    let api = app
        .api_role("billing", Scope::User, &["orders:read", "orders:write"])
        .await;
    let svc = app.service_user("billing", Some(api.id)).await;

    // The form offers only what the person may hand out.
    let form = jar.get("/ui/tokens/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("orders:read"), "{}", form.body);

    // Asking for more than the person holds is refused by the same check as the API's.
    let owner = svc.id.to_string();
    let mut fields = vec![
        ("csrf", form.csrf()),
        ("name", "billing sync".to_owned()),
        ("owner", owner.clone()),
        ("permissions", "orders:write".to_owned()),
        ("rate_limit", "150".to_owned()),
        ("rate_limit_per", "user".to_owned()),
    ];
    let refused = jar.post_owned("/ui/tokens/new", &fields).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("orders:write"), "{}", refused.body);

    fields[3].1 = "orders:read".to_owned();
    let created = jar.post_owned("/ui/tokens/new", &fields).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = by_id(&created.body, "token-secret").unwrap();
    let id = created
        .body
        .split("/ui/tokens/")
        .nth(1)
        .map(|s| s[..s.find('/').unwrap_or(s.find('"').unwrap())].to_owned())
        .unwrap();

    // Pending until "Save token": a verify of it is refused, then it works.
    let before = app.verify(&secret, &["orders:read"]).await;
    assert!(!before.valid);
    let token = jar.get(&format!("/ui/tokens/{id}")).await;
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(
        by_id(&token.body, "token-rate-limit").as_deref(),
        Some("150 per minute per user")
    );
    let saved = jar
        .post(
            &format!("/ui/tokens/{id}/activate"),
            &[("csrf", &token.csrf())],
        )
        .await;
    assert!(saved.status == 303 || saved.status == 200, "{}", saved.body);
    let after = app.verify(&secret, &["orders:read"]).await;
    assert!(after.valid, "{after:?}");

    // The audit trail names the person and the session's address, as the API names the token.
    let q = AuditQuery {
        action: Some("token.created".into()),
        limit: Some(100),
        ..AuditQuery::default()
    };
    let by_api = app.admin.create_token(&token_request(&svc)).await.unwrap();
    let events = app.admin.audit(&q).await.unwrap().items;
    let dash = events.iter().find(|e| e.target_id == id).unwrap();
    assert_eq!(dash.actor.kind, ActorKind::User);
    assert_eq!(dash.actor.user_id, Some(ops.id));
    assert_eq!(dash.actor.token_id, None);
    assert_eq!(dash.ip.as_deref(), Some("127.0.0.1"));
    let api = events
        .iter()
        .find(|e| e.target_id == by_api.token.id.to_string())
        .unwrap();
    assert_eq!(api.actor.kind, ActorKind::Token);
    assert_eq!(
        dash.after
            .as_ref()
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        api.after
            .as_ref()
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        "the same event body"
    );

    // Revoking in the dashboard needs the confirmation, then applies to the next verify.
    let token = jar.get(&format!("/ui/tokens/{id}")).await;
    let unconfirmed = jar
        .post(
            &format!("/ui/tokens/{id}/revoke"),
            &[("csrf", &token.csrf())],
        )
        .await;
    assert_ne!(unconfirmed.status, 303, "{}", unconfirmed.body);
    assert!(app.verify(&secret, &["orders:read"]).await.valid);
    let revoked = jar
        .post(
            &format!("/ui/tokens/{id}/revoke"),
            &[("csrf", &token.csrf()), ("confirm", "yes")],
        )
        .await;
    assert!(
        revoked.status == 303 || revoked.status == 200,
        "{}",
        revoked.body
    );
    let gone = app.verify(&secret, &["orders:read"]).await;
    assert_eq!(gone.code, Code::Revoked);
    let revocations = app
        .admin
        .audit(&AuditQuery {
            action: Some("token.revoked".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .items;
    assert_eq!(revocations[0].actor.user_id, Some(ops.id));
}
both_backends!(a_dashboard_token_is_an_api_token);

async fn sections_follow_the_role(app: TestApp) {
    let viewer = person(&app, "viewer@example.com", &["keyward.tokens:read"]).await;
    let (mut jar, _, _) = onboard(&app, &viewer, PASSWORD).await;
    let list = jar.get("/ui/tokens").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        !list.body.contains("href=\"/ui/tokens/new\""),
        "{}",
        list.body
    );
    let form = jar.get("/ui/tokens/new").await;
    assert_eq!(form.status, 403, "{}", form.body);
    let owner = viewer.id.to_string();
    let post = jar
        .post(
            "/ui/tokens/new",
            &[
                ("csrf", &list.csrf()),
                ("name", "sneaky"),
                ("owner", &owner),
                ("permissions", "keyward.tokens:read"),
            ],
        )
        .await;
    assert_eq!(post.status, 403, "{}", post.body);
    let all = app.admin.list_tokens(&TokenQuery::default()).await.unwrap();
    assert!(all.items.iter().all(|t| t.name != "sneaky"));

    // A person with no dashboard permission at all sees no tokens section.
    let nobody = person(&app, "nobody@example.com", &[]).await;
    let (mut jar, _, _) = onboard(&app, &nobody, PASSWORD).await;
    let home = jar.get("/ui").await;
    assert_eq!(home.status, 200);
    assert!(!home.body.contains("href=\"/ui/tokens\""), "{}", home.body);
    assert_eq!(jar.get("/ui/tokens").await.status, 403);
}
both_backends!(sections_follow_the_role);
