//! Roles: the list, and creating and editing a role with the permission matrix, kind,
//! scope, IP allowlist, rate limit and the "may generate API tokens" switch.

use axum::Router;

use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
}
