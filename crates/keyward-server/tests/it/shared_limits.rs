//! Shared rate limits (`[ratelimit] backend = "redis"`): three nodes on one PostgreSQL schema
//! and one Redis spend one budget per token and one brute-force budget per source; with a
//! Redis this test starts itself (never the machine's) stopped, `fail_open` falls back to each
//! node's own limits and warns, `fail_closed` refuses with `Retry-After: 1`, and both share
//! again once it is back, without a restart.
//!
//! The machine's Redis is `KEYWARD_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`), used
//! under a key prefix of each test's own. Unreachable (or no `redis-server` binary for the
//! tests that run their own), the tests skip loudly, or fail under `CI=true`.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keyward_core::api::VerifyResponse;
use keyward_core::model::Scope;
use keyward_core::{Code, TokenSecret};
use keyward_server::limiter::OnRedisError;

use crate::support::{logs_contain, random_hex, token_request, Backend, TestApp};

fn redis_url() -> String {
    std::env::var("KEYWARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Skips the running test (stderr, uncaptured), or fails it under `CI=true`.
fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Redis is required under CI=true: {why}");
    }
    let thread = std::thread::current();
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED on Redis ({why}): `{}` did not run",
        thread.name().unwrap_or("a test")
    );
}

/// The machine's Redis, if it accepts connections.
async fn machine_redis() -> Option<String> {
    let url = redis_url();
    match keyward_server::limiter::redis::unreachable(&url).await {
        None => Some(url),
        Some(why) => {
            skip(&why);
            None
        }
    }
}

