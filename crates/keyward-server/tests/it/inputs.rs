//! Hostile inputs: control characters in text fields and filters (422 `INVALID_TEXT` naming
//! the field, never a 500 from PostgreSQL), NUL in a verify's method and path (sanitised; the
//! batch is not lost), dates at the end of the calendar (bounded, no panic), oversized bodies
//! (413 problem+json) and refusals that would echo a secret.

use std::sync::atomic::Ordering;

use chrono::{TimeZone, Utc};
use keyward_core::api::{
    CreateRole, CreateUser, PutPermission, RotateToken, TokenPatch, VerifyRequest,
};
use keyward_core::model::{RoleKind, Scope, UserKind};
use keyward_core::Code;
use serde_json::{json, Value};

use crate::support::{both_backends, code_of, problem_of, token_request, usage_settled, TestApp};

const PROBLEM_JSON: &str = "application/problem+json";

/// A raw request with the admin token; answers status, content type and JSON body.
async fn raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, String, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", app.url))
        .bearer_auth(&app.admin_secret);
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, kind, body)
}

/// A service user whose role grants nothing.
async fn owner(app: &TestApp) -> keyward_core::model::User {
    let role = app.api_role("Plain", Scope::Workspace, &[]).await;
    app.service_user("svc", Some(role.id)).await
}

fn field_of(p: &keyward_core::api::Problem) -> (&str, Option<&str>) {
    (p.code.as_str(), p.field.as_deref())
}

async fn control_characters_are_refused_by_field(app: TestApp) {
    let nul = "before\u{0}after";
    let role = |name: &str, description: &str| CreateRole {
        name: name.into(),
        description: description.into(),
        kind: RoleKind::Api,
        scope: Scope::Workspace,
        permissions: vec![],
        ip_allowlist: None,
        rate_limit_per_minute: None,
        rate_limit_per: None,
    };
    let p = problem_of(app.admin.create_role(&role("Fine", nul)).await);
    assert_eq!(field_of(&p), ("INVALID_TEXT", Some("description")));
    assert_eq!(p.status, 422);
    assert!(!p.detail.contains("before"), "{}", p.detail);
    let p = problem_of(app.admin.create_role(&role("Esc\u{1b}[31m", "")).await);
    assert_eq!(field_of(&p), ("INVALID_TEXT", Some("name")));
    // Line breaks are fine in a description, not in a name.
    app.admin
        .create_role(&role("Multi", "line one\nline two\ttab"))
        .await
        .unwrap();
    let p = problem_of(app.admin.create_role(&role("Two\nlines", "")).await);
    assert_eq!(field_of(&p), ("INVALID_TEXT", Some("name")));

    let p = problem_of(
        app.admin
            .create_user(&CreateUser {
                kind: UserKind::Human,
                name: "Ann".into(),
                email: Some("ann\u{0}@example.com".into()),
                role_id: None,
            })
            .await,
    );
    assert_eq!(field_of(&p), ("INVALID_TEXT", Some("email")));
    let p = problem_of(
        app.admin
            .put_permission(
                "orders:read",
                &PutPermission {
                    description: nul.into(),
                },
            )
            .await,
    );
    assert_eq!(field_of(&p), ("INVALID_TEXT", Some("description")));

    let owner = owner(&app).await;
    let mut req = token_request(&owner);
    req.metadata = Some(json!({"team": ["ok", {"deep": nul}]}));
    let p = problem_of(app.admin.create_token(&req).await);
    assert_eq!(field_of(&p), ("INVALID_TEXT", Some("metadata")));
    req.metadata = Some(json!({"ke\u{0}y": 1}));
    let p = problem_of(app.admin.create_token(&req).await);
    assert_eq!(field_of(&p), ("INVALID_TEXT", Some("metadata")));

    // Audit filters: NUL in the action filter was a 500 on PostgreSQL.
    let (status, kind, body) = raw(
        &app,
        reqwest::Method::GET,
        "/v1/audit?action=token.%00",
        None,
    )
    .await;
    assert_eq!((status, kind.as_str()), (422, PROBLEM_JSON), "{body}");
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some("INVALID_TEXT"), Some("action"))
    );
    let (status, _, body) = raw(
        &app,
        reqwest::Method::GET,
        "/v1/audit?action=token.created",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
both_backends!(control_characters_are_refused_by_field);

async fn nul_in_a_verifys_method_and_path_is_sanitised_and_loses_no_record(app: TestApp) {
    let owner = app.orders_reader().await;
    let mut req = token_request(&owner);
    req.rate_limit_per_minute = Some(100_000);
    // Kept one by one, so each stored record can be read back.
    req.request_log = true;
    let created = app.admin.create_token(&req).await.unwrap();
    // Concurrent, so the hostile record shares its batch with the others.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (method, path) = if i == 20 {
            (
                "GE\u{0}T".to_owned(),
                "/orders/\u{0}7\u{1b}?q=\u{0}".to_owned(),
            )
        } else {
            ("GET".to_owned(), format!("/orders/{i}"))
        };
        let (admin, secret) = (app.admin.clone(), created.secret.clone());
        calls.spawn(async move {
            admin
                .verify(&VerifyRequest {
                    token: secret.as_str().into(),
                    method: Some(method.as_str().into()),
                    path: Some(path.as_str().into()),
                    permissions: Some(vec!["orders:read".into()]),
                    ..VerifyRequest::default()
                })
                .await
                .unwrap()
        });
    }
    while let Some(answer) = calls.join_next().await {
        assert_eq!(answer.unwrap().code, Code::Valid);
    }
    usage_settled(&app, 40).await;
    let counters = app.state.usage.counters();
    assert_eq!(counters.dropped.load(Ordering::SeqCst), 0);
    assert_eq!(counters.written.load(Ordering::SeqCst), 40);
    let records = app
        .state
        .store
        .recent_usage(created.token.workspace_id, created.token.id, 100)
        .await
        .unwrap();
    assert_eq!(records.len(), 40);
    assert!(records.iter().all(|r| r.method.as_deref() == Some("GET")));
    let paths: Vec<&str> = records.iter().filter_map(|r| r.path.as_deref()).collect();
    assert!(paths.contains(&"/orders/7"), "{paths:?}");
    assert!(paths.iter().all(|p| !p.contains(char::is_control)));
}
both_backends!(nul_in_a_verifys_method_and_path_is_sanitised_and_loses_no_record);

