//! A token's activity: usage over time, top addresses and endpoints, decision codes, and its
//! audit events.

use axum::Router;

use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
}
