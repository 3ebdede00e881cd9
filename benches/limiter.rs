//! The shared limiter's cost per verify against the memory limiter: `RateLimiter::hit` on the
//! limiter `[ratelimit]` builds (`backend = "memory"`, and `backend = "redis"` against the
//! machine's Redis, `KEYWARD_TEST_REDIS_URL` or `redis://127.0.0.1:6379`, under a fresh key
//! prefix whose keys expire by themselves). Each hit passes (a quota no run exhausts), so the
//! Redis figure is the full step: `EVALSHA`, `GET`, `SET … PX`. Measured one at a time (the
//! latency a verify waits) and 32 in flight on the one multiplexed connection (the cost per
//! hit when a node is busy). Without a reachable Redis only the memory figures are taken.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use keyward_core::ratelimit::Quota;
use keyward_core::TokenId;
use keyward_gate::limiter::config::Backend;
use keyward_gate::limiter::{build, LimitKey, RateLimitConfig, RateLimiter};
use rand_core::OsRng;

const IN_FLIGHT: u64 = 32;

fn limiter(rt: &tokio::runtime::Runtime, backend: Backend) -> Arc<dyn RateLimiter> {
    let mut b = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut b);
    let config = RateLimitConfig {
        backend,
        redis_url: std::env::var("KEYWARD_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        key_prefix: format!("kwbench:{:016x}:", u64::from_le_bytes(b)),
        timeout_ms: 1_000,
        ..RateLimitConfig::default()
    };
    rt.block_on(async { build(&config).unwrap().limiter })
}

fn bench_limiters(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // ~1 ns per request: nothing a benchmark run sends is refused.
    let quota = Quota::new(u32::MAX, 1).unwrap();
    let key = LimitKey::Token(TokenId::random(&mut OsRng));
    let now = 1_767_225_600_000_000_000;
    let mut limiters = vec![("memory", limiter(&rt, Backend::Memory))];
    let redis = limiter(&rt, Backend::Redis);
    match rt.block_on(redis.hit(key, &quota, now)) {
        Ok(o) if o.allowed => limiters.push(("redis", redis)),
        other => eprintln!("SKIPPED the Redis benchmarks: no answer from Redis ({other:?})"),
    }
    for (name, limiter) in &limiters {
        c.bench_function(&format!("limiter_hit_{name}"), |b| {
            b.iter(|| {
                let o = rt
                    .block_on(limiter.hit(black_box(key), &quota, now))
                    .unwrap();
                assert!(o.allowed);
            })
        });
        c.bench_function(&format!("limiter_hit_{name}_{IN_FLIGHT}_in_flight"), |b| {
            b.iter_custom(|iters| {
                let batches = iters.div_ceil(IN_FLIGHT);
                let started = Instant::now();
                rt.block_on(async {
                    for _ in 0..batches {
                        let mut tasks = tokio::task::JoinSet::new();
                        for _ in 0..IN_FLIGHT {
                            let limiter = limiter.clone();
                            tasks.spawn(async move {
                                limiter.hit(key, &quota, now).await.unwrap().allowed
                            });
                        }
                        while let Some(allowed) = tasks.join_next().await {
                            assert!(allowed.unwrap());
                        }
                    }
                });
                // The wall time of `iters` of the hits run (whole batches were run).
                started
                    .elapsed()
                    .mul_f64(iters as f64 / (batches * IN_FLIGHT) as f64)
            })
        });
    }
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_limiters
}
criterion_main!(benches);
