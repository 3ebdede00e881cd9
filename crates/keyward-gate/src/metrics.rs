//! The hot path's metrics, in the Prometheus/OpenMetrics model of `prometheus-client`:
//! decisions by code and their latency, recorded as they happen ([`GateMetrics`]); and the
//! counters the cache, the change feed, the store's circuit, the usage pipeline and the
//! limiter keep anyway, read at each scrape ([`HotPathCollector`]) rather than counted twice.
//!
//! [`HotPathCollector::registry`] builds the registry a front end encodes (the server's
//! `/metrics`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyward_core::decision::Code;
use keyward_store::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::cache::TokenCache;
use crate::follow::FeedStats;
use crate::limiter::LimiterStats;
use crate::usage::Usage;

/// The label of a decision.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

/// Counted as decisions are made. Recording is an atomic add per decision and one histogram
/// observation; the per-code counters are looked up once, here, not per request.
#[derive(Debug)]
pub struct GateMetrics {
    decisions: Family<CodeLabel, Counter>,
    by_code: Vec<Counter>,
    undecided: Counter,
    stale_served: Counter,
    latency: Histogram,
}

impl Default for GateMetrics {
    fn default() -> Self {
        let decisions = Family::<CodeLabel, Counter>::default();
        let by_code = Code::ALL
            .iter()
            .map(|c| {
                decisions
                    .get_or_create(&CodeLabel { code: c.as_str() })
                    .clone()
            })
            .collect();
        Self {
            decisions,
            by_code,
            undecided: Counter::default(),
            stale_served: Counter::default(),
            // 25 µs … ~100 ms.
            latency: Histogram::new(exponential_buckets(0.000_025, 2.0, 13)),
        }
    }
}

impl GateMetrics {
    /// A decision was made in `took`.
    pub fn decided(&self, code: Code, took: Duration) {
        if let Some(c) = Code::ALL.iter().position(|c| *c == code) {
            self.by_code[c].inc();
        }
        self.latency.observe(took.as_secs_f64());
    }

    /// No decision could be made (the store or the limiter could not answer).
    pub fn undecided(&self) {
        self.undecided.inc();
    }

    /// A cached token past its TTL was served because the store could not be reached.
    pub fn stale_served(&self) {
        self.stale_served.inc();
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "decisions",
            "Verifications decided, by code (verify API, forward-auth, gateway, embedded layer).",
            self.decisions.clone(),
        );
        r.register(
            "verify_duration_seconds",
            "Time to decide one verification, from the secret to the decision.",
            self.latency.clone(),
        );
        r.register(
            "verify_undecided",
            "Verifications that could not be decided: the store or the limiter could not answer (503).",
            self.undecided.clone(),
        );
        r.register(
            "cache_stale_served",
            "Cached tokens past their TTL served because the store could not be reached (stale-if-error).",
            self.stale_served.clone(),
        );
    }
}

/// A counter read elsewhere, with its name and help.
type Read = (&'static str, &'static str, u64);

/// Reads the hot path's own counters at each scrape.
pub struct HotPathCollector {
    /// The token cache.
    pub cache: Arc<TokenCache>,
    /// The change feed's follower.
    pub feed: Arc<FeedStats>,
    /// The store (its circuit).
    pub store: Arc<dyn Store>,
    /// The usage pipeline.
    pub usage: Arc<Usage>,
    /// The rate limiter's backend (Redis) errors and fallbacks.
    pub limiter: Arc<LimiterStats>,
}

impl fmt::Debug for HotPathCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HotPathCollector").finish_non_exhaustive()
    }
}

impl HotPathCollector {
    /// A registry (every name prefixed `keyward_`) holding `metrics` and this collector.
    pub fn registry(self, metrics: &GateMetrics) -> Registry {
        let mut r = Registry::with_prefix("keyward");
        metrics.register(&mut r);
        r.register_collector(Box::new(self));
        r
    }
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn counter(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn gauge_f(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64) -> fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for HotPathCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let c = self.cache.stats();
        let reads: [Read; 6] = [
            ("cache_hits", "Lookups answered by a live cached token.", load(&c.hits)),
            ("cache_misses", "Lookups that found nothing cached (loaded from the store).", load(&c.misses)),
            ("cache_unknown_hits", "Lookups of a secret remembered as unknown.", load(&c.unknown_hits)),
            ("cache_stale", "Lookups of a token past its TTL or unconfirmed (reloaded, or served while the store is down).", load(&c.stale)),
            ("cache_evictions", "Cached tokens dropped to make room.", load(&c.evictions)),
            ("cache_invalidated", "Cached tokens dropped because something they depend on changed.", load(&c.invalidated)),
        ];
        for (name, help, v) in reads {
            counter(&mut e, name, help, v)?;
        }
        gauge(
            &mut e,
            "cache_entries",
            "Tokens cached now.",
            self.cache.len() as i64,
        )?;

        let f = &self.feed;
        counter(
            &mut e,
            "invalidations_received",
            "Changes announced by the store's change feed and applied to the cache.",
            load(&f.received),
        )?;
        counter(
            &mut e,
            "feed_resumes",
            "Times the change feed (re)connected; each makes every cached token unconfirmed.",
            load(&f.resumed),
        )?;
        counter(
            &mut e,
            "feed_errors",
            "Errors reading the change feed.",
            load(&f.errors),
        )?;
        gauge(
            &mut e,
            "feed_listening",
            "1 while the change feed is connected (PostgreSQL), else 0.",
            i64::from(f.listening.load(Ordering::Relaxed)),
        )?;
        let lag = f.last_lag_us.load(Ordering::Relaxed);
        if lag >= 0 {
            gauge_f(&mut e, "invalidation_lag_seconds", "How late the last announced change arrived after it was made (database clock against this node's).", lag as f64 / 1e6)?;
        }

        gauge(
            &mut e,
            "store_reachable",
            "0 while the store's circuit is open (PostgreSQL unreachable), else 1.",
            i64::from(self.store.reachable()),
        )?;
        counter(
            &mut e,
            "store_circuit_trips",
            "Times the store's circuit opened.",
            self.store.circuit_trips(),
        )?;

        let u = self.usage.counters();
        counter(
            &mut e,
            "usage_records_written",
            "Usage records stored.",
            load(&u.written),
        )?;
        counter(&mut e, "usage_records_dropped", "Usage records lost: channel full, sent after shutdown, or refused by storage after retries.", load(&u.dropped))?;
        counter(
            &mut e,
            "usage_write_errors",
            "Failed attempts to store a batch of usage records.",
            load(&u.write_errors),
        )?;
        gauge(
            &mut e,
            "usage_queue_depth",
            "Usage records waiting in the channel to the batch writer.",
            self.usage.queue_depth() as i64,
        )?;

        let l = self.limiter.snapshot();
        counter(&mut e, "limiter_backend_errors", "Calls the shared rate limiter (Redis) failed: an error or no answer within ratelimit.timeout_ms.", l.backend_errors)?;
        counter(
            &mut e,
            "limiter_fallbacks",
            "Of those, answered by this node's own limiter (fail_open).",
            l.fallbacks,
        )?;
        counter(
            &mut e,
            "limiter_closed_refusals",
            "Of those, refused as RATE_LIMITED (fail_closed).",
            l.closed_refusals,
        )?;
        Ok(())
    }
}
