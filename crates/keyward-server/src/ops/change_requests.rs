//! Change requests: the two-person rule for security changes.
//!
//! When a workspace requires approval, the update operations of the workspace, roles and
//! tokens plan the change as usual (every check made as the requester) and then, if the change
//! is one that needs approval ([`keyward_core::change`]), [`hold`] keeps it as a pending
//! request instead of storing it. The request records the patch, the target as it was and the
//! target's row version.
//!
//! A person other than the requester who holds `keyward.security:approve` approves it with the
//! request's one-time code ([`approve`]). The last approval plans the same patch again, as the
//! approver (so applying needs what applying directly would need, and cannot widen the
//! change), on the version the request was based on, and stores it in one transaction with the
//! request's transition and every audit event. A target that changed meanwhile fails the
//! request as `STALE`; nothing is applied. [`reject`] and [`cancel`] end a request, and the
//! scheduler expires the ones nobody decided in time ([`expire_due`]).
//!
//! Every transition is audited as `change_request.*` and sent as the webhook event of that
//! name. The approval code is an HMAC of the request id under a key derived from the chain key
//! ([`keyward_core::change::approval_code`]): only its hash is stored, `change_request.created`
//! carries it to the approvers' webhook, and the approvers' inbox shows it. It never reaches a
//! log, an error or an audit event.

use chrono::Duration;
use keyward_core::api::{Page, RolePatch, TokenPatch, WorkspacePatch};
use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::change::{approval_code, code_hash};
use keyward_core::events::{Event, EventType};
use keyward_core::model::{UserKind, WorkspaceSettings};
use keyward_core::{
    validate, Approval, ApproveChange, ChangeRequest, ChangeRequestId, ChangeState, ChangeTarget,
    DecideChange, DomainError, EventId, UserId,
};
use keyward_store::{ChangeApply, ChangeRequestFilter, Cursor, StoreError, CONCURRENT_UPDATE};
use serde::{Deserialize, Serialize};

use super::paging::{into_page, page_request};
use super::{roles, tokens, workspaces, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// The permission that lets a person approve or reject the requests of others.
pub const APPROVE: &str = "keyward.security:approve";

/// What an update did: applied at once, or kept as a change request awaiting approval.
#[derive(Debug, Clone)]
pub enum Outcome<T> {
    /// Stored; here is the new value.
    Applied(T),
    /// Not applied: waiting for approval as this request.
    Pending(Box<ChangeRequest>),
}

impl<T> Outcome<T> {
    /// Maps the applied value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Applied(v) => Outcome::Applied(f(v)),
            Outcome::Pending(r) => Outcome::Pending(r),
        }
    }
}

/// `GET /v1/change-requests?state=&target_kind=&target_id=&requested_by=&limit=&cursor=`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequestQuery {
    /// `pending`, `applied`, `rejected`, `cancelled`, `expired` or `failed`.
    pub state: Option<String>,
    /// `workspace`, `role` or `token`.
    pub target_kind: Option<String>,
    /// A role or token id.
    pub target_id: Option<String>,
    /// The requesting user's id.
    pub requested_by: Option<String>,
    /// Items per page (1–200).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> ApiError {
    DomainError::field(code, field, message).into()
}

/// The caller's approval-code key (derived from the chain key at start).
fn code_of(state: &AppState, id: ChangeRequestId) -> String {
    approval_code(&state.people.approval_key, id)
}

/// Keeps a planned change as a pending request instead of storing it. `change` is the patch
/// as taken (without its reason), `before` the target's view as it was.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn hold(
    state: &AppState,
    caller: &Caller,
    settings: &WorkspaceSettings,
    target: ChangeTarget,
    change: serde_json::Value,
    before: serde_json::Value,
    base_version: i64,
    reason: Option<&str>,
) -> Result<ChangeRequest, ApiError> {
    let reason = validate::description(reason.unwrap_or(""), "reason")?;
    ensure_room_for_another(state, caller).await?;
    let now = state.now();
    let id = ChangeRequestId::random(&mut rand_core::OsRng);
    let code = code_of(state, id);
    let request = ChangeRequest {
        id,
        workspace_id: caller.workspace_id(),
        target,
        change,
        before,
        base_version,
        requested_by: caller.actor(),
        requested_by_maker: maker_of(state, caller).await?,
        reason,
        state: ChangeState::Pending,
        approvals_needed: settings.approvals_required.max(1),
        approvals: vec![],
        code_hash: code_hash(&state.people.approval_key, &code),
        created_at: now,
        expires_at: now + Duration::hours(i64::from(settings.approval_expiry_hours.max(1))),
        decided_at: None,
        decided_by: None,
        comment: String::new(),
        outcome: None,
    };
    let audit = caller
        .audit(
            state,
            "change_request.created",
            "change_request",
            id.to_string(),
        )
        .after(&request);
    state.store.create_change_request(&request, &audit).await?;
    tracing::info!(
        change_request = %id,
        target = target.kind(),
        "security change held for approval"
    );
    emit(
        state,
        EventType::ChangeRequestCreated,
        &request,
        Some(&code),
    )
    .await;
    Ok(request)
}

