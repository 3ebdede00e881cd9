//! Tokens in the dashboard: the list, the create form (the token is created pending and
//! becomes usable only when the person presses "Save token"; the secret is shown once, in the
//! dialog), a token's page (linking its activity), revocation, rotation (the new secret shown
//! once) and deleting a revoked or expired token. Every action is the operations layer's,
//! with the person as the caller.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{NaiveDate, TimeZone, Utc};
use keyward_core::api::{CreateToken, IpListInput, RotateToken, TokenView};
use keyward_core::model::{RoleKind, UserKind};
use keyward_core::{RoleId, TokenId, UserId};

use super::auth::{csrf_refusal, Person};
use super::page::{explain, html, message, redirect, when, Chrome};
use crate::ops;
use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/tokens", get(list))
        .route("/ui/tokens/new", get(new_page).post(create))
        .route("/ui/tokens/{id}", get(show))
        .route("/ui/tokens/{id}/activate", post(activate))
        .route("/ui/tokens/{id}/revoke", post(revoke))
        .route("/ui/tokens/{id}/rotate", post(rotate))
        .route("/ui/tokens/{id}/delete", post(delete))
        .route("/ui/tokens/{id}/request-log", post(request_log))
}

fn refused(person: &Person, e: &crate::error::ApiError) -> Response {
    person.refused(e, "/ui", "Back to the overview")
}

struct Row {
    id: String,
    name: String,
    start: String,
    status: String,
    owner: String,
    expires: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<Row>,
    may_create: bool,
}

