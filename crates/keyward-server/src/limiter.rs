//! Step 7's state: the rate limiter behind a trait, so a shared (Redis) limiter for several
//! nodes can replace the in-memory one without touching the decision. The algorithm (GCRA)
//! is pure and lives in `keyward_core::ratelimit`; a limiter only keeps each key's state (its
//! theoretical arrival time) and applies the check atomically.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use async_trait::async_trait;
use keyward_core::ratelimit::{check, Outcome, Quota};

/// Why a limiter could not answer (a shared limiter's backend being down).
#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct LimiterError(pub String);

/// Keeps GCRA state per key.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `key` at `now_ns` (Unix nanoseconds) against `quota`.
    async fn hit(&self, key: &str, quota: &Quota, now_ns: i64) -> Result<Outcome, LimiterError>;

    /// What a request would get, without counting it.
    async fn peek(&self, key: &str, quota: &Quota, now_ns: i64) -> Result<Outcome, LimiterError>;
}

const SHARDS: usize = 16;
/// Above this many keys in a shard, keys whose state has fully drained are dropped.
const PRUNE_AT: usize = 50_000;

/// A limiter in this process's memory: exact for one node. Sharded mutexes make each check
/// atomic (no two requests spend the same unit) without one global lock.
pub struct MemoryLimiter {
    shards: Vec<Mutex<HashMap<String, i64>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }
}

impl MemoryLimiter {
    fn shard(&self, key: &str) -> &Mutex<HashMap<String, i64>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn hit(&self, key: &str, quota: &Quota, now_ns: i64) -> Result<Outcome, LimiterError> {
        let mut map = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let outcome = check(quota, map.get(key).copied(), now_ns);
        if let Some(tat) = outcome.new_tat {
            if map.len() >= PRUNE_AT && !map.contains_key(key) {
                // A state at or before now is the same as no state: forget it.
                map.retain(|_, t| *t > now_ns);
            }
            map.insert(key.to_owned(), tat);
        }
        Ok(outcome)
    }

    async fn peek(&self, key: &str, quota: &Quota, now_ns: i64) -> Result<Outcome, LimiterError> {
        let map = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        Ok(check(quota, map.get(key).copied(), now_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exactly_the_quota_passes_then_it_refills() {
        let limiter = MemoryLimiter::default();
        let quota = Quota::new(150, 60).unwrap();
        let t0 = 1_700_000_000_000_000_000;
        let mut passed = 0;
        for _ in 0..400 {
            if limiter.hit("tok:a", &quota, t0).await.unwrap().allowed {
                passed += 1;
            }
        }
        assert_eq!(passed, 150);
        // Another key is untouched; peeking spends nothing.
        assert!(limiter.peek("tok:b", &quota, t0).await.unwrap().allowed);
        assert!(!limiter.peek("tok:a", &quota, t0).await.unwrap().allowed);
        assert!(
            limiter
                .hit("tok:a", &quota, t0 + 60_000_000_000)
                .await
                .unwrap()
                .allowed
        );
    }
}
