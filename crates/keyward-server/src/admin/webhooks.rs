//! `/v1/webhooks`: webhook subscriptions of the caller's workspace and each one's delivery
//! log, over [`crate::ops::webhooks`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::Page;
use keyward_core::events::{
    CreateWebhook, CreatedWebhook, DeliveryAttempt, WebhookPatch, WebhookView,
};

use crate::error::ApiError;
use crate::extract::{path_id, ApiJson, ApiQuery};
use crate::ops::{webhooks, Caller, PageParams};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks", post(create).get(list))
        .route("/v1/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/v1/webhooks/{id}/rotate-secret", post(rotate))
        .route("/v1/webhooks/{id}/deliveries", get(deliveries))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let created = webhooks::create(&state, &caller, &req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<WebhookView>>, ApiError> {
    Ok(Json(webhooks::list(&state, &caller, &q).await?))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(webhooks::get(&state, &caller, path_id(&id)?).await?))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(
        webhooks::update(&state, &caller, path_id(&id)?, &patch).await?,
    ))
}

async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CreatedWebhook>, ApiError> {
    Ok(Json(
        webhooks::rotate_secret(&state, &caller, path_id(&id)?).await?,
    ))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    webhooks::delete(&state, &caller, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<DeliveryAttempt>>, ApiError> {
    Ok(Json(
        webhooks::deliveries(&state, &caller, path_id(&id)?, &q).await?,
    ))
}
