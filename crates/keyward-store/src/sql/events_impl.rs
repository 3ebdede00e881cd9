//! `events_store!`: [`crate::EventStore`] for both backends, like `sql_store!`.
//!
//! Instantiated as `events_store!(SqliteStore, SqliteRow, Sqlite)` and
//! `events_store!(PgStore, PgRow, Postgres)`. All portable SQL. Two statements carry the
//! guarantees across nodes:
//! - a notice is claimed by `INSERT … ON CONFLICT DO NOTHING` on `token_notices`' primary key,
//!   and the event is enqueued in the same transaction only when the row was inserted;
//! - deliveries are claimed by an `UPDATE … RETURNING` whose `WHERE` repeats the due
//!   condition, so a concurrent claimer (PostgreSQL re-checks it on the row it waited for;
//!   SQLite has one writer) never gets a delivery already leased. The candidates are ranked
//!   per subscription (`ROW_NUMBER() OVER (PARTITION BY webhook_id …)`) so one claim takes at
//!   most `per_webhook` of one subscription, and only enabled subscriptions' are taken;
//! - disabling a subscription fails its pending deliveries in the same transaction, and an
//!   attempt recorded afterwards leaves such a delivery as it is (`CASE WHEN status =
//!   'pending'`), so a cancelled retry never comes back.
//!
//! Subscription changes append their audit draft with `append_audit!` before committing, as
//! `sql_store!`'s mutations do.

