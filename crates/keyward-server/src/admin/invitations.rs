//! `POST /v1/users/{id}/invitations`: a one-time link with which a human user sets their
//! password (and then enrols two-factor authentication) in the dashboard.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use keyward_core::api::CreatedInvitation;
use keyward_core::UserId;

use crate::error::ApiError;
use crate::extract::path_id;
use crate::ops::Caller;
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/users/{id}/invitations", post(create))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CreatedInvitation>), ApiError> {
    let id: UserId = path_id(&id)?;
    let created = crate::people::invite::create(&state, &caller, id).await?;
    Ok((StatusCode::CREATED, Json(created)))
}