/// Enqueues the webhook event of a transition. The transition is stored already: an outbox
/// failure is logged, not answered.
async fn emit(state: &AppState, t: EventType, r: &ChangeRequest, code: Option<&str>) {
    let event = Event::about_change(
        EventId::random(&mut rand_core::OsRng),
        t,
        r,
        code,
        state.now(),
    );
    match state.store.enqueue_event(&event).await {
        Ok(n) if n > 0 => state.events.wake.notify_one(),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, kind = t.as_str(), "change request event not enqueued")
        }
    }
}

/// How many requests one person may have pending at once: enough for real work, few enough that
/// nobody buries the approvers' inbox.
pub const MAX_PENDING_PER_REQUESTER: u32 = 20;

/// Refuses a new request from a person who has [`MAX_PENDING_PER_REQUESTER`] pending already.
async fn ensure_room_for_another(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let filter = ChangeRequestFilter {
        state: Some(ChangeState::Pending),
        target_kind: None,
        target_id: None,
        requested_by_user: Some(caller.owner_id()),
    };
    let page = keyward_store::PageRequest {
        limit: MAX_PENDING_PER_REQUESTER,
        after: None,
    };
    let pending = state
        .store
        .list_change_requests(caller.workspace_id(), &filter, &page)
        .await?;
    if pending.len() >= MAX_PENDING_PER_REQUESTER as usize {
        return Err(ApiError::conflict(
            "TOO_MANY_PENDING_REQUESTS",
            format!(
                "you have {MAX_PENDING_PER_REQUESTER} change requests waiting for approval \
                 already; cancel some, or wait until they are decided"
            ),
        ));
    }
    Ok(())
}

/// Whether the caller may see every request of the workspace (an approver), rather than only
/// its own.
fn sees_all(caller: &Caller) -> bool {
    caller.holds(APPROVE) && caller.require_workspace_scope().is_ok()
}

/// Whether the caller may approve or reject `r`: it holds the permission with workspace scope,
/// and stands behind neither the request nor an approval of it. (That it is a person, and the
/// maker of its token, are checked when it tries.)
pub fn may_decide(caller: &Caller, r: &ChangeRequest) -> bool {
    sees_all(caller) && !r.involves(caller.owner_id())
}

/// The request's approval code, for the approvers' inbox: `None` unless the caller may decide
/// it and it is still pending.
pub fn code_for(state: &AppState, caller: &Caller, r: &ChangeRequest) -> Option<String> {
    (may_decide(caller, r) && r.state == ChangeState::Pending).then(|| code_of(state, r.id))
}

