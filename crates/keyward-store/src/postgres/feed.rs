//! The change feed on PostgreSQL: `LISTEN keyward_changes` on a connection of its own.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool};

use crate::breaker::Breaker;
use crate::feed::{Change, ChangeFeed, FeedEvent, CHANNEL};
use crate::StoreError;

/// Follows the announcements of one schema.
pub(super) struct PgChangeFeed {
    pub(super) pool: PgPool,
    pub(super) schema: String,
    pub(super) breaker: Arc<Breaker>,
    pub(super) listener: Option<PgListener>,
}

#[async_trait]
impl ChangeFeed for PgChangeFeed {
    async fn next(&mut self) -> crate::Result<FeedEvent> {
        loop {
            let Some(listener) = self.listener.as_mut() else {
                // Listening again: anything announced since the last connection was lost.
                // While the database is known to be down, wait for it to answer again, so
                // the feed resumes as soon as the circuit closes.
                self.breaker.closed().await;
                let mut listener = PgListener::connect_with(&self.pool)
                    .await
                    .map_err(|e| self.lost(e))?;
                listener.listen(CHANNEL).await.map_err(|e| self.lost(e))?;
                self.listener = Some(listener);
                return Ok(FeedEvent::Resumed);
            };
            // A connection that hangs (a dropped network) never says it is gone: when the
            // monitor finds the database unreachable, this connection is given up too.
            let received = tokio::select! {
                r = listener.try_recv() => r,
                () = self.breaker.opened() => {
                    self.listener = None;
                    return Err(StoreError::Unavailable("PostgreSQL is unreachable".into()));
                }
            };
            match received {
                Ok(Some(n)) => {
                    if let Some((change, announced_us)) = Change::parse(n.payload(), &self.schema) {
                        return Ok(FeedEvent::Changed {
                            change,
                            announced_us,
                        });
                    }
                }
                Ok(None) => {
                    self.listener = None;
                    self.breaker.suspect();
                }
                Err(e) => {
                    self.listener = None;
                    return Err(self.lost(e));
                }
            }
        }
    }
}

impl PgChangeFeed {
    /// The listening connection failed: the monitor should look now.
    fn lost(&self, e: sqlx::Error) -> StoreError {
        self.breaker.suspect();
        StoreError::Unavailable(format!("listening for changes: {e}"))
    }
}
