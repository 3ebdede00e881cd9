//! Usage of tokens: the batch writer's records, counted per minute before they are stored,
//! rolled up per hour and pruned by its maintenance. Part of [`crate::Store`].
//!
//! Four tables: minute counts per (token, minute, decision code, address, endpoint)
//! (`usage_minutes`, the usual form), raw records of tokens that keep a per-request log
//! (`usage_records`), hourly roll-ups per token and decision code (`usage_hourly`), and each
//! token's last use (`token_last_use`). Counts read back are the sum of all three kinds, so they
//! survive the folding of old minutes and records into hours; distinct addresses and endpoints
//! exist only while minutes and raw records are kept.

use std::collections::HashMap;
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
    /// Whether the token keeps a per-request log: the record is then stored as a row of its
    /// own instead of being counted in its minute.
    pub request_log: bool,
}

/// One minute, in milliseconds: the resolution of stored usage counts.
pub const MINUTE_MS: i64 = 60_000;

/// The requests of one token in one minute with one decision code, from one address (or none
/// known), to one endpoint (or none named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteUsage {
    /// The token's workspace.
    pub workspace_id: WorkspaceId,
    /// The token.
    pub token_id: TokenId,
    /// The minute's first instant, in Unix milliseconds.
    pub minute: i64,
    /// The decision.
    pub code: Code,
    /// The client's address, when known.
    pub ip: Option<IpAddr>,
    /// The method the caller named.
    pub method: Option<Box<str>>,
    /// The path the caller named.
    pub path: Option<Box<str>>,
    /// How many requests.
    pub requests: u64,
    /// Their decision latencies added up, in microseconds.
    pub latency_sum_us: u64,
    /// The longest of them, in microseconds.
    pub latency_max_us: u32,
}

/// What one write of the usage writer stores, in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageBatch {
    /// Minute counts (added to what is stored for the same minute, code, address and endpoint).
    pub minutes: Vec<MinuteUsage>,
    /// Records stored one row each: those of tokens keeping a per-request log.
    pub records: Vec<UsageRecord>,
    /// Each token's latest record of the batch (on equal times, the later one in the batch).
    pub last_uses: Vec<UsageRecord>,
}

/// The key of a minute count while a batch is counted.
type MinuteKey<'a> = (
    TokenId,
    i64,
    Code,
    Option<IpAddr>,
    Option<&'a str>,
    Option<&'a str>,
);

impl UsageBatch {
    /// Counts `records` per minute, keeping those of tokens with a per-request log as rows.
    pub fn aggregate(records: &[UsageRecord]) -> Self {
        let mut index: HashMap<MinuteKey<'_>, usize> = HashMap::new();
        let mut minutes: Vec<MinuteUsage> = Vec::new();
        let mut rows = Vec::new();
        for r in records {
            if r.request_log {
                rows.push(r.clone());
                continue;
            }
            let minute = r.at.timestamp_millis().div_euclid(MINUTE_MS) * MINUTE_MS;
            let key = (
                r.token_id,
                minute,
                r.code,
                r.ip,
                r.method.as_deref(),
                r.path.as_deref(),
            );
            let latency = u64::from(r.latency_us);
            match index.get(&key) {
                Some(&i) => {
                    let m = &mut minutes[i];
                    m.requests += 1;
                    m.latency_sum_us = m.latency_sum_us.saturating_add(latency);
                    m.latency_max_us = m.latency_max_us.max(r.latency_us);
                }
                None => {
                    index.insert(key, minutes.len());
                    minutes.push(MinuteUsage {
                        workspace_id: r.workspace_id,
                        token_id: r.token_id,
                        minute,
                        code: r.code,
                        ip: r.ip,
                        method: r.method.clone(),
                        path: r.path.clone(),
                        requests: 1,
                        latency_sum_us: latency,
                        latency_max_us: r.latency_us,
                    });
                }
            }
        }
        // One order for every writer, so two nodes adding to the same rows lock them in the
        // same order and cannot deadlock each other.
        minutes.sort_by(|a, b| {
            (
                a.token_id,
                a.minute,
                a.code.as_str(),
                a.ip,
                &a.method,
                &a.path,
            )
                .cmp(&(
                    b.token_id,
                    b.minute,
                    b.code.as_str(),
                    b.ip,
                    &b.method,
                    &b.path,
                ))
        });
        Self {
            minutes,
            records: rows,
            last_uses: latest(records),
        }
    }

    /// Every record stored as a row of its own (what [`UsageStore::insert_usage`] writes).
    pub fn rows(records: &[UsageRecord]) -> Self {
        Self {
            minutes: Vec::new(),
            records: records.to_vec(),
            last_uses: latest(records),
        }
    }
}

