//! The Lua step against `keyward_core::ratelimit::check`, on the machine's Redis
//! (`KEYWARD_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`), each test under a key prefix
//! of its own (nothing else is touched: no FLUSHALL/FLUSHDB). A Redis that accepts no
//! connection skips these tests loudly, or fails them under `CI=true`.

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use keyward_core::{TokenId, UserId};
use proptest::prelude::*;

use super::*;

fn redis_url() -> String {
    std::env::var("KEYWARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn random_hex() -> String {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The test Redis's URL, or `None` after saying on stderr (uncaptured) that the test skipped;
/// under `CI=true` an unreachable Redis fails the test instead.
async fn test_redis() -> Option<String> {
    let url = redis_url();
    let Some(why) = unreachable(&url).await else {
        return Some(url);
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Redis is required under CI=true: {why}");
    }
    let thread = std::thread::current();
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED on Redis ({why}): `{}` did not run",
        thread.name().unwrap_or("a test")
    );
    None
}

/// A limiter under a prefix of its own, connected (a Redis that accepts connections but does
/// not answer fails the test).
async fn limiter(url: &str, prefix: &str) -> RedisLimiter {
    let l = RedisLimiter::open(url, prefix, Duration::from_secs(5)).unwrap();
    l.warm_up().await.unwrap();
    l
}

fn keys() -> Vec<LimitKey> {
    let tok = TokenId::random(&mut rand_core::OsRng);
    let user = UserId::random(&mut rand_core::OsRng);
    let ip: IpAddr = "2001:db8::7".parse().unwrap();
    vec![
        LimitKey::Token(tok),
        LimitKey::source("192.0.2.9".parse().unwrap()),
        LimitKey::verifier_source(tok, ip),
        LimitKey::Account(user),
        LimitKey::account_source(user, ip),
        LimitKey::sign_in_source(ip),
    ]
}

/// One step of a sequence: which key, peek or hit, and how far the clock moves first (it may
/// move back: nodes' clocks differ).
#[derive(Debug, Clone)]
struct Step {
    key: usize,
    peek: bool,
    dt_ns: i64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0..3usize,
        prop::bool::weighted(0.2),
        prop_oneof![
            3 => Just(0i64),
            5 => 0..2_000_000_000i64,
            1 => -50_000_000..0i64,
            1 => 0..200_000_000_000i64,
        ],
    )
        .prop_map(|(key, peek, dt_ns)| Step { key, peek, dt_ns })
}

/// Runs `steps` on Redis and on `check` with a map, comparing every outcome and state.
async fn compare(redis: &RedisLimiter, quota: Quota, start: i64, steps: &[Step]) {
    let keys = keys();
    let mut model: std::collections::HashMap<usize, i64> = Default::default();
    let mut now = start;
    for (i, s) in steps.iter().enumerate() {
        now = now.saturating_add(s.dt_ns);
        let key = keys[s.key];
        let want = check(&quota, model.get(&s.key).copied(), now);
        let got = if s.peek {
            redis.peek(key, &quota, now).await.unwrap()
        } else {
            if let Some(tat) = want.new_tat {
                model.insert(s.key, tat);
            }
            redis.hit(key, &quota, now).await.unwrap()
        };
        assert_eq!(got, want, "step {i} ({s:?}, {quota:?}, now {now})");
    }
    for key in &keys {
        let mut conn = redis.conn.clone();
        let _: () = ::redis::cmd("DEL")
            .arg(redis.redis_key(*key))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[test]
fn the_lua_step_is_check() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(url) = runtime.block_on(test_redis()) else {
        return;
    };
    let redis = runtime.block_on(limiter(&url, &format!("kwtest:{}:", random_hex())));
    let config = ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        limit in prop_oneof![1..=5u32, 1..=200u32, Just(150u32), Just(7u32)],
        period in prop_oneof![1..=120u32, Just(60u32), Just(1u32)],
        start in 1_700_000_000_000_000_000..1_800_000_000_000_000_000i64,
        steps in prop::collection::vec(step(), 1..80),
    )| {
        let quota = Quota::new(limit, period).unwrap();
        runtime.block_on(compare(&redis, quota, start, &steps));
    });
}

