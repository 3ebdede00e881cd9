//! The layer admits by the server's tokens, refuses without calling the handler, hears of a
//! revocation within its cache TTL, and writes usage the server reports.

use std::io::Write;
use std::time::{Duration, Instant};

use keyward_client::UsageParams;
use keyward_core::api::IpListInput;

use crate::support::{both_backends, problem, App, Backend, Server};

/// A valid token reaches the handler with its principal; a forged principal header does not;
/// a token lacking the permission gets 403, no token 401, and neither reaches the handler.
async fn admits_and_refuses(server: Server) {
    let reader = server.token_with("reader", &["orders:read"]).await;
    let writer = server.token_with("writer", &["orders:write"]).await;
    let app = App::spawn(&server.gate_options()).await;

    let res = app
        .http
        .get(format!("{}/orders/7", app.url))
        .bearer_auth(&reader.secret)
        .header("X-Keyward-Token-Id", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The service's answer carries the token's rate-limit state, as forward-auth's does.
    assert!(res.headers()["ratelimit-policy"]
        .to_str()
        .unwrap()
        .contains(";q="));
    assert!(res.headers().contains_key("ratelimit"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["token_id"], reader.token.id.to_string());
    assert_eq!(body["permissions"], serde_json::json!(["orders:read"]));
    assert_eq!(body["forged_header"], serde_json::Value::Null);
    assert_eq!(app.calls(), 1);

    let res = app.get("/orders/7", Some(&writer.secret)).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.headers()["x-keyward-code"], "INSUFFICIENT_PERMISSIONS");
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("orders:read"),
        "{challenge}"
    );
    let p = problem(res).await;
    assert_eq!(
        (p["status"].as_u64(), p["code"].as_str()),
        (Some(403), Some("INSUFFICIENT_PERMISSIONS"))
    );

    let res = app.get("/orders/7", None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"keyward\""
    );
    assert_eq!(problem(res).await["code"], "MISSING_CREDENTIAL");

    let res = app.get("/orders/7", Some("kw_not_a_real_token")).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    // Not in the route table: denied; an anonymous route passes without a principal.
    let res = app.get("/elsewhere", Some(&reader.secret)).await;
    assert_eq!(res.status(), 403);
    assert_eq!(problem(res).await["code"], "ROUTE_NOT_ALLOWED");
    assert_eq!(app.calls(), 1, "no refused request reached a handler");
    let res = app.get("/public", None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "anonymous");
    assert_eq!(app.calls(), 2);

    // The embedding service can show the gate's figures.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &app.gate.metrics_registry()).unwrap();
    assert!(
        text.contains(r#"keyward_decisions_total{code="VALID"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"keyward_decisions_total{code="MALFORMED"} 1"#),
        "{text}"
    );

    app.gate.shutdown().await;
    server.shutdown().await;
}
both_backends!(admits_and_refuses);

/// A revocation through the server reaches the layer: through the change feed on PostgreSQL,
/// when its 1 s cache entry runs out on SQLite.
async fn revocation_reaches_the_layer(server: Server) {
    let reader = server.token_with("reader", &["orders:read"]).await;
    let app = App::spawn(&server.gate_options()).await;
    assert_eq!(
        app.get("/orders/1", Some(&reader.secret)).await.status(),
        200
    );
    server.admin.revoke_token(reader.token.id).await.unwrap();
    let revoked = Instant::now();
    let delay = loop {
        let res = app.get("/orders/1", Some(&reader.secret)).await;
        if res.status() == 401 {
            assert_eq!(res.headers()["x-keyward-code"], "REVOKED");
            assert!(res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"));
            assert_eq!(problem(res).await["code"], "REVOKED");
            break revoked.elapsed();
        }
        assert_eq!(
            res.status(),
            200,
            "still valid until the change arrives or the cache entry runs out"
        );
        assert!(
            revoked.elapsed() < Duration::from_secs(3),
            "the layer still admits the revoked token after 3 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = writeln!(
        std::io::stderr().lock(),
        "revocation reached the layer ({:?}) after {} ms (cache.ttl_secs = 1)",
        server.backend,
        delay.as_millis()
    );
    if matches!(server.backend, Backend::Postgres) {
        assert!(
            delay < Duration::from_millis(500),
            "the change feed should beat the 1 s TTL: {delay:?}"
        );
    }
    app.gate.shutdown().await;
    server.shutdown().await;
}
both_backends!(revocation_reaches_the_layer);

/// What the layer records shows in the server's usage API once the gate is shut down.
async fn usage_reaches_the_server(server: Server) {
    let reader = server.token_with("reader", &["orders:read"]).await;
    let writer = server.token_with("writer", &["orders:write"]).await;
    let app = App::spawn(&server.gate_options()).await;
    for i in 0..5 {
        let res = app.get(&format!("/orders/{i}"), Some(&reader.secret)).await;
        assert_eq!(res.status(), 200);
    }
    assert_eq!(
        app.get("/orders/9", Some(&writer.secret)).await.status(),
        403
    );
    app.gate.shutdown().await;

    let report = server
        .admin
        .token_usage(reader.token.id, &UsageParams::default())
        .await
        .unwrap();
    assert_eq!(report.total, 5, "{report:?}");
    assert_eq!(report.codes.get("VALID"), Some(&5));
    assert!(
        report
            .endpoints
            .iter()
            .any(|e| e.endpoint.contains("/orders/")),
        "{:?}",
        report.endpoints
    );
    let refused = server
        .admin
        .token_usage(writer.token.id, &UsageParams::default())
        .await
        .unwrap();
    assert_eq!(refused.codes.get("INSUFFICIENT_PERMISSIONS"), Some(&1));
    server.shutdown().await;
}
both_backends!(usage_reaches_the_server);

/// The client address is the connection's peer, or what a trusted proxy forwarded: a token
/// allowed only from 203.0.113.0/24 is refused from 127.0.0.1, whatever `X-Forwarded-For`
/// says, unless 127.0.0.1 is a trusted proxy.
async fn client_address_through_trusted_proxies(server: Server) {
    let pinned = server
        .token_adjusted("pinned", &["orders:read"], |req| {
            req.ip_allowlist = Some(IpListInput::Entries(vec!["203.0.113.0/24".into()]));
        })
        .await;
    let forwarded = |app: &App| {
        app.http
            .get(format!("{}/orders/1", app.url))
            .bearer_auth(&pinned.secret)
            .header("X-Forwarded-For", "203.0.113.5")
            .send()
    };
    let direct = App::spawn(&server.gate_options()).await;
    let res = forwarded(&direct).await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(problem(res).await["code"], "IP_NOT_ALLOWED");
    assert_eq!(direct.calls(), 0);

    let mut options = server.gate_options();
    options.trusted_proxies = vec!["127.0.0.1".into()];
    let proxied = App::spawn(&options).await;
    assert_eq!(forwarded(&proxied).await.unwrap().status(), 200);
    let res = proxied.get("/orders/1", Some(&pinned.secret)).await;
    assert_eq!(
        res.status(),
        403,
        "the proxy's own request comes from 127.0.0.1"
    );
    assert_eq!(proxied.calls(), 1);
    direct.gate.shutdown().await;
    proxied.gate.shutdown().await;
    server.shutdown().await;
}
both_backends!(client_address_through_trusted_proxies);

/// A store that cannot answer: 503 STORE_UNAVAILABLE, and the handler is not called.
async fn store_unavailable(server: Server) {
    let reader = server.token_with("reader", &["orders:read"]).await;
    let app = App::spawn(&server.gate_options()).await;
    server.break_the_store().await;
    server.shutdown().await;
    let res = app.get("/orders/1", Some(&reader.secret)).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["x-keyward-code"], "STORE_UNAVAILABLE");
    assert_eq!(problem(res).await["code"], "STORE_UNAVAILABLE");
    assert_eq!(app.calls(), 0);
    app.gate.shutdown().await;
}
both_backends!(store_unavailable);

/// A per-user budget is named in the service's answer, as forward-auth names it.
async fn names_a_per_user_budget(server: Server) {
    let shared = server
        .token_adjusted("shared", &["orders:read"], |t| {
            t.rate_limit_per_minute = Some(150);
            t.rate_limit_per = Some(keyward_core::RateLimitPer::User);
        })
        .await;
    let app = App::spawn(&server.gate_options()).await;
    let res = app.get("/orders/7", Some(&shared.secret)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["ratelimit-policy"], "\"user\";q=150;w=60");
    let state = res.headers()["ratelimit"].to_str().unwrap().to_owned();
    assert!(state.starts_with("\"user\";r=149;"), "{state}");
}
both_backends!(names_a_per_user_budget);
