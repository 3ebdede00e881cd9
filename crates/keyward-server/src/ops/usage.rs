//! A token's verified requests over a time range, in hourly or daily buckets, with codes,
//! busiest addresses and endpoints and its last use. Seeing it takes what seeing the token
//! takes (`keyward.tokens:read`, same workspace, a user-scoped caller only its owner's
//! tokens). Also fills the last-use facts of [`crate::ops::tokens::get`], and answers the
//! per-request log of a token that keeps one ([`requests`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use keyward_core::api::TokenView;
use keyward_core::usage::{
    EndpointCount, Granularity, IpCount, LastUsed, RequestLog, RequestRecord, UsageBucket,
    UsageReport,
};
use keyward_core::{validate, DomainError, TokenId};
use keyward_store::UsageQuery;
use serde::Deserialize;

use super::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// The range when none is asked for: 7 days, ending with the bucket holding now.
const DEFAULT_DAYS: i64 = 7;
/// Addresses and endpoints named at most.
const TOP: u32 = 20;
/// Buckets in one answer at most (400 days of hours is 9,600).
pub const MAX_BUCKETS: i64 = 10_000;

/// `?from=&to=&granularity=`, all optional, as given: times are RFC 3339, the granularity
/// `hour` (the default) or `day`. Checked by [`report`] once the caller may see the token.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// Start of the range (inclusive); by default 7 days before its end.
    pub from: Option<String>,
    /// End of the range (exclusive); by default the end of the bucket holding now.
    pub to: Option<String>,
    /// Bucket width.
    pub granularity: Option<String>,
}

/// The validated range: `[from, to)` and the bucket width.
fn range(
    p: &UsageParams,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>, Granularity), ApiError> {
    let time = |raw: &Option<String>, field: &str| {
        raw.as_deref()
            .map(|s| {
                DateTime::parse_from_rfc3339(s.trim())
                    .map_err(|_| {
                        DomainError::field(
                            "INVALID_TIME",
                            field,
                            format!(
                                "{field} must be an RFC 3339 time such as 2026-06-01T00:00:00Z"
                            ),
                        )
                    })
                    .and_then(|t| validate::time(t.with_timezone(&Utc), field))
            })
            .transpose()
    };
    let granularity = match p.granularity.as_deref() {
        None => Granularity::Hour,
        Some(g) => Granularity::parse(g.trim()).ok_or_else(|| {
            DomainError::field(
                "INVALID_GRANULARITY",
                "granularity",
                "granularity must be hour or day",
            )
        })?,
    };
    // By default the range ends with the bucket holding `now`, so every bucket is whole and
    // a request made this very millisecond is counted.
    let to = match time(&p.to, "to")? {
        Some(to) => to,
        None => validate::add(
            granularity.floor(now),
            Duration::milliseconds(granularity.millis()),
            "to",
        )?,
    };
    let from = match time(&p.from, "from")? {
        Some(from) => from,
        None => validate::add(to, Duration::days(-DEFAULT_DAYS), "from")?,
    };
    if from >= to {
        return Err(
            DomainError::field("INVALID_RANGE", "from", "from must be earlier than to").into(),
        );
    }
    let first = granularity.floor(from);
    let width = granularity.millis();
    let buckets = ((to - first).num_milliseconds() + width - 1) / width;
    if buckets > MAX_BUCKETS {
        return Err(DomainError::field(
            "RANGE_TOO_LARGE",
            "from",
            format!(
                "the range holds {buckets} {}s; at most {MAX_BUCKETS} buckets are answered",
                granularity.as_str()
            ),
        )
        .into());
    }
    Ok((from, to, granularity))
}

/// The usage report of a token the caller may see.
pub async fn report(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
    params: &UsageParams,
) -> Result<UsageReport, ApiError> {
    caller.require("keyward.tokens:read")?;
    let token = super::tokens::visible(state, caller, id).await?;
    let (from, to, granularity) = range(params, state.now())?;
    let agg = state
        .store
        .usage(&UsageQuery {
            workspace_id: token.workspace_id,
            token_id: token.id,
            from,
            to,
            granularity,
            top: TOP,
        })
        .await?;
    let last_used = state
        .store
        .last_use(token.workspace_id, token.id)
        .await?
        .map(|u| LastUsed {
            at: u.at,
            ip: u.ip,
            endpoint: u.endpoint,
        });

    let mut per_bucket: BTreeMap<DateTime<Utc>, u64> = BTreeMap::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for (start, code, n) in agg.cells {
        *per_bucket.entry(start).or_default() += n;
        *codes.entry(code).or_default() += n;
    }
    // Every bucket, empty ones too, so a chart needs no gap filling.
    let step = Duration::milliseconds(granularity.millis());
    let mut buckets = Vec::new();
    let mut start = granularity.floor(from);
    while start < to {
        buckets.push(UsageBucket {
            start,
            count: per_bucket.get(&start).copied().unwrap_or(0),
        });
        start += step;
    }
    Ok(UsageReport {
        token_id: token.id,
        from,
        to,
        granularity,
        total: codes.values().sum(),
        buckets,
        codes,
        distinct_ips: agg.distinct_ips,
        ips: agg
            .ips
            .into_iter()
            .map(|(ip, count)| IpCount { ip, count })
            .collect(),
        endpoints: agg
            .endpoints
            .into_iter()
            .map(|(endpoint, count)| EndpointCount { endpoint, count })
            .collect(),
        last_used,
    })
}

