//! `GET /v1/tokens/{id}/usage`: a token's verified requests over a time range, over
//! [`crate::ops::usage`].

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use keyward_core::usage::UsageReport;

use crate::error::ApiError;
use crate::extract::{path_id, ApiQuery};
use crate::ops::usage::{self, UsageParams};
use crate::ops::Caller;
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/tokens/{id}/usage", get(report))
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
