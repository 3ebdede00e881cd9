//! Webhook subscriptions of the caller's workspace (create — the only answer with the secret,
//! besides rotation —, list, get, update, delete, rotate the secret) and each subscription's
//! delivery log. Reading needs `keyward.webhooks:read`; changing needs
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

use keyward_core::api::Page;
use keyward_core::events::{
    CreateWebhook, CreatedWebhook, DeliveryAttempt, EventType, Webhook, WebhookPatch, WebhookView,
};
use keyward_core::{validate, DomainError, WebhookId};
use keyward_store::Cursor;

use super::paging::into_page;
use super::{Caller, PageParams};
use crate::error::ApiError;
use crate::events::destination::UrlRefusal;
use crate::events::generate_secret;
use crate::state::AppState;

/// Longest accepted description.
const MAX_DESCRIPTION: usize = 1_000;

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

/// A webhook that names a type carrying a secret (`change_request.created`, with approval
/// codes) is the approvers' channel: pointing one somewhere, or subscribing one to it, needs
/// `keyward.security:approve` as well, so a requester cannot route the codes to themselves.
fn ensure_may_receive_codes(caller: &Caller, types: Option<&[EventType]>) -> Result<(), ApiError> {
    if types.is_some_and(|ts| ts.iter().any(EventType::carries_secret)) {
        caller.require(super::change_requests::APPROVE)?;
    }
    Ok(())
}

fn description(text: Option<&str>) -> Result<String, ApiError> {
    let text = text.unwrap_or_default();
    Ok(validate::description_of_at_most(
        text,
        "description",
        MAX_DESCRIPTION,
    )?)
}

/// Creates a subscription; the answer is the only one with its secret (but for rotation).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    req: &CreateWebhook,
) -> Result<CreatedWebhook, ApiError> {
    caller.require("keyward.webhooks:write")?;
    caller.require_workspace_scope()?;
    let now = state.now();
    let webhook = Webhook {
        id: WebhookId::random(&mut rand_core::OsRng),
        workspace_id: caller.workspace_id(),
        url: url(state, &req.url)?,
        event_types: event_types(req.event_types.as_deref())?,
        enabled: req.enabled.unwrap_or(true),
        description: description(req.description.as_deref())?,
        secret: generate_secret(),
        created_at: now,
        updated_at: now,
    };
    ensure_may_receive_codes(caller, webhook.event_types.as_deref())?;
    let view = view(&webhook);
    let audit = caller
        .audit(state, "webhook.created", "webhook", webhook.id.to_string())
        .after(&view);
    state.store.create_webhook(&webhook, &audit).await?;
    tracing::info!(webhook = %webhook.id, by = %caller.id(), "webhook created");
    Ok(CreatedWebhook {
        webhook: view,
        secret: webhook.secret.expose().to_owned(),
    })
}

/// Lists the workspace's subscriptions.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    page: &PageParams,
) -> Result<Page<WebhookView>, ApiError> {
    caller.require("keyward.webhooks:read")?;
    let (page, size) = page.request()?;
    let items = state
        .store
        .list_webhooks(caller.workspace_id(), &page)
        .await?;
    Ok(into_page(
        items,
        size,
        |w| Cursor {
            created_at: w.created_at,
            id: w.id.uuid(),
        },
        |w| view(&w),
    ))
}

async fn find(state: &AppState, caller: &Caller, id: WebhookId) -> Result<Webhook, ApiError> {
    state
        .store
        .webhook(caller.workspace_id(), id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))
}

/// One subscription.
pub async fn get(
    state: &AppState,
    caller: &Caller,
    id: WebhookId,
) -> Result<WebhookView, ApiError> {
    caller.require("keyward.webhooks:read")?;
    Ok(view(&find(state, caller, id).await?))
}

/// Changes a subscription; disabling it cancels its queued deliveries.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: WebhookId,
    patch: &WebhookPatch,
) -> Result<WebhookView, ApiError> {
    caller.require("keyward.webhooks:write")?;
    caller.require_workspace_scope()?;
    let mut w = find(state, caller, id).await?;
    let audit = caller
        .audit(state, "webhook.updated", "webhook", w.id.to_string())
        .before(&view(&w));
    if let Some(u) = &patch.url {
        w.url = url(state, u)?;
    }
    if let Some(types) = &patch.event_types {
        w.event_types = event_types(types.as_deref())?;
    }
    if patch.url.is_some() || patch.event_types.is_some() {
        ensure_may_receive_codes(caller, w.event_types.as_deref())?;
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
    Ok(view)
}

/// Replaces a subscription's secret; the answer is the only one with the new secret.
pub async fn rotate_secret(
    state: &AppState,
    caller: &Caller,
    id: WebhookId,
) -> Result<CreatedWebhook, ApiError> {
    caller.require("keyward.webhooks:write")?;
    caller.require_workspace_scope()?;
    let mut w = find(state, caller, id).await?;
    let audit = caller
        .audit(state, "webhook.secret_rotated", "webhook", w.id.to_string())
        .before(&view(&w));
    w.secret = generate_secret();
    w.updated_at = state.now();
    let view = view(&w);
    state.store.update_webhook(&w, &audit.after(&view)).await?;
    tracing::info!(webhook = %w.id, by = %caller.id(), "webhook secret rotated");
    Ok(CreatedWebhook {
        webhook: view,
        secret: w.secret.expose().to_owned(),
    })
}

/// Deletes a subscription with its deliveries.
pub async fn delete(state: &AppState, caller: &Caller, id: WebhookId) -> Result<(), ApiError> {
    caller.require("keyward.webhooks:write")?;
    caller.require_workspace_scope()?;
    let w = find(state, caller, id).await?;
    let audit = caller
        .audit(state, "webhook.deleted", "webhook", w.id.to_string())
        .before(&view(&w));
    state
        .store
        .delete_webhook(w.workspace_id, w.id, &audit)
        .await?;
    tracing::info!(webhook = %w.id, by = %caller.id(), "webhook deleted");
    Ok(())
}

/// A subscription's delivery log.
pub async fn deliveries(
    state: &AppState,
    caller: &Caller,
    id: WebhookId,
    page: &PageParams,
) -> Result<Page<DeliveryAttempt>, ApiError> {
    caller.require("keyward.webhooks:read")?;
    let w = find(state, caller, id).await?;
    let (page, size) = page.request()?;
    let rows = state
        .store
        .list_attempts(w.workspace_id, w.id, &page)
        .await?;
    Ok(into_page(
        rows,
        size,
        |r| Cursor {
            created_at: r.attempt.at,
            id: r.id,
        },
        |r| r.attempt,
    ))
}
