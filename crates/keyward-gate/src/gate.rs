//! The gate assembled: a store opened from options, and over it the cache, the limiter, the
//! verifier, the denial aggregator, the usage pipeline and the edge admission, with the usage
//! and denial tasks running, and the store's change feed followed. What an embedded front end
//! (the tower layer of `keyward-tower`) holds instead of a network hop to the server.
//!
//! The gate decides exactly as a server node does and writes to the same tables: usage
//! records, and security denials appended to the same audit chain (so it needs the same chain
//! key, found by the same rules as the server: [`crate::audit_key`]). Like another node, it
//! learns of changes made elsewhere (a revocation through the server) from PostgreSQL's change
//! feed within milliseconds ([`crate::follow`]); on SQLite, only when a cached token's
//! `cache.ttl_secs` runs out, so keep that short there.
//!
//! It owns nothing the server owns: it creates no workspace and no token. A store no server
//! has set up yet simply knows no token. Opening the store does run its migrations, as any
//! node does.
//!
//! Call [`Gate::shutdown`] before the process exits: it writes the usage records still queued
//! and the denials counted since the last flush.

use std::sync::{Arc, Mutex};

use keyward_core::ip::IpAllowlist;
use keyward_core::ratelimit::Quota;
use keyward_core::{Clock, TokenHasher};
use keyward_store::{SqliteSync, Store, StoreError, StoreOptions, UsageRecord};
use serde::{Deserialize, Serialize};

use crate::cache::{CacheConfig, TokenCache};
use crate::clock::SystemClock;
use crate::denials::{AuditConfig, DenialTasks, Denials};
use crate::edge::{Edge, EdgeConfig, EdgeRules};
use crate::follow::Follower;
use crate::limiter::{LimiterStats, RateLimitConfig, RateLimiter};
use crate::usage::{Usage, UsageConfig, UsageTasks};
use crate::verifier::{Policy, Verifier};

/// What the gate is built from; the names and defaults follow the server's configuration
/// (`[database]`, `[tokens] pepper`, `[policy]`, `[cache]`, `[usage]`, `[audit]`, `[edge]`,
/// `[ratelimit]`),
/// flattened but for the sections. Readable from TOML:
///
/// ```toml
/// database_url = "postgres://keyward@db/keyward"
/// trusted_proxies = ["10.0.0.0/8"]
/// [audit]
/// chain_key_file = "/etc/keyward/audit.key"
/// [cache]
/// ttl_secs = 5
/// [[edge.routes]]
/// route = "GET /orders/{id}"
/// permissions = ["orders:read"]
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateOptions {
    /// The server's store: `sqlite://keyward.db` (the default) or `postgres://…`.
    pub database_url: String,
    /// PostgreSQL schema; empty for the default. Must be the server's.
    pub schema: String,
    /// Pooled connections at most.
    pub max_connections: u32,
    /// SQLite: when a commit counts as done (`full` or `normal`).
    pub sqlite_synchronous: SqliteSync,
    /// The server's pepper (`[tokens] pepper`); empty for none. Never printed.
    pub pepper: String,
    /// The token cache; `ttl_secs` bounds how long a change made through the server takes to
    /// reach this process.
    pub cache: CacheConfig,
    /// The usage pipeline.
    pub usage: UsageConfig,
    /// The audit chain key (the server's) and the denial aggregation.
    pub audit: AuditConfig,
    /// The route table and how the credential is read.
    pub edge: EdgeConfig,
    /// Proxies in front of this service whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<String>,
    /// Internal networks, added to every workspace's own.
    pub internal_networks: Vec<String>,
    /// Failed verifications one source may cause per minute before it is refused; 0: off.
    pub failed_verifications_per_minute: u32,
    /// Where rate-limit state lives (the server's `[ratelimit]`): set the same Redis and
    /// `key_prefix` as the server's nodes to share their limits.
    pub ratelimit: RateLimitConfig,
}

impl Default for GateOptions {
    fn default() -> Self {
        Self {
            database_url: "sqlite://keyward.db".into(),
            schema: String::new(),
            max_connections: 8,
            sqlite_synchronous: SqliteSync::Full,
            pepper: String::new(),
            cache: CacheConfig::default(),
            usage: UsageConfig::default(),
            audit: AuditConfig::default(),
            edge: EdgeConfig::default(),
            trusted_proxies: Vec::new(),
            internal_networks: Vec::new(),
            failed_verifications_per_minute: 60,
            ratelimit: RateLimitConfig::default(),
        }
    }
}

