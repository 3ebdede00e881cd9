//! The admin API's rules: role kinds, catalogue checks, least privilege, validation errors
//! that name the field, and pagination.

use keyward_client::TokenQuery;
use keyward_core::api::{CreateRole, CreateUser, RolePatch};
use keyward_core::model::{RoleKind, Scope, UserKind};

use crate::support::{both_backends, code_of, problem_of, token_request, TestApp};

async fn human_roles_never_reach_tokens_or_service_users(app: TestApp) {
    app.catalogue(&["cart:write"]).await;
    let human = app
        .admin
        .create_role(&CreateRole {
            name: "Support Agent".into(),
            description: String::new(),
            kind: RoleKind::Human,
            scope: Scope::User,
            permissions: vec!["cart:write".into()],
            ip_allowlist: None,
            rate_limit_per_minute: None,
            rate_limit_per: None,
        })
        .await
        .unwrap();
    let service = CreateUser {
        kind: UserKind::Service,
        name: "bot".into(),
        email: None,
        role_id: Some(human.id),
    };
    let p = problem_of(app.admin.create_user(&service).await);
    assert_eq!(
        (p.code.as_str(), p.field.as_deref()),
        ("ROLE_KIND_MISMATCH", Some("role_id"))
    );

    let person = app
        .admin
        .create_user(&CreateUser {
            kind: UserKind::Human,
            name: "Dana".into(),
            email: Some("Dana@Example.com".into()),
            role_id: Some(human.id),
        })
        .await
        .unwrap();
    assert_eq!(person.email.as_deref(), Some("dana@example.com"));
    // A human's token inheriting the human role is refused; so is naming a human role.
    let p = problem_of(app.admin.create_token(&token_request(&person)).await);
    assert_eq!(p.code, "ROLE_KIND_MISMATCH");
    assert!(p.detail.contains("Support Agent"), "{}", p.detail);
    let mut req = token_request(&person);
    req.role_id = Some(human.id);
    assert_eq!(
        code_of(app.admin.create_token(&req).await),
        "ROLE_KIND_MISMATCH"
    );
    // With its own api role, a human's personal token is fine.
    let api = app.api_role("Cart API", Scope::User, &["cart:write"]).await;
    req.role_id = Some(api.id);
    assert!(app.admin.create_token(&req).await.is_ok());
    // Same e-mail twice in a workspace is a conflict.
    let dup = CreateUser {
        kind: UserKind::Human,
        name: "Dana 2".into(),
        email: Some("dana@example.com".into()),
        role_id: None,
    };
    assert_eq!(code_of(app.admin.create_user(&dup).await), "EMAIL_TAKEN");
}
both_backends!(human_roles_never_reach_tokens_or_service_users);