/// Lists requests, newest first: every request for an approver, only one's own otherwise.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: &ChangeRequestQuery,
) -> Result<Page<ChangeRequest>, ApiError> {
    let mut filter = ChangeRequestFilter {
        state: q
            .state
            .as_deref()
            .map(|s| {
                ChangeState::parse(s.trim()).ok_or_else(|| {
                    invalid(
                        "INVALID_STATE",
                        "state",
                        "state must be pending, applied, rejected, cancelled, expired or failed",
                    )
                })
            })
            .transpose()?,
        target_kind: q
            .target_kind
            .as_deref()
            .map(|k| match k.trim() {
                k @ ("workspace" | "role" | "token") => Ok(k.to_owned()),
                _ => Err(invalid(
                    "INVALID_TARGET",
                    "target_kind",
                    "target_kind must be workspace, role or token",
                )),
            })
            .transpose()?,
        target_id: q
            .target_id
            .as_deref()
            .map(|t| {
                let t = t.trim();
                keyward_core::RoleId::parse(t)
                    .map(|r| r.to_string())
                    .or_else(|_| keyward_core::TokenId::parse(t).map(|t| t.to_string()))
                    .map_err(|_| {
                        invalid(
                            "INVALID_ID",
                            "target_id",
                            "target_id must be a role or token id",
                        )
                    })
            })
            .transpose()?,
        requested_by_user: q
            .requested_by
            .as_deref()
            .map(|u| {
                UserId::parse(u.trim()).map_err(|_| {
                    invalid(
                        "INVALID_ID",
                        "requested_by",
                        "requested_by must be a user id",
                    )
                })
            })
            .transpose()?,
    };
    if !sees_all(caller) {
        let own = caller.owner_id();
        if filter.requested_by_user.is_some_and(|u| u != own) {
            return Err(ApiError::MissingPermission(APPROVE.into()));
        }
        filter.requested_by_user = Some(own);
    }
    let (page, size) = page_request(q.limit, q.cursor.as_deref())?;
    let items = state
        .store
        .list_change_requests(caller.workspace_id(), &filter, &page)
        .await?;
    Ok(into_page(
        items,
        size,
        |r| Cursor {
            created_at: r.created_at,
            id: r.id.uuid(),
        },
        |r| r,
    ))
}

/// One request the caller may see.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    id: ChangeRequestId,
) -> Result<ChangeRequest, ApiError> {
    let r = state
        .store
        .change_request(caller.workspace_id(), id)
        .await?
        .ok_or(ApiError::NotFound("change request"))?;
    if !sees_all(caller) && r.requested_by.user_id != Some(caller.owner_id()) {
        return Err(ApiError::NotFound("change request"));
    }
    Ok(r)
}

/// The request, pending and unexpired. An expired one is finished as expired on the way.
async fn open(
    state: &AppState,
    caller: &Caller,
    id: ChangeRequestId,
) -> Result<ChangeRequest, ApiError> {
    let r = get(state, caller, id).await?;
    if r.state.is_final() {
        return Err(ApiError::conflict(
            "CHANGE_REQUEST_CLOSED",
            format!("this change request is {} already", r.state.as_str()),
        ));
    }
    if r.is_expired(state.now()) {
        expire(state, &r).await?;
        return Err(ApiError::conflict(
            "CHANGE_REQUEST_EXPIRED",
            "this change request expired before it was approved",
        ));
    }
    Ok(r)
}

/// The person who made the caller's token, when that is a human user other than its owner:
/// whoever made a token knows its secret, so they stand behind what it does. `None` for a
/// person in the dashboard, a token its owner made, one whose recorded maker is a service user
/// (only the bootstrap admin token's makings, see [`responsible_maker`]: whoever holds it is
/// not known to keyward) and one made before keyward recorded its maker.
async fn maker_of(state: &AppState, caller: &Caller) -> Result<Option<UserId>, ApiError> {
    let Some(id) = caller.token_id() else {
        return Ok(None);
    };
    let ws = caller.workspace_id();
    let Some(maker) = state
        .store
        .token(ws, id)
        .await?
        .and_then(|t| t.created_by)
        .filter(|m| *m != caller.owner_id())
    else {
        return Ok(None);
    };
    let human = state
        .store
        .user(ws, maker)
        .await?
        .is_some_and(|u| u.kind == UserKind::Human);
    Ok(human.then_some(maker))
}

/// Who answers for a token the caller makes (creates or rotates): the caller's owner; but for a
/// service user's token, whoever made that token, as recorded (the bootstrap admin token's
/// maker is its own service user). So a person who made a service user's token and then made
/// tokens with it still stands behind those.
pub(crate) async fn responsible_maker(
    state: &AppState,
    caller: &Caller,
) -> Result<UserId, ApiError> {
    let owner = caller.owner_id();
    let Some(id) = caller.token_id() else {
        return Ok(owner);
    };
    let ws = caller.workspace_id();
    let service = state
        .store
        .user(ws, owner)
        .await?
        .is_some_and(|u| u.kind == UserKind::Service);
    if !service {
        return Ok(owner);
    }
    Ok(state
        .store
        .token(ws, id)
        .await?
        .and_then(|t| t.created_by)
        .unwrap_or(owner))
}

