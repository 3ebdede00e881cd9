//! [`RedisLimiter`]: GCRA state shared by every node, in Redis, exact across nodes.
//!
//! Each `hit` is one Lua script run (loaded once, called by its SHA with `EVALSHA`; a Redis
//! that lost its script cache answers `NOSCRIPT` and the script is loaded again), so the read,
//! the decision and the write of a key's state are one atomic step: no two nodes spend the same
//! unit. The script decides exactly as [`keyward_core::ratelimit::check`]: a request passes
//! when the stored theoretical arrival time is at most `now + τ`, and the new state is
//! `max(tat, now) + T`, capped at `i64::MAX`. The script returns the state it read; the
//! [`Outcome`] (remaining, reset, retry) is then computed by `check` itself from that state, so
//! the answer is the in-memory limiter's to the nanosecond.
//!
//! Lua numbers in Redis are doubles, exact only up to 2^53, and Unix nanoseconds are ~2^61:
//! the script therefore does its arithmetic on (seconds, nanoseconds) pairs, each well inside
//! 2^53. The state is stored as the decimal `i64` (readable with `redis-cli GET`).
//!
//! Keys are the configured prefix followed by the [`LimitKey`]'s `Display` (`tok:<uuid>`,
//! `ip:<address>`, …). Every write sets the key to expire when its state will have drained
//! (`tat − now`), plus a margin of [`EXPIRY_MARGIN_MS`]: a drained state means the same as no
//! state, so Redis holds only keys in use.
//!
//! Time is the caller's `now_ns` (the injected clock), not Redis's: nodes need NTP-synced
//! clocks. A skew of a few milliseconds barely matters for GCRA: the state is one instant, so
//! a node whose clock runs `d` ahead sees it drained `d` early and lets a request through at
//! most `d` before it is due (over a window, at most ⌈d / T⌉ extra: one, 5 ms early, for a
//! 150/min quota, T = 400 ms, and d = 5 ms); a node `d` behind lets one through up to `d`
//! late; the long-run rate is unchanged. The expiry margin covers the same skew between the
//! nodes and Redis's own clock.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script};
use async_trait::async_trait;
use keyward_core::ratelimit::{check, Outcome, Quota};

use super::{LimitKey, LimiterError, RateLimiter};

/// Added to every key's expiry, for clock skew between the nodes and Redis.
pub const EXPIRY_MARGIN_MS: u64 = 1_000;

const NANOS: i64 = 1_000_000_000;

/// The GCRA step. KEYS[1]: the key. ARGV: now; the highest state that still lets a request
/// pass (`now + τ`, capped at `i64::MAX`); the emission interval T — each as seconds and
/// nanoseconds (floor division, so the nanoseconds are 0..10⁹) —; the expiry margin in ms.
/// Returns `{state read or "", state written or ""}`; nothing is written when refused.
const GCRA_LUA: &str = r"
local G = 1000000000
local MAX_S, MAX_N = 9223372036, 854775807
local function parse(v)
  local neg = string.sub(v, 1, 1) == '-'
  local digits = neg and string.sub(v, 2) or v
  local len = string.len(digits)
  local s, n = 0, tonumber(digits)
  if len > 9 then
    s = tonumber(string.sub(digits, 1, len - 9))
    n = tonumber(string.sub(digits, len - 8))
  end
  if neg then
    if n > 0 then return -s - 1, G - n end
    return -s, 0
  end
  return s, n
end
local function format(s, n)
  if s >= 0 then
    if s == 0 then return string.format('%.0f', n) end
    return string.format('%.0f%09.0f', s, n)
  end
  local ms, mn = -s, n
  if mn > 0 then ms, mn = ms - 1, G - mn end
  if ms == 0 then return string.format('-%.0f', mn) end
  return string.format('-%.0f%09.0f', ms, mn)
end
local function after(as, an, bs, bn)
  return as > bs or (as == bs and an > bn)
end
local now_s, now_n = tonumber(ARGV[1]), tonumber(ARGV[2])
local lim_s, lim_n = tonumber(ARGV[3]), tonumber(ARGV[4])
local t_s, t_n = tonumber(ARGV[5]), tonumber(ARGV[6])
local old = redis.call('GET', KEYS[1])
local s, n = now_s, now_n
if old then
  local o_s, o_n = parse(old)
  if after(o_s, o_n, lim_s, lim_n) then
    return {old, ''}
  end
  if after(o_s, o_n, now_s, now_n) then s, n = o_s, o_n end
else
  old = ''
end
s, n = s + t_s, n + t_n
if n >= G then s, n = s + 1, n - G end
if after(s, n, MAX_S, MAX_N) then s, n = MAX_S, MAX_N end
local d_s, d_n = s - now_s, n - now_n
if d_n < 0 then d_s, d_n = d_s - 1, d_n + G end
local ttl = d_s * 1000 + math.ceil(d_n / 1000000) + tonumber(ARGV[7])
local new = format(s, n)
redis.call('SET', KEYS[1], new, 'PX', string.format('%.0f', ttl))
return {old, new}
";

