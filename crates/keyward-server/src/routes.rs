//! The router: health, the verify API, the admin API, and problem+json for unknown routes.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use std::net::IpAddr;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::{RateLimitState, VerifyRequest};
use keyward_core::decision::missing_permissions;
use keyward_core::permission::Permission;
use keyward_core::{Code, DomainError};
use keyward_gate::headers::{budget_of, policy_for};

use crate::admin;
use crate::client_ip;
use crate::error::{rate_limit_headers, ApiError};
use crate::extract::{denial_message, JsonBody, VerifierCaller};
use crate::state::{AppState, VerifyApi};
use crate::usage;
use crate::verifier::{self, Ask, Asker};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/v1/verify", post(verify))
        .merge(crate::forward_auth::routes(state.forward_auth.clone()))
        .merge(admin::workspaces::routes())
        .merge(admin::users::routes())
        .merge(admin::invitations::routes())
        .merge(crate::ui::routes())
        .merge(admin::roles::routes())
        .merge(admin::permissions::routes())
        .merge(admin::audit::routes())
        .merge(admin::rotation::routes())
        .merge(admin::tokens::routes())
        .merge(admin::usage::routes())
        .merge(admin::webhooks::routes())
        .merge(admin::change_requests::routes())
        .merge(crate::leaks::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::map_response(
            crate::error::problem_for_every_refusal,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(
        serde_json::json!({"status": "ready", "backend": state.store.backend()}),
    ))
}

async fn verify(
    State(state): State<Arc<VerifyApi>>,
    caller: VerifierCaller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let req: VerifyRequest<'_> = body.parse()?;
    let required = required_permissions(req.permissions.as_deref())?;
    // The verifier credential is trusted to name its client's address; without one, the
    // address the verifier itself calls from is used.
    let ip = match &req.ip {
        Some(ip) => Some(client_ip::canonical(ip.trim().parse::<IpAddr>().map_err(
            |_| DomainError::field("INVALID_IP", "ip", "ip must be an IPv4 or IPv6 address"),
        )?)),
        None => caller.ip,
    };
    let asker = Asker::Verifier {
        token: caller.token.token_id,
        workspace: caller.token.workspace_id,
        any_workspace: caller.token.operator,
    };
    let ask = Ask {
        required: &required,
        ip,
        asker,
        count_rate: true,
    };
    let verdict = state.verifier.verify(&req.token, &ask).await?;
    let token = verdict.token.as_deref();
    let mut response = if let (Code::Valid, Some(t)) = (verdict.code, token) {
        // The hot answer: serialised once per cache entry, plus this request's rate state,
        // in one allocation of the exact size (one with room to spare costs a second one on
        // its way into the response body).
        let (mut limit, mut remaining, mut reset) = (
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        let body = match &verdict.rate {
            Some(o) => {
                let per = budget_of(token, o).map(|p| p.as_str().as_bytes());
                let parts: [&[u8]; 10] = [
                    &t.valid_prefix,
                    b",\"rate_limit\":{\"limit\":",
                    limit.format(o.limit).as_bytes(),
                    b",\"remaining\":",
                    remaining.format(o.remaining).as_bytes(),
                    b",\"reset\":",
                    reset.format(o.reset_after_secs()).as_bytes(),
                    if per.is_some() { b",\"per\":\"" } else { b"" },
                    per.unwrap_or_default(),
                    if per.is_some() { b"\"}}" } else { b"}}" },
                ];
                parts.concat()
            }
            None => [&t.valid_prefix[..], b"}"].concat(),
        };
        let json = HeaderValue::from_static("application/json");
        ([(header::CONTENT_TYPE, json)], body).into_response()
    } else {
        let mut res = verifier::response(verdict.code, token.map(|t| &t.compiled));
        if let (Code::InsufficientPermissions, Some(t)) = (verdict.code, token) {
            res.missing_permissions = Some(
                missing_permissions(t, &required)
                    .into_iter()
                    .cloned()
                    .collect(),
            );
        }
        if verdict.code == Code::IpNotAllowed {
            res.refused_by = verdict.ip_level;
            res.message = denial_message(verdict.code, verdict.ip_level);
        }
        res.rate_limit = verdict.rate.as_ref().map(|o| RateLimitState {
            per: budget_of(token, o),
            ..verifier::rate_state(o)
        });
        res.retry_after = verdict.rate.as_ref().and_then(|o| o.retry_after_secs());
        Json(res).into_response()
    };
    if let Some(o) = &verdict.rate {
        let (policy, value) = policy_for(token, o);
        rate_limit_headers(response.headers_mut(), o, policy, value);
    }
    if let Some(t) = token.filter(|_| state.usage.enabled()) {
        state
            .usage
            .record(usage::record(
                state.clock.now(),
                t,
                ip,
                (req.method.as_deref(), req.path.as_deref()),
                verdict.code,
                started.elapsed(),
            ))
            .await;
    }
    Ok(response)
}

fn required_permissions(items: Option<&[Cow<'_, str>]>) -> Result<Vec<Permission>, ApiError> {
    items
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Permission::parse(s.trim()).map_err(|e| {
                ApiError::Invalid(DomainError {
                    field: Some(format!("permissions[{i}]")),
                    ..e
                })
            })
        })
        .collect()
}

async fn not_found() -> ApiError {
    ApiError::RouteNotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
/// One line per request: method, path (never the query or headers), status, latency.
async fn log_request(req: Request, next: Next) -> Response {
    // Cheap clones (reference-counted), so the hot path pays little when DEBUG is off.
    let method = req.method().clone();
    let uri = req.uri().clone();
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let micros = start.elapsed().as_micros() as u64;
    // An invitation link's path is its secret: it is logged without it.
    let path = match uri.path() {
        p if p.starts_with("/ui/invite/") => "/ui/invite/…",
        p => p,
    };
    if status >= 500 {
        tracing::warn!(%method, path, status, micros, "request failed");
    } else {
        tracing::debug!(%method, path, status, micros, "request");
    }
    res
}
