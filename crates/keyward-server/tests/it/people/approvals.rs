//! The approvals inbox over HTTP as a browser uses it: pending requests are marked on the
//! settings and role pages; an approver sees the code and rejects; the requester sees only
//! their own requests, without a code, cannot decide them and cancels; the settings form's
//! approval fields are security changes held like the others.

use keyward_core::api::CreateUser;
use keyward_core::model::UserKind;
use serde_json::{json, Value};

use super::audit_settings::{set, settings_form};
use super::browserless::{by_id, onboard, Jar};
use crate::change_requests::{call, person as api_person};
use crate::support::{both_backends, TestApp};

const PASSWORD: &str = "correct horse battery staple";

async fn role_id(app: &TestApp, name: &str) -> keyward_core::RoleId {
    let roles = app.admin.list_roles(&Default::default()).await.unwrap();
    roles.items.iter().find(|r| r.name == name).unwrap().id
}

/// Signs in a new person holding the ready-made human role `role`.
async fn signed_in(app: &TestApp, name: &str, role: &str) -> Jar {
    let user = app
        .admin
        .create_user(&CreateUser {
            kind: UserKind::Human,
            name: name.into(),
            email: Some(format!("{name}@example.com")),
            role_id: Some(role_id(app, role).await),
        })
        .await
        .unwrap();
    onboard(app, &user, PASSWORD).await.0
}

