//! `EventStore`: webhook subscriptions, enqueueing with the subscription filter, claiming
//! due deliveries once, attempts and their log, expiry notices claimed once; subscription
//! changes append their audit event in their own transaction, refused ones append nothing.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keyward_core::events::{Event, EventType, Webhook, WebhookSecret};
use keyward_core::model::TokenStatus;
use keyward_core::{EventId, WebhookId, WorkspaceId};
use keyward_store::{
    AttemptResult, AuditFilter, Claim, EventsPruned, NextStep, NoticeKind, Store, StoreError,
};
use rand_core::OsRng;

use crate::fixtures::*;
use crate::support::first;

conformance!(
    events_webhooks_round_trip_and_stay_in_their_workspace,
    events_enqueue_follows_filters_and_claims_once,
    events_attempts_are_logged_and_retried,
    events_notices_are_claimed_once,
    events_webhook_changes_are_audited_with_them,
    events_claims_are_capped_per_webhook_and_skip_what_is_full,
    events_disabling_cancels_queued_deliveries,
    events_retention_prunes_only_old_finished_data,
);

fn webhook(ws: WorkspaceId, url: &str, types: Option<Vec<EventType>>) -> Webhook {
    let t = now().ms();
    Webhook {
        id: WebhookId::random(&mut OsRng),
        workspace_id: ws,
        url: url.into(),
        event_types: types,
        enabled: true,
        description: "test".into(),
        secret: WebhookSecret::new("whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0".into()),
        created_at: t,
        updated_at: t,
    }
}

/// A claim of at most `limit`, as many per subscription, skipping nothing.
fn claim(now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32) -> Claim {
    Claim {
        now,
        lease_until,
        limit,
        per_webhook: limit,
        skip_webhooks: Vec::new(),
        skip_workspaces: Vec::new(),
    }
}

fn event(ws: &keyward_store::WorkspaceBootstrap, t: EventType) -> Event {
    Event::about_token(EventId::random(&mut OsRng), t, &ws.token, now().ms())
}

async fn events_webhooks_round_trip_and_stay_in_their_workspace(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "a").await;
    let b = new_workspace(&store, "b").await;
    let mut w = webhook(
        a.workspace.id,
        "http://127.0.0.1:9/hook",
        Some(vec![EventType::TokenRevoked]),
    );
    store.create_webhook(&w, &ev(&a)).await.unwrap();
    assert_eq!(
        store.webhook(a.workspace.id, w.id).await.unwrap(),
        Some(w.clone())
    );
    assert_eq!(store.webhook(b.workspace.id, w.id).await.unwrap(), None);
    w.enabled = false;
    w.event_types = None;
    w.secret = WebhookSecret::new("whsec_b3RoZXI=".into());
    store.update_webhook(&w, &ev(&a)).await.unwrap();
    let listed = store
        .list_webhooks(a.workspace.id, &first(10))
        .await
        .unwrap();
    assert_eq!(listed, vec![w.clone()]);
    assert!(store
        .list_webhooks(b.workspace.id, &first(10))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .delete_webhook(b.workspace.id, w.id, &ev(&b))
        .await
        .is_err());
    store
        .delete_webhook(a.workspace.id, w.id, &ev(&a))
        .await
        .unwrap();
    assert_eq!(store.webhook(a.workspace.id, w.id).await.unwrap(), None);
}

/// The actions of a workspace's audit trail, oldest first.
async fn actions(store: &Arc<dyn Store>, ws: WorkspaceId) -> Vec<String> {
    let f = AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    };
    let events = store.list_audit(ws, &f).await.unwrap();
    events.into_iter().map(|e| e.draft.action).collect()
}

fn draft(ws: WorkspaceId, action: &str) -> keyward_core::audit::AuditDraft {
    keyward_core::audit::AuditDraft {
        action: action.into(),
        ..ev(&ws)
    }
}

