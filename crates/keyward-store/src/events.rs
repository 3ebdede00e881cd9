//! Events and webhooks: subscriptions, the event outbox, deliveries (one per subscription per
//! event) with their attempts, and the expiry notices already sent. Part of [`crate::Store`].
//!
//! Enqueueing an event stores it and a pending delivery for each enabled subscription of its
//! workspace that wants its type, in one transaction. Delivery workers on any number of nodes
//! *claim* due deliveries by moving their `next_attempt_at` to a lease in a conditional update,
//! so no two claim the same delivery; a worker that dies mid-send leaves the delivery to be
//! retried once the lease has passed.
//!
//! Subscription changes (create, update — a secret rotation included —, delete) are admin
//! mutations: like those of the other stores they take the change's [`AuditDraft`] and append
//! it in their own transaction. The caller's draft must hold the subscription's view, never its
//! secret. Enqueueing, claiming, attempts and notices are keyward's own work and unaudited.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyward_core::audit::AuditDraft;
use keyward_core::events::{DeliveryAttempt, Event, Webhook, WebhookSecret};
use keyward_core::{DeliveryId, EventId, TokenId, WebhookId, WorkspaceId};

use crate::{PageRequest, Result};

/// A delivery claimed for sending, with what sending it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    /// The delivery.
    pub id: DeliveryId,
    /// Its subscription.
    pub webhook_id: WebhookId,
    /// The subscription's workspace.
    pub workspace_id: WorkspaceId,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The event (`webhook-id`).
    pub event_id: EventId,
    /// The exact body to send.
    pub body: String,
    /// Where to send it.
    pub url: String,
    /// The subscription's signing secret.
    pub secret: WebhookSecret,
}

/// What a delivery worker asks [`EventStore::claim_deliveries`] for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Deliveries due at this instant (or before) are claimed.
    pub now: DateTime<Utc>,
    /// The claimed deliveries are leased until then: nobody claims them again before.
    pub lease_until: DateTime<Utc>,
    /// Deliveries claimed at most.
    pub limit: u32,
    /// Deliveries of one subscription claimed at most.
    pub per_webhook: u32,
    /// Subscriptions whose deliveries are not claimed (the worker has enough in flight).
    pub skip_webhooks: Vec<WebhookId>,
    /// Workspaces whose deliveries are not claimed.
    pub skip_workspaces: Vec<WorkspaceId>,
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventsPruned {
    /// Events.
    pub events: u64,
    /// Finished deliveries.
    pub deliveries: u64,
    /// Their attempts.
    pub attempts: u64,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The receiver's status, if it answered.
    pub status_code: Option<u16>,
    /// Why it failed, if it did (never a secret).
    pub error: Option<String>,
    /// What happens next.
    pub next: NextStep,
}

/// A delivery's state after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Delivered: done.
    Succeeded,
    /// Failed; try again at this instant.
    RetryAt(DateTime<Utc>),
    /// Failed for the last time.
    Failed,
}

/// The kinds of expiry notice, each sent at most once per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// `token.expiring`.
    Expiring,
    /// `token.expired`.
    Expired,
}

impl NoticeKind {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            NoticeKind::Expiring => "expiring",
            NoticeKind::Expired => "expired",
        }
    }
}

/// Event and webhook storage.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Inserts a subscription, appending `audit` in the same transaction.
    async fn create_webhook(&self, w: &Webhook, audit: &AuditDraft) -> Result<()>;
    /// One subscription of a workspace.
    async fn webhook(&self, ws: WorkspaceId, id: WebhookId) -> Result<Option<Webhook>>;
    /// A page of a workspace's subscriptions.
    async fn list_webhooks(&self, ws: WorkspaceId, page: &PageRequest) -> Result<Vec<Webhook>>;
    /// Replaces a subscription's mutable fields (its secret included), appending `audit` in
    /// the same transaction. A subscription left disabled has its pending deliveries (queued
    /// retries included) cancelled: they become failed, with `last_error` `cancelled`, and
    /// are never sent.
    async fn update_webhook(&self, w: &Webhook, audit: &AuditDraft) -> Result<()>;
    /// Deletes a subscription with its deliveries, appending `audit` in the same transaction.
    async fn delete_webhook(
        &self,
        ws: WorkspaceId,
        id: WebhookId,
        audit: &AuditDraft,
    ) -> Result<()>;

    /// Stores the event and one pending delivery, due at the event's time, per enabled
    /// subscription of its workspace that wants its type. Returns the deliveries created.
    async fn enqueue_event(&self, event: &Event) -> Result<u64>;

    /// Claims notice `kind` of `token` and, only if it was not claimed before, enqueues
    /// `event` in the same transaction. Returns whether this call claimed it.
    async fn enqueue_notice(&self, token: TokenId, kind: NoticeKind, event: &Event)
        -> Result<bool>;

    /// Tokens of `ws` not revoked, expiring before `before` (and, when `after` is set, not
    /// before `after`), that have no notice `kind` yet; at most `limit`, soonest first.
    async fn notice_candidates(
        &self,
        ws: WorkspaceId,
        kind: NoticeKind,
        after: Option<DateTime<Utc>>,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<TokenId>>;

    /// A page of a workspace's events, oldest first.
    async fn list_events(&self, ws: WorkspaceId, page: &PageRequest) -> Result<Vec<Event>>;

    /// Claims pending deliveries of enabled subscriptions due at `claim.now`, soonest first,
    /// leasing them until `claim.lease_until`: at most `claim.limit`, at most
    /// `claim.per_webhook` of one subscription, none of the skipped subscriptions and
    /// workspaces.
    async fn claim_deliveries(&self, claim: &Claim) -> Result<Vec<DueDelivery>>;

    /// Gives claimed deliveries back unsent: pending ones become due at `due_at`.
    async fn release_deliveries(&self, ids: &[DeliveryId], due_at: DateTime<Utc>) -> Result<()>;

    /// Records an attempt and the delivery's next state, in one transaction. A delivery that
    /// is no longer pending (cancelled while the attempt was under way) keeps its state; the
    /// attempt is logged all the same. `NotFound` if the delivery is gone (its subscription
    /// was deleted).
    async fn record_attempt(&self, delivery: DeliveryId, result: &AttemptResult) -> Result<()>;

    /// Deletes finished (succeeded or failed) deliveries of events older than `before`, with
    /// their attempts, then the events older than `before` left without deliveries. Pending
    /// deliveries and their events are kept whatever their age.
    async fn prune_events(&self, before: DateTime<Utc>) -> Result<EventsPruned>;

    /// A page of the attempts of a subscription's deliveries, oldest first.
    async fn list_attempts(
        &self,
        ws: WorkspaceId,
        webhook: WebhookId,
        page: &PageRequest,
    ) -> Result<Vec<AttemptRow>>;
}

/// An attempt with its listing position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    /// The attempt's own id (the cursor's tie-breaker).
    pub id: uuid::Uuid,
    /// The attempt.
    pub attempt: DeliveryAttempt,
}
