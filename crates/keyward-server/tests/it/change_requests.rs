//! Two-person approval through the API, on both backends: the loyalty platform's flow (a
//! Security Manager submits addresses, a Security Admin approves with the code), and every way
//! a request can end or be refused — rejection, cancellation, expiry, a stale target, wrong or
//! reused codes, approvers lacking the change's permissions or not being people, turning
//! approval off through a request, several approvals, and concurrent approvals.

use keyward_core::api::{CreateRole, CreateToken, CreateUser, VerifyRequest};
use keyward_core::model::{RoleKind, Scope, User, UserKind};
use keyward_core::{ChangeRequestId, Clock as _};
use serde_json::{json, Value};

use crate::events::{eventually, fast, subscribe, Receiver};
use crate::support::{both_backends, Backend, TestApp};

/// A raw call with `secret`; answers the status and JSON body.
pub(crate) async fn call(
    app: &TestApp,
    secret: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http
        .request(method.parse().unwrap(), format!("{}{path}", app.url))
        .bearer_auth(secret);
    if !body.is_null() {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A person (human user) holding the ready-made human role `role`, and an API token of theirs
/// acting with an api role of `perms` (a human's token needs its own api role).
pub(crate) struct Person {
    pub(crate) user: User,
    pub(crate) secret: String,
}

pub(crate) async fn person(app: &TestApp, name: &str, human_role: &str, perms: &[&str]) -> Person {
    let roles = app.admin.list_roles(&Default::default()).await.unwrap();
    let role = roles
        .items
        .iter()
        .find(|r| r.name == human_role)
        .unwrap_or_else(|| panic!("every workspace offers the role {human_role}"));
    assert_eq!(role.kind, RoleKind::Human);
    let user = app
        .admin
        .create_user(&CreateUser {
            kind: UserKind::Human,
            name: name.into(),
            email: Some(format!("{name}@example.com")),
            role_id: Some(role.id),
        })
        .await
        .unwrap();
    let api = app
        .admin
        .create_role(&CreateRole {
            name: format!("{name} api"),
            description: String::new(),
            kind: RoleKind::Api,
            scope: Scope::Workspace,
            permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
            ip_allowlist: None,
            rate_limit_per_minute: None,
            rate_limit_per: None,
        })
        .await
        .unwrap();
    let secret = another_token(app, &user, api.id).await;
    Person { user, secret }
}

/// A token `maker_secret` makes for `owner`, with `role` if given: the API's answer.
async fn mint(
    app: &TestApp,
    maker_secret: &str,
    owner: keyward_core::UserId,
    name: &str,
    role: Option<keyward_core::RoleId>,
) -> Value {
    let mut body = json!({"owner_id": owner, "name": name});
    if let Some(role) = role {
        body["role_id"] = json!(role);
    }
    let (status, minted) = call(app, maker_secret, "POST", "/v1/tokens", body).await;
    assert_eq!(status, 201, "{minted}");
    minted
}

async fn another_token(app: &TestApp, user: &User, role: keyward_core::RoleId) -> String {
    app.admin
        .create_token(&CreateToken {
            role_id: Some(role),
            ..crate::support::token_request(user)
        })
        .await
        .unwrap()
        .secret
}

const MANAGER: &[&str] = &["keyward.workspace:*"];
const APPROVER: &[&str] = &["keyward.workspace:*", "keyward.security:approve"];

/// The code the approvers get (the inbox shows it; `change_request.created` carries it).
fn code(app: &TestApp, r: &Value) -> String {
    let id = ChangeRequestId::parse(r["id"].as_str().unwrap()).unwrap();
    keyward_core::change::approval_code(&app.state.people.approval_key, id)
}

/// Turns approval on, with the workspace allowlist `127.0.0.1` (the tests' own address).
async fn require_approval(app: &TestApp, extra: Value) {
    let mut settings = json!({"require_approval": true, "ip_allowlist": "127.0.0.1"});
    settings
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, ws) = call(
        app,
        &app.admin_secret,
        "PATCH",
        "/v1/workspace",
        json!({ "settings": settings }),
    )
    .await;
    assert_eq!(status, 200, "turning approval on applies at once: {ws}");
    assert_eq!(ws["settings"]["require_approval"], true);
}

const WIDER: &str = "127.0.0.1, 203.0.113.5, 203.0.113.6";

/// The manager asks for the wider allowlist; answers the request.
async fn submit(app: &TestApp, who: &Person, reason: &str) -> Value {
    let (status, r) = call(
        app,
        &who.secret,
        "PATCH",
        "/v1/workspace",
        json!({"settings": {"ip_allowlist": WIDER}, "reason": reason}),
    )
    .await;
    assert_eq!(status, 202, "{r}");
    r
}

async fn decide(app: &TestApp, who: &str, r: &Value, what: &str, body: Value) -> (u16, Value) {
    let id = r["id"].as_str().unwrap();
    call(
        app,
        who,
        "POST",
        &format!("/v1/change-requests/{id}/{what}"),
        body,
    )
    .await
}

async fn allowlist(app: &TestApp) -> Vec<String> {
    let ws = app.admin.workspace().await.unwrap();
    ws.settings
        .ip_allowlist
        .entries()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

async fn verify_from(app: &TestApp, secret: &str, ip: &str) -> String {
    let v = app
        .admin
        .verify(&VerifyRequest {
            token: secret.into(),
            ip: Some(ip.into()),
            permissions: Some(vec!["orders:read".into()]),
            ..VerifyRequest::default()
        })
        .await
        .unwrap();
    format!("{:?}", v.code)
}

async fn actions(app: &TestApp) -> Vec<String> {
    let page = app
        .admin
        .audit(&keyward_core::audit::AuditQuery {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    page.items.iter().map(|e| e.action.clone()).collect()
}

async fn loyalty_flow(app: TestApp) {
    // The approvers' channel names the event that carries the code; a catch-all subscription
    // (a SIEM) hears everything else but never gets a code.
    let hooks = Receiver::start(&[]).await;
    subscribe(
        &app,
        json!({"url": hooks.url, "event_types": [
            "change_request.created", "change_request.approved", "change_request.applied"
        ]}),
    )
    .await;
    let siem = Receiver::start(&[]).await;
    subscribe(&app, json!({"url": siem.url})).await;
    app.catalogue(&["orders:read"]).await;
    let role = app
        .api_role("Integration", Scope::Workspace, &["orders:read"])
        .await;
    let integration = app.service_user("shop", Some(role.id)).await;
    let shop = app.token_for(&integration).await.secret;
    require_approval(&app, json!({})).await;
    let manager = person(&app, "maria", "Security Manager", MANAGER).await;
    let admin = person(&app, "sam", "Security Admin", APPROVER).await;
    assert_eq!(
        verify_from(&app, &shop, "203.0.113.5").await,
        "IpNotAllowed"
    );

    // The manager submits two addresses: nothing changes yet.
    let r = submit(&app, &manager, "new warehouse").await;
    assert_eq!(r["state"], "pending");
    assert_eq!(r["target"], json!({"kind": "workspace"}));
    assert_eq!(r["reason"], "new warehouse");
    assert_eq!(r["approvals_needed"], 1);
    assert_eq!(r["requested_by"]["user_id"], manager.user.id.to_string());
    assert_eq!(
        r["before"]["settings"]["ip_allowlist"],
        json!(["127.0.0.1/32"])
    );
    assert!(
        r.get("code_hash").is_none() && r.get("approval_code").is_none(),
        "{r}"
    );
    assert_eq!(allowlist(&app).await, vec!["127.0.0.1/32"]);
    assert_eq!(
        verify_from(&app, &shop, "203.0.113.5").await,
        "IpNotAllowed"
    );
    let code = code(&app, &r);

    // The manager cannot approve: the permission is the approvers'.
    let (status, p) = decide(&app, &manager.secret, &r, "approve", json!({"code": code})).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (403, Some("INSUFFICIENT_PERMISSIONS")),
        "{p}"
    );
    // Nor can an approver approve their own request, with another token of theirs either.
    let own = submit(&app, &admin, "mine").await;
    let api = app.admin.list_roles(&Default::default()).await.unwrap();
    let api = api.items.iter().find(|r| r.name == "sam api").unwrap();
    let second = another_token(&app, &admin.user, api.id).await;
    for secret in [&admin.secret, &second] {
        let body = json!({"code": self::code(&app, &own)});
        let (status, p) = decide(&app, secret, &own, "approve", body).await;
        assert_eq!(
            (status, p["code"].as_str()),
            (403, Some("SELF_APPROVAL")),
            "{p}"
        );
    }
    let (status, _) = decide(&app, &admin.secret, &own, "cancel", json!({})).await;
    assert_eq!(status, 200);

    // A wrong code, then the right one.
    let (status, p) = decide(
        &app,
        &admin.secret,
        &r,
        "approve",
        json!({"code": "00000-00000"}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (403, Some("INVALID_APPROVAL_CODE")),
        "{p}"
    );
    assert_eq!(allowlist(&app).await, vec!["127.0.0.1/32"]);
    let typed = code.to_lowercase().replace('-', " ");
    let (status, done) = decide(
        &app,
        &admin.secret,
        &r,
        "approve",
        json!({"code": typed, "comment": "checked with the warehouse"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "applied");
    assert_eq!(done["approvals"][0]["user_id"], admin.user.id.to_string());
    assert_eq!(
        done["approvals"][0]["comment"],
        "checked with the warehouse"
    );
    assert_eq!(
        allowlist(&app).await,
        vec!["127.0.0.1/32", "203.0.113.5/32", "203.0.113.6/32"]
    );
    assert_eq!(verify_from(&app, &shop, "203.0.113.5").await, "Valid");
    assert_eq!(verify_from(&app, &shop, "203.0.113.6").await, "Valid");

    // The code does not work twice.
    let (status, p) = decide(&app, &admin.secret, &r, "approve", json!({"code": code})).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("CHANGE_REQUEST_CLOSED")),
        "{p}"
    );

    // The requester can read the outcome; the approvers' webhook got the code.
    let id = r["id"].as_str().unwrap();
    let (status, seen) = call(
        &app,
        &manager.secret,
        "GET",
        &format!("/v1/change-requests/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!((status, seen["state"].as_str()), (200, Some("applied")));
    eventually("the change request events", || {
        let bodies: Vec<Value> = hooks
            .all()
            .iter()
            .map(|h| serde_json::from_str(&h.body).unwrap())
            .collect();
        let of = |t: &str| bodies.iter().find(|b| b["type"] == t).cloned();
        match (of("change_request.created"), of("change_request.applied")) {
            (Some(created), Some(applied)) => {
                assert_eq!(created["data"]["approval_code"], code);
                assert_eq!(created["data"]["id"], id);
                assert!(applied["data"].get("approval_code").is_none());
                assert_eq!(
                    applied["data"]["requested_by"]["user_id"],
                    manager.user.id.to_string()
                );
                assert!(of("change_request.approved").is_some());
                true
            }
            _ => false,
        }
    })
    .await;
    eventually("the catch-all subscription hears the outcome", || {
        siem.all()
            .iter()
            .any(|h| h.body.contains("change_request.applied"))
    })
    .await;
    for h in siem.all() {
        assert!(
            !h.body.contains("change_request.created") && !h.body.contains(&code),
            "a catch-all subscription got the approval code: {}",
            h.body
        );
    }

    // Every step is audited, the code nowhere, and the chain holds.
    let acts = actions(&app).await;
    for a in [
        "change_request.created",
        "change_request.code_failed",
        "change_request.approved",
        "change_request.applied",
    ] {
        assert!(acts.iter().any(|x| x == a), "{a} missing from {acts:?}");
    }
    let trail = serde_json::to_string(
        &app.admin
            .audit(&keyward_core::audit::AuditQuery {
                limit: Some(1000),
                ..Default::default()
            })
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!trail.contains(&code), "the approval code is never audited");
    assert!(
        !crate::support::logs_contain(&code),
        "the approval code is never logged"
    );
    let check = app.admin.verify_audit().await.unwrap();
    assert!(check.intact, "{check:?}");
}
both_backends!(loyalty_flow);

async fn reject_cancel_and_expiry(app: TestApp) {
    require_approval(&app, json!({"approval_expiry_hours": 24})).await;
    let manager = person(&app, "maria", "Security Manager", MANAGER).await;
    let admin = person(&app, "sam", "Security Admin", APPROVER).await;

    // Rejected: nothing applied, and it cannot be decided again.
    let r = submit(&app, &manager, "").await;
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(r["expires_at"].as_str().unwrap()).unwrap(),
        app.clock.now() + chrono::Duration::hours(24)
    );
    let (status, p) = decide(&app, &manager.secret, &r, "reject", json!({})).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (403, Some("INSUFFICIENT_PERMISSIONS"))
    );
    let (status, done) = decide(
        &app,
        &admin.secret,
        &r,
        "reject",
        json!({"comment": "not ours"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["state"].as_str(), done["comment"].as_str()),
        (Some("rejected"), Some("not ours"))
    );
    assert_eq!(allowlist(&app).await, vec!["127.0.0.1/32"]);
    let (status, p) = decide(
        &app,
        &admin.secret,
        &r,
        "approve",
        json!({"code": code(&app, &r)}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("CHANGE_REQUEST_CLOSED"))
    );

    // Cancelled by its requester only.
    let r = submit(&app, &manager, "").await;
    let (status, p) = decide(&app, &admin.secret, &r, "cancel", json!({})).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (403, Some("NOT_THE_REQUESTER"))
    );
    let (status, done) = decide(
        &app,
        &manager.secret,
        &r,
        "cancel",
        json!({"comment": "typo"}),
    )
    .await;
    assert_eq!(
        (status, done["state"].as_str()),
        (200, Some("cancelled")),
        "{done}"
    );
    let (status, p) = decide(
        &app,
        &admin.secret,
        &r,
        "approve",
        json!({"code": code(&app, &r)}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("CHANGE_REQUEST_CLOSED"))
    );

    // Expired: refused when approved late, and the scheduler's pass finishes the others.
    let late = submit(&app, &manager, "").await;
    let idle = submit(&app, &manager, "").await;
    app.clock.advance(chrono::Duration::hours(24));
    let (status, p) = decide(
        &app,
        &admin.secret,
        &late,
        "approve",
        json!({"code": code(&app, &late)}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("CHANGE_REQUEST_EXPIRED")),
        "{p}"
    );
    assert_eq!(allowlist(&app).await, vec!["127.0.0.1/32"]);
    let n = keyward_server::ops::change_requests::expire_due(&app.state)
        .await
        .unwrap();
    assert_eq!(n, 1, "the late one was expired already");
    for r in [&late, &idle] {
        let id = r["id"].as_str().unwrap();
        let (_, now) = call(
            &app,
            &admin.secret,
            "GET",
            &format!("/v1/change-requests/{id}"),
            Value::Null,
        )
        .await;
        assert_eq!(now["state"], "expired", "{now}");
    }
    // The lists filter by state and requester; a requester sees only their own.
    let (status, page) = call(
        &app,
        &admin.secret,
        "GET",
        "/v1/change-requests?state=expired",
        Value::Null,
    )
    .await;
    assert_eq!((status, page["items"].as_array().unwrap().len()), (200, 2));
    let (_, page) = call(
        &app,
        &admin.secret,
        "GET",
        &format!("/v1/change-requests?requested_by={}", admin.user.id),
        Value::Null,
    )
    .await;
    assert!(page["items"].as_array().unwrap().is_empty());
    let (status, p) = call(
        &app,
        &manager.secret,
        "GET",
        &format!("/v1/change-requests?requested_by={}", admin.user.id),
        Value::Null,
    )
    .await;
    assert_eq!(status, 403, "{p}");
    let (_, page) = call(
        &app,
        &manager.secret,
        "GET",
        "/v1/change-requests",
        Value::Null,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    let (status, p) = call(
        &app,
        &admin.secret,
        "GET",
        "/v1/change-requests?state=approved",
        Value::Null,
    )
    .await;
    assert_eq!((status, p["code"].as_str()), (422, Some("INVALID_STATE")));
    let acts = actions(&app).await;
    for a in [
        "change_request.rejected",
        "change_request.cancelled",
        "change_request.expired",
    ] {
        assert!(acts.iter().any(|x| x == a), "{a} missing");
    }
    assert!(app.admin.verify_audit().await.unwrap().intact);
}
both_backends!(reject_cancel_and_expiry);

async fn stale_and_who_may_approve(app: TestApp) {
    require_approval(&app, json!({})).await;
    let manager = person(&app, "maria", "Security Manager", MANAGER).await;
    let admin = person(&app, "sam", "Security Admin", APPROVER).await;

    // A direct change of the target meanwhile makes the request stale: nothing applies.
    let r = submit(&app, &manager, "").await;
    let (status, _) = call(
        &app,
        &app.admin_secret,
        "PATCH",
        "/v1/workspace",
        json!({"name": "Renamed"}),
    )
    .await;
    assert_eq!(
        status, 200,
        "a change that needs no approval applies at once"
    );
    let (status, p) = decide(
        &app,
        &admin.secret,
        &r,
        "approve",
        json!({"code": code(&app, &r)}),
    )
    .await;
    assert_eq!((status, p["code"].as_str()), (409, Some("STALE")), "{p}");
    let id = r["id"].as_str().unwrap();
    let (_, now) = call(
        &app,
        &admin.secret,
        "GET",
        &format!("/v1/change-requests/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(now["state"], "failed");
    assert!(
        now["outcome"].as_str().unwrap().starts_with("STALE"),
        "{now}"
    );
    assert_eq!(allowlist(&app).await, vec!["127.0.0.1/32"]);

    // Approving needs what applying directly needs, and a person.
    let r = submit(&app, &manager, "").await;
    let weak = person(&app, "wes", "Security Admin", &["keyward.security:approve"]).await;
    let (status, p) = decide(
        &app,
        &weak.secret,
        &r,
        "approve",
        json!({"code": code(&app, &r)}),
    )
    .await;
    assert_eq!(status, 403, "{p}");
    let (status, p) = decide(
        &app,
        &app.admin_secret,
        &r,
        "approve",
        json!({"code": code(&app, &r)}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (403, Some("APPROVER_NOT_A_PERSON")),
        "{p}"
    );
    let (status, p) = decide(&app, &manager.secret, &r, "reject", json!({})).await;
    assert_eq!(status, 403, "{p}");
    let (_, still) = call(
        &app,
        &admin.secret,
        "GET",
        &format!("/v1/change-requests/{}", r["id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    assert_eq!(
        (
            still["state"].as_str(),
            still["approvals"].as_array().unwrap().len()
        ),
        (Some("pending"), 0)
    );
    // One who may not approve sees only their own requests.
    let (status, _) = call(
        &app,
        &weak.secret,
        "GET",
        &format!("/v1/change-requests/{}", r["id"].as_str().unwrap()),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "weak holds keyward.security:approve");
    let (status, p) = decide(
        &app,
        &admin.secret,
        &r,
        "approve",
        json!({"code": code(&app, &r)}),
    )
    .await;
    assert_eq!((status, p["state"].as_str()), (200, Some("applied")), "{p}");

    // Role and token allowlists wait too; other changes of them do not.
    app.catalogue(&["orders:read"]).await;
    let role = app
        .api_role("Integration", Scope::Workspace, &["orders:read"])
        .await;
    let shop = app.service_user("shop", Some(role.id)).await;
    let token = app.token_for(&shop).await;
    let (status, r) = call(
        &app,
        &app.admin_secret,
        "PATCH",
        &format!("/v1/roles/{}", role.id),
        json!({"ip_allowlist": "203.0.113.0/24"}),
    )
    .await;
    assert_eq!(
        (status, r["target"]["kind"].as_str()),
        (202, Some("role")),
        "{r}"
    );
    assert_eq!(r["target"]["id"], role.id.to_string());
    let (status, _) = call(
        &app,
        &app.admin_secret,
        "PATCH",
        &format!("/v1/roles/{}", role.id),
        json!({"description": "the shop"}),
    )
    .await;
    assert_eq!(status, 200);
    let id = token.token.id;
    let (status, r) = call(
        &app,
        &app.admin_secret,
        "PATCH",
        &format!("/v1/tokens/{id}"),
        json!({"ip_allowlist": ["198.51.100.7"]}),
    )
    .await;
    assert_eq!(
        (status, r["target"]["kind"].as_str()),
        (202, Some("token")),
        "{r}"
    );
    let (status, t) = call(
        &app,
        &app.admin_secret,
        "PATCH",
        &format!("/v1/tokens/{id}"),
        json!({"name": "renamed"}),
    )
    .await;
    assert_eq!((status, t["ip_allowlist"].clone()), (200, json!([])), "{t}");
    // The token was renamed after its request was made: that request is stale.
    let (status, p) = decide(
        &app,
        &admin.secret,
        &r,
        "approve",
        json!({"code": code(&app, &r)}),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("STALE")),
        "the token was renamed meanwhile: {p}"
    );
}
both_backends!(stale_and_who_may_approve);

async fn moving_a_token_to_a_role_with_another_allowlist_waits(app: TestApp) {
    require_approval(&app, json!({})).await;
    app.catalogue(&["orders:read"]).await;
    let role = |name: &'static str, ips: Option<&'static str>| {
        let app = &app;
        async move {
            app.admin
                .create_role(&CreateRole {
                    name: name.into(),
                    description: String::new(),
                    kind: RoleKind::Api,
                    scope: Scope::Workspace,
                    permissions: vec!["orders:read".into()],
                    ip_allowlist: ips.map(|i| keyward_core::api::IpListInput::Text(i.into())),
                    rate_limit_per_minute: None,
                    rate_limit_per: None,
                })
                .await
                .unwrap()
        }
    };
    let (closed, same, open) = (
        role("Closed", Some("198.51.100.0/24")).await,
        role("Closed too", Some("198.51.100.0/24")).await,
        role("Open", None).await,
    );
    let shop = app.service_user("shop", Some(closed.id)).await;
    let token = app
        .admin
        .create_token(&CreateToken {
            role_id: Some(closed.id),
            ..crate::support::token_request(&shop)
        })
        .await
        .unwrap();
    let path = format!("/v1/tokens/{}", token.token.id);
    let (status, r) = call(
        &app,
        &app.admin_secret,
        "PATCH",
        &path,
        json!({"role_id": open.id}),
    )
    .await;
    assert_eq!(
        (status, r["target"]["kind"].as_str()),
        (202, Some("token")),
        "{r}"
    );
    let (status, t) = call(
        &app,
        &app.admin_secret,
        "PATCH",
        &path,
        json!({"role_id": same.id}),
    )
    .await;
    assert_eq!(status, 200, "the same allowlist: applies at once: {t}");
    assert_eq!(t["role_id"], same.id.to_string());
}
both_backends!(moving_a_token_to_a_role_with_another_allowlist_waits);

async fn approval_off_and_several_approvers(app: TestApp) {
    require_approval(&app, json!({"approvals_required": 2})).await;
    let manager = person(&app, "maria", "Security Manager", MANAGER).await;
    let sam = person(&app, "sam", "Security Admin", APPROVER).await;
    let ada = person(&app, "ada", "Dashboard Admin", APPROVER).await;

    // Two approvals needed: the first leaves it pending, the same person cannot add another.
    let r = submit(&app, &manager, "").await;
    assert_eq!(r["approvals_needed"], 2);
    let code = code(&app, &r);
    let (status, once) = decide(&app, &sam.secret, &r, "approve", json!({"code": code})).await;
    assert_eq!(
        (status, once["state"].as_str()),
        (200, Some("pending")),
        "{once}"
    );
    assert_eq!(once["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(allowlist(&app).await, vec!["127.0.0.1/32"]);
    let (status, p) = decide(&app, &sam.secret, &r, "approve", json!({"code": code})).await;
    assert_eq!(
        (status, p["code"].as_str()),
        (409, Some("ALREADY_APPROVED")),
        "{p}"
    );
    let (status, done) = decide(&app, &ada.secret, &r, "approve", json!({"code": code})).await;
    assert_eq!(
        (status, done["state"].as_str()),
        (200, Some("applied")),
        "{done}"
    );
    assert_eq!(allowlist(&app).await.len(), 3);

    // Fewer approvals is a weakening: it waits. Turning approval off waits too, then applies.
    let (status, r) = call(
        &app,
        &manager.secret,
        "PATCH",
        "/v1/workspace",
        json!({"settings": {"approvals_required": 1}}),
    )
    .await;
    assert_eq!(status, 202, "{r}");
    let (status, _) = decide(&app, &manager.secret, &r, "cancel", json!({})).await;
    assert_eq!(status, 200);
    let (status, r) = call(
        &app,
        &manager.secret,
        "PATCH",
        "/v1/workspace",
        json!({"settings": {"require_ip_approval": false}}),
    )
    .await;
    assert_eq!(status, 202, "the old name is still understood: {r}");
    let code = self::code(&app, &r);
    for who in [&sam, &ada] {
        let (status, p) = decide(&app, &who.secret, &r, "approve", json!({"code": code})).await;
        assert_eq!(status, 200, "{p}");
    }
    let ws = app.admin.workspace().await.unwrap();
    assert!(!ws.settings.require_approval);
    let (status, ws) = call(
        &app,
        &manager.secret,
        "PATCH",
        "/v1/workspace",
        json!({"settings": {"ip_allowlist": "127.0.0.1"}}),
    )
    .await;
    assert_eq!(
        status, 200,
        "without approval required the change applies at once: {ws}"
    );
}
both_backends!(approval_off_and_several_approvers);

async fn concurrent_approvals_apply_once(app: TestApp) {
    require_approval(&app, json!({})).await;
    let manager = person(&app, "maria", "Security Manager", MANAGER).await;
    let sam = person(&app, "sam", "Security Admin", APPROVER).await;
    let ada = person(&app, "ada", "Dashboard Admin", APPROVER).await;
    for round in 0..6 {
        let list = format!("127.0.0.1, 203.0.113.{}", 10 + round);
        let (status, r) = call(
            &app,
            &manager.secret,
            "PATCH",
            "/v1/workspace",
            json!({"settings": {"ip_allowlist": list}}),
        )
        .await;
        assert_eq!(status, 202, "{r}");
        let code = code(&app, &r);
        let body = json!({"code": code});
        let (a, b) = tokio::join!(
            decide(&app, &sam.secret, &r, "approve", body.clone()),
            decide(&app, &ada.secret, &r, "approve", body.clone()),
        );
        let applied = [&a, &b]
            .iter()
            .filter(|(s, v)| *s == 200 && v["state"] == "applied")
            .count();
        assert_eq!(applied, 1, "round {round}: {a:?} {b:?}");
        let other = if a.0 == 200 { &b } else { &a };
        assert_eq!(other.0, 409, "round {round}: {other:?}");
        assert_eq!(allowlist(&app).await.len(), 2);
    }
    let acts = actions(&app).await;
    let applied = acts
        .iter()
        .filter(|a| *a == "change_request.applied")
        .count();
    let updated = acts.iter().filter(|a| *a == "workspace.updated").count();
    assert_eq!(applied, 6);
    assert_eq!(updated, 6 + 1, "the six approvals and turning approval on");
    assert!(app.admin.verify_audit().await.unwrap().intact);
}
both_backends!(concurrent_approvals_apply_once);

/// Two approvals needed, given at the same moment by two approvers: the request is applied
/// (whichever of them completes the count), never left fully approved and pending.
async fn two_needed_approvals_given_at_once_apply(app: TestApp) {
    require_approval(&app, json!({"approvals_required": 2})).await;
    let manager = person(&app, "maria", "Security Manager", MANAGER).await;
    let sam = person(&app, "sam", "Security Admin", APPROVER).await;
    let ada = person(&app, "ada", "Dashboard Admin", APPROVER).await;
    for round in 0..6 {
        let list = format!("127.0.0.1, 203.0.113.{}", 10 + round);
        let (status, r) = call(
            &app,
            &manager.secret,
            "PATCH",
            "/v1/workspace",
            json!({"settings": {"ip_allowlist": list}}),
        )
        .await;
        assert_eq!(status, 202, "{r}");
        let body = json!({"code": code(&app, &r)});
        let (a, b) = tokio::join!(
            decide(&app, &sam.secret, &r, "approve", body.clone()),
            decide(&app, &ada.secret, &r, "approve", body.clone()),
        );
        let id = r["id"].as_str().unwrap();
        let (_, now) = call(
            &app,
            &sam.secret,
            "GET",
            &format!("/v1/change-requests/{id}"),
            Value::Null,
        )
        .await;
        assert_eq!(now["state"], "applied", "round {round}: {a:?} {b:?}");
        assert_eq!(now["approvals"].as_array().unwrap().len(), 2);
        let addresses = allowlist(&app).await;
        assert!(
            addresses.contains(&format!("203.0.113.{}/32", 10 + round)),
            "round {round}: {addresses:?}"
        );
    }
    assert!(app.admin.verify_audit().await.unwrap().intact);
}
both_backends!(two_needed_approvals_given_at_once_apply);

/// Moving a user, whose tokens inherit its role, to a role with another allowlist would change
/// those tokens' allowlist at once: under approval it is refused with what to do instead.
async fn a_users_role_change_cannot_widen_inherited_allowlists(app: TestApp) {
    let narrow = |name: &str, list: Option<&str>| CreateRole {
        name: name.into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::User,
        permissions: vec!["keyward.tokens:read".into()],
        ip_allowlist: list.map(|l| serde_json::from_value(json!(l)).unwrap()),
        rate_limit_per_minute: None,
        rate_limit_per: None,
    };
    let office = app
        .admin
        .create_role(&narrow("office", Some("127.0.0.1")))
        .await
        .unwrap();
    let open = app
        .admin
        .create_role(&narrow("anywhere", None))
        .await
        .unwrap();
    let same = app
        .admin
        .create_role(&narrow("office too", Some("127.0.0.1")))
        .await
        .unwrap();
    let shop = app.service_user("shop", Some(office.id)).await;
    app.token_for(&shop).await;
    require_approval(&app, json!({})).await;
    let path = format!("/v1/users/{}", shop.id);
    let (status, refused) = call(
        &app,
        &app.admin_secret,
        "PATCH",
        &path,
        json!({"role_id": open.id}),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["code"], "APPROVAL_REQUIRED");
    let user = app.admin.user(shop.id).await.unwrap();
    assert_eq!(user.role_id, Some(office.id), "nothing changed");
    // A role with the same allowlist changes nobody's addresses: it applies.
    let (status, moved) = call(
        &app,
        &app.admin_secret,
        "PATCH",
        &path,
        json!({"role_id": same.id}),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
}
both_backends!(a_users_role_change_cannot_widen_inherited_allowlists);

/// The approvers' channel: only someone who may approve subscribes a webhook to the event
/// carrying the codes, or points such a webhook elsewhere.
async fn only_approvers_route_the_codes(app: TestApp) {
    let role = app
        .api_role("hooks", Scope::Workspace, &["keyward.webhooks:*"])
        .await;
    let ops = app.service_user("ops", Some(role.id)).await;
    let secret = app.token_for(&ops).await.secret;
    let hook = |types: Value| json!({"url": "https://hooks.example.com/k", "event_types": types});
    let (status, refused) = call(
        &app,
        &secret,
        "POST",
        "/v1/webhooks",
        hook(json!(["change_request.created"])),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    let (status, ok) = call(&app, &secret, "POST", "/v1/webhooks", hook(Value::Null)).await;
    assert_eq!(status, 201, "a catch-all gets no codes: {ok}");
    let (status, channel) = call(
        &app,
        &app.admin_secret,
        "POST",
        "/v1/webhooks",
        hook(json!(["change_request.created"])),
    )
    .await;
    assert_eq!(status, 201, "{channel}");
    let id = channel["webhook"]["id"].as_str().unwrap();
    let (status, refused) = call(
        &app,
        &secret,
        "PATCH",
        &format!("/v1/webhooks/{id}"),
        json!({"url": "https://elsewhere.example.com/k"}),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    let (status, ok) = call(
        &app,
        &secret,
        "PATCH",
        &format!("/v1/webhooks/{id}"),
        json!({"description": "approvers"}),
    )
    .await;
    assert_eq!(status, 200, "{ok}");
}
both_backends!(only_approvers_route_the_codes);

/// One person has at most 20 requests pending; cancelling one makes room again.
async fn a_person_has_a_bounded_number_pending(app: TestApp) {
    require_approval(&app, json!({})).await;
    let manager = person(&app, "maria", "Security Manager", MANAGER).await;
    let mut first = Value::Null;
    for i in 0..20 {
        let r = submit(&app, &manager, &format!("request {i}")).await;
        if i == 0 {
            first = r;
        }
    }
    let (status, refused) = call(
        &app,
        &manager.secret,
        "PATCH",
        "/v1/workspace",
        json!({"settings": {"ip_allowlist": WIDER}}),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["code"], "TOO_MANY_PENDING_REQUESTS");
    let (status, _) = decide(&app, &manager.secret, &first, "cancel", json!({})).await;
    assert_eq!(status, 200);
    submit(&app, &manager, "room again").await;
}
both_backends!(a_person_has_a_bounded_number_pending);

/// A person who makes a token for a colleague knows its secret, so the two-person rule counts
/// them behind it: neither a request made through it nor an approval given with it lets its
/// maker be both the requester and an approver.
async fn a_token_made_for_a_colleague_counts_as_its_makers(app: TestApp) {
    require_approval(&app, json!({})).await;
    let alice = person(
        &app,
        "alice",
        "Security Admin",
        &[
            "keyward.workspace:*",
            "keyward.security:approve",
            "keyward.tokens:create",
            "keyward.users:read",
            "keyward.roles:read",
        ],
    )
    .await;
    let bob = person(&app, "bob", "Security Admin", APPROVER).await;
    let bobs_role = app.api_role("bob minted", Scope::Workspace, APPROVER).await;
    // Alice makes a token for Bob: it is Bob's, and the token says Alice made it.
    let minted = mint(
        &app,
        &alice.secret,
        bob.user.id,
        "for bob",
        Some(bobs_role.id),
    )
    .await;
    assert_eq!(minted["token"]["owner_id"], json!(bob.user.id));
    assert_eq!(minted["token"]["created_by"], json!(alice.user.id));
    let for_bob = Person {
        user: bob.user.clone(),
        secret: minted["secret"].as_str().unwrap().to_owned(),
    };

    // Alice asks through the token she made for Bob: she stands behind the request.
    let r = submit(&app, &for_bob, "through bob's token").await;
    assert_eq!(r["requested_by"]["user_id"], json!(bob.user.id));
    assert_eq!(r["requested_by_maker"], json!(alice.user.id));
    let body = json!({"code": code(&app, &r)});
    for who in [&alice.secret, &bob.secret] {
        let (status, refused) = decide(&app, who, &r, "approve", body.clone()).await;
        assert_eq!(status, 403, "{refused}");
        assert_eq!(refused["code"], "SELF_APPROVAL");
    }
    let (status, _) = decide(&app, &for_bob.secret, &r, "cancel", json!({})).await;
    assert_eq!(status, 200);

    // Alice asks herself, then approves with the token she made for Bob: refused; Bob's own
    // token approves.
    let r = submit(&app, &alice, "alice asks").await;
    assert!(r.get("requested_by_maker").is_none(), "{r}");
    let body = json!({"code": code(&app, &r)});
    let (status, refused) = decide(&app, &for_bob.secret, &r, "approve", body.clone()).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "SELF_APPROVAL");
    // Nor through a service user: a token Alice made for a robot makes a token for Bob, and
    // that one still has Alice behind it.
    let robot_role = app
        .api_role(
            "robot",
            Scope::Workspace,
            &[
                "keyward.tokens:create",
                "keyward.workspace:*",
                "keyward.security:approve",
            ],
        )
        .await;
    let robot = app.service_user("robot", Some(robot_role.id)).await;
    let t1 = mint(&app, &alice.secret, robot.id, "robot", None).await;
    let via_robot = t1["secret"].as_str().unwrap();
    let t2 = mint(
        &app,
        via_robot,
        bob.user.id,
        "via robot",
        Some(bobs_role.id),
    )
    .await;
    assert_eq!(t2["token"]["created_by"], json!(alice.user.id));
    let body = json!({"code": code(&app, &r)});
    let (status, refused) = decide(
        &app,
        t2["secret"].as_str().unwrap(),
        &r,
        "approve",
        body.clone(),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "SELF_APPROVAL");

    let (status, applied) = decide(&app, &bob.secret, &r, "approve", body).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["state"], "applied");
    assert_eq!(allowlist(&app).await.len(), 3);
}
both_backends!(a_token_made_for_a_colleague_counts_as_its_makers);

/// With two approvals needed, the second cannot come from the maker of the first one's token.
async fn an_approvals_token_maker_cannot_approve_again(app: TestApp) {
    require_approval(&app, json!({"approvals_required": 2})).await;
    let manager = person(&app, "maria", "Security Manager", MANAGER).await;
    let alice = person(
        &app,
        "alice",
        "Security Admin",
        &[
            "keyward.workspace:*",
            "keyward.security:approve",
            "keyward.tokens:create",
        ],
    )
    .await;
    let bob = person(&app, "bob", "Security Admin", APPROVER).await;
    let bobs_role = app.api_role("bob minted", Scope::Workspace, APPROVER).await;
    let minted = mint(
        &app,
        &alice.secret,
        bob.user.id,
        "for bob",
        Some(bobs_role.id),
    )
    .await;
    let r = submit(&app, &manager, "two needed").await;
    let body = json!({"code": code(&app, &r)});
    let (status, first) = decide(
        &app,
        minted["secret"].as_str().unwrap(),
        &r,
        "approve",
        body.clone(),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["approvals"][0]["token_maker"], json!(alice.user.id));
    let (status, again) = decide(&app, &alice.secret, &r, "approve", body.clone()).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["code"], "ALREADY_APPROVED");
    let (status, again) = decide(&app, &bob.secret, &r, "approve", body).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["code"], "ALREADY_APPROVED");
    assert_eq!(allowlist(&app).await, ["127.0.0.1/32"]);
}
both_backends!(an_approvals_token_maker_cannot_approve_again);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workspace_offers_the_security_roles() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, fast).await else {
        return;
    };
    let roles = app.admin.list_roles(&Default::default()).await.unwrap();
    let find = |n: &str| roles.items.iter().find(|r| r.name == n).unwrap().clone();
    let (manager, admin) = (find("Security Manager"), find("Security Admin"));
    let names = |r: &keyward_core::Role| -> Vec<String> {
        r.permissions.iter().map(|p| p.to_string()).collect()
    };
    assert!(names(&admin).contains(&"keyward.security:approve".to_owned()));
    assert!(!names(&manager).contains(&"keyward.security:approve".to_owned()));
    assert!(names(&manager).contains(&"keyward.workspace:*".to_owned()));
    assert_eq!(
        (manager.kind, admin.kind),
        (RoleKind::Human, RoleKind::Human)
    );
}