/// A token's shown status as the API spells it (`active`, `pending`, `revoked`, `expired`).
pub(super) fn status_word(t: &TokenView) -> String {
    serde_json::to_value(t.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn list(State(state): State<AppState>, person: Person) -> Response {
    let q = ops::tokens::TokenQuery {
        limit: Some(200),
        ..Default::default()
    };
    let page = match ops::tokens::list(&state, &person.caller, &q).await {
        Ok(p) => p,
        Err(e) => return refused(&person, &e),
    };
    let names = owner_names(&state, &person).await;
    let rows = page
        .items
        .iter()
        .map(|t| Row {
            id: t.id.to_string(),
            name: t.name.clone(),
            start: t.start.clone(),
            status: status_word(t),
            owner: names
                .iter()
                .find(|(id, _)| *id == t.owner_id)
                .map_or_else(|| t.owner_id.to_string(), |(_, n)| n.clone()),
            expires: t.expires_at.map(when).unwrap_or_else(|| "never".into()),
            last_used: t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
        })
        .collect();
    html(
        StatusCode::OK,
        &ListPage {
            c: person.chrome("Tokens"),
            rows,
            may_create: person.may("keyward.tokens:create"),
        },
    )
}

/// The users the person may name as owners: all of the workspace's when they may read
/// users, else only themselves.
async fn owner_names(state: &AppState, person: &Person) -> Vec<(UserId, String)> {
    let me = (person.signed.user.id, person.signed.user.name.clone());
    if !person.may("keyward.users:read") {
        return vec![me];
    }
    let q = ops::users::UserQuery {
        limit: Some(200),
        ..Default::default()
    };
    match ops::users::list(state, &person.caller, &q).await {
        Ok(p) => p
            .items
            .into_iter()
            .map(|u| {
                let kind = if u.kind == UserKind::Service {
                    " (service)"
                } else {
                    ""
                };
                (u.id, format!("{}{kind}", u.name))
            })
            .collect(),
        Err(_) => vec![me],
    }
}

/// The values of the create form, kept to show it again with its errors.
#[derive(Debug, Default, Clone)]
struct Draft {
    name: String,
    owner: String,
    role: String,
    permissions: Vec<String>,
    expires: String,
    not_before: String,
    ips: String,
    internal_only: bool,
    request_log: bool,
    rate_limit: String,
    /// What the token's own rate limit counts: `token` or `user`.
    rate_limit_per: String,
    metadata: String,
}

#[derive(Template)]
#[template(path = "token_new.html")]
struct NewPage {
    c: Chrome,
    d: Draft,
    owners: Vec<(String, String)>,
    roles: Vec<(String, String)>,
    catalogue: Vec<(String, String)>,
    field: String,
    field_error: String,
}

/// `?owner=usr_…`: the owner the form starts with (from a user's page).
#[derive(Debug, Default, serde::Deserialize)]
struct NewQuery {
    owner: Option<String>,
}

async fn new_page(
    State(state): State<AppState>,
    person: Person,
    Query(q): Query<NewQuery>,
) -> Response {
    if let Err(e) = person.caller.require("keyward.tokens:create") {
        return refused(&person, &e);
    }
    let d = Draft {
        owner: q.owner.unwrap_or_default(),
        ..Draft::default()
    };
    render_new(&state, &person, d, None, StatusCode::OK).await
}

async fn render_new(
    state: &AppState,
    person: &Person,
    d: Draft,
    error: Option<(Option<String>, String)>,
    status: StatusCode,
) -> Response {
    let owners = owner_names(state, person)
        .await
        .into_iter()
        .map(|(id, n)| (id.to_string(), n))
        .collect();
    let roles = match ops::roles::list(state, &person.caller, &Default::default()).await {
        Ok(p) => p
            .items
            .into_iter()
            .filter(|r| r.kind == RoleKind::Api)
            .map(|r| (r.id.to_string(), r.name))
            .collect(),
        Err(_) => vec![],
    };
    let catalogue = ops::catalogue(state, person.caller.workspace_id())
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !e.permission.as_str().starts_with("keyward."))
        .map(|e| (e.permission.as_str().to_owned(), e.description))
        .collect();
    let mut c = person.chrome("Create a token");
    let (field, field_error) = match error {
        Some((field, text)) => {
            c.error = Some(text.clone());
            (field.unwrap_or_default(), text)
        }
        None => (String::new(), String::new()),
    };
    html(
        status,
        &NewPage {
            c,
            d,
            owners,
            roles,
            catalogue,
            field,
            field_error,
        },
    )
}

fn draft_of(fields: &[(String, String)]) -> (String, Draft) {
    let mut csrf = String::new();
    let mut d = Draft::default();
    for (k, v) in fields {
        match k.as_str() {
            "csrf" => csrf = v.clone(),
            "name" => d.name = v.clone(),
            "owner" => d.owner = v.clone(),
            "role" => d.role = v.clone(),
            "permissions" => d.permissions.push(v.clone()),
            "expires" => d.expires = v.clone(),
            "not_before" => d.not_before = v.clone(),
            "ip_allowlist" => d.ips = v.clone(),
            "internal_only" => d.internal_only = true,
            "request_log" => d.request_log = true,
            "rate_limit" => d.rate_limit = v.clone(),
            "rate_limit_per" => d.rate_limit_per = v.clone(),
            "metadata" => d.metadata = v.clone(),
            _ => {}
        }
    }
    (csrf, d)
}

fn field_err(field: &str, text: &str) -> (Option<String>, String) {
    (Some(field.to_owned()), text.to_owned())
}

/// The API request a draft stands for, or the field it gets wrong.
fn request_of(d: &Draft) -> Result<CreateToken, (Option<String>, String)> {
    let owner_id: UserId = d
        .owner
        .parse()
        .map_err(|_| field_err("owner_id", "choose the token's owner"))?;
    let role_id = match d.role.trim() {
        "" => None,
        r => Some(
            r.parse::<RoleId>()
                .map_err(|_| field_err("role_id", "choose a role"))?,
        ),
    };
    let date =
        |s: &str, field: &str| -> Result<Option<chrono::DateTime<Utc>>, (Option<String>, String)> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| field_err(field, "use a date like 2027-03-31"))?;
            let midnight = day.and_hms_opt(0, 0, 0).map(|t| Utc.from_utc_datetime(&t));
            Ok(midnight)
        };
    let rate_limit_per_minute = match d.rate_limit.trim() {
        "" => None,
        n => Some(n.parse::<u32>().map_err(|_| {
            field_err(
                "rate_limit_per_minute",
                "a whole number of requests per minute",
            )
        })?),
    };
    let metadata = match d.metadata.trim() {
        "" => None,
        m => Some(serde_json::from_str::<serde_json::Value>(m).map_err(|_| {
            field_err(
                "metadata",
                "metadata must be a JSON object, e.g. {\"env\": \"prod\"}",
            )
        })?),
    };
    Ok(CreateToken {
        owner_id,
        name: d.name.clone(),
        role_id,
        permissions: (!d.permissions.is_empty()).then(|| d.permissions.clone()),
        metadata,
        not_before: date(&d.not_before, "not_before")?,
        expires_at: date(&d.expires, "expires_at")?,
        pending: true,
        ip_allowlist: (!d.ips.trim().is_empty()).then(|| IpListInput::Text(d.ips.clone())),
        internal_only: d.internal_only,
        request_log: d.request_log,
        rate_limit_per_minute,
        rate_limit_per: keyward_core::RateLimitPer::parse(d.rate_limit_per.trim()),
    })
}

