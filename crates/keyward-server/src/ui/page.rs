//! What every page shares: the chrome (title, navigation, CSRF token, messages), rendering a
//! template into an HTML response, redirects and cookies.

use askama::Template;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The sections a person's permissions open, for the navigation.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    /// The person's name.
    pub person: String,
    /// `keyward.tokens:read`.
    pub tokens: bool,
    /// `keyward.users:read`.
    pub users: bool,
    /// `keyward.roles:read`.
    pub roles: bool,
    /// `keyward.audit:read`.
    pub audit: bool,
    /// `keyward.workspace:read`.
    pub settings: bool,
    /// `keyward.webhooks:read`.
    pub webhooks: bool,
}

/// The frame of a page.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The page's heading and title.
    pub title: String,
    /// Navigation, once signed in.
    pub nav: Option<Nav>,
    /// The CSRF token for the page's forms.
    pub csrf: String,
    /// A success message.
    pub flash: Option<String>,
    /// An error message for the whole page.
    pub error: Option<String>,
}

impl Chrome {
    /// A page titled `title` with forms carrying `csrf`.
    pub fn new(title: impl Into<String>, csrf: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            csrf: csrf.into(),
            ..Self::default()
        }
    }
}

/// A rendered page with `status`.
pub fn html(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a dashboard page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!doctype html><title>Error</title><h1>Something went wrong</h1>",
            )
                .into_response()
        }
    }
}

/// A 303 to `to`, with cookies to set.
pub fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(to) {
        headers.insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    (StatusCode::SEE_OTHER, headers).into_response()
}

/// Adds `Set-Cookie` headers to a response.
pub fn with_cookies(mut response: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// A page saying one thing.
#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    /// Chrome.
    pub c: Chrome,
    /// The sentence.
    pub message: String,
    /// A link to go on with ("" for none).
    pub link: String,
    /// Its text.
    pub link_text: String,
}

/// A page saying one thing, with `status`.
pub fn message(
    status: StatusCode,
    c: Chrome,
    message: impl Into<String>,
    link: &str,
    text: &str,
) -> Response {
    html(
        status,
        &Message {
            c,
            message: message.into(),
            link: link.into(),
            link_text: text.into(),
        },
    )
}

/// A time as the dashboard shows it (UTC, to the minute).
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// What a page shows of an operation's refusal: the field it names (if any), the sentence,
/// and the status. Internal details never reach the page.
pub fn explain(e: &crate::error::ApiError) -> (Option<String>, String, StatusCode) {
    use crate::error::ApiError as E;
    match e {
        E::Invalid(d) => (
            d.field.clone(),
            d.message.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        E::BadRequest { message, .. } => (None, message.clone(), StatusCode::BAD_REQUEST),
        E::MissingPermission(p) => (
            None,
            format!("You do not have the permission this needs ({p})."),
            StatusCode::FORBIDDEN,
        ),
        E::Forbidden { message, .. } | E::AccessDenied { message, .. } => {
            (None, message.clone(), StatusCode::FORBIDDEN)
        }
        E::ForbiddenField { field, message, .. } => (
            Some((*field).to_owned()),
            message.clone(),
            StatusCode::FORBIDDEN,
        ),
        E::NotFound(what) => (None, format!("No such {what}."), StatusCode::NOT_FOUND),
        E::Conflict { message, .. } => (None, message.clone(), StatusCode::CONFLICT),
        E::RateLimited(..) => (
            None,
            "Too many requests: wait a moment.".into(),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        other => {
            tracing::error!(error = ?other, "dashboard operation failed");
            (
                None,
                "Something went wrong on our side; try again.".into(),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    }
}
