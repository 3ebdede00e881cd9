//! The shared store for several nodes: PostgreSQL, optionally in a schema of its own, with a
//! circuit breaker in front of it ([`crate::breaker`], watched by `monitor`) and a change
//! feed (`feed`).

mod feed;
mod monitor;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::breaker::Breaker;
use crate::migrate::{apply_migrations, POSTGRES};
use crate::{StoreError, StoreOptions};

/// Arbitrary key of the advisory lock that serialises migrations of several starting nodes.
const MIGRATION_LOCK: i64 = 0x006b_6579_7761_7264;

/// A store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    chain: keyward_core::audit::ChainKey,
    /// The schema the tables live in (announcements of other schemas are ignored).
    schema: String,
    breaker: Arc<Breaker>,
    _monitor: Arc<monitor::Monitor>,
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
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        let breaker = Arc::new(Breaker::default());
        let monitor = monitor::Monitor::start((*pool.connect_options()).clone(), breaker.clone());
        Ok(Self {
            pool,
            chain: options.chain_key.clone(),
            schema,
            breaker,
            _monitor: Arc::new(monitor),
        })
    }

    /// The pool, or `Unavailable` at once while the circuit is open.
    fn db(&self) -> crate::Result<&PgPool> {
        self.breaker.check()?;
        Ok(&self.pool)
    }

    /// The circuit breaker (for metrics and tests).
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
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

// The last argument: a workspace's catalogue rows as one JSON array of
// `[permission, description]` pairs.
sql_store!(
    PgStore,
    sqlx::postgres::PgRow,
    "json_agg(json_build_array(permission, description))"
);
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
        sqlx::query("SELECT 1").execute(self.db()?).await?;
        Ok(())
    }

    async fn load_verification(
        &self,
        hash: &keyward_core::TokenHash,
    ) -> crate::Result<Option<crate::VerificationRecord>> {
        shared_sql::load_verification(self, hash).await
    }

    fn reachable(&self) -> bool {
        !self.breaker.is_open()
    }

    fn circuit_trips(&self) -> u64 {
        self.breaker.trips()
    }

    async fn change_feed(&self) -> crate::Result<Option<Box<dyn crate::feed::ChangeFeed>>> {
        Ok(Some(Box::new(feed::PgChangeFeed::new(
            &self.pool,
            self.schema.clone(),
            self.breaker.clone(),
        ))))
    }
}
