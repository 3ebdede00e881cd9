//! Who is asking: the signed-in person (a session cookie checked afresh on every request and
//! turned into the operations layer's `Caller`), or a session part-way through sign-in; and
//! the CSRF checks of forms.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use keyward_store::SessionStage;

use super::page::{message, redirect, Chrome, Nav};
use crate::client_ip::client_ip;
use crate::ops::Caller;
use crate::people::session;
use crate::people::signin::{check_session, Origin, SessionRefusal, Signed};
use crate::state::AppState;

/// The request's client address and browser facts.
pub fn origin(parts: &Parts, state: &AppState) -> Origin {
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .and_then(|c| client_ip(c.0, &parts.headers, &state.trusted_proxies));
    let secure = state.people.secure();
    Origin {
        ip,
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        device: cookie(parts, session::device_cookie_name(secure)).map(str::to_owned),
    }
}

/// One cookie of the request.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::read_cookie(h, name))
}

/// Refuses a state-changing request a browser marks as coming from another site, whatever
/// token it carries (defence in depth behind `SameSite=Strict` and the CSRF token).
fn cross_site(parts: &Parts) -> bool {
    let site = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    parts.method != axum::http::Method::GET && site == Some("cross-site")
}

/// A refused form: the CSRF token is missing or wrong.
pub fn csrf_refused() -> Response {
    message(
        StatusCode::FORBIDDEN,
        Chrome::new("Form expired", ""),
        "This form was not sent from this dashboard session (CSRF check failed). Reload the page and try again.",
        "/ui",
        "Back to the dashboard",
    )
}

/// The refusal of a form whose CSRF field does not match the expected token, if it does not.
pub fn csrf_refusal(expected: &str, given: &str) -> Option<Response> {
    let fine = !expected.is_empty() && session::same(expected, given);
    (!fine).then(csrf_refused)
}

/// A session at any stage of sign-in.
pub struct AnySession {
    /// The session with its person and workspace.
    pub signed: Signed,
    /// The CSRF token of its forms.
    pub csrf: String,
    /// Where the request comes from.
    pub origin: Origin,
}

fn refusal_page(r: SessionRefusal) -> Response {
    match r {
        SessionRefusal::SignedOut => redirect("/ui/sign-in", &[]),
        SessionRefusal::IpNotAllowed => message(
            StatusCode::FORBIDDEN,
            Chrome::new("Not from this network", ""),
            "Your workspace's IP allowlist does not include the address you are using, and it applies to the dashboard too.",
            "",
            "",
        ),
        SessionRefusal::Server(e) => {
            tracing::error!(error = ?e, "checking a dashboard session");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                Chrome::new("Unavailable", ""),
                "keyward cannot check your session right now; try again shortly.",
                "",
                "",
            )
        }
    }
}

impl FromRequestParts<AppState> for AnySession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if cross_site(parts) {
            return Err(csrf_refused());
        }
        let origin = origin(parts, state);
        let name = session::cookie_name(state.people.secure());
        let Some(secret) = cookie(parts, name) else {
            return Err(redirect("/ui/sign-in", &[]));
        };
        let signed = check_session(state, secret, origin.ip)
            .await
            .map_err(refusal_page)?;
        Ok(AnySession {
            csrf: session::csrf_token(secret),
            signed,
            origin,
        })
    }
}

/// A fully signed-in person, as the operations layer's caller.
pub struct Person {
    /// The principal every operation is asked with.
    pub caller: Caller,
    /// The session.
    pub signed: Signed,
    /// The CSRF token of its forms.
    pub csrf: String,
    /// Where the request comes from.
    pub origin: Origin,
    /// The sections the person may use.
    pub nav: Nav,
}

impl Person {
    /// The chrome of a page for this person.
    pub fn chrome(&self, title: impl Into<String>) -> Chrome {
        Chrome {
            nav: Some(self.nav.clone()),
            ..Chrome::new(title, self.csrf.clone())
        }
    }

    /// Whether the person holds `permission`.
    pub fn may(&self, permission: &str) -> bool {
        self.caller.holds(permission)
    }

    /// The page of an operation's refusal (its sentence and status), with a link back.
    pub fn refused(&self, e: &crate::error::ApiError, back: &str, back_text: &str) -> Response {
        let (_, text, status) = super::page::explain(e);
        message(status, self.chrome("Not possible"), text, back, back_text)
    }
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let any = AnySession::from_request_parts(parts, state).await?;
        match any.signed.session.stage {
            SessionStage::Full => {}
            SessionStage::SecondFactor => return Err(redirect("/ui/sign-in/code", &[])),
            SessionStage::MustEnrol => return Err(redirect("/ui/account/2fa", &[])),
        }
        let s = &any.signed;
        let server = |e: keyward_store::StoreError| {
            tracing::error!(error = %e, "loading a person's role");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        };
        let role = match s.user.role_id {
            Some(id) => state.store.role(s.workspace.id, id).await.map_err(server)?,
            None => None,
        };
        let catalogue = keyward_store::traits::full_catalogue(
            state
                .store
                .catalogue(s.workspace.id)
                .await
                .map_err(server)?,
        );
        let caller = Caller::person(
            &s.user,
            role.as_ref(),
            &s.workspace,
            &catalogue,
            any.origin.ip,
            state.denials.clone(),
        );
        let nav = Nav {
            person: s.user.name.clone(),
            tokens: caller.holds("keyward.tokens:read"),
            users: caller.holds("keyward.users:read"),
            roles: caller.holds("keyward.roles:read"),
            // The audit log is a workspace-wide view: it needs workspace scope too.
            audit: caller.holds("keyward.audit:read")
                && caller.scope() == keyward_core::model::Scope::Workspace,
            settings: caller.holds("keyward.workspace:read"),
            webhooks: caller.holds("keyward.webhooks:read"),
        };
        Ok(Person {
            caller,
            signed: any.signed,
            csrf: any.csrf,
            origin: any.origin,
            nav,
        })
    }
}

/// The client address of a request, for pages before sign-in.
pub fn ip_of(parts: &Parts, state: &AppState) -> Option<IpAddr> {
    origin(parts, state).ip
}
