//! `/v1/audit`: the workspace's audit trail, filtered and paged, and the check of its hash
//! chain. Reading it needs `keyward.audit:read` and a workspace-scoped token.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use keyward_core::api::Page;
use keyward_core::audit::{check_chain, AuditEventView, AuditQuery, AuditVerification, ChainBreak};
use keyward_core::{validate, DomainError, TokenId, UserId};
use keyward_store::AuditFilter;

use crate::error::ApiError;
use crate::extract::{ApiQuery, Caller};
use crate::state::AppState;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Events read per query while checking the chain.
const CHECK_BATCH: u32 = 1000;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/audit", get(list))
        .route("/v1/audit/verify", get(verify))
}

fn invalid(code: &'static str, field: &str, message: &str) -> ApiError {
    DomainError::field(code, field, message).into()
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

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEventView>>, ApiError> {
    caller.require("keyward.audit:read")?;
    caller.require_workspace_scope()?;
    let f = filter(&q)?;
    let size = (f.limit - 1) as usize;
    let mut events = state.store.list_audit(caller.workspace_id(), &f).await?;
    let more = events.len() > size;
    events.truncate(size);
    Ok(Json(Page {
        next_cursor: more
            .then(|| events.last().map(|e| e.seq.to_string()))
            .flatten(),
        items: events.iter().map(AuditEventView::from).collect(),
    }))
}

async fn verify(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AuditVerification>, ApiError> {
    caller.require("keyward.audit:read")?;
    caller.require_workspace_scope()?;
    let ws = caller.workspace_id();
    // The head first: events appended while checking are beyond it and not judged.
    let (head_seq, head_hash) = state.store.audit_head(ws).await?.unwrap_or_default();
    let mut last = (0, String::new());
    let mut checked = 0u64;
    let broken = loop {
        let f = AuditFilter {
            cursor: Some(last.0),
            limit: CHECK_BATCH,
            ..AuditFilter::default()
        };
        let batch = state.store.list_audit(ws, &f).await?;
        let batch: Vec<_> = batch.into_iter().filter(|e| e.seq <= head_seq).collect();
        if batch.is_empty() {
            break (last.0 != head_seq || last.1 != head_hash).then(|| ChainBreak {
                seq: if last.0 < head_seq {
                    last.0 + 1
                } else {
                    head_seq
                },
                reason: if last.0 < head_seq {
                    format!("events after {} are missing", last.0)
                } else {
                    "the last event does not match the chain head".to_owned()
                },
            });
        }
        match check_chain(last.clone(), &batch) {
            Ok(end) => {
                checked += batch.len() as u64;
                last = end;
            }
            Err(b) => {
                checked += u64::try_from(b.seq - last.0 - 1).unwrap_or(0);
                break Some(b);
            }
        }
    };
    if let Some(b) = &broken {
        tracing::warn!(workspace = %ws, seq = b.seq, "audit chain broken");
    }
    Ok(Json(AuditVerification {
        intact: broken.is_none(),
        events_checked: checked,
        head_seq,
        first_broken: broken,
    }))
}
