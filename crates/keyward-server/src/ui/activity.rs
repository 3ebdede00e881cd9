//! A token's activity: usage over time, top addresses and endpoints, decision codes, and its
//! audit events.
//!
//! `GET /ui/tokens/{id}/activity?range=24h|30d`: the last use (when, from where, which
//! endpoint), the verified requests of the last 24 hours by hour or the last 30 days by day
//! as a bar chart drawn on the server (inline SVG with presentation attributes only: the
//! dashboard's CSP allows no inline style or script), with the same numbers in a table, the
//! counts per decision code, the busiest addresses and endpoints, and the token's latest audit
//! events. The numbers are [`crate::ops::usage::report`]'s (as `GET /v1/tokens/{id}/usage`);
//! the events [`crate::ops::audit::list`]'s, shown when the person may read the trail.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use keyward_core::audit::AuditQuery;
use keyward_core::usage::{Granularity, UsageBucket, UsageReport};
use keyward_core::TokenId;
use serde::Deserialize;

use super::audit::{rows, EventRow};
use super::page::{explain, html, message, when, Chrome};
use crate::ops;
use crate::ops::usage::UsageParams;
use crate::state::AppState;

/// The token's audit events shown.
const EVENTS: u32 = 20;
/// Requests of the per-request log shown at most.
const REQUESTS: u32 = 50;

/// Width and height of the chart's drawing area, in SVG user units.
const CHART_W: u32 = 720;
const CHART_H: u32 = 160;
/// Room under the bars for the axis labels.
const LABELS_H: u32 = 20;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new().route("/ui/tokens/{id}/activity", get(show))
}

/// `?range=`: `24h` (the default, hourly) or `30d` (daily).
#[derive(Debug, Default, Deserialize)]
struct RangeParam {
    range: Option<String>,
}

/// The ranges the page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    Day,
    Month,
}

impl Range {
    fn of(raw: Option<&str>) -> Self {
        match raw {
            Some("30d") => Range::Month,
            _ => Range::Day,
        }
    }

    /// The usage parameters: whole buckets up to the one holding `now`.
    fn params(self, now: DateTime<Utc>) -> UsageParams {
        let (g, span) = match self {
            Range::Day => (Granularity::Hour, Duration::hours(24)),
            Range::Month => (Granularity::Day, Duration::days(30)),
        };
        let to = g.floor(now) + Duration::milliseconds(g.millis());
        UsageParams {
            from: Some((to - span).to_rfc3339()),
            to: Some(to.to_rfc3339()),
            granularity: Some(g.as_str().to_owned()),
        }
    }
}

/// One bar of the chart, in SVG user units.
struct Bar {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    /// The bucket, e.g. `2026-06-01 12:00 UTC: 3 requests`.
    title: String,
}

/// An axis label under the chart.
struct Tick {
    x: u32,
    text: String,
}

/// The chart of `buckets`: one bar each, scaled to the busiest; labels every few buckets.
fn chart(buckets: &[UsageBucket], g: Granularity) -> (Vec<Bar>, Vec<Tick>) {
    let n = u32::try_from(buckets.len()).unwrap_or(u32::MAX).max(1);
    let slot = (CHART_W / n).max(1);
    let gap = u32::from(slot > 4);
    let max = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let label = |t: DateTime<Utc>| match g {
        Granularity::Hour => t.format("%H:%M").to_string(),
        Granularity::Day => t.format("%m-%d").to_string(),
    };
    let every = match g {
        Granularity::Hour => 6,
        Granularity::Day => 7,
    };
    let mut bars = Vec::with_capacity(buckets.len());
    let mut ticks = Vec::new();
    for (i, b) in buckets.iter().enumerate() {
        let x = u32::try_from(i).unwrap_or(u32::MAX).saturating_mul(slot);
        // Rounded up, so a bucket with any request shows at least one unit.
        let h = u32::try_from((b.count * u64::from(CHART_H)).div_ceil(max)).unwrap_or(CHART_H);
        let noun = if b.count == 1 { "request" } else { "requests" };
        bars.push(Bar {
            x,
            y: CHART_H - h,
            w: slot - gap,
            h,
            title: format!("{}: {} {noun}", when(b.start), b.count),
        });
        if i % every == 0 {
            ticks.push(Tick {
                x,
                text: label(b.start),
            });
        }
    }
    (bars, ticks)
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    c: Chrome,
    id: String,
    day: bool,
    last_used: String,
    last_ip: String,
    last_endpoint: String,
    total: u64,
    distinct_ips: u64,
    bars: Vec<Bar>,
    ticks: Vec<Tick>,
    chart_w: u32,
    chart_h: u32,
    svg_h: u32,
    label_y: u32,
    /// Each bucket with its count, for the table under the chart.
    table: Vec<(String, u64)>,
    codes: Vec<(String, u64)>,
    ips: Vec<(String, u64)>,
    endpoints: Vec<(String, u64)>,
    may_audit: bool,
    events: Vec<EventRow>,
    /// Whether the token keeps a per-request log now.
    request_log: bool,
    /// Its latest requests kept one by one: (when, address, endpoint, code, latency).
    requests: Vec<(String, String, String, String, String)>,
}

