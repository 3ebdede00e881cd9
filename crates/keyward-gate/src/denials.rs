//! Security denials in the audit trail, aggregated so a flood cannot fill the disk.
//!
//! The verifier (for `POST /v1/verify` and the admin API's authentication) and
//! the server's `Caller::require` (for a token caller) report each `IP_NOT_ALLOWED`, `INTERNAL_ONLY`,
//! `RATE_LIMITED` and `INSUFFICIENT_PERMISSIONS` of a token that was found to
//! [`Denials::record`]: one short mutex-protected map update, no storage I/O, no allocation
//! unless the key is new. Refusals that name no token (malformed or unknown secrets, the
//! brute-force guard) belong to no workspace and are not recorded.
//!
//! Every `audit.denial_flush_secs` (judged by the injected clock) a task writes one
//! `security.denied` event per key, with the occurrences as the event's `count`, in one
//! `append_audit` call. A failed write merges the counts back for the next flush. On graceful
//! shutdown the task flushes what is left before its owner stops.
//!
//! # Layout
//! - this module: the `[audit]` configuration, the [`Denials`] handle, the flush task.
//! - [`tally`]: the pure aggregation: keys, the bounds (overall and per workspace) and the
//!   overflow keys, merge-back, drafts.

pub mod tally;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use keyward_core::Clock;
use keyward_store::{AuditStore, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use tally::{Denial, Pending, Tallies};

/// How often the flush task looks at the clock (at most; less when the interval is shorter).
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Attempts of the last flush on shutdown.
const LAST_ATTEMPTS: u32 = 3;

/// The `[audit]` section of the configuration: the chain key (read by [`crate::audit_key`])
/// and the aggregation of security denials.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// A file holding the audit chain key (64 hex digits). Empty: with SQLite, the key file
    /// next to the database (generated on first start); with PostgreSQL, refused.
    pub chain_key_file: String,
    /// The audit chain key itself (64 hex digits), instead of a file; for tests and injected
    /// secrets. Never printed.
    pub chain_key: String,
    /// Seconds between two writes of aggregated security denials.
    pub denial_flush_secs: u64,
    /// Distinct denial keys kept with their detail between two writes, over all workspaces;
    /// beyond that, new keys are counted per workspace and code only (`"overflow": true`).
    pub denial_max_keys: usize,
    /// Distinct denial keys one workspace may hold with their detail between two writes; a
    /// workspace beyond it folds its new keys into its own overflow keys, so a flood in one
    /// tenant leaves the others' detail alone.
    pub denial_max_keys_per_workspace: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            chain_key_file: String::new(),
            chain_key: String::new(),
            denial_flush_secs: 60,
            denial_max_keys: 10_000,
            denial_max_keys_per_workspace: 1_000,
        }
    }
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = if self.chain_key.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("AuditConfig")
            .field("chain_key_file", &self.chain_key_file)
            .field("chain_key", &key)
            .field("denial_flush_secs", &self.denial_flush_secs)
            .field("denial_max_keys", &self.denial_max_keys)
            .field(
                "denial_max_keys_per_workspace",
                &self.denial_max_keys_per_workspace,
            )
            .finish()
    }
}

impl AuditConfig {
    /// Refuses values the aggregator cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=86_400).contains(&self.denial_flush_secs) {
            return Err("audit.denial_flush_secs must be 1 to 86400".into());
        }
        if self.denial_max_keys == 0 {
            return Err("audit.denial_max_keys must be at least 1".into());
        }
        if self.denial_max_keys_per_workspace == 0 {
            return Err("audit.denial_max_keys_per_workspace must be at least 1".into());
        }
        Ok(())
    }
}

/// The aggregator as the hot path and the flush task see it.
pub struct Denials {
    tallies: Mutex<Tallies>,
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
    config: AuditConfig,
}

impl Denials {
    /// An empty aggregator writing to `store`. `config` must be valid.
    pub fn new(config: &AuditConfig, store: Arc<dyn AuditStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            tallies: Mutex::new(Tallies::new(
                config.denial_max_keys,
                config.denial_max_keys_per_workspace,
            )),
            store,
            clock,
            config: config.clone(),
        }
    }

    /// Counts one denial, as of the injected clock.
    pub fn record(&self, denial: Denial<'_>) {
        let at = self.clock.now();
        self.lock().add(&denial, at);
    }

    /// Keys waiting for the next flush.
    pub fn pending_keys(&self) -> usize {
        self.lock().len()
    }

    /// Writes every key now, as one event each, in one call; returns the events written. On
    /// failure the counts are merged back for the next attempt.
    pub async fn flush_now(&self) -> Result<usize, StoreError> {
        let pending = self.lock().take();
        if pending.is_empty() {
            return Ok(0);
        }
        let drafts = tally::drafts(&pending, self.clock.now());
        match self.store.append_audit(&drafts).await {
            Ok(()) => Ok(drafts.len()),
            Err(e) => {
                self.lock().merge_back(pending);
                Err(e)
            }
        }
    }

    /// A poisoned lock only means a panic elsewhere mid-update; the counts are still usable.
    fn lock(&self) -> MutexGuard<'_, Tallies> {
        self.tallies.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running flush task.
pub struct DenialTasks {
    stop: watch::Sender<bool>,
    flusher: JoinHandle<()>,
}

impl DenialTasks {
    /// Spawns the periodic flush.
    pub fn start(denials: Arc<Denials>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let flusher = tokio::spawn(run(denials, stopped));
        Self { stop, flusher }
    }

    /// Stops the task after a last flush of everything counted.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.flusher.await {
            tracing::error!(error = %e, "the denial flush task did not finish cleanly");
        }
    }
}

/// Flushes whenever the clock has moved `denial_flush_secs` past the last flush, until `stop`
/// turns true; then flushes once more.
async fn run(denials: Arc<Denials>, mut stop: watch::Receiver<bool>) {
    let secs = denials.config.denial_flush_secs.max(1);
    let every = chrono::TimeDelta::try_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(chrono::TimeDelta::MAX);
    let mut ticks = tokio::time::interval(CHECK_EVERY.min(Duration::from_secs(secs)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = denials.clock.now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let now = denials.clock.now();
        // A clock set back starts the interval again rather than waiting for it to catch up.
        if now < last || now - last >= every {
            last = now;
            if let Err(e) = denials.flush_now().await {
                tracing::warn!(
                    error = %e,
                    keys = denials.pending_keys(),
                    "storing security denials failed; their counts are kept for the next flush"
                );
            }
        }
    }
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=LAST_ATTEMPTS {
        match denials.flush_now().await {
            Ok(_) => return,
            Err(e) if attempt < LAST_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "storing security denials on shutdown failed");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => tracing::error!(
                error = %e,
                keys = denials.pending_keys(),
                "security denials lost on shutdown: storage refused them"
            ),
        }
    }
}
