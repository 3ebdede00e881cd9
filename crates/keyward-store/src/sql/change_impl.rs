//! `change_store!`: [`crate::ChangeRequestStore`] for both backends, like `sql_store!`.
//!
//! Instantiated as `change_store!(SqliteStore, SqliteRow)` and `change_store!(PgStore, PgRow)`
//! after `sql_store!` in the same module (it applies changes with `sql_store!`'s
//! `update_workspace_in`, `update_role_in` and `update_token_in`, the very updates of
//! `update_workspace`, `update_role` and `update_token`). All portable SQL. What approval
//! relies on:
//! - every transition is one conditional `UPDATE … WHERE state = 'pending'`, so of concurrent
//!   deciders exactly one matches the row; only that one writes anything else (the target's
//!   update, the audit events);
//! - an approval first touches the request's row with the same condition (`UPDATE … SET state
//!   = state WHERE state = 'pending' AND expires_at > $n`), which locks it until the
//!   transaction ends: an approval and a decision never interleave, so no approval is stored
//!   on a request decided meanwhile. The primary key `(request_id, user_id)` keeps a person to
//!   one approval;
//! - applying runs the target's conditional versioned update in the same transaction as the
//!   transition; when it fails (the target changed since it was read, or is gone) the
//!   transaction is dropped, so the request stays pending and nothing is written.
//!
//! Every transaction starts with a write: on SQLite a transaction that reads first fails at once
//! with "database is locked" when it then writes while another connection does.

