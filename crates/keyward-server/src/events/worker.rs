//! The delivery worker: every `poll_interval_ms` (or at once when an event was enqueued) it
//! claims the deliveries due by the injected clock, POSTs each one signed, and records the
//! attempt: 2xx is success; anything else is retried after `backoff(attempts)` until
//! `max_attempts`, then the delivery has failed. A claim leases the delivery for the attempt's
//! timeout plus a margin, so a node that dies mid-send leaves it to be retried, and no other
//! node sends it meanwhile.

use std::time::Duration;

use keyward_store::{AttemptResult, DueDelivery, NextStep};
use tokio::sync::watch;

use crate::state::AppState;

/// Deliveries claimed per pass at most.
const BATCH: u32 = 32;
/// Seconds a claim outlives the attempt's timeout.
const LEASE_MARGIN_SECS: i64 = 30;

/// Runs until `stop` turns true; a pass under way finishes first.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let config = state.events.config.clone();
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(config.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook delivery worker cannot start");
            return;
        }
    };
    let every = Duration::from_millis(config.poll_interval_ms.max(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = state.events.wake.notified() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        // Drain: a full batch means more may be due.
        loop {
            match run_once(&state, &http).await {
                Ok(n) if n == BATCH as usize => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery pass failed; retried at the next pass");
                    break;
                }
            }
        }
    }
}

/// One pass: claims and sends what is due now. Returns how many deliveries it claimed.
pub async fn run_once(
    state: &AppState,
    http: &reqwest::Client,
) -> Result<usize, keyward_store::StoreError> {
    let config = &state.events.config;
    let now = state.now();
    // The claim must outlast sending the whole batch one by one, each send bounded by the
    // timeout: otherwise another node could claim (and send) the batch's tail again.
    let per_send = i64::try_from(config.timeout_secs).unwrap_or(3_600);
    let lease = now
        + chrono::Duration::seconds(per_send.saturating_mul(i64::from(BATCH)) + LEASE_MARGIN_SECS);
    let due = state.store.claim_deliveries(now, lease, BATCH).await?;
    let n = due.len();
    for d in due {
        let (status_code, error) = send(http, &d, state.now().timestamp()).await;
        let now = state.now();
        let attempts = d.attempts + 1;
        let next = if error.is_none() {
            NextStep::Succeeded
        } else if attempts >= config.max_attempts {
            NextStep::Failed
        } else {
            NextStep::RetryAt(now + config.backoff(attempts))
        };
        tracing::debug!(delivery = %d.id, event = %d.event_id, attempts, ?status_code, ?next, "webhook attempt");
        let result = AttemptResult {
            at: now,
            status_code,
            error,
            next,
        };
        state.store.record_attempt(d.id, &result).await?;
    }
    Ok(n)
}

/// POSTs one delivery. Returns the status (if the receiver answered) and, unless it was 2xx,
/// why it failed. The error text names the kind of failure only: never the URL (it may carry
/// credentials) or the secret.
async fn send(
    http: &reqwest::Client,
    d: &DueDelivery,
    timestamp: i64,
) -> (Option<u16>, Option<String>) {
    let id = d.event_id.to_string();
    let Some(signature) = crate::events::sign(&d.secret, &id, timestamp, &d.body) else {
        return (None, Some("the subscription's secret is unusable".into()));
    };
    let sent = http
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.body.clone())
        .send()
        .await;
    match sent {
        Ok(res) if res.status().is_success() => (Some(res.status().as_u16()), None),
        Ok(res) => {
            let code = res.status().as_u16();
            (
                Some(code),
                Some(format!("the receiver answered HTTP {code}")),
            )
        }
        Err(e) => {
            let why = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else if e.is_builder() {
                "the URL cannot be used"
            } else {
                "the request failed"
            };
            (None, Some(why.into()))
        }
    }
}
