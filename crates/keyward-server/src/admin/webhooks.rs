//! `/v1/webhooks`: webhook subscriptions of the caller's workspace (create — the only answer
//! with the secret, besides rotation —, list, get, update, delete, rotate the secret) and
//! each subscription's delivery log. Reading needs `keyward.webhooks:read`; changing needs
//! `keyward.webhooks:write` and workspace scope (events are about every token of the
//! workspace, not only the caller's owner's).
//!
//! URLs are checked by [`url`]: only `http(s)`, no credentials, and no destination the
//! operator's policy refuses (loopback, private… in any spelling); the delivery worker checks
//! again at send time, after DNS resolution. Disabling a subscription cancels its queued
//! deliveries and retries.
//!
//! Every change is audited in its own transaction (`webhook.created`, `webhook.updated`,
//! `webhook.deleted`, `webhook.secret_rotated`) with the subscription's [`WebhookView`] as
//! before/after: the secret never reaches the trail.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keyward_core::api::Page;
use keyward_core::events::{
    CreateWebhook, CreatedWebhook, DeliveryAttempt, EventType, Webhook, WebhookPatch, WebhookView,
};
use keyward_core::{validate, DomainError, WebhookId};
use keyward_store::Cursor;

use super::{into_page, PageParams};
use crate::error::ApiError;
use crate::events::destination::UrlRefusal;
use crate::events::generate_secret;
use crate::extract::{path_id, ApiJson, ApiQuery, Caller};
use crate::state::AppState;

/// Longest accepted description.
const MAX_DESCRIPTION: usize = 1_000;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks", post(create).get(list))
        .route("/v1/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/v1/webhooks/{id}/rotate-secret", post(rotate))
        .route("/v1/webhooks/{id}/deliveries", get(deliveries))
}

/// An `http` or `https` URL with a host, without credentials, to a destination the
/// operator's policy permits ([`crate::events::destination`]); answers its normalised form.
/// Refused with a 422 naming `url`, never echoing it: `INVALID_URL`,
/// `WEBHOOK_URL_CREDENTIALS` or `WEBHOOK_DESTINATION_FORBIDDEN`.
fn url(state: &AppState, raw: &str) -> Result<String, ApiError> {
    let refused = match state.events.destinations.check_url(raw) {
        Ok(url) => return Ok(url.into()),
        Err(r) => r,
    };
    let e = match refused {
        UrlRefusal::Invalid(why) => DomainError::field("INVALID_URL", "url", format!("url {why}")),
        UrlRefusal::Credentials => DomainError::field(
            "WEBHOOK_URL_CREDENTIALS",
            "url",
            "url must not carry a user name or password: authenticate deliveries with the \
             signature instead",
        ),
        UrlRefusal::Forbidden => DomainError::field(
            "WEBHOOK_DESTINATION_FORBIDDEN",
            "url",
            "url points to an address webhooks are not delivered to (loopback, private, \
             link-local, unique-local, shared, multicast or unspecified); an operator can \
             permit it with webhooks.allowed_destinations",
        ),
    };
    Err(e.into())
}

/// The API's (and the audit trail's) view of `w`. A URL stored with credentials before they
/// were refused is shown without them; such a subscription is not delivered to
/// (`destination_forbidden`) until its URL is set again.
fn view(w: &Webhook) -> WebhookView {
    let mut v = WebhookView::of(w);
    if let Ok(mut url) = reqwest::Url::parse(&v.url) {
        if !url.username().is_empty() || url.password().is_some() {
            // Both only fail for URLs that cannot have credentials in the first place.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            v.url = url.into();
        }
    }
    v
}

