//! The change feed on PostgreSQL: `LISTEN keyward_changes` on a connection of its own.
//!
//! The listening connection sits idle between changes, and an idle connection can be dropped
//! silently (a load balancer's or firewall's idle timeout, with no reset). So a heartbeat is
//! announced on the channel every [`HEARTBEAT`] from the store's pool, and a listener that has
//! heard nothing at all for [`SILENCE`] is taken for lost: it is dropped and the feed resumes
//! (which makes the follower treat its whole cache as unconfirmed).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::breaker::Breaker;
use crate::feed::{Change, ChangeFeed, FeedEvent, CHANNEL};
use crate::StoreError;

/// How often the heartbeat is announced.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a listener may hear nothing before it is given up.
pub(super) const SILENCE: Duration = Duration::from_secs(15);
/// A connection that drops sooner than this after it was made is not made again at once.
const SHORT_LIVED: Duration = Duration::from_secs(1);

/// Follows the announcements of one schema.
pub(super) struct PgChangeFeed {
    /// A pool of one connection, the listener's own (not taken from the store's pool).
    listen_pool: PgPool,
    schema: String,
    breaker: Arc<Breaker>,
    listener: Option<PgListener>,
    connected_at: Instant,
    heard_at: Instant,
    heartbeat: JoinHandle<()>,
}

impl Drop for PgChangeFeed {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl PgChangeFeed {
    /// A feed of `schema`'s changes; heartbeats go out through `pool`.
    pub(super) fn new(pool: &PgPool, schema: String, breaker: Arc<Breaker>) -> Self {
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(crate::breaker::PROBE_TIMEOUT)
            .connect_lazy_with((*pool.connect_options()).clone());
        let beat = format!("{schema} heartbeat");
        let (pool, beats) = (pool.clone(), breaker.clone());
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                if beats.is_open() {
                    continue;
                }
                let _ = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(&beat)
                    .execute(&pool)
                    .await;
            }
        });
        let now = Instant::now();
        Self {
            listen_pool,
            schema,
            breaker,
            listener: None,
            connected_at: now,
            heard_at: now,
            heartbeat,
        }
    }

    /// The listening connection failed: the monitor should look now.
    fn lost(&self, e: sqlx::Error) -> StoreError {
        self.breaker.suspect();
        StoreError::Unavailable(format!("listening for changes: {e}"))
    }
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
                let mut listener = PgListener::connect_with(&self.listen_pool)
                    .await
                    .map_err(|e| self.lost(e))?;
                listener.listen(CHANNEL).await.map_err(|e| self.lost(e))?;
                self.listener = Some(listener);
                self.connected_at = Instant::now();
                self.heard_at = self.connected_at;
                return Ok(FeedEvent::Resumed);
            };
            // A connection that hangs (a dropped network) never says it is gone: it is given
            // up when the monitor finds the database unreachable, or when not even the
            // heartbeat has been heard for SILENCE. (Either way the listener is dropped, so
            // cancelling its read does no harm.)
            let received = tokio::select! {
                r = listener.try_recv() => r,
                () = self.breaker.opened() => {
                    self.listener = None;
                    return Err(StoreError::Unavailable("PostgreSQL is unreachable".into()));
                }
                () = tokio::time::sleep_until(self.heard_at + SILENCE) => {
                    self.listener = None;
                    self.breaker.suspect();
                    return Err(StoreError::Unavailable(format!(
                        "the change feed heard nothing, not even its heartbeat, for {SILENCE:?}"
                    )));
                }
            };
            match received {
                Ok(Some(n)) => {
                    self.heard_at = Instant::now();
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
                    // Something cuts the connection as soon as it is made (a pooler in
                    // transaction mode, an idle-session timeout): do not spin on it.
                    if self.connected_at.elapsed() < SHORT_LIVED {
                        tokio::time::sleep(SHORT_LIVED).await;
                    }
                }
                Err(e) => {
                    self.listener = None;
                    return Err(self.lost(e));
                }
            }
        }
    }
}