/// Refuses a decider who may not decide `r`: without the permission or workspace scope, the
/// requesting person (with any of their tokens, or a token someone made for them), or not a
/// person at all. Answers the maker of the caller's token (see [`maker_of`]).
async fn ensure_decider(
    state: &AppState,
    caller: &Caller,
    r: &ChangeRequest,
) -> Result<Option<UserId>, ApiError> {
    caller.require(APPROVE)?;
    caller.require_workspace_scope()?;
    let maker = maker_of(state, caller).await?;
    let behind = [Some(caller.owner_id()), maker];
    if r.requesters().any(|p| behind.contains(&Some(p))) {
        return Err(ApiError::forbidden(
            "SELF_APPROVAL",
            "the person who requested a change cannot approve or reject it, with any of their \
             tokens or with a token made by or for them; they may cancel it",
        ));
    }
    let user = state
        .store
        .user(caller.workspace_id(), caller.owner_id())
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    if user.kind != UserKind::Human || user.disabled {
        return Err(ApiError::forbidden(
            "APPROVER_NOT_A_PERSON",
            "change requests are approved by people: use a token of a human user, or the \
             dashboard",
        ));
    }
    Ok(maker)
}

/// Approves a pending request (`keyward.security:approve`, not the requester, with its code).
/// The last approval needed applies it; the answer is the request as it now stands.
pub async fn approve(
    state: &AppState,
    caller: &Caller,
    id: ChangeRequestId,
    body: &ApproveChange,
) -> Result<ChangeRequest, ApiError> {
    validate::text(&body.comment, "comment", true)?;
    let r = open(state, caller, id).await?;
    let maker = ensure_decider(state, caller, &r).await?;
    if code_hash(&state.people.approval_key, &body.code) != r.code_hash {
        let audit = caller.audit(
            state,
            "change_request.code_failed",
            "change_request",
            id.to_string(),
        );
        state.store.append_audit(&[audit]).await?;
        tracing::warn!(change_request = %id, "change request approval with a wrong code");
        return Err(ApiError::forbidden(
            "INVALID_APPROVAL_CODE",
            "the approval code is not this change request's",
        ));
    }
    if [Some(caller.owner_id()), maker]
        .into_iter()
        .flatten()
        .any(|p| r.involves(p))
    {
        return Err(ApiError::conflict(
            "ALREADY_APPROVED",
            "you have approved this change request already (yourself, or with a token made by \
             or for you); it waits for someone else",
        ));
    }
    // Before anything is recorded: the approver must be able to apply it (last approval) or
    // at least to make it directly (any approval), as of the target now.
    let planned = plan(state, caller, &r).await?;
    if r.approvals.len() >= r.approvals_needed as usize {
        // Approved enough, but its application did not happen (an error on the way): an
        // approver who could approve it applies it now.
        return apply(state, caller, r, planned).await;
    }
    let approval = Approval {
        user_id: caller.owner_id(),
        token_id: caller.token().map(|t| t.token_id),
        token_maker: maker,
        at: state.now(),
        comment: body.comment.trim().to_owned(),
    };
    let mut approved = r.clone();
    approved.approvals.push(approval.clone());
    let audit = caller
        .audit(
            state,
            "change_request.approved",
            "change_request",
            id.to_string(),
        )
        .before(&r)
        .after(&approved);
    if !state
        .store
        .add_approval(r.workspace_id, id, &approval, &audit)
        .await?
    {
        return Err(ApiError::conflict(
            "CHANGE_REQUEST_CLOSED",
            "this change request was decided meanwhile",
        ));
    }
    emit(state, EventType::ChangeRequestApproved, &approved, None).await;
    // Counted as stored, not as read before: of two approvals given at once, the one that
    // completes the count applies (and of two that both see it complete, one).
    let approved = state
        .store
        .change_request(r.workspace_id, id)
        .await?
        .unwrap_or(approved);
    if approved.state != ChangeState::Pending
        || approved.approvals.len() < approved.approvals_needed as usize
    {
        return Ok(approved);
    }
    apply(state, caller, approved, planned).await
}

