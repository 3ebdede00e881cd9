//! `append_audit!`, used by every mutation of `sql_store!` inside its transaction, and
//! `audit_store!`: [`crate::AuditStore`] for both backends.
//!
//! Appending first bumps the workspace's chain head (`INSERT … ON CONFLICT DO UPDATE …
//! RETURNING`), which locks it until the transaction ends, so appends to one chain are
//! serialised and numbered without gaps; then it inserts the event sealed with the chain key
//! and records its hash in the head. `seal_legacy_chains!` keys the chains written before the
//! key existed, on open.

/// Appends `$draft` in transaction `$tx`, sealed with the chain key `$key`; evaluates to
/// `Result<()>`. A new chain's head records event 1 as its first keyed event. An existing
/// head's record is never touched here: one that is missing stays missing (and the chain
/// fails its check), so erasing it cannot make keyward re-key a rewritten chain.
macro_rules! append_audit {
    ($tx:ident, $key:expr, $draft:expr) => {
        async {
            let key: &keyward_core::audit::ChainKey = $key;
            let d: &keyward_core::audit::AuditDraft = $draft;
            let ws = d.workspace_id.uuid().to_string();
            let head = sqlx::query(
                "INSERT INTO audit_heads (workspace_id, seq, hash, keyed_from, keyed_mac) \
                 VALUES ($1, 1, '', 1, $2) \
                 ON CONFLICT (workspace_id) DO UPDATE SET seq = audit_heads.seq + 1 \
                 RETURNING seq, hash",
            )
            .bind(&ws)
            .bind(keyward_core::audit::keyed_from_mac(key, d.workspace_id, 1))
            .fetch_one(&mut *$tx)
            .await?;
            let seq: i64 = head.try_get("seq")?;
            let prev: String = head.try_get("hash")?;
            let e = d.clone().seal(key, seq, prev);
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

/// In the open transaction `$tx`, after the migrations: appends an `audit.chain_keyed` event to
/// every chain whose head migration 7 marked as written before the key existed
/// (`keyed_from = 0`), in workspace order, and records it as the first keyed event. Its MAC
/// covers the last plain hash, so the plain events before it are bound by the key from now on.
/// Then logs the chains whose record is not this key's (a lost or replaced key file).
/// Evaluates to `Result<()>`.
macro_rules! seal_legacy_chains {
    ($tx:ident, $key:expr) => {
        async {
            use sqlx::Row as _;
            let key: &keyward_core::audit::ChainKey = $key;
            let heads = sqlx::query(
                "SELECT workspace_id, seq, keyed_from, keyed_mac FROM audit_heads \
                 ORDER BY workspace_id",
            )
            .fetch_all(&mut *$tx)
            .await?;
            let mut foreign = 0usize;
            for h in &heads {
                let ws = keyward_core::WorkspaceId::from_uuid($crate::sql::uuid(
                    h.try_get("workspace_id")?,
                )?);
                let from: Option<i64> = h.try_get("keyed_from")?;
                let mac: Option<String> = h.try_get("keyed_mac")?;
                if from == Some(0) {
                    let legacy: i64 = h.try_get("seq")?;
                    let note = serde_json::json!({
                        "algorithm": "hmac-sha256",
                        "plain_events": legacy,
                    });
                    let draft = keyward_core::audit::AuditDraft::new(
                        ws,
                        chrono::Utc::now(),
                        keyward_core::audit::Actor::SYSTEM,
                        keyward_core::audit::CHAIN_KEYED_ACTION,
                        "workspace",
                        ws.to_string(),
                    )
                    .after(&note);
                    append_audit!($tx, key, &draft)?;
                    let keyed = legacy + 1;
                    sqlx::query(
                        "UPDATE audit_heads SET keyed_from = $1, keyed_mac = $2 \
                         WHERE workspace_id = $3",
                    )
                    .bind(keyed)
                    .bind(keyward_core::audit::keyed_from_mac(key, ws, keyed))
                    .bind(ws.uuid().to_string())
                    .execute(&mut *$tx)
                    .await?;
                    tracing::warn!(
                        workspace = %ws,
                        plain_events = legacy,
                        "audit chain written before the chain key: keyed from event {keyed} on"
                    );
                    continue;
                }
                let head = keyward_core::audit::ChainHead {
                    keyed_from: from,
                    keyed_mac: mac,
                    ..Default::default()
                };
                if head.authentic_keyed_from(key, ws).is_none() {
                    foreign += 1;
                }
            }
            if foreign > 0 {
                tracing::error!(
                    chains = foreign,
                    "the audit chain key is not the one these workspaces' chains were keyed \
                     with (a lost or replaced key file?): their verification will fail"
                );
            }
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
        use chrono::{DateTime, Utc};
        use keyward_core::audit::{
            Actor, ActorKind, AuditDraft, AuditEvent, AuditVerification, ChainHead, Checkpoint,
        };
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
                let mut tx = self.db()?.begin().await?;
                for d in drafts {
                    append_audit!(tx, &self.chain, d)?;
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
                let rows = q.fetch_all(self.db()?).await?;
                rows.iter().map(event_row).collect()
            }

            async fn audit_head(&self, ws: WorkspaceId) -> Result<Option<ChainHead>> {
                let row = sqlx::query(
                    "SELECT seq, hash, keyed_from, keyed_mac FROM audit_heads \
                     WHERE workspace_id = $1",
                )
                .bind(ws.uuid().to_string())
                .fetch_optional(self.db()?)
                .await?;
                row.map(|r| {
                    Ok(ChainHead {
                        seq: r.try_get("seq")?,
                        hash: r.try_get("hash")?,
                        keyed_from: r.try_get("keyed_from")?,
                        keyed_mac: r.try_get("keyed_mac")?,
                    })
                })
                .transpose()
            }

            async fn audit_checkpoint(
                &self,
                ws: WorkspaceId,
                at: DateTime<Utc>,
            ) -> Result<Checkpoint> {
                let head = self.audit_head(ws).await?.unwrap_or_default();
                Ok(Checkpoint::sign(&self.chain, ws, head.seq, head.hash, at))
            }

            fn checkpoint_is_authentic(&self, checkpoint: &Checkpoint) -> bool {
                checkpoint.is_authentic(&self.chain)
            }

            async fn verify_audit(
                &self,
                ws: WorkspaceId,
                checkpoint: Option<&Checkpoint>,
            ) -> Result<AuditVerification> {
                $crate::audit::verify_chain(self, &self.chain, ws, checkpoint).await
            }
        }
        }
    };
}
