//! `GET /v1/tokens/{id}/usage`: a token's verified requests over a time range, and
//! `GET /v1/tokens/{id}/usage/requests`: its per-request log, over [`crate::ops::usage`].

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use keyward_core::usage::{RequestLog, UsageReport};

use crate::error::ApiError;
use crate::extract::{path_id, ApiQuery};
use crate::ops::usage::{self, RequestLogParams, UsageParams};
use crate::ops::Caller;
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens/{id}/usage", get(report))
        .route("/v1/tokens/{id}/usage/requests", get(requests))
}

async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> Result<Json<UsageReport>, ApiError> {
    Ok(Json(
        usage::report(&state, &caller, path_id(&id)?, &params).await?,
    ))
}

async fn requests(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<RequestLogParams>,
) -> Result<Json<RequestLog>, ApiError> {
    Ok(Json(
        usage::requests(&state, &caller, path_id(&id)?, &params).await?,
    ))
}
