//! Forward-auth `/auth` over HTTP, as each proxy's convention asks it: the route table, the
//! principal headers, RFC 6750 refusals, nginx's 403-for-429, Envoy's path prefix, trusted
//! proxies and the shared secret, the client address from `X-Forwarded-For`, a named
//! credential header. (Real nginx and Caddy in front: `forward_auth_proxies`.)

use keyward_core::api::{CreateToken, IpListInput};
use keyward_core::model::Scope;
use keyward_gate::routes::RouteConfig;
use keyward_server::Config;
use reqwest::header::HeaderMap;

use crate::support::{token_request, Backend, TestApp};

fn route(route: &str, permissions: &[&str], anonymous: bool) -> RouteConfig {
    RouteConfig {
        route: route.into(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        anonymous,
    }
}

/// The route table the tests use.
pub fn shop_routes(config: &mut Config) {
    config.edge.routes = vec![
        route("GET /orders/{id}", &["orders:read"], false),
        route("POST /carts/**", &["cart:write"], false),
        route("* /public/**", &[], true),
    ];
}

async fn spawn(backend: Backend, configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.policy.trusted_proxies = vec!["127.0.0.1".into(), "::1".into()];
        shop_routes(c);
        configure(c);
    })
    .await
}

/// A token holding `orders:read` (and nothing else), shaped by `shape`.
pub async fn reader(app: &TestApp, shape: impl FnOnce(&mut CreateToken)) -> (String, String) {
    app.catalogue(&["orders:read", "cart:write"]).await;
    let role = app
        .api_role(
            &format!("reader {}", crate::support::random_hex()),
            Scope::Workspace,
            &["orders:read"],
        )
        .await;
    let user = app
        .service_user(
            &format!("shop {}", crate::support::random_hex()),
            Some(role.id),
        )
        .await;
    let mut req = token_request(&user);
    req.metadata = Some(serde_json::json!({"team": "Zürich"}));
    shape(&mut req);
    let created = app.admin.create_token(&req).await.unwrap();
    (created.secret, created.token.id.to_string())
}

/// Asks `/auth` the way Caddy and Traefik do.
async fn ask(
    app: &TestApp,
    method: &str,
    uri: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let http = reqwest::Client::new();
    let mut req = http
        .get(format!("{}/auth", app.url))
        .header("X-Forwarded-Method", method)
        .header("X-Forwarded-Uri", uri);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

/// A header's value, or "" when it is absent.
pub fn h<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.to_str().unwrap())
}