/// `?limit=` of the request log: 1–1,000, default 100.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLogParams {
    /// How many requests, newest first.
    pub limit: Option<u32>,
}

/// Requests answered by one request-log call at most.
pub const MAX_REQUESTS: u32 = 1_000;

/// The latest requests kept one by one for a token the caller may see.
pub async fn requests(
    state: &AppState,
    caller: &Caller,
    id: TokenId,
    params: &RequestLogParams,
) -> Result<RequestLog, ApiError> {
    caller.require("keyward.tokens:read")?;
    let token = super::tokens::visible(state, caller, id).await?;
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_REQUESTS {
        return Err(DomainError::field(
            "INVALID_LIMIT",
            "limit",
            format!("limit must be between 1 and {MAX_REQUESTS}"),
        )
        .into());
    }
    let rows = state
        .store
        .recent_usage(token.workspace_id, token.id, limit)
        .await?;
    Ok(RequestLog {
        token_id: token.id,
        request_log: token.request_log,
        requests: rows
            .into_iter()
            .map(|r| RequestRecord {
                at: r.at,
                ip: r.ip,
                method: r.method.map(String::from),
                path: r.path.map(String::from),
                code: r.code,
                latency_us: r.latency_us,
            })
            .collect(),
    })
}

/// `view` with the token's last-use facts filled in.
pub(crate) async fn with_last_use(
    state: &AppState,
    mut view: TokenView,
) -> Result<TokenView, ApiError> {
    if let Some(u) = state.store.last_use(view.workspace_id, view.id).await? {
        view.last_used_at = Some(u.at);
        view.last_used_ip = u.ip;
        view.last_used_endpoint = u.endpoint;
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(from: Option<&str>, to: Option<&str>, g: Option<&str>) -> UsageParams {
        UsageParams {
            from: from.map(Into::into),
            to: to.map(Into::into),
            granularity: g.map(Into::into),
        }
    }

    fn field_of(
        r: Result<(DateTime<Utc>, DateTime<Utc>, Granularity), ApiError>,
    ) -> (String, String) {
        match r {
            Err(ApiError::Invalid(e)) => (e.code.to_owned(), e.field.unwrap_or_default()),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn ranges_default_to_the_last_week_of_whole_buckets() {
        let now = DateTime::parse_from_rfc3339("2026-06-08T12:34:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let (from, to, g) = range(&UsageParams::default(), now).unwrap();
        assert_eq!(to.to_rfc3339(), "2026-06-08T13:00:00+00:00");
        assert_eq!((to - from, g), (Duration::days(7), Granularity::Hour));
        let (from, to, _) = range(&params(None, None, Some("day")), now).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-06-02T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-06-09T00:00:00+00:00");
        let (from, _, g) = range(
            &params(None, Some("2026-06-02T00:00:00+02:00"), Some("day")),
            now,
        )
        .unwrap();
        assert_eq!(from.to_rfc3339(), "2026-05-25T22:00:00+00:00");
        assert_eq!(g, Granularity::Day);
    }

    #[test]
    fn bad_ranges_name_their_field() {
        let now = Utc::now();
        assert_eq!(
            field_of(range(&params(Some("yesterday"), None, None), now)),
            ("INVALID_TIME".into(), "from".into())
        );
        assert_eq!(
            field_of(range(
                &params(None, Some("2026-13-01T00:00:00Z"), None),
                now
            )),
            ("INVALID_TIME".into(), "to".into())
        );
        assert_eq!(
            field_of(range(&params(None, None, Some("week")), now)),
            ("INVALID_GRANULARITY".into(), "granularity".into())
        );
        let t = "2026-06-01T00:00:00Z";
        assert_eq!(
            field_of(range(&params(Some(t), Some(t), None), now)),
            ("INVALID_RANGE".into(), "from".into())
        );
        assert_eq!(
            field_of(range(
                &params(Some("2020-01-01T00:00:00Z"), Some(t), None),
                now
            )),
            ("RANGE_TOO_LARGE".into(), "from".into())
        );
        assert!(range(
            &params(Some("2020-01-01T00:00:00Z"), Some(t), Some("day")),
            now
        )
        .is_ok());
    }
}
