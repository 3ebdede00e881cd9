//! `GET /metrics`: the OpenMetrics text exposition of the registry built at start-up
//! ([`keyward_gate::metrics`]): decisions by code, verify latency, cache, change feed, the
//! store's circuit, usage and the rate limiter's backend.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::error::ApiError;
use crate::state::AppState;

/// The media type of the OpenMetrics text format (Prometheus scrapes it natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics handler.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::with_capacity(4096);
    prometheus_client::encoding::text::encode(&mut out, &state.metrics)
        .map_err(|_| ApiError::Internal("encoding the metrics failed".into()))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], out))
}