/// A redis-server of the test's own on a free port, stopped when dropped.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    /// Started and answering; `None` (skipped) when there is no `redis-server` binary.
    fn start() -> Option<OwnRedis> {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut redis = OwnRedis { port, child: None };
        match redis.run() {
            Ok(()) => Some(redis),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                skip("no redis-server binary");
                None
            }
            Err(e) => panic!("starting redis-server: {e}"),
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) -> std::io::Result<()> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        for _ in 0..100 {
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {} does not answer", self.port);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing on disk).
    fn restart(&mut self) {
        self.run().unwrap();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Redis answers `PING` on `port` (blocking: only the start-up wait uses it).
fn ping(port: u16) -> bool {
    use std::io::Read as _;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Three nodes on one PostgreSQL schema sharing limits in the Redis at `url` under a fresh
/// prefix, answering `on_error` when it fails; `None` when PostgreSQL is unreachable (skip).
async fn three_nodes(
    url: &str,
    on_error: OnRedisError,
    configure: impl Fn(&mut keyward_server::Config),
) -> Option<[TestApp; 3]> {
    let prefix = format!("kwit:{}:", random_hex());
    let a = TestApp::spawn_with(Backend::Postgres, |c| {
        c.ratelimit.backend = keyward_server::limiter::config::Backend::Redis;
        c.ratelimit.redis_url = url.into();
        c.ratelimit.on_redis_error = on_error;
        c.ratelimit.key_prefix = prefix.clone();
        // Generous: a loaded CI machine must not turn into fallbacks; the outage tests stop
        // Redis, which refuses connections at once.
        c.ratelimit.timeout_ms = 5_000;
        configure(c);
    })
    .await?;
    let b = a.another_node(|_| {}).await;
    let c = a.another_node(|_| {}).await;
    Some([a, b, c])
}

/// One verify through `node` for a client at `ip`: the answer and its `Retry-After`.
async fn verify(node: &TestApp, secret: &str, ip: &str) -> (VerifyResponse, Option<String>) {
    let (http, base) = node.verifier_from("127.0.0.3");
    let r = http
        .post(format!("{base}/v1/verify"))
        .json(&serde_json::json!({ "token": secret, "ip": ip }))
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.json().await.unwrap(), retry)
}

/// A fresh token limited to `per_minute`.
async fn limited_token(node: &TestApp, per_minute: u32) -> String {
    let name = format!("bot-{}", random_hex());
    let role = node
        .api_role(&name, Scope::Workspace, &["keyward.workspace:read"])
        .await;
    let owner = node.service_user(&name, Some(role.id)).await;
    let mut req = token_request(&owner);
    req.rate_limit_per_minute = Some(per_minute);
    node.admin.create_token(&req).await.unwrap().secret
}

/// How many of `n` verifies of `secret` through `node` were valid; the others must have been
/// refused as `RATE_LIMITED`.
async fn valid_of(node: &TestApp, secret: &str, n: usize) -> usize {
    let mut valid = 0;
    for _ in 0..n {
        let (v, _) = verify(node, secret, "198.51.100.7").await;
        match v.code {
            Code::Valid => valid += 1,
            Code::RateLimited => {}
            other => panic!("unexpected {other}"),
        }
    }
    valid
}

fn errors(nodes: &[TestApp]) -> u64 {
    nodes
        .iter()
        .map(|n| n.state.limiter_stats.snapshot().backend_errors)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_pass_exactly_one_quota() {
    let Some(url) = machine_redis().await else {
        return;
    };
    let Some(nodes) = three_nodes(&url, OnRedisError::FailClosed, |_| {}).await else {
        return;
    };
    let secret = limited_token(&nodes[0], 150).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..600 {
        let (http, base) = nodes[i % 3].verifier_from("127.0.0.3");
        let secret = secret.clone();
        tasks.spawn(async move {
            let r = http
                .post(format!("{base}/v1/verify"))
                .json(&serde_json::json!({ "token": secret, "ip": "198.51.100.1" }))
                .send()
                .await
                .unwrap();
            r.json::<VerifyResponse>().await.unwrap().code
        });
    }
    let (mut valid, mut limited) = (0, 0);
    while let Some(code) = tasks.join_next().await {
        match code.unwrap() {
            Code::Valid => valid += 1,
            Code::RateLimited => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((valid, limited), (150, 450));
    // Every answer came from Redis (fail_closed would have refused, not passed, otherwise).
    assert_eq!(errors(&nodes), 0);
}

/// Salesdock's "per user": two tokens of one integration user share one budget, whichever
/// node each request reaches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_user_budget_is_shared_by_two_tokens_across_nodes() {
    let Some(url) = machine_redis().await else {
        return;
    };
    let Some(nodes) = three_nodes(&url, OnRedisError::FailClosed, |_| {}).await else {
        return;
    };
    let name = format!("erp-{}", random_hex());
    let role = nodes[0]
        .api_role(&name, Scope::Workspace, &["keyward.workspace:read"])
        .await;
    let owner = nodes[0].service_user(&name, Some(role.id)).await;
    let mut secrets = Vec::new();
    for _ in 0..2 {
        let mut req = token_request(&owner);
        req.rate_limit_per_minute = Some(30);
        req.rate_limit_per = Some(keyward_core::RateLimitPer::User);
        secrets.push(nodes[0].admin.create_token(&req).await.unwrap().secret);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..120 {
        let (http, base) = nodes[i % 3].verifier_from("127.0.0.3");
        let secret = secrets[i % 2].clone();
        tasks.spawn(async move {
            let r = http
                .post(format!("{base}/v1/verify"))
                .json(&serde_json::json!({ "token": secret, "ip": "198.51.100.1" }))
                .send()
                .await
                .unwrap();
            r.json::<VerifyResponse>().await.unwrap()
        });
    }
    let mut valid = 0;
    while let Some(v) = tasks.join_next().await {
        let v = v.unwrap();
        match v.code {
            Code::Valid => {
                valid += 1;
                let rate = v.rate_limit.expect("a valid answer shows its budget");
                assert_eq!(rate.per, Some(keyward_core::RateLimitPer::User));
            }
            Code::RateLimited => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        valid, 30,
        "one budget of 30 for both tokens on all three nodes"
    );
    assert_eq!(errors(&nodes), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_verifications_count_together_across_nodes() {
    let Some(url) = machine_redis().await else {
        return;
    };
    let Some(nodes) = three_nodes(&url, OnRedisError::FailClosed, |c| {
        c.policy.failed_verifications_per_minute = 6;
    })
    .await
    else {
        return;
    };
    let good = limited_token(&nodes[0], 1_000).await;
    // Two guesses on each node: six failures of one source, the whole budget.
    for node in &nodes {
        for _ in 0..2 {
            let guess = TokenSecret::generate("kw", &mut rand_core::OsRng);
            let (v, _) = verify(node, guess.expose(), "203.0.113.9").await;
            assert_eq!(v.code, Code::NotFound);
        }
    }
    // Any node now refuses that source's guesses and uncached tokens (each node alone has
    // seen two failures of six).
    for node in &nodes {
        let guess = TokenSecret::generate("kw", &mut rand_core::OsRng);
        let (v, retry) = verify(node, guess.expose(), "203.0.113.9").await;
        assert_eq!(v.code, Code::RateLimited);
        assert!(retry.is_some());
    }
    let (v, _) = verify(&nodes[1], &good, "203.0.113.9").await;
    assert_eq!(
        v.code,
        Code::RateLimited,
        "not cached on this node: not looked up"
    );
    // Another source is untouched.
    let (v, _) = verify(&nodes[2], &good, "203.0.113.10").await;
    assert_eq!(v.code, Code::Valid);
    assert_eq!(errors(&nodes), 0);
}

/// Verifies a throwaway token through each node until it answers without a backend error:
/// its connection to Redis is back.
async fn wait_until_shared(nodes: &[TestApp]) {
    let probe = limited_token(&nodes[0], 1_000_000).await;
    for node in nodes {
        let mut answered = false;
        for _ in 0..100 {
            let before = node.state.limiter_stats.snapshot().backend_errors;
            verify(node, &probe, "198.51.100.200").await;
            if node.state.limiter_stats.snapshot().backend_errors == before {
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(answered, "a node did not reconnect to Redis");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_limits_per_node_while_redis_is_down_then_shares_again() {
    let Some(mut redis) = OwnRedis::start() else {
        return;
    };
    let Some(nodes) = three_nodes(&redis.url(), OnRedisError::FailOpen, |_| {}).await else {
        return;
    };
    let secret = limited_token(&nodes[0], 5).await;
    // Shared: five in all.
    let mut valid = 0;
    for node in &nodes {
        valid += valid_of(node, &secret, 2).await;
    }
    assert_eq!(valid, 5);
    assert_eq!(errors(&nodes), 0);

    redis.stop();
    // Each node limits on its own: five each.
    for node in &nodes {
        assert_eq!(valid_of(node, &secret, 7).await, 5);
        let s = node.state.limiter_stats.snapshot();
        assert!(
            s.backend_errors >= 7 && s.fallbacks == s.backend_errors,
            "{s:?}"
        );
        assert_eq!(s.closed_refusals, 0);
    }
    assert!(logs_contain("shared rate limiter unavailable (fail_open"));

    redis.restart();
    wait_until_shared(&nodes).await;
    // The restarted Redis knows nothing of the token, and each node's own budget for it is
    // spent: five passes mean the shared state again, five in all.
    let before = errors(&nodes);
    let mut valid = 0;
    for node in &nodes {
        valid += valid_of(node, &secret, 3).await;
    }
    assert_eq!(valid, 5);
    assert_eq!(errors(&nodes), before);
    assert!(logs_contain("shared rate limiter answers again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_while_redis_is_down_then_shares_again() {
    let Some(mut redis) = OwnRedis::start() else {
        return;
    };
    let Some(nodes) = three_nodes(&redis.url(), OnRedisError::FailClosed, |_| {}).await else {
        return;
    };
    let secret = limited_token(&nodes[0], 4).await;
    for node in &nodes {
        assert_eq!(valid_of(node, &secret, 1).await, 1);
    }

    redis.stop();
    for node in &nodes {
        let (v, retry) = verify(node, &secret, "198.51.100.7").await;
        assert_eq!(v.code, Code::RateLimited);
        assert_eq!(v.retry_after, Some(1));
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(node.state.limiter_stats.snapshot().closed_refusals >= 1);
    }

    redis.restart();
    wait_until_shared(&nodes).await;
    // A fresh Redis: four again, shared by the three nodes.
    let mut valid = 0;
    for node in &nodes {
        valid += valid_of(node, &secret, 2).await;
    }
    assert_eq!(valid, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyward_starts_while_redis_is_down_and_shares_once_it_is_up() {
    let Some(mut redis) = OwnRedis::start() else {
        return;
    };
    redis.stop();
    let configure = |c: &mut keyward_server::Config| {
        c.ratelimit.backend = keyward_server::limiter::config::Backend::Redis;
        c.ratelimit.redis_url = redis.url();
        c.ratelimit.key_prefix = format!("kwit:{}:", random_hex());
    };
    let a = TestApp::spawn_with(Backend::Sqlite, configure)
        .await
        .expect("SQLite always starts");
    let b = a.another_node(|_| {}).await;
    let nodes = [a, b];
    let secret = limited_token(&nodes[0], 3).await;
    // Down since the start: each node on its own (fail_open, the default).
    assert_eq!(valid_of(&nodes[0], &secret, 4).await, 3);
    assert_eq!(valid_of(&nodes[1], &secret, 4).await, 3);
    redis.restart();
    wait_until_shared(&nodes).await;
    assert_eq!(
        valid_of(&nodes[0], &secret, 2).await + valid_of(&nodes[1], &secret, 2).await,
        3
    );
}

#[tokio::test]
async fn a_malformed_redis_url_is_refused_at_start_by_its_key() {
    for url in [
        "redis://:hunter2@cache:notaport",
        "",
        "rediss://:hunter2@cache",
    ] {
        let mut config = keyward_server::Config::default();
        config.server.listen = "127.0.0.1:0".into();
        config.database.url = format!(
            "sqlite://{}",
            std::env::temp_dir()
                .join(format!("keyward-it-{}.db", random_hex()))
                .display()
        );
        config.ratelimit.backend = keyward_server::limiter::config::Backend::Redis;
        config.ratelimit.redis_url = url.into();
        let e = match keyward_server::Application::build(&config).await {
            Ok(_) => panic!("started with redis_url {url:?}"),
            Err(e) => e.to_string(),
        };
        assert!(e.starts_with("configuration: ratelimit.redis_url"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