async fn bad_input_names_the_field_and_changes_nothing(app: TestApp) {
    app.catalogue(&["cart:write"]).await;
    let role = CreateRole {
        name: "Typo".into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::User,
        permissions: vec!["cart:write".into(), "cart:wrte".into()],
        ip_allowlist: None,
        rate_limit_per_minute: None,
        rate_limit_per: None,
    };
    let p = problem_of(app.admin.create_role(&role).await);
    assert_eq!(p.status, 422);
    assert_eq!(
        (p.code.as_str(), p.field.as_deref()),
        ("UNKNOWN_PERMISSION", Some("permissions[1]"))
    );
    let bad = CreateRole {
        permissions: vec!["Cart Write".into()],
        ip_allowlist: None,
        rate_limit_per_minute: None,
        ..role.clone()
    };
    let p = problem_of(app.admin.create_role(&bad).await);
    assert_eq!(
        (p.code.as_str(), p.field.as_deref()),
        ("INVALID_PERMISSION", Some("permissions[0]"))
    );
    let blank = CreateRole {
        name: "  ".into(),
        permissions: vec![],
        ip_allowlist: None,
        rate_limit_per_minute: None,
        ..role
    };
    assert_eq!(
        problem_of(app.admin.create_role(&blank).await)
            .field
            .as_deref(),
        Some("name")
    );
    assert!(app
        .admin
        .list_roles(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .all(|r| [
            "Workspace Admin",
            "Dashboard Admin",
            "Security Manager",
            "Security Admin"
        ]
        .contains(&r.name.as_str())));

    // Raw HTTP: broken JSON, unknown fields, wrong types and a missing token.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/roles", app.url);
    let send = |body: &'static str| {
        http.post(&url)
            .bearer_auth(&app.admin_secret)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = send("{\"name\": ").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = send(r#"{"name":"x","kind":"api","scope":"user","permissions":[],"colour":"red"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_BODY");
    assert!(
        body["detail"].as_str().unwrap().contains("colour"),
        "{body}"
    );
    let r = http
        .get(format!("{}/v1/roles", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let r = http
        .get(format!("{}/v1/nothing", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A secret sent in the wrong field is not echoed back.
    let r = http
        .post(format!("{}/v1/verify", app.url))
        .bearer_auth(&app.admin_secret)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"token": "x", "permissions": "{}"}}"#,
            app.admin_secret
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(!r.text().await.unwrap().contains(&app.admin_secret));
}
both_backends!(bad_input_names_the_field_and_changes_nothing);

async fn tokens_cannot_grant_more_than_they_hold(app: TestApp) {
    app.catalogue(&["cart:read", "cart:write"]).await;
    let delegate = app
        .api_role(
            "HR sync",
            Scope::Workspace,
            &[
                "keyward.tokens:create",
                "keyward.tokens:write",
                "keyward.users:write",
                "keyward.roles:write",
                "keyward.roles:read",
                "cart:read",
            ],
        )
        .await;
    let hr = app.service_user("hr", Some(delegate.id)).await;
    let hr_client = app.client(&app.token_for(&hr).await.secret);

    let base = CreateRole {
        name: "Cart Reader".into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::User,
        permissions: vec!["cart:read".into()],
        ip_allowlist: None,
        rate_limit_per_minute: None,
        rate_limit_per: None,
    };
    let reader = hr_client.create_role(&base).await.unwrap();
    let writer = CreateRole {
        name: "Cart Writer".into(),
        permissions: vec!["cart:write".into()],
        ip_allowlist: None,
        rate_limit_per_minute: None,
        ..base
    };
    assert_eq!(
        code_of(hr_client.create_role(&writer).await),
        "PRIVILEGE_ESCALATION"
    );
    let widen = RolePatch {
        permissions: Some(vec!["cart:*".into()]),
        ..RolePatch::default()
    };
    assert_eq!(
        code_of(hr_client.update_role(reader.id, &widen).await),
        "PRIVILEGE_ESCALATION"
    );
    let roles = app
        .admin
        .list_roles(&Default::default())
        .await
        .unwrap()
        .items;
    let admin_role = roles
        .into_iter()
        .find(|r| r.name == "Workspace Admin")
        .unwrap();
    let mut req = token_request(&hr);
    req.role_id = Some(admin_role.id);
    assert_eq!(
        code_of(hr_client.create_token(&req).await),
        "PRIVILEGE_ESCALATION"
    );
    // Nor may it delete a role that holds more than it does; its own kind it may.
    assert_eq!(
        code_of(hr_client.delete_role(admin_role.id).await),
        "PRIVILEGE_ESCALATION"
    );
    hr_client.delete_role(reader.id).await.unwrap();

    // Nor switch on, or change, a token stronger than itself, or manage a stronger user.
    let admin_user = app
        .admin
        .list_users(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|u| u.name == "admin")
        .unwrap();
    let mut strong = token_request(&admin_user);
    strong.pending = true;
    let strong = app.admin.create_token(&strong).await.unwrap();
    assert_eq!(
        code_of(hr_client.activate_token(strong.token.id).await),
        "PRIVILEGE_ESCALATION"
    );
    let extend = keyward_core::api::TokenPatch {
        expires_at: Some(None),
        ..Default::default()
    };
    assert_eq!(
        code_of(hr_client.update_token(strong.token.id, &extend).await),
        "PRIVILEGE_ESCALATION"
    );
    let disable = keyward_core::api::UserPatch {
        disabled: Some(true),
        ..Default::default()
    };
    assert_eq!(
        code_of(hr_client.update_user(admin_user.id, &disable).await),
        "PRIVILEGE_ESCALATION"
    );
    assert!(app.admin.workspace().await.is_ok(), "the admin still works");
}
both_backends!(tokens_cannot_grant_more_than_they_hold);

async fn token_listing_pages_and_filters(app: TestApp) {
    let role = app.api_role("R", Scope::Workspace, &[]).await;
    let owner = app.service_user("pager", Some(role.id)).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        app.clock.advance(chrono::Duration::seconds(1));
        ids.push(app.token_for(&owner).await.token.id);
    }
    app.admin.revoke_token(ids[1]).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let q = TokenQuery {
            owner_id: Some(owner.id),
            limit: Some(2),
            cursor: cursor.clone(),
            ..Default::default()
        };
        let page = app.admin.list_tokens(&q).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|t| t.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every token once, in creation order");
    let revoked = TokenQuery {
        owner_id: Some(owner.id),
        status: Some(keyward_core::model::ShownStatus::Revoked),
        ..Default::default()
    };
    let page = app.admin.list_tokens(&revoked).await.unwrap();
    assert_eq!(
        page.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    let bad = TokenQuery {
        limit: Some(0),
        ..Default::default()
    };
    assert_eq!(code_of(app.admin.list_tokens(&bad).await), "INVALID_LIMIT");
    let bad = TokenQuery {
        cursor: Some("nonsense".into()),
        ..Default::default()
    };
    assert_eq!(code_of(app.admin.list_tokens(&bad).await), "INVALID_CURSOR");
    // A role still used cannot be deleted.
    assert_eq!(code_of(app.admin.delete_role(role.id).await), "ROLE_IN_USE");
}
both_backends!(token_listing_pages_and_filters);
