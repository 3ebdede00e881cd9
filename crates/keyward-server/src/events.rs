//! Events and webhooks.
//!
//! Handlers call [`emit`] after a change is stored: the event goes into the outbox with one
//! pending delivery per enabled subscription that wants it. A delivery worker
//! ([`worker`]) claims due deliveries (several nodes never claim the same one), POSTs them
//! concurrently, signed the Standard Webhooks way ([`sign`]), to destinations the
//! [`destination`] check permits, and retries failures with exponential backoff judged by the
//! injected clock. An expiry scheduler ([`expiry`]) emits `token.expiring` and `token.expired`
//! once per token; a retention task ([`retention`]) prunes old finished events. The tasks start
//! with the server and stop on shutdown.
//!
//! # Layout
//! - this module: the `[webhooks]` configuration, [`Events`] (the shared handle), [`emit`],
//!   secrets and signatures, starting and stopping the tasks.
//! - [`destination`]: which addresses webhooks may reach, and the checking DNS resolver.
//! - [`worker`]: the delivery worker.
//! - [`expiry`]: the expiry scheduler and its `[expiry]` configuration.
//! - [`retention`]: pruning of finished events, deliveries and attempts.

pub mod destination;
pub mod expiry;
pub mod retention;
pub mod worker;

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
pub use keyward_core::events::EventType;
use keyward_core::events::{Event, WebhookSecret};
use keyward_core::ip::IpAllowlist;
use keyward_core::{EventId, Token};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::destination::Destinations;
use crate::error::ApiError;
use crate::state::AppState;

/// The `[webhooks]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Milliseconds between two looks for due deliveries.
    pub poll_interval_ms: u64,
    /// Seconds one delivery attempt may take.
    pub timeout_secs: u64,
    /// Attempts before a delivery is given up as failed.
    pub max_attempts: u32,
    /// Seconds before the first retry; each later retry waits twice as long.
    pub backoff_base_secs: u64,
    /// The longest wait between two attempts.
    pub backoff_max_secs: u64,
    /// Deliver to loopback, private, link-local, ULA, CGNAT… addresses too (off: refused at
    /// create, update and send time, see [`destination`]).
    pub allow_private_destinations: bool,
    /// CIDRs delivered to although internal, e.g. `["10.20.0.0/16"]` for the operator's own
    /// receivers.
    pub allowed_destinations: Vec<String>,
    /// Attempts in flight at once on this node, all subscriptions together.
    pub max_in_flight: u32,
    /// Attempts in flight at once to one subscription.
    pub max_in_flight_per_webhook: u32,
    /// Attempts in flight at once to one workspace's subscriptions.
    pub max_in_flight_per_workspace: u32,
    /// Days an event, its deliveries and their attempts are kept once every delivery of it is
    /// finished (succeeded or failed), counted from the event's time.
    pub retention_days: u32,
    /// Seconds between two retention passes (one runs at start).
    pub maintenance_interval_secs: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1_000,
            timeout_secs: 10,
            max_attempts: 8,
            backoff_base_secs: 1,
            backoff_max_secs: 3_600,
            allow_private_destinations: false,
            allowed_destinations: Vec::new(),
            max_in_flight: 64,
            max_in_flight_per_webhook: 2,
            max_in_flight_per_workspace: 16,
            retention_days: 30,
            maintenance_interval_secs: 3_600,
        }
    }
}

impl WebhooksConfig {
    /// Refuses values the worker cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("webhooks.poll_interval_ms", self.poll_interval_ms),
            ("webhooks.timeout_secs", self.timeout_secs),
            ("webhooks.max_attempts", u64::from(self.max_attempts)),
            ("webhooks.max_in_flight", u64::from(self.max_in_flight)),
            (
                "webhooks.max_in_flight_per_webhook",
                u64::from(self.max_in_flight_per_webhook),
            ),
            (
                "webhooks.max_in_flight_per_workspace",
                u64::from(self.max_in_flight_per_workspace),
            ),
            ("webhooks.retention_days", u64::from(self.retention_days)),
            (
                "webhooks.maintenance_interval_secs",
                self.maintenance_interval_secs,
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{key} must be at least 1"));
        }
        self.destinations().map(|_| ())
    }

    /// The destination policy of `allow_private_destinations` and `allowed_destinations`.
    pub fn destinations(&self) -> Result<Destinations, String> {
        let field = "webhooks.allowed_destinations";
        let allowed = IpAllowlist::from_entries(&self.allowed_destinations, field)
            .map_err(|e| format!("{field}: {}", e.message))?;
        Ok(Destinations::new(self.allow_private_destinations, allowed))
    }

    /// The wait after the `attempts`-th failed attempt (1 for the first):
    /// base, 2 × base, 4 × base, … capped at `backoff_max_secs`.
    pub fn backoff(&self, attempts: u32) -> chrono::Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let secs = self
            .backoff_base_secs
            .saturating_mul(1u64 << exp)
            .min(self.backoff_max_secs);
        chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1_000))
    }
}

