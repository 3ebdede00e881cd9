//! keyward-core: the pure domain of keyward.
//!
//! Everything here is deterministic: no I/O, no async runtime, no clock reads. Time enters as a
//! parameter (`now`), randomness as an `RngCore`. The server and the store build on these types;
//! the domain never mentions HTTP or SQL.
//!
//! # Layout
//! - [`ids`]: typed, prefixed identifiers (`ws_…`, `usr_…`, `rol_…`, `tok_…`, `whk_…`, `msg_…`,
//!   `chg_…`).
//! - [`secret`]: the token format (`{prefix}_{base62 random}{base62 CRC32}`), parsing and hashing.
//! - [`permission`]: `resource:action` permissions, wildcard patterns, the permission catalogue.
//! - [`model`]: workspaces, users, roles, tokens and their settings.
//! - [`validate`]: the rules that input must satisfy, with field-naming errors.
//! - [`ip`]: IP allowlists (addresses and CIDR ranges), parsed from user input, O(log n) lookup.
//! - [`delegation`]: least privilege when one token creates or changes another.
//! - [`decision`]: the compiled (cacheable) form of a token and the access decision (DESIGN §3).
//! - [`ratelimit`]: the rate-limit algorithm (GCRA) as a pure function of stored state and `now`.
//! - [`api`]: the JSON shapes of the HTTP API, shared by the server and the typed client.
//! - [`events`]: event types, webhook subscriptions and deliveries, their wire shapes.
//! - [`usage`]: the usage report's shape, usage buckets and endpoints.
//! - [`change`]: change requests, security changes that wait for a second person's approval.
//! - [`clock`]: the clock abstraction that the server injects.

pub mod api;
pub mod audit;
mod base62;
pub mod change;
pub mod clock;
pub mod decision;
pub mod delegation;
pub mod error;
pub mod events;
pub mod ids;
pub mod ip;
pub mod model;
pub mod permission;
pub mod ratelimit;
pub mod schema;
pub mod secret;
pub mod usage;
pub mod validate;

pub use change::{Approval, ApproveChange, ChangeRequest, ChangeState, ChangeTarget, DecideChange};
pub use clock::Clock;
pub use decision::{decide, Code, CompiledRole, CompiledToken, DecisionRequest};
pub use error::DomainError;
pub use ids::{
    ChangeRequestId, DeliveryId, EventId, RoleId, TokenId, UserId, WebhookId, WorkspaceId,
};
pub use model::{
    RateLimitPer, Role, RoleKind, Scope, Token, TokenStatus, User, UserKind, Workspace,
    WorkspaceSettings,
};
pub use permission::{CatalogueEntry, Permission, PermissionPattern};
pub use secret::{TokenHash, TokenHasher, TokenSecret};
