//! `usage_store!`: [`crate::UsageStore`] for both backends, like `sql_store!`.
//!
//! Instantiated as `usage_store!(SqliteStore, SqliteRow, roll_up_sqlite)` and
//! `usage_store!(PgStore, PgRow, roll_up_postgres)`. Everything is the same portable SQL but
//! the roll-up, which must move each raw record and minute count exactly once even while other
//! nodes run the same maintenance: SQLite does it in two statements per table in one write
//! transaction (SQLite has one writer at a time), PostgreSQL in one statement per table whose
//! `DELETE … RETURNING` feeds the `INSERT`, so exactly the rows it deleted are counted.

use crate::Result;

/// Bound parameters per statement at most. SQLite allows 32,766, but sqlx looks each
/// parameter's name up among all of a statement's parameters, so binding costs grow with the
/// square of a statement's size: under wrk, a batch writer spent 40 % of the server's core in
/// `sqlite3_bind_parameter_name` at 8,000 parameters per statement and 22 % at 1,000; at 160
/// (20 records) that cost is small next to the inserts themselves.
pub(crate) const MAX_PARAMS: usize = 160;

/// A roll-up hour is `(at / HOUR_MS) * HOUR_MS`.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The tables whose old rows are folded into hours: (table, time column, requests per row).
const FOLDED: [(&str, &str, &str); 2] = [
    ("usage_records", "at", "1"),
    ("usage_minutes", "minute", "requests"),
];

/// Folds raw records and minute counts older than `before` (ms) into `usage_hourly` and
/// deletes them; returns how many requests it moved.
pub(crate) async fn roll_up_sqlite(conn: &mut sqlx::SqliteConnection, before: i64) -> Result<u64> {
    // The first INSERT takes SQLite's write lock, so nothing can arrive between the statements.
    let mut moved = 0;
    for (table, time, requests) in FOLDED {
        sqlx::query(&format!(
            "INSERT INTO usage_hourly (workspace_id, token_id, hour, code, requests) \
             SELECT workspace_id, token_id, ({time} / $2) * $2, code, SUM({requests}) \
             FROM {table} WHERE {time} < $1 \
             GROUP BY workspace_id, token_id, ({time} / $2) * $2, code \
             ON CONFLICT (token_id, hour, code) \
             DO UPDATE SET requests = usage_hourly.requests + excluded.requests"
        ))
        .bind(before)
        .bind(HOUR_MS)
        .execute(&mut *conn)
        .await?;
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COALESCE(SUM({requests}), 0) FROM {table} WHERE {time} < $1"
        ))
        .bind(before)
        .fetch_one(&mut *conn)
        .await?;
        sqlx::query(&format!("DELETE FROM {table} WHERE {time} < $1"))
            .bind(before)
            .execute(&mut *conn)
            .await?;
        moved += u64::try_from(n).unwrap_or(0);
    }
    Ok(moved)
}

/// Folds raw records and minute counts older than `before` (ms) into `usage_hourly` and
/// deletes them; returns how many requests it moved.
pub(crate) async fn roll_up_postgres(conn: &mut sqlx::PgConnection, before: i64) -> Result<u64> {
    // One statement per table: the rows a concurrent maintenance deleted first are not
    // returned here, so each is counted once.
    let mut moved = 0;
    for (table, time, requests) in FOLDED {
        let n: i64 = sqlx::query_scalar(&format!(
            "WITH moved AS (DELETE FROM {table} WHERE {time} < $1 \
                            RETURNING workspace_id, token_id, code, {time} AS at, \
                            {requests} AS requests), \
             folded AS (INSERT INTO usage_hourly (workspace_id, token_id, hour, code, requests) \
                        SELECT workspace_id, token_id, (at / $2) * $2, code, SUM(requests) \
                        FROM moved GROUP BY workspace_id, token_id, (at / $2) * $2, code \
                        ON CONFLICT (token_id, hour, code) \
                        DO UPDATE SET requests = usage_hourly.requests + EXCLUDED.requests) \
             SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) FROM moved"
        ))
        .bind(before)
        .bind(HOUR_MS)
        .fetch_one(&mut *conn)
        .await?;
        moved += u64::try_from(n).unwrap_or(0);
    }
    Ok(moved)
}

/// `($1, $2, …), ($n, …)`: `rows` groups of `cols` numbered placeholders.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