async fn dates_are_bounded_and_rotation_at_the_end_of_time_answers_clearly(app: TestApp) {
    let owner = owner(&app).await;
    let last = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
    let mut req = token_request(&owner);
    req.expires_at = Some(last);
    let created = app.admin.create_token(&req).await.unwrap();
    assert_eq!(created.token.expires_at, Some(last));

    // Its lifetime counted from a day later ends in the year 10000: a clear 422, no panic.
    app.clock.advance(chrono::Duration::days(1));
    let p = problem_of(
        app.admin
            .rotate_token(created.token.id, &RotateToken::default())
            .await,
    );
    assert_eq!(field_of(&p), ("INVALID_TIME", Some("expires_at")));
    assert_eq!(p.status, 422);
    // Naming the new expiry works, and the server is still there.
    let expires = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let rotated = app
        .admin
        .rotate_token(
            created.token.id,
            &RotateToken {
                grace_period_secs: 60,
                expires_at: Some(expires),
            },
        )
        .await
        .unwrap();
    assert_eq!(rotated.token.expires_at, Some(expires));

    // Dates outside 1970..=9999 are refused wherever they are accepted.
    let body = |expires: &str| {
        serde_json::to_vec(&json!({"owner_id": owner.id, "name": "far", "expires_at": expires}))
            .unwrap()
    };
    for far in ["+10000-01-01T00:00:00Z", "+262142-12-31T00:00:00Z"] {
        let (status, kind, p) =
            raw(&app, reqwest::Method::POST, "/v1/tokens", Some(body(far))).await;
        assert_eq!((status, kind.as_str()), (422, PROBLEM_JSON), "{far}: {p}");
    }
    let id = rotated.token.id;
    let p = problem_of(
        app.admin
            .update_token(
                id,
                &TokenPatch {
                    not_before: Some(Some(Utc.with_ymd_and_hms(1900, 1, 1, 0, 0, 0).unwrap())),
                    ..TokenPatch::default()
                },
            )
            .await,
    );
    assert_eq!(field_of(&p), ("INVALID_TIME", Some("not_before")));
    let (status, _, p) = raw(
        &app,
        reqwest::Method::GET,
        "/v1/audit?from=0001-01-01T00:00:00Z",
        None,
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str(), p["field"].as_str()),
        (422, Some("INVALID_TIME"), Some("from"))
    );
    let (status, _, p) = raw(
        &app,
        reqwest::Method::GET,
        &format!("/v1/tokens/{id}/usage?to=1960-01-01T00:00:00Z"),
        None,
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str(), p["field"].as_str()),
        (422, Some("INVALID_TIME"), Some("to"))
    );
}
both_backends!(dates_are_bounded_and_rotation_at_the_end_of_time_answers_clearly);

