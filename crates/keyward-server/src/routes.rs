//! The router: health, the verify API, the admin API, and problem+json for unknown routes.

use std::borrow::Cow;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::VerifyRequest;
use keyward_core::decision::missing_permissions;
use keyward_core::permission::Permission;
use keyward_core::{Code, DomainError};

use crate::admin;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;
use crate::verifier;

/// Largest accepted request body.
const BODY_LIMIT: usize = 64 * 1024;

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/verify", post(verify))
        .merge(admin::workspaces::routes())
        .merge(admin::users::routes())
        .merge(admin::roles::routes())
        .merge(admin::permissions::routes())
        .merge(admin::tokens::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
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

async fn verify(State(state): State<AppState>, body: JsonBody) -> Result<Response, ApiError> {
    let req: VerifyRequest<'_> = body.parse()?;
    let required = required_permissions(req.permissions.as_deref())?;
    if let Some(ip) = &req.ip {
        ip.trim().parse::<std::net::IpAddr>().map_err(|_| {
            DomainError::field("INVALID_IP", "ip", "ip must be an IPv4 or IPv6 address")
        })?;
    }
    let verdict = state.verifier.verify(&req.token, &required).await?;
    let token = verdict.token.as_deref();
    if let (Code::Valid, Some(t)) = (verdict.code, token) {
        // The hot answer: serialised once per cache entry.
        let json = HeaderValue::from_static("application/json");
        return Ok(([(header::CONTENT_TYPE, json)], t.valid_body.clone()).into_response());
    }
    let mut res = verifier::response(verdict.code, token.map(|t| &t.compiled));
    if let (Code::InsufficientPermissions, Some(t)) = (verdict.code, token) {
        res.missing_permissions = Some(
            missing_permissions(t, &required)
                .into_iter()
                .cloned()
                .collect(),
        );
    }
    Ok(Json(res).into_response())
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
    let path = uri.path();
    if status >= 500 {
        tracing::warn!(%method, path, status, micros, "request failed");
    } else {
        tracing::debug!(%method, path, status, micros, "request");
    }
    res
}
