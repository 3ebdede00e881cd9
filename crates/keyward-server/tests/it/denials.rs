//! Security denials in the audit trail: a flood of refusals becomes one `security.denied`
//! event per key with the exact count, acted by the refused token; keys beyond the bound fold
//! into an overflow event without losing counts; a graceful shutdown writes what is pending.

use std::time::Duration;

use chrono::TimeDelta;
use keyward_core::api::{CreateRole, IpListInput, VerifyRequest, VerifyResponse};
use keyward_core::audit::{ActorKind, AuditEventView, AuditQuery};
use keyward_core::model::{RoleKind, Scope};
use keyward_core::{Code, WorkspaceId};
use keyward_store::AuditFilter;
use serde_json::Value;

use crate::support::{code_of, token_request, Backend, TestApp};

/// Runs `$name(backend)` once per backend.
macro_rules! per_backend {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::support::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(crate::support::Backend::Postgres).await;
            }
        }
    };
}

/// `POST /v1/verify` without `ip`, from the connection's source address `local`.
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

async fn denied_events(app: &TestApp) -> Vec<AuditEventView> {
    let q = AuditQuery {
        action: Some("security.denied".into()),
        limit: Some(1000),
        ..AuditQuery::default()
    };
    app.admin.audit(&q).await.unwrap().items
}

