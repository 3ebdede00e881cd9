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

//!
//! # Layout
//! - this module: [`Edge::admit`], the admission.
//! - [`rules`]: the `[edge]` section and its checked form, [`EdgeRules`].
//! - [`answer`]: [`Allowed`] with its [`Principal`], and [`Refusal`].

pub mod answer;
pub mod rules;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderMap};
use http::StatusCode;
use keyward_core::decision::{missing_permissions, IpLevel};
use keyward_core::{Clock, Code, Permission};

pub use answer::{
    strip_principal_headers, Allowed, Principal, Refusal, ANONYMOUS_HEADER, CODE_HEADER,
    PRINCIPAL_HEADERS,
};
pub use rules::{EdgeConfig, EdgeRules, Unmatched};

use crate::error::GateError;
use crate::headers::{policy_for, rate_limit_headers};
use crate::routes::{normalise, Requirement};
use crate::usage::{self, Usage};
use crate::verifier::{Ask, Asker, Verifier};
use rules::Credential;

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
                StatusCode::BAD_REQUEST,
                "INVALID_PATH",
                "the request path has a dot segment, a ';', a '\\', an escaped '/' or '\\', \
                 a control character or a bad %-escape: an upstream could read it as another path",
            ));
        };
        let method = req.method.trim();
        let method: Cow<'_, str> = if method.bytes().any(|b| b.is_ascii_lowercase()) {
            Cow::Owned(method.to_ascii_uppercase())
        } else {
            Cow::Borrowed(method)
        };
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
                    token: None,
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
        if let Some(t) = token.filter(|_| self.usage.enabled()) {
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
            let (policy, value) = policy_for(token, &o);
            (o, policy, value)
        });
        let code = verdict.code;
        let refusal = match code {
            Code::Valid => {
                return Ok(Admission::Allowed(Allowed {
                    token: verdict.token.clone(),
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
                if let Some((o, policy, value)) = &rate {
                    rate_limit_headers(&mut r.headers, o, *policy, value.clone());
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
