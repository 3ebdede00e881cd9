//! The web error tier: every failure of a request becomes one [`ApiError`], and one
//! `IntoResponse` match turns it into `application/problem+json` (RFC 9457) with a stable
//! `code`. A 500 logs its details and answers a generic body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keyward_core::api::Problem;
use keyward_core::{Code, DomainError};
use keyward_store::StoreError;

pub use keyward_gate::headers::{policy_value, rate_limit_headers, rate_limit_policy, Policy};

/// The media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A failed request.
#[derive(Debug)]
pub enum ApiError {
    /// Input refused by a domain rule (422).
    Invalid(DomainError),
    /// The body or query could not be read (400).
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Explanation (never echoing string values of the input).
        message: String,
    },
    /// No `Authorization: Bearer` credential (401).
    Unauthenticated,
    /// The credential is refused by the decision (401, `invalid_token`).
    InvalidToken(Code),
    /// The credential lacks a permission (403, `insufficient_scope`).
    MissingPermission(String),
    /// Refused by the network policy: `IP_NOT_ALLOWED` or `INTERNAL_ONLY` (403).
    AccessDenied {
        /// The decision's code.
        code: Code,
        /// Explanation naming the refusing level, never the list.
        message: String,
    },
    /// Too many requests (429), with the limiter's state and the budget it is of, for the
    /// headers.
    RateLimited(keyward_core::ratelimit::Outcome, Policy),
    /// Refused for another reason (403).
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// Refused because of one request field (403), e.g. `PRIVILEGE_ESCALATION` on a
    /// restriction the caller has and the object would not.
    ForbiddenField {
        /// Stable code.
        code: &'static str,
        /// The request field the refusal is about.
        field: &'static str,
        /// Explanation (never the field's value).
        message: String,
    },
    /// The object does not exist in the caller's workspace (404).
    NotFound(&'static str),
    /// No such route (404).
    RouteNotFound,
    /// The route exists, not with this method (405).
    MethodNotAllowed,
    /// The change conflicts with existing data (409).
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// The request body is larger than the server accepts (413).
    TooLarge,
    /// The request took longer than `server.request_timeout_secs` (503).
    Timeout,
    /// Storage cannot be reached (503).
    Unavailable,
    /// A bug or corrupt data (500); the text goes to the log only.
    Internal(String),
}

impl ApiError {
    /// A 403 with a code.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }

    /// A 409 with a code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, String, Option<String>) {
        match self {
            ApiError::Invalid(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                e.code,
                e.message.clone(),
                e.field.clone(),
            ),
            ApiError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, code, message.clone(), None)
            }
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "send a keyward token as 'Authorization: Bearer <token>'".into(),
                None,
            ),
            ApiError::InvalidToken(code) => (
                StatusCode::UNAUTHORIZED,
                code.as_str(),
                code.message().into(),
                None,
            ),
            ApiError::MissingPermission(p) => (
                StatusCode::FORBIDDEN,
                "INSUFFICIENT_PERMISSIONS",
                format!("this token lacks the permission {p}"),
                None,
            ),
            ApiError::Forbidden { code, message } => {
                (StatusCode::FORBIDDEN, code, message.clone(), None)
            }
            ApiError::ForbiddenField {
                code,
                field,
                message,
            } => (
                StatusCode::FORBIDDEN,
                code,
                message.clone(),
                Some((*field).to_owned()),
            ),
            ApiError::AccessDenied { code, message } => {
                (StatusCode::FORBIDDEN, code.as_str(), message.clone(), None)
            }
            ApiError::RateLimited(o, _) => (
                StatusCode::TOO_MANY_REQUESTS,
                Code::RateLimited.as_str(),
                format!(
                    "rate limit exceeded; retry in {} s",
                    o.retry_after_secs().unwrap_or(1)
                ),
                None,
            ),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                format!("no such {what} in this workspace"),
                None,
            ),
            ApiError::RouteNotFound => (
                StatusCode::NOT_FOUND,
                "ROUTE_NOT_FOUND",
                "no such route".into(),
                None,
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "this route does not accept that method".into(),
                None,
            ),
            ApiError::Conflict { code, message } => {
                (StatusCode::CONFLICT, code, message.clone(), None)
            }
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                format!(
                    "the request body must be at most {} KiB",
                    crate::routes::BODY_LIMIT / 1024
                ),
                None,
            ),
            ApiError::Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "REQUEST_TIMEOUT",
                "the request took too long; try again".into(),
                None,
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "STORAGE_UNAVAILABLE",
                "storage is unavailable; try again shortly".into(),
                None,
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error".into(),
                None,
            ),
        }
    }

    /// The problem document this error answers with.
    pub fn problem(&self) -> Problem {
        let (status, code, detail, field) = self.parts();
        let title = status.canonical_reason().unwrap_or("Error");
        Problem {
            field,
            ..Problem::new(status.as_u16(), title, code, detail)
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::Invalid(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("object"),
            StoreError::Conflict { code, message } => ApiError::Conflict { code, message },
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                ApiError::Unavailable
            }
            StoreError::Config(m) | StoreError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error");
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        let challenge = match &self {
            ApiError::Unauthenticated => Some("Bearer realm=\"keyward\"".to_owned()),
            ApiError::InvalidToken(code) => Some(format!(
                "Bearer realm=\"keyward\", error=\"invalid_token\", error_description=\"{}\"",
                code.message()
            )),
            ApiError::MissingPermission(p) => Some(format!(
                "Bearer realm=\"keyward\", error=\"insufficient_scope\", scope=\"{p}\""
            )),
            _ => None,
        };
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if let ApiError::RateLimited(o, policy) = &self {
            rate_limit_headers(headers, o, *policy, policy_value(*policy, o.limit));
        }
        response
    }
}

