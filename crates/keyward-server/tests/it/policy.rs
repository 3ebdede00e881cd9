//! Access policy with real source addresses: clients bound to 127.0.0.x and ::1 against
//! token, role and workspace allowlists; trusted and untrusted forwarding headers;
//! internal-only tokens; exact rate limits under concurrency; the brute-force guard.

use chrono::Duration;
use keyward_core::api::{
    CreateRole, IpListInput, RolePatch, SettingsPatch, TokenPatch, VerifyResponse, WorkspacePatch,
};
use keyward_core::model::{RoleKind, Scope};
use keyward_core::{Code, TokenSecret};

use crate::support::{both_backends, code_of, problem_of, token_request, Backend, TestApp};

fn text(s: &str) -> Option<IpListInput> {
    Some(IpListInput::Text(s.into()))
}

/// `POST /v1/verify` without `ip`, so the server uses the connection's source address.
async fn verify_from(app: &TestApp, local: &str, secret: &str) -> VerifyResponse {
    let (http, base) = app.verifier_from(local);
    http.post(format!("{base}/v1/verify"))
        .json(&serde_json::json!({ "token": secret }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn net_role(app: &TestApp, name: &str, ips: Option<IpListInput>) -> keyward_core::Role {
    app.admin
        .create_role(&CreateRole {
            name: name.into(),
            description: String::new(),
            kind: RoleKind::Api,
            scope: Scope::Workspace,
            permissions: vec!["keyward.workspace:read".into()],
            ip_allowlist: ips,
            rate_limit_per_minute: None,
            rate_limit_per: None,
        })
        .await
        .unwrap()
}

async fn allowlists_at_three_levels(app: TestApp) {
    // Token level.
    let plain = net_role(&app, "Plain", None).await;
    let owner = app.service_user("net-bot", Some(plain.id)).await;
    let mut req = token_request(&owner);
    req.ip_allowlist = text("127.0.0.2");
    let t = app.admin.create_token(&req).await.unwrap();
    assert!(app
        .client_from("127.0.0.2", &t.secret)
        .workspace()
        .await
        .is_ok());
    let p = problem_of(app.client_from("127.0.0.3", &t.secret).workspace().await);
    assert_eq!((p.status, p.code.as_str()), (403, "IP_NOT_ALLOWED"));
    assert!(p.detail.contains("token allowlist"), "{}", p.detail);
    let v = verify_from(&app, "127.0.0.3", &t.secret).await;
    assert_eq!(v.code, Code::IpNotAllowed);
    assert_eq!(v.refused_by, Some(keyward_core::decision::IpLevel::Token));
    assert!(
        !serde_json::to_string(&v).unwrap().contains("127.0.0.2"),
        "the list is not shown"
    );

    // Role level: a CIDR and an IPv6 address; a change applies on the next request.
    let ranged = net_role(&app, "Ranged", text("127.0.0.0/30\n::1")).await;
    let owner = app.service_user("ranged-bot", Some(ranged.id)).await;
    let t = app.token_for(&owner).await;
    assert!(app
        .client_from("127.0.0.3", &t.secret)
        .workspace()
        .await
        .is_ok());
    assert!(app.client_from("::1", &t.secret).workspace().await.is_ok());
    let v = verify_from(&app, "127.0.0.5", &t.secret).await;
    assert_eq!(
        (v.code, v.refused_by),
        (
            Code::IpNotAllowed,
            Some(keyward_core::decision::IpLevel::Role)
        )
    );
    let narrow = RolePatch {
        ip_allowlist: text("127.0.0.2"),
        ..RolePatch::default()
    };
    app.admin.update_role(ranged.id, &narrow).await.unwrap();
    assert_eq!(
        code_of(app.client_from("127.0.0.3", &t.secret).workspace().await),
        "IP_NOT_ALLOWED"
    );
    assert_eq!(
        code_of(app.client_from("::1", &t.secret).workspace().await),
        "IP_NOT_ALLOWED"
    );

    // Workspace level: every call of the workspace, the admin's too.
    let lockout = WorkspacePatch {
        settings: Some(SettingsPatch {
            ip_allowlist: text("10.0.0.0/8"),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        code_of(app.admin.update_workspace(&lockout).await),
        "SELF_LOCKOUT"
    );
    let set = WorkspacePatch {
        settings: Some(SettingsPatch {
            ip_allowlist: text("127.0.0.0/29, ::1"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let ws = app.admin.update_workspace(&set).await.unwrap();
    assert_eq!(
        ws.settings.ip_allowlist.entries(),
        ["127.0.0.0/29", "::1/128"]
    );
    let free = app
        .token_for(&app.service_user("free-bot", Some(plain.id)).await)
        .await;
    assert!(app
        .client_from("127.0.0.7", &free.secret)
        .workspace()
        .await
        .is_ok());
    assert!(app
        .client_from("::1", &free.secret)
        .workspace()
        .await
        .is_ok());
    // The verifier itself calls from inside the workspace's list and names the client.
    let v = app
        .admin
        .verify(&keyward_core::api::VerifyRequest {
            token: free.secret.as_str().into(),
            ip: Some("127.0.0.9".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (v.code, v.refused_by),
        (
            Code::IpNotAllowed,
            Some(keyward_core::decision::IpLevel::Workspace)
        )
    );
    assert_eq!(
        code_of(
            app.client_from("127.0.0.9", &app.admin_secret)
                .workspace()
                .await
        ),
        "IP_NOT_ALLOWED"
    );
}
both_backends!(allowlists_at_three_levels);

async fn bad_allowlist_input_is_refused_whole(app: TestApp) {
    let plain = net_role(&app, "Plain", None).await;
    let owner = app.service_user("bot", Some(plain.id)).await;
    let mut req = token_request(&owner);
    req.ip_allowlist = text("10.0.0.0/8");
    let t = app.admin.create_token(&req).await.unwrap();
    for bad in [
        "10.0.0.0/33",
        "1.2.3",
        "::g",
        "10.0.0.1,,10.0.0.2",
        "10.0.0.1, 10.0.0.0/33",
    ] {
        let patch = TokenPatch {
            ip_allowlist: text(bad),
            ..TokenPatch::default()
        };
        let p = problem_of(app.admin.update_token(t.token.id, &patch).await);
        assert_eq!(
            (p.status, p.code.as_str()),
            (422, "INVALID_IP_ENTRY"),
            "{bad}"
        );
        assert_eq!(p.field.as_deref(), Some("ip_allowlist"), "{bad}");
        assert!(p.detail.contains("entry"), "{bad}: {}", p.detail);
    }
    let p = problem_of(
        app.admin
            .update_token(
                t.token.id,
                &TokenPatch {
                    ip_allowlist: text("10.0.0.0/33"),
                    name: Some("renamed".into()),
                    ..TokenPatch::default()
                },
            )
            .await,
    );
    // The entry is named by its number, never repeated (a secret pasted there would be).
    assert!(
        p.detail.starts_with("entry 1 ") && !p.detail.contains("10.0.0.0/33"),
        "{}",
        p.detail
    );
    let after = app.admin.token(t.token.id).await.unwrap();
    assert_eq!(
        after.ip_allowlist.entries(),
        ["10.0.0.0/8"],
        "nothing half-applied"
    );
    assert_eq!(after.name, t.token.name);
    let bad_role = CreateRole {
        name: "Bad".into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::User,
        permissions: vec![],
        ip_allowlist: Some(IpListInput::Entries(vec!["10.0.0.1".into(), "".into()])),
        rate_limit_per_minute: None,
        rate_limit_per: None,
    };
    let p = problem_of(app.admin.create_role(&bad_role).await);
    assert_eq!(
        (p.code.as_str(), p.field.as_deref()),
        ("INVALID_IP_ENTRY", Some("ip_allowlist[1]"))
    );
    let roles = app
        .admin
        .list_roles(&Default::default())
        .await
        .unwrap()
        .items;
    assert!(roles.iter().all(|r| r.name != "Bad"));
}
both_backends!(bad_allowlist_input_is_refused_whole);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.policy.trusted_proxies = vec!["127.0.0.4".into()];
    })
    .await
    else {
        return;
    };
    let plain = net_role(&app, "Plain", None).await;
    let owner = app.service_user("proxied", Some(plain.id)).await;
    let mut req = token_request(&owner);
    req.ip_allowlist = text("198.51.100.7");
    let t = app.admin.create_token(&req).await.unwrap();
    let call = |local: &'static str, xff: &'static str| {
        let (http, base) = app.http_from(local);
        let secret = t.secret.clone();
        async move {
            http.get(format!("{base}/v1/workspace"))
                .bearer_auth(secret)
                .header("x-forwarded-for", xff)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        call("127.0.0.4", "198.51.100.7").await,
        200,
        "trusted proxy"
    );
    assert_eq!(
        call("127.0.0.4", "1.1.1.1, 198.51.100.7").await,
        200,
        "right-most hop"
    );
    assert_eq!(
        call("127.0.0.4", "198.51.100.7, 203.0.113.1").await,
        403,
        "spoofed left part"
    );
    assert_eq!(
        call("127.0.0.3", "198.51.100.7").await,
        403,
        "untrusted peer's header ignored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_only_tokens_and_the_rate_limit_exemption() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let set = WorkspacePatch {
        settings: Some(SettingsPatch {
            internal_networks: text("127.0.0.5"),
            ..Default::default()
        }),
        ..Default::default()
    };
    app.admin.update_workspace(&set).await.unwrap();
    let plain = net_role(&app, "Plain", None).await;
    let owner = app.service_user("internal-bot", Some(plain.id)).await;
    let mut req = token_request(&owner);
    req.internal_only = true;
    req.rate_limit_per_minute = Some(5);
    let internal = app.admin.create_token(&req).await.unwrap();
    let v = verify_from(&app, "127.0.0.3", &internal.secret).await;
    assert_eq!(v.code, Code::InternalOnly);
    assert_eq!(
        v.message,
        "token is only available for internal integration"
    );
    for _ in 0..20 {
        let v = verify_from(&app, "127.0.0.5", &internal.secret).await;
        assert_eq!(v.code, Code::Valid);
        assert!(v.rate_limit.is_none(), "internal requests are not counted");
    }
    let mut req = token_request(&owner);
    req.rate_limit_per_minute = Some(5);
    let limited = app.admin.create_token(&req).await.unwrap();
    for remaining in (0..5).rev() {
        let v = verify_from(&app, "127.0.0.3", &limited.secret).await;
        assert_eq!(v.code, Code::Valid);
        assert_eq!(
            v.rate_limit.map(|r| (r.limit, r.remaining)),
            Some((5, remaining))
        );
    }
    let v = verify_from(&app, "127.0.0.3", &limited.secret).await;
    assert_eq!(v.code, Code::RateLimited);
    assert_eq!(v.retry_after, Some(12), "one request per 12 s at 5/min");
    assert_eq!(
        verify_from(&app, "127.0.0.5", &limited.secret).await.code,
        Code::Valid
    );
}

async fn exactly_the_quota_passes_under_concurrency(app: TestApp) {
    let plain = net_role(&app, "Plain", None).await;
    let owner = app.service_user("busy-bot", Some(plain.id)).await;
    let t = app.token_for(&owner).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..400 {
        let (http, base) = app.verifier_from("127.0.0.3");
        let secret = t.secret.clone();
        tasks.spawn(async move {
            let r = http
                .post(format!("{base}/v1/verify"))
                .json(&serde_json::json!({ "token": secret, "ip": "198.51.100.1" }))
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let policy = r
                .headers()
                .get("ratelimit-policy")
                .map(|v| v.to_str().unwrap().to_owned());
            let v: VerifyResponse = r.json().await.unwrap();
            (v, retry, policy)
        });
    }
    let (mut valid, mut limited) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (v, retry, policy) = done.unwrap();
        assert_eq!(policy.as_deref(), Some("\"token\";q=150;w=60"));
        match v.code {
            Code::Valid => valid += 1,
            Code::RateLimited => {
                limited += 1;
                assert_eq!(v.retry_after, Some(1));
                assert_eq!(retry.as_deref(), Some("1"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((valid, limited), (150, 250));
    // A full window later, the quota is back.
    app.clock.advance(Duration::seconds(60));
    let v = app.verify(&t.secret, &[]).await;
    assert_eq!(v.code, Code::Valid);
    assert_eq!(v.rate_limit.map(|r| r.remaining), Some(149));
}
both_backends!(exactly_the_quota_passes_under_concurrency);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_from_one_address_are_refused() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.policy.failed_verifications_per_minute = 5;
    })
    .await
    else {
        return;
    };
    let plain = net_role(&app, "Plain", None).await;
    let good = app
        .token_for(&app.service_user("good", Some(plain.id)).await)
        .await;
    for _ in 0..5 {
        let guess = TokenSecret::generate("kw", &mut rand_core::OsRng);
        assert_eq!(
            verify_from(&app, "127.0.0.6", guess.expose()).await.code,
            Code::NotFound
        );
    }
    // The guard now answers that address from the cache only: a token not in use (not cached)
    // is not looked up…
    assert_eq!(
        verify_from(&app, "127.0.0.6", &good.secret).await.code,
        Code::RateLimited
    );
    assert_eq!(
        verify_from(&app, "127.0.0.7", &good.secret).await.code,
        Code::Valid
    );
    // …but a token in use is never refused because of failures.
    assert_eq!(
        verify_from(&app, "127.0.0.6", &good.secret).await.code,
        Code::Valid
    );
    let guess = TokenSecret::generate("kw", &mut rand_core::OsRng);
    assert_eq!(
        verify_from(&app, "127.0.0.6", guess.expose()).await.code,
        Code::RateLimited
    );
    app.clock.advance(Duration::seconds(60));
    assert_eq!(
        verify_from(&app, "127.0.0.6", &good.secret).await.code,
        Code::Valid
    );
}

/// An internal-only token of the workspace admins, used from `local`.
async fn internal_net_admin(app: &TestApp, local: &str) -> keyward_client::Client {
    let role = app
        .api_role(
            "Net admin",
            Scope::Workspace,
            &["keyward.workspace:read", "keyward.workspace:write"],
        )
        .await;
    let owner = app.service_user("net-admin", Some(role.id)).await;
    let mut req = token_request(&owner);
    req.internal_only = true;
    let t = app.admin.create_token(&req).await.unwrap();
    app.client_from(local, &t.secret)
}

fn internal_networks(list: &str) -> WorkspacePatch {
    WorkspacePatch {
        settings: Some(SettingsPatch {
            internal_networks: text(list),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn internal_network_changes_cannot_lock_out_the_caller(app: TestApp) {
    app.admin
        .update_workspace(&internal_networks("127.0.0.0/29"))
        .await
        .unwrap();
    let net_admin = internal_net_admin(&app, "127.0.0.2").await;
    for list in ["10.0.0.0/8", "", "127.0.0.3, ::1"] {
        let p = problem_of(net_admin.update_workspace(&internal_networks(list)).await);
        assert_eq!(
            (p.status, p.code.as_str()),
            (409, "SELF_LOCKOUT"),
            "{list:?}"
        );
        assert!(!p.detail.contains("127.0.0"), "{}", p.detail);
    }
    let ws = app.admin.workspace().await.unwrap();
    assert_eq!(ws.settings.internal_networks.entries(), ["127.0.0.0/29"]);
    // Keeping its own address is fine, and it keeps working.
    let ws = net_admin
        .update_workspace(&internal_networks("127.0.0.2, 10.0.0.0/8"))
        .await
        .unwrap();
    assert_eq!(
        ws.settings.internal_networks.entries(),
        ["10.0.0.0/8", "127.0.0.2/32"]
    );
    assert!(net_admin.workspace().await.is_ok());
    // A caller that is not internal-only is not locked out by the change, so it may make it.
    app.admin
        .update_workspace(&internal_networks("10.0.0.0/8"))
        .await
        .unwrap();
    assert_eq!(code_of(net_admin.workspace().await), "INTERNAL_ONLY");
}
both_backends!(internal_network_changes_cannot_lock_out_the_caller);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_internal_networks_count_for_the_lockout_check() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.policy.internal_networks = vec!["127.0.0.2".into()];
    })
    .await
    else {
        return;
    };
    let net_admin = internal_net_admin(&app, "127.0.0.2").await;
    net_admin
        .update_workspace(&internal_networks("10.0.0.0/8"))
        .await
        .unwrap();
    assert!(net_admin.workspace().await.is_ok());
}
