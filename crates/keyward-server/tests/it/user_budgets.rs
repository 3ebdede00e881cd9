//! Per-user budgets: a rate limit counts each token (`per: "token"`, the default) or all the
//! tokens of one owner user together (`per: "user"`), set by the level (workspace default,
//! role, token) that supplies the limit. Two tokens of one user share the budget, another
//! user's are unaffected; the decision's `rate_limit.per` and the `RateLimit-Policy` /
//! `RateLimit` headers name it (verify API and forward-auth); changing a role's `per` applies
//! on the next request; a caller whose budget is shared per user cannot hand out a budget per
//! token (403 `PRIVILEGE_ESCALATION` on `rate_limit_per`).

use keyward_core::api::{
    CreateRole, RolePatch, SettingsPatch, TokenPatch, VerifyResponse, WorkspacePatch,
};
use keyward_core::model::{RoleKind, Scope};
use keyward_core::{Code, RateLimitPer, Role};

use crate::support::{both_backends, code_of, problem_of, token_request, Backend, TestApp};

/// An api role with `limit` per minute counted `per`, granting `perms`.
async fn limited_role(
    app: &TestApp,
    name: &str,
    perms: &[&str],
    limit: u32,
    per: RateLimitPer,
) -> Role {
    app.admin
        .create_role(&CreateRole {
            name: name.into(),
            description: String::new(),
            kind: RoleKind::Api,
            scope: Scope::Workspace,
            permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
            ip_allowlist: None,
            rate_limit_per_minute: Some(limit),
            rate_limit_per: Some(per),
        })
        .await
        .unwrap()
}

/// Verifies `secret` through the verify API from a verifier at 127.0.0.3 on behalf of a
/// client at 198.51.100.1; answers the decision and the two rate-limit headers.
async fn verify_with_headers(
    app: &TestApp,
    secret: &str,
) -> (VerifyResponse, Option<String>, Option<String>) {
    let (http, base) = app.verifier_from("127.0.0.3");
    let r = http
        .post(format!("{base}/v1/verify"))
        .json(&serde_json::json!({ "token": secret, "ip": "198.51.100.1" }))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (policy, state) = (header("ratelimit-policy"), header("ratelimit"));
    (r.json().await.unwrap(), policy, state)
}

async fn two_tokens_of_one_user_share_one_budget(app: TestApp) {
    let role = limited_role(&app, "Salesdock", &[], 5, RateLimitPer::User).await;
    let crm = app.service_user("CRM Integration", Some(role.id)).await;
    let other = app.service_user("ERP Integration", Some(role.id)).await;
    let first = app.token_for(&crm).await;
    let second = app.token_for(&crm).await;
    let elsewhere = app.token_for(&other).await;
    // A token of the same user with a budget of its own is outside the shared one.
    let mut own = token_request(&crm);
    own.rate_limit_per_minute = Some(5);
    own.rate_limit_per = Some(RateLimitPer::Token);
    let own = app.admin.create_token(&own).await.unwrap();

    let mut left = vec![];
    for secret in [&first.secret, &first.secret, &first.secret] {
        let (v, policy, state) = verify_with_headers(&app, secret).await;
        assert_eq!(v.code, Code::Valid);
        let rate = v.rate_limit.unwrap();
        assert_eq!((rate.limit, rate.per), (5, Some(RateLimitPer::User)));
        assert_eq!(policy.as_deref(), Some("\"user\";q=5;w=60"));
        let state = state.unwrap();
        assert!(
            state.starts_with(&format!("\"user\";r={};t=", rate.remaining)),
            "{state}"
        );
        left.push(rate.remaining);
    }
    for _ in 0..2 {
        let v = app.verify(&second.secret, &[]).await;
        assert_eq!(v.code, Code::Valid);
        left.push(v.rate_limit.unwrap().remaining);
    }
    assert_eq!(
        left,
        [4, 3, 2, 1, 0],
        "3 on one token and 2 on the other spend one budget"
    );
    for secret in [&first.secret, &second.secret] {
        let (v, policy, state) = verify_with_headers(&app, secret).await;
        assert_eq!(v.code, Code::RateLimited);
        assert!(v.retry_after.is_some());
        assert_eq!(v.rate_limit.unwrap().per, Some(RateLimitPer::User));
        assert_eq!(policy.as_deref(), Some("\"user\";q=5;w=60"));
        assert!(state.unwrap().starts_with("\"user\";r=0;"));
    }
    // Another user's token, and the user's own per-token one, are untouched.
    let v = app.verify(&elsewhere.secret, &[]).await;
    assert_eq!(v.code, Code::Valid);
    assert_eq!(v.rate_limit.unwrap().remaining, 4);
    let (v, policy, _) = verify_with_headers(&app, &own.secret).await;
    assert_eq!(v.code, Code::Valid);
    let rate = v.rate_limit.unwrap();
    assert_eq!((rate.remaining, rate.per), (4, Some(RateLimitPer::Token)));
    assert_eq!(policy.as_deref(), Some("\"token\";q=5;w=60"));
    // A minute later the shared budget is whole again.
    app.clock.advance(chrono::Duration::seconds(60));
    assert_eq!(app.verify(&second.secret, &[]).await.code, Code::Valid);
}
both_backends!(two_tokens_of_one_user_share_one_budget);

