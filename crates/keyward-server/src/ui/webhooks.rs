//! Webhooks: subscriptions, their deliveries, and rotating a signing secret. The signing
//! secret is shown once, on the page answering the creation or the rotation, never on the
//! subscription's page. Every action is the operations layer's (`ops::webhooks`), with the
//! person as the caller.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use keyward_core::events::{CreateWebhook, EventType, WebhookPatch, WebhookView};
use keyward_core::model::Scope;
use keyward_core::WebhookId;

use super::auth::{csrf_refusal, Person};
use super::page::{explain, html, message, when, Chrome};
use crate::error::ApiError;
use crate::ops;
use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/webhooks", get(list))
        .route("/ui/webhooks/new", get(new_page).post(create))
        .route("/ui/webhooks/{id}", get(show).post(update))
        .route("/ui/webhooks/{id}/rotate-secret", post(rotate))
        .route("/ui/webhooks/{id}/delete", post(delete))
}

/// How many delivery attempts a subscription's page shows, newest first.
const RECENT: usize = 50;
/// How many pages of the delivery log are read to find the newest attempts.
const MAX_LOG_PAGES: usize = 10;

fn refused(person: &Person, e: &ApiError) -> Response {
    person.refused(e, "/ui/webhooks", "All webhooks")
}

fn not_found(person: &Person) -> Response {
    message(
        StatusCode::NOT_FOUND,
        person.chrome("No such webhook"),
        "No such webhook.",
        "/ui/webhooks",
        "All webhooks",
    )
}

/// Whether the person may change subscriptions at all (the operations layer decides each
/// change).
fn may_write(person: &Person) -> bool {
    person.may("keyward.webhooks:write") && person.caller.scope() == Scope::Workspace
}

