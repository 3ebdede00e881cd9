//! Users: the list, creating human and service users, disabling and enabling them,
//! invitations, and per user the seeds' *Actions → API token* menu (generate, list, revoke).
//! Every action is the operations layer's, with the person as the caller; the page only
//! leaves out the buttons the person's role does not give.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use keyward_core::api::{CreateUser, UserPatch};
use keyward_core::model::{Role, RoleKind, User, UserKind};
use keyward_core::{RoleId, UserId};
use serde::Deserialize;

use super::auth::{csrf_refusal, Person};
use super::page::{explain, html, message, redirect, when, Chrome};
use super::tokens::status_word;
use crate::error::ApiError;
use crate::ops;
use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/users", get(list))
        .route("/ui/users/new", get(new_page).post(create))
        .route("/ui/users/{id}", get(show))
        .route("/ui/users/{id}/disable", post(disable))
        .route("/ui/users/{id}/enable", post(enable))
        .route("/ui/users/{id}/invite", post(invite))
}

fn refused(person: &Person, e: &ApiError) -> Response {
    person.refused(e, "/ui/users", "All users")
}

fn no_such_user(person: &Person) -> Response {
    message(
        StatusCode::NOT_FOUND,
        person.chrome("No such user"),
        "No such user.",
        "/ui/users",
        "All users",
    )
}

fn kind_word(kind: UserKind) -> &'static str {
    match kind {
        UserKind::Human => "human",
        UserKind::Service => "service",
    }
}

fn kind_of(word: &str) -> Option<UserKind> {
    match word.trim() {
        "human" => Some(UserKind::Human),
        "service" => Some(UserKind::Service),
        _ => None,
    }
}

fn status_of(u: &User) -> &'static str {
    if u.disabled {
        "disabled"
    } else {
        "enabled"
    }
}

/// The workspace's roles, when the person may read them (none otherwise).
async fn roles(state: &AppState, person: &Person) -> Vec<Role> {
    if !person.may("keyward.roles:read") {
        return vec![];
    }
    let q = ops::PageParams {
        limit: Some(200),
        cursor: None,
    };
    match ops::roles::list(state, &person.caller, &q).await {
        Ok(p) => p.items,
        Err(_) => vec![],
    }
}

/// The name of the role `id`, from `known` or else the store, remembered in `known` (a
/// user's role is shown by name to whoever may see the user, as a token's page does).
async fn role_name(
    state: &AppState,
    person: &Person,
    known: &mut Vec<Role>,
    id: Option<RoleId>,
) -> String {
    let Some(id) = id else {
        return "none".into();
    };
    if let Some(r) = known.iter().find(|r| r.id == id) {
        return r.name.clone();
    }
    match state.store.role(person.caller.workspace_id(), id).await {
        Ok(Some(r)) => {
            let name = r.name.clone();
            known.push(r);
            name
        }
        _ => id.to_string(),
    }
}

struct Row {
    id: String,
    name: String,
    kind: &'static str,
    email: String,
    role: String,
    status: &'static str,
}

#[derive(Template)]
#[template(path = "users.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<Row>,
    kind: String,
    next: Option<String>,
    may_create: bool,
}

/// `?kind=human|service&cursor=`.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    kind: Option<String>,
    cursor: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    person: Person,
    Query(q): Query<ListQuery>,
) -> Response {
    let kind = q.kind.as_deref().and_then(kind_of);
    let query = ops::users::UserQuery {
        kind,
        disabled: None,
        limit: Some(100),
        cursor: q.cursor.filter(|c| !c.is_empty()),
    };
    let page = match ops::users::list(&state, &person.caller, &query).await {
        Ok(p) => p,
        Err(e) => return refused(&person, &e),
    };
    let mut known = roles(&state, &person).await;
    let mut rows = Vec::with_capacity(page.items.len());
    for u in &page.items {
        rows.push(Row {
            id: u.id.to_string(),
            name: u.name.clone(),
            kind: kind_word(u.kind),
            email: u.email.clone().unwrap_or_default(),
            role: role_name(&state, &person, &mut known, u.role_id).await,
            status: status_of(u),
        });
    }
    html(
        StatusCode::OK,
        &ListPage {
            c: person.chrome("Users"),
            rows,
            kind: kind.map(kind_word).unwrap_or_default().to_owned(),
            next: page.next_cursor,
            may_create: person.may("keyward.users:write"),
        },
    )
}

