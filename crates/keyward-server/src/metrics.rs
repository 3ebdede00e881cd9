//! `GET /metrics`: the Prometheus text exposition (format 0.0.4), written by hand: a few
//! counters and gauges need no metrics library.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// The media type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics handler.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&state))
}

/// The exposition text of the current values.
pub fn render(state: &AppState) -> String {
    let usage = &state.usage;
    let c = usage.counters();
    let mut out = String::with_capacity(1024);
    metric(
        &mut out,
        "keyward_usage_records_written_total",
        "counter",
        "Usage records stored.",
        c.written.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "keyward_usage_records_dropped_total",
        "counter",
        "Usage records lost: channel full, sent after shutdown, or refused by storage after retries.",
        c.dropped.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "keyward_usage_write_errors_total",
        "counter",
        "Failed attempts to store a batch of usage records.",
        c.write_errors.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "keyward_usage_queue_depth",
        "gauge",
        "Usage records waiting in the channel to the batch writer.",
        usage.queue_depth() as u64,
    );
    out
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}
