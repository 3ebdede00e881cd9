//! Getting in and looking after one's own account: sign-in, the second factor, invitations,
//! TOTP enrolment with the shown-once recovery codes, the account page with the person's
//! sessions, and sign-out.

use askama::Template;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine;
use keyward_core::WorkspaceId;
use keyward_store::SessionStage;
use serde::Deserialize;

use super::auth::{cookie, csrf_refusal, origin, AnySession, Person};
use super::page::{html, message, redirect, when, with_cookies, Chrome};
use crate::people::signin::{self as flows, SignInError};
use crate::people::{guard, session, twofactor};
use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(home))
        .route("/ui/sign-in", get(sign_in_page).post(sign_in))
        .route("/ui/sign-in/code", get(code_page).post(code))
        .route("/ui/invite/{secret}", get(invite_page).post(invite))
        .route("/ui/account", get(account))
        .route("/ui/account/2fa", get(enrol_page).post(enrol))
        .route("/ui/account/2fa/skip", post(skip))
        .route("/ui/account/2fa/disable", post(disable))
        .route("/ui/account/recovery-codes", post(regenerate))
        .route("/ui/account/sessions/{id}/end", post(end_session))
        .route("/ui/sign-out", post(sign_out))
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    c: Chrome,
    workspace: String,
    may_create_tokens: bool,
}

async fn home(person: Person) -> Response {
    html(
        StatusCode::OK,
        &Home {
            c: person.chrome("Overview"),
            workspace: person.signed.workspace.name.clone(),
            may_create_tokens: person.may("keyward.tokens:create"),
        },
    )
}

/// The pre-session cookie (double-submit CSRF for forms shown before sign-in): the one the
/// browser has, or a new one to set.
fn pre_token(parts: &axum::http::request::Parts, state: &AppState) -> (String, Vec<String>) {
    let secure = state.people.secure();
    let name = session::pre_cookie_name(secure);
    match cookie(parts, name) {
        Some(v) if v.len() >= 32 => (v.to_owned(), vec![]),
        _ => {
            let v = session::new_secret();
            let set = session::set_cookie(name, &v, secure, None);
            (v, vec![set])
        }
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    c: Chrome,
    email: String,
    workspaces: Vec<(WorkspaceId, String)>,
}

async fn sign_in_page(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    if AnySession::from_request_parts(&mut parts, &state)
        .await
        .is_ok()
    {
        return redirect("/ui", &[]);
    }
    let (csrf, set) = pre_token(&parts, &state);
    let page = SignInPage {
        c: Chrome::new("Sign in", csrf),
        email: String::new(),
        workspaces: vec![],
    };
    with_cookies(html(StatusCode::OK, &page), &set)
}

#[derive(Deserialize)]
struct SignInForm {
    csrf: String,
    email: String,
    password: String,
    workspace: Option<String>,
}

fn session_cookies(state: &AppState, started: &flows::Started, full: bool) -> Vec<String> {
    let secure = state.people.secure();
    let mut cookies = vec![session::set_cookie(
        session::cookie_name(secure),
        &started.secret,
        secure,
        None,
    )];
    if full {
        cookies.push(device_cookie(state, started.session.user_id));
    }
    cookies
}

fn device_cookie(state: &AppState, user: keyward_core::UserId) -> String {
    let secure = state.people.secure();
    session::set_cookie(
        session::device_cookie_name(secure),
        &state.people.guard.device_cookie(user),
        secure,
        Some(guard::DEVICE_COOKIE_SECS),
    )
}

fn next_page(stage: SessionStage) -> &'static str {
    match stage {
        SessionStage::Full => "/ui",
        SessionStage::SecondFactor => "/ui/sign-in/code",
        SessionStage::MustEnrol => "/ui/account/2fa",
    }
}

