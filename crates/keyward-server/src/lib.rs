//! keyward-server: the HTTP face of keyward.
//!
//! Data flows one way: HTTP → handler → the pure decision of `keyward-core` → the store
//! (behind `keyward-store`'s traits). The verify hot path does no storage I/O for a cached
//! token; admin handlers invalidate what their change affects.
//!
//! # Layout
//! - [`startup`]: [`Application`]: build (store, cache, first workspace), bind, run, shut down.
//! - [`config`]: layered configuration.
//! - [`listener`]: the HTTP/1.1 connection loop: connection cap, header-read, request and idle
//!   timeouts, graceful shutdown.
//! - [`routes`]: the router, health, the verify API.
//! - [`admin`]: the admin REST API, one module per resource.
//! - [`verifier`], [`cache`]: the hot path and its cache.
//! - [`limiter`]: rate-limit state behind a trait (in memory today; shared later).
//! - [`client_ip`]: the client address, through trusted proxies only.
//! - [`extract`]: JSON/query extractors and the authenticated [`extract::Caller`].
//! - [`error`]: [`ApiError`], the single problem+json mapping.
//! - [`bootstrap`]: a workspace with its first admin.
//! - [`denials`]: security denials aggregated into the audit trail.
//! - [`audit_key`]: where the audit chain key comes from (configuration, key file, generated).
//! - [`clock`], [`state`]: the injected clock and the shared state.
//! - [`usage`]: usage records off the hot path: channel, batch writer, roll-up and pruning.
//! - [`events`]: events, the webhook delivery worker and the expiry scheduler.
//! - [`leaks`]: GitHub secret-scanning alerts: verify, revoke, answer.
//! - [`metrics`]: `/metrics` in the Prometheus text format.
//! - [`openapi`]: the OpenAPI 3.1 document at `/openapi.json`.

pub mod admin;
pub mod audit_key;
pub mod bootstrap;
pub mod cache;
pub mod client_ip;
pub mod clock;
pub mod config;
pub mod denials;
pub mod error;
pub mod events;
pub mod extract;
pub mod leaks;
pub mod limiter;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;
pub mod usage;
pub mod verifier;

pub use config::Config;
pub use error::ApiError;
pub use startup::{Application, StartupError};
