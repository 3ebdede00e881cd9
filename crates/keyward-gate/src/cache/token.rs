//! A token as cached: its compiled form, and what each verification would otherwise format
//! again (the `VALID` answer, the rate-limit policy header, the edge's principal headers).

use bytes::Bytes;
use http::HeaderValue;
use keyward_core::ratelimit::Quota;
use keyward_core::CompiledToken;

/// A compiled token as cached: the decision's input, and the `VALID` answer of the verify API
/// serialised once (but for its closing brace, after which the per-request rate-limit state
/// goes), since nothing else in it changes until the entry is invalidated.
#[derive(Debug)]
pub struct CachedToken {
    /// What the decision reads.
    pub compiled: CompiledToken,
    /// The JSON body of a `VALID` verify answer for this token, without the final `}`.
    pub valid_prefix: Bytes,
    /// The token's rate limit (step 7).
    pub quota: Quota,
    /// Its `RateLimit-Policy` header value, naming its budget ("token" or "user").
    pub limit_policy: HeaderValue,
    /// The principal headers the edge sends upstream, built on first use (then each request
    /// clones reference-counted values instead of formatting ids and JSON again).
    pub edge_headers: std::sync::OnceLock<Vec<(http::HeaderName, HeaderValue)>>,
    /// The metadata parsed, on first use by the edge's principal (kept as text otherwise).
    metadata: std::sync::OnceLock<serde_json::Value>,
}

impl CachedToken {
    /// The cached form of a freshly compiled token: its quota, policy header and `VALID`
    /// answer made once.
    pub fn new(compiled: CompiledToken) -> Result<Self, crate::GateError> {
        let quota =
            Quota::new(compiled.rate_limit_per_minute, 60).map_err(crate::GateError::Invalid)?;
        let budget = match compiled.rate_limit_per {
            keyward_core::RateLimitPer::Token => crate::headers::Policy::Token,
            keyward_core::RateLimitPer::User => crate::headers::Policy::User,
        };
        Ok(Self {
            valid_prefix: valid_prefix(&compiled),
            limit_policy: crate::headers::policy_value(budget, quota.limit),
            quota,
            compiled,
            edge_headers: std::sync::OnceLock::new(),
            metadata: std::sync::OnceLock::new(),
        })
    }

    /// The metadata as a JSON value, parsed once.
    pub fn metadata_parsed(&self) -> &serde_json::Value {
        self.metadata.get_or_init(|| self.compiled.metadata_value())
    }
}

/// The `VALID` answer serialised once, without its closing brace: the per-request rate-limit
/// state is appended to it.
fn valid_prefix(token: &CompiledToken) -> Bytes {
    // Serialising plain data cannot fail; an empty body would only ever show up as a 200 with
    // nothing in it, which the client reports as an error.
    let response = crate::verifier::response(keyward_core::decision::Code::Valid, Some(token));
    let mut body = serde_json::to_vec(&response).unwrap_or_default();
    body.pop();
    // Copied to an allocation of its exact size: the serialiser's buffer grew by doubling.
    Bytes::copy_from_slice(&body)
}

impl std::ops::Deref for CachedToken {
    type Target = CompiledToken;
    fn deref(&self) -> &CompiledToken {
        &self.compiled
    }
}
