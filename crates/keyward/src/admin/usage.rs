//! `keyward token usage`: a token's verified requests over a time range — totals, decision
//! codes, the busiest addresses and endpoints, and the non-empty buckets with a bar each; and
//! `keyward token requests`: its per-request log.

use chrono::{DateTime, Utc};
use keyward_client::UsageParams;
use keyward_core::api::TokenView;
use keyward_core::usage::{Granularity, UsageReport};
use keyward_core::TokenId;

use super::args;
use super::table::{self, Table};
use super::{emit, print_json, Ctx};

/// Width of the longest bar.
const BAR: u64 = 40;

/// `token usage`.
#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    /// Token id (`tok_…`).
    id: TokenId,
    /// Start of the range, as an RFC 3339 time (default: 7 days before the end).
    #[arg(long, value_parser = args::instant)]
    from: Option<DateTime<Utc>>,
    /// End of the range, as an RFC 3339 time (default: now).
    #[arg(long, value_parser = args::instant)]
    to: Option<DateTime<Utc>>,
    /// Bucket width.
    #[arg(long, value_enum)]
    granularity: Option<GranularityArg>,
}

/// `--granularity`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GranularityArg {
    /// UTC hours.
    Hour,
    /// UTC days.
    Day,
}

impl From<GranularityArg> for Granularity {
    fn from(g: GranularityArg) -> Self {
        match g {
            GranularityArg::Hour => Granularity::Hour,
            GranularityArg::Day => Granularity::Day,
        }
    }
}

pub(crate) async fn run(a: UsageArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let params = UsageParams {
        from: a.from,
        to: a.to,
        granularity: a.granularity.map(Into::into),
    };
    let report = ctx.client.token_usage(a.id, &params).await?;
    if ctx.json {
        print_json(&report)
    } else {
        emit(&summary(&report))
    }
}

/// `token requests`.
#[derive(clap::Args, Debug)]
pub struct RequestsArgs {
    /// Token id (`tok_…`).
    id: TokenId,
    /// How many, newest first (1–1000; default 100).
    #[arg(long)]
    limit: Option<u32>,
}

pub(crate) async fn requests(a: RequestsArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let log = ctx.client.token_requests(a.id, a.limit).await?;
    if ctx.json {
        return print_json(&log);
    }
    let mut t = Table::new(&["AT", "IP", "ENDPOINT", "CODE", "LATENCY"]);
    for r in &log.requests {
        t.row([
            table::time(Some(r.at)),
            r.ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
            keyward_core::usage::endpoint(r.method.as_deref(), r.path.as_deref())
                .unwrap_or_else(|| "-".to_owned()),
            r.code.as_str().to_owned(),
            format!("{} µs", r.latency_us),
        ]);
    }
    let state = if log.request_log {
        "on"
    } else {
        "off (turn it on with `keyward token update ID --request-log true`)"
    };
    let mut out = vec![format!("request log: {state}")];
    if log.requests.is_empty() {
        out.push("no requests kept one by one".to_owned());
    } else {
        out.push(t.render());
    }
    emit(&out.join("\n\n"))
}

/// The last use as one cell: `time from ip, endpoint`, or `never`.
pub(crate) fn last_used(tok: &TokenView) -> String {
    match tok.last_used_at {
        None => "never".to_owned(),
        Some(at) => describe_last(at, tok.last_used_ip, tok.last_used_endpoint.as_deref()),
    }
}

fn describe_last(
    at: DateTime<Utc>,
    ip: Option<std::net::IpAddr>,
    endpoint: Option<&str>,
) -> String {
    let mut s = table::time(Some(at));
    if let Some(ip) = ip {
        s.push_str(&format!(" from {ip}"));
    }
    if let Some(e) = endpoint {
        s.push_str(&format!(", {e}"));
    }
    s
}

