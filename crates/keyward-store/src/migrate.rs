//! Embedded migrations. Each backend has its own DDL files, applied in version order and
//! recorded in `keyward_migrations`; a version already recorded is never run again.

/// One schema change.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "access_policy",
        sql: include_str!("../migrations/sqlite/0002_access_policy.sql"),
    },
    Migration {
        version: 3,
        name: "audit",
        sql: include_str!("../migrations/sqlite/0003_audit.sql"),
    },
    // Versions need not be contiguous: every version not yet recorded is applied.
    Migration {
        version: 4,
        name: "usage",
        sql: include_str!("../migrations/sqlite/0004_usage.sql"),
    },
    Migration {
        version: 5,
        name: "events",
        sql: include_str!("../migrations/sqlite/0005_events.sql"),
    },
    Migration {
        version: 6,
        name: "rotation",
        sql: include_str!("../migrations/sqlite/0006_rotation.sql"),
    },
    Migration {
        version: 7,
        name: "event_retention",
        sql: include_str!("../migrations/sqlite/0007_event_retention.sql"),
    },
    Migration {
        version: 8,
        name: "audit_keyed_chain",
        sql: include_str!("../migrations/sqlite/0008_audit_keyed_chain.sql"),
    },
    Migration {
        version: 9,
        name: "row_versions",
        sql: include_str!("../migrations/sqlite/0009_row_versions.sql"),
    },
    Migration {
        version: 10,
        name: "people",
        sql: include_str!("../migrations/sqlite/0010_people.sql"),
    },
    Migration {
        version: 11,
        name: "change_requests",
        sql: include_str!("../migrations/sqlite/0011_change_requests.sql"),
    },
    Migration {
        version: 12,
        name: "token_makers",
        sql: include_str!("../migrations/sqlite/0012_token_makers.sql"),
    },
    Migration {
        version: 13,
        name: "rate_limit_per",
        sql: include_str!("../migrations/sqlite/0013_rate_limit_per.sql"),
    },
    // 14 is PostgreSQL's change feed; 15 and 16 have the same numbers on both.
    Migration {
        version: 15,
        name: "usage_minutes",
        sql: include_str!("../migrations/sqlite/0015_usage_minutes.sql"),
    },
    Migration {
        version: 16,
        name: "token_expiry_index",
        sql: include_str!("../migrations/sqlite/0016_token_expiry_index.sql"),
    },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "access_policy",
        sql: include_str!("../migrations/postgres/0002_access_policy.sql"),
    },
    Migration {
        version: 3,
        name: "audit",
        sql: include_str!("../migrations/postgres/0003_audit.sql"),
    },
    // Versions need not be contiguous: every version not yet recorded is applied.
    Migration {
        version: 4,
        name: "usage",
        sql: include_str!("../migrations/postgres/0004_usage.sql"),
    },
    Migration {
        version: 5,
        name: "events",
        sql: include_str!("../migrations/postgres/0005_events.sql"),
    },
    Migration {
        version: 6,
        name: "rotation",
        sql: include_str!("../migrations/postgres/0006_rotation.sql"),
    },
    Migration {
        version: 7,
        name: "event_retention",
        sql: include_str!("../migrations/postgres/0007_event_retention.sql"),
    },
    Migration {
        version: 8,
        name: "audit_keyed_chain",
        sql: include_str!("../migrations/postgres/0008_audit_keyed_chain.sql"),
    },
    Migration {
        version: 9,
        name: "row_versions",
        sql: include_str!("../migrations/postgres/0009_row_versions.sql"),
    },
    Migration {
        version: 10,
        name: "people",
        sql: include_str!("../migrations/postgres/0010_people.sql"),
    },
    Migration {
        version: 11,
        name: "change_requests",
        sql: include_str!("../migrations/postgres/0011_change_requests.sql"),
    },
    Migration {
        version: 12,
        name: "token_makers",
        sql: include_str!("../migrations/postgres/0012_token_makers.sql"),
    },
    Migration {
        version: 13,
        name: "rate_limit_per",
        sql: include_str!("../migrations/postgres/0013_rate_limit_per.sql"),
    },
    // 14 exists only here: SQLite serves one node and needs no change feed.
    Migration {
        version: 14,
        name: "change_feed",
        sql: include_str!("../migrations/postgres/0014_change_feed.sql"),
    },
    Migration {
        version: 15,
        name: "usage_minutes",
        sql: include_str!("../migrations/postgres/0015_usage_minutes.sql"),
    },
    Migration {
        version: 16,
        name: "token_expiry_index",
        sql: include_str!("../migrations/postgres/0016_token_expiry_index.sql"),
    },
];

/// The bookkeeping table, in SQL both backends accept.
pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS keyward_migrations (\
     version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// Runs the migrations of `$list` not yet recorded, inside the open transaction `$tx`.
macro_rules! apply_migrations {
    ($tx:expr, $list:expr) => {{
        sqlx::raw_sql($crate::migrate::CREATE_TABLE)
            .execute(&mut *$tx)
            .await?;
        let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM keyward_migrations")
            .fetch_all(&mut *$tx)
            .await?;
        for m in $list.iter().filter(|m| !done.contains(&m.version)) {
            tracing::info!(version = m.version, name = m.name, "applying migration");
            sqlx::raw_sql(m.sql).execute(&mut *$tx).await?;
            sqlx::query(
                "INSERT INTO keyward_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(crate) use apply_migrations;
