//! The circuit breaker in front of PostgreSQL: once the database is known to be unreachable,
//! every operation fails at once with [`StoreError::Unavailable`] instead of each waiting for
//! the pool's acquire timeout; a probe closes it again when the database answers.
//!
//! Who decides: a monitor with a connection of its own (not the pool's, so a busy pool is
//! never taken for a dead database) pings every [`PROBE_EVERY`], each ping bounded by
//! [`PROBE_TIMEOUT`]. Two failed pings in a row open the circuit (one slow answer, during a
//! checkpoint say, does not), a good one closes it. Anything that sees a sign of trouble first
//! (the change feed's connection dropping) asks for a ping at once with [`Breaker::suspect`],
//! and a failure of that ping opens the circuit at once, so a refused or reset connection
//! opens it within milliseconds; a silently dropped network within about two probes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::StoreError;

/// How often the monitor pings.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How long a ping (with its connection, when one must be made) may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The circuit's state, shared by the store and its monitor.
#[derive(Debug, Default)]
pub struct Breaker {
    open: AtomicBool,
    trips: AtomicU64,
    probe_now: Notify,
    tripped: Notify,
    closed: Notify,
}

impl Breaker {
    /// Whether the database is known to be unreachable.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// How many times the circuit opened since start.
    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    /// `Err(Unavailable)` at once while the circuit is open.
    pub fn check(&self) -> crate::Result<()> {
        if self.is_open() {
            return Err(StoreError::Unavailable(
                "PostgreSQL is unreachable (circuit open until it answers a probe)".into(),
            ));
        }
        Ok(())
    }

    /// Opens the circuit (the database did not answer).
    pub fn trip(&self, why: &str) {
        if !self.open.swap(true, Ordering::AcqRel) {
            self.trips.fetch_add(1, Ordering::Relaxed);
            self.tripped.notify_waiters();
            tracing::error!(
                %why,
                "PostgreSQL is unreachable: answering from the cache where possible, 503 otherwise"
            );
        }
    }

    /// Closes the circuit (the database answered).
    pub fn close(&self) {
        if self.open.swap(false, Ordering::AcqRel) {
            self.closed.notify_waiters();
            tracing::warn!("PostgreSQL answers again: circuit closed");
        }
    }

    /// Asks the monitor to ping now rather than at its next round.
    pub fn suspect(&self) {
        self.probe_now.notify_one();
    }

    /// Returns once the circuit is open (at once if it is now).
    pub async fn opened(&self) {
        let notified = self.tripped.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_open() {
            return;
        }
        notified.await;
    }

    /// Returns once the circuit is closed (at once if it is now).
    pub async fn closed(&self) {
        let notified = self.closed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.is_open() {
            return;
        }
        notified.await;
    }

    /// Waits until the next probe is due (`false`) or asked for (`true`).
    pub async fn next_probe(&self) -> bool {
        tokio::select! {
            () = tokio::time::sleep(PROBE_EVERY) => false,
            () = self.probe_now.notified() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_circuit_refuses_at_once_and_counts_its_trips() {
        let b = Breaker::default();
        assert!(b.check().is_ok());
        b.trip("test");
        b.trip("again");
        assert!(matches!(b.check(), Err(StoreError::Unavailable(_))));
        assert_eq!(b.trips(), 1);
        b.close();
        assert!(b.check().is_ok());
        b.trip("third");
        assert_eq!(b.trips(), 2);
    }
}
