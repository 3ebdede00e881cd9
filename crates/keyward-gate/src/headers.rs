//! The rate-limit response headers (draft-ietf-httpapi-ratelimit-headers), shared by the
//! verify API, forward-auth, the gateway and the embedded layer.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers), and
/// `Retry-After` when the request was refused. `policy` is [`rate_limit_policy`] of the
/// outcome's limit (the verify API keeps it precomputed per token).
pub fn rate_limit_headers(
    headers: &mut HeaderMap,
    o: &keyward_core::ratelimit::Outcome,
    policy: HeaderValue,
) {
    headers.insert(RATELIMIT_POLICY, policy);
    // Built without `format!`: this runs on every rate-limited verify.
    let mut num = itoa::Buffer::new();
    let mut state = Vec::with_capacity(32);
    state.extend_from_slice(b"\"default\";r=");
    state.extend_from_slice(num.format(o.remaining).as_bytes());
    state.extend_from_slice(b";t=");
    state.extend_from_slice(num.format(o.reset_after_secs()).as_bytes());
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(state)) {
        headers.insert(RATELIMIT, v);
    }
    if let Some(secs) = o.retry_after_secs() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
}

/// The `RateLimit-Policy` value of a per-minute quota of `limit`.
pub fn rate_limit_policy(limit: u32) -> HeaderValue {
    let mut num = itoa::Buffer::new();
    let mut policy = Vec::with_capacity(32);
    policy.extend_from_slice(b"\"default\";q=");
    policy.extend_from_slice(num.format(limit).as_bytes());
    policy.extend_from_slice(b";w=60");
    HeaderValue::from_maybe_shared(Bytes::from(policy))
        .unwrap_or_else(|_| HeaderValue::from_static("\"default\""))
}
