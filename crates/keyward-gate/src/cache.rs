//! The verification cache: a token's compiled form, keyed by secret hash, so a cached token is
//! verified without storage I/O; and a bounded negative cache of unknown hashes.
//!
//! Every change that can affect a decision invalidates the entries it touches (by token, owner,
//! role or workspace): this node's own changes at once, other nodes' when their announcement
//! arrives through the store's change feed ([`crate::follow`]). An epoch counter closes the
//! race between a slow-path load and a concurrent change: a load that started before an
//! invalidation is not inserted. The TTL is the safety net.
//!
//! An entry past its TTL is not forgotten at once: for `stale_if_error_secs` more it can still
//! be served ([`Lookup::Stale`]) when the store cannot be reached to reload it, so cached
//! tokens keep verifying through a database outage. An invalidated entry is gone, never
//! stale: a revocation received before an outage holds through it. When the change feed
//! resumes after a gap, [`TokenCache::expire_all`] makes every entry unconfirmed (stale).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderValue;
use keyward_core::ratelimit::Quota;
use keyward_core::{CompiledToken, RoleId, TokenHash, TokenId, UserId, WorkspaceId};

use serde::{Deserialize, Serialize};

/// Verification cache settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Seconds a verified token's compiled form is trusted before it is reloaded; the safety
    /// net for changes made by other nodes.
    pub ttl_secs: u64,
    /// Compiled tokens kept at most.
    pub capacity: usize,
    /// Seconds an unknown secret is remembered as unknown.
    pub negative_ttl_secs: u64,
    /// Unknown secrets remembered at most.
    pub negative_capacity: usize,
    /// Seconds past its TTL a cached token is still served while the store cannot be reached
    /// to reload it (stale-if-error); 0 to refuse (503) instead.
    pub stale_if_error_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 10,
            capacity: 100_000,
            negative_ttl_secs: 10,
            negative_capacity: 10_000,
            stale_if_error_secs: 3_600,
        }
    }
}

/// The longest TTL accepted, in seconds (a day): no later time computation can overflow.
const MAX_TTL_SECS: u64 = 86_400;

impl CacheConfig {
    /// Refuses TTLs over a day, naming the key (`cache.ttl_secs`).
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("cache.ttl_secs", self.ttl_secs),
            ("cache.negative_ttl_secs", self.negative_ttl_secs),
            ("cache.stale_if_error_secs", self.stale_if_error_secs),
        ] {
            if value > MAX_TTL_SECS {
                return Err(format!("{key} must be at most {MAX_TTL_SECS}"));
            }
        }
        Ok(())
    }
}

/// A compiled token as cached: the decision's input, and the `VALID` answer of the verify API
/// serialised once (but for its closing brace, after which the per-request rate-limit state
/// goes), since nothing else in it changes until the entry is invalidated.
#[derive(Debug)]
pub struct CachedToken {
    /// What the decision reads.
    pub compiled: CompiledToken,
    /// The JSON body of a `VALID` verify answer for this token, without the final `}`.
    pub valid_prefix: Bytes,
    /// The token's rate limit (step 7).
    pub quota: Quota,
    /// Its `RateLimit-Policy` header value, naming its budget ("token" or "user").
    pub limit_policy: HeaderValue,
    /// The principal headers the edge sends upstream, built on first use (then each request
    /// clones reference-counted values instead of formatting ids and JSON again).
    pub edge_headers: std::sync::OnceLock<Vec<(http::HeaderName, HeaderValue)>>,
}

impl CachedToken {
    /// The cached form of a freshly compiled token: its quota, policy header and `VALID`
    /// answer made once.
    pub fn new(compiled: CompiledToken) -> Result<Self, crate::GateError> {
        let quota =
            Quota::new(compiled.rate_limit_per_minute, 60).map_err(crate::GateError::Invalid)?;
        let budget = match compiled.rate_limit_per {
            keyward_core::RateLimitPer::Token => crate::headers::Policy::Token,
            keyward_core::RateLimitPer::User => crate::headers::Policy::User,
        };
        Ok(Self {
            valid_prefix: valid_prefix(&compiled),
            limit_policy: crate::headers::policy_value(budget, quota.limit),
            quota,
            compiled,
            edge_headers: std::sync::OnceLock::new(),
        })
    }
}

/// The `VALID` answer serialised once, without its closing brace: the per-request rate-limit
/// state is appended to it.
fn valid_prefix(token: &CompiledToken) -> Bytes {
    // Serialising plain data cannot fail; an empty body would only ever show up as a 200 with
    // nothing in it, which the client reports as an error.
    let response = crate::verifier::response(keyward_core::decision::Code::Valid, Some(token));
    let mut body = serde_json::to_vec(&response).unwrap_or_default();
    body.pop();
    Bytes::from(body)
}

impl std::ops::Deref for CachedToken {
    type Target = CompiledToken;
    fn deref(&self) -> &CompiledToken {
        &self.compiled
    }
}

/// What the cache knows about a hash.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The compiled token.
    Hit(Arc<CachedToken>),
    /// The compiled token, past its TTL (or unconfirmed since the change feed had a gap):
    /// reload it, and serve this only if the store cannot be reached.
    Stale(Arc<CachedToken>),
    /// Recently seen as unknown.
    Unknown,
    /// Not cached.
    Miss,
}

struct Entry {
    token: Arc<CachedToken>,
    loaded: Instant,
    generation: u64,
}

