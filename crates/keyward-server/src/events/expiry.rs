//! The expiry scheduler: at start and every `interval_secs`, for each workspace, it emits
//! `token.expiring` for tokens that expire within the workspace's `expiry_warning_days` (and
//! have not expired yet), and `token.expired` for tokens past their expiry. Each notice is
//! claimed in `token_notices` in the same transaction as its event, so it is sent once per
//! token even across restarts and with several nodes. The same pass expires the change
//! requests nobody decided in time. Revoked tokens get no notices; pending
//! ones do (they may still be activated). Time is the injected clock's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use keyward_core::events::{Event, EventType};
use keyward_core::{EventId, Workspace};
use keyward_store::{NoticeKind, PageRequest, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::state::AppState;

/// Tokens looked at per query.
const BATCH: u32 = 100;

/// The `[expiry]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpiryConfig {
    /// Seconds between two passes (the first runs at start).
    pub interval_secs: u64,
}

impl Default for ExpiryConfig {
    fn default() -> Self {
        Self { interval_secs: 60 }
    }
}

/// Runs a pass at start and every `interval_secs` until `stop` turns true.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(state.events.expiry.interval_secs.max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        if let Err(e) = run_once(&state).await {
            tracing::warn!(error = %e, "expiry pass failed; retried at the next pass");
        }
        match crate::ops::change_requests::expire_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "change requests expired"),
            Err(e) => tracing::warn!(error = %e, "change request expiry failed; retried later"),
        }
    }
}

/// One pass as of the clock's `now`. Returns the notices this pass sent.
pub async fn run_once(state: &AppState) -> Result<u64, StoreError> {
    let now = state.now();
    let mut sent = 0;
    let mut page = PageRequest {
        limit: BATCH,
        after: None,
    };
    loop {
        let workspaces = state.store.list_workspaces(&page).await?;
        for ws in &workspaces {
            sent += workspace_pass(state, ws, now).await?;
        }
        match workspaces.last() {
            Some(last) if workspaces.len() == BATCH as usize => {
                page.after = Some(keyward_store::Cursor {
                    created_at: last.created_at,
                    id: last.id.uuid(),
                });
            }
            _ => break,
        }
    }
    if sent > 0 {
        tracing::info!(notices = sent, "expiry notices enqueued");
    }
    Ok(sent)
}

async fn workspace_pass(
    state: &AppState,
    ws: &Workspace,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut sent = 0;
    let days = ws.settings.expiry_warning_days;
    if days > 0 {
        let horizon = now + chrono::Duration::days(i64::from(days));
        sent += notices(state, ws, NoticeKind::Expiring, Some(now), horizon, now).await?;
    }
    sent += notices(state, ws, NoticeKind::Expired, None, now, now).await?;
    Ok(sent)
}

async fn notices(
    state: &AppState,
    ws: &Workspace,
    kind: NoticeKind,
    after: Option<DateTime<Utc>>,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let event_type = match kind {
        NoticeKind::Expiring => EventType::TokenExpiring,
        NoticeKind::Expired => EventType::TokenExpired,
    };
    let mut sent = 0;
    loop {
        let ids = state
            .store
            .notice_candidates(ws.id, kind, after, before, BATCH)
            .await?;
        let mut progressed = false;
        for id in &ids {
            let Some(token) = state.store.token(ws.id, *id).await? else {
                continue;
            };
            let event = Event::about_token(
                EventId::random(&mut rand_core::OsRng),
                event_type,
                &token,
                now,
            );
            // Another node may have claimed it meanwhile: then this one sends nothing.
            if state.store.enqueue_notice(token.id, kind, &event).await? {
                sent += 1;
            }
            progressed = true;
        }
        if ids.len() < BATCH as usize || !progressed {
            break;
        }
    }
    if sent > 0 {
        state.events.wake.notify_one();
    }
    Ok(sent)
}
