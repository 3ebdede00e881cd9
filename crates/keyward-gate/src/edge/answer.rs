//! What the edge answers: the [`Principal`] let through and its headers ([`Allowed`]), or a
//! [`Refusal`] with its status, stable code, challenge and problem+json body.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use keyward_core::api::Problem;
use keyward_core::ratelimit::Outcome;
use keyward_core::{Permission, RoleId, Scope, TokenId, UserId, WorkspaceId};

use crate::cache::CachedToken;
use crate::headers::{rate_limit_headers, Policy};

/// Who is let through: what an upstream learns, as headers or (embedded) as a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The token.
    pub token_id: TokenId,
    /// Its workspace (the customer account).
    pub workspace_id: WorkspaceId,
    /// The user it acts for.
    pub user_id: UserId,
    /// The role it acts with.
    pub role_id: Option<RoleId>,
    /// Account-wide or the user's own.
    pub scope: Scope,
    /// What it holds (after narrowing), exact permissions.
    pub permissions: Vec<Permission>,
    /// The token's metadata.
    pub metadata: serde_json::Value,
}

impl Principal {
    pub(crate) fn of(t: &CachedToken) -> Self {
        Self {
            token_id: t.token_id,
            workspace_id: t.workspace_id,
            user_id: t.owner_id,
            role_id: t.role.as_ref().map(|r| r.id),
            scope: t.scope(),
            permissions: t.effective.to_vec(),
            metadata: t.metadata_parsed().clone(),
        }
    }

    /// Whether the token holds `permission` (for handlers behind the embedded layer that check
    /// more than the route table).
    pub fn holds(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p.as_str() == permission)
    }
}

/// The principal headers an upstream receives. A proxy must remove client-supplied headers
/// of these names (the shipped configurations do); the gateway and `/auth` always overwrite
/// or remove them.
pub const PRINCIPAL_HEADERS: [&str; 7] = [
    "x-keyward-token-id",
    "x-keyward-workspace-id",
    "x-keyward-user-id",
    "x-keyward-role-id",
    "x-keyward-scope",
    "x-keyward-permissions",
    "x-keyward-metadata",
];

/// Marks a request let through without a credential (an anonymous route).
pub const ANONYMOUS_HEADER: &str = "x-keyward-anonymous";
/// The stable code of a refusal.
pub const CODE_HEADER: &str = "x-keyward-code";

/// A request let through.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// The token, unless the route is anonymous and none was sent.
    pub token: Option<Arc<CachedToken>>,
    pub(crate) rate: Option<(Outcome, Policy, HeaderValue)>,
}

impl Allowed {
    /// Who is let through (`None`: an anonymous route, no credential).
    pub fn principal(&self) -> Option<Principal> {
        self.token.as_deref().map(Principal::of)
    }

    /// Sets the principal headers (or `X-Keyward-Anonymous: true`) and the rate-limit headers
    /// on `headers`, first removing every `X-Keyward-*` principal header already there.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        strip_principal_headers(headers);
        match &self.token {
            Some(t) => {
                for (name, value) in t.edge_headers.get_or_init(|| principal_headers(t)) {
                    headers.insert(name.clone(), value.clone());
                }
            }
            None => {
                headers.insert(
                    HeaderName::from_static(ANONYMOUS_HEADER),
                    HeaderValue::from_static("true"),
                );
            }
        }
        self.write_rate_headers(headers);
    }

    /// Sets `RateLimit-Policy` and `RateLimit` for the token's limit (when step 7 ran): what
    /// the embedded layer adds to the service's response.
    pub fn write_rate_headers(&self, headers: &mut HeaderMap) {
        if let Some((o, policy, value)) = &self.rate {
            rate_limit_headers(headers, o, *policy, value.clone());
        }
    }
}

/// The principal headers of `t`, built once per cache entry.
fn principal_headers(t: &CachedToken) -> Vec<(HeaderName, HeaderValue)> {
    let p = Principal::of(t);
    let perms: Vec<&str> = p.permissions.iter().map(Permission::as_str).collect();
    let values = [
        Some(p.token_id.to_string()),
        Some(p.workspace_id.to_string()),
        Some(p.user_id.to_string()),
        p.role_id.map(|r| r.to_string()),
        Some(p.scope.as_str().to_owned()),
        Some(perms.join(",")),
        Some(ascii_json(&p.metadata)),
    ];
    PRINCIPAL_HEADERS
        .iter()
        .zip(values)
        .filter_map(|(name, value)| {
            let value = HeaderValue::try_from(value?).ok()?;
            Some((HeaderName::from_static(name), value))
        })
        .collect()
}