async fn the_route_table_decides_and_the_principal_is_passed(app: TestApp) {
    let (secret, id) = reader(&app, |_| {}).await;
    let (status, headers, body) =
        ask(&app, "GET", "/orders/7?expand=lines", Some(&secret), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h(&headers, "x-keyward-token-id"), id);
    assert!(h(&headers, "x-keyward-workspace-id").starts_with("ws_"));
    assert!(h(&headers, "x-keyward-user-id").starts_with("usr_"));
    assert!(h(&headers, "x-keyward-role-id").starts_with("rol_"));
    assert_eq!(h(&headers, "x-keyward-scope"), "workspace");
    assert_eq!(h(&headers, "x-keyward-permissions"), "orders:read");
    let meta: serde_json::Value = serde_json::from_str(h(&headers, "x-keyward-metadata")).unwrap();
    assert_eq!(meta["team"], "Zürich");
    assert!(h(&headers, "ratelimit-policy").contains("q="));
    // A path an upstream could read as another one is refused, whatever the token; nginx
    // gets it as a 403 (auth_request passes nothing else on).
    for path in [
        "/public/../orders/7",
        "/public/%2e%2e/orders/7",
        "/public/..;/orders/7",
    ] {
        let (status, headers, _) = ask(&app, "GET", path, Some(&secret), &[]).await;
        assert_eq!(
            (status, h(&headers, "x-keyward-code")),
            (400, "INVALID_PATH"),
            "{path}"
        );
    }
    let r = reqwest::Client::new()
        .get(format!("{}/auth", app.url))
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/public/../orders/7")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), h(r.headers(), "x-keyward-code")),
        (403, "INVALID_PATH")
    );

    // Step 8: the route needs a permission the token lacks.
    let (status, headers, body) = ask(&app, "POST", "/carts/1/items", Some(&secret), &[]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(h(&headers, "x-keyward-code"), "INSUFFICIENT_PERMISSIONS");
    assert_eq!(
        h(&headers, "www-authenticate"),
        "Bearer realm=\"keyward\", error=\"insufficient_scope\", scope=\"cart:write\""
    );
    assert_eq!(h(&headers, "content-type"), "application/problem+json");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "INSUFFICIENT_PERMISSIONS");
    assert!(!body.contains(&secret));

    // Unmatched: denied whatever the token.
    let (status, headers, _) = ask(&app, "GET", "/admin/users", Some(&secret), &[]).await;
    assert_eq!(
        (status, h(&headers, "x-keyward-code")),
        (403, "ROUTE_NOT_ALLOWED")
    );
    // A method the route does not name.
    let (status, _, _) = ask(&app, "DELETE", "/orders/7", Some(&secret), &[]).await;
    assert_eq!(status, 403);

    // Anonymous: passes without a credential, marked as such; a client's forged principal
    // headers are not echoed back as if keyward had set them.
    let (status, headers, _) = ask(
        &app,
        "GET",
        "/public/logo.png",
        None,
        &[("X-Keyward-User-Id", "usr_forged")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h(&headers, "x-keyward-anonymous"), "true");
    assert_eq!(h(&headers, "x-keyward-user-id"), "");

    // No credential on a protected route: 401 with a challenge and no error code (RFC 6750 §3.1).
    let (status, headers, _) = ask(&app, "GET", "/orders/7", None, &[]).await;
    assert_eq!(status, 401);
    assert_eq!(h(&headers, "www-authenticate"), "Bearer realm=\"keyward\"");
    assert_eq!(h(&headers, "x-keyward-code"), "MISSING_CREDENTIAL");

    // Steps 1–4: 401 invalid_token.
    let (status, headers, _) = ask(&app, "GET", "/orders/7", Some("kw_live_nonsense"), &[]).await;
    assert_eq!((status, h(&headers, "x-keyward-code")), (401, "MALFORMED"));
    assert!(h(&headers, "www-authenticate").contains("error=\"invalid_token\""));
    app.admin.revoke_token(id.parse().unwrap()).await.unwrap();
    let (status, headers, _) = ask(&app, "GET", "/orders/7", Some(&secret), &[]).await;
    assert_eq!((status, h(&headers, "x-keyward-code")), (401, "REVOKED"));
    assert_eq!(
        h(&headers, "www-authenticate"),
        "Bearer realm=\"keyward\", error=\"invalid_token\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_table_sqlite() {
    if let Some(app) = spawn(Backend::Sqlite, |_| {}).await {
        the_route_table_decides_and_the_principal_is_passed(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_table_postgres() {
    if let Some(app) = spawn(Backend::Postgres, |_| {}).await {
        the_route_table_decides_and_the_principal_is_passed(app).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_429_and_403_with_a_code_for_nginx() {
    let Some(app) = spawn(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let (secret, _) = reader(&app, |t| t.rate_limit_per_minute = Some(2)).await;
    for _ in 0..2 {
        assert_eq!(
            ask(&app, "GET", "/orders/1", Some(&secret), &[]).await.0,
            200
        );
    }
    let (status, headers, body) = ask(&app, "GET", "/orders/1", Some(&secret), &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(h(&headers, "x-keyward-code"), "RATE_LIMITED");
    assert!(h(&headers, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(h(&headers, "ratelimit-policy"), "\"token\";q=2;w=60");
    assert!(h(&headers, "ratelimit").contains("r=0"));
    // nginx's convention: the same refusal as a 403 that keeps the code and Retry-After.
    let r = reqwest::Client::new()
        .get(format!("{}/auth", app.url))
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/orders/1")
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(h(r.headers(), "x-keyward-code"), "RATE_LIMITED");
    assert!(h(r.headers(), "retry-after").parse::<u64>().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_puts_its_prefix_before_the_original_path() {
    let Some(app) = spawn(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let (secret, id) = reader(&app, |_| {}).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/auth/orders/9?x=1", app.url))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h(r.headers(), "x-keyward-token-id"), id);
    // The original method is the request's own.
    let r = http
        .post(format!("{}/auth/carts/1", app.url))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(h(r.headers(), "x-keyward-code"), "INSUFFICIENT_PERMISSIONS");
    // The original path `/` arrives as `/auth/`: judged as `/` (unmatched here), not a 404.
    let r = http
        .get(format!("{}/auth/", app.url))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(h(r.headers(), "x-keyward-code"), "ROUTE_NOT_ALLOWED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_comes_from_the_trusted_proxy() {
    let Some(app) = spawn(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let (secret, _) = reader(&app, |t| {
        t.ip_allowlist = Some(IpListInput::Text("203.0.113.0/24".into()));
    })
    .await;
    let inside = [("X-Forwarded-For", "203.0.113.9")];
    assert_eq!(
        ask(&app, "GET", "/orders/1", Some(&secret), &inside)
            .await
            .0,
        200
    );
    let outside = [("X-Forwarded-For", "198.51.100.1")];
    let (status, headers, _) = ask(&app, "GET", "/orders/1", Some(&secret), &outside).await;
    assert_eq!(
        (status, h(&headers, "x-keyward-code")),
        (403, "IP_NOT_ALLOWED")
    );
    // A client's own X-Original-URI beside the proxy's X-Forwarded-Uri: refused, whichever
    // of the two the proxy wrote.
    let both = [
        ("X-Original-URI", "/public/x"),
        ("X-Forwarded-For", "203.0.113.9"),
    ];
    let (status, _, body) = ask(&app, "GET", "/orders/1", None, &both).await;
    assert_eq!(status, 403);
    assert!(body.contains("AMBIGUOUS_ORIGINAL_REQUEST"), "{body}");
    // A repeated original-request header: the proxy appended its own after the client's.
    let twice = [
        ("X-Forwarded-Uri", "/public/x"),
        ("X-Forwarded-For", "203.0.113.9"),
    ];
    let (status, _, body) = ask(&app, "GET", "/orders/1", None, &twice).await;
    assert_eq!(status, 403);
    assert!(body.contains("AMBIGUOUS_ORIGINAL_REQUEST"), "{body}");
    // No forwarded address at all: the client's is unknown, not the proxy's own 127.0.0.1.
    let (status, headers, _) = ask(&app, "GET", "/orders/1", Some(&secret), &[]).await;
    assert_eq!(
        (status, h(&headers, "x-keyward-code")),
        (403, "IP_NOT_ALLOWED")
    );
    // A client that wrote its own X-Forwarded-For in front of the proxy's gains nothing.
    let spoofed = [("X-Forwarded-For", "203.0.113.9, 198.51.100.1")];
    assert_eq!(
        ask(&app, "GET", "/orders/1", Some(&secret), &spoofed)
            .await
            .0,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_trusted_proxies_or_the_secret_may_ask() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| {
        shop_routes(c);
        c.edge.proxy_secret = "s3cret-of-the-proxy".into();
        c.edge.credential_header = "X-API-Key".into();
    })
    .await
    else {
        return;
    };
    let (secret, _) = reader(&app, |_| {}).await;
    let key = [("X-API-Key", secret.as_str())];
    let (status, headers, body) = ask(&app, "GET", "/orders/1", None, &key).await;
    assert_eq!(
        (status, h(&headers, "content-type")),
        (403, "application/problem+json")
    );
    assert!(body.contains("PROXY_NOT_TRUSTED"), "{body}");
    let wrong = [
        ("X-API-Key", secret.as_str()),
        ("X-Keyward-Proxy-Secret", "guess"),
    ];
    assert_eq!(ask(&app, "GET", "/orders/1", None, &wrong).await.0, 403);
    let right = [
        ("X-API-Key", secret.as_str()),
        ("X-Keyward-Proxy-Secret", "s3cret-of-the-proxy"),
    ];
    let (status, headers, body) = ask(&app, "GET", "/orders/1", None, &right).await;
    assert_eq!(status, 200, "{body}");
    assert!(h(&headers, "x-keyward-token-id").starts_with("tok_"));
    // With X-API-Key configured, a Bearer token is not the credential.
    let bearer = [("X-Keyward-Proxy-Secret", "s3cret-of-the-proxy")];
    let (status, headers, _) = ask(&app, "GET", "/orders/1", Some(&secret), &bearer).await;
    assert_eq!(
        (status, h(&headers, "x-keyward-code")),
        (401, "MISSING_CREDENTIAL")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_route_table_stops_the_start_with_the_entry_named() {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.database.url = format!(
        "sqlite://{}",
        std::env::temp_dir()
            .join(format!("keyward-it-{}.db", crate::support::random_hex()))
            .display()
    );
    config.edge.routes = vec![
        route("GET /orders/{id}", &["orders:read"], false),
        route("GET /orders/{order}", &["orders:write"], false),
    ];
    let err = keyward_server::Application::build(&config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("edge.routes[1]") && err.contains("overlaps"),
        "{err}"
    );
    config.edge.routes = vec![route("GET /orders", &["NOT A PERMISSION"], false)];
    let err = keyward_server::Application::build(&config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("edge.routes[0]: permissions[0]"), "{err}");
}
