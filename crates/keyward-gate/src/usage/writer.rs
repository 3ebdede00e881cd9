//! The batch writer: drains the usage channel into batches, counts each batch's records per
//! (token, minute, decision code, address, endpoint) and stores those counts in one
//! transaction, so a busy token costs storage one row per minute and endpoint, not one per
//! request ([`UsageBatch::aggregate`]; tokens keeping a per-request log keep their rows).
//!
//! A batch is written when it holds `batch_size` records, or `flush_interval_ms` after its
//! first record arrived. A batch that storage cannot be reached for is retried with a growing
//! pause (records keep queueing meanwhile, and the `when_full` policy applies), for up to a
//! minute (not once the writer is stopping); after the last attempt its records count as
//! dropped. A batch that storage refuses for another reason may hold one record it cannot
//! store: its records are then written one by one, so only the records refused on their own
//! are dropped (and counted), never the rest of the batch. On stop the channel is closed
//! (senders fail from then on), whatever it holds is written, and the task ends.

use std::sync::Arc;
use std::time::Duration;

use keyward_store::{StoreError, UsageBatch, UsageRecord};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Usage, UsageCounters};

/// Attempts to store one batch.
const ATTEMPTS: u32 = 4;
/// The pause after the first failed attempt; doubled after each further one.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between attempts.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// How long a batch waits for a store that cannot be reached before its records count as
/// dropped; records keep queueing meanwhile.
const OUTAGE_PATIENCE: Duration = Duration::from_secs(60);

/// What woke the writer.
enum Event {
    /// This many records arrived (0: the channel is closed and empty).
    Received(usize),
    /// The batch's flush interval is over.
    Due,
    /// Shutdown.
    Stop,
}

/// Runs until `stop` turns true (or its sender is gone) and the channel is drained.
pub async fn run(
    usage: Arc<Usage>,
    mut rx: mpsc::Receiver<UsageRecord>,
    mut stop: watch::Receiver<bool>,
) {
    let size = usage.config.batch_size.max(1);
    let interval = Duration::from_millis(usage.config.flush_interval_ms);
    let mut batch: Vec<UsageRecord> = Vec::with_capacity(size);
    let mut deadline = Instant::now();
    let mut stopping = false;
    loop {
        let was_empty = batch.is_empty();
        let room = size - batch.len();
        let event = tokio::select! {
            n = rx.recv_many(&mut batch, room) => Event::Received(n),
            () = tokio::time::sleep_until(deadline), if !was_empty => Event::Due,
            // Also reached when the sender is gone: stop either way.
            _ = stop.wait_for(|s| *s), if !stopping => Event::Stop,
        };
        match event {
            // Closed and empty: everything sent before the close is in `batch`.
            Event::Received(0) => break,
            Event::Received(_) => {
                if was_empty {
                    deadline = Instant::now() + interval;
                }
                if batch.len() >= size {
                    write(&usage, &mut batch, &stop).await;
                }
            }
            Event::Due => write(&usage, &mut batch, &stop).await,
            Event::Stop => {
                stopping = true;
                rx.close();
            }
        }
    }
    write(&usage, &mut batch, &stop).await;
    tracing::debug!("usage writer stopped");
}

/// Stores `batch` (retrying), counts the outcome and empties it. Once `stop` is set, a store
/// that cannot be reached is not waited for (the process is stopping).
async fn write(usage: &Usage, batch: &mut Vec<UsageRecord>, stop: &watch::Receiver<bool>) {
    if batch.is_empty() {
        return;
    }
    let counters = &usage.counters;
    let mut pause = FIRST_PAUSE;
    let mut attempt = 0;
    let outage_ends = Instant::now() + OUTAGE_PATIENCE;
    let counted = UsageBatch::aggregate(batch);
    loop {
        attempt += 1;
        match usage.store.write_usage(&counted).await {
            Ok(()) => {
                UsageCounters::add(&counters.written, batch.len());
                batch.clear();
                return;
            }
            Err(e) => {
                UsageCounters::add(&counters.write_errors, 1);
                // During an outage one line per ten attempts, not one a second.
                if attempt == 1 || attempt % 10 == 0 {
                    tracing::warn!(error = %e, attempt, records = batch.len(), "storing usage records failed");
                }
                if batch.len() > 1 && !matches!(e, StoreError::Unavailable(_)) {
                    one_by_one(usage, batch).await;
                    return;
                }
                // While the store cannot be reached (PostgreSQL down, its circuit open), keep
                // the batch and wait for it, up to OUTAGE_PATIENCE; otherwise ATTEMPTS tries.
                let stopping = *stop.borrow();
                let waiting = matches!(e, StoreError::Unavailable(_))
                    && Instant::now() < outage_ends
                    && !stopping;
                if attempt >= ATTEMPTS && !waiting {
                    break;
                }
                let mut stop = stop.clone();
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|s| *s), if !stopping => {}
                }
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
    }
    tracing::error!(
        records = batch.len(),
        "usage records dropped: storage refused them {attempt} times"
    );
    UsageCounters::add(&counters.dropped, batch.len());
    batch.clear();
}

