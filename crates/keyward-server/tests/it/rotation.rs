//! Rotation without downtime and bulk revocation: both secrets work inside the grace period and
//! only the new one after it; a grace of 0 ends the old one at once; a token is replaced once;
//! the new token keeps everything but the secret and its lifetime stays within the workspace's
//! maximum; revoking a user's tokens stops each at once and audits each.

use chrono::Duration;
use keyward_core::api::{IpListInput, RotateToken, SettingsPatch, WorkspacePatch};
use keyward_core::audit::AuditQuery;
use keyward_core::model::Scope;
use keyward_core::{Clock as _, Code};

use crate::support::{both_backends, code_of, problem_of, token_request, TestApp};

fn grace(secs: u64) -> RotateToken {
    RotateToken {
        grace_period_secs: secs,
        expires_at: None,
    }
}

async fn both_secrets_work_inside_the_grace_period_only_the_new_after(app: TestApp) {
    let owner = app.orders_reader().await;
    let mut req = token_request(&owner);
    req.metadata = Some(serde_json::json!({"env": "prod"}));
    req.expires_at = Some(app.clock.now() + Duration::days(10));
    let first = app.admin.create_token(&req).await.unwrap();
    // Rotated two days later: the new lifetime starts then, not at the first token's creation.
    app.clock.advance(Duration::days(2));

    let rotated = app
        .admin
        .rotate_token(first.token.id, &grace(3600))
        .await
        .unwrap();
    assert_ne!(rotated.secret, first.secret);
    assert_eq!(rotated.token.metadata, serde_json::json!({"env": "prod"}));
    assert_eq!(rotated.token.owner_id, owner.id);
    assert_eq!(rotated.token.family_id, first.token.id);
    assert_eq!(rotated.token.rotated_from, Some(first.token.id));
    // The same lifetime (10 days), counted from the rotation.
    assert_eq!(
        rotated.token.expires_at,
        Some(app.clock.now() + Duration::days(10))
    );
    assert_eq!(
        rotated.token.expires_at,
        first.token.expires_at.map(|e| e + Duration::days(2))
    );
    assert_eq!(rotated.token.created_at, app.clock.now());
    assert_eq!(
        rotated.previous.expires_at,
        Some(app.clock.now() + Duration::hours(1))
    );
    for secret in [&first.secret, &rotated.secret] {
        assert_eq!(app.verify(secret, &["orders:read"]).await.code, Code::Valid);
    }
    // The replaced token's expiry can be brought forward, not pushed back past the grace.
    let extend = keyward_core::api::TokenPatch {
        expires_at: Some(Some(app.clock.now() + Duration::hours(2))),
        ..Default::default()
    };
    assert_eq!(
        code_of(app.admin.update_token(first.token.id, &extend).await),
        "TOKEN_ROTATED"
    );
    let sooner = keyward_core::api::TokenPatch {
        expires_at: Some(Some(app.clock.now() + Duration::minutes(30))),
        ..Default::default()
    };
    app.admin
        .update_token(first.token.id, &sooner)
        .await
        .unwrap();
    // A token is replaced once: the family never forks.
    assert_eq!(
        code_of(app.admin.rotate_token(first.token.id, &grace(0)).await),
        "ALREADY_ROTATED"
    );

    app.clock.advance(Duration::seconds(3600));
    assert_eq!(app.verify(&first.secret, &[]).await.code, Code::Expired);
    assert_eq!(app.verify(&rotated.secret, &[]).await.code, Code::Valid);

    // Grace 0: the old secret ends at once.
    let third = app
        .admin
        .rotate_token(rotated.token.id, &grace(0))
        .await
        .unwrap();
    assert_eq!(app.verify(&rotated.secret, &[]).await.code, Code::Expired);
    assert_eq!(app.verify(&third.secret, &[]).await.code, Code::Valid);
    let family = app.admin.token_family(third.token.id).await.unwrap();
    let ids: Vec<_> = family.iter().map(|t| t.id).collect();
    assert_eq!(ids, [first.token.id, rotated.token.id, third.token.id]);

    // Expired and revoked tokens are not rotated; one audit event per rotation.
    assert_eq!(
        code_of(app.admin.rotate_token(first.token.id, &grace(0)).await),
        "TOKEN_EXPIRED"
    );
    let q = AuditQuery {
        action: Some("token.rotated".into()),
        ..AuditQuery::default()
    };
    let events = app.admin.audit(&q).await.unwrap().items;
    assert_eq!(events.len(), 2);
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&rotated.secret) && !text.contains(&third.secret));
}
both_backends!(both_secrets_work_inside_the_grace_period_only_the_new_after);