fn status_of(e: &SignInError) -> StatusCode {
    match e {
        SignInError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        SignInError::IpNotAllowed => StatusCode::FORBIDDEN,
        SignInError::Server(_) => StatusCode::SERVICE_UNAVAILABLE,
        SignInError::BadCredentials | SignInError::BadCode => StatusCode::UNAUTHORIZED,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

async fn sign_in(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let (csrf, _) = pre_token(&parts, &state);
    let Ok(Form(form)) =
        Form::<SignInForm>::from_request(Request::from_parts(parts.clone(), body), &state).await
    else {
        return redirect("/ui/sign-in", &[]);
    };
    if let Some(r) = csrf_refusal(&csrf, &form.csrf) {
        return r;
    }
    let origin = origin(&parts, &state);
    let chosen = form.workspace.as_deref().and_then(|w| w.parse().ok());
    match flows::sign_in(&state, &form.email, &form.password, chosen, &origin).await {
        Ok(started) => {
            let full = started.session.stage == SessionStage::Full;
            redirect(
                next_page(started.session.stage),
                &session_cookies(&state, &started, full),
            )
        }
        Err(e) => {
            if let SignInError::Server(err) = &e {
                tracing::error!(error = ?err, "sign-in");
            }
            let mut c = Chrome::new("Sign in", csrf);
            c.error = Some(e.message());
            let workspaces = match e {
                SignInError::ChooseWorkspace(ref w) => w.clone(),
                _ => vec![],
            };
            let page = SignInPage {
                c,
                email: form.email,
                workspaces,
            };
            html(status_of(&e), &page)
        }
    }
}

use axum::extract::FromRequest;

#[derive(Template)]
#[template(path = "second_factor.html")]
struct CodePage {
    c: Chrome,
}

async fn code_page(any: AnySession) -> Response {
    if any.signed.session.stage != SessionStage::SecondFactor {
        return redirect(next_page(any.signed.session.stage), &[]);
    }
    html(
        StatusCode::OK,
        &CodePage {
            c: Chrome::new("Two-factor code", any.csrf),
        },
    )
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
    code: String,
}

async fn code(
    State(state): State<AppState>,
    any: AnySession,
    Form(form): Form<CodeForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&any.csrf, &form.csrf) {
        return r;
    }
    if any.signed.session.stage != SessionStage::SecondFactor {
        return redirect(next_page(any.signed.session.stage), &[]);
    }
    match flows::second_factor(&state, &any.signed, &form.code, &any.origin).await {
        Ok(stage) => redirect(
            next_page(stage),
            &[device_cookie(&state, any.signed.user.id)],
        ),
        Err(e) => {
            let mut c = Chrome::new("Two-factor code", any.csrf);
            c.error = Some(e.message());
            html(status_of(&e), &CodePage { c })
        }
    }
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    c: Chrome,
    name: String,
    secret: String,
    field: String,
    field_error: String,
}

async fn invite_valid(state: &AppState, secret: &str) -> Option<String> {
    let inv = state
        .store
        .invitation(&session::hash(secret))
        .await
        .ok()
        .flatten()
        .filter(|i| i.used_at.is_none() && i.expires_at > state.now())?;
    let user = state
        .store
        .user(inv.workspace_id, inv.user_id)
        .await
        .ok()
        .flatten()?;
    Some(user.name)
}

fn invalid_invitation() -> Response {
    message(
        StatusCode::NOT_FOUND,
        Chrome::new("Invitation not valid", ""),
        SignInError::InvitationInvalid.message(),
        "/ui/sign-in",
        "Sign in",
    )
}

async fn invite_page(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    let Some(name) = invite_valid(&state, &secret).await else {
        return invalid_invitation();
    };
    let (csrf, set) = pre_token(&parts, &state);
    let page = InvitePage {
        c: Chrome::new("Set your password", csrf),
        name,
        secret,
        field: String::new(),
        field_error: String::new(),
    };
    with_cookies(html(StatusCode::OK, &page), &set)
}

#[derive(Deserialize)]
struct InviteForm {
    csrf: String,
    password: String,
    confirm: String,
}

async fn invite(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let (csrf, _) = pre_token(&parts, &state);
    let Ok(Form(form)) =
        Form::<InviteForm>::from_request(Request::from_parts(parts.clone(), body), &state).await
    else {
        return redirect(&format!("/ui/invite/{secret}"), &[]);
    };
    if let Some(r) = csrf_refusal(&csrf, &form.csrf) {
        return r;
    }
    let origin = origin(&parts, &state);
    match twofactor::accept_invitation(&state, &secret, &form.password, &form.confirm, &origin)
        .await
    {
        Ok(started) => redirect("/ui/account/2fa", &session_cookies(&state, &started, false)),
        Err(SignInError::InvitationInvalid) => invalid_invitation(),
        Err(e) => {
            let name = invite_valid(&state, &secret).await.unwrap_or_default();
            let (field, field_error) = match &e {
                SignInError::Invalid(d) => (d.field.clone().unwrap_or_default(), d.message.clone()),
                _ => (String::new(), String::new()),
            };
            let mut c = Chrome::new("Set your password", csrf);
            c.error = Some(e.message());
            html(
                status_of(&e),
                &InvitePage {
                    c,
                    name,
                    secret,
                    field,
                    field_error,
                },
            )
        }
    }
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage {
    c: Chrome,
    secret: String,
    qr_base64: String,
    may_skip: bool,
}

async fn enrol_page(State(state): State<AppState>, any: AnySession) -> Response {
    let stage = any.signed.session.stage;
    if stage == SessionStage::SecondFactor {
        return redirect(next_page(stage), &[]);
    }
    render_enrol(&state, &any, None).await
}

async fn render_enrol(state: &AppState, any: &AnySession, error: Option<String>) -> Response {
    match twofactor::begin(state, &any.signed, &any.origin).await {
        Ok(e) => {
            let mut c = Chrome::new("Set up two-factor authentication", any.csrf.clone());
            c.error = error.clone();
            let page = EnrolPage {
                c,
                qr_base64: base64::engine::general_purpose::STANDARD.encode(e.qr_svg.as_bytes()),
                secret: e.secret,
                may_skip: !any.signed.workspace.settings.require_2fa,
            };
            let status = if error.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            html(status, &page)
        }
        Err(e) => message(
            status_of(&e),
            Chrome::new("Two-factor authentication", any.csrf.clone()),
            e.message(),
            "/ui/account",
            "Your account",
        ),
    }
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct CodesPage {
    c: Chrome,
    codes: Vec<String>,
}

async fn enrol(
    State(state): State<AppState>,
    any: AnySession,
    Form(form): Form<CodeForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&any.csrf, &form.csrf) {
        return r;
    }
    if any.signed.session.stage == SessionStage::SecondFactor {
        return redirect("/ui/sign-in/code", &[]);
    }
    match twofactor::confirm(&state, &any.signed, &form.code, &any.origin).await {
        Ok(codes) => with_cookies(
            html(
                StatusCode::OK,
                &CodesPage {
                    c: Chrome::new("Your recovery codes", any.csrf.clone()),
                    codes,
                },
            ),
            &[device_cookie(&state, any.signed.user.id)],
        ),
        Err(e) => render_enrol(&state, &any, Some(e.message())).await,
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn skip(
    State(state): State<AppState>,
    any: AnySession,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&any.csrf, &form.csrf) {
        return r;
    }
    if any.signed.session.stage == SessionStage::SecondFactor {
        return redirect("/ui/sign-in/code", &[]);
    }
    match twofactor::skip(&state, &any.signed).await {
        Ok(true) => redirect("/ui", &[device_cookie(&state, any.signed.user.id)]),
        _ => redirect("/ui/account/2fa", &[]),
    }
}

struct SessionRow {
    id: String,
    created: String,
    seen: String,
    ip: String,
    agent: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    c: Chrome,
    name: String,
    email: String,
    workspace: String,
    has_2fa: bool,
    require_2fa: bool,
    codes_left: u32,
    sessions: Vec<SessionRow>,
}

async fn account(State(state): State<AppState>, person: Person) -> Response {
    account_page(&state, &person, None, None).await
}

async fn account_page(
    state: &AppState,
    person: &Person,
    flash: Option<String>,
    error: Option<String>,
) -> Response {
    let s = &person.signed;
    let sessions = state
        .store
        .list_sessions(s.workspace.id, s.user.id)
        .await
        .unwrap_or_default();
    let codes_left = state
        .store
        .recovery_codes_left(s.workspace.id, s.user.id)
        .await
        .unwrap_or(0);
    let mut c = person.chrome("Your account");
    c.flash = flash;
    c.error = error;
    let page = AccountPage {
        c,
        name: s.user.name.clone(),
        email: s.user.email.clone().unwrap_or_default(),
        workspace: s.workspace.name.clone(),
        has_2fa: s.credentials.has_2fa(),
        require_2fa: s.workspace.settings.require_2fa,
        codes_left,
        sessions: sessions
            .into_iter()
            .map(|x| SessionRow {
                current: x.hash == s.session.hash,
                created: when(x.created_at),
                seen: when(x.last_seen_at),
                ip: x.ip.unwrap_or_default(),
                agent: x.user_agent.unwrap_or_default(),
                id: x.hash,
            })
            .collect(),
    };
    html(StatusCode::OK, &page)
}

async fn end_session(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    match flows::end_session(&state, &person.signed, &id, person.origin.ip).await {
        Ok(true) => account_page(&state, &person, Some("Session ended.".into()), None).await,
        _ => account_page(&state, &person, None, Some("No such session.".into())).await,
    }
}

async fn regenerate(
    State(state): State<AppState>,
    person: Person,
    Form(form): Form<CodeForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    match twofactor::regenerate_codes(&state, &person.signed, &form.code, &person.origin).await {
        Ok(codes) => html(
            StatusCode::OK,
            &CodesPage {
                c: person.chrome("Your new recovery codes"),
                codes,
            },
        ),
        Err(e) => account_refusal(&state, &person, &e).await,
    }
}

/// The account page again, with a refused step's message and status.
async fn account_refusal(state: &AppState, person: &Person, e: &SignInError) -> Response {
    let mut page = account_page(state, person, None, Some(e.message())).await;
    *page.status_mut() = status_of(e);
    page
}

async fn disable(
    State(state): State<AppState>,
    person: Person,
    Form(form): Form<CodeForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    match twofactor::disable(&state, &person.signed, &form.code, &person.origin).await {
        Ok(()) => redirect("/ui/account", &[]),
        Err(e) => account_refusal(&state, &person, &e).await,
    }
}

async fn sign_out(
    State(state): State<AppState>,
    any: AnySession,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&any.csrf, &form.csrf) {
        return r;
    }
    let _ = flows::sign_out(&state, &any.signed, any.origin.ip).await;
    let secure = state.people.secure();
    redirect(
        "/ui/sign-in",
        &[session::set_cookie(
            session::cookie_name(secure),
            "",
            secure,
            Some(0),
        )],
    )
}
