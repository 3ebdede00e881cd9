//! [`FailoverLimiter`]: a shared limiter, and what happens when it cannot answer.
//!
//! `fail_open`: the request is counted by this node's own [`MemoryLimiter`] instead, so each
//! node limits on its own (a token may then get N × its limit over N nodes) until the shared
//! backend answers again. `fail_closed`: the request is refused as `RATE_LIMITED`, retry in
//! [`CLOSED_RETRY`]. Either way the error is counted ([`LimiterStats`]) and logged as a warning
//! at most once per [`WARN_EVERY`] (with the count since the last one), never per request;
//! the first answer after an outage is logged once too. Every call tries the shared backend
//! first, so recovery needs no restart.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use keyward_core::ratelimit::{Outcome, Quota};

use super::config::OnRedisError;
use super::{LimitKey, LimiterError, MemoryLimiter, RateLimiter};

/// The wait a `fail_closed` refusal announces (`Retry-After: 1`).
pub const CLOSED_RETRY: Duration = Duration::from_secs(1);

/// At most one warning per this long while the shared backend fails.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// What the limiter counted, since the start: plain atomics, read with [`LimiterStats::snapshot`].
#[derive(Debug, Default)]
pub struct LimiterStats {
    backend_errors: AtomicU64,
    fallbacks: AtomicU64,
    closed_refusals: AtomicU64,
}

/// A reading of [`LimiterStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimiterStatsSnapshot {
    /// Calls the shared backend failed (an error or no answer within the timeout).
    pub backend_errors: u64,
    /// Of those, answered by this node's own limiter (`fail_open`).
    pub fallbacks: u64,
    /// Of those, refused as `RATE_LIMITED` (`fail_closed`).
    pub closed_refusals: u64,
}

impl LimiterStats {
    /// The counters now.
    pub fn snapshot(&self) -> LimiterStatsSnapshot {
        LimiterStatsSnapshot {
            backend_errors: self.backend_errors.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            closed_refusals: self.closed_refusals.load(Ordering::Relaxed),
        }
    }
}

/// A shared limiter with a configured answer for when it fails.
pub struct FailoverLimiter {
    shared: Arc<dyn RateLimiter>,
    local: MemoryLimiter,
    on_error: OnRedisError,
    stats: Arc<LimiterStats>,
    warnings: Warnings,
}

impl FailoverLimiter {
    /// `shared`, answering with `on_error` when it fails, counting into `stats`.
    pub fn new(
        shared: Arc<dyn RateLimiter>,
        on_error: OnRedisError,
        stats: Arc<LimiterStats>,
    ) -> Self {
        Self {
            shared,
            local: MemoryLimiter::default(),
            on_error,
            stats,
            warnings: Warnings::new(),
        }
    }

    async fn fallback(
        &self,
        error: LimiterError,
        key: LimitKey,
        quota: &Quota,
        now_ns: i64,
        spend: bool,
    ) -> Result<Outcome, LimiterError> {
        self.stats.backend_errors.fetch_add(1, Ordering::Relaxed);
        self.warnings.failed(&error, self.on_error);
        match self.on_error {
            OnRedisError::FailOpen => {
                self.stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                if spend {
                    self.local.hit(key, quota, now_ns).await
                } else {
                    self.local.peek(key, quota, now_ns).await
                }
            }
            OnRedisError::FailClosed => {
                self.stats.closed_refusals.fetch_add(1, Ordering::Relaxed);
                Ok(closed(quota))
            }
        }
    }
}

/// The `fail_closed` answer: refused, retry in a second.
fn closed(quota: &Quota) -> Outcome {
    Outcome {
        allowed: false,
        limit: quota.limit,
        remaining: 0,
        reset_after: CLOSED_RETRY,
        retry_after: Some(CLOSED_RETRY),
        new_tat: None,
    }
}

#[async_trait]
impl RateLimiter for FailoverLimiter {
    async fn hit(
        &self,
        key: LimitKey,
        quota: &Quota,
        now_ns: i64,
    ) -> Result<Outcome, LimiterError> {
        match self.shared.hit(key, quota, now_ns).await {
            Ok(o) => {
                self.warnings.answered();
                Ok(o)
            }
            Err(e) => self.fallback(e, key, quota, now_ns, true).await,
        }
    }

    async fn peek(
        &self,
        key: LimitKey,
        quota: &Quota,
        now_ns: i64,
    ) -> Result<Outcome, LimiterError> {
        match self.shared.peek(key, quota, now_ns).await {
            Ok(o) => {
                self.warnings.answered();
                Ok(o)
            }
            Err(e) => self.fallback(e, key, quota, now_ns, false).await,
        }
    }
}

/// The warning's own rate limit: one per [`WARN_EVERY`], with the errors in between counted.
struct Warnings {
    start: Instant,
    /// Milliseconds after `start` of the last warning, plus one (0: none yet).
    last_ms: AtomicU64,
    since_last: AtomicU64,
    failing: AtomicBool,
}

