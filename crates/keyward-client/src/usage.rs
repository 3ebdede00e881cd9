//! Usage: `GET /v1/tokens/{id}/usage`, and `GET /metrics` for the pipeline's counters.

use chrono::{DateTime, Utc};
use keyward_core::usage::{Granularity, RequestLog, UsageReport};
use keyward_core::TokenId;
use reqwest::Method;
use serde::Serialize;

use crate::{Client, ClientError};

/// The range and bucket width of a usage report; the server's defaults (the last 7 days, by
/// hour) apply to what is left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageParams {
    /// Start (inclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// `hour` or `day`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granularity: Option<Granularity>,
}

impl Client {
    /// `GET /v1/tokens/{id}/usage`: the token's verified requests over a range.
    pub async fn token_usage(
        &self,
        id: TokenId,
        params: &UsageParams,
    ) -> Result<UsageReport, ClientError> {
        self.call(
            self.request(Method::GET, &["v1", "tokens", &id.to_string(), "usage"])?
                .query(params),
        )
        .await
    }

    /// `GET /v1/tokens/{id}/usage/requests`: the token's latest requests kept one by one
    /// (those made while its `request_log` was on), newest first; `limit` 1–1,000.
    pub async fn token_requests(
        &self,
        id: TokenId,
        limit: Option<u32>,
    ) -> Result<RequestLog, ClientError> {
        let path = ["v1", "tokens", &id.to_string(), "usage", "requests"];
        let mut req = self.request(Method::GET, &path)?;
        if let Some(limit) = limit {
            req = req.query(&[("limit", limit)]);
        }
        self.call(req).await
    }

    /// `GET /metrics`: the Prometheus text exposition.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let resp = self.request(Method::GET, &["metrics"])?.send().await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await?;
            return Err(ClientError::from_answer(status.as_u16(), &body));
        }
        Ok(resp.text().await?)
    }
}
