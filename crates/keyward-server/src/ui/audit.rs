//! The audit log: filters, export, and the chain check.

use axum::Router;

use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
}
