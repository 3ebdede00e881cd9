//! Change requests: security changes that wait for a second person's approval. Part of
//! [`crate::Store`].
//!
//! Two tables: `change_requests` (the request, its patch, the target as it was and the row
//! version it was computed from, and how it was decided) and `change_request_approvals` (one
//! row per approving person: the primary key `(request_id, user_id)` lets a person approve a
//! request once).
//!
//! Every transition is one conditional `UPDATE … WHERE state = 'pending'`, so of concurrent
//! deciders exactly one wins, and its [`AuditDraft`] is appended in the same transaction.
//! Applying a request also runs the target's own conditional versioned update (as
//! `update_workspace`, `update_role`, `update_token`) in that transaction: a target changed
//! since the request was read rolls everything back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::{
    Approval, ChangeRequest, ChangeRequestId, ChangeState, Role, Token, UserId, Workspace,
    WorkspaceId,
};

use crate::{PageRequest, Result, Versioned};

/// Which change requests to list. Every field narrows; `Default` lists all.
#[derive(Debug, Clone, Default)]
pub struct ChangeRequestFilter {
    /// Only requests in this state.
    pub state: Option<ChangeState>,
    /// Only requests whose target is of this kind (`workspace`, `role`, `token`).
    pub target_kind: Option<String>,
    /// Only requests whose target has this id as shown (`rol_…`, `tok_…`).
    pub target_id: Option<String>,
    /// Only requests made by (or for) this person.
    pub requested_by_user: Option<UserId>,
}

/// The target's new value, applied with a request: the same conditional update as the
/// target's own store method, on the version it names.
#[derive(Debug, Clone)]
pub enum ChangeApply {
    /// As [`crate::WorkspaceStore::update_workspace`].
    Workspace(Versioned<Workspace>),
    /// As [`crate::RoleStore::update_role`].
    Role(Versioned<Role>),
    /// As [`crate::TokenStore::update_token`].
    Token(Versioned<Token>),
}

/// Change requests and their approvals.
#[async_trait]
pub trait ChangeRequestStore: Send + Sync {
    /// Stores a new request (its `approvals` are not stored: approvals come through
    /// [`add_approval`](Self::add_approval)), appending `audit`.
    async fn create_change_request(&self, r: &ChangeRequest, audit: &AuditDraft) -> Result<()>;
    /// One request of `ws`, with its approvals, oldest first.
    async fn change_request(
        &self,
        ws: WorkspaceId,
        id: ChangeRequestId,
    ) -> Result<Option<ChangeRequest>>;
    /// The requests of `ws` that `filter` lets through, newest first: a page ends where
    /// `page.after` (the last request seen) names, and holds at most `page.limit`.
    async fn list_change_requests(
        &self,
        ws: WorkspaceId,
        filter: &ChangeRequestFilter,
        page: &PageRequest,
    ) -> Result<Vec<ChangeRequest>>;
    /// Records `approval` if the request is pending and not expired at `approval.at`, has
    /// fewer approvals than it needs, and neither the person nor the maker of their token stands
    /// behind an approval of it already (as approver or maker), appending
    /// `audit`. Returns whether it was
    /// recorded; `false` (and nothing is written) otherwise, or when there is no such request.
    async fn add_approval(
        &self,
        ws: WorkspaceId,
        id: ChangeRequestId,
        approval: &Approval,
        audit: &AuditDraft,
    ) -> Result<bool>;
    /// Moves a pending request to `to` (rejected, cancelled, expired or failed), recording who,
    /// why and when, appending `audit`. Returns whether it moved; `false` (and nothing is
    /// written) when it was not pending. One conditional update: of concurrent callers exactly
    /// one gets `true`. `to` must be final and not `applied` (use
    /// [`apply_change_request`](Self::apply_change_request)).
    #[allow(clippy::too_many_arguments)]
    async fn finish_change_request(
        &self,
        ws: WorkspaceId,
        id: ChangeRequestId,
        to: ChangeState,
        decided_by: &Actor,
        comment: &str,
        outcome: Option<&str>,
        at: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> Result<bool>;
    /// In one transaction: moves the pending request to `applied`, stores `change` with the
    /// target's conditional versioned update and appends `audits`. `Ok(false)` (nothing
    /// written) when the request is not pending or has expired by `at`; the target's update errors as it does alone
    /// ([`crate::CONCURRENT_UPDATE`] when the target changed since it was read, `NotFound`
    /// when it is gone), and then nothing is written either: the request stays pending.
    async fn apply_change_request(
        &self,
        ws: WorkspaceId,
        id: ChangeRequestId,
        change: &ChangeApply,
        decided_by: &Actor,
        at: DateTime<Utc>,
        audits: &[AuditDraft],
    ) -> Result<bool>;
    /// Pending requests whose expiry is at or before `now`, in every workspace, the earliest
    /// expiry first, at most `limit` (for the scheduler to finish as expired).
    async fn expired_change_requests(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ChangeRequest>>;
}