/// The target's new value and its audit event, planned as `caller` from the target as it is
/// now; `STALE` (and the request failed) when the target changed since the request was made.
async fn plan(
    state: &AppState,
    caller: &Caller,
    r: &ChangeRequest,
) -> Result<(ChangeApply, AuditDraft), ApiError> {
    let ws = r.workspace_id;
    let current_version = match r.target {
        ChangeTarget::Workspace => state
            .store
            .workspace_versioned(ws)
            .await?
            .map(|v| v.version),
        ChangeTarget::Role(id) => state.store.role_versioned(ws, id).await?.map(|v| v.version),
        ChangeTarget::Token(id) => state
            .store
            .token_versioned(ws, id)
            .await?
            .map(|v| v.version),
    };
    if current_version != Some(r.base_version) {
        let why = match current_version {
            None => format!("the {} no longer exists", r.target.kind()),
            Some(_) => format!("the {} changed after the request was made", r.target.kind()),
        };
        return Err(fail_stale(state, r, &why).await);
    }
    let bad = |e: serde_json::Error| {
        tracing::error!(error = %e, change_request = %r.id, "stored change does not parse");
        ApiError::Internal("a stored change request does not parse".into())
    };
    let planned = match r.target {
        ChangeTarget::Workspace => {
            let patch: WorkspacePatch = serde_json::from_value(r.change.clone()).map_err(bad)?;
            let (v, audit) = workspaces::plan_for_approval(state, caller, &patch).await?;
            (ChangeApply::Workspace(v), audit)
        }
        ChangeTarget::Role(id) => {
            let patch: RolePatch = serde_json::from_value(r.change.clone()).map_err(bad)?;
            let (v, audit) = roles::plan_for_approval(state, caller, id, &patch).await?;
            (ChangeApply::Role(v), audit)
        }
        ChangeTarget::Token(id) => {
            let patch: TokenPatch = serde_json::from_value(r.change.clone()).map_err(bad)?;
            let (v, audit) = tokens::update::plan_for_approval(state, caller, id, &patch).await?;
            (ChangeApply::Token(v), audit)
        }
    };
    let version = match &planned.0 {
        ChangeApply::Workspace(v) => v.version,
        ChangeApply::Role(v) => v.version,
        ChangeApply::Token(v) => v.version,
    };
    if version != r.base_version {
        return Err(fail_stale(
            state,
            r,
            "the target changed while the approval was checked",
        )
        .await);
    }
    Ok(planned)
}

/// Applies the planned change with the request's transition, atomically.
async fn apply(
    state: &AppState,
    caller: &Caller,
    r: ChangeRequest,
    (change, target_audit): (ChangeApply, AuditDraft),
) -> Result<ChangeRequest, ApiError> {
    let now = state.now();
    let mut applied = r.clone();
    applied.state = ChangeState::Applied;
    applied.decided_at = Some(now);
    applied.decided_by = Some(caller.actor());
    applied.outcome = Some("APPLIED".into());
    let audit = caller
        .audit(
            state,
            "change_request.applied",
            "change_request",
            r.id.to_string(),
        )
        .before(&r)
        .after(&applied);
    let done = state
        .store
        .apply_change_request(
            r.workspace_id,
            r.id,
            &change,
            &caller.actor(),
            now,
            &[target_audit, audit],
        )
        .await;
    match done {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::conflict(
                "CHANGE_REQUEST_CLOSED",
                "this change request was decided meanwhile",
            ))
        }
        Err(StoreError::Conflict {
            code: CONCURRENT_UPDATE,
            ..
        })
        | Err(StoreError::NotFound) => {
            return Err(fail_stale(
                state,
                &r,
                "the target changed while the request was applied",
            )
            .await)
        }
        Err(e) => return Err(e.into()),
    }
    match r.target {
        ChangeTarget::Workspace => state.cache.invalidate_workspace(r.workspace_id),
        ChangeTarget::Role(id) => state.cache.invalidate_role(id),
        ChangeTarget::Token(id) => state.cache.invalidate_token(id),
    }
    tracing::info!(change_request = %r.id, target = r.target.kind(), "change request applied");
    emit(state, EventType::ChangeRequestApplied, &applied, None).await;
    Ok(applied)
}

/// Fails `r` as stale (if it is still pending) and gives the 409 to answer.
async fn fail_stale(state: &AppState, r: &ChangeRequest, why: &str) -> ApiError {
    let outcome = format!("STALE: {why}");
    if let Err(e) = finish(
        state,
        r,
        ChangeState::Failed,
        &Actor::SYSTEM,
        "",
        Some(&outcome),
    )
    .await
    {
        return e;
    }
    ApiError::conflict(
        "STALE",
        format!(
            "{why}; nothing was applied and the request failed: make it again if it still applies"
        ),
    )
}