#[tokio::test]
async fn extreme_clocks_and_quotas_are_exact() {
    let Some(url) = test_redis().await else {
        return;
    };
    let redis = limiter(&url, &format!("kwtest:{}:", random_hex())).await;
    let burst = |n| -> Vec<Step> {
        (0..n)
            .map(|i| Step {
                key: i % 2,
                peek: i % 5 == 4,
                dt_ns: if i % 7 == 6 { 123_456_789 } else { 0 },
            })
            .collect()
    };
    let quotas = [
        Quota::new(1, 1).unwrap(),
        Quota::new(7, 1).unwrap(),
        Quota::new(3, 7).unwrap(),
        Quota::new(u32::MAX, u32::MAX).unwrap(),
        Quota::new(2, u32::MAX).unwrap(),
    ];
    // Negative times, the epoch, times near the end of i64 (the state saturates there).
    let starts = [
        -1_500_000_000_123_456_789,
        -1,
        0,
        999_999_999,
        1_767_225_600_000_000_000,
        i64::MAX - 3_000_000_000,
        i64::MAX - 1,
    ];
    for quota in quotas {
        for start in starts {
            compare(&redis, quota, start, &burst(12)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_exactly_one_budget() {
    let Some(url) = test_redis().await else {
        return;
    };
    let prefix = format!("kwtest:{}:", random_hex());
    let nodes = [
        Arc::new(limiter(&url, &prefix).await),
        Arc::new(limiter(&url, &prefix).await),
        Arc::new(limiter(&url, &prefix).await),
    ];
    let key = LimitKey::Token(TokenId::random(&mut rand_core::OsRng));
    let quota = Quota::new(150, 60).unwrap();
    let now = 1_767_225_600_000_000_000;
    let mut tasks = Vec::new();
    for i in 0..600 {
        let node = nodes[i % 3].clone();
        tasks.push(tokio::spawn(async move {
            node.hit(key, &quota, now).await.unwrap().allowed
        }));
    }
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, 150);
    // Peeking spends nothing; the key expires when its state has drained (60 s, plus margin).
    assert!(!nodes[1].peek(key, &quota, now).await.unwrap().allowed);
    let mut conn = nodes[0].conn.clone();
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(nodes[0].redis_key(key))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((59_000..=61_000).contains(&ttl), "{ttl}");
    assert_eq!(
        nodes[0].redis_key(key),
        format!("{prefix}{key}"),
        "prefix + Display"
    );
}

#[tokio::test]
async fn a_hung_or_absent_redis_fails_within_the_timeout() {
    // Accepts connections, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let key = LimitKey::Token(TokenId::random(&mut rand_core::OsRng));
    let quota = Quota::DEFAULT;
    let hung = RedisLimiter::open(
        &format!("redis://127.0.0.1:{port}"),
        "kw:",
        Duration::from_millis(200),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let e = hung.hit(key, &quota, 0).await.unwrap_err();
    assert!(e.0.contains("redis"), "{e}");
    assert!(hung.peek(key, &quota, 0).await.is_err());
    // Generous: the point is that it does not wait for an answer that never comes.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    held.abort();
    // Nothing listening: refused at once, and again on the next call (it retries each time).
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let absent = RedisLimiter::open(
        &format!("redis://127.0.0.1:{port}"),
        "kw:",
        Duration::from_millis(200),
    )
    .unwrap();
    assert!(absent.hit(key, &quota, 0).await.is_err());
    assert!(absent.hit(key, &quota, 0).await.is_err());
    assert!(unreachable(&format!("redis://127.0.0.1:{port}"))
        .await
        .is_some_and(|why| why.contains(&format!("127.0.0.1:{port}"))));
}
