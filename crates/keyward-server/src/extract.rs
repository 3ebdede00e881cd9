//! Request extractors that fail with problem+json: JSON bodies, query strings, path ids, and
//! the authenticated caller of the admin API.

use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use keyward_core::model::Scope;
use keyward_core::{Code, DomainError, Permission, UserId, WorkspaceId};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::error::Category;

use crate::client_ip::client_ip;
use crate::error::ApiError;
use crate::state::AppState;
use crate::verifier::Ask;
use keyward_core::audit::{Actor, AuditDraft};
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

/// The authenticated caller of the admin API: a keyward token that passed the decision,
/// including the workspace's, role's and token's allowlists and the rate limit.
pub struct Caller {
    /// The caller's compiled token.
    pub token: Arc<crate::cache::CachedToken>,
    /// The client address the request came from.
    pub ip: Option<IpAddr>,
    /// Where a refused permission is counted for the audit trail.
    denials: Arc<crate::denials::Denials>,
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
        authenticate(parts, state, &[], true).await
    }
}

/// The caller of the verify API: a credential holding `keyward.verify:tokens`. Its own
/// allowlists and internal-only flag apply to the address it calls from; its rate limit does
/// not (the tokens it asks about are limited one by one).
pub struct VerifierCaller(pub Caller);

impl FromRequestParts<AppState> for VerifierCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let required = std::slice::from_ref(&state.verify_permission);
        let caller = authenticate(parts, state, required, false).await?;
        Ok(VerifierCaller(caller))
    }
}

/// Checks the request's bearer credential through the verifier, from the request's client
/// address, needing `required`.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
    required: &[Permission],
    count_rate: bool,
) -> Result<Caller, ApiError> {
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
        (Code::Valid, Some(token)) => Ok(Caller {
            token,
            ip,
            denials: state.denials.clone(),
        }),
        (Code::RateLimited, _) => match verdict.rate {
            Some(o) => Err(ApiError::RateLimited(o)),
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

impl Caller {
    /// Fails with 403 unless the caller holds `permission`; a refusal is counted as a security
    /// denial of the caller's token.
    pub fn require(&self, permission: &str) -> Result<(), ApiError> {
        let p = Permission::parse(permission).map_err(ApiError::Invalid)?;
        if self.token.grants(&p) {
            return Ok(());
        }
        self.denials.record(crate::denials::Denial {
            workspace: self.token.workspace_id,
            token: self.token.token_id,
            owner: self.token.owner_id,
            code: Code::InsufficientPermissions,
            refused_by: None,
            ip: self.ip,
            missing_permission: Some(p.as_str()),
        });
        Err(ApiError::MissingPermission(permission.to_owned()))
    }

    /// Fails with 403 unless the caller's role has workspace scope.
    pub fn require_workspace_scope(&self) -> Result<(), ApiError> {
        match self.token.scope() {
            Scope::Workspace => Ok(()),
            Scope::User => Err(ApiError::forbidden(
                "WORKSPACE_SCOPE_REQUIRED",
                "this action needs a token whose role has workspace scope",
            )),
        }
    }

    /// Who the caller is, for the audit trail: its token, acting for its owner.
    pub fn actor(&self) -> Actor {
        Actor::token(self.token.token_id, self.token.owner_id)
    }

    /// The audit event of a change this caller makes in its workspace, from its address.
    pub fn audit(
        &self,
        state: &AppState,
        action: &str,
        target_kind: &str,
        target_id: impl Into<String>,
    ) -> AuditDraft {
        let ws = self.workspace_id();
        AuditDraft::new(
            ws,
            state.now(),
            self.actor(),
            action,
            target_kind,
            target_id,
        )
        .ip(self.ip)
    }

    /// The caller's workspace.
    pub fn workspace_id(&self) -> WorkspaceId {
        self.token.workspace_id
    }

    /// The user the caller acts for.
    pub fn owner_id(&self) -> UserId {
        self.token.owner_id
    }

    /// For user-scoped callers, the only owner whose objects they may see.
    pub fn only_owner(&self) -> Option<UserId> {
        (self.token.scope() == Scope::User).then_some(self.token.owner_id)
    }
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
