//! `[ratelimit]`: which limiter keeps the rate-limit state, the same section for the server
//! and the embedded [`crate::gate::Gate`], and the one place both build it ([`build`]), so a
//! server node and an embedded layer cannot differ.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::failover::{FailoverLimiter, LimiterStats};
use super::redis::RedisLimiter;
use super::{MemoryLimiter, RateLimiter};

/// Where rate-limit state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// This process's memory: exact for one node; N nodes give a token N × its limit.
    #[default]
    Memory,
    /// Redis, shared by every node: exact across nodes.
    Redis,
}

/// What a request gets while Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRedisError {
    /// Count it in this node's memory instead (each node limits on its own meanwhile). The
    /// default: a Redis outage must not become an outage of every API behind keyward, and the
    /// limits and the brute-force guard still hold per node.
    #[default]
    FailOpen,
    /// Refuse it as `RATE_LIMITED` with `Retry-After: 1`: no node ever passes more than the
    /// shared limit, at the price of refusing while Redis is down.
    FailClosed,
}

/// `[ratelimit]`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `memory` (the default) or `redis`.
    pub backend: Backend,
    /// `redis://[user:password@]host[:port][/db]` or `redis+unix:///path`; required for the
    /// `redis` backend. Never printed (it may hold a password).
    pub redis_url: String,
    /// `fail_open` (the default) or `fail_closed`.
    pub on_redis_error: OnRedisError,
    /// Longest wait for Redis per call (and per connection attempt), in milliseconds.
    pub timeout_ms: u64,
    /// Put before every key; nodes that share limits use the same prefix.
    pub key_prefix: String,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            redis_url: String::new(),
            on_redis_error: OnRedisError::FailOpen,
            timeout_ms: 100,
            key_prefix: "keyward:rl:".into(),
        }
    }
}

impl std::fmt::Debug for RateLimitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = if self.redis_url.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("RateLimitConfig")
            .field("backend", &self.backend)
            .field("redis_url", &url)
            .field("on_redis_error", &self.on_redis_error)
            .field("timeout_ms", &self.timeout_ms)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

/// The longest `timeout_ms` accepted: a limiter that may wait longer stalls verifies.
const MAX_TIMEOUT_MS: u64 = 10_000;

impl RateLimitConfig {
    /// Refuses what cannot be used, naming the key (`ratelimit.redis_url`, …); the URL itself
    /// is never repeated.
    pub fn validate(&self) -> Result<(), String> {
        if self.backend == Backend::Redis && self.redis_url.trim().is_empty() {
            return Err("ratelimit.redis_url is required when ratelimit.backend is redis".into());
        }
        if !self.redis_url.trim().is_empty() {
            super::redis::check_url(self.redis_url.trim())
                .map_err(|why| format!("ratelimit.redis_url cannot be used: {why}"))?;
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(format!(
                "ratelimit.timeout_ms must be between 1 and {MAX_TIMEOUT_MS}"
            ));
        }
        if self.key_prefix.len() > 200 {
            return Err("ratelimit.key_prefix must be at most 200 bytes".into());
        }
        Ok(())
    }
}

/// A built limiter and its counters.
pub struct Limiter {
    /// The limiter the hot path and the sign-in guard share.
    pub limiter: Arc<dyn RateLimiter>,
    /// Backend errors and fallbacks (all zero for the memory backend).
    pub stats: Arc<LimiterStats>,
}

/// Builds the configured limiter (after [`RateLimitConfig::validate`]). The Redis backend
/// connects in the background: a Redis that is down at start-up is logged and then handled by
/// `on_redis_error` until it answers. Needs a Tokio runtime.
pub fn build(config: &RateLimitConfig) -> Result<Limiter, String> {
    config.validate()?;
    let stats = Arc::new(LimiterStats::default());
    let limiter: Arc<dyn RateLimiter> = match config.backend {
        Backend::Memory => Arc::new(MemoryLimiter::default()),
        Backend::Redis => {
            let redis = Arc::new(
                RedisLimiter::open(
                    config.redis_url.trim(),
                    &config.key_prefix,
                    Duration::from_millis(config.timeout_ms),
                )
                .map_err(|why| format!("ratelimit.redis_url cannot be used: {why}"))?,
            );
            let warm = redis.clone();
            let on_error = config.on_redis_error;
            tokio::spawn(async move {
                match warm.warm_up().await {
                    Ok(()) => tracing::info!("shared rate limits: Redis answers"),
                    Err(error) => tracing::warn!(
                        %error,
                        ?on_error,
                        "shared rate limits: Redis does not answer at start-up; \
                         on_redis_error applies until it does"
                    ),
                }
            });
            Arc::new(FailoverLimiter::new(
                redis,
                config.on_redis_error,
                stats.clone(),
            ))
        }
    };
    Ok(Limiter { limiter, stats })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_their_key_and_hide_the_url() {
        let redis = |url: &str| RateLimitConfig {
            backend: Backend::Redis,
            redis_url: url.into(),
            ..RateLimitConfig::default()
        };
        assert!(RateLimitConfig::default().validate().is_ok());
        assert!(redis("redis://127.0.0.1:6379/0").validate().is_ok());
        let e = redis("").validate().unwrap_err();
        assert!(e.contains("ratelimit.redis_url is required"), "{e}");
        for bad in [
            "http://user:hunter2@cache:6379",
            "redis://user:hunter2@cache:6379/notadb",
            "hunter2",
            "rediss://user:hunter2@cache:6379",
        ] {
            let e = redis(bad).validate().unwrap_err();
            assert!(e.starts_with("ratelimit.redis_url"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let slow = RateLimitConfig {
            timeout_ms: 0,
            ..RateLimitConfig::default()
        };
        assert!(slow
            .validate()
            .unwrap_err()
            .contains("ratelimit.timeout_ms"));
    }

    #[test]
    fn the_url_is_not_printed() {
        let c = RateLimitConfig {
            redis_url: "redis://:hunter2@cache:6379".into(),
            ..RateLimitConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn names_are_snake_case() {
        let c: RateLimitConfig = serde_json::from_value(serde_json::json!({
            "backend": "redis", "redis_url": "redis://127.0.0.1", "on_redis_error": "fail_closed"
        }))
        .unwrap();
        assert_eq!(
            (c.backend, c.on_redis_error),
            (Backend::Redis, OnRedisError::FailClosed)
        );
    }
}