/// Moves the clock past the flush interval and waits until the flush task has written `n`
/// events; then checks that no more arrive.
async fn flushed(app: &TestApp, n: usize) -> Vec<AuditEventView> {
    app.clock.advance(TimeDelta::seconds(61));
    for _ in 0..100 {
        if denied_events(app).await.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = denied_events(app).await;
    assert_eq!(events.len(), n, "{events:#?}");
    events
}

fn after(e: &AuditEventView) -> &Value {
    e.after.as_ref().unwrap()
}

async fn bot_token(app: &TestApp, name: &str, ips: Option<&str>, rate: Option<u32>) -> String {
    let role = app
        .admin
        .create_role(&CreateRole {
            name: format!("{name} role"),
            description: String::new(),
            kind: RoleKind::Api,
            scope: Scope::Workspace,
            permissions: vec!["keyward.workspace:read".into()],
            ip_allowlist: None,
            rate_limit_per_minute: None,
            rate_limit_per: None,
        })
        .await
        .unwrap();
    let owner = app.service_user(name, Some(role.id)).await;
    let mut req = token_request(&owner);
    req.ip_allowlist = ips.map(|s| IpListInput::Text(s.into()));
    req.rate_limit_per_minute = rate;
    app.admin.create_token(&req).await.unwrap().secret
}

async fn a_flood_becomes_one_event_per_key(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let a = bot_token(&app, "fenced-bot", Some("127.0.0.2"), Some(2)).await;
    let b = bot_token(&app, "reader-bot", None, None).await;
    let me_a = app.verify(&a, &[]).await; // from 127.0.0.1: refused, and counted too
    assert_eq!(me_a.code, Code::IpNotAllowed);
    let token_a = me_a.token_id.unwrap();

    // 500 refusals by the token's allowlist from one source, ten clients at a time.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (http, base) = app.verifier_from("127.0.0.3");
        let secret = a.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let v: VerifyResponse = http
                    .post(format!("{base}/v1/verify"))
                    .json(&serde_json::json!({ "token": secret }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(v.code, Code::IpNotAllowed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // The admin API from the allowed source: two permission refusals, then the token's rate
    // limit (2/min) refuses four authentications.
    let client = app.client_from("127.0.0.2", &a);
    let role = CreateRole {
        name: "Nope".into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::Workspace,
        permissions: vec![],
        ip_allowlist: None,
        rate_limit_per_minute: None,
        rate_limit_per: None,
    };
    for expected in ["INSUFFICIENT_PERMISSIONS"; 2]
        .into_iter()
        .chain(["RATE_LIMITED"; 4])
    {
        assert_eq!(code_of(client.create_role(&role).await), expected);
    }
    // The verify API: five requests needing a permission the token lacks.
    for _ in 0..5 {
        let v = app
            .admin
            .verify(&VerifyRequest {
                token: b.as_str().into(),
                ip: Some("127.0.0.9".into()),
                permissions: Some(vec!["keyward.roles:write".into()]),
                ..VerifyRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(v.code, Code::InsufficientPermissions);
    }
    assert!(
        denied_events(&app).await.is_empty(),
        "nothing before a flush"
    );

    let events = flushed(&app, 5).await;
    let find = |code: &str, ip: &str| {
        events
            .iter()
            .find(|e| after(e)["code"] == code && e.ip.as_deref() == Some(ip))
            .unwrap_or_else(|| panic!("no {code} from {ip}: {events:#?}"))
    };
    let flood = find("IP_NOT_ALLOWED", "127.0.0.3");
    assert_eq!(flood.count, 500);
    assert_eq!(flood.actor.kind, ActorKind::Token);
    assert_eq!(flood.actor.token_id, Some(token_a));
    assert!(flood.actor.user_id.is_some());
    assert_eq!(
        (flood.target_kind.as_str(), flood.target_id.clone()),
        ("token", token_a.to_string())
    );
    assert_eq!(after(flood)["refused_by"], "token");
    assert!(after(flood).get("overflow").is_none());
    assert!(after(flood)["first_at"].is_string() && after(flood)["last_at"].is_string());
    assert_eq!(find("IP_NOT_ALLOWED", "127.0.0.1").count, 1);
    let perm = find("INSUFFICIENT_PERMISSIONS", "127.0.0.2");
    assert_eq!(perm.count, 2);
    assert_eq!(after(perm)["missing_permission"], "keyward.roles:write");
    assert_eq!(perm.actor.token_id, Some(token_a));
    let limited = find("RATE_LIMITED", "127.0.0.2");
    assert_eq!(limited.count, 4);
    let verify_perm = find("INSUFFICIENT_PERMISSIONS", "127.0.0.9");
    assert_eq!(verify_perm.count, 5);
    assert_ne!(verify_perm.actor.token_id, Some(token_a));
    assert_eq!(
        after(verify_perm)["missing_permission"],
        "keyward.roles:write"
    );
    assert!(
        !serde_json::to_string(&events).unwrap().contains(&a),
        "no secret in an event"
    );

    let check = app.admin.verify_audit().await.unwrap();
    assert!(check.intact, "{check:?}");
}
per_backend!(a_flood_becomes_one_event_per_key);

async fn keys_beyond_the_bound_overflow_without_losing_counts(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| c.audit.denial_max_keys = 3).await else {
        return;
    };
    let secret = bot_token(&app, "fenced-bot", Some("127.0.0.200"), None).await;
    for n in 1..=10 {
        for _ in 0..2 {
            let v = verify_from(&app, &format!("127.0.0.{n}"), &secret).await;
            assert_eq!(v.code, Code::IpNotAllowed);
        }
    }
    let events = flushed(&app, 4).await;
    assert_eq!(events.iter().map(|e| e.count).sum::<u32>(), 20);
    let (over, detailed): (Vec<_>, Vec<_>) =
        events.iter().partition(|e| after(e)["overflow"] == true);
    assert_eq!(over.len(), 1);
    let o = over[0];
    assert_eq!((o.count, o.actor.kind), (14, ActorKind::System));
    assert_eq!(o.target_kind, "workspace");
    assert_eq!(after(o)["code"], "IP_NOT_ALLOWED");
    assert!(o.ip.is_none() && after(o).get("refused_by").is_none());
    assert!(detailed.iter().all(|e| e.count == 2 && e.ip.is_some()));
    assert!(app.admin.verify_audit().await.unwrap().intact);
}
per_backend!(keys_beyond_the_bound_overflow_without_losing_counts);

async fn shutdown_writes_pending_denials(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let secret = bot_token(&app, "fenced-bot", Some("127.0.0.2"), None).await;
    for _ in 0..7 {
        verify_from(&app, "127.0.0.3", &secret).await;
    }
    let ws: WorkspaceId = app.admin.workspace().await.unwrap().id;
    assert_eq!(app.state.denials.pending_keys(), 1);
    let state = app.shutdown().await;
    let filter = AuditFilter {
        action: Some("security.denied".into()),
        limit: 100,
        ..AuditFilter::default()
    };
    let stored = state.store.list_audit(ws, &filter).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].draft.count, 7);
    assert_eq!(stored[0].draft.ip.as_deref(), Some("127.0.0.3"));
}
per_backend!(shutdown_writes_pending_denials);

/// A fenced token in the workspace `admin` manages: its allowlist admits only 127.0.0.2.
async fn fenced_token(admin: &keyward_client::Client, name: &str) -> String {
    let role = admin
        .create_role(&CreateRole {
            name: format!("{name} role"),
            description: String::new(),
            kind: RoleKind::Api,
            scope: Scope::Workspace,
            permissions: vec!["keyward.workspace:read".into()],
            ip_allowlist: None,
            rate_limit_per_minute: None,
            rate_limit_per: None,
        })
        .await
        .unwrap();
    let owner = admin
        .create_user(&keyward_core::api::CreateUser {
            kind: keyward_core::model::UserKind::Service,
            name: name.into(),
            email: None,
            role_id: Some(role.id),
        })
        .await
        .unwrap();
    let mut req = token_request(&owner);
    req.ip_allowlist = Some(IpListInput::Text("127.0.0.2".into()));
    admin.create_token(&req).await.unwrap().secret
}

/// A verification of `secret` claiming the source `ip`, by the operator's verifier.
async fn refused_from(app: &TestApp, secret: &str, ip: &str) {
    let v = app
        .admin
        .verify(&VerifyRequest {
            token: secret.into(),
            ip: Some(ip.into()),
            ..VerifyRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(v.code, Code::IpNotAllowed);
}

async fn stored_denials(app: &TestApp, ws: WorkspaceId) -> Vec<keyward_core::audit::AuditEvent> {
    let filter = AuditFilter {
        action: Some("security.denied".into()),
        limit: 10_000,
        ..AuditFilter::default()
    };
    app.state.store.list_audit(ws, &filter).await.unwrap()
}

async fn one_tenants_flood_leaves_another_tenants_detail(backend: Backend) {
    // Room for 2,000 detailed keys in all: without a bound per workspace, tenant A's flood
    // alone would take all of them and push B's denials into overflow.
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.audit.denial_max_keys = 2_000;
        c.audit.denial_max_keys_per_workspace = 1_000;
    })
    .await
    else {
        return;
    };
    let ws_a = app.admin.workspace().await.unwrap().id;
    let b = app
        .admin
        .create_workspace(&keyward_core::api::CreateWorkspace {
            name: "Tenant B".into(),
            settings: None,
        })
        .await
        .unwrap();
    let admin_b = app.client(&b.admin_token.secret);
    let secret_a = fenced_token(&app.admin, "a-bot").await;
    let secret_b = fenced_token(&admin_b, "b-bot").await;

    // Tenant A: 5,000 refusals, each claiming another source address, eight callers at once.
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let (url, admin_secret, secret) =
            (app.url.clone(), app.admin_secret.clone(), secret_a.clone());
        tasks.push(tokio::spawn(async move {
            let c = keyward_client::Client::new(&url, Some(admin_secret)).unwrap();
            for n in (t..5_000).step_by(8) {
                let v = c
                    .verify(&VerifyRequest {
                        token: secret.as_str().into(),
                        ip: Some(format!("10.0.{}.{}", n / 250, n % 250 + 1).into()),
                        ..VerifyRequest::default()
                    })
                    .await
                    .unwrap();
                assert_eq!(v.code, Code::IpNotAllowed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Tenant B, after the flood: three distinct sources, the first twice.
    for ip in ["192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        refused_from(&app, &secret_b, ip).await;
    }
    assert_eq!(app.state.denials.pending_keys(), 1_000 + 1 + 3);

    app.clock.advance(TimeDelta::seconds(61));
    for _ in 0..100 {
        if app.state.denials.pending_keys() == 0
            && !stored_denials(&app, b.workspace.id).await.is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let in_b = stored_denials(&app, b.workspace.id).await;
    assert_eq!(in_b.len(), 3, "{in_b:#?}");
    assert!(in_b.iter().all(|e| e.draft.actor.kind == ActorKind::Token));
    let mut counts: Vec<_> = in_b
        .iter()
        .map(|e| (e.draft.ip.clone().unwrap(), e.draft.count))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("192.0.2.1".to_owned(), 2),
            ("192.0.2.2".to_owned(), 1),
            ("192.0.2.3".to_owned(), 1)
        ]
    );
    assert!(in_b
        .iter()
        .all(|e| !e.draft.after.as_deref().unwrap().contains("overflow")));

    let in_a = stored_denials(&app, ws_a).await;
    let (over, detailed): (Vec<_>, Vec<_>) = in_a
        .iter()
        .partition(|e| e.draft.target_kind == "workspace");
    assert_eq!(detailed.len(), 1_000);
    assert!(detailed
        .iter()
        .all(|e| e.draft.count == 1 && e.draft.ip.is_some()));
    assert_eq!(over.len(), 1);
    assert_eq!(over[0].draft.count, 4_000);
    assert_eq!(
        in_a.iter().map(|e| u64::from(e.draft.count)).sum::<u64>(),
        5_000
    );
    assert!(app.admin.verify_audit().await.unwrap().intact);
    assert!(admin_b.verify_audit().await.unwrap().intact);
}
per_backend!(one_tenants_flood_leaves_another_tenants_detail);
