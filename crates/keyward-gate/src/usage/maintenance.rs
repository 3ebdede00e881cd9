//! Usage maintenance: raw records older than `raw_retention_days` are folded into hourly
//! roll-ups and deleted; roll-ups older than `rollup_retention_days` (and those of deleted
//! tokens) are deleted. Age is judged by the injected clock, and cut-offs fall on whole UTC
//! hours, so an hour is rolled up at once rather than piece by piece.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keyward_core::usage::Granularity;
use keyward_store::{StoreError, UsageMaintenance, UsageStore};
use tokio::sync::watch;

use super::{Usage, UsageConfig};

/// The hour before which records (and roll-ups) are too old, `days` before `now`.
pub fn cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let before = now
        .checked_sub_signed(chrono::Duration::days(i64::from(days)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    Granularity::Hour.floor(before)
}

/// One pass, as of `now`.
pub async fn run_once(
    store: &dyn UsageStore,
    now: DateTime<Utc>,
    config: &UsageConfig,
) -> Result<UsageMaintenance, StoreError> {
    let done = store
        .maintain_usage(
            cutoff(now, config.raw_retention_days),
            cutoff(now, config.rollup_retention_days),
        )
        .await?;
    if done != UsageMaintenance::default() {
        tracing::info!(
            rolled_up = done.rolled_up,
            pruned_rollups = done.pruned_rollups,
            "usage maintenance"
        );
    }
    Ok(done)
}

/// A pass at start and every `maintenance_interval_secs` until `stop` turns true; a pass
/// under way finishes first.
pub async fn run(usage: Arc<Usage>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(usage.config.maintenance_interval_secs.max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if let Err(e) = usage.maintain_now().await {
            tracing::warn!(error = %e, "usage maintenance failed; retried at the next pass");
        }
    }
}