fn events_text(types: Option<&[EventType]>) -> String {
    match types {
        None => "all events".into(),
        Some([]) => "none".into(),
        Some(ts) => ts
            .iter()
            .map(EventType::as_str)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

struct Row {
    id: String,
    url: String,
    events: String,
    enabled: bool,
    description: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
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
    let page = match ops::webhooks::list(state, &person.caller, &q).await {
        Ok(p) => p,
        Err(e) => return refused(person, &e),
    };
    let rows = page
        .items
        .into_iter()
        .map(|w| Row {
            id: w.id.to_string(),
            events: events_text(w.event_types.as_deref()),
            enabled: w.enabled,
            description: w.description,
            url: w.url,
        })
        .collect();
    let mut c = person.chrome("Webhooks");
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

/// The values of the subscription form, kept to show it again with its errors.
#[derive(Debug, Clone)]
struct Draft {
    url: String,
    description: String,
    /// Ticked event types; none ticked means all.
    events: Vec<String>,
    enabled: bool,
}

impl Draft {
    fn fresh() -> Self {
        Self {
            url: String::new(),
            description: String::new(),
            events: Vec::new(),
            enabled: true,
        }
    }

    fn of(w: &WebhookView) -> Self {
        Self {
            url: w.url.clone(),
            description: w.description.clone(),
            events: w
                .event_types
                .iter()
                .flatten()
                .map(|t| t.as_str().to_owned())
                .collect(),
            enabled: w.enabled,
        }
    }

    /// The filter to send: `None` (every event type) when none is ticked.
    fn event_types(&self) -> Option<Vec<String>> {
        (!self.events.is_empty()).then(|| self.events.clone())
    }
}

fn draft_of(fields: &[(String, String)]) -> (String, Draft) {
    let mut csrf = String::new();
    let mut d = Draft {
        enabled: false,
        ..Draft::fresh()
    };
    for (k, v) in fields {
        match k.as_str() {
            "csrf" => csrf = v.clone(),
            "url" => d.url = v.trim().to_owned(),
            "description" => d.description = v.clone(),
            "event_types" => d.events.push(v.clone()),
            "enabled" => d.enabled = true,
            _ => {}
        }
    }
    (csrf, d)
}

/// What the form says about a refusal.
#[derive(Debug, Default)]
struct Refusal {
    field: String,
    text: String,
}

impl Refusal {
    fn of_api(e: &ApiError) -> (Self, StatusCode) {
        let (field, text, status) = explain(e);
        let r = Self {
            field: field.unwrap_or_default(),
            text,
        };
        (r, status)
    }
}

/// One checkbox of the event types.
struct EventBox {
    name: &'static str,
    checked: bool,
}

fn event_boxes(d: &Draft) -> Vec<EventBox> {
    EventType::ALL
        .iter()
        .map(|t| EventBox {
            name: t.as_str(),
            checked: d.events.iter().any(|e| e == t.as_str()),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "webhook_new.html")]
struct NewPage {
    c: Chrome,
    d: Draft,
    events: Vec<EventBox>,
    e: Refusal,
}

impl NewPage {
    fn about(&self, field: &str) -> bool {
        self.e.field == field || self.e.field.starts_with(&format!("{field}["))
    }
}

fn render_new(person: &Person, d: Draft, e: Refusal, status: StatusCode) -> Response {
    let mut c = person.chrome("Add a webhook");
    if !e.text.is_empty() {
        c.error = Some(e.text.clone());
    }
    let events = event_boxes(&d);
    html(status, &NewPage { c, d, events, e })
}

async fn new_page(person: Person) -> Response {
    if let Err(e) = person.caller.require("keyward.webhooks:write") {
        return refused(&person, &e);
    }
    render_new(&person, Draft::fresh(), Refusal::default(), StatusCode::OK)
}

#[derive(Template)]
#[template(path = "webhook_secret.html")]
struct SecretPage {
    c: Chrome,
    id: String,
    url: String,
    secret: String,
    rotated: bool,
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
    if let Err(e) = person.caller.require("keyward.webhooks:write") {
        return refused(&person, &e);
    }
    let req = CreateWebhook {
        url: d.url.clone(),
        event_types: d.event_types(),
        enabled: Some(d.enabled),
        description: Some(d.description.clone()),
    };
    match ops::webhooks::create(&state, &person.caller, &req).await {
        Ok(created) => html(
            StatusCode::CREATED,
            &SecretPage {
                c: person.chrome("Webhook added"),
                id: created.webhook.id.to_string(),
                url: created.webhook.url.clone(),
                secret: created.secret,
                rotated: false,
            },
        ),
        Err(e) => {
            let (e, status) = Refusal::of_api(&e);
            render_new(&person, d, e, status)
        }
    }
}

struct Attempt {
    at: String,
    event_type: &'static str,
    attempt: u32,
    succeeded: bool,
    status_code: String,
    error: String,
    delivery_status: &'static str,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    c: Chrome,
    w: WebhookView,
    events_text: String,
    d: Draft,
    events: Vec<EventBox>,
    created: String,
    updated: String,
    attempts: Vec<Attempt>,
    may_write: bool,
    e: Refusal,
}

impl WebhookPage {
    fn about(&self, field: &str) -> bool {
        self.e.field == field || self.e.field.starts_with(&format!("{field}["))
    }
}

/// The newest [`RECENT`] attempts of `id`'s delivery log, newest first.
async fn recent_attempts(
    state: &AppState,
    person: &Person,
    id: WebhookId,
) -> Result<Vec<Attempt>, ApiError> {
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_LOG_PAGES {
        let q = ops::PageParams {
            limit: Some(ops::paging::MAX_LIMIT),
            cursor,
        };
        let page = ops::webhooks::deliveries(state, &person.caller, id, &q).await?;
        all.extend(page.items);
        if all.len() > RECENT {
            all.drain(..all.len() - RECENT);
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(all
        .into_iter()
        .rev()
        .map(|a| Attempt {
            at: when(a.at),
            event_type: a.event_type.as_str(),
            attempt: a.attempt,
            succeeded: a.succeeded,
            status_code: a.status_code.map(|s| s.to_string()).unwrap_or_default(),
            error: a.error.unwrap_or_default(),
            delivery_status: a.delivery_status.as_str(),
        })
        .collect())
}

/// The subscription's page; `d` keeps an edit that was refused.
async fn show_page(
    state: &AppState,
    person: &Person,
    id: &str,
    d: Option<Draft>,
    e: Refusal,
    status: StatusCode,
    flash: Option<String>,
) -> Response {
    let Ok(id) = id.parse::<WebhookId>() else {
        return not_found(person);
    };
    let w = match ops::webhooks::get(state, &person.caller, id).await {
        Ok(w) => w,
        Err(e) => return refused(person, &e),
    };
    let attempts = match recent_attempts(state, person, id).await {
        Ok(a) => a,
        Err(e) => return refused(person, &e),
    };
    let d = d.unwrap_or_else(|| Draft::of(&w));
    let mut c = person.chrome("Webhook");
    c.flash = flash;
    if !e.text.is_empty() {
        c.error = Some(e.text.clone());
    }
    let page = WebhookPage {
        c,
        events_text: events_text(w.event_types.as_deref()),
        events: event_boxes(&d),
        created: when(w.created_at),
        updated: when(w.updated_at),
        may_write: may_write(person),
        attempts,
        d,
        w,
        e,
    };
    html(status, &page)
}

async fn show(State(state): State<AppState>, person: Person, Path(id): Path<String>) -> Response {
    let e = Refusal::default();
    show_page(&state, &person, &id, None, e, StatusCode::OK, None).await
}

async fn update(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (csrf, d) = draft_of(&fields);
    if let Some(r) = csrf_refusal(&person.csrf, &csrf) {
        return r;
    }
    let Ok(webhook) = id.parse::<WebhookId>() else {
        return not_found(&person);
    };
    let patch = WebhookPatch {
        url: Some(d.url.clone()),
        event_types: Some(d.event_types()),
        enabled: Some(d.enabled),
        description: Some(d.description.clone()),
    };
    match ops::webhooks::update(&state, &person.caller, webhook, &patch).await {
        Ok(_) => {
            let flash = Some("Webhook saved.".to_owned());
            let e = Refusal::default();
            show_page(&state, &person, &id, None, e, StatusCode::OK, flash).await
        }
        Err(e) => {
            let (e, status) = Refusal::of_api(&e);
            show_page(&state, &person, &id, Some(d), e, status, None).await
        }
    }
}

#[derive(serde::Deserialize)]
struct ConfirmForm {
    csrf: String,
    confirm: Option<String>,
}

async fn rotate(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    let Ok(webhook) = id.parse::<WebhookId>() else {
        return not_found(&person);
    };
    if form.confirm.as_deref() != Some("yes") {
        let e = Refusal {
            field: "confirm-rotate".into(),
            text: "Tick “Yes, replace the secret” to confirm.".into(),
        };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return show_page(&state, &person, &id, None, e, status, None).await;
    }
    match ops::webhooks::rotate_secret(&state, &person.caller, webhook).await {
        Ok(rotated) => html(
            StatusCode::OK,
            &SecretPage {
                c: person.chrome("Signing secret replaced"),
                id: rotated.webhook.id.to_string(),
                url: rotated.webhook.url.clone(),
                secret: rotated.secret,
                rotated: true,
            },
        ),
        Err(e) => refused(&person, &e),
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
    let Ok(webhook) = id.parse::<WebhookId>() else {
        return not_found(&person);
    };
    if form.confirm.as_deref() != Some("yes") {
        let e = Refusal {
            field: "confirm-delete".into(),
            text: "Tick “Yes, delete this webhook” to confirm.".into(),
        };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return show_page(&state, &person, &id, None, e, status, None).await;
    }
    match ops::webhooks::delete(&state, &person.caller, webhook).await {
        Ok(()) => list_page(&state, &person, Some("Webhook deleted.".into())).await,
        Err(e) => refused(&person, &e),
    }
}