impl std::fmt::Debug for GateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pepper = if self.pepper.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("GateOptions")
            .field("database_url", &"<not shown>")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("pepper", &pepper)
            .field("cache", &self.cache)
            .field("usage", &self.usage)
            .field("audit", &self.audit)
            .field("edge", &self.edge)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("internal_networks", &self.internal_networks)
            .field(
                "failed_verifications_per_minute",
                &self.failed_verifications_per_minute,
            )
            .field("ratelimit", &self.ratelimit)
            .finish()
    }
}

/// Why the gate could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GateOpenError {
    /// An option has a bad value; the message names it.
    #[error("keyward gate configuration: {0}")]
    Config(String),
    /// The store could not be opened or migrated.
    #[error("keyward gate storage: {0}")]
    Store(StoreError),
}

impl From<StoreError> for GateOpenError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Config(message) => GateOpenError::Config(format!("database: {message}")),
            other => GateOpenError::Store(other),
        }
    }
}

/// The network side of the hot path, checked: what `[policy]` (the server) or the flat keys of
/// [`GateOptions`] name. Shared so that both refuse the same values with the same words.
pub struct NetworkPolicy {
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: IpAllowlist,
    /// Internal networks of the whole deployment.
    pub internal_networks: IpAllowlist,
    /// The brute-force guard's quota; `None` when turned off (0).
    pub brute_force: Option<Quota>,
}

impl NetworkPolicy {
    /// Parses the three values; an error names the key, `prefix` (`policy.` or empty) first.
    pub fn parse(
        trusted_proxies: &[String],
        internal_networks: &[String],
        failed_verifications_per_minute: u32,
        prefix: &str,
    ) -> Result<Self, String> {
        let list = |items: &[String], key: &str| {
            let field = format!("{prefix}{key}");
            IpAllowlist::from_entries(items, &field).map_err(|e| format!("{field}: {}", e.message))
        };
        let brute_force =
            match failed_verifications_per_minute {
                0 => None,
                n => Some(Quota::new(n, 60).map_err(|e| {
                    format!("{prefix}failed_verifications_per_minute: {}", e.message)
                })?),
            };
        Ok(Self {
            trusted_proxies: list(trusted_proxies, "trusted_proxies")?,
            internal_networks: list(internal_networks, "internal_networks")?,
            brute_force,
        })
    }
}

/// Every option checked, before anything is opened.
struct Checked {
    trusted_proxies: IpAllowlist,
    internal_networks: IpAllowlist,
    brute_force: Option<Quota>,
    edge: EdgeRules,
}

impl Checked {
    fn from_options(o: &GateOptions) -> Result<Self, GateOpenError> {
        let bad = GateOpenError::Config;
        keyward_store::check_url(&o.database_url)?;
        let NetworkPolicy {
            trusted_proxies,
            internal_networks,
            brute_force,
        } = NetworkPolicy::parse(
            &o.trusted_proxies,
            &o.internal_networks,
            o.failed_verifications_per_minute,
            "",
        )
        .map_err(bad)?;
        o.audit.validate().map_err(bad)?;
        o.usage.validate().map_err(bad)?;
        o.cache.validate().map_err(bad)?;
        o.ratelimit.validate().map_err(bad)?;
        if o.max_connections == 0 {
            return Err(bad("max_connections must be at least 1".into()));
        }
        let edge = EdgeRules::from_config(&o.edge).map_err(bad)?;
        Ok(Self {
            trusted_proxies,
            internal_networks,
            brute_force,
            edge,
        })
    }
}

/// The hot path over one store: cache, verifier, denial aggregator, usage pipeline and the
/// edge admission, wired to each other. The server and [`Gate`] both build theirs here.
pub struct HotPath {
    /// The token cache.
    pub cache: Arc<TokenCache>,
    /// The verifier.
    pub verifier: Arc<Verifier>,
    /// The usage pipeline's handle.
    pub usage: Arc<Usage>,
    /// The denial aggregator.
    pub denials: Arc<Denials>,
    /// The admission of forward-auth, the gateway and the embedded layer.
    pub edge: Arc<Edge>,
    /// The task applying other nodes' changes to the cache (stops when dropped).
    pub follower: Follower,
}

