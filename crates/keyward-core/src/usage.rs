//! Usage of a token: the JSON shape of `GET /v1/tokens/{id}/usage` and the pure helpers that
//! both the server and the store agree on (bucket boundaries, the "METHOD path" endpoint).
//!
//! Buckets are UTC hours or UTC days, aligned to the Unix epoch; a bucket's `start` is the
//! first instant inside it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::TokenId;

/// The width of one bucket of a usage report.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One UTC hour.
    #[default]
    Hour,
    /// One UTC day.
    Day,
}

impl Granularity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hour" => Some(Granularity::Hour),
            "day" => Some(Granularity::Day),
            _ => None,
        }
    }

    /// The bucket width in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Granularity::Hour => 3_600_000,
            Granularity::Day => 86_400_000,
        }
    }

    /// The start of the bucket holding the instant `ms` (Unix milliseconds).
    pub fn floor_ms(self, ms: i64) -> i64 {
        ms.div_euclid(self.millis()) * self.millis()
    }

    /// The start of the bucket holding `t`.
    pub fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.floor_ms(t.timestamp_millis())).unwrap_or(t)
    }
}

/// The endpoint of a request as usage shows it: `"METHOD path"`, the path alone when the
/// method is unknown, or nothing when the path is unknown.
pub fn endpoint(method: Option<&str>, path: Option<&str>) -> Option<String> {
    match (method, path) {
        (Some(m), Some(p)) => Some(format!("{m} {p}")),
        (None, Some(p)) => Some(p.to_owned()),
        (_, None) => None,
    }
}

/// One bucket of a usage report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageBucket {
    /// The first instant of the bucket.
    pub start: DateTime<Utc>,
    /// Verified requests in it.
    pub count: u64,
}

/// A client address and how many requests came from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IpCount {
    /// The address.
    pub ip: String,
    /// Requests from it.
    pub count: u64,
}

/// An endpoint (`"METHOD path"`) and how many requests went to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EndpointCount {
    /// The endpoint.
    pub endpoint: String,
    /// Requests to it.
    pub count: u64,
}

/// The last verified request of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastUsed {
    /// When.
    pub at: DateTime<Utc>,
    /// From which client address, when known.
    #[schema(value_type = Option<String>)]
    pub ip: Option<IpAddr>,
    /// To which endpoint, when the caller named it.
    pub endpoint: Option<String>,
}

/// `GET /v1/tokens/{id}/usage`: a token's verified requests in `[from, to)`.
///
/// `total`, `buckets` and `codes` include hourly roll-ups, so they stay right after raw records
/// are pruned; `distinct_ips`, `ips` and `endpoints` cover only raw records still kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// The token.
    pub token_id: TokenId,
    /// Start of the range (inclusive).
    pub from: DateTime<Utc>,
    /// End of the range (exclusive).
    pub to: DateTime<Utc>,
    /// Bucket width.
    pub granularity: Granularity,
    /// Verified requests in the range.
    pub total: u64,
    /// Every bucket from the one holding `from` up to `to`, empty ones included.
    pub buckets: Vec<UsageBucket>,
    /// Requests per decision code (`VALID`, `RATE_LIMITED`, …).
    pub codes: BTreeMap<String, u64>,
    /// Distinct client addresses (raw records only).
    pub distinct_ips: u64,
    /// The busiest client addresses, at most 20.
    pub ips: Vec<IpCount>,
    /// The busiest endpoints, at most 20.
    pub endpoints: Vec<EndpointCount>,
    /// The token's last verified request, at any time.
    pub last_used: Option<LastUsed>,
}

/// One verified request of a token that keeps a per-request log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestRecord {
    /// When it was decided (to the millisecond).
    pub at: DateTime<Utc>,
    /// The client's address, when known.
    #[schema(value_type = Option<String>)]
    pub ip: Option<IpAddr>,
    /// The method the caller named.
    pub method: Option<String>,
    /// The path the caller named (without query string).
    pub path: Option<String>,
    /// The decision code.
    pub code: crate::Code,
    /// Microseconds spent deciding.
    pub latency_us: u32,
}

/// `GET /v1/tokens/{id}/usage/requests`: a token's latest verified requests kept one by one,
/// newest first. Only requests made while the token's `request_log` was on are kept so (the
/// others are counted per minute), and only for the raw retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestLog {
    /// The token.
    pub token_id: TokenId,
    /// Whether the token keeps the log now.
    pub request_log: bool,
    /// The requests, newest first.
    pub requests: Vec<RequestRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_utc_hours_and_days() {
        let t = DateTime::parse_from_rfc3339("2026-06-01T12:34:56.789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            Granularity::Hour.floor(t).to_rfc3339(),
            "2026-06-01T12:00:00+00:00"
        );
        assert_eq!(
            Granularity::Day.floor(t).to_rfc3339(),
            "2026-06-01T00:00:00+00:00"
        );
        // Before the epoch, too: floor, not truncation toward zero.
        assert_eq!(Granularity::Hour.floor_ms(-1), -3_600_000);
        assert_eq!(Granularity::parse("day"), Some(Granularity::Day));
        assert_eq!(Granularity::parse("week"), None);
    }

    #[test]
    fn endpoints_name_method_and_path() {
        assert_eq!(
            endpoint(Some("GET"), Some("/orders")).as_deref(),
            Some("GET /orders")
        );
        assert_eq!(endpoint(None, Some("/orders")).as_deref(), Some("/orders"));
        assert_eq!(endpoint(Some("GET"), None), None);
    }
}
