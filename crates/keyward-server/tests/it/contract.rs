//! The API contract: the OpenAPI document covers every route the source registers and every
//! documented operation is routed; lists share one shape; an answer at creation is what
//! reading the object back answers.

use std::collections::BTreeSet;

use keyward_core::model::Scope;

use crate::support::{both_backends, Backend, TestApp};

/// `(METHOD, path)` of every `.route("…", get(…).post(…))` in the server's source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices(".route(\"") {
                let rest = &text[at + 8..];
                let end = rest.find('"').unwrap();
                // A catch-all `{*rest}` is documented as the parameter `{rest}`.
                let route = rest[..end].replace("{*", "{");
                // The handler chain runs to the parenthesis closing `.route(`.
                let mut depth = 1;
                let mut chain_end = 0;
                for (i, c) in rest.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                chain_end = i;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let chain = &rest[end..chain_end];
                let calls = |m: &str| {
                    chain
                        .match_indices(&format!("{m}("))
                        .any(|(i, _)| i == 0 || !chain.as_bytes()[i - 1].is_ascii_alphanumeric())
                };
                // `any(…)` (forward-auth) answers every method; the document lists the five.
                let every = calls("any");
                for m in ["get", "post", "put", "patch", "delete"] {
                    if every || calls(m) {
                        found.insert((m.to_uppercase(), route.clone()));
                    }
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_and_every_operation_routed() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/openapi.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let mut in_source = routes_in_source();
    // The document describes everything but itself and the dashboard's HTML pages.
    in_source.remove(&("GET".to_owned(), "/openapi.json".to_owned()));
    in_source.retain(|(_, path)| !path.starts_with("/ui"));
    assert!(in_source.len() > 40, "the source scan found {in_source:?}");
    let undocumented: Vec<_> = in_source.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&in_source).collect();
    assert!(
        unrouted.is_empty(),
        "documented but not in the router: {unrouted:?}"
    );
    // And the live router answers each documented operation (no 404 route / 405 method).
    for (method, path) in &documented {
        let url = format!(
            "{}{}",
            app.url,
            path.replace("{id}", "tok_00000000000000000000000000000000")
                .replace("{permission}", "cart:read")
                .replace("{rest}", "orders/1")
        );
        let req = http.request(method.parse().unwrap(), &url);
        let r = req.bearer_auth(&app.admin_secret).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert!(
            status != 405 && !body.contains("ROUTE_NOT_FOUND"),
            "{method} {path}: {status} {body}"
        );
    }
    // Every operation that needs a credential names the bearer scheme; every error is a
    // problem document.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        response["content"]["application/problem+json"].is_object(),
                        "{method} {path} {status} is not problem+json"
                    );
                }
            }
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

async fn lists_share_one_shape_and_times_are_what_is_stored(app: TestApp) {
    let http = reqwest::Client::new();
    for list in [
        "permissions",
        "users",
        "roles",
        "tokens",
        "webhooks",
        "audit",
    ] {
        let r = http
            .get(format!("{}/v1/{list}", app.url))
            .bearer_auth(&app.admin_secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{list}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["items"].is_array(), "{list}: {body}");
    }
    // The create answer carries the times exactly as reading the token back does.
    let role = app.api_role("Plain", Scope::Workspace, &[]).await;
    let owner = app.service_user("times", Some(role.id)).await;
    let created = app.token_for(&owner).await;
    let read = app.admin.token(created.token.id).await.unwrap();
    assert_eq!(created.token.created_at, read.created_at);
    assert_eq!(created.token.updated_at, read.updated_at);
    assert_eq!(
        created.token.created_at.timestamp_subsec_nanos() % 1_000_000,
        0
    );
    let user = app.admin.user(owner.id).await.unwrap();
    assert_eq!(user, owner);
    // A date given with nanoseconds is kept, and answered, to the millisecond.
    let mut req = crate::support::token_request(&owner);
    let at =
        app.state.now() + chrono::Duration::days(3) + chrono::Duration::nanoseconds(123_456_789);
    req.expires_at = Some(at);
    let created = app.admin.create_token(&req).await.unwrap();
    let read = app.admin.token(created.token.id).await.unwrap();
    assert_eq!(created.token.expires_at, read.expires_at);
    assert_eq!(
        read.expires_at.unwrap().timestamp_subsec_nanos() % 1_000_000,
        0,
        "{read:?}"
    );
}
both_backends!(lists_share_one_shape_and_times_are_what_is_stored);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_token_is_not_held_to_the_workspace_default() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.tokens = keyward_server::config::TokensConfig::default();
    })
    .await
    else {
        return;
    };
    let v = app.verify(&app.admin_secret, &[]).await;
    let limit = v.rate_limit.map(|r| r.limit);
    assert_eq!(limit, Some(6000), "{v:?}");
    let ws = app.admin.workspace().await.unwrap();
    assert_eq!(ws.settings.default_rate_limit_per_minute, 150);
}