/// Each token's latest record of `records`: the later one in the slice wins a tie. Sorted by
/// token, for the same reason as the minutes.
fn latest(records: &[UsageRecord]) -> Vec<UsageRecord> {
    let mut by_token: HashMap<TokenId, &UsageRecord> = HashMap::new();
    for r in records {
        by_token
            .entry(r.token_id)
            .and_modify(|seen| {
                if r.at.timestamp_millis() >= seen.at.timestamp_millis() {
                    *seen = r;
                }
            })
            .or_insert(r);
    }
    let mut out: Vec<UsageRecord> = by_token.into_values().cloned().collect();
    out.sort_by_key(|r| r.token_id);
    out
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

/// Aggregates of a token's usage.
///
/// A minute count or a rolled-up hour counts in full when its first instant lies in the range:
/// they have minute and hour resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageAggregate {
    /// Requests per (bucket start, decision code), sorted by both; non-empty cells only.
    pub cells: Vec<(DateTime<Utc>, String, u64)>,
    /// Distinct addresses among minute counts and raw records.
    pub distinct_ips: u64,
    /// The busiest addresses among minute counts and raw records, most first (ties by
    /// address).
    pub ips: Vec<(String, u64)>,
    /// The busiest endpoints among minute counts and raw records, most first (ties by
    /// endpoint).
    pub endpoints: Vec<(String, u64)>,
}

/// What a maintenance pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageMaintenance {
    /// Requests folded into hourly roll-ups (their raw records and minute counts deleted).
    pub rolled_up: u64,
    /// Roll-up rows deleted (too old, or of deleted tokens).
    pub pruned_rollups: u64,
}

/// Usage storage.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Stores a batch in one transaction: its minute counts (added to those stored), its raw
    /// records (in multi-row inserts) and each token's last use (the latest record wins; on
    /// equal times a later batch over an earlier one). What belongs to tokens that no longer
    /// exist is skipped.
    async fn write_usage(&self, batch: &UsageBatch) -> Result<()>;

    /// Stores every record as a raw row, with the tokens' last uses ([`UsageBatch::rows`]).
    async fn insert_usage(&self, records: &[UsageRecord]) -> Result<()> {
        self.write_usage(&UsageBatch::rows(records)).await
    }

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

    /// Folds raw records and minute counts older than `raw_before` into hourly roll-ups and
    /// deletes them (one transaction, so no request is counted twice or lost); deletes roll-ups of hours before
    /// `rollups_before` and those of deleted tokens.
    async fn maintain_usage(
        &self,
        raw_before: DateTime<Utc>,
        rollups_before: DateTime<Utc>,
    ) -> Result<UsageMaintenance>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(token: TokenId, at_ms: i64, path: &str, latency_us: u32) -> UsageRecord {
        UsageRecord {
            at: DateTime::from_timestamp_millis(at_ms).unwrap(),
            token_id: token,
            workspace_id: WorkspaceId::from_uuid(uuid::Uuid::nil()),
            ip: Some("10.0.0.1".parse().unwrap()),
            method: Some("GET".into()),
            path: Some(path.into()),
            code: Code::Valid,
            latency_us,
            request_log: false,
        }
    }

    #[test]
    fn a_batch_is_counted_per_minute_code_address_and_endpoint() {
        let (a, b) = (
            TokenId::from_uuid(uuid::Uuid::from_u128(1)),
            TokenId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        let mut logged = record(b, 5, "/x", 1);
        logged.request_log = true;
        let batch = UsageBatch::aggregate(&[
            record(a, 0, "/x", 10),
            record(a, MINUTE_MS - 1, "/x", 30),
            record(a, MINUTE_MS, "/x", 5),
            record(a, 7, "/y", 2),
            logged.clone(),
            record(b, 3, "/x", 4),
        ]);
        let counts: Vec<_> = batch
            .minutes
            .iter()
            .map(|m| {
                let path = m.path.as_deref().unwrap();
                (
                    m.token_id,
                    m.minute,
                    path,
                    m.requests,
                    m.latency_sum_us,
                    m.latency_max_us,
                )
            })
            .collect();
        assert_eq!(
            counts,
            vec![
                (a, 0, "/x", 2, 40, 30),
                (a, 0, "/y", 1, 2, 2),
                (a, MINUTE_MS, "/x", 1, 5, 5),
                (b, 0, "/x", 1, 4, 4),
            ],
            "in key order"
        );
        assert_eq!(
            batch.records,
            vec![logged.clone()],
            "a logged request stays a row"
        );
        let counted: u64 = batch.minutes.iter().map(|m| m.requests).sum();
        assert_eq!(counted + batch.records.len() as u64, 6, "every record once");
        // Each token's latest record, whatever its form.
        let last: Vec<_> = batch
            .last_uses
            .iter()
            .map(|r| (r.token_id, r.at.timestamp_millis()))
            .collect();
        assert_eq!(last, vec![(a, MINUTE_MS), (b, 5)]);
    }

    #[test]
    fn rows_keep_every_record() {
        let a = TokenId::from_uuid(uuid::Uuid::from_u128(1));
        let batch = UsageBatch::rows(&[record(a, 0, "/x", 1), record(a, 0, "/x", 1)]);
        assert!(batch.minutes.is_empty());
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.last_uses.len(), 1);
    }
}
