//! `people_store!`: [`crate::PeopleStore`] for both backends, like `sql_store!`.
//!
//! Instantiated as `people_store!(SqliteStore, SqliteRow)` and `people_store!(PgStore, PgRow)`
//! after `sql_store!` in the same module (it decodes users with `sql_store!`'s `user_row`).
//! All portable SQL. The guarantees sign-in relies on are single statements, so they hold
//! across connections and nodes:
//! - a TOTP step, a recovery code and an invitation are each used by one conditional `UPDATE`
//!   (`… WHERE totp_last_step < $n`, `… WHERE used_at IS NULL`), so of two concurrent uses
//!   exactly one matches a row; the audit event (and, for an invitation, the credentials) is
//!   written only by the one that did;
//! - rows that name a person are inserted by `INSERT … SELECT … FROM users WHERE id = $n AND
//!   workspace_id = $m`, so nothing is stored for a user of another workspace (or none).
//!
//! Every transaction starts with a write: on SQLite a transaction that reads first fails at once
//! with "database is locked" when it then writes while another connection does.

macro_rules! people_store {
    ($store:ident, $row:ty) => {
        mod people_sql {
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use keyward_core::audit::AuditDraft;
        use keyward_core::{User, UserId, WorkspaceId};
        use sqlx::Row as _;

        use super::shared_sql::{user_row, USER_COLS};
        use super::$store;
        use $crate::people::*;
        use $crate::sql;
        use $crate::{Result, StoreError};

        type Tx<'a> = sqlx::Transaction<'a, <$row as sqlx::Row>::Database>;

        const CREDENTIAL_COLS: &[&str] = &[
            "user_id",
            "workspace_id",
            "password_hash",
            "totp_secret",
            "totp_enabled_at",
            "totp_last_step",
            "updated_at",
        ];
        const INVITATION_COLS: &str =
            "hash, workspace_id, user_id, created_at, expires_at, used_at";
        const SESSION_COLS: &str =
            "hash, workspace_id, user_id, stage, created_at, last_seen_at, ip, user_agent";

        /// `t.col AS {prefix}col, …` for `cols`.
        fn aliased(table: &str, cols: &[&str], prefix: &str) -> String {
            cols.iter()
                .map(|c| format!("{table}.{c} AS {prefix}{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        }

        /// Credentials from the columns named `{prefix}user_id`, ….
        fn credentials_row(r: &$row, prefix: &str) -> Result<Credentials> {
            let col = |c: &str| format!("{prefix}{c}");
            Ok(Credentials {
                user_id: UserId::from_uuid(sql::uuid(r.try_get(col("user_id").as_str())?)?),
                workspace_id: WorkspaceId::from_uuid(sql::uuid(
                    r.try_get(col("workspace_id").as_str())?,
                )?),
                password_hash: r.try_get(col("password_hash").as_str())?,
                totp_secret: r.try_get(col("totp_secret").as_str())?,
                totp_enabled_at: sql::opt_time(r.try_get(col("totp_enabled_at").as_str())?)?,
                totp_last_step: r.try_get(col("totp_last_step").as_str())?,
                updated_at: sql::time(r.try_get(col("updated_at").as_str())?)?,
            })
        }

        fn invitation_row(r: &$row) -> Result<Invitation> {
            Ok(Invitation {
                hash: r.try_get("hash")?,
                workspace_id: WorkspaceId::from_uuid(sql::uuid(r.try_get("workspace_id")?)?),
                user_id: UserId::from_uuid(sql::uuid(r.try_get("user_id")?)?),
                created_at: sql::time(r.try_get("created_at")?)?,
                expires_at: sql::time(r.try_get("expires_at")?)?,
                used_at: sql::opt_time(r.try_get("used_at")?)?,
            })
        }

        fn session_row(r: &$row) -> Result<Session> {
            let stage: &str = r.try_get("stage")?;
            Ok(Session {
                hash: r.try_get("hash")?,
                workspace_id: WorkspaceId::from_uuid(sql::uuid(r.try_get("workspace_id")?)?),
                user_id: UserId::from_uuid(sql::uuid(r.try_get("user_id")?)?),
                stage: SessionStage::parse(stage)
                    .ok_or_else(|| StoreError::Internal("corrupt session stage in storage".into()))?,
                created_at: sql::time(r.try_get("created_at")?)?,
                last_seen_at: sql::time(r.try_get("last_seen_at")?)?,
                ip: r.try_get("ip")?,
                user_agent: r.try_get("user_agent")?,
            })
        }

        /// Inserts or replaces `c`, if its user is in its workspace (`NotFound` otherwise). The
        /// TOTP step never goes back: a write computed from a read older than a claim keeps the
        /// claimed step, so it cannot make a used code acceptable again.
        async fn upsert_credentials(tx: &mut Tx<'_>, c: &Credentials) -> Result<()> {
            let done = sqlx::query(
                "INSERT INTO credentials (user_id, workspace_id, password_hash, totp_secret, \
                 totp_enabled_at, totp_last_step, updated_at) \
                 SELECT id, workspace_id, $3, $4, $5, $6, $7 FROM users \
                 WHERE id = $1 AND workspace_id = $2 \
                 ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, \
                 totp_secret = excluded.totp_secret, totp_enabled_at = excluded.totp_enabled_at, \
                 totp_last_step = CASE \
                   WHEN credentials.totp_last_step IS NULL THEN excluded.totp_last_step \
                   WHEN excluded.totp_last_step IS NULL THEN credentials.totp_last_step \
                   WHEN excluded.totp_last_step > credentials.totp_last_step \
                     THEN excluded.totp_last_step \
                   ELSE credentials.totp_last_step END, \
                 updated_at = excluded.updated_at",
            )
            .bind(c.user_id.uuid().to_string())
            .bind(c.workspace_id.uuid().to_string())
            .bind(&c.password_hash)
            .bind(&c.totp_secret)
            .bind(sql::opt_ms(c.totp_enabled_at))
            .bind(c.totp_last_step)
            .bind(sql::ms(c.updated_at))
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }

        /// `NotFound` unless `user` is a user of `ws`.
        async fn user_exists(tx: &mut Tx<'_>, ws: WorkspaceId, user: UserId) -> Result<()> {
            sqlx::query("SELECT 1 AS one FROM users WHERE workspace_id = $1 AND id = $2")
                .bind(ws.uuid().to_string())
                .bind(user.uuid().to_string())
                .fetch_optional(&mut **tx)
                .await?
                .map(drop)
                .ok_or(StoreError::NotFound)
        }

        async fn commit(mut tx: Tx<'_>, store: &$store, audit: &AuditDraft) -> Result<()> {
            append_audit!(tx, &store.chain, audit)?;
            tx.commit().await?;
            Ok(())
        }

        fn count(n: i64) -> u32 {
            u32::try_from(n).unwrap_or(u32::MAX)
        }

        #[async_trait]
        impl PeopleStore for $store {
            async fn people_by_email(&self, email: &str) -> Result<Vec<(User, Credentials)>> {
                // Candidates by SQL (LOWER folds ASCII only on SQLite, so the lower-cased
                // address is offered too: the server stores addresses lower-cased), then the
                // exact rule here, so both backends answer alike whatever their collation.
                let wanted = email.to_lowercase();
                let user_cols: Vec<&str> = USER_COLS.split(',').map(str::trim).collect();
                let query = format!(
                    "SELECT {}, {} FROM users u LEFT JOIN credentials c ON c.user_id = u.id \
                     WHERE u.kind = 'human' \
                     AND (LOWER(u.email) = LOWER($1) OR LOWER(u.email) = $2) \
                     ORDER BY u.created_at, u.id",
                    aliased("u", &user_cols, ""),
                    aliased("c", CREDENTIAL_COLS, "c_"),
                );
                let rows = sqlx::query(&query)
                    .bind(email)
                    .bind(&wanted)
                    .fetch_all(self.db()?)
                    .await?;
                let mut people = Vec::with_capacity(rows.len());
                for r in &rows {
                    let user = user_row(r)?;
                    let same = user
                        .email
                        .as_deref()
                        .is_some_and(|e| e.to_lowercase() == wanted);
                    if !same {
                        continue;
                    }
                    let stored: Option<&str> = r.try_get("c_user_id")?;
                    let credentials = match stored {
                        Some(_) => credentials_row(r, "c_")?,
                        None => Credentials::empty(&user, user.created_at),
                    };
                    people.push((user, credentials));
                }
                Ok(people)
            }

            async fn credentials(
                &self,
                ws: WorkspaceId,
                user: UserId,
            ) -> Result<Option<Credentials>> {
                let query = format!(
                    "SELECT {} FROM credentials WHERE workspace_id = $1 AND user_id = $2",
                    CREDENTIAL_COLS.join(", ")
                );
                sqlx::query(&query)
                    .bind(ws.uuid().to_string())
                    .bind(user.uuid().to_string())
                    .fetch_optional(self.db()?)
                    .await?
                    .map(|r| credentials_row(&r, ""))
                    .transpose()
            }

            async fn put_credentials(&self, c: &Credentials, audit: &AuditDraft) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                upsert_credentials(&mut tx, c).await?;
                commit(tx, self, audit).await
            }

            async fn claim_totp_step(
                &self,
                ws: WorkspaceId,
                user: UserId,
                step: i64,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE credentials SET totp_last_step = $3 \
                     WHERE workspace_id = $1 AND user_id = $2 \
                     AND (totp_last_step IS NULL OR totp_last_step < $3)",
                )
                .bind(ws.uuid().to_string())
                .bind(user.uuid().to_string())
                .bind(step)
                .execute(self.db()?)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn replace_recovery_codes(
                &self,
                ws: WorkspaceId,
                user: UserId,
                hashes: &[String],
                audit: &AuditDraft,
            ) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                sqlx::query("DELETE FROM recovery_codes WHERE workspace_id = $1 AND user_id = $2")
                    .bind(ws.uuid().to_string())
                    .bind(user.uuid().to_string())
                    .execute(&mut *tx)
                    .await?;
                user_exists(&mut tx, ws, user).await?;
                for hash in hashes {
                    sqlx::query(
                        "INSERT INTO recovery_codes (workspace_id, user_id, hash, used_at) \
                         VALUES ($1, $2, $3, NULL)",
                    )
                    .bind(ws.uuid().to_string())
                    .bind(user.uuid().to_string())
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
                }
                commit(tx, self, audit).await
            }

            async fn use_recovery_code(
                &self,
                ws: WorkspaceId,
                user: UserId,
                hash: &str,
                at: DateTime<Utc>,
                audit: &AuditDraft,
            ) -> Result<bool> {
                let mut tx = self.db()?.begin().await?;
                let done = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $4 \
                     WHERE workspace_id = $1 AND user_id = $2 AND hash = $3 AND used_at IS NULL",
                )
                .bind(ws.uuid().to_string())
                .bind(user.uuid().to_string())
                .bind(hash)
                .bind(sql::ms(at))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    // Dropping the transaction rolls it back: no event.
                    return Ok(false);
                }
                commit(tx, self, audit).await?;
                Ok(true)
            }

            async fn recovery_codes_left(&self, ws: WorkspaceId, user: UserId) -> Result<u32> {
                let n: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM recovery_codes \
                     WHERE workspace_id = $1 AND user_id = $2 AND used_at IS NULL",
                )
                .bind(ws.uuid().to_string())
                .bind(user.uuid().to_string())
                .fetch_one(self.db()?)
                .await?
                .try_get("n")?;
                Ok(count(n))
            }

            async fn create_invitation(&self, inv: &Invitation, audit: &AuditDraft) -> Result<()> {
                let mut tx = self.db()?.begin().await?;
                // The earlier unused links go: nothing is kept of a link no one can use.
                sqlx::query(
                    "DELETE FROM invitations \
                     WHERE workspace_id = $1 AND user_id = $2 AND used_at IS NULL",
                )
                .bind(inv.workspace_id.uuid().to_string())
                .bind(inv.user_id.uuid().to_string())
                .execute(&mut *tx)
                .await?;
                let done = sqlx::query(
                    "INSERT INTO invitations (hash, workspace_id, user_id, created_at, \
                     expires_at, used_at) \
                     SELECT $1, workspace_id, id, $4, $5, $6 FROM users \
                     WHERE id = $2 AND workspace_id = $3",
                )
                .bind(&inv.hash)
                .bind(inv.user_id.uuid().to_string())
                .bind(inv.workspace_id.uuid().to_string())
                .bind(sql::ms(inv.created_at))
                .bind(sql::ms(inv.expires_at))
                .bind(sql::opt_ms(inv.used_at))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                commit(tx, self, audit).await
            }

            async fn invitation(&self, hash: &str) -> Result<Option<Invitation>> {
                let query = format!("SELECT {INVITATION_COLS} FROM invitations WHERE hash = $1");
                sqlx::query(&query)
                    .bind(hash)
                    .fetch_optional(self.db()?)
                    .await?
                    .map(|r| invitation_row(&r))
                    .transpose()
            }

            async fn accept_invitation(
                &self,
                hash: &str,
                at: DateTime<Utc>,
                credentials: &Credentials,
                audit: &AuditDraft,
            ) -> Result<bool> {
                let mut tx = self.db()?.begin().await?;
                // Only the invited person's credentials are stored by their link.
                let done = sqlx::query(
                    "UPDATE invitations SET used_at = $2 \
                     WHERE hash = $1 AND used_at IS NULL AND expires_at > $2 \
                     AND workspace_id = $3 AND user_id = $4",
                )
                .bind(hash)
                .bind(sql::ms(at))
                .bind(credentials.workspace_id.uuid().to_string())
                .bind(credentials.user_id.uuid().to_string())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                upsert_credentials(&mut tx, credentials).await?;
                commit(tx, self, audit).await?;
                Ok(true)
            }

            async fn create_session(&self, s: &Session) -> Result<()> {
                let done = sqlx::query(
                    "INSERT INTO sessions (hash, workspace_id, user_id, stage, created_at, \
                     last_seen_at, ip, user_agent) \
                     SELECT $1, workspace_id, id, $4, $5, $6, $7, $8 FROM users \
                     WHERE id = $2 AND workspace_id = $3",
                )
                .bind(&s.hash)
                .bind(s.user_id.uuid().to_string())
                .bind(s.workspace_id.uuid().to_string())
                .bind(s.stage.as_str())
                .bind(sql::ms(s.created_at))
                .bind(sql::ms(s.last_seen_at))
                .bind(&s.ip)
                .bind(&s.user_agent)
                .execute(self.db()?)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn session(&self, hash: &str) -> Result<Option<Session>> {
                let query = format!("SELECT {SESSION_COLS} FROM sessions WHERE hash = $1");
                sqlx::query(&query)
                    .bind(hash)
                    .fetch_optional(self.db()?)
                    .await?
                    .map(|r| session_row(&r))
                    .transpose()
            }

            async fn update_session(
                &self,
                hash: &str,
                stage: SessionStage,
                at: DateTime<Utc>,
            ) -> Result<()> {
                let done = sqlx::query(
                    "UPDATE sessions SET stage = $1, last_seen_at = $2 WHERE hash = $3",
                )
                .bind(stage.as_str())
                .bind(sql::ms(at))
                .bind(hash)
                .execute(self.db()?)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn list_sessions(&self, ws: WorkspaceId, user: UserId) -> Result<Vec<Session>> {
                let query = format!(
                    "SELECT {SESSION_COLS} FROM sessions WHERE workspace_id = $1 AND user_id = $2 \
                     ORDER BY created_at DESC, hash DESC"
                );
                let rows = sqlx::query(&query)
                    .bind(ws.uuid().to_string())
                    .bind(user.uuid().to_string())
                    .fetch_all(self.db()?)
                    .await?;
                rows.iter().map(session_row).collect()
            }

            async fn delete_session(
                &self,
                ws: WorkspaceId,
                user: UserId,
                hash: &str,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "DELETE FROM sessions WHERE workspace_id = $1 AND user_id = $2 AND hash = $3",
                )
                .bind(ws.uuid().to_string())
                .bind(user.uuid().to_string())
                .bind(hash)
                .execute(self.db()?)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_user_sessions(&self, ws: WorkspaceId, user: UserId) -> Result<u64> {
                let done =
                    sqlx::query("DELETE FROM sessions WHERE workspace_id = $1 AND user_id = $2")
                        .bind(ws.uuid().to_string())
                        .bind(user.uuid().to_string())
                        .execute(self.db()?)
                        .await?;
                Ok(done.rows_affected())
            }

            async fn delete_stale_sessions(
                &self,
                idle_before: DateTime<Utc>,
                created_before: DateTime<Utc>,
            ) -> Result<u64> {
                let done = sqlx::query(
                    "DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2",
                )
                .bind(sql::ms(idle_before))
                .bind(sql::ms(created_before))
                .execute(self.db()?)
                .await?;
                Ok(done.rows_affected())
            }
        }
        }
    };
}
