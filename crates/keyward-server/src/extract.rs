//! Request extractors that fail with problem+json: JSON bodies, query strings, path ids, and
//! the authenticated callers: of the admin API (a token [`Caller`], built here; the type is
//! the operations layer's) and of the verify API ([`VerifierCaller`]).

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use keyward_core::{Code, DomainError, Permission};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::error::Category;

use crate::cache::CachedToken;
use crate::client_ip::client_ip;
use crate::error::ApiError;
use crate::ops::Caller;
use crate::state::AppState;
use crate::verifier::Ask;
use keyward_core::decision::IpLevel;

/// A JSON body; a bad one is a 400 (syntax) or 422 (shape) problem that never echoes values.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = JsonBody::from_request(req, state).await?;
        body.parse().map(ApiJson)
    }
}

/// A JSON body kept as bytes, to be parsed into a type that borrows from it (the verify API
/// reads the secret without copying it).
pub struct JsonBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let essence = v.split(';').next().unwrap_or("").trim();
                essence.eq_ignore_ascii_case("application/json")
                    || (essence.len() > 5
                        && essence[essence.len() - 5..].eq_ignore_ascii_case("+json"))
            });
        if !is_json {
            return Err(ApiError::BadRequest {
                code: "UNSUPPORTED_MEDIA_TYPE",
                message: "send the body as Content-Type: application/json".into(),
            });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::BadRequest {
                    code: "INVALID_BODY",
                    message: "the request body could not be read".into(),
                }
            }
        })?;
        Ok(JsonBody(bytes))
    }
}

impl JsonBody {
    /// Parses the body. Syntax errors are 400 `INVALID_JSON`; a body of the wrong shape is 422
    /// `INVALID_BODY`. Neither echoes string values from the input.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.0).map_err(|e| {
            let message = redact_values(&e.to_string());
            match e.classify() {
                Category::Data => ApiError::Invalid(DomainError::rule("INVALID_BODY", message)),
                _ => ApiError::BadRequest {
                    code: "INVALID_JSON",
                    message,
                },
            }
        })
    }
}

/// A query string; a bad one is a 422 problem.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::Invalid(
                DomainError::rule("INVALID_QUERY", redact_values(&e.body_text())),
            )),
            Err(e) => Err(ApiError::Invalid(DomainError::rule(
                "INVALID_QUERY",
                redact_values(&e.body_text()),
            ))),
        }
    }
}

/// Parses a typed id taken from the path, naming the `id` field when it is wrong.
pub fn path_id<T: FromStr<Err = DomainError>>(raw: &str) -> Result<T, ApiError> {
    T::from_str(raw).map_err(|e| {
        ApiError::Invalid(DomainError {
            field: Some("id".into()),
            ..e
        })
    })
}

/// Removes input values from a deserialiser message, so a secret pasted into the wrong field
/// is never echoed back: double-quoted runs (string values) and backticked runs after
/// "variant" (enum values). Other backticked runs are field names and stay.
pub fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut closing: Option<char> = None;
    for c in message.chars() {
        match closing {
            Some(end) if c == end => {
                out.push('…');
                out.push(c);
                closing = None;
            }
            Some(_) => {}
            None if c == '"' => {
                out.push(c);
                closing = Some('"');
            }
            None if c == '`' && out.ends_with("variant ") => {
                out.push(c);
                closing = Some('`');
            }
            None => out.push(c),
        }
    }
    out
}

/// The explanation of a network refusal: the level that refused, never the list.
pub fn denial_message(code: Code, level: Option<IpLevel>) -> String {
    match level {
        Some(level) => format!("{} by the {} allowlist", code.message(), level.as_str()),
        None => code.message().to_owned(),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, ip) = authenticate(parts, state, &[], true).await?;
        Ok(Caller::of_token(token, ip, state.denials.clone()))
    }
}

/// The caller of the verify API: a credential holding `keyward.verify:tokens`. Its own
/// allowlists and internal-only flag apply to the address it calls from; its rate limit does
/// not (the tokens it asks about are limited one by one). It keeps the cached token itself,
/// which the hot path reads directly.
pub struct VerifierCaller {
    /// The verifier credential's compiled token.
    pub token: Arc<CachedToken>,
    /// The client address the request came from.
    pub ip: Option<IpAddr>,
}

impl FromRequestParts<AppState> for VerifierCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let required = std::slice::from_ref(&*state.verify_permission);
        let (token, ip) = authenticate(parts, state, required, false).await?;
        Ok(VerifierCaller { token, ip })
    }
}

/// Checks the request's bearer credential through the verifier, from the request's client
/// address, needing `required`; answers the token and that address.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
    required: &[Permission],
    count_rate: bool,
) -> Result<(Arc<CachedToken>, Option<IpAddr>), ApiError> {
    let raw = bearer(parts).ok_or(ApiError::Unauthenticated)?;
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .and_then(|c| client_ip(c.0, &parts.headers, &state.trusted_proxies));
    let ask = Ask {
        count_rate,
        ..Ask::own(required, ip)
    };
    let verdict = state.verifier.verify(raw, &ask).await?;
    match (verdict.code, verdict.token) {
        (Code::Valid, Some(token)) => Ok((token, ip)),
        (Code::RateLimited, token) => match verdict.rate {
            Some(o) => {
                let policy = keyward_gate::headers::policy_for(token.as_deref(), &o).0;
                Err(ApiError::RateLimited(o, policy))
            }
            None => Err(ApiError::Unavailable),
        },
        (code @ (Code::IpNotAllowed | Code::InternalOnly), _) => Err(ApiError::AccessDenied {
            code,
            message: denial_message(code, verdict.ip_level),
        }),
        (Code::InsufficientPermissions, _) => Err(ApiError::MissingPermission(
            required
                .iter()
                .map(Permission::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        )),
        (code, _) => Err(ApiError::InvalidToken(code)),
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_string_values_but_keeps_field_names() {
        let m = "permissions: invalid type: string \"kw_secret\", expected a sequence; unknown field `tokn`";
        let r = redact_values(m);
        assert!(!r.contains("kw_secret"), "{r}");
        assert!(r.contains("`tokn`"));
        assert!(r.contains("permissions"));
        let m = "kind: unknown variant `kw_secret`, expected `human` or `service`";
        let r = redact_values(m);
        assert!(!r.contains("kw_secret"), "{r}");
        assert!(r.contains("`human`"), "{r}");
    }
}
