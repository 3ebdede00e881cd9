//! Rotation and bulk revocation, over [`crate::ops::rotation`].
//!
//! - `POST /v1/tokens/{id}/rotate`: a new secret (shown once); the old one keeps working for
//!   the grace period.
//! - `GET /v1/tokens/{id}/family`: every token of the family, oldest first.
//! - `POST /v1/users/{id}/revoke-tokens`: revokes every token of a user at once.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::{RevokedTokens, RotateToken, RotatedToken, TokenView};

use crate::error::ApiError;
use crate::extract::{path_id, ApiJson};
use crate::ops::{rotation, Caller};
use crate::state::AppState;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens/{id}/rotate", post(rotate))
        .route("/v1/tokens/{id}/family", get(family))
        .route("/v1/users/{id}/revoke-tokens", post(revoke_all))
}

async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RotateToken>,
) -> Result<Json<RotatedToken>, ApiError> {
    Ok(Json(
        rotation::rotate(&state, &caller, path_id(&id)?, &req).await?,
    ))
}

async fn family(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(
        rotation::family(&state, &caller, path_id(&id)?).await?,
    ))
}

async fn revoke_all(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RevokedTokens>, ApiError> {
    Ok(Json(
        rotation::revoke_user_tokens(&state, &caller, path_id(&id)?).await?,
    ))
}
