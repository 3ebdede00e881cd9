//! Roles: the list, and creating and editing a role with the permission matrix, kind,
//! scope, IP allowlist, rate limit and the "may generate API tokens" switch. Every change is
//! the operations layer's (`ops::roles`), with the person as the caller: authorization, the
//! escalation checks, validation and the audit trail are the API's. A change of the role held
//! for another person's approval shows on its page until it is decided.

mod matrix;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use keyward_core::api::{CreateRole, IpListInput, RolePatch};
use keyward_core::model::{RateLimitPer, RoleKind, Scope};
use keyward_core::permission::any_grants;
use keyward_core::{CatalogueEntry, ChangeTarget, Permission, Role, RoleId};

use self::matrix::{grants_token_creation, Matrix, TOKENS_CREATE};
use super::approvals::{diff, requested_value, FieldDiff};
use super::auth::{csrf_refusal, Person};
use super::page::{explain, html, message, redirect, when, Chrome};
use crate::error::ApiError;
use crate::ops;
use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/roles", get(list))
        .route("/ui/roles/new", get(new_page).post(create))
        .route("/ui/roles/{id}", get(show).post(update))
        .route("/ui/roles/{id}/delete", post(delete))
}

fn refused(person: &Person, e: &ApiError) -> Response {
    person.refused(e, "/ui/roles", "All roles")
}

fn not_found(person: &Person) -> Response {
    message(
        StatusCode::NOT_FOUND,
        person.chrome("No such role"),
        "No such role.",
        "/ui/roles",
        "All roles",
    )
}

/// "Agent" for `user` scope, "Admin" for `workspace` scope.
fn scope_word(s: Scope) -> &'static str {
    match s {
        Scope::User => "Agent",
        Scope::Workspace => "Admin",
    }
}

fn kind_word(k: RoleKind) -> &'static str {
    match k {
        RoleKind::Human => "human",
        RoleKind::Api => "api",
    }
}

/// Whether `role` lets its holders generate API tokens (by name or by a wildcard).
fn may_generate_tokens(role: &Role) -> bool {
    Permission::parse(TOKENS_CREATE).is_ok_and(|p| any_grants(&role.permissions, &p))
}

/// Whether the person may change roles at all (the operations layer decides each change).
fn may_write(person: &Person) -> bool {
    person.may("keyward.roles:write") && person.caller.scope() == Scope::Workspace
}

struct Row {
    id: String,
    name: String,
    kind: &'static str,
    scope: &'static str,
    permissions: usize,
    rate_limit: String,
    tokens: bool,
}

#[derive(Template)]
#[template(path = "roles.html")]
struct ListPage {
    c: Chrome,
    rows: Vec<Row>,
    may_create: bool,
}

async fn list(State(state): State<AppState>, person: Person) -> Response {
    list_page(&state, &person, None).await
}

async fn list_page(state: &AppState, person: &Person, flash: Option<String>) -> Response {
    let q = ops::PageParams {
        limit: Some(ops::paging::MAX_LIMIT),
        cursor: None,
    };
    let page = match ops::roles::list(state, &person.caller, &q).await {
        Ok(p) => p,
        Err(e) => return refused(person, &e),
    };
    let rows = page
        .items
        .iter()
        .map(|r| Row {
            id: r.id.to_string(),
            name: r.name.clone(),
            kind: kind_word(r.kind),
            scope: scope_word(r.scope),
            permissions: r.permissions.len(),
            rate_limit: r
                .rate_limit()
                .map_or_else(|| "—".into(), |(n, per)| format!("{n}/min per {per}")),
            tokens: may_generate_tokens(r),
        })
        .collect();
    let mut c = person.chrome("Roles");
    c.flash = flash;
    html(
        StatusCode::OK,
        &ListPage {
            c,
            rows,
            may_create: may_write(person),
        },
    )
}

/// The values of the form, kept to show it again with its errors.
#[derive(Debug, Default, Clone)]
struct Draft {
    name: String,
    description: String,
    /// `human` or `api`.
    kind: String,
    /// `user` or `workspace`.
    scope: String,
    /// The ticked matrix and global checkboxes.
    permissions: Vec<String>,
    /// Further patterns, as typed (one per line or comma-separated).
    other: String,
    /// The "may generate API tokens" switch.
    may_tokens: bool,
    /// What the switch and its matrix cell showed when the form was drawn.
    tokens_shown: bool,
    ips: String,
    rate_limit: String,
    /// What the rate limit counts: `token` or `user`.
    rate_limit_per: String,
}