macro_rules! events_store {
    ($store:ident, $row:ty, $db:ident) => {
        mod events_sql {
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use keyward_core::audit::AuditDraft;
        use keyward_core::events::{
            DeliveryAttempt, DeliveryStatus, Event, EventType, Webhook, WebhookSecret,
        };
        use keyward_core::{DeliveryId, EventId, TokenId, WebhookId, WorkspaceId};
        use sqlx::Row as _;

        use super::$store;
        use $crate::events::*;
        use $crate::sql::{self, Arg, Filter};
        use $crate::{PageRequest, Result, StoreError};

        type Tx<'a> = sqlx::Transaction<'a, sqlx::$db>;

        const WEBHOOK_COLS: &str = "id, workspace_id, url, event_types, enabled, description, \
                                    secret, created_at, updated_at";

        fn corrupt(what: &str) -> StoreError {
            StoreError::Internal(format!("corrupt {what} in storage"))
        }

        fn event_type(v: &str) -> Result<EventType> {
            EventType::parse(v).ok_or_else(|| corrupt("event type"))
        }

        fn types_json(types: &Option<Vec<EventType>>) -> Option<String> {
            types.as_ref().map(|ts| {
                serde_json::Value::from(ts.iter().map(|t| t.as_str()).collect::<Vec<_>>())
                    .to_string()
            })
        }

        fn parse_types(v: Option<String>) -> Result<Option<Vec<EventType>>> {
            v.map(|text| {
                let names: Vec<String> =
                    serde_json::from_str(&text).map_err(|_| corrupt("event types"))?;
                names.iter().map(|n| event_type(n)).collect()
            })
            .transpose()
        }

        fn small(n: i64) -> u32 {
            u32::try_from(n).unwrap_or(u32::MAX)
        }

        fn webhook_row(r: &$row) -> Result<Webhook> {
            Ok(Webhook {
                id: WebhookId::from_uuid(sql::uuid(r.try_get("id")?)?),
                workspace_id: WorkspaceId::from_uuid(sql::uuid(r.try_get("workspace_id")?)?),
                url: r.try_get("url")?,
                event_types: parse_types(r.try_get("event_types")?)?,
                enabled: r.try_get("enabled")?,
                description: r.try_get("description")?,
                secret: WebhookSecret::new(r.try_get("secret")?),
                created_at: sql::time(r.try_get("created_at")?)?,
                updated_at: sql::time(r.try_get("updated_at")?)?,
            })
        }

        fn event_row(r: &$row) -> Result<Event> {
            let payload: String = r.try_get("payload")?;
            Ok(Event {
                id: EventId::from_uuid(sql::uuid(r.try_get("id")?)?),
                workspace_id: WorkspaceId::from_uuid(sql::uuid(r.try_get("workspace_id")?)?),
                event_type: event_type(r.try_get("type")?)?,
                payload: serde_json::from_str(&payload).map_err(|_| corrupt("event payload"))?,
                created_at: sql::time(r.try_get("created_at")?)?,
            })
        }

        fn affected(n: u64) -> Result<()> {
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        }

        /// Appends the subscription change's audit event and commits: both or neither.
        async fn commit(
            mut tx: Tx<'_>,
            chain: &keyward_core::audit::ChainKey,
            audit: &AuditDraft,
        ) -> Result<()> {
            append_audit!(tx, chain, audit)?;
            tx.commit().await?;
            Ok(())
        }

        /// The event and its deliveries, inside `tx`.
        async fn enqueue_in(tx: &mut Tx<'_>, e: &Event) -> Result<u64> {
            let at = sql::ms(e.created_at);
            sqlx::query(
                "INSERT INTO events (id, workspace_id, type, payload, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(e.id.uuid().to_string())
            .bind(e.workspace_id.uuid().to_string())
            .bind(e.event_type.as_str())
            .bind(e.payload.to_string())
            .bind(at)
            .execute(&mut **tx)
            .await?;
            let rows = sqlx::query(&format!(
                "SELECT {WEBHOOK_COLS} FROM webhooks WHERE workspace_id = $1 AND enabled = TRUE"
            ))
            .bind(e.workspace_id.uuid().to_string())
            .fetch_all(&mut **tx)
            .await?;
            let mut n = 0;
            for r in &rows {
                let w = webhook_row(r)?;
                if !w.wants(e.event_type) {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO deliveries (id, event_id, webhook_id, status, attempts, \
                     next_attempt_at, created_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
                )
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(e.id.uuid().to_string())
                .bind(w.id.uuid().to_string())
                .bind(at)
                .execute(&mut **tx)
                .await?;
                n += 1;
            }
            Ok(n)
        }

        #[async_trait]
        impl EventStore for $store {
            async fn create_webhook(&self, w: &Webhook, audit: &AuditDraft) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                sqlx::query(&format!(
                    "INSERT INTO webhooks ({WEBHOOK_COLS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(w.id.uuid().to_string())
                .bind(w.workspace_id.uuid().to_string())
                .bind(&w.url)
                .bind(types_json(&w.event_types))
                .bind(w.enabled)
                .bind(&w.description)
                .bind(w.secret.expose())
                .bind(sql::ms(w.created_at))
                .bind(sql::ms(w.updated_at))
                .execute(&mut *tx)
                .await?;
                commit(tx, &self.chain, audit).await
            }

            async fn webhook(&self, ws: WorkspaceId, id: WebhookId) -> Result<Option<Webhook>> {
                sqlx::query(&format!(
                    "SELECT {WEBHOOK_COLS} FROM webhooks WHERE workspace_id = $1 AND id = $2"
                ))
                .bind(ws.uuid().to_string())
                .bind(id.uuid().to_string())
                .fetch_optional(self.db()?)
                .await?
                .as_ref()
                .map(webhook_row)
                .transpose()
            }

            async fn list_webhooks(
                &self,
                ws: WorkspaceId,
                page: &PageRequest,
            ) -> Result<Vec<Webhook>> {
                let f = Filter::new("workspace_id", Arg::Text(ws.uuid().to_string())).page(page);
                let text = format!("SELECT {WEBHOOK_COLS} FROM webhooks{}", f.sql);
                let mut q = sqlx::query(&text);
                for a in f.args {
                    q = match a {
                        Arg::Text(s) => q.bind(s),
                        Arg::Int(i) => q.bind(i),
                    };
                }
                q.fetch_all(self.db()?).await?.iter().map(webhook_row).collect()
            }

            async fn update_webhook(&self, w: &Webhook, audit: &AuditDraft) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                let done = sqlx::query(
                    "UPDATE webhooks SET url = $1, event_types = $2, enabled = $3, \
                     description = $4, secret = $5, updated_at = $6 \
                     WHERE workspace_id = $7 AND id = $8",
                )
                .bind(&w.url)
                .bind(types_json(&w.event_types))
                .bind(w.enabled)
                .bind(&w.description)
                .bind(w.secret.expose())
                .bind(sql::ms(w.updated_at))
                .bind(w.workspace_id.uuid().to_string())
                .bind(w.id.uuid().to_string())
                .execute(&mut *tx)
                .await?;
                affected(done.rows_affected())?;
                if !w.enabled {
                    sqlx::query(
                        "UPDATE deliveries SET status = 'failed', last_error = 'cancelled' \
                         WHERE webhook_id = $1 AND status = 'pending'",
                    )
                    .bind(w.id.uuid().to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                commit(tx, &self.chain, audit).await
            }

            async fn delete_webhook(
                &self,
                ws: WorkspaceId,
                id: WebhookId,
                audit: &AuditDraft,
            ) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                let done = sqlx::query("DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2")
                    .bind(ws.uuid().to_string())
                    .bind(id.uuid().to_string())
                    .execute(&mut *tx)
                    .await?;
                affected(done.rows_affected())?;
                commit(tx, &self.chain, audit).await
            }

            async fn enqueue_event(&self, event: &Event) -> Result<u64> {
                let mut tx = self.db()?.begin().await?;
                let n = enqueue_in(&mut tx, event).await?;
                tx.commit().await?;
                Ok(n)
            }

            async fn enqueue_notice(
                &self,
                token: TokenId,
                kind: NoticeKind,
                event: &Event,
            ) -> Result<bool> {
                let mut tx = self.db()?.begin().await?;
                let claimed = sqlx::query(
                    "INSERT INTO token_notices (token_id, kind, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (token_id, kind) DO NOTHING",
                )
                .bind(token.uuid().to_string())
                .bind(kind.as_str())
                .bind(sql::ms(event.created_at))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if claimed {
                    enqueue_in(&mut tx, event).await?;
                }
                tx.commit().await?;
                Ok(claimed)
            }

            async fn notice_candidates(
                &self,
                ws: WorkspaceId,
                kind: NoticeKind,
                after: Option<DateTime<Utc>>,
                before: DateTime<Utc>,
                limit: u32,
            ) -> Result<Vec<TokenId>> {
                let ids: Vec<String> = sqlx::query_scalar(
                    "SELECT t.id FROM tokens t WHERE t.workspace_id = $1 \
                     AND t.status <> 'revoked' AND t.expires_at IS NOT NULL \
                     AND t.expires_at <= $2 AND ($3 IS NULL OR t.expires_at > $3) \
                     AND NOT EXISTS (SELECT 1 FROM token_notices n \
                                     WHERE n.token_id = t.id AND n.kind = $4) \
                     ORDER BY t.expires_at, t.id LIMIT $5",
                )
                .bind(ws.uuid().to_string())
                .bind(sql::ms(before))
                .bind(sql::opt_ms(after))
                .bind(kind.as_str())
                .bind(i64::from(limit))
                .fetch_all(self.db()?)
                .await?;
                ids.iter()
                    .map(|s| sql::uuid(s).map(TokenId::from_uuid))
                    .collect()
            }

            async fn list_events(&self, ws: WorkspaceId, page: &PageRequest) -> Result<Vec<Event>> {
                let f = Filter::new("workspace_id", Arg::Text(ws.uuid().to_string())).page(page);
                let text = format!(
                    "SELECT id, workspace_id, type, payload, created_at FROM events{}",
                    f.sql
                );
                let mut q = sqlx::query(&text);
                for a in f.args {
                    q = match a {
                        Arg::Text(s) => q.bind(s),
                        Arg::Int(i) => q.bind(i),
                    };
                }
                q.fetch_all(self.db()?).await?.iter().map(event_row).collect()
            }

            async fn claim_deliveries(&self, claim: &Claim) -> Result<Vec<DueDelivery>> {
                // $1 now, $2 lease, $3 limit, $4 per subscription, then the skipped ids.
                let mut skip = String::new();
                let mut binds: Vec<String> = Vec::new();
                let lists = [
                    (
                        "d.webhook_id",
                        claim.skip_webhooks.iter().map(|id| id.uuid()).collect::<Vec<_>>(),
                    ),
                    (
                        "w.workspace_id",
                        claim.skip_workspaces.iter().map(|id| id.uuid()).collect(),
                    ),
                ];
                for (column, ids) in lists {
                    if ids.is_empty() {
                        continue;
                    }
                    let mut marks = Vec::with_capacity(ids.len());
                    for id in ids {
                        binds.push(id.to_string());
                        marks.push(format!("${}", 4 + binds.len()));
                    }
                    skip.push_str(&format!(" AND {column} NOT IN ({})", marks.join(", ")));
                }
                let text = format!(
                    "UPDATE deliveries SET next_attempt_at = $2 \
                     WHERE status = 'pending' AND next_attempt_at <= $1 AND id IN \
                       (SELECT due.id FROM \
                         (SELECT d.id, d.next_attempt_at, ROW_NUMBER() OVER \
                            (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.id) AS n \
                          FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                          WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
                          AND w.enabled = TRUE{skip}) due \
                        WHERE due.n <= $4 ORDER BY due.next_attempt_at, due.id LIMIT $3) \
                     RETURNING id"
                );
                let mut q = sqlx::query_scalar::<_, String>(&text)
                    .bind(sql::ms(claim.now))
                    .bind(sql::ms(claim.lease_until))
                    .bind(i64::from(claim.limit))
                    .bind(i64::from(claim.per_webhook));
                for b in binds {
                    q = q.bind(b);
                }
                let mut tx = self.db()?.begin().await?;
                let ids = q.fetch_all(&mut *tx).await?;
                let mut due = Vec::with_capacity(ids.len());
                for id in &ids {
                    let r = sqlx::query(
                        "SELECT d.id, d.attempts, d.event_id, e.payload, w.id AS webhook_id, \
                         w.workspace_id, w.url, w.secret \
                         FROM deliveries d JOIN events e ON e.id = d.event_id \
                         JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1",
                    )
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    due.push(DueDelivery {
                        id: DeliveryId::from_uuid(sql::uuid(r.try_get("id")?)?),
                        webhook_id: WebhookId::from_uuid(sql::uuid(r.try_get("webhook_id")?)?),
                        workspace_id: WorkspaceId::from_uuid(sql::uuid(
                            r.try_get("workspace_id")?,
                        )?),
                        attempts: small(r.try_get("attempts")?),
                        event_id: EventId::from_uuid(sql::uuid(r.try_get("event_id")?)?),
                        body: r.try_get("payload")?,
                        url: r.try_get("url")?,
                        secret: WebhookSecret::new(r.try_get("secret")?),
                    });
                }
                tx.commit().await?;
                Ok(due)
            }

            async fn release_deliveries(
                &self,
                ids: &[DeliveryId],
                due_at: DateTime<Utc>,
            ) -> Result<()> {
                if ids.is_empty() {
                    return Ok(());
                }
                let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
                let text = format!(
                    "UPDATE deliveries SET next_attempt_at = $1 \
                     WHERE status = 'pending' AND id IN ({})",
                    marks.join(", ")
                );
                let mut q = sqlx::query(&text).bind(sql::ms(due_at));
                for id in ids {
                    q = q.bind(id.uuid().to_string());
                }
                q.execute(self.db()?).await?;
                Ok(())
            }

            async fn record_attempt(&self, delivery: DeliveryId, a: &AttemptResult) -> Result<()> {
                let (status, next, delivered) = match a.next {
                    NextStep::Succeeded => (DeliveryStatus::Succeeded, None, Some(sql::ms(a.at))),
                    NextStep::RetryAt(t) => (DeliveryStatus::Pending, Some(sql::ms(t)), None),
                    NextStep::Failed => (DeliveryStatus::Failed, None, None),
                };
                let mut tx = self.db()?.begin().await?;
                // A delivery no longer pending (cancelled meanwhile) only counts the attempt.
                let row = sqlx::query(
                    "UPDATE deliveries SET attempts = attempts + 1, \
                     status = CASE WHEN status = 'pending' THEN $1 ELSE status END, \
                     next_attempt_at = CASE WHEN status = 'pending' \
                       THEN COALESCE($2, next_attempt_at) ELSE next_attempt_at END, \
                     last_status_code = CASE WHEN status = 'pending' \
                       THEN $3 ELSE last_status_code END, \
                     last_error = CASE WHEN status = 'pending' THEN $4 ELSE last_error END, \
                     delivered_at = CASE WHEN status = 'pending' \
                       THEN COALESCE($5, delivered_at) ELSE delivered_at END \
                     WHERE id = $6 RETURNING attempts, webhook_id, status",
                )
                .bind(status.as_str())
                .bind(next)
                .bind(a.status_code.map(i64::from))
                .bind(a.error.as_deref())
                .bind(delivered)
                .bind(delivery.uuid().to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                let attempts: i64 = row.try_get("attempts")?;
                let webhook: String = row.try_get("webhook_id")?;
                let status_after: String = row.try_get("status")?;
                sqlx::query(
                    "INSERT INTO delivery_attempts (id, delivery_id, webhook_id, attempt, at, \
                     succeeded, status_code, error, status_after) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(delivery.uuid().to_string())
                .bind(webhook)
                .bind(attempts)
                .bind(sql::ms(a.at))
                .bind(matches!(a.next, NextStep::Succeeded))
                .bind(a.status_code.map(i64::from))
                .bind(a.error.as_deref())
                .bind(status_after)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn prune_events(&self, before: DateTime<Utc>) -> Result<EventsPruned> {
                let before = sql::ms(before);
                let mut tx = self.db()?.begin().await?;
                let attempts = sqlx::query(
                    "DELETE FROM delivery_attempts WHERE delivery_id IN \
                     (SELECT id FROM deliveries WHERE status <> 'pending' AND created_at < $1)",
                )
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let deliveries = sqlx::query(
                    "DELETE FROM deliveries WHERE status <> 'pending' AND created_at < $1",
                )
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let events = sqlx::query(
                    "DELETE FROM events WHERE created_at < $1 AND NOT EXISTS \
                     (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
                )
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(EventsPruned {
                    events,
                    deliveries,
                    attempts,
                })
            }

            async fn list_attempts(
                &self,
                ws: WorkspaceId,
                webhook: WebhookId,
                page: &PageRequest,
            ) -> Result<Vec<AttemptRow>> {
                let (after_at, after_id) = match &page.after {
                    Some(c) => (Some(c.created_at.timestamp_millis()), Some(c.id.to_string())),
                    None => (None, None),
                };
                let rows = sqlx::query(
                    "SELECT a.id, a.delivery_id, d.event_id, e.type, a.attempt, a.at, \
                     a.succeeded, a.status_code, a.error, a.status_after \
                     FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
                     JOIN events e ON e.id = d.event_id JOIN webhooks w ON w.id = a.webhook_id \
                     WHERE w.workspace_id = $1 AND a.webhook_id = $2 \
                     AND ($3 IS NULL OR a.at > $3 OR (a.at = $3 AND a.id > $4)) \
                     ORDER BY a.at, a.id LIMIT $5",
                )
                .bind(ws.uuid().to_string())
                .bind(webhook.uuid().to_string())
                .bind(after_at)
                .bind(after_id)
                .bind(i64::from(page.limit))
                .fetch_all(self.db()?)
                .await?;
                rows.iter()
                    .map(|r| {
                        let code: Option<i64> = r.try_get("status_code")?;
                        let id = sql::uuid(r.try_get("id")?)?;
                        Ok(AttemptRow {
                            id,
                            attempt: DeliveryAttempt {
                                delivery_id: DeliveryId::from_uuid(sql::uuid(
                                    r.try_get("delivery_id")?,
                                )?),
                                event_id: EventId::from_uuid(sql::uuid(r.try_get("event_id")?)?),
                                event_type: event_type(r.try_get("type")?)?,
                                attempt: small(r.try_get("attempt")?),
                                at: sql::time(r.try_get("at")?)?,
                                succeeded: r.try_get("succeeded")?,
                                status_code: code.and_then(|c| u16::try_from(c).ok()),
                                error: r.try_get("error")?,
                                delivery_status: DeliveryStatus::parse(
                                    r.try_get("status_after")?,
                                )
                                .ok_or_else(|| corrupt("delivery status"))?,
                            },
                        })
                    })
                    .collect()
            }
        }
        }
    };
}
