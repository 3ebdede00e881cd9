//! Building and running the application: check everything the configuration names, bind the
//! listener, open the store (creating the operator's workspace on a fresh one), serve until a
//! shutdown future resolves.
//!
//! The order matters: nothing is created (no database file, no migration, no first admin
//! token) until every configured value has been checked ([`Checked::from_config`]) and the
//! listener is bound, so a typo in the configuration or a port in use fails cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use keyward_core::api::CreatedWorkspace;
use keyward_core::model::WorkspaceSettings;
use keyward_core::{Clock, TokenHasher};
use keyward_store::{StoreError, StoreOptions};
use tokio::net::TcpListener;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::denials::DenialTasks;
use crate::error::ApiError;
use crate::state::AppState;
use crate::usage::UsageTasks;
use keyward_core::ip::IpAllowlist;
use keyward_core::ratelimit::Quota;
use keyward_gate::gate::{HotPath, HotPathSettings, NetworkPolicy};

/// Why the application could not start. Each variant's message carries its cause's text and
/// names no `source()`, so a report that prints the chain (`{:#}`) says it once.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Storage could not be opened or migrated.
    #[error("storage: {0}")]
    Store(StoreError),
    /// The listener could not be bound.
    #[error("binding {address}: {error}")]
    Bind {
        /// The configured address.
        address: String,
        /// The cause.
        error: std::io::Error,
    },
    /// The configuration has a bad value.
    #[error("configuration: {0}")]
    Config(String),
    /// The first workspace could not be created.
    #[error("creating the first workspace: {0:?}")]
    Bootstrap(ApiError),
}

impl From<StoreError> for StartupError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Config(message) => StartupError::Config(format!("database: {message}")),
            other => StartupError::Store(other),
        }
    }
}

/// Everything the configuration names, parsed and checked; built before any state exists.
struct Checked {
    trusted_proxies: IpAllowlist,
    internal_networks: IpAllowlist,
    brute_force: Option<Quota>,
    leak_keys: crate::leaks::LeakKeys,
    admin_rate_limit: u32,
    edge: keyward_gate::edge::EdgeRules,
    gateway: Option<crate::gateway::Upstream>,
}

impl Checked {
    /// Checks every section; the first bad value stops the start, named by its key.
    fn from_config(config: &Config) -> Result<Self, StartupError> {
        let bad = StartupError::Config;
        config.server.validate().map_err(bad)?;
        keyward_store::check_url(&config.database.url)?;
        let policy = &config.policy;
        let NetworkPolicy {
            trusted_proxies,
            internal_networks,
            brute_force,
        } = NetworkPolicy::parse(
            &policy.trusted_proxies,
            &policy.internal_networks,
            policy.failed_verifications_per_minute,
            "policy.",
        )
        .map_err(bad)?;
        config.audit.validate().map_err(bad)?;
        config.usage.validate().map_err(bad)?;
        config.webhooks.validate().map_err(bad)?;
        config.dashboard.validate().map_err(bad)?;
        within_bounds(config).map_err(bad)?;
        config.cache.validate().map_err(bad)?;
        config.ratelimit.validate().map_err(bad)?;
        let leak_keys = crate::leaks::LeakKeys::from_config(&config.leaks).map_err(bad)?;
        let field = "tokens.admin_rate_limit_per_minute";
        let admin_rate_limit =
            keyward_core::validate::rate_limit(config.tokens.admin_rate_limit_per_minute, field)
                .map_err(|e| StartupError::Config(e.message))?;
        let edge = keyward_gate::edge::EdgeRules::from_config(&config.edge).map_err(bad)?;
        let gateway = config.gateway.validate().map_err(bad)?;
        Ok(Self {
            edge,
            gateway,
            admin_rate_limit,
            trusted_proxies,
            internal_networks,
            brute_force,
            leak_keys,
        })
    }
}

