//! The embedded default: SQLite in one WAL file, created on first use.
//!
//! Commits are durable by default: `synchronous=FULL` syncs the WAL at every commit, so an
//! acknowledged revocation survives an OS crash or power loss. `[database] sqlite_synchronous
//! = "normal"` trades that for faster writes (the WAL is then synced at checkpoints only).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::migrate::{apply_migrations, SQLITE};
use crate::{StoreError, StoreOptions};

/// A store in a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    chain: keyward_core::audit::ChainKey,
}

impl SqliteStore {
    /// The pool; a local file is never "unreachable" the way a server is.
    fn db(&self) -> crate::Result<&SqlitePool> {
        Ok(&self.pool)
    }

    /// Opens (creating if missing) and migrates the database that `options.url` names.
    pub async fn open(options: &StoreOptions) -> crate::Result<Self> {
        let connect = SqliteConnectOptions::from_str(&options.url)
            .map_err(|e| StoreError::Config(format!("invalid SQLite url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.sqlite_synchronous {
                crate::SqliteSync::Full => SqliteSynchronous::Full,
                crate::SqliteSync::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening SQLite database: {e}")))?;
        let mut tx = pool.begin().await?;
        apply_migrations!(tx, SQLITE);
        seal_legacy_chains!(tx, &options.chain_key)?;
        tx.commit().await?;
        Ok(Self {
            pool,
            chain: options.chain_key.clone(),
        })
    }
}

// The last argument: a workspace's catalogue rows as one JSON array of
// `[permission, description]` pairs.
sql_store!(
    SqliteStore,
    sqlx::sqlite::SqliteRow,
    "json_group_array(json_array(permission, description))"
);
audit_store!(SqliteStore, sqlx::sqlite::SqliteRow);
usage_store!(SqliteStore, sqlx::sqlite::SqliteRow, roll_up_sqlite);
events_store!(SqliteStore, sqlx::sqlite::SqliteRow, Sqlite);
people_store!(SqliteStore, sqlx::sqlite::SqliteRow);
change_store!(SqliteStore, sqlx::sqlite::SqliteRow);

#[async_trait::async_trait]
impl crate::Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> crate::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn load_verification(
        &self,
        hash: &keyward_core::TokenHash,
    ) -> crate::Result<Option<crate::VerificationRecord>> {
        shared_sql::load_verification(self, hash).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn synchronous_of(sync: crate::SqliteSync) -> i64 {
        let mut b = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
        let path = std::env::temp_dir().join(format!("keyward-sync-{}.db", u64::from_le_bytes(b)));
        let store = SqliteStore::open(&StoreOptions {
            url: format!("sqlite://{}", path.display()),
            schema: None,
            max_connections: 2,
            chain_key: keyward_core::audit::ChainKey::from_bytes([7; 32]),
            sqlite_synchronous: sync,
        })
        .await
        .unwrap();
        let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        store.pool.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        level
    }

    #[tokio::test]
    async fn commits_are_durable_unless_told_otherwise() {
        assert_eq!(crate::SqliteSync::default(), crate::SqliteSync::Full);
        assert_eq!(synchronous_of(crate::SqliteSync::Full).await, 2);
        assert_eq!(synchronous_of(crate::SqliteSync::Normal).await, 1);
    }
}
