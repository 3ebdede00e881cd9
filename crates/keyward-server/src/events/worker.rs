//! The delivery worker: every `poll_interval_ms`, when an event was enqueued or when an
//! attempt ends, it claims the deliveries due by the injected clock and sends each one in its
//! own task, signed; each attempt is recorded: 2xx is success; anything else is retried after
//! `backoff(attempts)` until `max_attempts`, then the delivery has failed.
//!
//! # Concurrency
//! Attempts run side by side, at most `max_in_flight` on this node, `max_in_flight_per_webhook`
//! to one subscription and `max_in_flight_per_workspace` to one workspace's subscriptions, so
//! a dead endpoint (or a tenant full of them) ties up only its own slots while every other
//! subscription is delivered. The worker claims only as many deliveries as it has free slots,
//! skips subscriptions and workspaces whose slots are full, and gives back (unsent) the few a
//! claim returns beyond a subscription's or workspace's free slots. A claim leases a delivery
//! for one attempt's timeout plus a margin, so a node that dies mid-send leaves it to be
//! retried, and no other node sends it meanwhile.
//!
//! # What the delivery log says
//! Only what does not turn the log into a port scanner (see [`Failure`]): the status when an
//! HTTP answer came; otherwise one class, `delivery_failed`, whether the port was closed or
//! filtered, the connection reset, the answer not HTTP, TLS refused or the name unknown. Such
//! a failure is recorded no sooner than the timeout after the attempt began (and stamped with
//! the attempt's start), so the time it appears says nothing either. `destination_forbidden`
//! means the send-time check refused the destination (an internal address after DNS
//! resolution, or a URL the current policy refuses), before any connection.
//!
//! Stopping lets the attempts under way finish (each bounded by the timeout), without the
//! padding.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keyward_core::{WebhookId, WorkspaceId};
use keyward_store::{AttemptResult, Claim, DueDelivery, NextStep, StoreError};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::destination::{is_forbidden, CheckedResolver, Destinations};
use super::WebhooksConfig;
use crate::state::AppState;

/// Deliveries claimed per claim at most.
const BATCH: u32 = 32;
/// Seconds a claim outlives the attempt's timeout.
const LEASE_MARGIN_SECS: i64 = 30;

/// Why an attempt failed, as the delivery log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The receiver answered with this non-2xx status.
    Status(u16),
    /// No HTTP answer, for whatever reason: `delivery_failed`.
    NoAnswer,
    /// The destination check refused it: `destination_forbidden`.
    Forbidden,
}

impl Failure {
    /// The logged `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Failure::Status(_) => "http_status",
            Failure::NoAnswer => "delivery_failed",
            Failure::Forbidden => "destination_forbidden",
        }
    }
}

/// The delivery client: no redirects, no proxy (the destination check must judge the address
/// actually connected to), the [`CheckedResolver`], and the attempt timeout.
pub fn client(
    config: &WebhooksConfig,
    destinations: Arc<Destinations>,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(config.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(CheckedResolver::new(destinations)))
        .build()
}

/// Attempts in flight, by subscription and workspace.
#[derive(Default)]
struct InFlight {
    total: u32,
    webhooks: HashMap<WebhookId, u32>,
    workspaces: HashMap<WorkspaceId, u32>,
    tasks: HashMap<tokio::task::Id, (WebhookId, WorkspaceId)>,
}

impl InFlight {
    fn add(&mut self, id: tokio::task::Id, w: WebhookId, ws: WorkspaceId) {
        self.total += 1;
        *self.webhooks.entry(w).or_default() += 1;
        *self.workspaces.entry(ws).or_default() += 1;
        self.tasks.insert(id, (w, ws));
    }

    fn done(&mut self, id: tokio::task::Id) {
        let Some((w, ws)) = self.tasks.remove(&id) else {
            return;
        };
        self.total = self.total.saturating_sub(1);
        fn dec<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, k: K) {
            if let Some(n) = m.get_mut(&k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&k);
                }
            }
        }
        dec(&mut self.webhooks, w);
        dec(&mut self.workspaces, ws);
    }

    fn webhook(&self, w: &WebhookId) -> u32 {
        self.webhooks.get(w).copied().unwrap_or(0)
    }

    fn workspace(&self, ws: &WorkspaceId) -> u32 {
        self.workspaces.get(ws).copied().unwrap_or(0)
    }
}

/// Runs until `stop` turns true, then waits for the attempts under way.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let config = state.events.config.clone();
    let http = match client(&config, state.events.destinations.clone()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook delivery worker cannot start");
            return;
        }
    };
    let every = Duration::from_millis(config.poll_interval_ms.max(1));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut flight = InFlight::default();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = state.events.wake.notified() => {}
            Some(ended) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                reap(&mut flight, ended);
            }
            _ = stop.wait_for(|s| *s) => break,
        }
        while let Some(ended) = tasks.try_join_next_with_id() {
            reap(&mut flight, ended);
        }
        if let Err(e) = fill(&state, &http, &stop, &mut tasks, &mut flight).await {
            tracing::warn!(error = %e, "webhook delivery pass failed; retried at the next pass");
        }
    }
    while let Some(ended) = tasks.join_next_with_id().await {
        reap(&mut flight, ended);
    }
}

