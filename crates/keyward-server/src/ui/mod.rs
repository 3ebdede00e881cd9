//! The web dashboard at `/ui`: server-rendered pages (askama templates compiled into the
//! binary), a vendored stylesheet and a small script for conveniences only — every core flow
//! works without JavaScript. It is a front end over the operations layer: a page turns the
//! person's session into a `Caller` and calls the same operation as the JSON API, so
//! authorization, validation, audit, invalidation and events are the API's.
//!
//! Every response carries a strict Content-Security-Policy (no inline script or style, no
//! framing), `Referrer-Policy: no-referrer` and `Cache-Control: no-store`; every state-changing
//! form carries a CSRF token checked against the session (or, before sign-in, a double-submit
//! cookie), and cookies are `HttpOnly; SameSite=Strict`.
//!
//! # Layout
//! - [`page`]: the page chrome, rendering, redirects, cookies and headers.
//! - [`auth`]: the signed-in person extractor and CSRF checks.
//! - [`signin`]: sign-in, second factor, invitations, enrolment, account and sessions.
//! - [`tokens`]: token list, create (pending → "Save token"), detail, revoke.
//! - [`users`]: users, invitations and each user's tokens.
//! - [`roles`]: roles with the permission matrix.
//! - [`audit`]: the audit log.
//! - [`settings`]: the workspace's security settings.
//! - [`webhooks`]: webhook subscriptions and deliveries.
//! - [`activity`]: a token's usage and audit events.
//! - [`approvals`]: the inbox of change requests awaiting a second person's approval.

pub mod activity;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod page;
pub mod roles;
pub mod settings;
pub mod signin;
pub mod tokens;
pub mod users;
pub mod webhooks;

use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/static/app.css", get(css))
        .route("/ui/static/app.js", get(js))
        .merge(signin::routes())
        .merge(tokens::routes())
        .merge(users::routes())
        .merge(roles::routes())
        .merge(audit::routes())
        .merge(settings::routes())
        .merge(webhooks::routes())
        .merge(activity::routes())
        .merge(approvals::routes())
        .layer(middleware::map_response(security_headers))
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn css() -> Response {
    asset(
        include_str!("../../static/app.css"),
        "text/css; charset=utf-8",
    )
}

async fn js() -> Response {
    asset(
        include_str!("../../static/app.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