/// Rate-limit state in Redis, shared by every node that names the same server and prefix.
/// Connects lazily and reconnects by itself (the `redis` crate's `ConnectionManager`); every
/// call is bounded by the configured timeout and fails with a [`LimiterError`] rather than
/// wait longer. See the module's documentation for the algorithm and clocks.
pub struct RedisLimiter {
    conn: ConnectionManager,
    script: Script,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection's Debug would show the URL, which may hold a password.
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Checks that `url` is a Redis URL this build can connect to; the error is the client's
/// reason, which never repeats the URL (it may hold a password).
pub fn check_url(url: &str) -> Result<(), String> {
    Client::open(url).map(drop).map_err(|e| url_reason(&e))
}

fn url_reason(e: &RedisError) -> String {
    // The client's messages are fixed texts ("Redis URL did not parse - InvalidClientConfig").
    e.to_string()
}

/// Why nothing accepts connections at `url`'s host and port (or socket), if nothing does
/// within 3 s: the one case in which a Redis test may skip (outside CI). The reason names the
/// address only, never the password.
pub async fn unreachable(url: &str) -> Option<String> {
    let client = match Client::open(url) {
        Ok(client) => client,
        Err(e) => return Some(format!("the Redis URL cannot be used: {}", url_reason(&e))),
    };
    enum Target {
        Unix(std::path::PathBuf),
        Tcp(String, u16),
    }
    let target = match client.get_connection_info().addr() {
        ::redis::ConnectionAddr::Unix(path) => Target::Unix(path.clone()),
        ::redis::ConnectionAddr::Tcp(host, port) => Target::Tcp(host.clone(), *port),
        _ => return Some("the Redis URL names an address this build cannot reach".into()),
    };
    let place = match &target {
        Target::Unix(path) => path.display().to_string(),
        Target::Tcp(host, port) => format!("{host}:{port}"),
    };
    let attempt = async {
        match &target {
            Target::Unix(path) => tokio::net::UnixStream::connect(path).await.map(drop),
            Target::Tcp(host, port) => tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map(drop),
        }
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("no connection to {place}: {e}")),
        Err(_) => Some(format!("no connection to {place} within 3 s")),
    }
}

impl RedisLimiter {
    /// A limiter on the Redis at `url`, naming its keys `key_prefix` + the limit key. Opens no
    /// connection yet (a Redis that is down at start-up delays nothing); the first call
    /// connects. Needs a Tokio runtime. Fails only on a URL that cannot be used.
    pub fn open(url: &str, key_prefix: &str, timeout: Duration) -> Result<Self, String> {
        let client = Client::open(url).map_err(|e| url_reason(&e))?;
        // One connection attempt per reconnect (no retry loop to wait in: the next call tries
        // again), each bounded like a command.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let conn =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| url_reason(&e))?;
        Ok(Self {
            conn,
            script: Script::new(GCRA_LUA),
            prefix: key_prefix.to_owned(),
            timeout,
        })
    }

    /// The Redis key of `key`.
    pub fn redis_key(&self, key: LimitKey) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Connects (if not connected) and loads the script: a start-up check and warm-up.
    pub async fn warm_up(&self) -> Result<(), LimiterError> {
        let mut conn = self.conn.clone();
        self.bounded(self.script.load_async(&mut conn))
            .await
            .map(drop)
    }

    /// Runs the script for `key` and returns the state it read and the state it wrote.
    async fn step(
        &self,
        key: LimitKey,
        quota: &Quota,
        now_ns: i64,
    ) -> Result<(Option<i64>, Option<i64>), LimiterError> {
        let t = i128::try_from(quota.emission_interval_ns()).unwrap_or(i128::MAX);
        // τ as `check` computes it; the cap of the pass threshold at i64::MAX means "always".
        let tau = t.saturating_mul(i128::from(quota.limit.max(1)) - 1);
        let limit = (i128::from(now_ns) + tau).min(i128::from(i64::MAX));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let t = i64::try_from(t).unwrap_or(i64::MAX);
        let (now_s, now_n) = split(now_ns);
        let (lim_s, lim_n) = split(limit);
        let (t_s, t_n) = split(t);
        let mut invocation = self.script.key(self.redis_key(key));
        invocation
            .arg(now_s)
            .arg(now_n)
            .arg(lim_s)
            .arg(lim_n)
            .arg(t_s)
            .arg(t_n)
            .arg(EXPIRY_MARGIN_MS);
        let mut conn = self.conn.clone();
        let (old, new): (String, String) = self.bounded(invocation.invoke_async(&mut conn)).await?;
        Ok((parse_state(&old)?, parse_state(&new)?))
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, LimiterError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(LimiterError(format!("redis: {e}"))),
            Err(_) => Err(LimiterError(format!(
                "redis: no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

/// `ns` as (seconds, nanoseconds 0..10⁹), each exact in a Lua double.
fn split(ns: i64) -> (i64, i64) {
    (ns.div_euclid(NANOS), ns.rem_euclid(NANOS))
}

/// A stored state; the empty string is none.
fn parse_state(raw: &str) -> Result<Option<i64>, LimiterError> {
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|_| LimiterError("redis: a rate-limit key holds no GCRA state".into()))
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn hit(
        &self,
        key: LimitKey,
        quota: &Quota,
        now_ns: i64,
    ) -> Result<Outcome, LimiterError> {
        let (old, new) = self.step(key, quota, now_ns).await?;
        let outcome = check(quota, old, now_ns);
        if outcome.new_tat != new {
            // Cannot happen unless the script and `check` drift apart: refuse to guess.
            return Err(LimiterError(
                "redis: the shared GCRA step disagrees with the local one".into(),
            ));
        }
        Ok(outcome)
    }

    async fn peek(
        &self,
        key: LimitKey,
        quota: &Quota,
        now_ns: i64,
    ) -> Result<Outcome, LimiterError> {
        let mut conn = self.conn.clone();
        let key = self.redis_key(key);
        let raw: Option<String> = self
            .bounded(::redis::cmd("GET").arg(key).query_async(&mut conn))
            .await?;
        let state = parse_state(raw.as_deref().unwrap_or(""))?;
        Ok(check(quota, state, now_ns))
    }
}

#[cfg(test)]
#[path = "redis_tests.rs"]
mod tests;
