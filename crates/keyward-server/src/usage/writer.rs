//! The batch writer: drains the usage channel into batches, each stored in one transaction.
//!
//! A batch is written when it holds `batch_size` records, or `flush_interval_ms` after its
//! first record arrived. A failed write is retried with a growing pause (records keep queueing
//! meanwhile, and the `when_full` policy applies); after the last attempt its records count as
//! dropped. On stop the channel is closed (senders fail from then on), whatever it holds is
//! written, and the task ends.

use std::sync::Arc;
use std::time::Duration;

use keyward_store::UsageRecord;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Usage, UsageCounters};

/// Attempts to store one batch.
const ATTEMPTS: u32 = 4;
/// The pause after the first failed attempt; doubled after each further one.
const FIRST_PAUSE: Duration = Duration::from_millis(100);

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
                    write(&usage, &mut batch).await;
                }
            }
            Event::Due => write(&usage, &mut batch).await,
            Event::Stop => {
                stopping = true;
                rx.close();
            }
        }
    }
    write(&usage, &mut batch).await;
    tracing::debug!("usage writer stopped");
}

/// Stores `batch` (retrying), counts the outcome and empties it.
async fn write(usage: &Usage, batch: &mut Vec<UsageRecord>) {
    if batch.is_empty() {
        return;
    }
    let counters = &usage.counters;
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=ATTEMPTS {
        match usage.store.insert_usage(batch).await {
            Ok(()) => {
                UsageCounters::add(&counters.written, batch.len());
                batch.clear();
                return;
            }
            Err(e) => {
                UsageCounters::add(&counters.write_errors, 1);
                tracing::warn!(error = %e, attempt, records = batch.len(), "storing usage records failed");
                if attempt < ATTEMPTS {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }
    tracing::error!(
        records = batch.len(),
        "usage records dropped: storage refused them {ATTEMPTS} times"
    );
    UsageCounters::add(&counters.dropped, batch.len());
    batch.clear();
}