async fn events_webhook_changes_are_audited_with_them(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "a").await;
    let b = new_workspace(&store, "b").await;
    let (wa, wb) = (a.workspace.id, b.workspace.id);
    let mut w = webhook(wa, "http://127.0.0.1:9/hook", None);
    store
        .create_webhook(&w, &draft(wa, "webhook.created"))
        .await
        .unwrap();
    w.enabled = false;
    store
        .update_webhook(&w, &draft(wa, "webhook.updated"))
        .await
        .unwrap();
    // Refused (not in that workspace, or unknown): neither the change nor its event is stored.
    let mut elsewhere = w.clone();
    elsewhere.workspace_id = wb;
    assert!(store
        .update_webhook(&elsewhere, &draft(wb, "webhook.updated"))
        .await
        .is_err());
    assert!(store
        .delete_webhook(wb, w.id, &draft(wb, "webhook.deleted"))
        .await
        .is_err());
    let ghost = webhook(wa, "http://127.0.0.1:9/ghost", None);
    assert!(store
        .update_webhook(&ghost, &draft(wa, "webhook.updated"))
        .await
        .is_err());
    store
        .delete_webhook(wa, w.id, &draft(wa, "webhook.deleted"))
        .await
        .unwrap();
    // The bootstrap's own event comes first.
    assert_eq!(
        actions(&store, wa).await,
        [
            "test.change",
            "webhook.created",
            "webhook.updated",
            "webhook.deleted"
        ]
    );
    assert_eq!(actions(&store, wb).await, ["test.change"]);
}

async fn events_enqueue_follows_filters_and_claims_once(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "a").await;
    let all = webhook(a.workspace.id, "http://127.0.0.1:9/all", None);
    let revoked_only = webhook(
        a.workspace.id,
        "http://127.0.0.1:9/revoked",
        Some(vec![EventType::TokenRevoked]),
    );
    let mut disabled = webhook(a.workspace.id, "http://127.0.0.1:9/off", None);
    disabled.enabled = false;
    for w in [&all, &revoked_only, &disabled] {
        store.create_webhook(w, &ev(&a)).await.unwrap();
    }
    let created = event(&a, EventType::TokenCreated);
    assert_eq!(store.enqueue_event(&created).await.unwrap(), 1);
    let revoked = event(&a, EventType::TokenRevoked);
    assert_eq!(store.enqueue_event(&revoked).await.unwrap(), 2);
    let events = store.list_events(a.workspace.id, &first(10)).await.unwrap();
    assert_eq!(events.len(), 2);

    let t = now() + Duration::seconds(1);
    let lease = t + Duration::seconds(30);
    // Two claimers at once: each delivery goes to exactly one.
    let c = claim(t, lease, 10);
    let (x, y) = tokio::join!(store.claim_deliveries(&c), store.claim_deliveries(&c));
    let mut claimed: Vec<_> = x.unwrap().into_iter().chain(y.unwrap()).collect();
    assert_eq!(claimed.len(), 3, "{claimed:?}");
    claimed.sort_by_key(|d| d.id);
    claimed.dedup_by_key(|d| d.id);
    assert_eq!(claimed.len(), 3);
    // Leased: not due again until the lease has passed.
    assert!(store
        .claim_deliveries(&claim(t, lease, 10))
        .await
        .unwrap()
        .is_empty());
    let again = store
        .claim_deliveries(&claim(lease, lease + Duration::seconds(30), 10))
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
    let body: serde_json::Value = serde_json::from_str(&again[0].body).unwrap();
    assert!(body["type"].as_str().unwrap().starts_with("token."));
    assert_eq!(body["data"]["id"], a.token.id.to_string());
}