async fn the_workspace_default_may_count_per_user(app: TestApp) {
    let patch = WorkspacePatch {
        settings: Some(SettingsPatch {
            default_rate_limit_per_minute: Some(3),
            default_rate_limit_per: Some(RateLimitPer::User),
            ..SettingsPatch::default()
        }),
        ..WorkspacePatch::default()
    };
    let updated = app.admin.update_workspace(&patch).await.unwrap();
    assert_eq!(updated.settings.default_rate_limit_per, RateLimitPer::User);
    let plain = app.api_role("Plain", Scope::Workspace, &[]).await;
    let owner = app.service_user("sync", Some(plain.id)).await;
    let (a, b) = (app.token_for(&owner).await, app.token_for(&owner).await);
    for secret in [&a.secret, &b.secret, &a.secret] {
        let v = app.verify(secret, &[]).await;
        assert_eq!(v.code, Code::Valid);
        assert_eq!(v.rate_limit.unwrap().per, Some(RateLimitPer::User));
    }
    assert_eq!(app.verify(&b.secret, &[]).await.code, Code::RateLimited);
    // A role with a limit of its own counts per token unless it says otherwise.
    let own = limited_role(&app, "Own", &[], 3, RateLimitPer::Token).await;
    let mut req = token_request(&owner);
    req.role_id = Some(own.id);
    let c = app.admin.create_token(&req).await.unwrap();
    let v = app.verify(&c.secret, &[]).await;
    assert_eq!(v.code, Code::Valid);
    assert_eq!(v.rate_limit.unwrap().per, Some(RateLimitPer::Token));
}
both_backends!(the_workspace_default_may_count_per_user);

