//! The edge admission: an original request (method, target, headers, client address) → let it
//! through with the principal, or refuse it with the answer a proxy or client should get. One
//! implementation for forward-auth (`/auth`), the gateway and the embedded tower layer.
//!
//! The route table says what the request needs; the credential is read from
//! `Authorization: Bearer` or a configured header; the [`Verifier`] decides (with the client's
//! address, the asker being the request itself, so failures count against that address). The
//! answer follows RFC 6750: decision steps 1–4 (format, lookup, status, validity) are 401 with
//! `WWW-Authenticate: Bearer … error="invalid_token"`; 5, 6 (internal-only, IP) and 8
//! (permissions, `error="insufficient_scope"`) are 403; 7 (rate limit) is 429 with
//! `Retry-After` and the `RateLimit` headers. Every refusal carries `X-Keyward-Code` and a
//! problem+json body. A usage record is written for every request a token was found for.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use keyward_core::api::Problem;
use keyward_core::decision::{missing_permissions, IpLevel};
use keyward_core::ratelimit::Outcome;
use keyward_core::{Clock, Code, Permission, RoleId, Scope, TokenId, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};

use crate::cache::CachedToken;
use crate::error::GateError;
use crate::headers::{rate_limit_headers, rate_limit_policy};
use crate::routes::{normalise, Requirement, RouteConfig, RouteTable};
use crate::usage::{self, Usage};
use crate::verifier::{Ask, Asker, Verifier};

/// The `[edge]` section: the route table and how the credential is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// The header holding the token; empty for `Authorization: Bearer`.
    pub credential_header: String,
    /// What a request no route matches gets.
    pub unmatched: Unmatched,
    /// A secret a proxy may send as `X-Keyward-Proxy-Secret` to be trusted by `/auth` from an
    /// address not in `policy.trusted_proxies`; empty for none.
    pub proxy_secret: String,
    /// The routes.
    pub routes: Vec<RouteConfig>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            credential_header: String::new(),
            unmatched: Unmatched::Deny,
            proxy_secret: String::new(),
            routes: Vec::new(),
        }
    }
}

/// What a request no route matches gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    /// 403 `ROUTE_NOT_ALLOWED`, whatever the credential.
    Deny,
    /// Any valid token (no permission required).
    Authenticate,
}

/// How the credential is read.
#[derive(Debug, Clone)]
enum Credential {
    Bearer,
    Header(HeaderName),
}

/// The parts of [`EdgeConfig`] that were checked.
#[derive(Debug, Clone)]
pub struct EdgeRules {
    table: RouteTable,
    credential: Credential,
}

impl EdgeRules {
    /// Checks the section: every route, and the credential header's name. Errors name the key.
    pub fn from_config(config: &EdgeConfig) -> Result<Self, String> {
        let unmatched = match config.unmatched {
            Unmatched::Deny => Requirement::Deny,
            Unmatched::Authenticate => Requirement::Token(Vec::new()),
        };
        let table = RouteTable::build(&config.routes, unmatched)?;
        let name = config.credential_header.trim();
        let credential = if name.is_empty() || name.eq_ignore_ascii_case("authorization") {
            Credential::Bearer
        } else {
            Credential::Header(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                "edge.credential_header: not a valid header name (e.g. X-API-Key)".to_owned()
            })?)
        };
        Ok(Self { table, credential })
    }

    /// The route table.
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// The header the credential is read from (`authorization` for Bearer).
    pub fn credential_header(&self) -> HeaderName {
        match &self.credential {
            Credential::Bearer => header::AUTHORIZATION,
            Credential::Header(h) => h.clone(),
        }
    }
}

/// The request being admitted, as the edge sees it.
#[derive(Debug, Clone, Copy)]
pub struct Original<'a> {
    /// Its method (`GET`).
    pub method: &'a str,
    /// Its target: a path with an optional query, or an absolute URI.
    pub target: &'a str,
    /// Its headers (the credential is read from them).
    pub headers: &'a HeaderMap,
    /// The client's address, by the trusted-proxy rules; `None` when unreadable.
    pub client_ip: Option<IpAddr>,
}

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
    fn of(t: &CachedToken) -> Self {
        Self {
            token_id: t.token_id,
            workspace_id: t.workspace_id,
            user_id: t.owner_id,
            role_id: t.role.as_ref().map(|r| r.id),
            scope: t.scope(),
            permissions: t.effective.clone(),
            metadata: t.metadata.clone(),
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
    pub principal: Option<Principal>,
    rate: Option<(Outcome, HeaderValue)>,
}

impl Allowed {
    /// Sets the principal headers (or `X-Keyward-Anonymous: true`) and the rate-limit headers
    /// on `headers`, first removing every `X-Keyward-*` principal header already there.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        strip_principal_headers(headers);
        match &self.principal {
            Some(p) => {
                let mut put = |name: &'static str, value: String| {
                    if let Ok(v) = HeaderValue::try_from(value) {
                        headers.insert(HeaderName::from_static(name), v);
                    }
                };
                put(PRINCIPAL_HEADERS[0], p.token_id.to_string());
                put(PRINCIPAL_HEADERS[1], p.workspace_id.to_string());
                put(PRINCIPAL_HEADERS[2], p.user_id.to_string());
                if let Some(role) = p.role_id {
                    put(PRINCIPAL_HEADERS[3], role.to_string());
                }
                put(PRINCIPAL_HEADERS[4], p.scope.as_str().to_owned());
                let perms: Vec<&str> = p.permissions.iter().map(Permission::as_str).collect();
                put(PRINCIPAL_HEADERS[5], perms.join(","));
                put(PRINCIPAL_HEADERS[6], ascii_json(&p.metadata));
            }
            None => {
                headers.insert(
                    HeaderName::from_static(ANONYMOUS_HEADER),
                    HeaderValue::from_static("true"),
                );
            }
        }
        if let Some((o, policy)) = &self.rate {
            rate_limit_headers(headers, o, policy.clone());
        }
    }
}

