//! Usage records: one per verified request, written in batches by the server's batch writer,
//! rolled up per hour and pruned by its maintenance. Part of [`crate::Store`].
//!
//! Three tables: raw records (`usage_records`), hourly roll-ups per token and decision code
//! (`usage_hourly`), and each token's last use (`token_last_use`). Counts read back are the sum
//! of roll-ups and raw records, so they survive the pruning of raw records; distinct addresses
//! and endpoints exist only while raw records are kept.

use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyward_core::usage::Granularity;
use keyward_core::{Code, TokenId, WorkspaceId};

use crate::Result;

/// One verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// When it was decided (stored to the millisecond).
    pub at: DateTime<Utc>,
    /// The token presented.
    pub token_id: TokenId,
    /// The token's workspace.
    pub workspace_id: WorkspaceId,
    /// The client's address, when known.
    pub ip: Option<IpAddr>,
    /// The request's HTTP method, as the caller named it.
    pub method: Option<Box<str>>,
    /// The request's path, as the caller named it (the server keeps no query string).
    pub path: Option<Box<str>>,
    /// The decision.
    pub code: Code,
    /// Microseconds the server spent deciding.
    pub latency_us: u32,
}

/// A token's last verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUse {
    /// When (milliseconds).
    pub at: DateTime<Utc>,
    /// From which address, when known.
    pub ip: Option<IpAddr>,
    /// `"METHOD path"`, when the caller named the path.
    pub endpoint: Option<String>,
}

/// What to aggregate: one token's records in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// The token's workspace.
    pub workspace_id: WorkspaceId,
    /// The token.
    pub token_id: TokenId,
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
    /// Bucket width.
    pub granularity: Granularity,
    /// How many addresses and endpoints to name at most.
    pub top: u32,
}

/// Aggregates of a token's records.
///
/// A rolled-up hour counts in full when its first instant lies in the range: roll-ups have
/// hour resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageAggregate {
    /// Requests per (bucket start, decision code), sorted by both; non-empty cells only.
    pub cells: Vec<(DateTime<Utc>, String, u64)>,
    /// Distinct addresses among raw records.
    pub distinct_ips: u64,
    /// The busiest addresses among raw records, most first (ties by address).
    pub ips: Vec<(String, u64)>,
    /// The busiest endpoints among raw records, most first (ties by endpoint).
    pub endpoints: Vec<(String, u64)>,
}

/// What a maintenance pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageMaintenance {
    /// Raw records folded into hourly roll-ups and deleted.
    pub rolled_up: u64,
    /// Roll-up rows deleted (too old, or of deleted tokens).
    pub pruned_rollups: u64,
}

/// Usage storage.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Stores a batch in one transaction: the raw records (in multi-row inserts) and each
    /// token's last use (the latest record wins; on equal times, the later one in the batch,
    /// and a later batch over an earlier one). Records of tokens that no longer exist are
    /// skipped.
    async fn insert_usage(&self, records: &[UsageRecord]) -> Result<()>;

    /// A token's last use, if it was ever used.
    async fn last_use(&self, ws: WorkspaceId, token: TokenId) -> Result<Option<LastUse>>;

    /// Aggregates a token's usage, roll-ups included.
    async fn usage(&self, q: &UsageQuery) -> Result<UsageAggregate>;

    /// A token's most recent raw records, newest first.
    async fn recent_usage(
        &self,
        ws: WorkspaceId,
        token: TokenId,
        limit: u32,
    ) -> Result<Vec<UsageRecord>>;

    /// Folds raw records older than `raw_before` into hourly roll-ups and deletes them (one
    /// transaction, so no record is counted twice or lost); deletes roll-ups of hours before
    /// `rollups_before` and those of deleted tokens.
    async fn maintain_usage(
        &self,
        raw_before: DateTime<Utc>,
        rollups_before: DateTime<Utc>,
    ) -> Result<UsageMaintenance>;
}
