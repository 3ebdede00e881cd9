//! The router: health, the verify API, the admin API, and problem+json for unknown routes.

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::{OwnerRef, RoleRef, VerifyRequest, VerifyResponse};
use keyward_core::decision::missing_permissions;
use keyward_core::permission::Permission;
use keyward_core::{Code, DomainError};

use crate::admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

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

async fn verify(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let required = required_permissions(req.permissions.as_deref())?;
    if let Some(ip) = &req.ip {
        ip.trim().parse::<std::net::IpAddr>().map_err(|_| {
            DomainError::field("INVALID_IP", "ip", "ip must be an IPv4 or IPv6 address")
        })?;
    }
    let verdict = state.verifier.verify(&req.token, &required).await?;
    let mut res = VerifyResponse {
        valid: verdict.code == Code::Valid,
        code: verdict.code,
        message: verdict.code.message().to_owned(),
        token_id: None,
        workspace_id: None,
        name: None,
        owner: None,
        role: None,
        scope: None,
        permissions: None,
        missing_permissions: None,
        metadata: None,
        expires_at: None,
    };
    if let Some(t) = &verdict.token {
        res.token_id = Some(t.token_id);
        if verdict.code == Code::InsufficientPermissions {
            res.missing_permissions = Some(
                missing_permissions(t, &required)
                    .into_iter()
                    .cloned()
                    .collect(),
            );
        }
        if res.valid {
            res.workspace_id = Some(t.workspace_id);
            res.name = Some(t.name.clone());
            res.owner = Some(OwnerRef {
                id: t.owner_id,
                kind: t.owner_kind,
            });
            res.role = t.role.as_ref().map(|r| RoleRef {
                id: r.id,
                name: r.name.clone(),
            });
            res.scope = Some(t.scope());
            res.permissions = Some(t.effective.clone());
            res.metadata = Some(t.metadata.clone());
            res.expires_at = t.expires_at;
        }
    }
    Ok(Json(res))
}

fn required_permissions(items: Option<&[String]>) -> Result<Vec<Permission>, ApiError> {
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
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let micros = start.elapsed().as_micros() as u64;
    if status >= 500 {
        tracing::warn!(%method, %path, status, micros, "request failed");
    } else {
        tracing::debug!(%method, %path, status, micros, "request");
    }
    res
}
