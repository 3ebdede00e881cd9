//! Event retention: events older than `[webhooks] retention_days` whose deliveries are all
//! finished (succeeded or failed) are deleted with their deliveries and attempts; finished
//! deliveries of older events go even while another delivery of the event is still pending.
//! Pending deliveries are never pruned. Age is the event's time, judged by the injected clock,
//! like usage maintenance ([`crate::usage::maintenance`]). A pass runs at start and every
//! `maintenance_interval_secs`, and deletes dashboard sessions past their timeouts too.
//!
//! Expiry notices (`token_notices`) are not pruned: they are what makes each notice happen
//! once, and go with their token.

use std::time::Duration;

use chrono::{DateTime, Utc};
use keyward_store::{EventsPruned, Store, StoreError};
use tokio::sync::watch;

use crate::state::AppState;

/// The instant before which finished data is too old, `days` before `now`.
pub fn cutoff(now: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    now - chrono::Duration::days(i64::from(days))
}

/// One pass, as of `now`.
pub async fn run_once(
    store: &dyn Store,
    now: DateTime<Utc>,
    days: u32,
) -> Result<EventsPruned, StoreError> {
    let done = store.prune_events(cutoff(now, days)).await?;
    if done != EventsPruned::default() {
        tracing::info!(
            events = done.events,
            deliveries = done.deliveries,
            attempts = done.attempts,
            "event retention"
        );
    }
    Ok(done)
}

/// A pass at start and every `maintenance_interval_secs` until `stop` turns true; a pass
/// under way finishes first.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let config = &state.events.config;
    let every = Duration::from_secs(config.maintenance_interval_secs.max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if let Err(e) = run_once(state.store.as_ref(), state.now(), config.retention_days).await {
            tracing::warn!(error = %e, "event retention failed; retried at the next pass");
        }
        let sessions =
            crate::people::prune_sessions(state.store.as_ref(), &state.people, state.now());
        if let Err(e) = sessions.await {
            tracing::warn!(error = %e, "session pruning failed; retried at the next pass");
        }
    }
}
