//! The verification cache: a token's compiled form, keyed by secret hash, so a cached token is
//! verified without storage I/O; and a bounded negative cache of unknown hashes.
//!
//! Every change that can affect a decision invalidates the entries it touches (by token, owner,
//! role or workspace): this node's own changes at once, other nodes' when their announcement
//! arrives through the store's change feed ([`crate::follow`]). Entries are indexed by each of
//! these ids, so an invalidation touches only the entries it drops, and the map is split in
//! shards by hash, so one shard's write lock (an insert, an invalidation's share of it) does
//! not stall lookups in the others ([`shard`]). Scoped sequence numbers close the race between
//! a slow-path load and a concurrent change: a load is not cached if an invalidation that
//! concerns its token happened after it started ([`scope`]); other tenants' changes do not
//! discard it. The TTL is the safety net.
//!
//! An entry past its TTL is not forgotten at once: for `stale_if_error_secs` more it can still
//! be served ([`Lookup::Stale`]) when the store cannot be reached to reload it, so cached
//! tokens keep verifying through a database outage. An invalidated entry is gone, never
//! stale: a revocation received before an outage holds through it. When the change feed
//! resumes after a gap, [`TokenCache::expire_all`] makes every entry unconfirmed (stale).

mod scope;
mod shard;
mod share;
mod token;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard};
use std::time::{Duration, Instant};

use keyward_core::{CompiledToken, RoleId, TokenHash, TokenId, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};

use scope::{Scope, Scopes};
use shard::{Entry, Shard};
pub use token::CachedToken;

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
    shards: Box<[RwLock<Shard>]>,
    /// Entries in all shards.
    count: AtomicUsize,
    capacity: usize,
    unknown: Mutex<HashMap<TokenHash, Instant>>,
    scopes: Scopes,
    shared: share::Shared,
    /// Entries of an older generation are unconfirmed ([`TokenCache::expire_all`]).
    generation: AtomicU64,
    ttl: Duration,
    stale_for: Duration,
    unknown_ttl: Duration,
    unknown_capacity: usize,
    stats: CacheStats,
}

/// Most shards; a small cache has fewer, so that each holds at least [`MIN_PER_SHARD`]
/// entries. The capacity is the whole cache's: a full cache evicts the oldest entry of the
/// shard it inserts into (with uniform hashes, close to the oldest of all).
const MAX_SHARDS: usize = 16;
const MIN_PER_SHARD: usize = 4_096;

impl TokenCache {
    /// An empty cache.
    pub fn new(config: &CacheConfig) -> Self {
        let capacity = config.capacity.clamp(1, shard::MAX_CAPACITY);
        let shards = (capacity / MIN_PER_SHARD)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two()
            .min(MAX_SHARDS);
        Self {
            shards: (0..shards).map(|_| RwLock::new(Shard::new())).collect(),
            count: AtomicUsize::new(0),
            capacity,
            unknown: Mutex::new(HashMap::new()),
            scopes: Scopes::new(),
            shared: share::Shared::default(),
            generation: AtomicU64::new(0),
            ttl: Duration::from_secs(config.ttl_secs),
            stale_for: Duration::from_secs(config.ttl_secs + config.stale_if_error_secs),
            unknown_ttl: Duration::from_secs(config.negative_ttl_secs),
            unknown_capacity: config.negative_capacity,
            stats: CacheStats::default(),
        }
    }

    /// The shard of `hash` (its last byte: a secret's hash is uniform).
    fn shard(&self, hash: &TokenHash) -> &RwLock<Shard> {
        &self.shards[hash.0[31] as usize & (self.shards.len() - 1)]
    }

    /// Looks `hash` up.
    pub fn get(&self, hash: &TokenHash) -> Lookup {
        let now = Instant::now();
        {
            let shard = self.shard(hash).read().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = shard.get(hash) {
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

    /// The cached form of a freshly compiled token, its role's parts shared with the role's
    /// other cached tokens ([`share`]).
    pub fn cached(&self, compiled: CompiledToken) -> Result<Arc<CachedToken>, crate::GateError> {
        Ok(Arc::new(CachedToken::new(self.shared.share(compiled))?))
    }

    /// The epoch to pass to [`TokenCache::insert`]; read it before loading from storage.
    pub fn epoch(&self) -> u64 {
        self.scopes.now()
    }

    /// Caches a freshly loaded token, unless an invalidation that concerns it (its token,
    /// owner, role or workspace, or everything) happened since `epoch`.
    pub fn insert(&self, hash: TokenHash, token: Arc<CachedToken>, epoch: u64) {
        let mut shard = self.shard(&hash).write().unwrap_or_else(|p| p.into_inner());
        if self.scopes.changed_since(&token, epoch) {
            return;
        }
        let entry = Entry {
            token,
            loaded: Instant::now(),
            generation: self.generation.load(Ordering::Acquire),
        };
        let replaced = shard.insert(hash, entry);
        let mut count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if replaced > 0 {
            count = self.count.fetch_sub(replaced, Ordering::Relaxed) - replaced;
        }
        let mut evicted = 0;
        while count > self.capacity && shard.evict_oldest() {
            count = self.count.fetch_sub(1, Ordering::Relaxed) - 1;
            evicted += 1;
        }
        drop(shard);
        if evicted > 0 {
            self.stats.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
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
        let removed = self
            .shard(hash)
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
        if removed.is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Makes every entry unconfirmed: each is reloaded on its next use, and served meanwhile
    /// only if the store cannot be reached. For when changes may have been missed (the
    /// change feed resumed after a gap).
    pub fn expire_all(&self) {
        // Every shard held, so no insert is between its check and its generation read.
        let _all: Vec<RwLockWriteGuard<'_, Shard>> = self
            .shards
            .iter()
            .map(|s| s.write().unwrap_or_else(|p| p.into_inner()))
            .collect();
        self.scopes.invalidate_all();
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
        self.scopes.invalidate(Scope::Token, id);
        self.invalidate(|shard, out| shard.drop_token(id, out));
    }

    /// Drops the entries of every token a user owns.
    pub fn invalidate_user(&self, id: UserId) {
        self.scopes.invalidate(Scope::Owner, id);
        self.invalidate(|shard, out| shard.drop_owner(id, out));
    }

    /// Drops the entries of every token acting with a role.
    pub fn invalidate_role(&self, id: RoleId) {
        self.scopes.invalidate(Scope::Role, id);
        self.invalidate(|shard, out| shard.drop_role(id, out));
    }

    /// Drops every entry of a workspace.
    pub fn invalidate_workspace(&self, id: WorkspaceId) {
        self.scopes.invalidate(Scope::Workspace, id);
        self.invalidate(|shard, out| shard.drop_workspace(id, out));
    }

    /// What the cache has done.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// Number of cached tokens (for metrics and tests).
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `take` on each shard in turn (after the scope was stamped), freeing what it
    /// dropped once the shard's lock is released.
    fn invalidate(&self, take: impl Fn(&mut Shard, &mut Vec<Entry>)) {
        let mut dropped = Vec::new();
        let mut count = 0;
        for shard in self.shards.iter() {
            take(
                &mut shard.write().unwrap_or_else(|p| p.into_inner()),
                &mut dropped,
            );
            self.count.fetch_sub(dropped.len(), Ordering::Relaxed);
            count += dropped.len() as u64;
            dropped.clear();
        }
        self.stats.invalidated.fetch_add(count, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
