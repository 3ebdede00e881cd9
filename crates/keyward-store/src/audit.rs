//! The audit trail in storage. Events are appended by every mutation of the other stores, in
//! the mutation's own transaction (each mutating method takes its [`AuditDraft`]); this trait
//! appends events that accompany no change (aggregated denials, system notices) and reads the
//! trail back. Part of [`crate::Store`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyward_core::audit::{AuditDraft, AuditEvent};
use keyward_core::{TokenId, WorkspaceId};

use crate::Result;

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events by this actor: a token id or a user id (`tok_…`/`usr_…` form).
    pub actor: Option<String>,
    /// Only events about or by this token.
    pub token: Option<TokenId>,
    /// Only this action (`token.created`), or a family of them (`token.*`).
    pub action: Option<String>,
    /// Only events at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only events before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Start after this event number (ascending) or before it (descending).
    pub cursor: Option<i64>,
    /// Newest first.
    pub descending: bool,
    /// Events to return at most.
    pub limit: u32,
}

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends events, in order, in one transaction.
    async fn append_audit(&self, drafts: &[AuditDraft]) -> Result<()>;
    /// A page of a workspace's events.
    async fn list_audit(&self, ws: WorkspaceId, filter: &AuditFilter) -> Result<Vec<AuditEvent>>;
    /// The number and hash of a workspace's last event, as its chain head records them.
    async fn audit_head(&self, ws: WorkspaceId) -> Result<Option<(i64, String)>>;
}