/// What [`HotPath::assemble`] needs besides the store, checked.
pub struct HotPathSettings<'a> {
    /// `[cache]`.
    pub cache: &'a CacheConfig,
    /// `[audit]` (the denial aggregation's bounds).
    pub audit: &'a AuditConfig,
    /// `[usage]`.
    pub usage: &'a UsageConfig,
    /// Internal networks of the whole deployment.
    pub internal_networks: IpAllowlist,
    /// The brute-force guard's quota, if on.
    pub brute_force: Option<Quota>,
    /// Rate-limit state (shared with whatever else limits, e.g. the server's sign-in guard).
    pub limiter: Arc<dyn RateLimiter>,
    /// The route table and credential rules.
    pub edge: EdgeRules,
}

impl HotPath {
    /// Wires the hot path over `store` and starts following its change feed (so it needs a
    /// Tokio runtime); also returns the usage channel's receiving end, for the owner to start
    /// the writer with ([`UsageTasks::start`]) when it starts serving.
    pub fn assemble(
        store: Arc<dyn Store>,
        hasher: TokenHasher,
        clock: Arc<dyn Clock>,
        s: HotPathSettings<'_>,
    ) -> (Self, tokio::sync::mpsc::Receiver<UsageRecord>) {
        let cache = Arc::new(TokenCache::new(s.cache));
        let store_for_feed = store.clone();
        let denials = Arc::new(Denials::new(s.audit, store.clone(), clock.clone()));
        let verifier = Arc::new(Verifier::new(
            store.clone(),
            cache.clone(),
            hasher,
            clock.clone(),
            Policy {
                internal_networks: s.internal_networks,
                brute_force: s.brute_force,
                limiter: s.limiter,
            },
            denials.clone(),
        ));
        let (usage, usage_rx) = Usage::new(s.usage, store, clock.clone());
        let edge = Arc::new(Edge::new(verifier.clone(), usage.clone(), clock, s.edge));
        let follower = Follower::start(store_for_feed, cache.clone());
        let hot = Self {
            cache,
            verifier,
            usage,
            denials,
            edge,
            follower,
        };
        (hot, usage_rx)
    }
}

struct Tasks {
    usage: UsageTasks,
    denials: DenialTasks,
}

/// The gate: an [`Edge`] over a store, with its background tasks. Share it behind an `Arc`.
pub struct Gate {
    store: Arc<dyn Store>,
    cache: Arc<TokenCache>,
    verifier: Arc<Verifier>,
    usage: Arc<Usage>,
    denials: Arc<Denials>,
    edge: Arc<Edge>,
    trusted_proxies: IpAllowlist,
    follower: Follower,
    limiter_stats: Arc<LimiterStats>,
    tasks: Mutex<Option<Tasks>>,
}

impl Gate {
    /// Checks `options`, opens the store (running its migrations), builds the gate with the
    /// system clock and starts the usage writer, the usage maintenance and the denial flush.
    /// Needs a Tokio runtime.
    pub async fn open(options: &GateOptions) -> Result<Gate, GateOpenError> {
        Self::open_with_clock(options, Arc::new(SystemClock)).await
    }