/// The report as text: a summary, then buckets, addresses and endpoints.
pub(crate) fn summary(r: &UsageReport) -> String {
    let codes: Vec<String> = r.codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let unit = r.granularity.as_str();
    let last = r.last_used.as_ref().map_or_else(
        || "never".to_owned(),
        |l| describe_last(l.at, l.ip, l.endpoint.as_deref()),
    );
    let head = Table::details([
        ("token", r.token_id.to_string()),
        (
            "range",
            format!(
                "{} to {} (by {unit})",
                table::time(Some(r.from)),
                table::time(Some(r.to))
            ),
        ),
        ("requests", r.total.to_string()),
        ("codes", table::list(&codes)),
        ("distinct ips", r.distinct_ips.to_string()),
        ("last used", last),
    ]);
    let mut out = vec![head.render()];

    let busiest = r.buckets.iter().map(|b| b.count).max().unwrap_or(0);
    let mut buckets = Table::new(&[&unit.to_uppercase(), "REQUESTS", ""]);
    for b in r.buckets.iter().filter(|b| b.count > 0) {
        let width = (b.count * BAR).div_ceil(busiest.max(1));
        buckets.row([
            table::time(Some(b.start)),
            b.count.to_string(),
            "#".repeat(usize::try_from(width).unwrap_or(0)),
        ]);
    }
    let empty = r.buckets.iter().filter(|b| b.count == 0).count();
    if empty < r.buckets.len() {
        out.push(buckets.render());
    }
    if empty > 0 {
        out.push(format!("({empty} empty {unit}s not shown)"));
    }
    if !r.ips.is_empty() {
        let mut ips = Table::new(&["IP", "REQUESTS"]);
        for i in &r.ips {
            ips.row([i.ip.clone(), i.count.to_string()]);
        }
        out.push(ips.render());
    }
    if !r.endpoints.is_empty() {
        let mut endpoints = Table::new(&["ENDPOINT", "REQUESTS"]);
        for e in &r.endpoints {
            endpoints.row([e.endpoint.clone(), e.count.to_string()]);
        }
        out.push(endpoints.render());
    }
    out.join("\n\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use keyward_core::usage::{EndpointCount, IpCount, LastUsed, UsageBucket};

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_summary_shows_totals_busy_buckets_addresses_and_endpoints() {
        let id: TokenId = "tok_0123456789abcdef0123456789abcdef".parse().unwrap();
        let r = UsageReport {
            token_id: id,
            from: at("2026-06-01T12:00:00Z"),
            to: at("2026-06-01T15:00:00Z"),
            granularity: Granularity::Hour,
            total: 6,
            buckets: vec![
                UsageBucket {
                    start: at("2026-06-01T12:00:00Z"),
                    count: 4,
                },
                UsageBucket {
                    start: at("2026-06-01T13:00:00Z"),
                    count: 0,
                },
                UsageBucket {
                    start: at("2026-06-01T14:00:00Z"),
                    count: 2,
                },
            ],
            codes: [("VALID".to_owned(), 5), ("RATE_LIMITED".to_owned(), 1)].into(),
            distinct_ips: 2,
            ips: vec![IpCount {
                ip: "10.0.0.1".into(),
                count: 4,
            }],
            endpoints: vec![EndpointCount {
                endpoint: "GET /a".into(),
                count: 6,
            }],
            last_used: Some(LastUsed {
                at: at("2026-06-01T14:30:00Z"),
                ip: Some("10.0.0.1".parse().unwrap()),
                endpoint: Some("GET /a".into()),
            }),
        };
        let text = summary(&r);
        assert!(text.contains("requests:"), "{text}");
        assert!(text.contains("RATE_LIMITED 1, VALID 5"), "{text}");
        assert!(
            text.contains("last used:     2026-06-01T14:30:00Z from 10.0.0.1, GET /a"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "2026-06-01T12:00:00Z  4         {}",
                "#".repeat(40)
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "2026-06-01T14:00:00Z  2         {}",
                "#".repeat(20)
            )),
            "{text}"
        );
        assert!(!text.contains("2026-06-01T13:00:00Z"), "{text}");
        assert!(text.contains("(1 empty hours not shown)"), "{text}");
        assert!(text.contains("10.0.0.1  4"), "{text}");
        assert!(text.contains("GET /a    6"), "{text}");
    }
}
