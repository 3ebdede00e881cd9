//! keyward-server: the HTTP face of keyward.
//!
//! Data flows one way: HTTP → front end (a JSON handler of the admin API; the dashboard) →
//! operation ([`ops`]) or the verifier → the pure decision of `keyward-core` → the store
//! (behind `keyward-store`'s traits). The verify hot path does no storage I/O for a cached
//! token; every admin operation authorizes, audits and invalidates what its change affects,
//! whichever front end calls it.
//!
//! # Layout
//! - [`startup`]: [`Application`]: build (store, cache, first workspace), bind, run, shut down.
//! - [`config`]: layered configuration.
//! - [`listener`]: the HTTP/1.1 connection loop: connection cap, header-read, request and idle
//!   timeouts, graceful shutdown.
//! - [`routes`]: the router, health, the verify API.
//! - [`forward_auth`]: `/auth` for nginx, Caddy, Traefik and Envoy, over the gate's edge.
//! - [`gateway`]: gateway mode: the same edge, then a streaming reverse proxy to an upstream,
//!   on a listener of its own.
//! - [`ops`]: the operations layer, one module per resource: authorization, validation,
//!   delegation checks, audit drafts, cache invalidation and events, with no HTTP types; and
//!   [`ops::Caller`], the acting principal (a token or a person).
//! - [`admin`]: the admin REST API, a thin JSON front end over [`ops`].
//! - [`verifier`], [`cache`], [`limiter`], [`client_ip`], [`usage`], [`denials`], [`clock`],
//!   [`audit_key`]:
//!   the hot path, re-exported from `keyward-gate`, which the embedded layer shares.
//! - [`extract`]: JSON/query extractors and the authentication that builds a token
//!   [`ops::Caller`] (admin API) or an [`extract::VerifierCaller`] (verify API).
//! - [`error`]: [`ApiError`], the single problem+json mapping.
//! - [`bootstrap`]: a workspace with its first admin.
//! - [`state`]: the shared state.
//! - [`events`]: events, the webhook delivery worker and the expiry scheduler.
//! - [`leaks`]: GitHub secret-scanning alerts: verify, revoke, answer.
//! - [`people`]: human sign-in: passwords, TOTP, recovery codes, invitations, sessions.
//! - [`ui`]: the web dashboard at `/ui`, a front end over the operations layer.
//! - [`metrics`]: `/metrics` in the Prometheus text format.
//! - [`openapi`]: the OpenAPI 3.1 document at `/openapi.json`.

pub mod admin;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod events;
pub mod extract;
pub mod forward_auth;
pub mod gateway;
pub mod leaks;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod people;
pub mod routes;
pub mod startup;
pub mod state;
pub mod ui;

// The hot path lives in keyward-gate; these keep its modules at their old paths here.
pub use keyward_gate::{audit_key, cache, client_ip, clock, denials, limiter, usage, verifier};

pub use config::Config;
pub use error::ApiError;
pub use startup::{Application, StartupError};
