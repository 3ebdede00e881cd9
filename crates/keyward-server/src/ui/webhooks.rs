//! Webhooks: subscriptions, their deliveries, and rotating a signing secret.

use axum::Router;

use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
}