/// Moves a pending request to a final state with its audit event and webhook event. Returns
/// the request as finished; `CHANGE_REQUEST_CLOSED` if someone decided it first.
async fn finish(
    state: &AppState,
    r: &ChangeRequest,
    to: ChangeState,
    by: &Actor,
    comment: &str,
    outcome: Option<&str>,
) -> Result<ChangeRequest, ApiError> {
    let now = state.now();
    let mut done = r.clone();
    done.state = to;
    done.decided_at = Some(now);
    done.decided_by = Some(*by);
    done.comment = comment.to_owned();
    done.outcome = outcome.map(str::to_owned);
    let (action, event) = match to {
        ChangeState::Rejected => ("change_request.rejected", EventType::ChangeRequestRejected),
        ChangeState::Cancelled => (
            "change_request.cancelled",
            EventType::ChangeRequestCancelled,
        ),
        ChangeState::Expired => ("change_request.expired", EventType::ChangeRequestExpired),
        _ => ("change_request.failed", EventType::ChangeRequestFailed),
    };
    let audit = AuditDraft::new(
        r.workspace_id,
        now,
        *by,
        action,
        "change_request",
        r.id.to_string(),
    )
    .before(r)
    .after(&done);
    let moved = state
        .store
        .finish_change_request(r.workspace_id, r.id, to, by, comment, outcome, now, &audit)
        .await?;
    if !moved {
        return Err(ApiError::conflict(
            "CHANGE_REQUEST_CLOSED",
            "this change request was decided meanwhile",
        ));
    }
    tracing::info!(change_request = %r.id, state = to.as_str(), "change request finished");
    emit(state, event, &done, None).await;
    Ok(done)
}

async fn expire(state: &AppState, r: &ChangeRequest) -> Result<(), ApiError> {
    match finish(state, r, ChangeState::Expired, &Actor::SYSTEM, "", None).await {
        Ok(_)
        | Err(ApiError::Conflict {
            code: "CHANGE_REQUEST_CLOSED",
            ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Rejects a pending request (`keyward.security:approve`, not the requester).
pub async fn reject(
    state: &AppState,
    caller: &Caller,
    id: ChangeRequestId,
    body: &DecideChange,
) -> Result<ChangeRequest, ApiError> {
    validate::text(&body.comment, "comment", true)?;
    let r = open(state, caller, id).await?;
    ensure_decider(state, caller, &r).await?;
    let by = caller.actor();
    finish(
        state,
        &r,
        ChangeState::Rejected,
        &by,
        body.comment.trim(),
        None,
    )
    .await
}

/// Withdraws a pending request: only the requesting person may, with any of their tokens.
pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    id: ChangeRequestId,
    body: &DecideChange,
) -> Result<ChangeRequest, ApiError> {
    validate::text(&body.comment, "comment", true)?;
    let r = open(state, caller, id).await?;
    if r.requested_by.user_id != Some(caller.owner_id()) {
        return Err(ApiError::forbidden(
            "NOT_THE_REQUESTER",
            "only the person who requested a change can cancel it; approvers reject",
        ));
    }
    let by = caller.actor();
    finish(
        state,
        &r,
        ChangeState::Cancelled,
        &by,
        body.comment.trim(),
        None,
    )
    .await
}

/// The pending requests about `target`, for "pending approval" markers.
pub async fn pending_about(
    state: &AppState,
    caller: &Caller,
    target: ChangeTarget,
) -> Result<Vec<ChangeRequest>, ApiError> {
    let filter = ChangeRequestFilter {
        state: Some(ChangeState::Pending),
        target_kind: Some(target.kind().to_owned()),
        target_id: target.id_string(),
        requested_by_user: None,
    };
    let page = keyward_store::PageRequest {
        limit: 50,
        after: None,
    };
    Ok(state
        .store
        .list_change_requests(caller.workspace_id(), &filter, &page)
        .await?)
}

/// Expires every pending request past its expiry, as keyward. Returns how many.
pub async fn expire_due(state: &AppState) -> Result<u64, StoreError> {
    let mut n = 0;
    // A request that cannot be finished stays due: stop once a batch finishes nothing.
    loop {
        let due = state
            .store
            .expired_change_requests(state.now(), 100)
            .await?;
        let mut finished = 0;
        for r in &due {
            match finish(state, r, ChangeState::Expired, &Actor::SYSTEM, "", None).await {
                Ok(_) => finished += 1,
                Err(ApiError::Conflict { .. }) => {}
                Err(e) => tracing::warn!(error = ?e, change_request = %r.id, "expiry failed"),
            }
        }
        n += finished;
        if due.len() < 100 || finished == 0 {
            return Ok(n);
        }
    }
}
