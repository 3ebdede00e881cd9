//! The audit trail through the API: each admin action leaves exactly one event naming the
//! acting token and its owner, a refused action leaves none, no secret reaches an event, and an
//! event edited directly in the database is named by the chain check. Webhook subscription
//! changes are audited too, never with their signing secret.

use keyward_core::api::{CreateRole, RolePatch, TokenPatch, UserPatch};
use keyward_core::audit::{ActorKind, AuditEventView, AuditQuery};
use keyward_core::model::{RoleKind, Scope};
use keyward_core::{TokenId, UserId};

use serde_json::json;

use crate::events::{call, subscribe};
use crate::support::{both_backends, code_of, token_request, TestApp};

async fn events_after(app: &TestApp, seq: i64) -> Vec<AuditEventView> {
    let q = AuditQuery {
        cursor: Some(seq.to_string()),
        limit: Some(1000),
        ..AuditQuery::default()
    };
    app.admin.audit(&q).await.unwrap().items
}

async fn last_seq(app: &TestApp) -> i64 {
    let q = AuditQuery {
        order: Some("desc".into()),
        limit: Some(1),
        ..AuditQuery::default()
    };
    app.admin.audit(&q).await.unwrap().items[0].seq
}

/// Runs `action`, then asserts it left exactly one event, `expected`, by the admin token.
macro_rules! audited {
    ($app:expr, $me:expr, $expected:expr, $action:expr) => {{
        let before = last_seq($app).await;
        let out = $action;
        let new = events_after($app, before).await;
        let actions: Vec<_> = new.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, [$expected]);
        let e = &new[0];
        assert_eq!(e.actor.kind, ActorKind::Token);
        assert_eq!((e.actor.token_id, e.actor.user_id), $me);
        assert!(e.ip.is_some(), "{e:?}");
        out
    }};
}

async fn each_admin_action_leaves_one_event_with_its_actor(app: TestApp) {
    let me_v = app.verify(&app.admin_secret, &[]).await;
    let me: (Option<TokenId>, Option<UserId>) = (me_v.token_id, me_v.owner.map(|o| o.id));
    let a = &app;
    audited!(a, me, "permission.put", app.catalogue(&["cart:read"]).await);
    let role = audited!(
        a,
        me,
        "role.created",
        app.api_role("Reader", Scope::Workspace, &["cart:read"])
            .await
    );
    audited!(a, me, "role.updated", {
        let patch = RolePatch {
            description: Some("reads carts".into()),
            ..RolePatch::default()
        };
        app.admin.update_role(role.id, &patch).await.unwrap()
    });
    let user = audited!(
        a,
        me,
        "user.created",
        app.service_user("bot", Some(role.id)).await
    );
    audited!(a, me, "user.updated", {
        let patch = UserPatch {
            name: Some("robot".into()),
            ..UserPatch::default()
        };
        app.admin.update_user(user.id, &patch).await.unwrap()
    });
    let created = audited!(
        a,
        me,
        "token.created",
        app.admin.create_token(&token_request(&user)).await.unwrap()
    );
    let id = created.token.id;
    audited!(a, me, "token.updated", {
        let patch = TokenPatch {
            name: Some("renamed".into()),
            ..TokenPatch::default()
        };
        app.admin.update_token(id, &patch).await.unwrap()
    });
    audited!(
        a,
        me,
        "token.revoked",
        app.admin.revoke_token(id).await.unwrap()
    );
    audited!(
        a,
        me,
        "token.deleted",
        app.admin.delete_token(id).await.unwrap()
    );
    audited!(
        a,
        me,
        "user.deleted",
        app.admin.delete_user(user.id).await.unwrap()
    );
    audited!(
        a,
        me,
        "role.deleted",
        app.admin.delete_role(role.id).await.unwrap()
    );

    // A refused action leaves nothing.
    let before = last_seq(a).await;
    let bad = CreateRole {
        name: "Bad".into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::Workspace,
        permissions: vec!["not:catalogued".into()],
        ip_allowlist: None,
        rate_limit_per_minute: None,
        rate_limit_per: None,
    };
    assert_eq!(
        code_of(app.admin.create_role(&bad).await),
        "UNKNOWN_PERMISSION"
    );
    assert!(events_after(a, before).await.is_empty());

    // The whole trail, from the workspace's creation on, holds no secret, and its chain checks.
    let all = events_after(a, 0).await;
    assert_eq!(all[0].action, "workspace.created");
    assert_eq!(all[0].actor.kind, ActorKind::System);
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(&created.secret));
    assert!(!text.contains(&app.admin_secret));
    let check = app.admin.verify_audit().await.unwrap();
    assert!(check.intact, "{check:?}");
    assert_eq!(check.events_checked as usize, all.len());
}
both_backends!(each_admin_action_leaves_one_event_with_its_actor);

