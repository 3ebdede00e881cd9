//! keyward-tower: keyward embedded in a Rust service, as a tower layer: requests are admitted
//! by keyward's route table and tokens in-process, with no network hop to a keyward server
//! (DESIGN §4).
//!
//! The layer holds a [`Gate`]: the same hot path as the server (cache, verifier, limiter,
//! usage and denial sinks) over the server's store. It decides exactly as a server node does,
//! writes usage and security denials to the same tables and audit chain, and learns of changes
//! made through the server (a revocation) as another node does: when a cached token's
//! `cache.ttl_secs` runs out.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{routing::get, Extension, Router};
//! use keyward_tower::{GateOptions, KeywardLayer, Principal};
//!
//! let options: GateOptions = toml::from_str(r#"
//!     database_url = "sqlite:///var/lib/keyward/keyward.db"
//!     [[edge.routes]]
//!     route = "GET /orders/{id}"
//!     permissions = ["orders:read"]
//! "#)?;
//! let layer = KeywardLayer::connect(&options).await?;
//! let app = Router::new()
//!     .route("/orders/{id}", get(|Extension(p): Extension<Principal>| async move {
//!         p.token_id.to_string()
//!     }))
//!     .layer(layer.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
//!     .await?;
//! layer.gate().shutdown().await; // writes the usage still queued
//! # Ok(()) }
//! ```
//!
//! What the inner service sees: a request let through carries the [`Principal`] as a request
//! extension (none on an anonymous route reached without a credential: extract
//! `Option<Extension<Principal>>` there), and no `X-Keyward-*` principal header the client
//! sent. A refused request never reaches it: the layer answers with the refusal of the edge
//! contract (401/403/429, `X-Keyward-Code`, `WWW-Authenticate`, problem+json), or 503
//! `STORE_UNAVAILABLE` when the store cannot be reached.
//!
//! The client address (for IP allowlists, internal-only tokens and the brute-force guard) is
//! the connection's peer, from the first of these request extensions: [`PeerAddr`], axum's
//! `ConnectInfo<SocketAddr>` (feature `axum`, on by default: serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`), a plain [`std::net::SocketAddr`].
//! Forwarding headers are believed only from `trusted_proxies`. With no peer address, the
//! address is unknown and any allowlist refuses.
//!
//! The route table matches the path the layer sees: put the layer on the outermost router
//! (a layer inside a nested router sees the path with the prefix removed).
//!
//! # Layout
//! - this file: the crate documentation and re-exports of the gate's types.
//! - [`layer`]: [`KeywardLayer`] and its service, [`Keyward`].
//! - [`peer`]: the peer address's extension and how it is read.

pub mod layer;
pub mod peer;

pub use keyward_gate::edge::{Principal, Refusal};
pub use keyward_gate::gate::{Gate, GateOpenError, GateOptions};
pub use layer::{Keyward, KeywardLayer};
pub use peer::PeerAddr;
