//! Usage records off the hot path.
//!
//! The verify handler builds one [`UsageRecord`] per verified request (a few field copies) and
//! hands it to [`Usage::record`]: a `try_send` on a bounded channel, or with
//! `when_full = "wait"` a `send().await` that applies back-pressure instead of dropping. A
//! batch writer task ([`writer`]) drains the channel, takes batches of up to `batch_size`
//! records, or whatever arrived within `flush_interval_ms` of a batch's first record, counts
//! each batch per (token, minute, code, address, endpoint) and stores the counts in one
//! transaction. On shutdown the channel is closed, drained and the last batch written
//! before the owner of the tasks (the server's `Application::run_until`, the embedded layer's
//! `Gate::shutdown`) returns.
//!
//! A maintenance task ([`maintenance`]) folds raw records older than `raw_retention_days` into
//! hourly roll-ups and prunes roll-ups older than `rollup_retention_days`, judging age by the
//! injected clock.
//!
//! # Layout
//! - this module: the `[usage]` configuration, the [`Usage`] handle shared by handlers, the
//!   counters behind `/metrics`, and starting and stopping the two tasks.
//! - [`writer`]: the batch writer.
//! - [`maintenance`]: roll-up and pruning.

pub mod maintenance;
pub mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use keyward_core::Clock;
use keyward_store::{StoreError, UsageMaintenance, UsageRecord, UsageStore};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// What the verify path does when the usage channel is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenFull {
    /// Drop the record and count it (`keyward_usage_records_dropped_total`): verification is
    /// never slowed by storage.
    Drop,
    /// Wait for room: no record is lost, and verification slows down while storage lags.
    Wait,
}

/// The `[usage]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// Whether verifications are recorded at all. `false` is a measuring aid (what usage
    /// records cost), not a setting to run with: the usage API, `last_used_*` and the usage
    /// figures then stay empty.
    pub enabled: bool,
    /// Days raw records are kept before they are folded into hourly roll-ups.
    pub raw_retention_days: u32,
    /// Days hourly roll-ups are kept.
    pub rollup_retention_days: u32,
    /// Records the channel between the verify path and the batch writer holds.
    pub channel_capacity: usize,
    /// Records written in one batch at most.
    pub batch_size: usize,
    /// Milliseconds a record may wait for its batch to fill before the batch is written.
    pub flush_interval_ms: u64,
    /// `drop` or `wait`, when the channel is full.
    pub when_full: WhenFull,
    /// Seconds between two maintenance passes (the first runs at start).
    pub maintenance_interval_secs: u64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            raw_retention_days: 30,
            rollup_retention_days: 400,
            channel_capacity: 65_536,
            batch_size: 1_000,
            flush_interval_ms: 200,
            when_full: WhenFull::Drop,
            maintenance_interval_secs: 600,
        }
    }
}

impl UsageConfig {
    /// Refuses values the pipeline cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("usage.channel_capacity", self.channel_capacity as u64),
            ("usage.batch_size", self.batch_size as u64),
            ("usage.flush_interval_ms", self.flush_interval_ms),
            (
                "usage.maintenance_interval_secs",
                self.maintenance_interval_secs,
            ),
            (
                "usage.raw_retention_days",
                u64::from(self.raw_retention_days),
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{key} must be at least 1"));
        }
        let days = [
            ("usage.raw_retention_days", self.raw_retention_days),
            ("usage.rollup_retention_days", self.rollup_retention_days),
        ];
        match days.iter().find(|(_, d)| *d > MAX_RETENTION_DAYS) {
            Some((key, _)) => Err(format!("{key} must be at most {MAX_RETENTION_DAYS}")),
            None => Ok(()),
        }
    }
}

/// Longest retention that can be configured, in days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Counters of the pipeline, shown at `/metrics`.
#[derive(Debug, Default)]
pub struct UsageCounters {
    /// Records stored.
    pub written: AtomicU64,
    /// Records lost: channel full (`drop`), sent after shutdown, or a batch storage refused
    /// after every retry.
    pub dropped: AtomicU64,
    /// Failed attempts to store a batch (each retried, then its records count as dropped).
    pub write_errors: AtomicU64,
}

impl UsageCounters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The usage pipeline as handlers see it: cheap to share.
pub struct Usage {
    tx: mpsc::Sender<UsageRecord>,
    when_full: WhenFull,
    counters: UsageCounters,
    store: Arc<dyn UsageStore>,
    clock: Arc<dyn Clock>,
    config: UsageConfig,
}

impl Usage {
    /// The handle and the receiving end for [`UsageTasks::start`]. `config` must be valid.
    pub fn new(
        config: &UsageConfig,
        store: Arc<dyn UsageStore>,
        clock: Arc<dyn Clock>,
    ) -> (Arc<Usage>, mpsc::Receiver<UsageRecord>) {
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let usage = Arc::new(Usage {
            tx,
            when_full: config.when_full,
            counters: UsageCounters::default(),
            store,
            clock,
            config: config.clone(),
        });
        (usage, rx)
    }

    /// Hands a record to the batch writer: never touches storage. With `drop`, a full channel
    /// loses the record (counted); with `wait`, this waits for room.
    pub async fn record(&self, record: UsageRecord) {
        let sent = match self.when_full {
            WhenFull::Drop => self.tx.try_send(record).is_ok(),
            WhenFull::Wait => self.tx.send(record).await.is_ok(),
        };
        if !sent {
            UsageCounters::add(&self.counters.dropped, 1);
        }
    }