fn reap(flight: &mut InFlight, ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
    match ended {
        Ok((id, ())) => flight.done(id),
        Err(e) => {
            tracing::warn!(error = %e, "webhook attempt task ended abnormally");
            flight.done(e.id());
        }
    }
}

/// Claims what is due while slots are free and starts an attempt for each delivery.
async fn fill(
    state: &AppState,
    http: &reqwest::Client,
    stop: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
    flight: &mut InFlight,
) -> Result<(), StoreError> {
    let config = &state.events.config;
    let (per_webhook, per_workspace) = (
        config.max_in_flight_per_webhook,
        config.max_in_flight_per_workspace,
    );
    loop {
        let free = config.max_in_flight.saturating_sub(flight.total);
        if free == 0 {
            return Ok(());
        }
        let now = state.now();
        let per_send = i64::try_from(config.timeout_secs).unwrap_or(3_600);
        let claim = Claim {
            now,
            lease_until: now + chrono::Duration::seconds(per_send + LEASE_MARGIN_SECS),
            limit: free.min(BATCH),
            per_webhook,
            skip_webhooks: full(&flight.webhooks, per_webhook),
            skip_workspaces: full(&flight.workspaces, per_workspace),
        };
        let due = state.store.claim_deliveries(&claim).await?;
        let claimed = due.len();
        let mut back = Vec::new();
        for d in due {
            if flight.webhook(&d.webhook_id) >= per_webhook
                || flight.workspace(&d.workspace_id) >= per_workspace
            {
                back.push(d.id);
                continue;
            }
            let (w, ws) = (d.webhook_id, d.workspace_id);
            let handle = tasks.spawn(attempt(state.clone(), http.clone(), stop.clone(), d));
            flight.add(handle.id(), w, ws);
        }
        if !back.is_empty() {
            tracing::debug!(
                released = back.len(),
                "deliveries given back: their slots are full"
            );
            state.store.release_deliveries(&back, now).await?;
        }
        // Fewer than asked for: nothing else is due (a full subscription or workspace given
        // back is skipped by the next claim).
        if claimed < claim.limit as usize {
            return Ok(());
        }
    }
}

fn full<K: Copy>(counts: &HashMap<K, u32>, limit: u32) -> Vec<K> {
    counts
        .iter()
        .filter(|(_, n)| **n >= limit)
        .map(|(k, _)| *k)
        .collect()
}

/// One attempt of `d`, recorded.
async fn attempt(
    state: AppState,
    http: reqwest::Client,
    mut stop: watch::Receiver<bool>,
    d: DueDelivery,
) {
    let config = &state.events.config;
    let started_at = state.now();
    let started = Instant::now();
    let outcome = send(
        &state.events.destinations,
        &http,
        &d,
        started_at.timestamp(),
    )
    .await;
    if outcome == Err(Failure::NoAnswer) && !*stop.borrow() {
        // Pad to the timeout: how soon a failure shows must not tell a closed port apart.
        let until = started + Duration::from_secs(config.timeout_secs);
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    let now = state.now();
    let attempts = d.attempts + 1;
    let next = if outcome.is_ok() {
        NextStep::Succeeded
    } else if attempts >= config.max_attempts {
        NextStep::Failed
    } else {
        NextStep::RetryAt(now + config.backoff(attempts))
    };
    let (status_code, error) = match outcome {
        Ok(code) => (Some(code), None),
        Err(f @ Failure::Status(code)) => (Some(code), Some(f.as_str().to_owned())),
        Err(f) => (None, Some(f.as_str().to_owned())),
    };
    tracing::debug!(delivery = %d.id, event = %d.event_id, attempts, ?status_code, ?error, ?next, "webhook attempt");
    let result = AttemptResult {
        at: started_at,
        status_code,
        error,
        next,
    };
    match state.store.record_attempt(d.id, &result).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => {
            tracing::debug!(delivery = %d.id, "the subscription was deleted during the attempt");
        }
        Err(e) => {
            tracing::warn!(delivery = %d.id, error = %e, "webhook attempt not recorded; retried once its lease has passed");
        }
    }
}

/// POSTs one delivery after the destination check. Answers the 2xx status, or why it failed.
async fn send(
    destinations: &Destinations,
    http: &reqwest::Client,
    d: &DueDelivery,
    timestamp: i64,
) -> Result<u16, Failure> {
    // The stored URL is checked again: the policy may have changed since it was stored. An
    // address is connected to as is (never resolved); a name goes through the resolver.
    let url = destinations
        .check_send_url(&d.url)
        .map_err(|_| Failure::Forbidden)?;
    let id = d.event_id.to_string();
    let Some(signature) = crate::events::sign(&d.secret, &id, timestamp, &d.body) else {
        tracing::warn!(delivery = %d.id, "the subscription's secret is unusable");
        return Err(Failure::NoAnswer);
    };
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(d.body.clone())
        .send()
        .await;
    match sent {
        Ok(res) if res.status().is_success() => Ok(res.status().as_u16()),
        Ok(res) => Err(Failure::Status(res.status().as_u16())),
        Err(e) if is_forbidden(&e) => Err(Failure::Forbidden),
        Err(_) => Err(Failure::NoAnswer),
    }
}