async fn events_attempts_are_logged_and_retried(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "a").await;
    let w = webhook(a.workspace.id, "http://127.0.0.1:9/all", None);
    store.create_webhook(&w, &ev(&a)).await.unwrap();
    store
        .enqueue_event(&event(&a, EventType::TokenCreated))
        .await
        .unwrap();
    let t0 = now().ms() + Duration::seconds(1);
    let d = store
        .claim_deliveries(&claim(t0, t0 + Duration::seconds(30), 10))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(d.attempts, 0);
    let retry = t0 + Duration::seconds(2);
    store
        .record_attempt(
            d.id,
            &AttemptResult {
                at: t0,
                status_code: Some(500),
                error: Some("HTTP 500".into()),
                next: NextStep::RetryAt(retry),
            },
        )
        .await
        .unwrap();
    assert!(store
        .claim_deliveries(&claim(t0 + Duration::seconds(1), retry, 10))
        .await
        .unwrap()
        .is_empty());
    let d2 = store
        .claim_deliveries(&claim(retry, retry + Duration::seconds(30), 10))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!((d2.id, d2.attempts), (d.id, 1));
    store
        .record_attempt(
            d.id,
            &AttemptResult {
                at: retry,
                status_code: Some(204),
                error: None,
                next: NextStep::Succeeded,
            },
        )
        .await
        .unwrap();
    assert!(store
        .claim_deliveries(&claim(
            retry + Duration::days(1),
            retry + Duration::days(2),
            10
        ))
        .await
        .unwrap()
        .is_empty());
    let log = store
        .list_attempts(a.workspace.id, w.id, &first(10))
        .await
        .unwrap();
    let shown: Vec<_> = log
        .iter()
        .map(|r| {
            (
                r.attempt.attempt,
                r.attempt.succeeded,
                r.attempt.status_code,
            )
        })
        .collect();
    assert_eq!(shown, vec![(1, false, Some(500)), (2, true, Some(204))]);
    let other = new_workspace(&store, "b").await;
    assert!(store
        .list_attempts(other.workspace.id, w.id, &first(10))
        .await
        .unwrap()
        .is_empty());
}

async fn events_notices_are_claimed_once(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "a").await;
    let base = now().ms();
    let mut soon = token(&a.user, "soon");
    soon.expires_at = Some(base + Duration::days(3));
    let mut revoked = token(&a.user, "revoked");
    revoked.expires_at = Some(base + Duration::days(2));
    revoked.status = TokenStatus::Revoked;
    revoked.revoked_at = Some(base);
    let mut later = token(&a.user, "later");
    later.expires_at = Some(base + Duration::days(30));
    for t in [&soon, &revoked, &later] {
        store.create_token(t, &ev(t)).await.unwrap();
    }
    let horizon = base + Duration::days(7);
    let found = store
        .notice_candidates(
            a.workspace.id,
            NoticeKind::Expiring,
            Some(base),
            horizon,
            10,
        )
        .await
        .unwrap();
    assert_eq!(found, vec![soon.id]);
    let e = Event::about_token(
        EventId::random(&mut OsRng),
        EventType::TokenExpiring,
        &soon,
        base,
    );
    let e2 = Event {
        id: EventId::random(&mut OsRng),
        ..e.clone()
    };
    let (x, y) = tokio::join!(
        store.enqueue_notice(soon.id, NoticeKind::Expiring, &e),
        store.enqueue_notice(soon.id, NoticeKind::Expiring, &e2)
    );
    assert_eq!(
        [x.unwrap(), y.unwrap()].iter().filter(|c| **c).count(),
        1,
        "exactly one claim wins"
    );
    assert!(store
        .notice_candidates(
            a.workspace.id,
            NoticeKind::Expiring,
            Some(base),
            horizon,
            10
        )
        .await
        .unwrap()
        .is_empty());
    // The other kind is separate.
    let expired = store
        .notice_candidates(
            a.workspace.id,
            NoticeKind::Expired,
            None,
            base + Duration::days(4),
            10,
        )
        .await
        .unwrap();
    assert_eq!(expired, vec![soon.id]);
    let events = store.list_events(a.workspace.id, &first(10)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::TokenExpiring);
}

fn at_time(ws: &keyward_store::WorkspaceBootstrap, t: DateTime<Utc>) -> Event {
    Event::about_token(
        EventId::random(&mut OsRng),
        EventType::TokenCreated,
        &ws.token,
        t.ms(),
    )
}

fn result(at: DateTime<Utc>, next: NextStep) -> AttemptResult {
    AttemptResult {
        at,
        status_code: matches!(next, NextStep::Succeeded).then_some(200),
        error: (!matches!(next, NextStep::Succeeded)).then(|| "delivery_failed".into()),
        next,
    }
}

