//! keyward-gate: keyward's hot path as a library, shared by the server's verify API,
//! forward-auth and gateway, and by the embedded tower layer (`keyward-tower`).
//!
//! A presented secret becomes a decision here: the brute-force guard, the format check, the
//! token cache (a cached token is decided with no storage I/O), the pure decision of
//! `keyward-core`, the rate limiter, and the sinks that carry usage records and security
//! denials off the hot path to batch writers. The gate depends on `keyward-core` and the
//! store traits of `keyward-store`, never on the server: the admin API, the dashboard, events
//! and schedulers stay there.
//!
//! # Layout
//! - [`verifier`]: [`verifier::Verifier`], a secret and an [`verifier::Ask`] → a
//!   [`verifier::Verdict`].
//! - [`routes`]: the route table: an original request's method and path → what it needs.
//! - [`edge`]: [`edge::Edge`], the admission shared by forward-auth, the gateway and the
//!   embedded layer: route table, credential, decision → principal headers or a refusal.
//! - [`gate`]: [`gate::Gate`], all of the above assembled over a store opened from
//!   [`gate::GateOptions`], with the usage and denial tasks running: what the embedded layer
//!   holds.
//! - [`cache`]: compiled tokens by secret hash, a negative cache, invalidation, stale entries
//!   served while the store is unreachable.
//! - [`follow`]: the store's change feed followed into the cache (other nodes' changes).
//! - [`limiter`]: rate-limit state behind [`limiter::RateLimiter`]: in memory, or shared in
//!   Redis (`[ratelimit]`).
//! - [`client_ip`]: the client address, through trusted proxies only.
//! - [`usage`]: usage records' channel, batch writer, roll-up and pruning.
//! - [`denials`]: security denials aggregated into the audit trail.
//! - [`metrics`]: decisions, latency, cache, change feed, circuit and usage as Prometheus
//!   metrics.
//! - [`headers`]: the `RateLimit-Policy` / `RateLimit` / `Retry-After` headers.
//! - [`audit_key`]: where the audit chain key comes from (configuration, key file, generated);
//!   the server and the embedded layer append to the same chain.
//! - [`clock`]: the system clock and a hand-moved one for tests.
//! - [`error`]: [`GateError`], what stops a decision from being made.

pub mod audit_key;
pub mod cache;
pub mod client_ip;
pub mod clock;
pub mod denials;
pub mod edge;
pub mod error;
pub mod follow;
pub mod gate;
pub mod headers;
pub mod limiter;
pub mod metrics;
pub mod routes;
pub mod usage;
pub mod verifier;

pub use error::GateError;
