//! `/v1/audit`: the workspace's audit trail, filtered and paged; the check of its keyed hash
//! chain (`GET /v1/audit/verify`, or `POST` with a checkpoint to check against); and signed
//! checkpoints of its head (`GET /v1/audit/checkpoint`); over [`crate::ops::audit`].

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use keyward_core::api::Page;
use keyward_core::audit::{AuditEventView, AuditQuery, AuditVerification, Checkpoint};

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::ops::{audit, Caller};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/audit", get(list))
        .route("/v1/audit/verify", get(verify).post(verify_checkpoint))
        .route("/v1/audit/checkpoint", get(checkpoint))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEventView>>, ApiError> {
    Ok(Json(audit::list(&state, &caller, &q).await?))
}

async fn verify(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AuditVerification>, ApiError> {
    Ok(Json(audit::verify(&state, &caller).await?))
}

async fn verify_checkpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(cp): ApiJson<Checkpoint>,
) -> Result<Json<AuditVerification>, ApiError> {
    Ok(Json(audit::verify_checkpoint(&state, &caller, &cp).await?))
}

async fn checkpoint(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Checkpoint>, ApiError> {
    Ok(Json(audit::checkpoint(&state, &caller).await?))
}
