//! `/v1/workspace` (the caller's own) and `/v1/workspaces` (the operator's view of all), over
//! [`crate::ops::workspaces`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use keyward_core::api::{CreateWorkspace, CreatedWorkspace, Page, WorkspacePatch};
use keyward_core::model::Workspace;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery};
use crate::ops::{workspaces, Caller, PageParams};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/workspace", get(show).patch(update))
        .route("/v1/workspaces", get(list).post(create))
}

async fn show(State(state): State<AppState>, caller: Caller) -> Result<Json<Workspace>, ApiError> {
    Ok(Json(workspaces::get(&state, &caller).await?))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(patch): ApiJson<WorkspacePatch>,
) -> Result<Response, ApiError> {
    Ok(super::changed(
        workspaces::update(&state, &caller, &patch).await?,
    ))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateWorkspace>,
) -> Result<(StatusCode, Json<CreatedWorkspace>), ApiError> {
    let created = workspaces::create(&state, &caller, &req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<Workspace>>, ApiError> {
    Ok(Json(workspaces::list(&state, &caller, &q).await?))
}
