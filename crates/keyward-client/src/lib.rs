//! keyward-client: a typed HTTP client for keyward's verify and admin APIs.
//!
//! The request and answer shapes are those of [`keyward_core::api`] and
//! [`keyward_core::model`], shared with the server so the two cannot drift apart. The CLI's admin
//! verbs and the integration tests both talk to keyward through this crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keyward_client::ClientError> {
//! let client = keyward_client::Client::new("http://127.0.0.1:8080", Some("kw_…".into()))?;
//! let me = client.workspace().await?;
//! println!("{}", me.name);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`client`]: [`Client`] itself — construction, URL building, sending and decoding; plus
//!   `verify`, `health` and `ready`.
//! - [`error`]: [`ClientError`], which keeps the server's problem+json document intact.
//! - [`query`]: the listing filters ([`ListParams`], [`UserQuery`], [`TokenQuery`],
//!   [`ChangeRequestListParams`]).
//! - `workspace`, `user`, `role`, `permission`, `token`: one module per admin resource, each
//!   adding its methods to [`Client`]; `usage`: a token's usage ([`UsageParams`]) and
//!   `/metrics`; `webhook`: webhook subscriptions, their secret's rotation and delivery log;
//!   `change_request`: the security changes waiting for another person's approval.
//! - The PATCH calls `update_workspace`, `update_role` and `update_token` answer
//!   [`ClientError::PendingApproval`] when keyward held the change for approval (202) instead
//!   of applying it.
//!
//! The bearer token is never part of an error or of `Debug` output.

mod audit;
mod change_request;
pub mod client;
pub mod error;
mod permission;
pub mod query;
mod role;
mod rotation;
mod token;
mod usage;
mod user;
mod webhook;
mod workspace;

pub use client::Client;
pub use error::ClientError;
pub use query::{ChangeRequestListParams, ListParams, TokenQuery, UserQuery};
pub use usage::UsageParams;
