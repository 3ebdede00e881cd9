//! The workspace's audit trail: queries (filtered and paged), the names of the people acting
//! in it, the check of its keyed hash chain (whole, or against a checkpoint), and signed
//! checkpoints of its head. Each needs `keyward.audit:read` and workspace scope. The chain key
//! stays in the store, which seals, signs and checks.

use std::collections::BTreeMap;

use keyward_core::api::Page;
use keyward_core::audit::{AuditEventView, AuditQuery, AuditVerification, Checkpoint};
use keyward_core::{validate, DomainError, TokenId, UserId};
use keyward_store::AuditFilter;

use super::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Events per page unless the caller asks otherwise.
const DEFAULT_LIMIT: u32 = 100;
/// Most events per page.
const MAX_LIMIT: u32 = 1000;

fn invalid(code: &'static str, field: &str, message: &str) -> ApiError {
    DomainError::field(code, field, message).into()
}

fn authorize(caller: &Caller) -> Result<(), ApiError> {
    caller.require("keyward.audit:read")?;
    caller.require_workspace_scope()
}

/// Turns the query into a store filter, refusing bad values by field.
fn filter(q: &AuditQuery) -> Result<AuditFilter, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(invalid("INVALID_LIMIT", "limit", "limit must be 1 to 1000"));
    }
    let descending = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(invalid(
                "INVALID_ORDER",
                "order",
                "order must be asc or desc",
            ))
        }
    };
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| c.parse::<i64>().ok().filter(|n| *n >= 0))
        .map(|c| c.ok_or_else(|| invalid("INVALID_CURSOR", "cursor", "cursor is not valid")))
        .transpose()?;
    let actor = q
        .actor
        .as_deref()
        .map(|a| {
            let a = a.trim();
            let known = TokenId::parse(a).map(|t| t.to_string());
            known
                .or_else(|_| UserId::parse(a).map(|u| u.to_string()))
                .map_err(|_| invalid("INVALID_ID", "actor", "actor must be a token or user id"))
        })
        .transpose()?;
    let token = q
        .token
        .as_deref()
        .map(|t| {
            TokenId::parse(t.trim())
                .map_err(|_| invalid("INVALID_ID", "token", "token must be a token id"))
        })
        .transpose()?;
    let action = q
        .action
        .as_deref()
        .map(|a| validate::text(a, "action", false).map(|()| a.trim().to_owned()))
        .transpose()?;
    let from = validate::optional_time(q.from, "from")?;
    let to = validate::optional_time(q.to, "to")?;
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(invalid("INVALID_RANGE", "to", "to must be later than from"));
        }
    }
    Ok(AuditFilter {
        actor,
        token,
        action,
        from,
        to,
        cursor,
        descending,
        limit: limit + 1,
    })
}

/// One page of the trail, filtered as `q` asks.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    q: &AuditQuery,
) -> Result<Page<AuditEventView>, ApiError> {
    authorize(caller)?;
    let f = filter(q)?;
    let size = (f.limit - 1) as usize;
    let mut events = state.store.list_audit(caller.workspace_id(), &f).await?;
    let more = events.len() > size;
    events.truncate(size);
    Ok(Page {
        next_cursor: more
            .then(|| events.last().map(|e| e.seq.to_string()))
            .flatten(),
        items: events.iter().map(AuditEventView::from).collect(),
    })
}

/// The names of the users among `ids` (the actors and token owners of events the caller
/// reads), for showing the trail by name; a user since deleted is left out. Reading the trail
/// already shows who acted, so this needs what reading it needs, not `keyward.users:read`.
pub async fn user_names(
    state: &AppState,
    caller: &Caller,
    ids: impl IntoIterator<Item = UserId>,
) -> Result<BTreeMap<UserId, String>, ApiError> {
    authorize(caller)?;
    let ws = caller.workspace_id();
    let mut names = BTreeMap::new();
    for id in ids {
        if names.contains_key(&id) {
            continue;
        }
        if let Some(u) = state.store.user(ws, id).await? {
            names.insert(id, u.name);
        }
    }
    Ok(names)
}

/// Checks the whole chain.
pub async fn verify(state: &AppState, caller: &Caller) -> Result<AuditVerification, ApiError> {
    authorize(caller)?;
    Ok(state
        .store
        .verify_audit(caller.workspace_id(), None)
        .await?)
}

/// Checks the whole chain and that it still passes through the checkpoint unchanged. A
/// checkpoint of another workspace, or not signed with the chain key, is refused (422).
pub async fn verify_checkpoint(
    state: &AppState,
    caller: &Caller,
    cp: &Checkpoint,
) -> Result<AuditVerification, ApiError> {
    authorize(caller)?;
    let ws = caller.workspace_id();
    if cp.workspace_id != ws {
        return Err(invalid(
            "INVALID_CHECKPOINT",
            "workspace_id",
            "the checkpoint is of another workspace",
        ));
    }
    if !state.store.checkpoint_is_authentic(cp) {
        tracing::warn!(workspace = %ws, seq = cp.seq, "a forged audit checkpoint was refused");
        return Err(invalid(
            "INVALID_CHECKPOINT",
            "signature",
            "the checkpoint's signature is not the chain key's",
        ));
    }
    Ok(state.store.verify_audit(ws, Some(cp)).await?)
}

/// The chain's head, signed.
pub async fn checkpoint(state: &AppState, caller: &Caller) -> Result<Checkpoint, ApiError> {
    authorize(caller)?;
    Ok(state
        .store
        .audit_checkpoint(caller.workspace_id(), state.now())
        .await?)
}