/// Turns a refusal that did not come from [`ApiError`] (one of axum's own extractor
/// rejections, such as a path parameter that is not UTF-8, or a body over the limit) into
/// problem+json with a stable code, dropping its text: it may quote the input. Responses that
/// already are problem+json, and successes, pass unchanged.
pub async fn problem_for_every_refusal(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| {
                v.as_bytes() == PROBLEM_JSON.as_bytes() || v.as_bytes().starts_with(b"text/html")
            })
    {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => return ApiError::TooLarge.into_response(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as Content-Type: application/json",
        ),
        StatusCode::NOT_FOUND => return ApiError::RouteNotFound.into_response(),
        StatusCode::METHOD_NOT_ALLOWED => return ApiError::MethodNotAllowed.into_response(),
        StatusCode::UNPROCESSABLE_ENTITY => ("INVALID_BODY", "the request could not be read"),
        s if s.is_server_error() => return ApiError::Internal(format!("{s}")).into_response(),
        _ => ("BAD_REQUEST", "the request could not be read"),
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let problem = Problem::new(status.as_u16(), title, code, detail);
    let mut out = (status, serde_json::to_vec(&problem).unwrap_or_default()).into_response();
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    out
}

impl From<crate::limiter::LimiterError> for ApiError {
    fn from(e: crate::limiter::LimiterError) -> Self {
        tracing::warn!(error = %e, "rate limiter unavailable");
        ApiError::Unavailable
    }
}

impl From<keyward_gate::GateError> for ApiError {
    fn from(e: keyward_gate::GateError) -> Self {
        match e {
            keyward_gate::GateError::Store(e) => e.into(),
            keyward_gate::GateError::Limiter(e) => e.into(),
            keyward_gate::GateError::Invalid(e) => ApiError::Invalid(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(e: ApiError, status: u16, code: &str) -> Response {
        let r = e.into_response();
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let _ = code;
        r
    }

    #[test]
    fn each_variant_maps_to_its_status_and_code() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (
                DomainError::field("UNKNOWN_PERMISSION", "permissions[0]", "x").into(),
                422,
                "UNKNOWN_PERMISSION",
            ),
            (
                ApiError::BadRequest {
                    code: "INVALID_JSON",
                    message: "x".into(),
                },
                400,
                "INVALID_JSON",
            ),
            (ApiError::Unauthenticated, 401, "UNAUTHENTICATED"),
            (ApiError::InvalidToken(Code::Revoked), 401, "REVOKED"),
            (
                ApiError::MissingPermission("keyward.tokens:create".into()),
                403,
                "INSUFFICIENT_PERMISSIONS",
            ),
            (
                ApiError::forbidden("PRIVILEGE_ESCALATION", "x"),
                403,
                "PRIVILEGE_ESCALATION",
            ),
            (ApiError::NotFound("token"), 404, "RESOURCE_NOT_FOUND"),
            (ApiError::conflict("NAME_TAKEN", "x"), 409, "NAME_TAKEN"),
            (ApiError::RouteNotFound, 404, "ROUTE_NOT_FOUND"),
            (ApiError::MethodNotAllowed, 405, "METHOD_NOT_ALLOWED"),
            (ApiError::Unavailable, 503, "STORAGE_UNAVAILABLE"),
            (ApiError::TooLarge, 413, "BODY_TOO_LARGE"),
            (ApiError::Timeout, 503, "REQUEST_TIMEOUT"),
            (
                ApiError::Internal("db exploded at row 7".into()),
                500,
                "INTERNAL",
            ),
        ];
        for (e, status, code) in cases {
            let p = e.problem();
            assert_eq!(p.status, status);
            assert_eq!(p.code, code);
            check(e, status, code);
        }
    }

    #[test]
    fn validation_errors_name_the_field() {
        let p = ApiError::from(DomainError::field("INVALID_NAME", "name", "bad")).problem();
        assert_eq!(p.field.as_deref(), Some("name"));
        assert_eq!(p.kind, "urn:keyward:problem:invalid-name");
    }

    #[test]
    fn internal_details_stay_out_of_the_body() {
        let p = ApiError::Internal("db exploded at row 7".into()).problem();
        assert!(!p.detail.contains("exploded"));
    }

    #[test]
    fn bearer_challenges_follow_rfc_6750() {
        let r = ApiError::InvalidToken(Code::Expired).into_response();
        let v = r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(v.contains("error=\"invalid_token\""), "{v}");
        let r = ApiError::MissingPermission("keyward.roles:write".into()).into_response();
        let v = r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(v.contains("error=\"insufficient_scope\""), "{v}");
    }
}