    /// [`Gate::open`] with an injected clock.
    pub async fn open_with_clock(
        options: &GateOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Gate, GateOpenError> {
        let checked = Checked::from_options(options)?;
        let (chain_key, _) = crate::audit_key::load(&options.audit, &options.database_url)
            .map_err(GateOpenError::Config)?;
        let store = keyward_store::open(&StoreOptions {
            url: options.database_url.clone(),
            schema: Some(options.schema.clone()).filter(|s| !s.is_empty()),
            max_connections: options.max_connections,
            chain_key,
            sqlite_synchronous: options.sqlite_synchronous,
        })
        .await?;
        if store.count_workspaces().await? == 0 {
            tracing::warn!(
                "the keyward store has no workspace yet: every token is unknown until a \
                 keyward server has set it up (is database_url the server's?)"
            );
        }
        let pepper = Some(options.pepper.as_bytes().to_vec()).filter(|p| !p.is_empty());
        let limiter = crate::limiter::build(&options.ratelimit).map_err(GateOpenError::Config)?;
        let (hot, usage_rx) = HotPath::assemble(
            store.clone(),
            TokenHasher::new(pepper),
            clock,
            HotPathSettings {
                cache: &options.cache,
                audit: &options.audit,
                usage: &options.usage,
                internal_networks: checked.internal_networks,
                brute_force: checked.brute_force,
                limiter: limiter.limiter,
                edge: checked.edge,
            },
        );
        let HotPath {
            cache,
            verifier,
            usage,
            denials,
            edge,
            follower,
        } = hot;
        let tasks = Tasks {
            usage: UsageTasks::start(usage.clone(), usage_rx),
            denials: DenialTasks::start(denials.clone()),
        };
        Ok(Gate {
            store,
            cache,
            verifier,
            usage,
            denials,
            edge,
            trusted_proxies: checked.trusted_proxies,
            follower,
            limiter_stats: limiter.stats,
            tasks: Mutex::new(Some(tasks)),
        })
    }

    /// The admission.
    pub fn edge(&self) -> &Arc<Edge> {
        &self.edge
    }

    /// The proxies whose forwarding headers are believed (for [`crate::client_ip::client_ip`]).
    pub fn trusted_proxies(&self) -> &IpAllowlist {
        &self.trusted_proxies
    }

    /// The token cache (to invalidate entries on an event from the server, or to look).
    pub fn cache(&self) -> &Arc<TokenCache> {
        &self.cache
    }

    /// The change feed's follower (its counters).
    pub fn follower(&self) -> &Follower {
        &self.follower
    }

    /// A registry of this gate's metrics (decisions, latency, cache, change feed, circuit,
    /// usage), for the embedding service to encode with `prometheus_client`'s text encoder or
    /// to take into its own registry's figures.
    pub fn metrics_registry(&self) -> prometheus_client::registry::Registry {
        crate::metrics::HotPathCollector {
            cache: self.cache.clone(),
            feed: self.follower.stats().clone(),
            store: self.store.clone(),
            usage: self.usage.clone(),
            limiter: self.limiter_stats.clone(),
        }
        .registry(self.verifier.metrics())
    }

    /// The verifier.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// The usage pipeline (its counters).
    pub fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    /// The denial aggregator.
    pub fn denials(&self) -> &Arc<Denials> {
        &self.denials
    }

    /// The rate limiter's backend errors and fallbacks (zero with the memory backend).
    pub fn limiter_stats(&self) -> &Arc<LimiterStats> {
        &self.limiter_stats
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stops the background tasks: the denials counted are written, then the usage records
    /// still queued. Takes `&self` so it can be called through the `Arc` the layers share;
    /// a second call does nothing. Usage recorded afterwards is dropped (and counted).
    pub async fn shutdown(&self) {
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tasks) = tasks {
            tasks.denials.shutdown().await;
            tasks.usage.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_deserialise_with_the_server_defaults() {
        let o: GateOptions = serde_json::from_value(serde_json::json!({
            "database_url": "sqlite://x.db",
            "cache": {"ttl_secs": 1},
            "edge": {"routes": [{"route": "GET /a", "permissions": ["a:read"]}]}
        }))
        .unwrap();
        assert_eq!(o.cache.ttl_secs, 1);
        assert_eq!(o.failed_verifications_per_minute, 60);
        assert_eq!(o.usage, UsageConfig::default());
        assert!(Checked::from_options(&o).is_ok());
    }

    #[test]
    fn bad_options_name_their_key() {
        let message = |o: GateOptions| match Checked::from_options(&o) {
            Err(e) => e.to_string(),
            Ok(_) => String::from("accepted"),
        };
        let proxies = GateOptions {
            trusted_proxies: vec!["not an address".into()],
            ..GateOptions::default()
        };
        assert!(message(proxies).contains("trusted_proxies"));
        let ttl = GateOptions {
            cache: CacheConfig {
                ttl_secs: 100_000,
                ..CacheConfig::default()
            },
            ..GateOptions::default()
        };
        assert!(message(ttl).contains("cache.ttl_secs"));
        let url = GateOptions {
            database_url: "mysql://x".into(),
            ..GateOptions::default()
        };
        assert!(message(url).starts_with("keyward gate configuration: database"));
        let redis = GateOptions {
            ratelimit: RateLimitConfig {
                backend: crate::limiter::config::Backend::Redis,
                ..RateLimitConfig::default()
            },
            ..GateOptions::default()
        };
        assert!(message(redis).contains("ratelimit.redis_url"));
    }

    #[test]
    fn the_pepper_is_not_printed() {
        let o = GateOptions {
            pepper: "s3cret-pepper".into(),
            ..GateOptions::default()
        };
        assert!(!format!("{o:?}").contains("s3cret"));
    }
}