/// What handlers and tasks share about events.
pub struct Events {
    /// The configuration.
    pub config: WebhooksConfig,
    /// The expiry scheduler's configuration.
    pub expiry: expiry::ExpiryConfig,
    /// Where deliveries may go.
    pub destinations: Arc<Destinations>,
    /// Wakes the worker when an event was enqueued.
    pub(crate) wake: tokio::sync::Notify,
}

impl Events {
    /// The handle. `config` has passed [`WebhooksConfig::validate`]; were its allowlist
    /// unusable all the same, no internal destination would be permitted.
    pub fn new(config: WebhooksConfig, expiry: expiry::ExpiryConfig) -> Arc<Self> {
        let destinations = Arc::new(config.destinations().unwrap_or_default());
        Arc::new(Self {
            config,
            expiry,
            destinations,
            wake: tokio::sync::Notify::new(),
        })
    }
}

/// Enqueues an event of type `t` about `token`, as of the state's clock.
pub async fn emit(state: &AppState, t: EventType, token: &Token) -> Result<(), ApiError> {
    let event = Event::about_token(
        EventId::random(&mut rand_core::OsRng),
        t,
        token,
        state.now(),
    );
    let n = state.store.enqueue_event(&event).await?;
    tracing::debug!(event = %event.id, kind = t.as_str(), deliveries = n, "event enqueued");
    if n > 0 {
        state.events.wake.notify_one();
    }
    Ok(())
}

/// A fresh signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_secret() -> WebhookSecret {
    let mut key = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
    WebhookSecret::new(format!("{}{}", WebhookSecret::PREFIX, STANDARD.encode(key)))
}

/// `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), the key being the base64
/// part of the secret after `whsec_`; `None` if the secret is not of that form.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let encoded = secret.expose().strip_prefix(WebhookSecret::PREFIX)?;
    let key = STANDARD.decode(encoded).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The running worker, scheduler and retention task.
pub struct EventTasks {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EventTasks {
    /// Starts the delivery worker, the expiry scheduler and the retention task.
    pub fn start(state: AppState) -> Self {
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(worker::run(state.clone(), stopped.clone())),
            tokio::spawn(expiry::run(state.clone(), stopped.clone())),
            tokio::spawn(retention::run(state, stopped)),
        ];
        Self { stop, tasks }
    }

    /// Stops the tasks, letting a pass (and the delivery attempts) under way finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::warn!(error = %e, "event task ended abnormally");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = WebhooksConfig {
            backoff_base_secs: 1,
            backoff_max_secs: 5,
            ..WebhooksConfig::default()
        };
        let secs: Vec<i64> = (1..=5).map(|n| c.backoff(n).num_seconds()).collect();
        assert_eq!(secs, vec![1, 2, 4, 5, 5]);
    }

    /// The `[webhooks]` lines of the README's configuration block (under "Configuration").
    fn readme_section() -> String {
        let readme = include_str!("../../../README.md");
        let readme = readme
            .split_once("\n## Configuration\n")
            .map_or("", |(_, rest)| rest);
        let mut out = String::new();
        let mut inside = false;
        for line in readme.lines() {
            if line.starts_with('[') {
                inside = line == "[webhooks]";
                continue;
            }
            if line.starts_with("```") {
                inside = false;
            }
            if inside {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    #[test]
    fn the_readme_shows_the_defaults_and_the_checks_hold() {
        let text = readme_section();
        let shown: WebhooksConfig = toml::from_str(&text).unwrap();
        assert_eq!(shown, WebhooksConfig::default(), "{text}");
        assert!(text.contains("retention_days = 30"), "{text}");
        assert!(toml::from_str::<WebhooksConfig>("allowed_destination = []").is_err());
        let bad = WebhooksConfig {
            allowed_destinations: vec!["10.0.0.0/33".into()],
            ..WebhooksConfig::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.contains("webhooks.allowed_destinations"), "{err}");
        let zero = WebhooksConfig {
            max_in_flight_per_webhook: 0,
            ..WebhooksConfig::default()
        };
        assert!(zero.validate().is_err());
        assert!(WebhooksConfig::default().validate().is_ok());
    }

    #[test]
    fn secrets_have_the_standard_form_and_sign() {
        let s = generate_secret();
        let key = STANDARD
            .decode(s.expose().strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(key.len(), 32);
        let sig = sign(&s, "msg_1", 1_700_000_000, "{}").unwrap();
        assert!(sig.starts_with("v1,"));
        assert_eq!(sign(&WebhookSecret::new("nope".into()), "m", 1, "b"), None);
    }
}
