//! The embedded layer and a server node with the same `[ratelimit]` (Redis, one key prefix)
//! spend one budget per token: the layer builds its limiter exactly as the server does. On the
//! machine's Redis (`KEYWARD_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`); unreachable,
//! the test skips loudly, or fails under `CI=true`.

use std::io::Write;

use keyward_core::api::VerifyRequest;
use keyward_core::Code;
use keyward_server::limiter::config::Backend as LimiterBackend;

use crate::support::{problem, App, Backend, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_and_the_server_share_one_budget() {
    let url =
        std::env::var("KEYWARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if let Some(why) = keyward_server::limiter::redis::unreachable(&url).await {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("Redis is required under CI=true: {why}");
        }
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED on Redis ({why}): `the_layer_and_the_server_share_one_budget` did not run"
        );
        return;
    }
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    let prefix = format!("kwtower:{:016x}:", u64::from_le_bytes(b));
    let server = Server::spawn_with(Backend::Sqlite, |c| {
        c.ratelimit.backend = LimiterBackend::Redis;
        c.ratelimit.redis_url = url.clone();
        c.ratelimit.key_prefix = prefix.clone();
    })
    .await
    .expect("SQLite always starts");
    let token = server
        .token_adjusted("shared", &["orders:read"], |t| {
            t.rate_limit_per_minute = Some(4)
        })
        .await;
    let mut options = server.gate_options();
    options.ratelimit = server.config.ratelimit.clone();
    let app = App::spawn(&options).await;
    // Two through the layer, two through the server's verify API: the budget of four.
    for _ in 0..2 {
        assert_eq!(
            app.get("/orders/7", Some(&token.secret)).await.status(),
            200
        );
    }
    for _ in 0..2 {
        let v = server
            .admin
            .verify(&VerifyRequest {
                token: token.secret.as_str().into(),
                ..VerifyRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(v.code, Code::Valid);
    }
    let res = app.get("/orders/7", Some(&token.secret)).await;
    assert_eq!(res.status(), 429);
    assert_eq!(problem(res).await["code"], "RATE_LIMITED");
    let v = server
        .admin
        .verify(&VerifyRequest {
            token: token.secret.as_str().into(),
            ..VerifyRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(v.code, Code::RateLimited);
    assert_eq!(app.gate.limiter_stats().snapshot().backend_errors, 0);
    app.gate.shutdown().await;
}