/// Stores the records of a refused batch one at a time (each retried once after a pause), so
/// one record storage cannot take costs only itself. Empties `batch`.
async fn one_by_one(usage: &Usage, batch: &mut Vec<UsageRecord>) {
    let counters = &usage.counters;
    let mut refused = 0usize;
    for record in batch.drain(..) {
        let one = UsageBatch::aggregate(std::slice::from_ref(&record));
        let mut stored = usage.store.write_usage(&one).await.is_ok();
        if !stored {
            UsageCounters::add(&counters.write_errors, 1);
            tokio::time::sleep(FIRST_PAUSE).await;
            stored = usage.store.write_usage(&one).await.is_ok();
        }
        if stored {
            UsageCounters::add(&counters.written, 1);
        } else {
            UsageCounters::add(&counters.write_errors, 1);
            refused += 1;
        }
    }
    if refused > 0 {
        tracing::error!(
            records = refused,
            "usage records dropped: storage refused them on their own"
        );
        UsageCounters::add(&counters.dropped, refused);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use keyward_core::{Code, TokenId, WorkspaceId};
    use keyward_store::{LastUse, UsageAggregate, UsageMaintenance, UsageQuery, UsageStore};
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;

    /// Refuses any batch counting a request whose path is `/poison`, like a database refusing
    /// one value; stores everything else.
    #[derive(Default)]
    struct Picky(Mutex<Vec<keyward_store::MinuteUsage>>);

    #[async_trait::async_trait]
    impl UsageStore for Picky {
        async fn write_usage(&self, batch: &UsageBatch) -> keyward_store::Result<()> {
            if batch
                .minutes
                .iter()
                .any(|m| m.path.as_deref() == Some("/poison"))
            {
                return Err(StoreError::Internal("invalid byte sequence".into()));
            }
            self.0.lock().unwrap().extend_from_slice(&batch.minutes);
            Ok(())
        }
        async fn last_use(
            &self,
            _: WorkspaceId,
            _: TokenId,
        ) -> keyward_store::Result<Option<LastUse>> {
            Ok(None)
        }
        async fn usage(&self, _: &UsageQuery) -> keyward_store::Result<UsageAggregate> {
            Ok(UsageAggregate::default())
        }
        async fn recent_usage(
            &self,
            _: WorkspaceId,
            _: TokenId,
            _: u32,
        ) -> keyward_store::Result<Vec<UsageRecord>> {
            Ok(vec![])
        }
        async fn maintain_usage(
            &self,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> keyward_store::Result<UsageMaintenance> {
            Ok(UsageMaintenance::default())
        }
    }

    fn record(path: &str) -> UsageRecord {
        UsageRecord {
            at: DateTime::<Utc>::UNIX_EPOCH,
            token_id: TokenId::random(&mut rand_core::OsRng),
            workspace_id: WorkspaceId::random(&mut rand_core::OsRng),
            ip: None,
            method: None,
            path: Some(path.into()),
            code: Code::Valid,
            latency_us: 1,
            request_log: false,
        }
    }

    #[tokio::test]
    async fn one_bad_record_costs_only_itself() {
        let store = Arc::new(Picky::default());
        let clock: Arc<dyn keyward_core::Clock> = Arc::new(crate::clock::SystemClock);
        let (usage, _rx) = Usage::new(&crate::usage::UsageConfig::default(), store.clone(), clock);
        let mut batch = vec![
            record("/a"),
            record("/poison"),
            record("/b"),
            record("/c"),
            record("/c"),
        ];
        let (_stop_tx, stop) = watch::channel(false);
        write(&usage, &mut batch, &stop).await;
        assert!(batch.is_empty());
        let stored: Vec<_> = store
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect();
        // Each record counted on its own, the two to /c included.
        assert_eq!(
            stored,
            vec![
                Some("/a".into()),
                Some("/b".into()),
                Some("/c".into()),
                Some("/c".into())
            ]
        );
        assert_eq!(usage.counters.written.load(Ordering::Relaxed), 4);
        assert_eq!(usage.counters.dropped.load(Ordering::Relaxed), 1);
    }
}