/// Removes the principal headers (and the anonymous marker) from `headers`: what the gateway
/// and the embedded layer do to what a client sent.
pub fn strip_principal_headers(headers: &mut HeaderMap) {
    for name in PRINCIPAL_HEADERS.iter().chain([&ANONYMOUS_HEADER]) {
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
    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
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

    fn challenge(mut self, value: String) -> Self {
        if let Ok(v) = HeaderValue::try_from(value) {
            self.headers.insert(header::WWW_AUTHENTICATE, v);
        }
        self
    }

    /// The refusal of a proxy that passes only 401 and 403 (nginx's `auth_request`): a 429
    /// becomes a 403 that still carries `X-Keyward-Code: RATE_LIMITED` and `Retry-After`, for
    /// the proxy's configuration to turn back into a 429.
    pub fn for_nginx(mut self) -> Self {
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            self.status = StatusCode::FORBIDDEN;
        }
        self
    }

    /// The problem+json body.
    pub fn body(&self) -> Bytes {
        let problem = Problem {
            kind: format!(
                "urn:keyward:problem:{}",
                self.code.to_ascii_lowercase().replace('_', "-")
            ),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Refused")
                .to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            field: None,
        };
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

/// The edge's answer.
#[derive(Debug, Clone)]
pub enum Admission {
    /// Let it through.
    Allowed(Allowed),
    /// Refuse it.
    Refused(Refusal),
}

/// Admits requests. Shared behind an `Arc` by every edge surface of one process.
pub struct Edge {
    verifier: Arc<Verifier>,
    usage: Arc<Usage>,
    clock: Arc<dyn Clock>,
    rules: EdgeRules,
}

const REALM: &str = "Bearer realm=\"keyward\"";

impl Edge {
    /// An edge deciding with `verifier` by `rules`, recording usage into `usage`.
    pub fn new(
        verifier: Arc<Verifier>,
        usage: Arc<Usage>,
        clock: Arc<dyn Clock>,
        rules: EdgeRules,
    ) -> Self {
        Self {
            verifier,
            usage,
            clock,
            rules,
        }
    }

    /// The checked rules.
    pub fn rules(&self) -> &EdgeRules {
        &self.rules
    }

    /// Decides on `req`.
    pub async fn admit(&self, req: &Original<'_>) -> Result<Admission, GateError> {
        let started = Instant::now();
        let Some(path) = normalise(req.target) else {
            return Ok(refused(
                StatusCode::FORBIDDEN,
                "INVALID_PATH",
                "the request path could not be read (a bad %-escape)",
            ));
        };
        let method = req.method.trim().to_ascii_uppercase();
        let requirement = self.rules.table.requirement(&method, &path);
        let required: &[Permission] = match requirement {
            Requirement::Deny => {
                return Ok(refused(
                    StatusCode::FORBIDDEN,
                    "ROUTE_NOT_ALLOWED",
                    "no route of keyward's route table allows this request",
                ))
            }
            Requirement::Anonymous => &[],
            Requirement::Token(perms) => perms,
        };
        let secret = match self.credential(req.headers) {
            Presented::One(s) => s,
            Presented::None if *requirement == Requirement::Anonymous => {
                return Ok(Admission::Allowed(Allowed {
                    principal: None,
                    rate: None,
                }));
            }
            Presented::None => {
                let r = Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    "MISSING_CREDENTIAL",
                    "send a keyward token",
                );
                return Ok(Admission::Refused(r.challenge(REALM.to_owned())));
            }
            Presented::Ambiguous => {
                let r = Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    "AMBIGUOUS_CREDENTIAL",
                    "send exactly one credential",
                );
                let challenge = format!("{REALM}, error=\"invalid_request\"");
                return Ok(Admission::Refused(r.challenge(challenge)));
            }
        };
        let ask = Ask {
            required,
            ip: req.client_ip,
            asker: Asker::Itself,
            count_rate: true,
        };
        let verdict = self.verifier.verify(secret, &ask).await?;
        let token = verdict.token.as_deref();
        if let Some(t) = token {
            let record = usage::record(
                self.clock.now(),
                t,
                req.client_ip,
                (Some(&method), Some(&path)),
                verdict.code,
                started.elapsed(),
            );
            self.usage.record(record).await;
        }
        let rate = verdict.rate.map(|o| {
            let policy = match token {
                Some(t) if t.quota.limit == o.limit => t.limit_policy.clone(),
                _ => rate_limit_policy(o.limit), // the brute-force guard's
            };
            (o, policy)
        });
        let code = verdict.code;
        let refusal = match code {
            Code::Valid => {
                return Ok(Admission::Allowed(Allowed {
                    principal: token.map(Principal::of),
                    rate,
                }))
            }
            Code::Malformed
            | Code::NotFound
            | Code::Pending
            | Code::Revoked
            | Code::OwnerDisabled
            | Code::Expired
            | Code::NotYetValid => {
                Refusal::new(StatusCode::UNAUTHORIZED, code.as_str(), code.message())
                    .challenge(format!("{REALM}, error=\"invalid_token\""))
            }
            Code::InternalOnly => {
                Refusal::new(StatusCode::FORBIDDEN, code.as_str(), code.message())
            }
            Code::IpNotAllowed => {
                let level = match verdict.ip_level {
                    Some(IpLevel::Token) => "the token's",
                    Some(IpLevel::Role) => "its role's",
                    Some(IpLevel::Workspace) => "its workspace's",
                    None => "an",
                };
                let detail = format!("the client address is not on {level} IP allowlist");
                Refusal::new(StatusCode::FORBIDDEN, code.as_str(), detail)
            }
            Code::RateLimited => {
                let mut r =
                    Refusal::new(StatusCode::TOO_MANY_REQUESTS, code.as_str(), code.message());
                if let Some((o, policy)) = &rate {
                    rate_limit_headers(&mut r.headers, o, policy.clone());
                }
                r
            }
            Code::InsufficientPermissions => {
                let missing: Vec<&str> = token
                    .map(|t| missing_permissions(&t.compiled, required))
                    .unwrap_or_default()
                    .into_iter()
                    .map(Permission::as_str)
                    .collect();
                let detail = format!("the token lacks {}", missing.join(", "));
                let challenge = format!(
                    "{REALM}, error=\"insufficient_scope\", scope=\"{}\"",
                    missing.join(" ")
                );
                Refusal::new(StatusCode::FORBIDDEN, code.as_str(), detail).challenge(challenge)
            }
        };
        Ok(Admission::Refused(refusal))
    }

    fn credential<'h>(&self, headers: &'h HeaderMap) -> Presented<'h> {
        let name = match &self.rules.credential {
            Credential::Bearer => &header::AUTHORIZATION,
            Credential::Header(h) => h,
        };
        let mut values = headers.get_all(name).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return if headers.contains_key(name) {
                Presented::Ambiguous
            } else {
                Presented::None
            };
        };
        let Ok(text) = value.to_str() else {
            return Presented::One("");
        };
        let text = text.trim();
        match self.rules.credential {
            Credential::Header(_) if text.is_empty() => Presented::None,
            Credential::Header(_) => Presented::One(text),
            Credential::Bearer => match text.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    Presented::One(token.trim())
                }
                // Another scheme (Basic for something else in front): no keyward credential.
                _ => Presented::None,
            },
        }
    }
}

enum Presented<'a> {
    None,
    One(&'a str),
    Ambiguous,
}

fn refused(status: StatusCode, code: &'static str, detail: &str) -> Admission {
    Admission::Refused(Refusal::new(status, code, detail))
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

    #[test]
    fn the_config_is_checked() {
        let bad = EdgeConfig {
            credential_header: "X API Key".into(),
            ..EdgeConfig::default()
        };
        assert!(EdgeRules::from_config(&bad)
            .unwrap_err()
            .contains("credential_header"));
        let key = EdgeConfig {
            credential_header: "X-API-Key".into(),
            ..EdgeConfig::default()
        };
        let rules = EdgeRules::from_config(&key).unwrap();
        assert_eq!(rules.credential_header(), "x-api-key");
        let routes = EdgeConfig {
            routes: vec![RouteConfig {
                route: "GET /x/**/y".into(),
                permissions: vec![],
                anonymous: false,
            }],
            ..EdgeConfig::default()
        };
        assert!(EdgeRules::from_config(&routes)
            .unwrap_err()
            .contains("edge.routes[0]"));
    }
}