/// Upper bounds on durations the background tasks add to the clock, so no configured value
/// can overflow a time computation (which panics) long after the start.
fn within_bounds(config: &Config) -> Result<(), String> {
    const DAY: u64 = 86_400;
    let w = &config.webhooks;
    let limits = [
        ("webhooks.poll_interval_ms", w.poll_interval_ms, DAY * 1_000),
        ("webhooks.timeout_secs", w.timeout_secs, 3_600),
        ("webhooks.backoff_base_secs", w.backoff_base_secs, DAY),
        ("webhooks.backoff_max_secs", w.backoff_max_secs, 30 * DAY),
        ("expiry.interval_secs", config.expiry.interval_secs, DAY),
    ];
    match limits.iter().find(|(_, value, max)| value > max) {
        Some((key, _, max)) => Err(format!("{key} must be at most {max}")),
        None => Ok(()),
    }
}

/// Where invitation links point: the configured public address, else the bound one.
fn base_url(config: &Config, listener: &TcpListener) -> String {
    let configured = config.dashboard.public_url.trim().trim_end_matches('/');
    if !configured.is_empty() {
        return configured.to_owned();
    }
    match listener.local_addr() {
        Ok(a) if a.ip().is_unspecified() => format!("http://127.0.0.1:{}", a.port()),
        Ok(a) => format!("http://{a}"),
        Err(_) => format!("http://{}", config.server.listen),
    }
}

/// A built application, bound to its port and ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    bootstrap: Option<CreatedWorkspace>,
    grace: std::time::Duration,
    limits: crate::listener::Limits,
    gateway: Option<crate::gateway::Bound>,
    usage_rx: tokio::sync::mpsc::Receiver<keyward_store::UsageRecord>,
}

