//! Delivery behaviour: a hung endpoint does not hold up another subscription's deliveries;
//! disabling a subscription stops its queued retries; `max_attempts` ends in a failed
//! delivery; finished events are pruned after `retention_days` by the injected clock.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use keyward_core::events::EventType;
use keyward_store::PageRequest;
use serde_json::json;

use crate::events::{call, eventually, fast, subscribe, Receiver};
use crate::support::TestApp;
use crate::webhook_safety::{both_with, emit, hung, log, wait_log};

fn five_second_timeout(c: &mut keyward_server::Config) {
    fast(c);
    c.webhooks.timeout_secs = 5;
}

async fn a_hung_endpoint_does_not_stall_other_deliveries(app: TestApp) {
    let (stuck_url, stuck_seen) = hung().await;
    let (stuck, _) = subscribe(&app, json!({"url": stuck_url})).await;
    emit(&app).await;
    // The worker is now waiting on the hung receiver (for up to 5 s).
    eventually("the hung receiver is connected to", || {
        stuck_seen.load(Ordering::SeqCst) >= 1
    })
    .await;
    let healthy = Receiver::start(&[]).await;
    let (healthy_id, _) = subscribe(&app, json!({"url": healthy.url})).await;
    let sent = Instant::now();
    emit(&app).await;
    eventually("the healthy subscription delivered", || {
        healthy.count() == 1
    })
    .await;
    let took = sent.elapsed();
    // Delivered while the hung attempt is still in flight: nothing of it is logged yet.
    assert!(
        log(&app, &stuck).await.is_empty(),
        "the healthy delivery waited for the hung one"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(wait_log(&app, &healthy_id, 1).await[0]["succeeded"], true);
}
both_with!(
    a_hung_endpoint_does_not_stall_other_deliveries,
    five_second_timeout
);

async fn disabling_a_webhook_stops_its_queued_retries(app: TestApp) {
    let rx = Receiver::start(&[500]).await;
    let (id, _) = subscribe(&app, json!({"url": rx.url})).await;
    let path = format!("/v1/webhooks/{id}");
    emit(&app).await;
    let first = wait_log(&app, &id, 1).await;
    assert_eq!(first[0]["delivery_status"], "pending", "{first:?}");
    // A retry is queued for 1 s later. Disable, then let it (and more) come due.
    let (status, _) = call(&app, "PATCH", &path, Some(json!({"enabled": false}))).await;
    assert_eq!(status, 200);
    app.clock.advance(chrono::Duration::seconds(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.count(),
        1,
        "a disabled subscription got its queued retry"
    );
    // Re-enabled, it does not get the cancelled retry back; only new events.
    let (status, _) = call(&app, "PATCH", &path, Some(json!({"enabled": true}))).await;
    assert_eq!(status, 200);
    app.clock.advance(chrono::Duration::seconds(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 1);
    assert_eq!(log(&app, &id).await.len(), 1);
    emit(&app).await;
    eventually("the new event delivered", || rx.count() == 2).await;
    let l = wait_log(&app, &id, 2).await;
    assert_eq!(l[1]["succeeded"], true, "{l:?}");
    assert_ne!(l[1]["event_id"], l[0]["event_id"]);
}
both_with!(disabling_a_webhook_stops_its_queued_retries, fast);

fn three_attempts(c: &mut keyward_server::Config) {
    fast(c);
    c.webhooks.max_attempts = 3;
}

async fn max_attempts_ends_in_a_failed_delivery(app: TestApp) {
    let rx = Receiver::start(&[500; 10]).await;
    let (id, _) = subscribe(&app, json!({"url": rx.url})).await;
    emit(&app).await;
    wait_log(&app, &id, 1).await;
    app.clock.advance(chrono::Duration::seconds(1));
    wait_log(&app, &id, 2).await;
    app.clock.advance(chrono::Duration::seconds(2));
    wait_log(&app, &id, 3).await;
    // Nothing after the last attempt, however long we wait.
    app.clock.advance(chrono::Duration::hours(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let l = log(&app, &id).await;
    let states: Vec<_> = l
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["delivery_status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (1, "pending".to_owned()),
            (2, "pending".to_owned()),
            (3, "failed".to_owned())
        ]
    );
    assert!(l.iter().all(|a| a["status_code"] == 500));
    assert_eq!(rx.count(), 3);
}
both_with!(max_attempts_ends_in_a_failed_delivery, three_attempts);

fn pruned_every_second(c: &mut keyward_server::Config) {
    fast(c);
    c.webhooks.retention_days = 30;
    c.webhooks.maintenance_interval_secs = 1;
}

async fn finished_events_are_pruned_after_the_retention(app: TestApp) {
    let ok = Receiver::start(&[]).await;
    let failing = Receiver::start(&[500; 50]).await;
    let (ok_id, _) = subscribe(
        &app,
        json!({"url": ok.url, "event_types": ["token.created"]}),
    )
    .await;
    let (failing_id, _) = subscribe(
        &app,
        json!({"url": failing.url, "event_types": ["token.revoked"]}),
    )
    .await;
    let created = emit(&app).await;
    let ws = created.token.workspace_id;
    let (status, _) = call(
        &app,
        "POST",
        &format!("/v1/tokens/{}/revoke", created.token.id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    wait_log(&app, &ok_id, 1).await;
    wait_log(&app, &failing_id, 1).await;
    let events = |app: &TestApp| {
        let store = app.state.store.clone();
        async move {
            let page = PageRequest {
                limit: 100,
                after: None,
            };
            store.list_events(ws, &page).await.unwrap()
        }
    };
    assert_eq!(events(&app).await.len(), 2);
    // Within the retention nothing goes.
    app.clock.advance(chrono::Duration::days(29));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(events(&app).await.len(), 2);
    assert_eq!(log(&app, &ok_id).await.len(), 1);

    // Past it, the delivered event goes with its log; the one still being retried stays.
    app.clock.advance(chrono::Duration::days(2));
    let mut left = Vec::new();
    for _ in 0..250 {
        left = events(&app).await;
        if left.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].event_type, EventType::TokenRevoked);
    assert!(log(&app, &ok_id).await.is_empty());
    assert!(!log(&app, &failing_id).await.is_empty());
}
both_with!(
    finished_events_are_pruned_after_the_retention,
    pruned_every_second
);
