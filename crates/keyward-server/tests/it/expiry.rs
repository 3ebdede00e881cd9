//! The expiry scheduler: `token.expiring` within the warning days and `token.expired` after,
//! each exactly once per token — across restarts on the same database and with two passes
//! racing (as two nodes would) —, none for revoked tokens.

use std::collections::HashMap;

use chrono::Duration;
use keyward_core::events::EventType;
use keyward_core::{Clock, TokenId, WorkspaceId};
use keyward_server::events::expiry::run_once;
use keyward_store::PageRequest;

use crate::support::{token_request, Backend, TestApp};

mod restart_safe {
    use super::*;
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(app) = TestApp::spawn(Backend::Sqlite).await {
            notices_once_across_restarts(app).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = TestApp::spawn(Backend::Postgres).await {
            notices_once_across_restarts(app).await;
        }
    }
}

/// Events per (token, type) in the workspace's outbox.
async fn notices(app: &TestApp, ws: WorkspaceId) -> HashMap<(TokenId, EventType), usize> {
    let events = app
        .state
        .store
        .list_events(
            ws,
            &PageRequest {
                limit: 1_000,
                after: None,
            },
        )
        .await
        .unwrap();
    let mut out = HashMap::new();
    for e in events {
        if matches!(
            e.event_type,
            EventType::TokenExpiring | EventType::TokenExpired
        ) {
            let id: TokenId = e.payload["data"]["id"].as_str().unwrap().parse().unwrap();
            *out.entry((id, e.event_type)).or_default() += 1;
        }
    }
    out
}

async fn notices_once_across_restarts(app: TestApp) {
    let owner = app.orders_reader().await;
    let now = app.clock.as_ref().now();
    let make = |days: i64| {
        let mut req = token_request(&owner);
        req.name = format!("expires in {days} days");
        req.expires_at = Some(now + Duration::days(days));
        req
    };
    let (r3, r5, r30, r2) = (make(3), make(5), make(30), make(2));
    let t3 = app.admin.create_token(&r3).await.unwrap().token;
    let t5 = app.admin.create_token(&r5).await.unwrap().token;
    let t30 = app.admin.create_token(&r30).await.unwrap().token;
    let revoked = app.admin.create_token(&r2).await.unwrap().token;
    app.admin.revoke_token(revoked.id).await.unwrap();
    let ws = t3.workspace_id;

    // Two passes at once, as two nodes would run them.
    let (a, b) = tokio::join!(run_once(&app.state), run_once(&app.state));
    assert!(a.unwrap() + b.unwrap() <= 2);
    let app = app.restart().await;
    run_once(&app.state).await.unwrap();
    let seen = notices(&app, ws).await;
    assert_eq!(seen.get(&(t3.id, EventType::TokenExpiring)), Some(&1));
    assert_eq!(seen.get(&(t5.id, EventType::TokenExpiring)), Some(&1));
    assert_eq!(seen.len(), 2, "{seen:?}");

    app.clock.advance(Duration::days(6));
    run_once(&app.state).await.unwrap();
    let app = app.restart().await;
    run_once(&app.state).await.unwrap();
    run_once(&app.state).await.unwrap();
    let seen = notices(&app, ws).await;
    for t in [&t3, &t5] {
        assert_eq!(seen.get(&(t.id, EventType::TokenExpiring)), Some(&1));
        assert_eq!(seen.get(&(t.id, EventType::TokenExpired)), Some(&1));
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(!seen
        .keys()
        .any(|(id, _)| *id == revoked.id || *id == t30.id));

    // The expired notice carries the token's view as of then.
    let events = app
        .state
        .store
        .list_events(
            ws,
            &PageRequest {
                limit: 1_000,
                after: None,
            },
        )
        .await
        .unwrap();
    let expired = events
        .iter()
        .find(|e| e.event_type == EventType::TokenExpired)
        .unwrap();
    assert_eq!(expired.payload["type"], "token.expired");
    assert_eq!(expired.payload["data"]["status"], "expired");
    app.shutdown().await;
}