impl Application {
    /// Builds the application with the system clock.
    pub async fn build(config: &Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Builds the application with an injected clock (tests move time by hand).
    pub async fn build_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let checked = Checked::from_config(config)?;
        // Bound before the store is opened: a port in use creates no database.
        let listener = TcpListener::bind(&config.server.listen)
            .await
            .map_err(|error| StartupError::Bind {
                address: config.server.listen.clone(),
                error,
            })?;
        let gateway_listener =
            match &checked.gateway {
                Some(_) => Some(TcpListener::bind(&config.gateway.listen).await.map_err(
                    |error| StartupError::Bind {
                        address: config.gateway.listen.clone(),
                        error,
                    },
                )?),
                None => None,
            };
        let (chain_key, _) = crate::audit_key::load(&config.audit, &config.database.url)
            .map_err(StartupError::Config)?;
        let device_key = chain_key.derive("dashboard device cookie");
        let approval_key = chain_key.derive("change request approval codes");
        let store = keyward_store::open(&StoreOptions {
            url: config.database.url.clone(),
            schema: Some(config.database.schema.clone()).filter(|s| !s.is_empty()),
            max_connections: config.database.max_connections,
            chain_key,
            sqlite_synchronous: config.database.sqlite_synchronous,
        })
        .await?;
        let pepper = Some(config.tokens.pepper.as_bytes().to_vec()).filter(|p| !p.is_empty());
        let hasher = TokenHasher::new(pepper);
        let trusted_proxies = Arc::new(checked.trusted_proxies);
        // The same build as the embedded Gate's: memory, or Redis shared by every node.
        let crate::limiter::Limiter {
            limiter,
            stats: limiter_stats,
        } = crate::limiter::build(&config.ratelimit).map_err(StartupError::Config)?;
        let people = Arc::new(crate::people::People {
            guard: crate::people::guard::Guard::new(&config.dashboard, limiter.clone(), device_key)
                .map_err(StartupError::Config)?,
            base_url: base_url(config, &listener),
            approval_key,
            config: config.dashboard.clone(),
        });
        let (hot, usage_rx) = HotPath::assemble(
            store.clone(),
            hasher.clone(),
            clock.clone(),
            HotPathSettings {
                cache: &config.cache,
                audit: &config.audit,
                usage: &config.usage,
                internal_networks: checked.internal_networks,
                brute_force: checked.brute_force,
                limiter,
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
        let gateway = match (gateway_listener, checked.gateway) {
            (Some(listener), Some(upstream)) => Some(crate::gateway::Bound {
                listener,
                gateway: Arc::new(crate::gateway::Gateway::new(
                    &config.gateway,
                    upstream,
                    edge.clone(),
                    trusted_proxies.clone(),
                )),
            }),
            _ => None,
        };
        let forward_auth = Arc::new(crate::forward_auth::ForwardAuth::new(
            edge,
            trusted_proxies.clone(),
            &config.edge.proxy_secret,
        ));
        let metrics = keyward_gate::metrics::HotPathCollector {
            cache: cache.clone(),
            feed: follower.stats().clone(),
            store: store.clone(),
            usage: usage.clone(),
            limiter: limiter_stats.clone(),
        }
        .registry(verifier.metrics());
        let events = crate::events::Events::new(config.webhooks.clone(), config.expiry.clone());
        let leak_keys = Arc::new(checked.leak_keys);
        let verify_api = Arc::new(crate::state::VerifyApi {
            verifier: verifier.clone(),
            usage: usage.clone(),
            clock: clock.clone(),
        });
        let state = AppState {
            denials,
            events,
            leak_keys,
            usage,
            store,
            cache,
            follower: Arc::new(follower),
            verifier,
            hasher,
            clock,
            trusted_proxies,
            verify_permission: Arc::new(keyward_core::permission::verify_permission()),
            people,
            forward_auth,
            metrics: Arc::new(metrics),
            verify_api,
            admin_rate_limit: checked.admin_rate_limit,
            limiter_stats,
        };
        let bootstrap = if state.store.count_workspaces().await? == 0 {
            let created = crate::bootstrap::create_workspace(
                &state,
                "Default",
                WorkspaceSettings::default(),
                true,
                keyward_core::audit::Actor::SYSTEM,
                None,
            )
            .await
            .map_err(StartupError::Bootstrap)?;
            Some(created)
        } else {
            None
        };
        Ok(Self {
            listener,
            state,
            bootstrap,
            grace: std::time::Duration::from_secs(config.server.shutdown_grace_secs),
            limits: config.server.limits(),
            gateway,
            usage_rx,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr().map_or(0, |a| a.port())
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The gateway's bound port, when `gateway.upstream` is set.
    pub fn gateway_port(&self) -> Option<u16> {
        self.gateway_addr().map(|a| a.port())
    }

    /// The gateway's bound address, when `gateway.upstream` is set.
    pub fn gateway_addr(&self) -> Option<SocketAddr> {
        self.gateway.as_ref().and_then(|g| g.local_addr().ok())
    }

    /// The gateway's upstream, when `gateway.upstream` is set.
    pub fn gateway_upstream(&self) -> Option<String> {
        self.gateway
            .as_ref()
            .map(|g| g.gateway.upstream().to_string())
    }

    /// The workspace created on a fresh store, with its admin secret: present once, on the
    /// first start, for the caller to show to the operator.
    pub fn take_bootstrap(&mut self) -> Option<CreatedWorkspace> {
        self.bootstrap.take()
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish (up to the
    /// configured grace period), then stops the event tasks, writes the security denials
    /// counted and the usage records still queued.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let usage = UsageTasks::start(self.state.usage.clone(), self.usage_rx);
        let events = crate::events::EventTasks::start(self.state.clone());
        let denials = DenialTasks::start(self.state.denials.clone());
        let app = crate::routes::router(self.state);
        // One shutdown for both listeners.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let main =
            crate::listener::serve(self.listener, app, self.limits, stopped(stop_rx.clone()));
        let limits = self.limits;
        let gateway = async move {
            match self.gateway {
                Some(bound) => {
                    // The same header-read timeout and connection cap, no total request
                    // timeout (a long stream or an upgraded connection must not be cut), and
                    // an idle timeout no shorter than the wait for the upstream's answer.
                    let gateway_limits = crate::listener::Limits {
                        request_timeout: None,
                        idle_timeout: limits.idle_timeout.max(bound.gateway.response_timeout()),
                        ..limits
                    };
                    let router = bound.gateway.router();
                    crate::listener::serve(bound.listener, router, gateway_limits, stopped(stop_rx))
                        .await
                }
                None => Ok(()),
            }
        };
        let serve = async move {
            let (main, gateway) = tokio::join!(main, gateway);
            main.and(gateway)
        };
        let grace = self.grace;
        let served = tokio::select! {
            result = serve => result,
            () = async move {
                shutdown.await;
                tracing::info!("shutting down");
                let _ = stop_tx.send(true);
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("requests still running after the grace period; stopping anyway");
                Ok(())
            }
        };
        events.shutdown().await;
        denials.shutdown().await;
        usage.shutdown().await;
        served
    }
}
