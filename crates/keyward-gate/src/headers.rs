//! The rate-limit response headers (draft-ietf-httpapi-ratelimit-headers), shared by the
//! verify API, forward-auth, the gateway and the embedded layer.
//!
//! The policy's name says which budget a request spent: `"token"` (the token's own) or
//! `"user"` (the one its owner user's per-user tokens share), and `"default"` for the
//! brute-force guard's budget of failures. The same name heads both fields, as the draft
//! links a `RateLimit` item to its `RateLimit-Policy` item by name:
//!
//! ```text
//! RateLimit-Policy: "user";q=150;w=60
//! RateLimit: "user";r=149;t=1
//! ```

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use keyward_core::ratelimit::Outcome;
use keyward_core::RateLimitPer;

use crate::cache::CachedToken;

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The quota policy a rate-limit state belongs to, named in both headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// A token's own budget (`"token"`).
    Token,
    /// The budget an owner user's per-user tokens share (`"user"`).
    User,
    /// The brute-force guard's budget of failures (`"default"`).
    Guard,
}

impl Policy {
    /// The policy of a budget that counts `per`.
    pub fn of(per: RateLimitPer) -> Self {
        match per {
            RateLimitPer::Token => Policy::Token,
            RateLimitPer::User => Policy::User,
        }
    }

    /// The policy's name as a structured-field string, quotes included.
    fn quoted(self) -> &'static [u8] {
        match self {
            Policy::Token => b"\"token\"",
            Policy::User => b"\"user\"",
            Policy::Guard => b"\"default\"",
        }
    }
}

/// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers), and
/// `Retry-After` when the request was refused. `value` is the `RateLimit-Policy` value of
/// `policy` for the outcome's limit ([`policy_for`] finds both for a verdict).
pub fn rate_limit_headers(
    headers: &mut HeaderMap,
    o: &Outcome,
    policy: Policy,
    value: HeaderValue,
) {
    headers.insert(RATELIMIT_POLICY, value);
    // Built without `format!`, in one allocation of the exact size (a `Vec` with room to spare
    // costs a second one on its way into `Bytes`): this runs on every rate-limited verify.
    let (mut r, mut t) = (itoa::Buffer::new(), itoa::Buffer::new());
    let parts: [&[u8]; 5] = [
        policy.quoted(),
        b";r=",
        r.format(o.remaining).as_bytes(),
        b";t=",
        t.format(o.reset_after_secs()).as_bytes(),
    ];
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(parts.concat())) {
        headers.insert(RATELIMIT, v);
    }
    if let Some(secs) = o.retry_after_secs() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
}

/// The `RateLimit-Policy` value of a token's own per-minute budget of `limit` (what a cache
/// entry keeps precomputed, per token or per user, for [`policy_for`]).
pub fn rate_limit_policy(limit: u32) -> HeaderValue {
    policy_value(Policy::Token, limit)
}

/// The `RateLimit-Policy` value of `policy` with a per-minute quota of `limit`.
pub fn policy_value(policy: Policy, limit: u32) -> HeaderValue {
    let mut num = itoa::Buffer::new();
    let parts: [&[u8]; 4] = [
        policy.quoted(),
        b";q=",
        num.format(limit).as_bytes(),
        b";w=60",
    ];
    let value = parts.concat();
    HeaderValue::from_maybe_shared(Bytes::from(value))
        .unwrap_or_else(|_| HeaderValue::from_static("\"default\""))
}

/// The policy of the rate-limit outcome `o` of a verdict about `token`, with its
/// `RateLimit-Policy` value: the token's budget (its own or its owner's) when `o` is step 7's,
/// else the brute-force guard's.
pub fn policy_for(token: Option<&CachedToken>, o: &Outcome) -> (Policy, HeaderValue) {
    match token {
        Some(t) if t.quota.limit == o.limit => match t.rate_limit_per {
            RateLimitPer::Token => (Policy::Token, t.limit_policy.clone()),
            RateLimitPer::User => (Policy::User, t.limit_policy.clone()),
        },
        _ => (Policy::Guard, policy_value(Policy::Guard, o.limit)),
    }
}

/// What the verify API's `rate_limit.per` says for `o`: the budget step 7 spent, or nothing
/// for the guard's state.
pub fn budget_of(token: Option<&CachedToken>, o: &Outcome) -> Option<RateLimitPer> {
    token
        .filter(|t| t.quota.limit == o.limit)
        .map(|t| t.rate_limit_per)
}
