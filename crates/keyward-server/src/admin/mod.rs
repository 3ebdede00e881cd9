//! The admin REST API: a thin JSON front end over [`crate::ops`], one module per resource.
//!
//! A handler extracts the caller (a keyward token that passed the decision, [`Caller`]), the
//! JSON body or query string and the path ids (parsed with [`crate::extract::path_id`], so a
//! malformed one is a 422 naming `id`), calls the operation, and answers its result with the
//! status code of the route. Authorization, validation, delegation checks, the audit trail,
//! cache invalidation and events are all the operation's, so the dashboard gets the same.
//!
//! [`Caller`]: crate::ops::Caller

pub mod audit;
pub mod change_requests;
pub mod invitations;
pub mod permissions;
pub mod roles;
pub mod rotation;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod webhooks;
pub mod workspaces;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::ops::change_requests::Outcome;

/// An update's answer: 200 with the changed object, or 202 with the change request that holds
/// it for approval.
pub(crate) fn changed<T: serde::Serialize>(outcome: Outcome<T>) -> Response {
    match outcome {
        Outcome::Applied(v) => Json(v).into_response(),
        Outcome::Pending(r) => (StatusCode::ACCEPTED, Json(*r)).into_response(),
    }
}