async fn show(
    State(state): State<AppState>,
    person: super::auth::Person,
    Path(id): Path<String>,
    Query(q): Query<RangeParam>,
) -> Response {
    let refused = |e: &crate::error::ApiError| {
        let (_, text, status) = explain(e);
        message(
            status,
            person.chrome("Not possible"),
            text,
            "/ui/tokens",
            "All tokens",
        )
    };
    let Ok(id) = id.parse::<TokenId>() else {
        return refused(&crate::error::ApiError::NotFound("token"));
    };
    let token = match ops::tokens::get(&state, &person.caller, id).await {
        Ok(t) => t,
        Err(e) => return refused(&e),
    };
    let range = Range::of(q.range.as_deref());
    let report: UsageReport =
        match ops::usage::report(&state, &person.caller, id, &range.params(state.now())).await {
            Ok(r) => r,
            Err(e) => return refused(&e),
        };
    let log_params = ops::usage::RequestLogParams {
        limit: Some(REQUESTS),
    };
    let log = match ops::usage::requests(&state, &person.caller, id, &log_params).await {
        Ok(l) => l,
        Err(e) => return refused(&e),
    };
    let requests = log
        .requests
        .iter()
        .map(|r| {
            (
                when(r.at),
                r.ip.map_or_else(|| "unknown".to_owned(), |i| i.to_string()),
                keyward_core::usage::endpoint(r.method.as_deref(), r.path.as_deref())
                    .unwrap_or_default(),
                r.code.as_str().to_owned(),
                format!("{} µs", r.latency_us),
            )
        })
        .collect();
    let may_audit = person.nav.audit;
    let events = if may_audit {
        let q = AuditQuery {
            token: Some(id.to_string()),
            order: Some("desc".into()),
            limit: Some(EVENTS),
            ..AuditQuery::default()
        };
        match ops::audit::list(&state, &person.caller, &q).await {
            Ok(p) => rows(&state, &person, &p.items).await,
            Err(e) => return refused(&e),
        }
    } else {
        vec![]
    };
    let (bars, ticks) = chart(&report.buckets, report.granularity);
    let last = report.last_used.as_ref();
    let pairs = |m: &std::collections::BTreeMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    let page = ActivityPage {
        request_log: log.request_log,
        requests,
        c: person.chrome(format!("Activity of “{}”", token.name)),
        id: token.id.to_string(),
        day: range == Range::Day,
        last_used: last.map(|l| when(l.at)).unwrap_or_else(|| "never".into()),
        last_ip: last
            .and_then(|l| l.ip)
            .map(|i| i.to_string())
            .unwrap_or_default(),
        last_endpoint: last.and_then(|l| l.endpoint.clone()).unwrap_or_default(),
        total: report.total,
        distinct_ips: report.distinct_ips,
        bars,
        ticks,
        chart_w: CHART_W,
        chart_h: CHART_H,
        svg_h: CHART_H + LABELS_H,
        label_y: CHART_H + LABELS_H - 4,
        table: report
            .buckets
            .iter()
            .map(|b| (when(b.start), b.count))
            .collect(),
        codes: pairs(&report.codes),
        ips: report.ips.iter().map(|i| (i.ip.clone(), i.count)).collect(),
        endpoints: report
            .endpoints
            .iter()
            .map(|e| (e.endpoint.clone(), e.count))
            .collect(),
        may_audit,
        events,
    };
    html(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(h: i64, count: u64) -> UsageBucket {
        let start = DateTime::from_timestamp(1_780_000_000 + h * 3600, 0).unwrap();
        UsageBucket { start, count }
    }

    #[test]
    fn bars_scale_to_the_busiest_bucket() {
        let buckets: Vec<_> = (0..24)
            .map(|h| bucket(h, [0, 1, 10][h as usize % 3]))
            .collect();
        let (bars, ticks) = chart(&buckets, Granularity::Hour);
        assert_eq!(bars.len(), 24);
        assert_eq!(ticks.len(), 4);
        assert_eq!((bars[0].h, bars[0].y), (0, CHART_H));
        assert_eq!(bars[2].h, CHART_H);
        assert!(bars[1].h >= 1, "a single request still shows");
        assert!(bars.iter().all(|b| b.x + b.w <= CHART_W));
        assert!(bars[1].title.ends_with(": 1 request"), "{}", bars[1].title);
    }

    #[test]
    fn empty_usage_draws_flat_bars() {
        let buckets: Vec<_> = (0..30).map(|d| bucket(d * 24, 0)).collect();
        let (bars, _) = chart(&buckets, Granularity::Day);
        assert!(bars.iter().all(|b| b.h == 0));
        let (none, ticks) = chart(&[], Granularity::Day);
        assert!(none.is_empty() && ticks.is_empty());
    }

    #[test]
    fn ranges_end_with_the_bucket_holding_now() {
        let now = DateTime::parse_from_rfc3339("2026-06-01T12:34:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let p = Range::Day.params(now);
        assert_eq!(p.to.as_deref(), Some("2026-06-01T13:00:00+00:00"));
        assert_eq!(p.from.as_deref(), Some("2026-05-31T13:00:00+00:00"));
        let p = Range::Month.params(now);
        assert_eq!(p.to.as_deref(), Some("2026-06-02T00:00:00+00:00"));
        assert_eq!(p.granularity.as_deref(), Some("day"));
    }
}