/// The values of the create form, kept to show it again with its errors.
#[derive(Debug, Default, Clone)]
struct Draft {
    kind: String,
    name: String,
    email: String,
    role: String,
}

#[derive(Template)]
#[template(path = "user_new.html")]
struct NewPage {
    c: Chrome,
    d: Draft,
    human_roles: Vec<(String, String)>,
    api_roles: Vec<(String, String)>,
    field: String,
    field_error: String,
}

/// `?kind=human|service`: the kind the form starts with.
#[derive(Debug, Default, Deserialize)]
struct NewQuery {
    kind: Option<String>,
}

async fn new_page(
    State(state): State<AppState>,
    person: Person,
    Query(q): Query<NewQuery>,
) -> Response {
    if let Err(e) = person.caller.require("keyward.users:write") {
        return refused(&person, &e);
    }
    let kind = q
        .kind
        .as_deref()
        .and_then(kind_of)
        .unwrap_or(UserKind::Human);
    let d = Draft {
        kind: kind_word(kind).to_owned(),
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
    let roles = roles(state, person).await;
    let of_kind = |kind: RoleKind| {
        roles
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| (r.id.to_string(), r.name.clone()))
            .collect()
    };
    let mut c = person.chrome("Create a user");
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
            human_roles: of_kind(RoleKind::Human),
            api_roles: of_kind(RoleKind::Api),
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
            "kind" => d.kind = v.clone(),
            "name" => d.name = v.clone(),
            "email" => d.email = v.clone(),
            "role" => d.role = v.clone(),
            _ => {}
        }
    }
    (csrf, d)
}

/// The API request a draft stands for, or the field it gets wrong.
fn request_of(d: &Draft) -> Result<CreateUser, (Option<String>, String)> {
    let kind = kind_of(&d.kind).ok_or_else(|| {
        (
            Some("kind".to_owned()),
            "choose a person or a service user".to_owned(),
        )
    })?;
    let role_id = match d.role.trim() {
        "" => None,
        r => Some(
            r.parse::<RoleId>()
                .map_err(|_| (Some("role_id".to_owned()), "choose a role".to_owned()))?,
        ),
    };
    let email = Some(d.email.trim())
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    Ok(CreateUser {
        kind,
        name: d.name.clone(),
        email,
        role_id,
    })
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
    if let Err(e) = person.caller.require("keyward.users:write") {
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
    match ops::users::create(&state, &person.caller, &req).await {
        Ok(user) => redirect(&format!("/ui/users/{}?created=1", user.id), &[]),
        Err(e) => {
            let (mut field, text, status) = explain(&e);
            // The only thing of the form that can grant too much is its role.
            if matches!(
                e,
                ApiError::Forbidden {
                    code: "PRIVILEGE_ESCALATION",
                    ..
                }
            ) {
                field = Some("role_id".to_owned());
            }
            render_new(&state, &person, d, Some((field, text)), status).await
        }
    }
}

struct TokenRow {
    id: String,
    name: String,
    start: String,
    status: String,
    expires: String,
    last_used: String,
    revocable: bool,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    c: Chrome,
    u: User,
    kind: &'static str,
    email: String,
    role: String,
    status: &'static str,
    created: String,
    may_disable: bool,
    may_enable: bool,
    may_invite: bool,
    invite_label: &'static str,
    signed_up: bool,
    may_generate: bool,
    may_revoke: bool,
    show_tokens: bool,
    tokens: Vec<TokenRow>,
    more_tokens: bool,
    has_actions: bool,
}

/// `?created=1` after the create form's redirect.
#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    created: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let flash = q.created.map(|_| "User created.".to_owned());
    show_page(&state, &person, &id, flash, None, StatusCode::OK).await
}