async fn changing_a_roles_per_applies_at_once(app: TestApp) {
    let role = limited_role(&app, "Agent", &[], 3, RateLimitPer::Token).await;
    let owner = app.service_user("bot", Some(role.id)).await;
    let (a, b) = (app.token_for(&owner).await, app.token_for(&owner).await);
    for _ in 0..3 {
        assert_eq!(app.verify(&a.secret, &[]).await.code, Code::Valid);
    }
    assert_eq!(app.verify(&a.secret, &[]).await.code, Code::RateLimited);
    // Per token: the second token has a budget of its own (and is now cached).
    let v = app.verify(&b.secret, &[]).await;
    assert_eq!(v.rate_limit.unwrap().per, Some(RateLimitPer::Token));

    let patch = RolePatch {
        rate_limit_per: Some(RateLimitPer::User),
        ..RolePatch::default()
    };
    let out = app.admin.update_role(role.id, &patch).await.unwrap();
    assert_eq!(out.rate_limit(), Some((3, RateLimitPer::User)));
    // The audit trail shows the change, before and after.
    let q = keyward_core::audit::AuditQuery {
        action: Some("role.updated".into()),
        limit: Some(10),
        ..Default::default()
    };
    let events = app.admin.audit(&q).await.unwrap().items;
    let e = events.last().unwrap();
    assert_eq!(e.before.as_ref().unwrap()["rate_limit_per"], "token");
    assert_eq!(e.after.as_ref().unwrap()["rate_limit_per"], "user");
    // The very next request spends the user's budget: both tokens share a fresh one.
    let v = app.verify(&a.secret, &[]).await;
    assert_eq!(
        v.code,
        Code::Valid,
        "a's own spent budget no longer applies"
    );
    let rate = v.rate_limit.unwrap();
    assert_eq!((rate.remaining, rate.per), (2, Some(RateLimitPer::User)));
    for _ in 0..2 {
        assert_eq!(app.verify(&b.secret, &[]).await.code, Code::Valid);
    }
    assert_eq!(app.verify(&a.secret, &[]).await.code, Code::RateLimited);
    assert_eq!(app.verify(&b.secret, &[]).await.code, Code::RateLimited);
}
both_backends!(changing_a_roles_per_applies_at_once);

async fn per_user_needs_a_limit_at_its_level(app: TestApp) {
    let plain = app.api_role("Plain", Scope::Workspace, &[]).await;
    let owner = app.service_user("bot", Some(plain.id)).await;
    let mut req = token_request(&owner);
    req.rate_limit_per = Some(RateLimitPer::User);
    let p = problem_of(app.admin.create_token(&req).await);
    assert_eq!(
        (p.code.as_str(), p.field.as_deref()),
        ("INVALID_RATE_LIMIT", Some("rate_limit_per"))
    );
    let role = CreateRole {
        name: "Per user without a limit".into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::Workspace,
        permissions: vec![],
        ip_allowlist: None,
        rate_limit_per_minute: None,
        rate_limit_per: Some(RateLimitPer::User),
    };
    assert_eq!(
        code_of(app.admin.create_role(&role).await),
        "INVALID_RATE_LIMIT"
    );
    // Removing a token's limit resets what it counts; the stored view shows both.
    req.rate_limit_per_minute = Some(10);
    let t = app.admin.create_token(&req).await.unwrap();
    assert_eq!(
        (t.token.rate_limit_per_minute, t.token.rate_limit_per),
        (Some(10), RateLimitPer::User)
    );
    let cleared = TokenPatch {
        rate_limit_per_minute: Some(None),
        ..TokenPatch::default()
    };
    let after = app.admin.update_token(t.token.id, &cleared).await.unwrap();
    assert_eq!(
        (after.rate_limit_per_minute, after.rate_limit_per),
        (None, RateLimitPer::Token)
    );
}
both_backends!(per_user_needs_a_limit_at_its_level);

/// Checks a refusal is the escalation of `field`.
fn assert_escalation<T: std::fmt::Debug>(r: Result<T, keyward_client::ClientError>, field: &str) {
    let p = problem_of(r);
    assert_eq!(
        (p.status, p.code.as_str(), p.field.as_deref()),
        (403, "PRIVILEGE_ESCALATION", Some(field)),
        "{}",
        p.detail
    );
}