impl Warnings {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            since_last: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        }
    }

    fn failed(&self, error: &LimiterError, on_error: OnRedisError) {
        self.failing.store(true, Ordering::Relaxed);
        let errors = self.since_last.fetch_add(1, Ordering::Relaxed) + 1;
        let now = u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last_ms.load(Ordering::Relaxed);
        let every = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now.saturating_sub(last) < every {
            return;
        }
        // One thread wins the slot; the others stay quiet.
        if self
            .last_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.since_last.fetch_sub(errors, Ordering::Relaxed);
        let consequence = match on_error {
            OnRedisError::FailOpen => "fail_open: this node limits on its own until it answers",
            OnRedisError::FailClosed => "fail_closed: rate-limited requests are refused",
        };
        tracing::warn!(
            %error,
            errors,
            "shared rate limiter unavailable ({consequence}); at most one warning per {} s",
            WARN_EVERY.as_secs()
        );
    }

    fn answered(&self) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("shared rate limiter answers again; limits are shared again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::TokenId;

    /// A shared limiter that can be switched off.
    struct Switch {
        up: AtomicBool,
        inner: MemoryLimiter,
    }

    #[async_trait]
    impl RateLimiter for Switch {
        async fn hit(&self, k: LimitKey, q: &Quota, now: i64) -> Result<Outcome, LimiterError> {
            if !self.up.load(Ordering::Relaxed) {
                return Err(LimiterError("down".into()));
            }
            self.inner.hit(k, q, now).await
        }
        async fn peek(&self, k: LimitKey, q: &Quota, now: i64) -> Result<Outcome, LimiterError> {
            if !self.up.load(Ordering::Relaxed) {
                return Err(LimiterError("down".into()));
            }
            self.inner.peek(k, q, now).await
        }
    }

    fn switch() -> Arc<Switch> {
        Arc::new(Switch {
            up: AtomicBool::new(true),
            inner: MemoryLimiter::default(),
        })
    }

    const T0: i64 = 1_767_225_600_000_000_000;

    #[tokio::test]
    async fn fail_open_counts_locally_then_recovers() {
        let shared = switch();
        let stats = Arc::new(LimiterStats::default());
        let limiter = FailoverLimiter::new(shared.clone(), OnRedisError::FailOpen, stats.clone());
        let key = LimitKey::Token(TokenId::random(&mut rand_core::OsRng));
        let quota = Quota::new(3, 60).unwrap();
        assert!(limiter.hit(key, &quota, T0).await.unwrap().allowed);
        shared.up.store(false, Ordering::Relaxed);
        // The local limiter starts empty: a full quota of its own.
        let mut allowed = 0;
        for _ in 0..5 {
            allowed += usize::from(limiter.hit(key, &quota, T0).await.unwrap().allowed);
        }
        assert_eq!(allowed, 3);
        assert!(!limiter.peek(key, &quota, T0).await.unwrap().allowed);
        let s = stats.snapshot();
        assert_eq!(
            (s.backend_errors, s.fallbacks, s.closed_refusals),
            (6, 6, 0)
        );
        shared.up.store(true, Ordering::Relaxed);
        // The shared state again: one spent before the outage.
        assert_eq!(limiter.hit(key, &quota, T0).await.unwrap().remaining, 1);
        assert_eq!(stats.snapshot().backend_errors, 6);
    }

    #[tokio::test]
    async fn fail_closed_refuses_with_a_short_retry() {
        let shared = switch();
        let stats = Arc::new(LimiterStats::default());
        let limiter = FailoverLimiter::new(shared.clone(), OnRedisError::FailClosed, stats.clone());
        let key = LimitKey::Source("192.0.2.1".parse().unwrap());
        let quota = Quota::new(100, 60).unwrap();
        shared.up.store(false, Ordering::Relaxed);
        let o = limiter.hit(key, &quota, T0).await.unwrap();
        assert!(!o.allowed);
        assert_eq!(o.retry_after_secs(), Some(1));
        assert_eq!((o.limit, o.remaining), (100, 0));
        assert!(!limiter.peek(key, &quota, T0).await.unwrap().allowed);
        assert_eq!(stats.snapshot().closed_refusals, 2);
        shared.up.store(true, Ordering::Relaxed);
        assert!(limiter.hit(key, &quota, T0).await.unwrap().allowed);
    }

    #[test]
    fn warnings_are_rate_limited() {
        let w = Warnings::new();
        let e = LimiterError("down".into());
        for _ in 0..1_000 {
            w.failed(&e, OnRedisError::FailOpen);
        }
        // The first warned (and took its slot); the other 999 wait for the next slot.
        assert_ne!(w.last_ms.load(Ordering::Relaxed), 0);
        assert_eq!(w.since_last.load(Ordering::Relaxed), 999);
    }
}
