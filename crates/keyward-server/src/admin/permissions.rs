//! `/v1/permissions`: the workspace's permission catalogue, over [`crate::ops::permissions`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use keyward_core::api::{Page, PutPermission};
use keyward_core::CatalogueEntry;

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::ops::{permissions, Caller};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/permissions", get(list))
        .route("/v1/permissions/{permission}", put(upsert).delete(remove))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Page<CatalogueEntry>>, ApiError> {
    Ok(Json(permissions::list(&state, &caller).await?))
}

/// 201 for a new permission, 200 for a new description of one already there.
async fn upsert(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    ApiJson(req): ApiJson<PutPermission>,
) -> Result<(StatusCode, Json<CatalogueEntry>), ApiError> {
    let p = permissions::parse_name(&raw)?;
    let put = permissions::put(&state, &caller, &p, &req).await?;
    let status = if put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(put.entry)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let p = permissions::parse_name(&raw)?;
    permissions::delete(&state, &caller, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}
