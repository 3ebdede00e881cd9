//! Users: the list, creating human and service users, disabling and enabling them,
//! invitations, and per user the seeds' *Actions → API token* menu (generate, list, revoke).

use axum::Router;

use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
}