#[derive(Template)]
#[template(path = "token_created.html")]
struct CreatedPage {
    c: Chrome,
    id: String,
    name: String,
    secret: String,
}

async fn create(
    State(state): State<AppState>,
    person: Person,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (csrf, d) = draft_of(&fields);
    if let Some(r) = csrf_refusal(&person.csrf, &csrf) {
        return r;
    }
    if let Err(e) = person.caller.require("keyward.tokens:create") {
        return refused(&person, &e);
    }
    let req = match request_of(&d) {
        Ok(r) => r,
        Err(e) => {
            return render_new(
                &state,
                &person,
                d,
                Some(e),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    match ops::tokens::create(&state, &person.caller, &req).await {
        Ok(created) => html(
            StatusCode::CREATED,
            &CreatedPage {
                c: person.chrome("Token created"),
                id: created.token.id.to_string(),
                name: created.token.name.clone(),
                secret: created.secret,
            },
        ),
        Err(e) => {
            let (field, text, status) = explain(&e);
            render_new(&state, &person, d, Some((field, text)), status).await
        }
    }
}

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    c: Chrome,
    t: TokenView,
    status: String,
    owner: String,
    role: String,
    permissions: Vec<String>,
    expires: String,
    last_used: String,
    last_ip: String,
    last_endpoint: String,
    may_revoke: bool,
    may_activate: bool,
    may_rotate: bool,
    may_delete: bool,
    may_edit: bool,
}

async fn show(State(state): State<AppState>, person: Person, Path(id): Path<String>) -> Response {
    show_page(&state, &person, &id, None, None).await
}

/// [`show_page`] with an error, answered with `status`.
async fn show_error(
    state: &AppState,
    person: &Person,
    id: &str,
    error: String,
    status: StatusCode,
) -> Response {
    let mut page = show_page(state, person, id, None, Some(error)).await;
    if page.status() == StatusCode::OK {
        *page.status_mut() = status;
    }
    page
}

async fn show_page(
    state: &AppState,
    person: &Person,
    id: &str,
    flash: Option<String>,
    error: Option<String>,
) -> Response {
    let Ok(id) = id.parse::<TokenId>() else {
        return message(
            StatusCode::NOT_FOUND,
            person.chrome("No such token"),
            "No such token.",
            "/ui/tokens",
            "All tokens",
        );
    };
    let t = match ops::tokens::get(state, &person.caller, id).await {
        Ok(t) => t,
        Err(e) => return refused(person, &e),
    };
    let ws = person.caller.workspace_id();
    let owner = state.store.user(ws, t.owner_id).await.ok().flatten();
    let role_id = t.role_id.or(owner.as_ref().and_then(|o| o.role_id));
    let role = match role_id {
        Some(r) => state.store.role(ws, r).await.ok().flatten(),
        None => None,
    };
    let mut permissions: Vec<String> = role
        .as_ref()
        .map(|r| {
            r.permissions
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect()
        })
        .unwrap_or_default();
    if let Some(n) = &t.permissions {
        permissions = n
            .iter()
            .map(|p| format!("{} (narrowed)", p.as_str()))
            .collect();
    }
    let status = status_word(&t);
    let mut c = person.chrome(format!("Token “{}”", t.name));
    c.flash = flash;
    c.error = error;
    let page = TokenPage {
        c,
        may_revoke: person.may("keyward.tokens:revoke") && status != "revoked",
        may_activate: status == "pending"
            && (person.may("keyward.tokens:write") || person.may("keyward.tokens:create")),
        may_rotate: person.may("keyward.tokens:create")
            && (status == "active" || status == "pending"),
        may_delete: person.may("keyward.tokens:delete")
            && (status == "revoked" || status == "expired"),
        may_edit: person.may("keyward.tokens:write") && status != "revoked",
        owner: owner.map_or_else(|| t.owner_id.to_string(), |o| o.name),
        role: role.map_or_else(|| "none".into(), |r| r.name),
        permissions,
        expires: t.expires_at.map(when).unwrap_or_else(|| "never".into()),
        last_used: t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
        last_ip: t.last_used_ip.map(|i| i.to_string()).unwrap_or_default(),
        last_endpoint: t.last_used_endpoint.clone().unwrap_or_default(),
        status,
        t,
    };
    html(StatusCode::OK, &page)
}

#[derive(serde::Deserialize)]
struct RequestLogForm {
    csrf: String,
    /// `on` or `off`.
    log: String,
}

/// Turns the token's per-request log on or off (a token update like the API's).
async fn request_log(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<RequestLogForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    let Ok(token) = id.parse::<TokenId>() else {
        return redirect("/ui/tokens", &[]);
    };
    let on = form.log == "on";
    let patch = keyward_core::api::TokenPatch {
        request_log: Some(on),
        ..Default::default()
    };
    match ops::tokens::update(&state, &person.caller, token, &patch).await {
        Ok(_) => {
            let done = if on {
                "Per-request log on: each verified request is now kept on its own (see Activity)."
            } else {
                "Per-request log off: requests are counted per minute again."
            };
            show_page(&state, &person, &id, Some(done.into()), None).await
        }
        Err(e) => refused(&person, &e),
    }
}

#[derive(serde::Deserialize)]
struct ConfirmForm {
    csrf: String,
    confirm: Option<String>,
}

async fn activate(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    let Ok(token) = id.parse::<TokenId>() else {
        return redirect("/ui/tokens", &[]);
    };
    match ops::tokens::activate(&state, &person.caller, token).await {
        Ok(_) => {
            show_page(
                &state,
                &person,
                &id,
                Some("Token saved: it is active now.".into()),
                None,
            )
            .await
        }
        Err(e) => refused(&person, &e),
    }
}

async fn revoke(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    let Ok(token) = id.parse::<TokenId>() else {
        return redirect("/ui/tokens", &[]);
    };
    if form.confirm.as_deref() != Some("yes") {
        let error = "Tick “Yes, revoke this token” to confirm.".to_owned();
        return show_page(&state, &person, &id, None, Some(error)).await;
    }
    match ops::tokens::revoke(&state, &person.caller, token).await {
        Ok(_) => {
            show_page(
                &state,
                &person,
                &id,
                Some("Token revoked: it is refused from now on.".into()),
                None,
            )
            .await
        }
        Err(e) => refused(&person, &e),
    }
}

#[derive(serde::Deserialize)]
struct RotateForm {
    csrf: String,
    #[serde(default)]
    grace_minutes: String,
}

#[derive(Template)]
#[template(path = "token_rotated.html")]
struct RotatedPage {
    c: Chrome,
    id: String,
    name: String,
    secret: String,
    pending: bool,
    previous_id: String,
    grace: bool,
    previous_until: String,
}

async fn rotate(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<RotateForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    let Ok(token) = id.parse::<TokenId>() else {
        return redirect("/ui/tokens", &[]);
    };
    let grace_period_secs = match form.grace_minutes.trim() {
        "" => 0,
        m => match m.parse::<u64>().ok().and_then(|m| m.checked_mul(60)) {
            Some(secs) => secs,
            None => {
                let error = "The grace period is a whole number of minutes (0: at once).";
                return show_error(
                    &state,
                    &person,
                    &id,
                    error.into(),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
        },
    };
    let req = RotateToken {
        grace_period_secs,
        expires_at: None,
    };
    match ops::rotation::rotate(&state, &person.caller, token, &req).await {
        Ok(r) => html(
            StatusCode::CREATED,
            &RotatedPage {
                c: person.chrome("Token rotated"),
                id: r.token.id.to_string(),
                name: r.token.name.clone(),
                pending: status_word(&r.token) == "pending",
                previous_id: r.previous.id.to_string(),
                grace: grace_period_secs > 0,
                previous_until: r.previous.expires_at.map(when).unwrap_or_default(),
                secret: r.secret,
            },
        ),
        Err(e) => {
            let (_, text, status) = explain(&e);
            match status {
                StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT => {
                    show_error(&state, &person, &id, text, status).await
                }
                _ => refused(&person, &e),
            }
        }
    }
}

async fn delete(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    let Ok(token) = id.parse::<TokenId>() else {
        return redirect("/ui/tokens", &[]);
    };
    if form.confirm.as_deref() != Some("yes") {
        let error = "Tick “Yes, delete this token” to confirm.".to_owned();
        return show_error(
            &state,
            &person,
            &id,
            error,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match ops::tokens::delete(&state, &person.caller, token).await {
        Ok(()) => redirect("/ui/tokens", &[]),
        Err(e) => refused(&person, &e),
    }
}