async fn events_claims_are_capped_per_webhook_and_skip_what_is_full(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "a").await;
    let b = new_workspace(&store, "b").await;
    let wa1 = webhook(a.workspace.id, "http://192.0.2.1/a1", None);
    let wa2 = webhook(a.workspace.id, "http://192.0.2.1/a2", None);
    let wb = webhook(b.workspace.id, "http://192.0.2.1/b", None);
    for w in [&wa1, &wa2, &wb] {
        store.create_webhook(w, &ev(&w.workspace_id)).await.unwrap();
    }
    for _ in 0..3 {
        store
            .enqueue_event(&event(&a, EventType::TokenCreated))
            .await
            .unwrap();
        store
            .enqueue_event(&event(&b, EventType::TokenCreated))
            .await
            .unwrap();
    }
    let t = now().ms() + Duration::seconds(1);
    let lease = t + Duration::seconds(30);
    let per = |ds: &[keyward_store::DueDelivery], w: &Webhook| {
        ds.iter().filter(|d| d.webhook_id == w.id).count()
    };
    let capped = Claim {
        per_webhook: 2,
        ..claim(t, lease, 100)
    };
    let got = store.claim_deliveries(&capped).await.unwrap();
    assert_eq!(got.len(), 6, "{got:?}");
    for w in [&wa1, &wa2, &wb] {
        assert_eq!(per(&got, w), 2);
    }
    for d in &got {
        let owner = [&wa1, &wa2, &wb]
            .into_iter()
            .find(|w| w.id == d.webhook_id)
            .unwrap();
        assert_eq!(d.workspace_id, owner.workspace_id);
        assert_eq!(d.url, owner.url);
    }
    // One of wa1's given back is due again; the others stay leased.
    let back = got.iter().find(|d| d.webhook_id == wa1.id).unwrap().id;
    store.release_deliveries(&[back], t).await.unwrap();
    // Skipping wa2 and workspace b leaves wa1's two: the one given back and the unclaimed one.
    let skipping = Claim {
        skip_webhooks: vec![wa2.id],
        skip_workspaces: vec![b.workspace.id],
        ..claim(t, lease, 100)
    };
    let got = store.claim_deliveries(&skipping).await.unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(per(&got, &wa1), 2);
    assert!(got.iter().any(|d| d.id == back));
    let rest = store.claim_deliveries(&claim(t, lease, 100)).await.unwrap();
    assert_eq!((rest.len(), per(&rest, &wa2), per(&rest, &wb)), (2, 1, 1));
    assert!(store
        .claim_deliveries(&claim(t, lease, 100))
        .await
        .unwrap()
        .is_empty());
}