impl Draft {
    /// A new role's form: api kind, agent scope, nothing granted.
    fn fresh() -> Self {
        Self {
            kind: "api".into(),
            scope: "user".into(),
            rate_limit_per: "token".into(),
            ..Self::default()
        }
    }

    /// The form of `role`: the patterns the matrix has a checkbox for are ticked there, the
    /// others listed in the free-text field.
    fn of_role(role: &Role, matrix: &Matrix) -> Self {
        let (ticked, other): (Vec<String>, Vec<String>) = role
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .partition(|p| matrix.offers(p));
        let tokens = ticked.iter().any(|p| p == TOKENS_CREATE);
        Self {
            name: role.name.clone(),
            description: role.description.clone(),
            kind: kind_word(role.kind).into(),
            scope: role.scope.as_str().into(),
            permissions: ticked,
            other: other.join("\n"),
            may_tokens: tokens,
            tokens_shown: tokens,
            ips: role.ip_allowlist.entries().join("\n"),
            rate_limit: role
                .rate_limit_per_minute
                .map(|n| n.to_string())
                .unwrap_or_default(),
            rate_limit_per: role.rate_limit_per.as_str().into(),
        }
    }

    /// The patterns to send: the ticked ones, the typed ones, and `keyward.tokens:create` as
    /// the switch rule decides; each once, in that order.
    fn patterns(&self) -> Vec<String> {
        let cell = self.permissions.iter().any(|p| p == TOKENS_CREATE);
        let tokens = grants_token_creation(self.may_tokens, cell, self.tokens_shown);
        let typed = self
            .other
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let mut out: Vec<String> = Vec::new();
        let all = self
            .permissions
            .iter()
            .filter(|p| p.as_str() != TOKENS_CREATE)
            .cloned()
            .chain(typed)
            .chain(tokens.then(|| TOKENS_CREATE.to_owned()));
        for p in all {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// The form as it is drawn again: the switch and its cell both show what the rule decided.
    fn settled(mut self) -> Self {
        let cell = self.permissions.iter().any(|p| p == TOKENS_CREATE);
        let tokens = grants_token_creation(self.may_tokens, cell, self.tokens_shown);
        self.permissions.retain(|p| p != TOKENS_CREATE);
        if tokens {
            self.permissions.push(TOKENS_CREATE.into());
        }
        self.may_tokens = tokens;
        self.tokens_shown = tokens;
        self
    }
}

fn draft_of(fields: &[(String, String)]) -> (String, Draft) {
    let mut csrf = String::new();
    let mut d = Draft::default();
    for (k, v) in fields {
        match k.as_str() {
            "csrf" => csrf = v.clone(),
            "name" => d.name = v.clone(),
            "description" => d.description = v.clone(),
            "kind" => d.kind = v.clone(),
            "scope" => d.scope = v.clone(),
            "permissions" => d.permissions.push(v.clone()),
            "other_permissions" => d.other = v.clone(),
            "may_generate_tokens" => d.may_tokens = true,
            "tokens_shown" => d.tokens_shown = v == "yes",
            "ip_allowlist" => d.ips = v.clone(),
            "rate_limit" => d.rate_limit = v.clone(),
            "rate_limit_per" => d.rate_limit_per = v.clone(),
            _ => {}
        }
    }
    (csrf, d)
}

/// A refusal of the form: the field it names, if any, and the sentence.
type FieldError = (Option<String>, String);

fn field_err(field: &str, text: &str) -> FieldError {
    (Some(field.to_owned()), text.to_owned())
}

fn kind_of(d: &Draft) -> Result<RoleKind, FieldError> {
    match d.kind.as_str() {
        "human" => Ok(RoleKind::Human),
        "api" => Ok(RoleKind::Api),
        _ => Err(field_err("kind", "choose human or api")),
    }
}

fn scope_of(d: &Draft) -> Result<Scope, FieldError> {
    match d.scope.as_str() {
        "user" => Ok(Scope::User),
        "workspace" => Ok(Scope::Workspace),
        _ => Err(field_err("scope", "choose Agent or Admin")),
    }
}

fn rate_limit_of(d: &Draft) -> Result<Option<u32>, FieldError> {
    match d.rate_limit.trim() {
        "" => Ok(None),
        n => n.parse::<u32>().map(Some).map_err(|_| {
            field_err(
                "rate_limit_per_minute",
                "a whole number of requests per minute",
            )
        }),
    }
}

/// The API request a new role's draft stands for, or the field it gets wrong.
fn create_request(d: &Draft) -> Result<CreateRole, FieldError> {
    Ok(CreateRole {
        name: d.name.clone(),
        description: d.description.clone(),
        kind: kind_of(d)?,
        scope: scope_of(d)?,
        permissions: d.patterns(),
        ip_allowlist: (!d.ips.trim().is_empty()).then(|| IpListInput::Text(d.ips.clone())),
        rate_limit_per_minute: rate_limit_of(d)?,
        rate_limit_per: RateLimitPer::parse(d.rate_limit_per.trim()),
    })
}

/// The API change an edited draft stands for: every field as the form shows it (an empty
/// allowlist clears it, an empty rate limit falls back to the workspace default).
fn patch_of(d: &Draft) -> Result<RolePatch, FieldError> {
    Ok(RolePatch {
        name: Some(d.name.clone()),
        description: Some(d.description.clone()),
        scope: Some(scope_of(d)?),
        permissions: Some(d.patterns()),
        ip_allowlist: Some(IpListInput::Text(d.ips.clone())),
        rate_limit_per_minute: Some(rate_limit_of(d)?),
        rate_limit_per: RateLimitPer::parse(d.rate_limit_per.trim()),
        reason: None,
    })
}

/// What the form says about a refusal.
#[derive(Debug, Default)]
struct Refusal {
    field: String,
    text: String,
    code: String,
}

impl Refusal {
    fn of_form((field, text): FieldError) -> Self {
        Self {
            field: field.unwrap_or_default(),
            text,
            code: String::new(),
        }
    }

    fn of_api(e: &ApiError) -> (Self, StatusCode) {
        let (field, text, status) = explain(e);
        let r = Self {
            field: field.unwrap_or_default(),
            text,
            code: e.problem().code,
        };
        (r, status)
    }
}

#[derive(Template)]
#[template(path = "role.html")]
struct RolePage {
    c: Chrome,
    /// Empty for a new role.
    id: String,
    d: Draft,
    m: Matrix,
    may_write: bool,
    /// The role lets its holders generate tokens through a wildcard, whatever the switch says.
    tokens_by_wildcard: bool,
    created: String,
    updated: String,
    e: Refusal,
    /// What pending change requests about the role would change.
    pending: Vec<FieldDiff>,
}

impl RolePage {
    fn is_new(&self) -> bool {
        self.id.is_empty()
    }

    fn action(&self) -> String {
        if self.is_new() {
            "/ui/roles/new".into()
        } else {
            format!("/ui/roles/{}", self.id)
        }
    }

    /// The scope's word, for the read-only view.
    fn scope_text(&self) -> &'static str {
        match self.d.scope.as_str() {
            "workspace" => "Admin — the whole workspace",
            _ => "Agent — only their own tokens and data",
        }
    }

    /// Whether the refusal is about `field` (or one of its items, `permissions[2]`).
    fn about(&self, field: &str) -> bool {
        self.e.field == field || self.e.field.starts_with(&format!("{field}["))
    }

    /// The requested value of `field` in a pending change request ("" when none).
    fn pending_of(&self, field: &str) -> String {
        requested_value(&self.pending, field)
    }
}

async fn catalogue_of(state: &AppState, person: &Person) -> Vec<CatalogueEntry> {
    ops::catalogue(state, person.caller.workspace_id())
        .await
        .unwrap_or_default()
}

/// Draws the form (or, without `keyward.roles:write`, the read-only view).
async fn render(
    state: &AppState,
    person: &Person,
    role: Option<&Role>,
    d: Option<Draft>,
    e: Refusal,
    status: StatusCode,
    flash: Option<String>,
) -> Response {
    let catalogue = catalogue_of(state, person).await;
    let probe = Matrix::new(&catalogue, &[]);
    let d = match (d, role) {
        (Some(d), _) => d.settled(),
        (None, Some(r)) => Draft::of_role(r, &probe),
        (None, None) => Draft::fresh(),
    };
    let m = Matrix::new(&catalogue, &d.permissions);
    let title = match role {
        Some(r) => format!("Role “{}”", r.name),
        None => "Create a role".into(),
    };
    let pending = match role {
        Some(r) => {
            let about = ChangeTarget::Role(r.id);
            // Without the requests the page still works; it just marks nothing.
            ops::change_requests::pending_about(state, &person.caller, about)
                .await
                .map(|rs| rs.iter().flat_map(diff).collect())
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let mut c = person.chrome(title);
    c.flash = flash;
    if !e.text.is_empty() {
        c.error = Some(e.text.clone());
    }
    let page = RolePage {
        c,
        id: role.map(|r| r.id.to_string()).unwrap_or_default(),
        tokens_by_wildcard: role.is_some_and(may_generate_tokens)
            && !role.is_some_and(|r| r.permissions.iter().any(|p| p.as_str() == TOKENS_CREATE)),
        created: role.map(|r| when(r.created_at)).unwrap_or_default(),
        updated: role.map(|r| when(r.updated_at)).unwrap_or_default(),
        may_write: may_write(person),
        d,
        m,
        e,
        pending,
    };
    html(status, &page)
}

async fn new_page(State(state): State<AppState>, person: Person) -> Response {
    if let Err(e) = person.caller.require("keyward.roles:write") {
        return refused(&person, &e);
    }
    render(
        &state,
        &person,
        None,
        None,
        Refusal::default(),
        StatusCode::OK,
        None,
    )
    .await
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
    if let Err(e) = person.caller.require("keyward.roles:write") {
        return refused(&person, &e);
    }
    let req = match create_request(&d) {
        Ok(r) => r,
        Err(e) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let e = Refusal::of_form(e);
            return render(&state, &person, None, Some(d), e, status, None).await;
        }
    };
    match ops::roles::create(&state, &person.caller, &req).await {
        Ok(role) => redirect(&format!("/ui/roles/{}?saved=created", role.id), &[]),
        Err(e) => {
            let (e, status) = Refusal::of_api(&e);
            render(&state, &person, None, Some(d), e, status, None).await
        }
    }
}

#[derive(serde::Deserialize)]
struct Saved {
    saved: Option<String>,
    /// Set after a save the workspace held for another person's approval.
    pending: Option<String>,
}

/// The role named by a path, or the page to answer instead.
async fn role_of(state: &AppState, person: &Person, id: &str) -> Result<Role, Response> {
    let Ok(id) = id.parse::<RoleId>() else {
        return Err(not_found(person));
    };
    ops::roles::get(state, &person.caller, id)
        .await
        .map_err(|e| refused(person, &e))
}

async fn show(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Query(q): Query<Saved>,
) -> Response {
    let role = match role_of(&state, &person, &id).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    let flash = match q.saved.as_deref() {
        Some("created") => Some("Role created.".to_owned()),
        Some(_) => Some(
            "Role saved: tokens acting with it see the change on their next request.".to_owned(),
        ),
        None if q.pending.is_some() => Some(
            "Sent for approval: the change waits for another person's approval and is not \
             applied yet."
                .to_owned(),
        ),
        None => None,
    };
    let e = Refusal::default();
    render(&state, &person, Some(&role), None, e, StatusCode::OK, flash).await
}

async fn update(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (csrf, mut d) = draft_of(&fields);
    if let Some(r) = csrf_refusal(&person.csrf, &csrf) {
        return r;
    }
    if let Err(e) = person.caller.require("keyward.roles:write") {
        return refused(&person, &e);
    }
    let role = match role_of(&state, &person, &id).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    // The kind cannot change: the form shows it, it is not sent back.
    d.kind = kind_word(role.kind).into();
    let patch = match patch_of(&d) {
        Ok(p) => p,
        Err(e) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let e = Refusal::of_form(e);
            return render(&state, &person, Some(&role), Some(d), e, status, None).await;
        }
    };
    match ops::roles::update(&state, &person.caller, role.id, &patch).await {
        Ok(ops::change_requests::Outcome::Applied(role)) => {
            redirect(&format!("/ui/roles/{}?saved=1", role.id), &[])
        }
        Ok(ops::change_requests::Outcome::Pending(_)) => {
            redirect(&format!("/ui/roles/{}?pending=1", role.id), &[])
        }
        Err(e) => {
            let (e, status) = Refusal::of_api(&e);
            render(&state, &person, Some(&role), Some(d), e, status, None).await
        }
    }
}

#[derive(serde::Deserialize)]
struct ConfirmForm {
    csrf: String,
    confirm: Option<String>,
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
    if let Err(e) = person.caller.require("keyward.roles:write") {
        return refused(&person, &e);
    }
    let role = match role_of(&state, &person, &id).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    if form.confirm.as_deref() != Some("yes") {
        let e = Refusal {
            field: "confirm".into(),
            text: "Tick “Yes, delete this role” to confirm.".into(),
            code: String::new(),
        };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return render(&state, &person, Some(&role), None, e, status, None).await;
    }
    match ops::roles::delete(&state, &person.caller, role.id).await {
        Ok(()) => {
            list_page(
                &state,
                &person,
                Some(format!("Role “{}” deleted.", role.name)),
            )
            .await
        }
        Err(e) => {
            let (e, status) = Refusal::of_api(&e);
            render(&state, &person, Some(&role), None, e, status, None).await
        }
    }
}
