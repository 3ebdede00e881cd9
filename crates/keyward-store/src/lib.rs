//! keyward-store: where keyward keeps its state.
//!
//! The server sees storage only through the small capability traits of [`traits`], held as
//! `Arc<dyn Store>`. Two implementations share one body of SQL: SQLite (the embedded default,
//! one WAL file) and PostgreSQL (the shared store of several nodes). Both speak the same
//! portable SQL with `$n` placeholders, so the implementation is written once ([`sql`]) and
//! instantiated per backend; only connection set-up and DDL differ. Migrations are embedded in
//! the binary and applied on connect.
//!
//! # Layout
//! - [`traits`]: the capability traits, filters and the verification bundle.
//! - [`usage`]: [`UsageStore`], usage records, their roll-ups and each token's last use.
//! - [`events`]: [`EventStore`], webhook subscriptions, the event outbox, deliveries and
//!   expiry notices.
//! - [`people`]: [`PeopleStore`], what lets a human user sign in to the dashboard: credentials
//!   (password hash, TOTP), recovery codes, invitations and sessions.
//! - [`change`]: [`ChangeRequestStore`], change requests (security changes waiting for a second
//!   person's approval) and their approvals.
//! - [`feed`]: [`feed::ChangeFeed`], the announcements of changes made by other nodes
//!   (PostgreSQL `LISTEN/NOTIFY`); [`breaker`]: PostgreSQL's circuit breaker.
//! - [`error`]: [`StoreError`], the store's error tier.
//! - [`page`]: cursor pagination.
//! - `sql`: the shared implementation (a macro instantiated by each backend).
//! - [`sqlite`], [`postgres`]: connection, pool and migrations per backend.
//! - `migrate`: the embedded migration runner.

pub mod audit;
pub mod breaker;
pub mod change;
pub mod error;
pub mod events;
pub mod feed;
#[macro_use]
mod sql;
mod migrate;
pub mod page;
pub mod people;
pub mod postgres;
pub mod sqlite;
pub mod traits;
pub mod usage;

use std::sync::Arc;

pub use audit::{AuditFilter, AuditStore};
pub use change::{ChangeApply, ChangeRequestFilter, ChangeRequestStore};
pub use error::{Result, StoreError};
pub use events::{
    AttemptResult, AttemptRow, Claim, DueDelivery, EventStore, EventsPruned, NextStep, NoticeKind,
};
pub use page::{Cursor, PageRequest};
pub use people::{Credentials, Invitation, PeopleStore, Session, SessionStage};
#[doc(hidden)]
pub use traits::load_verification_by_parts;
pub use traits::{
    CatalogueStore, RoleStore, Store, TokenFilter, TokenStore, UserFilter, UserStore,
    VerificationRecord, Versioned, WorkspaceBootstrap, WorkspaceStore, CONCURRENT_UPDATE,
};
pub use usage::{
    LastUse, MinuteUsage, UsageAggregate, UsageBatch, UsageMaintenance, UsageQuery, UsageRecord,
    UsageStore, MINUTE_MS,
};

/// Options for opening a store.
#[derive(Clone)]
pub struct StoreOptions {
    /// `sqlite://path`, `sqlite:path`, or `postgres://…`.
    pub url: String,
    /// PostgreSQL schema to use (created if missing); `None` for the server's default.
    pub schema: Option<String>,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// The key that seals audit events and signs checkpoints; kept outside the database.
    pub chain_key: keyward_core::audit::ChainKey,
    /// SQLite only: when a commit counts as done.
    pub sqlite_synchronous: SqliteSync,
}

/// The URL may hold a password and the chain key is a secret: neither is printed.
impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("url", &"<not shown>")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("chain_key", &"<not shown>")
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .finish()
    }
}

/// When SQLite acknowledges a commit (`PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// After the WAL is synced to disk at every commit: an acknowledged change (a revocation
    /// among them) survives an OS crash or power loss. The default.
    #[default]
    Full,
    /// Before the WAL is synced (it is synced at checkpoints): faster writes, but an OS crash
    /// or power loss can lose the last acknowledged transactions. A process crash loses
    /// nothing either way.
    Normal,
}

/// Refuses a database url neither backend takes, before anything is opened or created.
pub fn check_url(url: &str) -> Result<()> {
    if url.starts_with("postgres://")
        || url.starts_with("postgresql://")
        || url.starts_with("sqlite:")
    {
        Ok(())
    } else {
        Err(StoreError::Config(
            "database url must start with sqlite: or postgres://".into(),
        ))
    }
}

/// Opens (creating and migrating as needed) the store that `options.url` names.
pub async fn open(options: &StoreOptions) -> Result<Arc<dyn Store>> {
    let url = options.url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::open(options).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(options).await?))
    } else {
        Err(StoreError::Config(
            "database url must start with sqlite: or postgres://".into(),
        ))
    }
}