async fn events_disabling_cancels_queued_deliveries(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "a").await;
    let mut w = webhook(a.workspace.id, "http://192.0.2.1/off", None);
    let keep = webhook(a.workspace.id, "http://192.0.2.1/keep", None);
    for x in [&w, &keep] {
        store.create_webhook(x, &ev(&a)).await.unwrap();
    }
    for _ in 0..2 {
        store
            .enqueue_event(&event(&a, EventType::TokenCreated))
            .await
            .unwrap();
    }
    let t = now().ms() + Duration::seconds(1);
    let one_each = Claim {
        per_webhook: 1,
        ..claim(t, t + Duration::seconds(30), 10)
    };
    let got = store.claim_deliveries(&one_each).await.unwrap();
    let in_flight = got.iter().find(|d| d.webhook_id == w.id).unwrap().id;
    // The first attempt failed and a retry is queued; the second delivery was never tried.
    store
        .record_attempt(
            in_flight,
            &result(t, NextStep::RetryAt(t + Duration::seconds(2))),
        )
        .await
        .unwrap();
    w.enabled = false;
    store.update_webhook(&w, &ev(&a)).await.unwrap();
    let later = t + Duration::days(1);
    let got = store
        .claim_deliveries(&claim(later, later + Duration::seconds(30), 10))
        .await
        .unwrap();
    assert!(got.iter().all(|d| d.webhook_id == keep.id), "{got:?}");
    assert_eq!(got.len(), 2);
    // Re-enabling does not bring the cancelled ones back.
    w.enabled = true;
    store.update_webhook(&w, &ev(&a)).await.unwrap();
    let much_later = t + Duration::days(2);
    let got = store
        .claim_deliveries(&claim(much_later, much_later + Duration::seconds(30), 10))
        .await
        .unwrap();
    assert!(got.iter().all(|d| d.webhook_id == keep.id), "{got:?}");
    // An attempt under way when it was cancelled is logged, but the delivery stays failed.
    store
        .record_attempt(in_flight, &result(much_later, NextStep::Succeeded))
        .await
        .unwrap();
    let log = store
        .list_attempts(a.workspace.id, w.id, &first(10))
        .await
        .unwrap();
    let shown: Vec<_> = log
        .iter()
        .map(|r| (r.attempt.attempt, r.attempt.delivery_status))
        .collect();
    use keyward_core::events::DeliveryStatus::{Failed, Pending};
    assert_eq!(shown, vec![(1, Pending), (2, Failed)]);
    // A delivery whose subscription is gone cannot be recorded.
    store
        .delete_webhook(a.workspace.id, w.id, &ev(&a))
        .await
        .unwrap();
    assert!(matches!(
        store
            .record_attempt(in_flight, &result(much_later, NextStep::Succeeded))
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn events_retention_prunes_only_old_finished_data(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "a").await;
    let base = now().ms();
    let old = base - Duration::days(40);
    let recent = base - Duration::days(1);
    // Before any subscription: an old event without deliveries.
    let lonely = at_time(&a, old);
    assert_eq!(store.enqueue_event(&lonely).await.unwrap(), 0);
    let w = webhook(a.workspace.id, "http://192.0.2.1/all", None);
    store.create_webhook(&w, &ev(&a)).await.unwrap();
    let (done, failed, pending, fresh) = (
        at_time(&a, old),
        at_time(&a, old + Duration::seconds(1)),
        at_time(&a, old + Duration::seconds(2)),
        at_time(&a, recent),
    );
    for e in [&done, &failed, &pending, &fresh] {
        assert_eq!(store.enqueue_event(e).await.unwrap(), 1);
    }
    let due = store
        .claim_deliveries(&claim(base, base + Duration::seconds(30), 10))
        .await
        .unwrap();
    assert_eq!(due.len(), 4);
    let delivery = |e: &Event| due.iter().find(|d| d.event_id == e.id).unwrap().id;
    let retry = NextStep::RetryAt(base + Duration::hours(1));
    for (e, next) in [
        (&done, NextStep::Succeeded),
        (&failed, NextStep::Failed),
        (&pending, retry),
        (&fresh, NextStep::Succeeded),
    ] {
        store
            .record_attempt(delivery(e), &result(base, next))
            .await
            .unwrap();
    }

    let cutoff = base - Duration::days(30);
    let pruned = store.prune_events(cutoff).await.unwrap();
    assert_eq!(
        pruned,
        EventsPruned {
            events: 3,
            deliveries: 2,
            attempts: 2
        }
    );
    let left: Vec<_> = store
        .list_events(a.workspace.id, &first(10))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, vec![pending.id, fresh.id]);
    let log = store
        .list_attempts(a.workspace.id, w.id, &first(10))
        .await
        .unwrap();
    assert_eq!(log.len(), 2);
    assert!(log
        .iter()
        .all(|r| [pending.id, fresh.id].contains(&r.attempt.event_id)));
    assert_eq!(
        store.prune_events(cutoff).await.unwrap(),
        EventsPruned::default()
    );

    // Once the pending one has failed for good, it goes too; the recent one stays.
    let again = store
        .claim_deliveries(&claim(
            base + Duration::hours(1),
            base + Duration::hours(2),
            10,
        ))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    store
        .record_attempt(
            again[0].id,
            &result(base + Duration::hours(1), NextStep::Failed),
        )
        .await
        .unwrap();
    let pruned = store.prune_events(cutoff).await.unwrap();
    assert_eq!(
        pruned,
        EventsPruned {
            events: 1,
            deliveries: 1,
            attempts: 2
        }
    );
    let left = store.list_events(a.workspace.id, &first(10)).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, fresh.id);
}