async fn filters_and_bad_queries(app: TestApp) {
    let user = app.service_user("bot", None).await;
    let role = app.api_role("Own", Scope::User, &[]).await;
    let mut req = token_request(&user);
    req.role_id = Some(role.id);
    let t = app.admin.create_token(&req).await.unwrap();
    app.admin.revoke_token(t.token.id).await.unwrap();
    let q = AuditQuery {
        token: Some(t.token.id.to_string()),
        ..AuditQuery::default()
    };
    let actions: Vec<_> = app.admin.audit(&q).await.unwrap().items;
    let actions: Vec<_> = actions.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token.created", "token.revoked"]);
    let q = AuditQuery {
        action: Some("user.*".into()),
        ..AuditQuery::default()
    };
    let users = app.admin.audit(&q).await.unwrap().items;
    assert!(users.iter().all(|e| e.action.starts_with("user.")));
    assert_eq!(users.len(), 1);
    for (q, field) in [
        (
            AuditQuery {
                limit: Some(0),
                ..AuditQuery::default()
            },
            "limit",
        ),
        (
            AuditQuery {
                order: Some("sideways".into()),
                ..AuditQuery::default()
            },
            "order",
        ),
        (
            AuditQuery {
                actor: Some("rol_nope".into()),
                ..AuditQuery::default()
            },
            "actor",
        ),
        (
            AuditQuery {
                cursor: Some("x".into()),
                ..AuditQuery::default()
            },
            "cursor",
        ),
    ] {
        let p = crate::support::problem_of(app.admin.audit(&q).await);
        assert_eq!(p.field.as_deref(), Some(field), "{p:?}");
    }
    // Reading the trail needs keyward.audit:read.
    let reader = app
        .api_role("Cart only", Scope::Workspace, &["keyward.tokens:read"])
        .await;
    let limited_user = app.service_user("limited", Some(reader.id)).await;
    let limited = app.token_for(&limited_user).await;
    let c = app.client(&limited.secret);
    assert_eq!(
        code_of(c.audit(&AuditQuery::default()).await),
        "INSUFFICIENT_PERMISSIONS"
    );
}
both_backends!(filters_and_bad_queries);

async fn a_direct_edit_is_named_by_the_chain_check(app: TestApp) {
    app.catalogue(&["cart:read", "cart:write"]).await;
    app.api_role("Reader", Scope::Workspace, &["cart:read"])
        .await;
    let check = app.admin.verify_audit().await.unwrap();
    assert!(check.intact);
    let total = check.head_seq;
    assert!(total >= 4, "{check:?}");
    // Someone with database access rewrites history: event 3 now claims another action.
    crate::support::raw_sql(
        &app,
        "UPDATE audit_events SET action = 'role.viewed' WHERE seq = 3",
    )
    .await;
    let check = app.admin.verify_audit().await.unwrap();
    assert!(!check.intact);
    assert_eq!(check.first_broken.as_ref().map(|b| b.seq), Some(3));
    assert_eq!(check.events_checked, 2);
    // Deleting the newest event is found too: the head remembers it.
    crate::support::raw_sql(
        &app,
        &format!("UPDATE audit_events SET action = 'permission.put' WHERE seq = 3; DELETE FROM audit_events WHERE seq = {total}"),
    )
    .await;
    let check = app.admin.verify_audit().await.unwrap();
    assert_eq!(
        check.first_broken.as_ref().map(|b| b.seq),
        Some(total),
        "{check:?}"
    );
}
both_backends!(a_direct_edit_is_named_by_the_chain_check);

async fn webhook_admin_actions_are_audited_without_the_secret(app: TestApp) {
    let me_v = app.verify(&app.admin_secret, &[]).await;
    let me: (Option<TokenId>, Option<UserId>) = (me_v.token_id, me_v.owner.map(|o| o.id));
    let a = &app;
    let body = json!({"url": "http://127.0.0.1:9/hook", "description": "audited"});
    let (id, secret) = audited!(a, me, "webhook.created", subscribe(a, body).await);
    let path = format!("/v1/webhooks/{id}");
    audited!(a, me, "webhook.updated", {
        let patch = json!({"enabled": false, "event_types": ["token.revoked"]});
        let (status, view) = call(a, "PATCH", &path, Some(patch)).await;
        assert_eq!(status, 200, "{view}");
    });
    let rotated = audited!(a, me, "webhook.secret_rotated", {
        let (status, rotated) = call(a, "POST", &format!("{path}/rotate-secret"), None).await;
        assert_eq!(status, 200, "{rotated}");
        rotated["secret"].as_str().unwrap().to_owned()
    });
    assert_ne!(rotated, secret);
    audited!(a, me, "webhook.deleted", {
        assert_eq!(call(a, "DELETE", &path, None).await.0, 204);
    });

    // A refused change (the subscription is gone) leaves nothing.
    let before = last_seq(a).await;
    assert_eq!(call(a, "DELETE", &path, None).await.0, 404);
    let patch = json!({"enabled": true});
    assert_eq!(call(a, "PATCH", &path, Some(patch)).await.0, 404);
    assert!(events_after(a, before).await.is_empty());

    // The events name the subscription and hold its views: the update's before and after
    // differ; no secret is anywhere in the trail.
    let q = AuditQuery {
        action: Some("webhook.*".into()),
        ..AuditQuery::default()
    };
    let events = app.admin.audit(&q).await.unwrap().items;
    assert_eq!(events.len(), 4);
    assert!(events
        .iter()
        .all(|e| e.target_kind == "webhook" && e.target_id == id));
    let updated = &events[1];
    assert_eq!(updated.before.as_ref().unwrap()["enabled"], true);
    assert_eq!(updated.after.as_ref().unwrap()["enabled"], false);
    assert_eq!(events[0].after.as_ref().unwrap()["id"], id.as_str());
    assert!(events[3].after.is_none() && events[3].before.is_some());
    let text = serde_json::to_string(&events_after(a, 0).await).unwrap();
    assert!(!text.contains(&secret) && !text.contains(&rotated));
    assert!(!text.contains("whsec_"), "{text}");
    let check = app.admin.verify_audit().await.unwrap();
    assert!(check.intact, "{check:?}");
}
both_backends!(webhook_admin_actions_are_audited_without_the_secret);