    /// Whether verifications are recorded (`usage.enabled`); callers skip building a record
    /// when not.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Records waiting in the channel.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity().saturating_sub(self.tx.capacity())
    }

    /// The pipeline's counters.
    pub fn counters(&self) -> &UsageCounters {
        &self.counters
    }

    /// The configuration the pipeline runs with.
    pub fn config(&self) -> &UsageConfig {
        &self.config
    }

    /// Runs one maintenance pass now, as of the injected clock (the periodic task calls this
    /// too).
    pub async fn maintain_now(&self) -> Result<UsageMaintenance, StoreError> {
        maintenance::run_once(self.store.as_ref(), self.clock.now(), &self.config).await
    }
}

/// The running writer and maintenance tasks.
pub struct UsageTasks {
    stop: watch::Sender<bool>,
    writer: JoinHandle<()>,
    maintenance: JoinHandle<()>,
}

impl UsageTasks {
    /// Spawns the batch writer over `rx` and the periodic maintenance.
    pub fn start(usage: Arc<Usage>, rx: mpsc::Receiver<UsageRecord>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let writer = tokio::spawn(writer::run(usage.clone(), rx, stopped.clone()));
        let maintenance = tokio::spawn(maintenance::run(usage, stopped));
        Self {
            stop,
            writer,
            maintenance,
        }
    }

    /// Stops both tasks: the writer closes the channel, writes everything in it and returns;
    /// a maintenance pass under way finishes first.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.writer.await {
            tracing::error!(error = %e, "the usage writer did not finish cleanly");
        }
        if let Err(e) = self.maintenance.await {
            tracing::error!(error = %e, "the usage maintenance did not finish cleanly");
        }
    }
}

/// Longest method kept, in bytes.
pub const MAX_METHOD: usize = 16;
/// Longest path kept, in bytes.
pub const MAX_PATH: usize = 512;

/// The usage record of one verified request: a few field copies. `endpoint` is the method
/// and path the caller named, sanitised before it reaches storage: the path loses any query
/// string or fragment (they may carry secrets) and its control characters (NUL, which
/// PostgreSQL cannot store, among them), the method keeps only the characters of an HTTP
/// token (RFC 9110 `tchar`), and both are cut to a bounded length ([`MAX_METHOD`],
/// [`MAX_PATH`] bytes). A value left empty is not recorded.
pub fn record(
    at: chrono::DateTime<chrono::Utc>,
    token: &keyward_core::CompiledToken,
    ip: Option<std::net::IpAddr>,
    endpoint: (Option<&str>, Option<&str>),
    code: keyward_core::Code,
    latency: std::time::Duration,
) -> UsageRecord {
    let (method, path) = endpoint;
    UsageRecord {
        at,
        token_id: token.token_id,
        workspace_id: token.workspace_id,
        ip,
        method: method.and_then(clean_method),
        path: path.and_then(clean_path),
        code,
        latency_us: u32::try_from(latency.as_micros()).unwrap_or(u32::MAX),
        request_log: token.request_log,
    }
}

/// The method as stored: its token characters, upper-cased, at most [`MAX_METHOD`] bytes.
fn clean_method(raw: &str) -> Option<Box<str>> {
    let is_tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    let mut out: String = raw
        .bytes()
        .filter(is_tchar)
        .take(MAX_METHOD)
        .map(|b| char::from(b.to_ascii_uppercase()))
        .collect();
    out.shrink_to_fit();
    (!out.is_empty()).then(|| out.into_boxed_str())
}

/// The path as stored: before any `?` or `#`, without control characters, trimmed, at most
/// [`MAX_PATH`] bytes. Borrowed as is when already clean (the usual case).
fn clean_path(raw: &str) -> Option<Box<str>> {
    let before = raw.split(['?', '#']).next().unwrap_or_default();
    let path: std::borrow::Cow<'_, str> = if before.chars().any(char::is_control) {
        before
            .chars()
            .filter(|c| !c.is_control())
            .collect::<String>()
            .into()
    } else {
        before.into()
    };
    let path = cut(path.trim(), MAX_PATH);
    (!path.is_empty()).then(|| path.into())
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_keeps_whole_characters() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abcdef", 3), "abc");
        assert_eq!(cut("aé", 2), "a");
    }

    #[test]
    fn methods_and_paths_are_sanitised() {
        assert_eq!(clean_method(" get ").as_deref(), Some("GET"));
        assert_eq!(clean_method("G\0E\u{1b}T\n").as_deref(), Some("GET"));
        assert_eq!(clean_method("\0\0").as_deref(), None);
        assert_eq!(
            clean_method(&"X".repeat(100)).map(|m| m.len()),
            Some(MAX_METHOD)
        );
        assert_eq!(clean_path("/a\0b\u{85}c?x=\0").as_deref(), Some("/abc"));
        assert_eq!(clean_path("/orders/1#frag").as_deref(), Some("/orders/1"));
        assert_eq!(clean_path("\0").as_deref(), None);
        let long = format!("/{}", "é".repeat(MAX_PATH));
        let cut_path = clean_path(&long).unwrap();
        assert!(cut_path.len() <= MAX_PATH && cut_path.starts_with("/é"));
    }

    #[test]
    fn config_refuses_zero_sizes() {
        assert!(UsageConfig::default().validate().is_ok());
        let zero = UsageConfig {
            channel_capacity: 0,
            ..UsageConfig::default()
        };
        assert!(zero.validate().unwrap_err().contains("channel_capacity"));
    }
}
