//! Following the store's change feed: other nodes' changes reach this node's cache.
//!
//! A task reads the feed ([`keyward_store::feed`]) and drops the entries each announced change
//! affects. Whenever the feed (re)connects, announcements may have been lost while it was
//! away, so every cached entry becomes unconfirmed ([`TokenCache::expire_all`]): it is
//! reloaded on its next use, or served stale only while the store cannot be reached. When the
//! feed cannot be read, the task retries with a growing pause (100 ms up to 1 s). SQLite has
//! no feed (it serves one node) and the task ends at once.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyward_store::feed::FeedEvent;
use keyward_store::Store;
use tokio::task::JoinHandle;

use crate::cache::TokenCache;

/// What the follower has seen, for metrics and tests.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Whether the feed is listening now.
    pub listening: AtomicBool,
    /// Changes received and applied.
    pub received: AtomicU64,
    /// Times the feed (re)connected, each expiring the whole cache.
    pub resumed: AtomicU64,
    /// Errors reading the feed.
    pub errors: AtomicU64,
    /// How late the last change arrived after it was made, in microseconds (database clock
    /// against this node's; -1 before the first).
    pub last_lag_us: AtomicI64,
}

/// The running follower; stops when dropped.
#[derive(Debug)]
pub struct Follower {
    task: JoinHandle<()>,
    stats: Arc<FeedStats>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// The "following again" warning is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl Follower {
    /// Starts following `store`'s feed into `cache`. Needs a Tokio runtime.
    pub fn start(store: Arc<dyn Store>, cache: Arc<TokenCache>) -> Follower {
        let stats = Arc::new(FeedStats {
            last_lag_us: AtomicI64::new(-1),
            ..FeedStats::default()
        });
        let task = tokio::spawn(follow(store, cache, stats.clone()));
        Follower { task, stats }
    }

    /// What it has seen.
    pub fn stats(&self) -> &Arc<FeedStats> {
        &self.stats
    }
}

async fn follow(store: Arc<dyn Store>, cache: Arc<TokenCache>, stats: Arc<FeedStats>) {
    let mut pause = FIRST_PAUSE;
    let mut feed = loop {
        match store.change_feed().await {
            Ok(Some(feed)) => break feed,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the store's changes yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
    };
    let mut last_warned: Option<std::time::Instant> = None;
    loop {
        match feed.next().await {
            Ok(FeedEvent::Changed {
                change,
                announced_us,
            }) => {
                cache.apply(change);
                stats.received.fetch_add(1, Ordering::Relaxed);
                if let Some(at) = announced_us {
                    let now = chrono::Utc::now().timestamp_micros();
                    stats
                        .last_lag_us
                        .store((now - at).max(0), Ordering::Relaxed);
                }
            }
            Ok(FeedEvent::Resumed) => {
                cache.expire_all();
                pause = FIRST_PAUSE;
                let first = stats.resumed.fetch_add(1, Ordering::Relaxed) == 0;
                stats.listening.store(true, Ordering::Release);
                let quiet = last_warned.is_some_and(|t| t.elapsed() < WARN_EVERY);
                if !first && !quiet {
                    last_warned = Some(std::time::Instant::now());
                    tracing::warn!(
                        "following the store's changes again: every cached token is reloaded \
                         on its next use (changes made meanwhile may have been missed)"
                    );
                }
            }
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                if stats.listening.swap(false, Ordering::AcqRel) {
                    tracing::warn!(
                        error = %e,
                        "lost the store's change feed: other nodes' changes reach this node \
                         only through the cache TTL until it is back"
                    );
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
    }
}