async fn a_per_user_caller_cannot_hand_out_a_budget_per_token(app: TestApp) {
    app.catalogue(&["orders:read"]).await;
    let perms = [
        "keyward.tokens:create",
        "keyward.tokens:write",
        "keyward.roles:write",
        "keyward.roles:read",
        "orders:read",
    ];
    let shared = limited_role(&app, "Integrations", &perms, 150, RateLimitPer::User).await;
    let integration = app.service_user("integration", Some(shared.id)).await;
    let own = app.token_for(&integration).await;
    let client = app.client_from("127.0.0.2", &own.secret);

    // A token under the per-user role with a budget of its own escapes the shared one.
    let target = app.service_user("target", Some(shared.id)).await;
    let mut escape = token_request(&target);
    escape.rate_limit_per_minute = Some(150);
    escape.rate_limit_per = Some(RateLimitPer::Token);
    assert_escalation(client.create_token(&escape).await, "rate_limit_per");
    // Lower does not help: any budget of its own is outside the shared one.
    escape.rate_limit_per_minute = Some(10);
    assert_escalation(client.create_token(&escape).await, "rate_limit_per");
    // Per user (its own limit, or the role's) is within.
    escape.rate_limit_per = Some(RateLimitPer::User);
    let within = client.create_token(&escape).await.unwrap();
    assert_eq!(within.token.rate_limit_per, RateLimitPer::User);
    client.create_token(&token_request(&target)).await.unwrap();

    // Nor may it PATCH its own token, or another, to a budget per token.
    let loosen = TokenPatch {
        rate_limit_per_minute: Some(Some(150)),
        rate_limit_per: Some(RateLimitPer::Token),
        ..TokenPatch::default()
    };
    assert_escalation(
        client.update_token(own.token.id, &loosen).await,
        "rate_limit_per",
    );
    assert_escalation(
        client.update_token(within.token.id, &loosen).await,
        "rate_limit_per",
    );
    // Or make a role whose tokens each get their own.
    let role = CreateRole {
        name: "Loose".into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::Workspace,
        permissions: vec!["orders:read".into()],
        ip_allowlist: None,
        rate_limit_per_minute: Some(100),
        rate_limit_per: Some(RateLimitPer::Token),
    };
    assert_escalation(client.create_role(&role).await, "rate_limit_per");
    let to_token = RolePatch {
        rate_limit_per: Some(RateLimitPer::Token),
        ..RolePatch::default()
    };
    assert_escalation(
        client.update_role(shared.id, &to_token).await,
        "rate_limit_per",
    );

    // The workspace admin, whose own budget is per token, may.
    let mut escape = token_request(&target);
    escape.rate_limit_per_minute = Some(150);
    escape.rate_limit_per = Some(RateLimitPer::Token);
    let t = app.admin.create_token(&escape).await.unwrap();
    assert_eq!(t.token.rate_limit_per, RateLimitPer::Token);
}
both_backends!(a_per_user_caller_cannot_hand_out_a_budget_per_token);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_names_the_users_budget() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.policy.trusted_proxies = vec!["127.0.0.1".into(), "::1".into()];
        crate::forward_auth::shop_routes(c);
    })
    .await
    else {
        return;
    };
    app.catalogue(&["orders:read", "cart:write"]).await;
    let role = limited_role(&app, "Shop", &["orders:read"], 2, RateLimitPer::User).await;
    let owner = app.service_user("shop", Some(role.id)).await;
    let (a, b) = (app.token_for(&owner).await, app.token_for(&owner).await);
    let http = reqwest::Client::new();
    let ask = |secret: String| {
        http.get(format!("{}/auth", app.url))
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Uri", "/orders/1")
            .bearer_auth(secret)
            .send()
    };
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    for secret in [&a.secret, &b.secret] {
        let r = ask(secret.clone()).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-policy"), "\"user\";q=2;w=60");
        assert!(header(&r, "ratelimit").starts_with("\"user\";r="));
    }
    let r = ask(a.secret.clone()).await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "x-keyward-code"), "RATE_LIMITED");
    assert_eq!(header(&r, "ratelimit-policy"), "\"user\";q=2;w=60");
    assert!(header(&r, "ratelimit").starts_with("\"user\";r=0;"));
}
