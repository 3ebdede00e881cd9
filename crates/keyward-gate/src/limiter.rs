//! Step 7's state: the rate limiter behind a trait, so a shared (Redis) limiter for several
//! nodes can replace the in-memory one without touching the decision. The algorithm (GCRA)
//! is pure and lives in `keyward_core::ratelimit`; a limiter only keeps each key's state (its
//! theoretical arrival time) and applies the check atomically.
//!
//! Implementations: [`MemoryLimiter`] (one node), [`redis::RedisLimiter`] (shared by every
//! node), wrapped in [`failover::FailoverLimiter`] for when Redis cannot answer; [`build`]
//! makes the one `[ratelimit]` ([`RateLimitConfig`]) names.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;

use async_trait::async_trait;
use keyward_core::ratelimit::{check, Outcome, Quota};
use keyward_core::{TokenId, UserId};

pub mod config;
pub mod failover;
pub mod redis;

pub use config::{build, Limiter, OnRedisError, RateLimitConfig};
pub use failover::{LimiterStats, LimiterStatsSnapshot};

/// What a limit counts: one token's requests, one owner user's requests (all of its tokens
/// with a per-user budget), or one source's failed verifications. A plain value (no
/// allocation on the hot path); shared limiters name it with `Display` (`tok:<uuid>`,
/// `usr:<uuid>`, `ip:<address>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// A token's rate limit.
    Token(TokenId),
    /// The rate limit shared by an owner user's tokens whose limit is per user. Not
    /// [`LimitKey::Account`], the sign-in guard's count of one account's failures.
    User(UserId),
    /// The brute-force guard of a source address (an IPv6 /64; see [`LimitKey::source`]).
    Source(IpAddr),
    /// The brute-force guard of a source address as one verifier credential reports it.
    VerifierSource(TokenId, IpAddr),
    /// Failed dashboard sign-ins against one account, from anywhere.
    Account(UserId),
    /// Failed dashboard sign-ins against one account from one address (its /64).
    AccountSource(UserId, IpAddr),
    /// Failed dashboard sign-ins from one address (its /64), against any account.
    SignInSource(IpAddr),
}

impl LimitKey {
    /// The brute-force guard's key for `ip`: the address for IPv4, its /64 for IPv6, since one
    /// IPv6 client usually holds a whole /64 and could otherwise spread guesses over 2^64 keys.
    pub fn source(ip: IpAddr) -> Self {
        LimitKey::Source(guarded_prefix(ip))
    }

    /// The brute-force guard's key for `ip` as reported by the verifier credential `verifier`.
    pub fn verifier_source(verifier: TokenId, ip: IpAddr) -> Self {
        LimitKey::VerifierSource(verifier, guarded_prefix(ip))
    }

    /// The sign-in guard's key for failures against `user` from `ip`.
    pub fn account_source(user: UserId, ip: IpAddr) -> Self {
        LimitKey::AccountSource(user, guarded_prefix(ip))
    }

    /// The sign-in guard's key for failures from `ip`.
    pub fn sign_in_source(ip: IpAddr) -> Self {
        LimitKey::SignInSource(guarded_prefix(ip))
    }
}

/// The address for IPv4, the /64 for IPv6.
fn guarded_prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitKey::Token(id) => write!(f, "tok:{}", id.uuid().simple()),
            LimitKey::User(id) => write!(f, "usr:{}", id.uuid().simple()),
            LimitKey::Source(ip) => write!(f, "ip:{ip}"),
            LimitKey::VerifierSource(v, ip) => write!(f, "vip:{}:{ip}", v.uuid().simple()),
            LimitKey::Account(u) => write!(f, "acct:{}", u.uuid().simple()),
            LimitKey::AccountSource(u, ip) => write!(f, "acip:{}:{ip}", u.uuid().simple()),
            LimitKey::SignInSource(ip) => write!(f, "sip:{ip}"),
        }
    }
}

/// Why a limiter could not answer (a shared limiter's backend being down).
#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct LimiterError(pub String);

/// Keeps GCRA state per key.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `key` at `now_ns` (Unix nanoseconds) against `quota`.
    async fn hit(&self, key: LimitKey, quota: &Quota, now_ns: i64)
        -> Result<Outcome, LimiterError>;

    /// What a request would get, without counting it.
    async fn peek(
        &self,
        key: LimitKey,
        quota: &Quota,
        now_ns: i64,
    ) -> Result<Outcome, LimiterError>;

    /// [`RateLimiter::hit`] answered at once, by a limiter that needs no I/O to answer (its
    /// state in this process): the hot path then skips the async call, whose future
    /// `async_trait` allocates. `None` (the default): ask [`RateLimiter::hit`].
    fn hit_now(&self, _key: LimitKey, _quota: &Quota, _now_ns: i64) -> Option<Outcome> {
        None
    }

    /// [`RateLimiter::peek`] answered at once, like [`RateLimiter::hit_now`].
    fn peek_now(&self, _key: LimitKey, _quota: &Quota, _now_ns: i64) -> Option<Outcome> {
        None
    }
}

