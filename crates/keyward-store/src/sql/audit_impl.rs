//! `append_audit!`, used by every mutation of `sql_store!` inside its transaction, and
//! `audit_store!`: [`crate::AuditStore`] for both backends.
//!
//! Appending first bumps the workspace's chain head (`INSERT … ON CONFLICT DO UPDATE …
//! RETURNING`), which locks it until the transaction ends, so appends to one chain are
//! serialised and numbered without gaps; then it inserts the sealed event and records its hash
//! in the head.

/// Appends `$draft` in transaction `$tx`; evaluates to `Result<()>`.
macro_rules! append_audit {
    ($tx:ident, $draft:expr) => {
        async {
            let d: &keyward_core::audit::AuditDraft = $draft;
            let ws = d.workspace_id.uuid().to_string();
            let head = sqlx::query(
                "INSERT INTO audit_heads (workspace_id, seq, hash) VALUES ($1, 1, '') \
                 ON CONFLICT (workspace_id) DO UPDATE SET seq = audit_heads.seq + 1 \
                 RETURNING seq, hash",
            )
            .bind(&ws)
            .fetch_one(&mut *$tx)
            .await?;
            let seq: i64 = head.try_get("seq")?;
            let prev: String = head.try_get("hash")?;
            let e = d.clone().seal(seq, prev);
            sqlx::query(
                "INSERT INTO audit_events (workspace_id, seq, at, actor_kind, actor_token, \
                 actor_user, action, target_kind, target_id, before, after, ip, count, \
                 prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(&ws)
            .bind(e.seq)
            .bind(e.draft.at.timestamp_millis())
            .bind(e.draft.actor.kind.as_str())
            .bind(e.draft.actor.token_id.map(|t| t.to_string()))
            .bind(e.draft.actor.user_id.map(|u| u.to_string()))
            .bind(&e.draft.action)
            .bind(&e.draft.target_kind)
            .bind(&e.draft.target_id)
            .bind(&e.draft.before)
            .bind(&e.draft.after)
            .bind(&e.draft.ip)
            .bind(i64::from(e.draft.count))
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .execute(&mut *$tx)
            .await?;
            sqlx::query("UPDATE audit_heads SET hash = $1 WHERE workspace_id = $2")
                .bind(&e.hash)
                .bind(&ws)
                .execute(&mut *$tx)
                .await?;
            $crate::Result::<()>::Ok(())
        }
        .await
    };
}

macro_rules! audit_store {
    ($store:ident, $row:ty) => {
        mod audit_sql {
        use super::$store;
        use async_trait::async_trait;
        use keyward_core::audit::{Actor, ActorKind, AuditDraft, AuditEvent};
        use keyward_core::{TokenId, UserId, WorkspaceId};
        use sqlx::Row as _;

        use $crate::audit::*;
        use $crate::sql::{self, Arg, Filter};
        use $crate::{Result, StoreError};

        const COLS: &str = "workspace_id, seq, at, actor_kind, actor_token, actor_user, action, \
                            target_kind, target_id, before, after, ip, count, prev_hash, hash";

        fn corrupt(what: &str) -> StoreError {
            StoreError::Internal(format!("corrupt audit event: {what}"))
        }

        fn event_row(r: &$row) -> Result<AuditEvent> {
            let kind: &str = r.try_get("actor_kind")?;
            let token: Option<&str> = r.try_get("actor_token")?;
            let user: Option<&str> = r.try_get("actor_user")?;
            let count: i64 = r.try_get("count")?;
            Ok(AuditEvent {
                seq: r.try_get("seq")?,
                draft: AuditDraft {
                    workspace_id: WorkspaceId::from_uuid(sql::uuid(r.try_get("workspace_id")?)?),
                    at: sql::time(r.try_get("at")?)?,
                    actor: Actor {
                        kind: ActorKind::parse(kind).ok_or_else(|| corrupt("actor kind"))?,
                        token_id: token
                            .map(|t| TokenId::parse(t).map_err(|_| corrupt("actor token")))
                            .transpose()?,
                        user_id: user
                            .map(|u| UserId::parse(u).map_err(|_| corrupt("actor user")))
                            .transpose()?,
                    },
                    action: r.try_get("action")?,
                    target_kind: r.try_get("target_kind")?,
                    target_id: r.try_get("target_id")?,
                    before: r.try_get("before")?,
                    after: r.try_get("after")?,
                    ip: r.try_get("ip")?,
                    count: u32::try_from(count).map_err(|_| corrupt("count"))?,
                },
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        }

        #[async_trait]
        impl AuditStore for $store {
            async fn append_audit(&self, drafts: &[AuditDraft]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for d in drafts {
                    append_audit!(tx, d)?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_audit(
                &self,
                ws: WorkspaceId,
                filter: &AuditFilter,
            ) -> Result<Vec<AuditEvent>> {
                let mut f = Filter::new("workspace_id", Arg::Text(ws.uuid().to_string()));
                if let Some(actor) = &filter.actor {
                    let p = f.arg(Arg::Text(actor.clone()));
                    f.and(&format!("actor_token = {p} OR actor_user = {p}"));
                }
                if let Some(token) = filter.token {
                    let p = f.arg(Arg::Text(token.to_string()));
                    f.and(&format!("target_id = {p} OR actor_token = {p}"));
                }
                match filter.action.as_deref().and_then(|a| a.strip_suffix('*')) {
                    Some(family) => {
                        // `token.*`: every action that starts with `token.`, by exact prefix.
                        let n = f.arg(Arg::Int(family.chars().count() as i64));
                        let p = f.arg(Arg::Text(family.to_owned()));
                        f.and(&format!("SUBSTR(action, 1, CAST({n} AS INTEGER)) = {p}"));
                    }
                    None => {
                        if let Some(action) = &filter.action {
                            f.eq("action", Arg::Text(action.clone()));
                        }
                    }
                }
                if let Some(from) = filter.from {
                    let p = f.arg(Arg::Int(sql::ms(from)));
                    f.and(&format!("at >= {p}"));
                }
                if let Some(to) = filter.to {
                    let p = f.arg(Arg::Int(sql::ms(to)));
                    f.and(&format!("at < {p}"));
                }
                let (cmp, order) = if filter.descending { ("<", "DESC") } else { (">", "ASC") };
                if let Some(c) = filter.cursor {
                    let p = f.arg(Arg::Int(c));
                    f.and(&format!("seq {cmp} {p}"));
                }
                let limit = f.arg(Arg::Int(i64::from(filter.limit)));
                let text = format!(
                    "SELECT {COLS} FROM audit_events{} ORDER BY seq {order} LIMIT {limit}",
                    f.sql
                );
                let mut q = sqlx::query(&text);
                for a in &f.args {
                    q = match a {
                        Arg::Text(s) => q.bind(s.clone()),
                        Arg::Int(n) => q.bind(*n),
                    };
                }
                let rows = q.fetch_all(&self.pool).await?;
                rows.iter().map(event_row).collect()
            }

            async fn audit_head(&self, ws: WorkspaceId) -> Result<Option<(i64, String)>> {
                let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE workspace_id = $1")
                    .bind(ws.uuid().to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?)))
                    .transpose()
            }
        }
        }
    };
}
