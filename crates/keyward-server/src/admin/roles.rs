//! `/v1/roles`: roles with a kind, a scope and permission patterns, over
//! [`crate::ops::roles`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::{CreateRole, Page, RolePatch};
use keyward_core::Role;

use crate::error::ApiError;
use crate::extract::{path_id, ApiJson, ApiQuery};
use crate::ops::{roles, Caller, PageParams};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/roles", post(create).get(list))
        .route("/v1/roles/{id}", get(show).patch(update).delete(remove))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateRole>,
) -> Result<(StatusCode, Json<Role>), ApiError> {
    let role = roles::create(&state, &caller, &req).await?;
    Ok((StatusCode::CREATED, Json(role)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<Role>>, ApiError> {
    Ok(Json(roles::list(&state, &caller, &q).await?))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Role>, ApiError> {
    Ok(Json(roles::get(&state, &caller, path_id(&id)?).await?))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<RolePatch>,
) -> Result<Response, ApiError> {
    Ok(super::changed(
        roles::update(&state, &caller, path_id(&id)?, &patch).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    roles::delete(&state, &caller, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