fn event_types(items: Option<&[String]>) -> Result<Option<Vec<EventType>>, ApiError> {
    let Some(items) = items else { return Ok(None) };
    let mut out = Vec::with_capacity(items.len());
    for (i, name) in items.iter().enumerate() {
        let t = EventType::parse(name.trim()).ok_or_else(|| {
            DomainError::field(
                "UNKNOWN_EVENT_TYPE",
                format!("event_types[{i}]"),
                "not an event type keyward emits",
            )
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(Some(out))
}

fn description(text: Option<&str>) -> Result<String, ApiError> {
    let text = text.unwrap_or_default();
    Ok(validate::description_of_at_most(
        text,
        "description",
        MAX_DESCRIPTION,
    )?)
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    caller.require("keyward.webhooks:write")?;
    caller.require_workspace_scope()?;
    let now = state.now();
    let webhook = Webhook {
        id: WebhookId::random(&mut rand_core::OsRng),
        workspace_id: caller.workspace_id(),
        url: url(&state, &req.url)?,
        event_types: event_types(req.event_types.as_deref())?,
        enabled: req.enabled.unwrap_or(true),
        description: description(req.description.as_deref())?,
        secret: generate_secret(),
        created_at: now,
        updated_at: now,
    };
    let view = view(&webhook);
    let audit = caller
        .audit(&state, "webhook.created", "webhook", webhook.id.to_string())
        .after(&view);
    state.store.create_webhook(&webhook, &audit).await?;
    tracing::info!(webhook = %webhook.id, by = %caller.token.token_id, "webhook created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: view,
            secret: webhook.secret.expose().to_owned(),
        }),
    ))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<WebhookView>>, ApiError> {
    caller.require("keyward.webhooks:read")?;
    let (page, size) = q.request()?;
    let items = state
        .store
        .list_webhooks(caller.workspace_id(), &page)
        .await?;
    Ok(Json(into_page(
        items,
        size,
        |w| Cursor {
            created_at: w.created_at,
            id: w.id.uuid(),
        },
        |w| view(&w),
    )))
}

async fn find(state: &AppState, caller: &Caller, raw_id: &str) -> Result<Webhook, ApiError> {
    let id: WebhookId = path_id(raw_id)?;
    state
        .store
        .webhook(caller.workspace_id(), id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    caller.require("keyward.webhooks:read")?;
    Ok(Json(view(&find(&state, &caller, &id).await?)))
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<WebhookPatch>,
) -> Result<Json<WebhookView>, ApiError> {
    caller.require("keyward.webhooks:write")?;
    caller.require_workspace_scope()?;
    let mut w = find(&state, &caller, &id).await?;
    let audit = caller
        .audit(&state, "webhook.updated", "webhook", w.id.to_string())
        .before(&view(&w));
    if let Some(u) = &patch.url {
        w.url = url(&state, u)?;
    }
    if let Some(types) = &patch.event_types {
        w.event_types = event_types(types.as_deref())?;
    }
    if let Some(enabled) = patch.enabled {
        w.enabled = enabled;
    }
    if let Some(d) = &patch.description {
        w.description = description(Some(d))?;
    }
    w.updated_at = state.now();
    let view = view(&w);
    state.store.update_webhook(&w, &audit.after(&view)).await?;
    Ok(Json(view))
}

async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CreatedWebhook>, ApiError> {
    caller.require("keyward.webhooks:write")?;
    caller.require_workspace_scope()?;
    let mut w = find(&state, &caller, &id).await?;
    let audit = caller
        .audit(
            &state,
            "webhook.secret_rotated",
            "webhook",
            w.id.to_string(),
        )
        .before(&view(&w));
    w.secret = generate_secret();
    w.updated_at = state.now();
    let view = view(&w);
    state.store.update_webhook(&w, &audit.after(&view)).await?;
    tracing::info!(webhook = %w.id, by = %caller.token.token_id, "webhook secret rotated");
    Ok(Json(CreatedWebhook {
        webhook: view,
        secret: w.secret.expose().to_owned(),
    }))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require("keyward.webhooks:write")?;
    caller.require_workspace_scope()?;
    let w = find(&state, &caller, &id).await?;
    let audit = caller
        .audit(&state, "webhook.deleted", "webhook", w.id.to_string())
        .before(&view(&w));
    state
        .store
        .delete_webhook(w.workspace_id, w.id, &audit)
        .await?;
    tracing::info!(webhook = %w.id, by = %caller.token.token_id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page<DeliveryAttempt>>, ApiError> {
    caller.require("keyward.webhooks:read")?;
    let w = find(&state, &caller, &id).await?;
    let (page, size) = q.request()?;
    let rows = state
        .store
        .list_attempts(w.workspace_id, w.id, &page)
        .await?;
    Ok(Json(into_page(
        rows,
        size,
        |r| Cursor {
            created_at: r.attempt.at,
            id: r.id,
        },
        |r| r.attempt,
    )))
}