/// Removes from what a client sent every header an upstream could take as keyward's: the
/// principal headers, the anonymous marker, `X-Keyward-Code`, the proxy secret and the
/// rate-limit state. What the gateway and the embedded layer do before writing their own.
pub fn strip_principal_headers(headers: &mut HeaderMap) {
    let others = [
        ANONYMOUS_HEADER,
        CODE_HEADER,
        "x-keyward-proxy-secret",
        "ratelimit",
        "ratelimit-policy",
    ];
    for name in PRINCIPAL_HEADERS.iter().chain(others.iter()) {
        headers.remove(*name);
    }
}

/// Compact JSON with every non-ASCII character escaped, so it fits in a header value.
fn ascii_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// A refused request: the status, the stable code, a safe explanation, and the headers the
/// client should see.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// 401, 403, 429 (or 503 when storage is down).
    pub status: StatusCode,
    /// Stable code: a decision code or `MISSING_CREDENTIAL`, `ROUTE_NOT_ALLOWED`, ….
    pub code: &'static str,
    /// What happened, safe to show.
    pub detail: String,
    /// `WWW-Authenticate`, `X-Keyward-Code`, `Retry-After`, `RateLimit*`.
    pub headers: HeaderMap,
}

impl Refusal {
    /// A refusal of `status` with `code` (also in `X-Keyward-Code`) and a safe `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static(CODE_HEADER),
            HeaderValue::from_static(code),
        );
        Self {
            status,
            code,
            detail: detail.into(),
            headers,
        }
    }

    pub(crate) fn challenge(mut self, value: String) -> Self {
        if let Ok(v) = HeaderValue::try_from(value) {
            self.headers.insert(header::WWW_AUTHENTICATE, v);
        }
        self
    }

    /// The refusal of a proxy that passes only 401 and 403 (nginx's `auth_request`): a 429
    /// becomes a 403 that still carries `X-Keyward-Code: RATE_LIMITED` and `Retry-After`, for
    /// the proxy's configuration to turn back into a 429; a 400 (`INVALID_PATH`) a 403.
    pub fn for_nginx(mut self) -> Self {
        if self.status == StatusCode::TOO_MANY_REQUESTS || self.status == StatusCode::BAD_REQUEST {
            self.status = StatusCode::FORBIDDEN;
        }
        self
    }

    /// The problem+json body.
    pub fn body(&self) -> Bytes {
        let title = self.status.canonical_reason().unwrap_or("Refused");
        let problem = Problem::new(self.status.as_u16(), title, self.code, &*self.detail);
        Bytes::from(serde_json::to_vec(&problem).unwrap_or_default())
    }

    /// The whole answer: status, headers and the problem+json body.
    pub fn into_response<B: From<Bytes>>(self) -> http::Response<B> {
        let body = self.body();
        let mut res = http::Response::new(B::from(body));
        *res.status_mut() = self.status;
        *res.headers_mut() = self.headers;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        res
    }

    /// The answer when storage (or the limiter's backend) cannot be reached.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "STORE_UNAVAILABLE",
            "keyward cannot decide right now; try again shortly",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_headers_are_ascii() {
        let v = serde_json::json!({"team": "Zürich 🚀", "n": 1});
        let h = ascii_json(&v);
        assert!(h.is_ascii());
        assert!(HeaderValue::try_from(h.clone()).is_ok());
        let back: serde_json::Value = serde_json::from_str(&h).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn nginx_gets_403_for_429_with_the_code_kept() {
        let mut r = Refusal::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "slow down");
        r.headers
            .insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        let n = r.for_nginx();
        assert_eq!(n.status, StatusCode::FORBIDDEN);
        assert_eq!(n.headers[CODE_HEADER], "RATE_LIMITED");
        assert_eq!(n.headers[header::RETRY_AFTER], "7");
        let res: http::Response<Bytes> = n.into_response();
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let p: Problem = serde_json::from_slice(res.body()).unwrap();
        assert_eq!((p.status, p.code.as_str()), (403, "RATE_LIMITED"));
    }
}