async fn show_page(
    state: &AppState,
    person: &Person,
    id: &str,
    flash: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let Ok(id) = id.parse::<UserId>() else {
        return no_such_user(person);
    };
    let u = match ops::users::get(state, &person.caller, id).await {
        Ok(u) => u,
        Err(e) => return refused(person, &e),
    };
    let ws = person.caller.workspace_id();
    let role = role_name(state, person, &mut vec![], u.role_id).await;
    let signed_up = u.kind == UserKind::Human
        && matches!(
            state.store.credentials(ws, u.id).await,
            Ok(Some(c)) if c.password_hash.is_some()
        );
    let show_tokens = person.may("keyward.tokens:read");
    let (tokens, more_tokens) = if show_tokens {
        let q = ops::tokens::TokenQuery {
            owner_id: Some(u.id),
            limit: Some(100),
            ..Default::default()
        };
        match ops::tokens::list(state, &person.caller, &q).await {
            Ok(p) => {
                let more = p.next_cursor.is_some();
                let rows = p
                    .items
                    .iter()
                    .map(|t| {
                        let status = status_word(t);
                        TokenRow {
                            id: t.id.to_string(),
                            name: t.name.clone(),
                            start: t.start.clone(),
                            revocable: status != "revoked" && status != "expired",
                            status,
                            expires: t.expires_at.map(when).unwrap_or_else(|| "never".into()),
                            last_used: t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                        }
                    })
                    .collect();
                (rows, more)
            }
            Err(_) => (vec![], false),
        }
    } else {
        (vec![], false)
    };
    let write = person.may("keyward.users:write");
    let myself = u.id == person.caller.owner_id();
    let mut c = person.chrome(format!("User “{}”", u.name));
    c.flash = flash;
    c.error = error;
    let may_disable = write && !u.disabled && !myself;
    let may_enable = write && u.disabled;
    let may_invite = write && u.kind == UserKind::Human && u.email.is_some() && !u.disabled;
    let may_generate = person.may("keyward.tokens:create");
    let page = UserPage {
        c,
        kind: kind_word(u.kind),
        email: u.email.clone().unwrap_or_default(),
        role,
        status: status_of(&u),
        created: when(u.created_at),
        may_disable,
        may_enable,
        may_invite,
        invite_label: if signed_up {
            "Send a new invitation"
        } else {
            "Invite"
        },
        signed_up,
        may_generate,
        may_revoke: person.may("keyward.tokens:revoke"),
        show_tokens,
        tokens,
        more_tokens,
        has_actions: may_disable || may_enable || may_invite || may_generate,
        u,
    };
    html(status, &page)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn disable(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    set_disabled(&state, &person, &id, &form, true).await
}

async fn enable(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    set_disabled(&state, &person, &id, &form, false).await
}

async fn set_disabled(
    state: &AppState,
    person: &Person,
    id: &str,
    form: &CsrfForm,
    disabled: bool,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    let Ok(user) = id.parse::<UserId>() else {
        return no_such_user(person);
    };
    let patch = UserPatch {
        disabled: Some(disabled),
        ..UserPatch::default()
    };
    match ops::users::update(state, &person.caller, user, &patch).await {
        Ok(_) => {
            let flash = if disabled {
                "User disabled: their tokens are refused and their sessions ended."
            } else {
                "User enabled: their tokens work again."
            };
            show_page(state, person, id, Some(flash.into()), None, StatusCode::OK).await
        }
        Err(e) => {
            let (_, text, status) = explain(&e);
            if status == StatusCode::CONFLICT {
                return show_page(state, person, id, None, Some(text), status).await;
            }
            refused(person, &e)
        }
    }
}

#[derive(Template)]
#[template(path = "user_invited.html")]
struct InvitedPage {
    c: Chrome,
    id: String,
    name: String,
    email: String,
    url: String,
    expires: String,
}

async fn invite(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    let Ok(user) = id.parse::<UserId>() else {
        return no_such_user(&person);
    };
    match crate::people::invite::create(&state, &person.caller, user).await {
        Ok(inv) => {
            let u = ops::users::get(&state, &person.caller, user).await.ok();
            html(
                StatusCode::CREATED,
                &InvitedPage {
                    c: person.chrome("Invitation created"),
                    id: user.to_string(),
                    name: u.as_ref().map(|u| u.name.clone()).unwrap_or_default(),
                    email: u.and_then(|u| u.email).unwrap_or_default(),
                    url: inv.url,
                    expires: when(inv.expires_at),
                },
            )
        }
        Err(e) => {
            let (_, text, status) = explain(&e);
            if status == StatusCode::CONFLICT || status == StatusCode::UNPROCESSABLE_ENTITY {
                return show_page(&state, &person, &id, None, Some(text), status).await;
            }
            refused(&person, &e)
        }
    }
}
