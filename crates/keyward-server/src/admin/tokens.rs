//! `/v1/tokens`: create (the only answer with the secret), list, get, update, activate,
//! revoke, delete; over [`crate::ops::tokens`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::{CreateToken, CreatedToken, Page, TokenPatch, TokenView};

use crate::error::ApiError;
use crate::extract::{path_id, ApiJson, ApiQuery};
use crate::ops::tokens::{self, TokenQuery};
use crate::ops::Caller;
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", post(create).get(list))
        .route("/v1/tokens/{id}", get(show).patch(update).delete(remove))
        .route("/v1/tokens/{id}/activate", post(activate))
        .route("/v1/tokens/{id}/revoke", post(revoke))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let created = tokens::create(&state, &caller, &req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> Result<Json<Page<TokenView>>, ApiError> {
    Ok(Json(tokens::list(&state, &caller, &q).await?))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(tokens::get(&state, &caller, path_id(&id)?).await?))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<TokenPatch>,
) -> Result<Response, ApiError> {
    Ok(super::changed(
        tokens::update(&state, &caller, path_id(&id)?, &patch).await?,
    ))
}

async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(
        tokens::activate(&state, &caller, path_id(&id)?).await?,
    ))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(tokens::revoke(&state, &caller, path_id(&id)?).await?))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tokens::delete(&state, &caller, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