/// Counts a request with `limiter`: at once when it can answer so, else through its async
/// call.
pub async fn hit(
    limiter: &dyn RateLimiter,
    key: LimitKey,
    quota: &Quota,
    now_ns: i64,
) -> Result<Outcome, LimiterError> {
    match limiter.hit_now(key, quota, now_ns) {
        Some(o) => Ok(o),
        None => limiter.hit(key, quota, now_ns).await,
    }
}

/// What a request would get from `limiter`, like [`hit`] without counting it.
pub async fn peek(
    limiter: &dyn RateLimiter,
    key: LimitKey,
    quota: &Quota,
    now_ns: i64,
) -> Result<Outcome, LimiterError> {
    match limiter.peek_now(key, quota, now_ns) {
        Some(o) => Ok(o),
        None => limiter.peek(key, quota, now_ns).await,
    }
}

const SHARDS: usize = 16;
/// Above this many keys in a shard, keys whose state has fully drained are dropped.
const PRUNE_AT: usize = 50_000;

/// Per-process seeded and fast; keys are chosen by clients (their address), so the seed matters.
type Hasher = foldhash::quality::RandomState;
type Shard = Mutex<HashMap<LimitKey, i64, Hasher>>;

/// A limiter in this process's memory: exact for one node. Sharded mutexes make each check
/// atomic (no two requests spend the same unit) without one global lock.
pub struct MemoryLimiter {
    shards: Vec<Shard>,
    hasher: Hasher,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(Hasher::default())))
                .collect(),
            hasher: Hasher::default(),
        }
    }
}

impl MemoryLimiter {
    fn shard(&self, key: LimitKey) -> &Shard {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn hit(
        &self,
        key: LimitKey,
        quota: &Quota,
        now_ns: i64,
    ) -> Result<Outcome, LimiterError> {
        Ok(self.count(key, quota, now_ns))
    }

    async fn peek(
        &self,
        key: LimitKey,
        quota: &Quota,
        now_ns: i64,
    ) -> Result<Outcome, LimiterError> {
        Ok(self.look(key, quota, now_ns))
    }

    fn hit_now(&self, key: LimitKey, quota: &Quota, now_ns: i64) -> Option<Outcome> {
        Some(self.count(key, quota, now_ns))
    }

    fn peek_now(&self, key: LimitKey, quota: &Quota, now_ns: i64) -> Option<Outcome> {
        Some(self.look(key, quota, now_ns))
    }
}

impl MemoryLimiter {
    fn count(&self, key: LimitKey, quota: &Quota, now_ns: i64) -> Outcome {
        let mut map = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= PRUNE_AT && !map.contains_key(&key) {
            // A state at or before now is the same as no state: forget it.
            map.retain(|_, t| *t > now_ns);
        }
        match map.entry(key) {
            Entry::Occupied(mut state) => {
                let outcome = check(quota, Some(*state.get()), now_ns);
                if let Some(tat) = outcome.new_tat {
                    *state.get_mut() = tat;
                }
                outcome
            }
            Entry::Vacant(slot) => {
                let outcome = check(quota, None, now_ns);
                if let Some(tat) = outcome.new_tat {
                    slot.insert(tat);
                }
                outcome
            }
        }
    }

    fn look(&self, key: LimitKey, quota: &Quota, now_ns: i64) -> Outcome {
        let map = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        check(quota, map.get(&key).copied(), now_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_source_is_its_64() {
        let a = LimitKey::source("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = LimitKey::source("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = LimitKey::source("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let v4 = LimitKey::source("192.0.2.7".parse().unwrap());
        assert_eq!(v4, LimitKey::Source("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn a_users_budget_is_not_its_sign_in_guard() {
        let u = UserId::random(&mut rand_core::OsRng);
        assert_ne!(LimitKey::User(u), LimitKey::Account(u));
        let simple = u.uuid().simple().to_string();
        assert_eq!(LimitKey::User(u).to_string(), format!("usr:{simple}"));
        assert_eq!(LimitKey::Account(u).to_string(), format!("acct:{simple}"));
    }

    #[tokio::test]
    async fn exactly_the_quota_passes_then_it_refills() {
        let limiter = MemoryLimiter::default();
        let a = LimitKey::Token(TokenId::random(&mut rand_core::OsRng));
        let b = LimitKey::Source("192.0.2.1".parse().unwrap());
        let quota = Quota::new(150, 60).unwrap();
        let t0 = 1_700_000_000_000_000_000;
        let mut passed = 0;
        for _ in 0..400 {
            if limiter.hit(a, &quota, t0).await.unwrap().allowed {
                passed += 1;
            }
        }
        assert_eq!(passed, 150);
        // Another key is untouched; peeking spends nothing.
        assert!(limiter.peek(b, &quota, t0).await.unwrap().allowed);
        assert!(!limiter.peek(a, &quota, t0).await.unwrap().allowed);
        assert!(
            limiter
                .hit(a, &quota, t0 + 60_000_000_000)
                .await
                .unwrap()
                .allowed
        );
    }
}
