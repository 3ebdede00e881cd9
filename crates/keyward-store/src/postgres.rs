//! The shared store for several nodes: PostgreSQL, optionally in a schema of its own.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::migrate::{apply_migrations, POSTGRES};
use crate::{StoreError, StoreOptions};

/// Arbitrary key of the advisory lock that serialises migrations of several starting nodes.
const MIGRATION_LOCK: i64 = 0x006b_6579_7761_7264;

/// A store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    chain: keyward_core::audit::ChainKey,
}

impl PgStore {
    /// Connects, creates the schema if one is named and missing, and migrates.
    pub async fn open(options: &StoreOptions) -> crate::Result<Self> {
        let mut connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL url: {e}")))?;
        if let Some(schema) = &options.schema {
            if !valid_schema(schema) {
                return Err(StoreError::Config(format!(
                    "schema {schema:?} must be lower-case letters, digits and '_'"
                )));
            }
            let mut conn = connect.connect().await.map_err(unavailable)?;
            sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&mut conn)
                .await?;
            conn.close().await.map_err(unavailable)?;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await
            .map_err(unavailable)?;
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        apply_migrations!(tx, POSTGRES);
        seal_legacy_chains!(tx, &options.chain_key)?;
        tx.commit().await?;
        Ok(Self {
            pool,
            chain: options.chain_key.clone(),
        })
    }
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!("connecting to PostgreSQL: {e}"))
}

sql_store!(PgStore, sqlx::postgres::PgRow);
audit_store!(PgStore, sqlx::postgres::PgRow);
usage_store!(PgStore, sqlx::postgres::PgRow, roll_up_postgres);
events_store!(PgStore, sqlx::postgres::PgRow, Postgres);
people_store!(PgStore, sqlx::postgres::PgRow);
change_store!(PgStore, sqlx::postgres::PgRow);

#[async_trait::async_trait]
impl crate::Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> crate::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