async fn rotation_keeps_within_the_workspace_maximum(app: TestApp) {
    let owner = app.service_user("bot", None).await;
    let role = app.api_role("Nothing", Scope::User, &[]).await;
    let mut req = token_request(&owner);
    req.role_id = Some(role.id);
    let t = app.admin.create_token(&req).await.unwrap();
    let patch = WorkspacePatch {
        reason: None,
        name: None,
        settings: Some(SettingsPatch {
            token_max_lifetime_days: Some(Some(30)),
            ..SettingsPatch::default()
        }),
    };
    app.admin.update_workspace(&patch).await.unwrap();
    // No expiry before: the maximum applies to the new token.
    let r = app
        .admin
        .rotate_token(t.token.id, &grace(60))
        .await
        .unwrap();
    assert_eq!(
        r.token.expires_at,
        Some(app.clock.now() + Duration::days(30))
    );
    let too_long = RotateToken {
        grace_period_secs: 0,
        expires_at: Some(app.clock.now() + Duration::days(31)),
    };
    let p = problem_of(app.admin.rotate_token(r.token.id, &too_long).await);
    assert_eq!(
        (p.code.as_str(), p.field.as_deref()),
        ("TOKEN_LIFETIME_EXCEEDED", Some("expires_at"))
    );
    let p = problem_of(
        app.admin
            .rotate_token(r.token.id, &grace(91 * 24 * 3600))
            .await,
    );
    assert_eq!(p.field.as_deref(), Some("grace_period_secs"));
    // Nothing was half-done: the token still works and has no successor.
    assert_eq!(app.admin.token_family(r.token.id).await.unwrap().len(), 2);
}
both_backends!(rotation_keeps_within_the_workspace_maximum);

async fn revoking_a_users_tokens_stops_each_at_once(app: TestApp) {
    let role = app.api_role("Nothing", Scope::User, &[]).await;
    let owner = app.service_user("leaky", Some(role.id)).await;
    let other = app.service_user("fine", Some(role.id)).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(app.token_for(&owner).await);
    }
    app.admin.revoke_token(mine[0].token.id).await.unwrap();
    let theirs = app.token_for(&other).await;
    for t in &mine[1..] {
        assert_eq!(app.verify(&t.secret, &[]).await.code, Code::Valid);
    }

    let done = app.admin.revoke_user_tokens(owner.id).await.unwrap();
    let mut expected = vec![mine[1].token.id, mine[2].token.id];
    let mut got = done.revoked.clone();
    expected.sort_by_key(|id| id.to_string());
    got.sort_by_key(|id| id.to_string());
    assert_eq!(got, expected, "already revoked tokens are not listed");
    for t in &mine {
        assert_eq!(app.verify(&t.secret, &[]).await.code, Code::Revoked);
    }
    assert_eq!(app.verify(&theirs.secret, &[]).await.code, Code::Valid);
    for id in expected {
        let q = AuditQuery {
            token: Some(id.to_string()),
            action: Some("token.revoked".into()),
            ..AuditQuery::default()
        };
        assert_eq!(app.admin.audit(&q).await.unwrap().items.len(), 1);
    }
    // Again: nothing left to revoke.
    let again = app.admin.revoke_user_tokens(owner.id).await.unwrap();
    assert!(again.revoked.is_empty());
}
both_backends!(revoking_a_users_tokens_stops_each_at_once);