async fn oversized_bodies_are_413_problem_json(app: TestApp) {
    let big =
        serde_json::to_vec(&json!({"name": "x", "description": "y".repeat(70 * 1024)})).unwrap();
    let (status, kind, body) =
        raw(&app, reqwest::Method::POST, "/v1/roles", Some(big.clone())).await;
    assert_eq!((status, kind.as_str()), (413, PROBLEM_JSON), "{body}");
    assert_eq!(body["code"], "BODY_TOO_LARGE");
    assert_eq!(body["status"], 413);
    // The leak route has no keyward credential; its refusals are problem+json too.
    let (status, kind, body) =
        raw(&app, reqwest::Method::POST, "/v1/leaks/github", Some(big)).await;
    assert_eq!((status, kind.as_str()), (413, PROBLEM_JSON), "{body}");
    assert_eq!(body["code"], "BODY_TOO_LARGE");
    let (status, kind, body) = raw(
        &app,
        reqwest::Method::POST,
        "/v1/leaks/github",
        Some(b"[]".to_vec()),
    )
    .await;
    assert_eq!((status, kind.as_str()), (401, PROBLEM_JSON), "{body}");
    assert_eq!(body["code"], "SIGNATURE_MISSING");
    // axum's own rejections (a path parameter that is not UTF-8) are problem+json as well.
    let (status, kind, body) = raw(&app, reqwest::Method::GET, "/v1/tokens/%FF%FE", None).await;
    assert_eq!((status, kind.as_str()), (400, PROBLEM_JSON), "{body}");
    assert_eq!(body["code"], "BAD_REQUEST");
}
both_backends!(oversized_bodies_are_413_problem_json);

async fn a_bad_ip_list_entry_is_not_sent_back(app: TestApp) {
    let owner = owner(&app).await;
    let mut req = token_request(&owner);
    let pasted = "kw_NotAnAddressButASecretPastedByMistake";
    req.ip_allowlist = Some(keyward_core::api::IpListInput::Entries(vec![
        "10.0.0.0/8".into(),
        pasted.into(),
    ]));
    let p = problem_of(app.admin.create_token(&req).await);
    assert_eq!(field_of(&p), ("INVALID_IP_ENTRY", Some("ip_allowlist[1]")));
    assert!(!p.detail.contains("NotAnAddress"), "{}", p.detail);
    req.ip_allowlist = Some(keyward_core::api::IpListInput::Text(format!(
        "10.0.0.1\n{pasted}"
    )));
    let p = problem_of(app.admin.create_token(&req).await);
    assert!(!p.detail.contains("NotAnAddress"), "{}", p.detail);
    assert_eq!(
        code_of(app.admin.create_token(&req).await),
        "INVALID_IP_ENTRY"
    );
}
both_backends!(a_bad_ip_list_entry_is_not_sent_back);
