//! The state every handler shares.

use std::sync::Arc;

use keyward_core::ip::IpAllowlist;
use keyward_core::{Clock, TokenHasher};
use keyward_store::Store;

use crate::cache::TokenCache;
use crate::usage::Usage;
use crate::verifier::Verifier;

/// Shared, cheaply cloned application state.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The verification cache (admin handlers invalidate it after each change).
    pub cache: Arc<TokenCache>,
    /// Other nodes' changes, followed into the cache (PostgreSQL's change feed).
    pub follower: Arc<keyward_gate::follow::Follower>,
    /// The hot path.
    pub verifier: Arc<Verifier>,
    /// Hashes new secrets.
    pub hasher: TokenHasher,
    /// The injected clock.
    pub clock: Arc<dyn Clock>,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Arc<IpAllowlist>,
    /// Usage records' way off the hot path.
    pub usage: Arc<Usage>,
    /// Events: webhook and expiry configuration, the worker's wake-up.
    pub events: Arc<crate::events::Events>,
    /// Keys that sign GitHub's secret-scanning alerts.
    pub leak_keys: Arc<crate::leaks::LeakKeys>,
    /// Security denials on their way to the audit trail, aggregated.
    pub denials: Arc<crate::denials::Denials>,
    /// The rate limit of a new workspace's admin role (`tokens.admin_rate_limit_per_minute`).
    pub admin_rate_limit: u32,
    /// `keyward.verify:tokens`, parsed once: what a verify API caller must hold. Shared, so
    /// the state's clones (axum clones it into every route service a request passes) do not
    /// copy its text.
    pub verify_permission: Arc<keyward_core::Permission>,
    /// People: the dashboard's sign-in configuration and guard.
    pub people: Arc<crate::people::People>,
    /// What `/metrics` shows (the hot path's and the limiter's figures).
    pub metrics: Arc<prometheus_client::registry::Registry>,
    /// What the verify API's handler needs, behind one `Arc` (its `State`, so a verify
    /// clones one reference instead of the whole state).
    pub verify_api: Arc<VerifyApi>,
    /// Forward-auth: the edge admission and who may ask it.
    pub forward_auth: Arc<crate::forward_auth::ForwardAuth>,
    /// The rate limiter's backend errors and fallbacks (`[ratelimit]`; zero for memory).
    pub limiter_stats: Arc<crate::limiter::LimiterStats>,
}

/// The verify API's own state: the hot path, the usage pipeline and the clock.
pub struct VerifyApi {
    /// The hot path.
    pub verifier: Arc<Verifier>,
    /// Usage records' way off the hot path.
    pub usage: Arc<Usage>,
    /// The injected clock.
    pub clock: Arc<dyn Clock>,
}

impl axum::extract::FromRef<AppState> for Arc<VerifyApi> {
    fn from_ref(state: &AppState) -> Self {
        state.verify_api.clone()
    }
}

impl AppState {
    /// The current time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