/// What the cache has done, for metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Lookups answered with a live entry.
    pub hits: AtomicU64,
    /// Lookups of a hash known to be unknown.
    pub unknown_hits: AtomicU64,
    /// Lookups answered with an entry past its TTL or unconfirmed.
    pub stale: AtomicU64,
    /// Lookups that found nothing.
    pub misses: AtomicU64,
    /// Entries dropped to make room.
    pub evictions: AtomicU64,
    /// Entries dropped by invalidations.
    pub invalidated: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The cache. Cheap to share behind an `Arc`.
pub struct TokenCache {
    entries: RwLock<HashMap<TokenHash, Entry>>,
    unknown: Mutex<HashMap<TokenHash, Instant>>,
    epoch: AtomicU64,
    /// Entries of an older generation are unconfirmed ([`TokenCache::expire_all`]).
    generation: AtomicU64,
    ttl: Duration,
    stale_for: Duration,
    capacity: usize,
    unknown_ttl: Duration,
    unknown_capacity: usize,
    stats: CacheStats,
}

impl TokenCache {
    /// An empty cache.
    pub fn new(config: &CacheConfig) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            ttl: Duration::from_secs(config.ttl_secs),
            stale_for: Duration::from_secs(config.ttl_secs + config.stale_if_error_secs),
            capacity: config.capacity.max(1),
            unknown_ttl: Duration::from_secs(config.negative_ttl_secs),
            unknown_capacity: config.negative_capacity,
            stats: CacheStats::default(),
        }
    }

    /// Looks `hash` up.
    pub fn get(&self, hash: &TokenHash) -> Lookup {
        let now = Instant::now();
        {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = entries.get(hash) {
                let age = now.duration_since(e.loaded);
                if age < self.ttl && e.generation == self.generation.load(Ordering::Acquire) {
                    bump(&self.stats.hits);
                    return Lookup::Hit(e.token.clone());
                }
                if age < self.stale_for {
                    bump(&self.stats.stale);
                    return Lookup::Stale(e.token.clone());
                }
            }
        }
        let unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        match unknown.get(hash) {
            Some(seen) if now.duration_since(*seen) < self.unknown_ttl => {
                bump(&self.stats.unknown_hits);
                Lookup::Unknown
            }
            _ => {
                bump(&self.stats.misses);
                Lookup::Miss
            }
        }
    }

    /// The epoch to pass to [`TokenCache::insert`]; read it before loading from storage.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches a freshly loaded token, unless an invalidation happened since `epoch`.
    pub fn insert(&self, hash: TokenHash, token: Arc<CachedToken>, epoch: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= self.capacity && !entries.contains_key(&hash) {
            let now = Instant::now();
            let before = entries.len();
            // Full: entries past their TTL go first (stale ones are a fallback only).
            entries.retain(|_, e| now.duration_since(e.loaded) < self.ttl);
            if entries.len() >= self.capacity {
                // Still full of live entries: drop an arbitrary one (HashMap order is random).
                if let Some(victim) = entries.keys().next().copied() {
                    entries.remove(&victim);
                }
            }
            let evicted = (before - entries.len()) as u64;
            self.stats.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
        entries.insert(
            hash,
            Entry {
                token,
                loaded: Instant::now(),
                generation: self.generation.load(Ordering::Acquire),
            },
        );
    }

    /// Remembers `hash` as unknown.
    pub fn insert_unknown(&self, hash: TokenHash) {
        if self.unknown_capacity == 0 {
            return;
        }
        let now = Instant::now();
        let mut unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        if unknown.len() >= self.unknown_capacity {
            unknown.retain(|_, seen| now.duration_since(*seen) < self.unknown_ttl);
            if unknown.len() >= self.unknown_capacity {
                if let Some(victim) = unknown.keys().next().copied() {
                    unknown.remove(&victim);
                }
            }
        }
        unknown.insert(hash, now);
    }

    /// Forgets that `hash` was unknown (a token with it now exists).
    pub fn forget_unknown(&self, hash: &TokenHash) {
        self.unknown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }

    /// Forgets the entry of `hash` (its token is gone).
    pub fn remove(&self, hash: &TokenHash) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }

    /// Makes every entry unconfirmed: each is reloaded on its next use, and served meanwhile
    /// only if the store cannot be reached. For when changes may have been missed (the
    /// change feed resumed after a gap).
    pub fn expire_all(&self) {
        let _entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops the entries one change affects.
    pub fn apply(&self, change: keyward_store::feed::Change) {
        use keyward_store::feed::Change;
        match change {
            Change::Token(id) => self.invalidate_token(id),
            Change::User(id) => self.invalidate_user(id),
            Change::Role(id) => self.invalidate_role(id),
            Change::Workspace(id) => self.invalidate_workspace(id),
        }
    }

    /// Drops the entries of one token.
    pub fn invalidate_token(&self, id: TokenId) {
        self.invalidate(|t| t.token_id == id);
    }

    /// Drops the entries of every token a user owns.
    pub fn invalidate_user(&self, id: UserId) {
        self.invalidate(|t| t.owner_id == id);
    }

    /// Drops the entries of every token acting with a role.
    pub fn invalidate_role(&self, id: RoleId) {
        self.invalidate(|t| t.role.as_ref().is_some_and(|r| r.id == id));
    }

    /// Drops every entry of a workspace.
    pub fn invalidate_workspace(&self, id: WorkspaceId) {
        self.invalidate(|t| t.workspace_id == id);
    }

    /// What the cache has done.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// Number of cached tokens (for metrics and tests).
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn invalidate(&self, matches: impl Fn(&CompiledToken) -> bool) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let before = entries.len();
        entries.retain(|_, e| !matches(&e.token));
        let dropped = (before - entries.len()) as u64;
        self.stats.invalidated.fetch_add(dropped, Ordering::Relaxed);
    }
}