macro_rules! change_store {
    ($store:ident, $row:ty) => {
        mod change_sql {
            use std::collections::HashMap;

            use async_trait::async_trait;
            use chrono::{DateTime, Utc};
            use keyward_core::audit::{Actor, AuditDraft};
            use keyward_core::{
                Approval, ChangeRequest, ChangeRequestId, ChangeState, ChangeTarget, RoleId,
                TokenId, UserId, WorkspaceId,
            };
            use sqlx::Row as _;

            use super::shared_sql::{update_role_in, update_token_in, update_workspace_in, Tx};
            use super::$store;
            use $crate::change::*;
            use $crate::sql::{self, Arg, Filter};
            use $crate::{PageRequest, Result, StoreError};

            const REQUEST_COLS: &str = "id, workspace_id, target_kind, target_id, change, before, \
                                    base_version, requested_by, reason, state, \
                                    approvals_needed, code_hash, created_at, expires_at, \
                                    decided_at, decided_by, comment, outcome, \
                                    requested_by_maker";

            fn corrupt(what: &str) -> StoreError {
                StoreError::Internal(format!("corrupt change request {what} in storage"))
            }

            fn target(kind: &str, id: Option<&str>) -> Result<ChangeTarget> {
                match (kind, id) {
                    ("workspace", _) => Ok(ChangeTarget::Workspace),
                    ("role", Some(id)) => RoleId::parse(id)
                        .map(ChangeTarget::Role)
                        .map_err(|_| corrupt("target")),
                    ("token", Some(id)) => TokenId::parse(id)
                        .map(ChangeTarget::Token)
                        .map_err(|_| corrupt("target")),
                    _ => Err(corrupt("target")),
                }
            }

            fn request_row(r: &$row) -> Result<ChangeRequest> {
                let state: &str = r.try_get("state")?;
                let needed: i64 = r.try_get("approvals_needed")?;
                let decided_by: Option<&str> = r.try_get("decided_by")?;
                Ok(ChangeRequest {
                    id: ChangeRequestId::from_uuid(sql::uuid(r.try_get("id")?)?),
                    workspace_id: WorkspaceId::from_uuid(sql::uuid(r.try_get("workspace_id")?)?),
                    target: target(r.try_get("target_kind")?, r.try_get("target_id")?)?,
                    change: sql::parse_json("change", r.try_get("change")?)?,
                    before: sql::parse_json("before", r.try_get("before")?)?,
                    base_version: r.try_get("base_version")?,
                    requested_by: sql::parse_json("requested_by", r.try_get("requested_by")?)?,
                    requested_by_maker: sql::opt_uuid(r.try_get("requested_by_maker")?)?
                        .map(UserId::from_uuid),
                    reason: r.try_get("reason")?,
                    state: ChangeState::parse(state).ok_or_else(|| corrupt("state"))?,
                    approvals_needed: u32::try_from(needed).map_err(|_| corrupt("approvals"))?,
                    approvals: Vec::new(),
                    code_hash: r.try_get("code_hash")?,
                    created_at: sql::time(r.try_get("created_at")?)?,
                    expires_at: sql::time(r.try_get("expires_at")?)?,
                    decided_at: sql::opt_time(r.try_get("decided_at")?)?,
                    decided_by: decided_by
                        .map(|a| sql::parse_json("decided_by", a))
                        .transpose()?,
                    comment: r.try_get("comment")?,
                    outcome: r.try_get("outcome")?,
                })
            }

            fn approval_row(r: &$row) -> Result<(String, Approval)> {
                Ok((
                    r.try_get("request_id")?,
                    Approval {
                        user_id: UserId::from_uuid(sql::uuid(r.try_get("user_id")?)?),
                        token_id: sql::opt_uuid(r.try_get("token_id")?)?.map(TokenId::from_uuid),
                        token_maker: sql::opt_uuid(r.try_get("token_maker")?)?
                            .map(UserId::from_uuid),
                        at: sql::time(r.try_get("at")?)?,
                        comment: r.try_get("comment")?,
                    },
                ))
            }

            /// Runs `head` + `filter`, decodes the requests and fills in their approvals.
            async fn requests(
                store: &$store,
                head: &str,
                filter: Filter,
            ) -> Result<Vec<ChangeRequest>> {
                let query = format!("{head}{}", filter.sql);
                let mut q = sqlx::query(&query);
                for a in filter.args {
                    q = match a {
                        Arg::Text(s) => q.bind(s),
                        Arg::Int(i) => q.bind(i),
                    };
                }
                let rows = q.fetch_all(store.db()?).await?;
                let mut found = rows.iter().map(request_row).collect::<Result<Vec<_>>>()?;
                if found.is_empty() {
                    return Ok(found);
                }
                let ids: Vec<String> = found.iter().map(|r| r.id.uuid().to_string()).collect();
                let marks: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
                let query = format!(
                    "SELECT request_id, user_id, token_id, token_maker, at, comment \
                 FROM change_request_approvals \
                 WHERE request_id IN ({}) ORDER BY at, user_id",
                    marks.join(", ")
                );
                let mut q = sqlx::query(&query);
                for id in &ids {
                    q = q.bind(id);
                }
                let mut by_request: HashMap<String, Vec<Approval>> = HashMap::new();
                for row in q.fetch_all(store.db()?).await? {
                    let (request, approval) = approval_row(&row)?;
                    by_request.entry(request).or_default().push(approval);
                }
                for r in &mut found {
                    if let Some(a) = by_request.remove(&r.id.uuid().to_string()) {
                        r.approvals = a;
                    }
                }
                Ok(found)
            }

            fn ws_filter(ws: WorkspaceId) -> Filter {
                Filter::new("workspace_id", Arg::Text(ws.uuid().to_string()))
            }

            async fn commit(mut tx: Tx<'_>, store: &$store, audits: &[AuditDraft]) -> Result<()> {
                for audit in audits {
                    append_audit!(tx, &store.chain, audit)?;
                }
                tx.commit().await?;
                Ok(())
            }

            /// The condition on the stored target that `change` must match, and its arguments
            /// after the first `first` placeholders; `None` when `change` is not of `ws`.
            fn target_condition(
                ws: WorkspaceId,
                change: &ChangeApply,
                first: usize,
            ) -> Option<(String, Vec<String>)> {
                let (kind, id, of) = match change {
                    ChangeApply::Workspace(v) => ("workspace", None, v.value.id),
                    ChangeApply::Role(v) => {
                        ("role", Some(v.value.id.to_string()), v.value.workspace_id)
                    }
                    ChangeApply::Token(v) => {
                        ("token", Some(v.value.id.to_string()), v.value.workspace_id)
                    }
                };
                if of != ws {
                    return None;
                }
                Some(match id {
                    None => (
                        format!("target_kind = ${}", first + 1),
                        vec![kind.to_owned()],
                    ),
                    Some(id) => (
                        format!(
                            "target_kind = ${} AND target_id = ${}",
                            first + 1,
                            first + 2
                        ),
                        vec![kind.to_owned(), id],
                    ),
                })
            }

            fn mismatch() -> StoreError {
                StoreError::Internal(
                    "the change does not apply to the change request's target".into(),
                )
            }

            #[async_trait]
            impl ChangeRequestStore for $store {
                async fn create_change_request(
                    &self,
                    r: &ChangeRequest,
                    audit: &AuditDraft,
                ) -> Result<()> {
                    let mut tx = self.db()?.begin().await?;
                    sqlx::query(
                        "INSERT INTO change_requests (id, workspace_id, target_kind, target_id, \
                     change, before, base_version, requested_by, requested_by_user, reason, \
                     state, approvals_needed, code_hash, created_at, expires_at, decided_at, \
                     decided_by, comment, outcome, requested_by_maker) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17, $18, $19, $20)",
                    )
                    .bind(r.id.uuid().to_string())
                    .bind(r.workspace_id.uuid().to_string())
                    .bind(r.target.kind())
                    .bind(r.target.id_string())
                    .bind(sql::to_json(&r.change)?)
                    .bind(sql::to_json(&r.before)?)
                    .bind(r.base_version)
                    .bind(sql::to_json(&r.requested_by)?)
                    .bind(r.requested_by.user_id.map(|u| u.uuid().to_string()))
                    .bind(&r.reason)
                    .bind(r.state.as_str())
                    .bind(i64::from(r.approvals_needed))
                    .bind(&r.code_hash)
                    .bind(sql::ms(r.created_at))
                    .bind(sql::ms(r.expires_at))
                    .bind(sql::opt_ms(r.decided_at))
                    .bind(r.decided_by.as_ref().map(sql::to_json).transpose()?)
                    .bind(&r.comment)
                    .bind(&r.outcome)
                    .bind(r.requested_by_maker.map(|u| u.uuid().to_string()))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        StoreError::from_sqlx(
                            e,
                            Some(("CONFLICT", "a change request with this id exists")),
                        )
                    })?;
                    commit(tx, self, std::slice::from_ref(audit)).await
                }

                async fn change_request(
                    &self,
                    ws: WorkspaceId,
                    id: ChangeRequestId,
                ) -> Result<Option<ChangeRequest>> {
                    let mut f = ws_filter(ws);
                    f.eq("id", Arg::Text(id.uuid().to_string()));
                    let head = format!("SELECT {REQUEST_COLS} FROM change_requests");
                    Ok(requests(self, &head, f).await?.pop())
                }

                async fn list_change_requests(
                    &self,
                    ws: WorkspaceId,
                    filter: &ChangeRequestFilter,
                    page: &PageRequest,
                ) -> Result<Vec<ChangeRequest>> {
                    let mut f = ws_filter(ws);
                    if let Some(state) = filter.state {
                        f.eq("state", Arg::Text(state.as_str().to_owned()));
                    }
                    if let Some(kind) = &filter.target_kind {
                        f.eq("target_kind", Arg::Text(kind.clone()));
                    }
                    if let Some(id) = &filter.target_id {
                        f.eq("target_id", Arg::Text(id.clone()));
                    }
                    if let Some(user) = filter.requested_by_user {
                        f.eq("requested_by_user", Arg::Text(user.uuid().to_string()));
                    }
                    // Newest first: the page after a cursor holds what is older than it.
                    if let Some(c) = &page.after {
                        let at = f.arg(Arg::Int(c.created_at.timestamp_millis()));
                        let id = f.arg(Arg::Text(c.id.to_string()));
                        f.and(&format!(
                            "created_at < {at} OR (created_at = {at} AND id < {id})"
                        ));
                    }
                    let limit = f.arg(Arg::Int(i64::from(page.limit)));
                    f.sql
                        .push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT {limit}"));
                    let head = format!("SELECT {REQUEST_COLS} FROM change_requests");
                    requests(self, &head, f).await
                }

                async fn add_approval(
                    &self,
                    ws: WorkspaceId,
                    id: ChangeRequestId,
                    approval: &Approval,
                    audit: &AuditDraft,
                ) -> Result<bool> {
                    let mut tx = self.db()?.begin().await?;
                    // Takes the request's row (and, on SQLite, the write lock) if it is open.
                    let open = sqlx::query(
                        "UPDATE change_requests SET state = state \
                     WHERE workspace_id = $1 AND id = $2 AND state = 'pending' \
                     AND expires_at > $3",
                    )
                    .bind(ws.uuid().to_string())
                    .bind(id.uuid().to_string())
                    .bind(sql::ms(approval.at))
                    .execute(&mut *tx)
                    .await?;
                    if open.rows_affected() == 0 {
                        return Ok(false);
                    }
                    // Counted by a statement after the row is held, so it sees every approval
                    // committed before: a request already approved enough takes no more.
                    let (given, needed): (i64, i64) = sqlx::query_as(
                        "SELECT (SELECT COUNT(*) FROM change_request_approvals \
                         WHERE request_id = $1), approvals_needed \
                         FROM change_requests WHERE id = $1",
                    )
                    .bind(id.uuid().to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                    if given >= needed {
                        return Ok(false);
                    }
                    // Nobody stands behind two approvals (as approver or as the maker of the
                    // approving token), even when both arrive at once.
                    let mut people = vec![approval.user_id.uuid().to_string()];
                    people.extend(approval.token_maker.map(|m| m.uuid().to_string()));
                    let marks = if people.len() == 2 { "$2, $3" } else { "$2" };
                    let query = format!(
                        "SELECT COUNT(*) FROM change_request_approvals WHERE request_id = $1 \
                         AND (user_id IN ({marks}) OR token_maker IN ({marks}))"
                    );
                    let mut q = sqlx::query_scalar::<_, i64>(&query).bind(id.uuid().to_string());
                    for p in &people {
                        q = q.bind(p);
                    }
                    if q.fetch_one(&mut *tx).await? > 0 {
                        return Ok(false);
                    }
                    let done = sqlx::query(
                        "INSERT INTO change_request_approvals (request_id, user_id, token_id, at, \
                     comment, token_maker) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (request_id, user_id) DO NOTHING",
                    )
                    .bind(id.uuid().to_string())
                    .bind(approval.user_id.uuid().to_string())
                    .bind(approval.token_id.map(|t| t.uuid().to_string()))
                    .bind(sql::ms(approval.at))
                    .bind(&approval.comment)
                    .bind(approval.token_maker.map(|u| u.uuid().to_string()))
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        // Approved before: dropping the transaction rolls it back, no event.
                        return Ok(false);
                    }
                    commit(tx, self, std::slice::from_ref(audit)).await?;
                    Ok(true)
                }

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
                ) -> Result<bool> {
                    if matches!(to, ChangeState::Pending | ChangeState::Applied) {
                        return Err(StoreError::Internal(format!(
                            "a change request is not finished as {}",
                            to.as_str()
                        )));
                    }
                    let mut tx = self.db()?.begin().await?;
                    let done = sqlx::query(
                        "UPDATE change_requests SET state = $3, decided_at = $4, decided_by = $5, \
                     comment = $6, outcome = $7 \
                     WHERE workspace_id = $1 AND id = $2 AND state = 'pending'",
                    )
                    .bind(ws.uuid().to_string())
                    .bind(id.uuid().to_string())
                    .bind(to.as_str())
                    .bind(sql::ms(at))
                    .bind(sql::to_json(decided_by)?)
                    .bind(comment)
                    .bind(outcome)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    commit(tx, self, std::slice::from_ref(audit)).await?;
                    Ok(true)
                }

                async fn apply_change_request(
                    &self,
                    ws: WorkspaceId,
                    id: ChangeRequestId,
                    change: &ChangeApply,
                    decided_by: &Actor,
                    at: DateTime<Utc>,
                    audits: &[AuditDraft],
                ) -> Result<bool> {
                    let (condition, target_args) =
                        target_condition(ws, change, 4).ok_or_else(mismatch)?;
                    let mut tx = self.db()?.begin().await?;
                    let query = format!(
                        "UPDATE change_requests SET state = 'applied', decided_at = $3, \
                     decided_by = $4 \
                     WHERE workspace_id = $1 AND id = $2 AND state = 'pending' \
                     AND expires_at > $3 AND {condition}"
                    );
                    let mut q = sqlx::query(&query)
                        .bind(ws.uuid().to_string())
                        .bind(id.uuid().to_string())
                        .bind(sql::ms(at))
                        .bind(sql::to_json(decided_by)?);
                    for a in target_args {
                        q = q.bind(a);
                    }
                    let done = q.execute(&mut *tx).await?;
                    if done.rows_affected() == 0 {
                        let pending = sqlx::query(
                            "SELECT 1 AS one FROM change_requests \
                         WHERE workspace_id = $1 AND id = $2 AND state = 'pending' \
                         AND expires_at > $3",
                        )
                        .bind(ws.uuid().to_string())
                        .bind(id.uuid().to_string())
                        .bind(sql::ms(at))
                        .fetch_optional(&mut *tx)
                        .await?;
                        // Still pending, so the change is for another target: a caller's bug.
                        return match pending {
                            Some(_) => Err(mismatch()),
                            None => Ok(false),
                        };
                    }
                    // A failed update drops the transaction: the request stays pending.
                    match change {
                        ChangeApply::Workspace(v) => update_workspace_in(&mut tx, v).await?,
                        ChangeApply::Role(v) => update_role_in(&mut tx, v).await?,
                        ChangeApply::Token(v) => update_token_in(&mut tx, v).await?,
                    }
                    commit(tx, self, audits).await?;
                    Ok(true)
                }

                async fn expired_change_requests(
                    &self,
                    now: DateTime<Utc>,
                    limit: u32,
                ) -> Result<Vec<ChangeRequest>> {
                    let mut f =
                        Filter::new("state", Arg::Text(ChangeState::Pending.as_str().into()));
                    let at = f.arg(Arg::Int(sql::ms(now)));
                    f.and(&format!("expires_at <= {at}"));
                    let limit = f.arg(Arg::Int(i64::from(limit)));
                    f.sql
                        .push_str(&format!(" ORDER BY expires_at, id LIMIT {limit}"));
                    let head = format!("SELECT {REQUEST_COLS} FROM change_requests");
                    requests(self, &head, f).await
                }
            }
        }
    };
}