async fn the_inbox_decides_and_the_pages_mark_pending_changes(app: TestApp) {
    let on = json!({"settings": {"require_approval": true, "ip_allowlist": "127.0.0.1"}});
    let (status, body) = call(&app, &app.admin_secret, "PATCH", "/v1/workspace", on).await;
    assert_eq!(status, 200, "{body}");
    let maria = api_person(&app, "maria", "Security Manager", &["keyward.workspace:*"]).await;
    let ask = json!({"settings": {"ip_allowlist": "127.0.0.1, 203.0.113.9"}, "reason": "vpn"});
    let (status, ws_req) = call(&app, &maria.secret, "PATCH", "/v1/workspace", ask).await;
    assert_eq!(status, 202, "{ws_req}");
    let ws_id = ws_req["id"].as_str().unwrap().to_owned();
    let role = app
        .api_role("Shop", keyward_core::model::Scope::User, &[])
        .await;
    let ask = json!({"ip_allowlist": "198.51.100.0/24"});
    let path = format!("/v1/roles/{}", role.id);
    let (status, role_req) = call(&app, &app.admin_secret, "PATCH", &path, ask).await;
    assert_eq!(status, 202, "{role_req}");
    let role_req_id = role_req["id"].as_str().unwrap().to_owned();

    // An approver: both requests, with their codes and diffs; the pages mark them.
    let mut sam = signed_in(&app, "sam", "Security Admin").await;
    let inbox = sam.get("/ui/approvals").await;
    assert_eq!(inbox.status, 200, "{}", inbox.body);
    assert!(
        inbox.body.contains("href=\"/ui/approvals\""),
        "the nav link"
    );
    for id in [&ws_id, &role_req_id] {
        assert!(
            inbox.body.contains(&format!("id=\"cr-{id}\"")),
            "{}",
            inbox.body
        );
        let form = format!("action=\"/ui/approvals/{id}/approve\"");
        assert!(inbox.body.contains(&form), "{}", inbox.body);
    }
    assert!(inbox.body.contains("203.0.113.9/32"), "{}", inbox.body);
    assert!(inbox.body.contains("198.51.100.0/24"), "{}", inbox.body);
    assert!(inbox.body.contains("role “Shop”"), "{}", inbox.body);
    let settings = sam.get("/ui/settings").await;
    assert!(
        by_id(&settings.body, "pending-banner").is_some(),
        "{}",
        settings.body
    );
    let marked = by_id(&settings.body, "ip_allowlist-pending").unwrap();
    assert!(marked.contains("203.0.113.9/32"), "{marked}");
    let page = sam.get(&format!("/ui/roles/{}", role.id)).await;
    assert!(page.body.contains("id=\"pending-banner\""), "{}", page.body);
    assert!(
        page.body.contains("id=\"ip_allowlist-pending\""),
        "{}",
        page.body
    );

    // A wrong code is refused; rejecting ends the role's request.
    let csrf = inbox.csrf();
    let wrong = sam
        .post(
            &format!("/ui/approvals/{role_req_id}/approve"),
            &[("csrf", &csrf), ("code", "AAAAA-AAAAA"), ("comment", "")],
        )
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    let no = sam
        .post(
            &format!("/ui/approvals/{role_req_id}/reject"),
            &[("csrf", &csrf), ("comment", "not this network")],
        )
        .await;
    assert_eq!(
        no.location.as_deref(),
        Some("/ui/approvals?done=rejected"),
        "{}",
        no.body
    );
    let (_, r) = call(
        &app,
        &app.admin_secret,
        "GET",
        &format!("/v1/change-requests/{role_req_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(r["state"], "rejected", "{r}");
    assert_eq!(r["comment"], "not this network");
    let inbox = sam.get("/ui/approvals?done=rejected").await;
    assert!(
        inbox.body.contains("Rejected: nothing was changed."),
        "{}",
        inbox.body
    );
    let page = sam.get(&format!("/ui/roles/{}", role.id)).await;
    assert!(
        !page.body.contains("id=\"pending-banner\""),
        "{}",
        page.body
    );

    // The requester: only their own request, no code, no decision; they cancel it.
    let mut mine = signed_in(&app, "mona", "Security Manager").await;
    let form = mine.get("/ui/settings").await;
    // The form as shown (without the approval fields, like an older page), then with them.
    let unchanged = mine.post_owned("/ui/settings", &settings_form(&form)).await;
    assert!(
        unchanged.body.contains("Nothing changed."),
        "{}",
        unchanged.body
    );
    let mut fields = settings_form(&form);
    set(&mut fields, "was_approvals_required", "1");
    set(&mut fields, "approvals_required", "2");
    let held = mine.post_owned("/ui/settings", &fields).await;
    assert_eq!(held.status, 202, "{}", held.body);
    assert_eq!(
        by_id(&held.body, "approvals_required-pending").as_deref(),
        Some("Pending approval: 2")
    );
    assert_eq!(
        app.admin
            .workspace()
            .await
            .unwrap()
            .settings
            .approvals_required,
        1
    );
    let inbox = mine.get("/ui/approvals").await;
    assert!(
        !inbox.body.contains(&format!("id=\"cr-{ws_id}\"")),
        "not theirs: {}",
        inbox.body
    );
    assert!(!inbox.body.contains("approval-code"), "{}", inbox.body);
    let own = inbox
        .body
        .split("action=\"/ui/approvals/")
        .nth(1)
        .map(|s| s[..s.find('/').unwrap()].to_owned())
        .unwrap();
    assert!(
        inbox.body.contains(&format!("/ui/approvals/{own}/cancel")),
        "{}",
        inbox.body
    );
    assert!(!inbox.body.contains(&format!("/ui/approvals/{own}/approve")));
    let selfie = mine
        .post(
            &format!("/ui/approvals/{own}/reject"),
            &[("csrf", &inbox.csrf()), ("comment", "")],
        )
        .await;
    assert_eq!(selfie.status, 403, "{}", selfie.body);
    let gone = mine
        .post(
            &format!("/ui/approvals/{own}/cancel"),
            &[("csrf", &inbox.csrf()), ("comment", "wrong number")],
        )
        .await;
    assert_eq!(
        gone.location.as_deref(),
        Some("/ui/approvals?done=cancelled"),
        "{}",
        gone.body
    );
    let inbox = mine.get("/ui/approvals").await;
    assert!(inbox.body.contains("cancelled"), "{}", inbox.body);
    let bad = mine
        .post("/ui/approvals/nonsense/cancel", &[("csrf", "x")])
        .await;
    assert_eq!(bad.status, 403, "a wrong CSRF token first: {}", bad.body);

    // The workspace request is still pending for the approver.
    let (_, r) = call(
        &app,
        &maria.secret,
        "GET",
        &format!("/v1/change-requests/{ws_id}"),
        Value::Null,
    )
    .await;
    assert_eq!(r["state"], "pending", "{r}");
}
both_backends!(the_inbox_decides_and_the_pages_mark_pending_changes);
