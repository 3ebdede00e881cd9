//! The API contract: an OpenAPI 3.1 document, served at `GET /openapi.json`, built by
//! `utoipa` from the wire types of `keyward_core` (their `ToSchema` derives) and the path
//! items in [`paths`]. Tests keep it true: every route of the router is documented, and a
//! live server is checked against it (schemathesis in CI).

mod paths;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// `GET /readyz`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
}

pub use crate::leaks::{Label as LeakLabel, Reported as LeakReport};

/// The document's description of authentication: keyward tokens as bearer credentials.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "A keyward token (`kw_…`) whose role holds the permission the operation names",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keyward",
        description = "API access tokens done right: the verify API and the admin API.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        paths::healthz,
        paths::readyz,
        paths::metrics,
        paths::verify,
        paths::forward_auth_get,
        paths::forward_auth_post,
        paths::forward_auth_put,
        paths::forward_auth_patch,
        paths::forward_auth_delete,
        paths::forward_auth_root_get,
        paths::forward_auth_root_post,
        paths::forward_auth_root_put,
        paths::forward_auth_root_patch,
        paths::forward_auth_root_delete,
        paths::forward_auth_prefixed_get,
        paths::forward_auth_prefixed_post,
        paths::forward_auth_prefixed_put,
        paths::forward_auth_prefixed_patch,
        paths::forward_auth_prefixed_delete,
        paths::workspace_show,
        paths::workspace_update,
        paths::workspaces_list,
        paths::workspaces_create,
        paths::users_list,
        paths::users_create,
        paths::users_show,
        paths::users_update,
        paths::users_delete,
        paths::users_revoke_tokens,
        paths::users_invite,
        paths::roles_list,
        paths::roles_create,
        paths::roles_show,
        paths::roles_update,
        paths::roles_delete,
        paths::permissions_list,
        paths::permissions_put,
        paths::permissions_delete,
        paths::tokens_list,
        paths::tokens_create,
        paths::tokens_show,
        paths::tokens_update,
        paths::tokens_delete,
        paths::tokens_activate,
        paths::tokens_revoke,
        paths::tokens_rotate,
        paths::tokens_family,
        paths::tokens_usage,
        paths::tokens_usage_requests,
        paths::audit_list,
        paths::audit_verify,
        paths::audit_verify_checkpoint,
        paths::audit_checkpoint,
        paths::webhooks_list,
        paths::webhooks_create,
        paths::webhooks_show,
        paths::webhooks_update,
        paths::webhooks_delete,
        paths::webhooks_rotate_secret,
        paths::webhooks_deliveries,
        paths::change_requests_list,
        paths::change_requests_show,
        paths::change_requests_approve,
        paths::change_requests_reject,
        paths::change_requests_cancel,
        paths::leaks_github
    ),
    components(schemas(keyward_core::api::Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "verify", description = "Is this request allowed?"),
        (name = "forward-auth", description = "Is the original request a proxy forwards allowed?"),
        (name = "workspace", description = "The workspace and its security settings"),
        (name = "users", description = "Human and service users"),
        (name = "roles", description = "Roles and their permissions"),
        (name = "permissions", description = "The permission catalogue"),
        (name = "tokens", description = "Tokens: lifecycle, rotation, usage"),
        (name = "audit", description = "The audit trail"),
        (name = "webhooks", description = "Event subscriptions"),
        (name = "change-requests", description = "Security changes waiting for another person's approval"),
        (name = "leaks", description = "Leak response"),
        (name = "operations", description = "Health and metrics")
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}

/// `GET /openapi.json`.
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}