macro_rules! usage_store {
    ($store:ident, $row:ty, $roll_up:ident) => {
        mod usage_sql {
        use std::collections::BTreeMap;

        use super::$store;
        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use keyward_core::{TokenId, WorkspaceId};
        use sqlx::Row as _;

        use $crate::sql::usage_impl::{placeholders, $roll_up, MAX_PARAMS};
        use $crate::sql;
        use $crate::usage::*;
        use $crate::{Result, StoreError};

        /// Columns of a raw record, in insert order.
        const RECORD_COLS: usize = 8;
        /// Columns of a last use, in insert order.
        const LAST_USE_COLS: usize = 5;
        /// Columns of a minute count, in insert order.
        const MINUTE_COLS: usize = 10;

        fn ip_text(ip: Option<std::net::IpAddr>) -> Option<String> {
            ip.map(|ip| ip.to_string())
        }

        fn parse_ip(v: Option<String>) -> Result<Option<std::net::IpAddr>> {
            v.map(|s| {
                s.parse()
                    .map_err(|_| StoreError::Internal("corrupt address in usage".into()))
            })
            .transpose()
        }

        fn parse_code(v: &str) -> Result<keyward_core::Code> {
            serde_json::from_value(serde_json::Value::String(v.to_owned()))
                .map_err(|_| StoreError::Internal("corrupt decision code in usage".into()))
        }

        fn count(n: i64) -> u64 {
            u64::try_from(n).unwrap_or(0)
        }

        fn record_row(r: &$row) -> Result<UsageRecord> {
            let method: Option<String> = r.try_get("method")?;
            let path: Option<String> = r.try_get("path")?;
            let latency: i64 = r.try_get("latency_us")?;
            Ok(UsageRecord {
                at: sql::time(r.try_get("at")?)?,
                token_id: TokenId::from_uuid(sql::uuid(r.try_get("token_id")?)?),
                workspace_id: WorkspaceId::from_uuid(sql::uuid(r.try_get("workspace_id")?)?),
                ip: parse_ip(r.try_get("ip")?)?,
                method: method.map(String::into_boxed_str),
                path: path.map(String::into_boxed_str),
                code: parse_code(r.try_get("code")?)?,
                latency_us: u32::try_from(latency).unwrap_or(u32::MAX),
                request_log: true,
            })
        }

        /// `v` or '' (how a minute count stores an unknown part).
        fn or_empty(v: Option<&str>) -> &str {
            v.unwrap_or_default()
        }

        fn saturating(v: u64) -> i64 {
            i64::try_from(v).unwrap_or(i64::MAX)
        }

        #[async_trait]
        impl UsageStore for $store {
            async fn write_usage(&self, batch: &UsageBatch) -> Result<()> {
                if batch.minutes.is_empty() && batch.records.is_empty() {
                    return Ok(());
                }
                let mut tx = self.db()?.begin().await?;
                // Multi-row inserts, filtered so a token deleted meanwhile drops its usage
                // instead of failing the batch on the foreign key.
                for chunk in batch.minutes.chunks(MAX_PARAMS / MINUTE_COLS) {
                    let sql = format!(
                        "INSERT INTO usage_minutes (workspace_id, token_id, minute, code, ip, \
                         method, path, requests, latency_sum_us, latency_max_us) \
                         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, \
                         v.column6, v.column7, v.column8, v.column9, v.column10 \
                         FROM (VALUES {}) AS v \
                         WHERE EXISTS (SELECT 1 FROM tokens t WHERE t.id = v.column2) \
                         ON CONFLICT (token_id, minute, code, ip, method, path) DO UPDATE SET \
                         requests = usage_minutes.requests + excluded.requests, \
                         latency_sum_us = usage_minutes.latency_sum_us + excluded.latency_sum_us, \
                         latency_max_us = CASE WHEN excluded.latency_max_us > \
                         usage_minutes.latency_max_us THEN excluded.latency_max_us \
                         ELSE usage_minutes.latency_max_us END",
                        placeholders(chunk.len(), MINUTE_COLS)
                    );
                    let mut q = sqlx::query(&sql);
                    for m in chunk {
                        q = q
                            .bind(m.workspace_id.uuid().to_string())
                            .bind(m.token_id.uuid().to_string())
                            .bind(m.minute)
                            .bind(m.code.as_str())
                            .bind(ip_text(m.ip).unwrap_or_default())
                            .bind(or_empty(m.method.as_deref()))
                            .bind(or_empty(m.path.as_deref()))
                            .bind(saturating(m.requests))
                            .bind(saturating(m.latency_sum_us))
                            .bind(i64::from(m.latency_max_us));
                    }
                    q.execute(&mut *tx).await?;
                }
                for chunk in batch.records.chunks(MAX_PARAMS / RECORD_COLS) {
                    let sql = format!(
                        "INSERT INTO usage_records (workspace_id, token_id, at, ip, method, path, \
                         code, latency_us) \
                         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, \
                         v.column6, v.column7, v.column8 FROM (VALUES {}) AS v \
                         WHERE EXISTS (SELECT 1 FROM tokens t WHERE t.id = v.column2)",
                        placeholders(chunk.len(), RECORD_COLS)
                    );
                    let mut q = sqlx::query(&sql);
                    for r in chunk {
                        q = q
                            .bind(r.workspace_id.uuid().to_string())
                            .bind(r.token_id.uuid().to_string())
                            .bind(sql::ms(r.at))
                            .bind(ip_text(r.ip))
                            .bind(r.method.as_deref())
                            .bind(r.path.as_deref())
                            .bind(r.code.as_str())
                            .bind(i64::from(r.latency_us));
                    }
                    q.execute(&mut *tx).await?;
                }
                for chunk in batch.last_uses.chunks(MAX_PARAMS / LAST_USE_COLS) {
                    let sql = format!(
                        "INSERT INTO token_last_use (token_id, workspace_id, at, ip, endpoint) \
                         SELECT v.column1, v.column2, v.column3, v.column4, v.column5 \
                         FROM (VALUES {}) AS v \
                         WHERE EXISTS (SELECT 1 FROM tokens t WHERE t.id = v.column1) \
                         ON CONFLICT (token_id) DO UPDATE SET at = excluded.at, \
                         ip = excluded.ip, endpoint = excluded.endpoint \
                         WHERE excluded.at >= token_last_use.at",
                        placeholders(chunk.len(), LAST_USE_COLS)
                    );
                    let mut q = sqlx::query(&sql);
                    for r in chunk {
                        q = q
                            .bind(r.token_id.uuid().to_string())
                            .bind(r.workspace_id.uuid().to_string())
                            .bind(sql::ms(r.at))
                            .bind(ip_text(r.ip))
                            .bind(keyward_core::usage::endpoint(
                                r.method.as_deref(),
                                r.path.as_deref(),
                            ));
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn last_use(&self, ws: WorkspaceId, token: TokenId) -> Result<Option<LastUse>> {
                let row = sqlx::query(
                    "SELECT at, ip, endpoint FROM token_last_use \
                     WHERE workspace_id = $1 AND token_id = $2",
                )
                .bind(ws.uuid().to_string())
                .bind(token.uuid().to_string())
                .fetch_optional(self.db()?)
                .await?;
                row.map(|r| {
                    Ok(LastUse {
                        at: sql::time(r.try_get("at")?)?,
                        ip: parse_ip(r.try_get("ip")?)?,
                        endpoint: r.try_get("endpoint")?,
                    })
                })
                .transpose()
            }

            async fn usage(&self, q: &UsageQuery) -> Result<UsageAggregate> {
                let ws = q.workspace_id.uuid().to_string();
                let token = q.token_id.uuid().to_string();
                let (from, to) = (sql::ms(q.from), sql::ms(q.to));
                let width = q.granularity.millis();
                let top = i64::from(q.top);
                // $1 workspace, $2 token, $3 from, $4 to, then each query's own.
                const RAW: &str = "FROM usage_records WHERE workspace_id = $1 AND token_id = $2 \
                                   AND at >= $3 AND at < $4";
                const MINUTES: &str = "FROM usage_minutes WHERE workspace_id = $1 \
                                       AND token_id = $2 AND minute >= $3 AND minute < $4";

                let mut cells: BTreeMap<(i64, String), u64> = BTreeMap::new();
                let raw = format!(
                    "SELECT (at / $5) * $5 AS bucket, code, COUNT(*) AS n {RAW} \
                     GROUP BY bucket, code"
                );
                let counted = format!(
                    "SELECT (minute / $5) * $5 AS bucket, code, \
                     CAST(SUM(requests) AS BIGINT) AS n {MINUTES} GROUP BY bucket, code"
                );
                let rolled = "SELECT (hour / $5) * $5 AS bucket, code, \
                              CAST(SUM(requests) AS BIGINT) AS n FROM usage_hourly \
                              WHERE workspace_id = $1 AND token_id = $2 \
                              AND hour >= $3 AND hour < $4 GROUP BY bucket, code";
                for sql in [raw.as_str(), counted.as_str(), rolled] {
                    let rows = sqlx::query(sql)
                        .bind(&ws)
                        .bind(&token)
                        .bind(from)
                        .bind(to)
                        .bind(width)
                        .fetch_all(self.db()?)
                        .await?;
                    for r in rows {
                        let bucket: i64 = r.try_get("bucket")?;
                        let code: String = r.try_get("code")?;
                        let n: i64 = r.try_get("n")?;
                        *cells.entry((bucket, code)).or_default() += count(n);
                    }
                }
                let cells = cells
                    .into_iter()
                    .map(|((bucket, code), n)| Ok((sql::time(bucket)?, code, n)))
                    .collect::<Result<Vec<_>>>()?;

                let distinct: i64 = sqlx::query_scalar(&format!(
                    "SELECT COUNT(*) FROM (SELECT ip {RAW} AND ip IS NOT NULL \
                     UNION SELECT ip {MINUTES} AND ip <> '') AS d"
                ))
                .bind(&ws)
                .bind(&token)
                .bind(from)
                .bind(to)
                .fetch_one(self.db()?)
                .await?;
                let ips = sqlx::query(&format!(
                    "SELECT ip, CAST(SUM(n) AS BIGINT) AS n FROM ( \
                     SELECT ip, COUNT(*) AS n {RAW} AND ip IS NOT NULL GROUP BY ip \
                     UNION ALL SELECT ip, SUM(requests) AS n {MINUTES} AND ip <> '' GROUP BY ip \
                     ) AS u GROUP BY ip ORDER BY n DESC, ip LIMIT $5"
                ))
                .bind(&ws)
                .bind(&token)
                .bind(from)
                .bind(to)
                .bind(top)
                .fetch_all(self.db()?)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("ip")?, count(r.try_get("n")?))))
                .collect::<Result<Vec<_>>>()?;
                // An unknown method groups as '' and is shown as the path alone.
                let endpoints = sqlx::query(&format!(
                    "SELECT m, path, CAST(SUM(n) AS BIGINT) AS n FROM ( \
                     SELECT COALESCE(method, '') AS m, path, COUNT(*) AS n {RAW} \
                     AND path IS NOT NULL GROUP BY COALESCE(method, ''), path \
                     UNION ALL SELECT method AS m, path, SUM(requests) AS n {MINUTES} \
                     AND path <> '' GROUP BY method, path \
                     ) AS u GROUP BY m, path ORDER BY n DESC, m, path LIMIT $5"
                ))
                .bind(&ws)
                .bind(&token)
                .bind(from)
                .bind(to)
                .bind(top)
                .fetch_all(self.db()?)
                .await?
                .iter()
                .map(|r| {
                    let m: String = r.try_get("m")?;
                    let path: String = r.try_get("path")?;
                    let method = Some(m.as_str()).filter(|m| !m.is_empty());
                    let shown = keyward_core::usage::endpoint(method, Some(&path))
                        .unwrap_or(path);
                    Ok((shown, count(r.try_get("n")?)))
                })
                .collect::<Result<Vec<_>>>()?;
                Ok(UsageAggregate {
                    cells,
                    distinct_ips: count(distinct),
                    ips,
                    endpoints,
                })
            }

            async fn recent_usage(
                &self,
                ws: WorkspaceId,
                token: TokenId,
                limit: u32,
            ) -> Result<Vec<UsageRecord>> {
                let rows = sqlx::query(
                    "SELECT workspace_id, token_id, at, ip, method, path, code, latency_us \
                     FROM usage_records WHERE workspace_id = $1 AND token_id = $2 \
                     ORDER BY at DESC LIMIT $3",
                )
                .bind(ws.uuid().to_string())
                .bind(token.uuid().to_string())
                .bind(i64::from(limit))
                .fetch_all(self.db()?)
                .await?;
                rows.iter().map(record_row).collect()
            }

            async fn maintain_usage(
                &self,
                raw_before: DateTime<Utc>,
                rollups_before: DateTime<Utc>,
            ) -> Result<UsageMaintenance> {
                let mut tx = self.db()?.begin().await?;
                let rolled_up = $roll_up(&mut *tx, sql::ms(raw_before)).await?;
                let old = sqlx::query("DELETE FROM usage_hourly WHERE hour < $1")
                    .bind(sql::ms(rollups_before))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let orphans = sqlx::query(
                    "DELETE FROM usage_hourly WHERE NOT EXISTS \
                     (SELECT 1 FROM tokens t WHERE t.id = usage_hourly.token_id)",
                )
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(UsageMaintenance {
                    rolled_up,
                    pruned_rollups: old + orphans,
                })
            }
        }
        }
    };
}
