//! Values that must come back as they went in: timestamps (to the millisecond) and JSON.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keyward_core::model::{RoleKind, TokenStatus, UserKind};
use keyward_store::Store;
use serde_json::json;

use crate::fixtures::*;

conformance!(
    timestamps_round_trip_at_millisecond_precision,
    metadata_json_round_trips,
);

/// `t` as read back: the same millisecond, nothing below it.
fn assert_ms(got: DateTime<Utc>, sent: DateTime<Utc>, what: &str) {
    assert_eq!(
        got.timestamp_millis(),
        sent.timestamp_millis(),
        "{what}: millisecond"
    );
    assert_eq!(
        got.timestamp_subsec_nanos() % 1_000_000,
        0,
        "{what}: sub-ms part"
    );
}

async fn timestamps_round_trip_at_millisecond_precision(store: Arc<dyn Store>) {
    // Sub-millisecond parts that must be cut, not rounded (999_999 ns would round up).
    let base = at(1_700_000_000_123) + Duration::nanoseconds(999_999);
    let mut b = bootstrap("Times");
    b.workspace.created_at = base;
    b.workspace.updated_at = base + Duration::nanoseconds(1);
    b.role.created_at = base + Duration::milliseconds(1);
    b.role.updated_at = base + Duration::milliseconds(2);
    b.user.created_at = base + Duration::milliseconds(3);
    b.user.updated_at = base + Duration::milliseconds(4);
    b.token.created_at = base + Duration::milliseconds(5);
    b.token.updated_at = base + Duration::milliseconds(6);
    b.token.not_before = Some(base + Duration::milliseconds(7));
    b.token.expires_at = Some(at(253_402_300_799_999) + Duration::nanoseconds(500_000)); // 9999-12-31
    b.token.status = TokenStatus::Revoked;
    b.token.revoked_at = Some(base + Duration::milliseconds(8));
    store.bootstrap_workspace(&b, &ev(&b)).await.unwrap();
    let ws = b.workspace.id;

    let w = store.workspace(ws).await.unwrap().unwrap();
    assert_ms(w.created_at, b.workspace.created_at, "workspace created_at");
    assert_ms(w.updated_at, b.workspace.updated_at, "workspace updated_at");
    let r = store.role(ws, b.role.id).await.unwrap().unwrap();
    assert_ms(r.created_at, b.role.created_at, "role created_at");
    assert_ms(r.updated_at, b.role.updated_at, "role updated_at");
    let u = store.user(ws, b.user.id).await.unwrap().unwrap();
    assert_ms(u.created_at, b.user.created_at, "user created_at");
    assert_ms(u.updated_at, b.user.updated_at, "user updated_at");
    let t = store.token(ws, b.token.id).await.unwrap().unwrap();
    assert_ms(t.created_at, b.token.created_at, "token created_at");
    assert_ms(t.updated_at, b.token.updated_at, "token updated_at");
    assert_ms(
        t.not_before.unwrap(),
        b.token.not_before.unwrap(),
        "not_before",
    );
    assert_ms(
        t.expires_at.unwrap(),
        b.token.expires_at.unwrap(),
        "expires_at",
    );
    assert_ms(
        t.revoked_at.unwrap(),
        b.token.revoked_at.unwrap(),
        "revoked_at",
    );
    assert_eq!(t, b.token.ms());

    // Through updates and the non-bootstrap inserts too.
    let mut role2 = role(ws, "second", RoleKind::Api);
    role2.created_at = base + Duration::nanoseconds(1);
    store.create_role(&role2, &ev(&role2)).await.unwrap();
    let mut user2 = user(ws, UserKind::Human, "second");
    user2.created_at = base + Duration::nanoseconds(2);
    store.create_user(&user2, &ev(&user2)).await.unwrap();
    user2.updated_at = base + Duration::days(1) + Duration::nanoseconds(999_999);
    put_user(&store, &user2, &ev(&user2)).await.unwrap();
    role2.updated_at = base + Duration::days(2) + Duration::nanoseconds(1);
    put_role(&store, &role2, &ev(&role2)).await.unwrap();
    let mut t2 = token(&user2, "second");
    t2.created_at = base + Duration::nanoseconds(3);
    store.create_token(&t2, &ev(&t2)).await.unwrap();
    t2.expires_at = Some(base + Duration::days(3) + Duration::nanoseconds(7));
    t2.not_before = Some(base - Duration::days(3) + Duration::nanoseconds(7));
    t2.updated_at = base + Duration::days(4) + Duration::nanoseconds(7);
    put_token(&store, &t2, &ev(&t2)).await.unwrap();
    assert_eq!(store.role(ws, role2.id).await.unwrap(), Some(role2.ms()));
    assert_eq!(store.user(ws, user2.id).await.unwrap(), Some(user2.ms()));
    assert_eq!(store.token(ws, t2.id).await.unwrap(), Some(t2.ms()));
    let mut w2 = b.workspace.clone();
    w2.updated_at = base + Duration::days(5) + Duration::nanoseconds(999_999);
    put_workspace(&store, &w2, &ev(&w2)).await.unwrap();
    assert_eq!(store.workspace(ws).await.unwrap(), Some(w2.ms()));
}

async fn metadata_json_round_trips(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Json").await;
    let ws = b.workspace.id;
    let values = [
        json!({}),
        json!({"team": "finance", "cost_centre": 4711}),
        json!({
            "nested": {"deeper": {"deepest": [1, 2, {"x": null}]}},
            "unicode": "ключ — 値 — 🚀",
            "escapes": "quote \" backslash \\ newline \n tab \t nul \u{0}",
            // Floats with extreme exponents are left out: serde_json's default parser may
            // read them back one ulp off (its `float_roundtrip` feature is not enabled).
            "numbers": [0, -1, i64::MIN, u64::MAX, 0.1, -2.5, 1.25, 1e-7, 1.5e300],
            "bools": [true, false],
            "empty": {"object": {}, "array": [], "string": ""},
            "sql": "'; DROP TABLE tokens; --",
        }),
    ];
    let mut made = Vec::new();
    for (i, metadata) in values.iter().enumerate() {
        let mut t = token(&b.user, &format!("json{i}"));
        t.metadata = metadata.clone();
        store.create_token(&t, &ev(&t)).await.unwrap();
        made.push(t);
    }
    for (t, metadata) in made.iter().zip(&values) {
        let got = store.token(ws, t.id).await.unwrap().unwrap();
        assert_eq!(&got.metadata, metadata);
        // Key order and number forms survive as well.
        assert_eq!(got.metadata.to_string(), metadata.to_string());
    }

    // Through an update.
    let mut t = made.remove(0);
    t.metadata = json!({"changed": ["yes", 2, 3.5]});
    put_token(&store, &t, &ev(&t)).await.unwrap();
    assert_eq!(
        store.token(ws, t.id).await.unwrap().unwrap().metadata,
        t.metadata
    );

    // Workspace settings are JSON too.
    let mut w = b.workspace.clone();
    w.settings.token_prefix = "acme_live".into();
    w.settings.token_max_lifetime_days = Some(u32::MAX);
    w.settings.default_rate_limit_per_minute = 0;
    put_workspace(&store, &w, &ev(&w)).await.unwrap();
    assert_eq!(
        store.workspace(ws).await.unwrap().unwrap().settings,
        w.settings
    );
}
