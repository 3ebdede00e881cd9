//! `/v1/change-requests`: security changes held for approval, and their approval, rejection
//! and cancellation, over [`crate::ops::change_requests`].

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::Page;
use keyward_core::{ApproveChange, ChangeRequest, DecideChange};

use crate::error::ApiError;
use crate::extract::{path_id, ApiJson, ApiQuery};
use crate::ops::change_requests::{self, ChangeRequestQuery};
use crate::ops::Caller;
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/change-requests", get(list))
        .route("/v1/change-requests/{id}", get(show))
        .route("/v1/change-requests/{id}/approve", post(approve))
        .route("/v1/change-requests/{id}/reject", post(reject))
        .route("/v1/change-requests/{id}/cancel", post(cancel))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ChangeRequestQuery>,
) -> Result<Json<Page<ChangeRequest>>, ApiError> {
    Ok(Json(change_requests::list(&state, &caller, &q).await?))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ChangeRequest>, ApiError> {
    Ok(Json(
        change_requests::get(&state, &caller, path_id(&id)?).await?,
    ))
}

async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApproveChange>,
) -> Result<Json<ChangeRequest>, ApiError> {
    Ok(Json(
        change_requests::approve(&state, &caller, path_id(&id)?, &body).await?,
    ))
}

async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecideChange>,
) -> Result<Json<ChangeRequest>, ApiError> {
    Ok(Json(
        change_requests::reject(&state, &caller, path_id(&id)?, &body).await?,
    ))
}

async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecideChange>,
) -> Result<Json<ChangeRequest>, ApiError> {
    Ok(Json(
        change_requests::cancel(&state, &caller, path_id(&id)?, &body).await?,
    ))
}