async fn rotation_keeps_every_restriction(app: TestApp) {
    app.catalogue(&["orders:read", "orders:write"]).await;
    let role = app
        .api_role("Orders", Scope::Workspace, &["orders:read", "orders:write"])
        .await;
    let other = app.api_role("Other", Scope::Workspace, &[]).await;
    let owner = app.service_user("erp", Some(other.id)).await;
    let mut req = token_request(&owner);
    req.role_id = Some(role.id);
    req.permissions = Some(vec!["orders:read".into()]);
    req.ip_allowlist = Some(IpListInput::Text("127.0.0.0/30, ::1".into()));
    req.rate_limit_per_minute = Some(42);
    req.internal_only = true;
    req.metadata = Some(serde_json::json!({"env": "prod"}));
    let first = app.admin.create_token(&req).await.unwrap();
    let r = app
        .admin
        .rotate_token(first.token.id, &grace(60))
        .await
        .unwrap();
    let stored = app.admin.token(r.token.id).await.unwrap();
    for new in [&r.token, &stored] {
        assert_eq!(new.role_id, Some(role.id));
        assert_eq!(new.permissions, first.token.permissions);
        assert_eq!(
            new.ip_allowlist.entries(),
            ["127.0.0.0/30", "::1/128"],
            "the allowlist"
        );
        assert_eq!(new.rate_limit_per_minute, Some(42));
        assert!(new.internal_only);
        assert_eq!(new.metadata, serde_json::json!({"env": "prod"}));
        assert_eq!(new.owner_id, owner.id);
    }
    // And they take effect: internal-only refuses outside the internal networks, and the
    // narrowing still withholds orders:write once they hold the address.
    assert_eq!(app.verify(&r.secret, &[]).await.code, Code::InternalOnly);
    let internal = WorkspacePatch {
        reason: None,
        name: None,
        settings: Some(SettingsPatch {
            internal_networks: Some(IpListInput::Text("127.0.0.1".into())),
            ..SettingsPatch::default()
        }),
    };
    app.admin.update_workspace(&internal).await.unwrap();
    assert_eq!(
        app.verify(&r.secret, &["orders:read"]).await.code,
        Code::Valid
    );
    assert_eq!(
        app.verify(&r.secret, &["orders:write"]).await.code,
        Code::InsufficientPermissions
    );
}
both_backends!(rotation_keeps_every_restriction);

async fn rotation_and_bulk_revocation_need_their_permissions(app: TestApp) {
    app.catalogue(&["orders:read", "orders:write"]).await;
    let orders = app
        .api_role("Orders", Scope::Workspace, &["orders:read", "orders:write"])
        .await;
    let owner = app.service_user("erp", Some(orders.id)).await;
    let target = app.token_for(&owner).await;
    let actor = |name: &'static str, perms: &'static [&'static str]| {
        let app = &app;
        async move {
            let role = app.api_role(name, Scope::Workspace, perms).await;
            let user = app.service_user(name, Some(role.id)).await;
            app.client(&app.token_for(&user).await.secret)
        }
    };
    let all_but_create = actor(
        "no-create",
        &[
            "keyward.tokens:read",
            "keyward.tokens:write",
            "keyward.tokens:revoke",
            "keyward.users:read",
            "orders:read",
            "orders:write",
        ],
    )
    .await;
    let p = problem_of(
        all_but_create
            .rotate_token(target.token.id, &grace(0))
            .await,
    );
    assert_eq!(
        (p.status, p.code.as_str()),
        (403, "INSUFFICIENT_PERMISSIONS")
    );
    assert!(p.detail.contains("keyward.tokens:create"), "{}", p.detail);
    // Creating, but not holding what the token holds: still refused.
    let weaker = actor(
        "weaker",
        &[
            "keyward.tokens:create",
            "keyward.tokens:read",
            "orders:read",
        ],
    )
    .await;
    assert_eq!(
        code_of(weaker.rotate_token(target.token.id, &grace(0)).await),
        "PRIVILEGE_ESCALATION"
    );
    assert_eq!(
        app.admin.token_family(target.token.id).await.unwrap().len(),
        1
    );
    assert_eq!(app.verify(&target.secret, &[]).await.code, Code::Valid);

    // Bulk revocation needs keyward.tokens:revoke.
    let no_revoke = actor(
        "no-revoke",
        &[
            "keyward.tokens:read",
            "keyward.tokens:write",
            "keyward.tokens:create",
            "keyward.users:read",
            "keyward.users:write",
        ],
    )
    .await;
    let p = problem_of(no_revoke.revoke_user_tokens(owner.id).await);
    assert_eq!(
        (p.status, p.code.as_str()),
        (403, "INSUFFICIENT_PERMISSIONS")
    );
    assert!(p.detail.contains("keyward.tokens:revoke"), "{}", p.detail);
    assert_eq!(app.verify(&target.secret, &[]).await.code, Code::Valid);
    let revoker = actor("revoker", &["keyward.tokens:revoke", "keyward.users:read"]).await;
    let done = revoker.revoke_user_tokens(owner.id).await.unwrap();
    assert_eq!(done.revoked, vec![target.token.id]);
    assert_eq!(app.verify(&target.secret, &[]).await.code, Code::Revoked);
}
both_backends!(rotation_and_bulk_revocation_need_their_permissions);
