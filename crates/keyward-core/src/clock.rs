//! The clock is injected: core functions take `now` as a parameter, and the server holds an
//! `Arc<dyn Clock>` so tests can move time by hand.

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}
