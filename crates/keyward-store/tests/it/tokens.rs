//! Tokens: create, read (by id and by hash), update, delete, list with filters and pages.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keyward_core::model::{RoleKind, ShownStatus, TokenStatus, UserKind};
use keyward_core::{Token, TokenHasher, TokenId, TokenSecret};
use keyward_store::{Store, TokenFilter};
use rand_core::OsRng;
use serde_json::json;

use crate::fixtures::*;
use crate::support::*;

conformance!(
    tokens_round_trip,
    token_update_replaces_mutable_fields,
    token_delete_and_not_found,
    token_hash_is_unique,
    tokens_list_by_owner_and_role,
    tokens_list_by_shown_status,
    tokens_list_in_pages,
);

async fn tokens_round_trip(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let api = role(ws, "integration", RoleKind::Api);
    store.create_role(&api, &ev(&api)).await.unwrap();

    // Every optional field set.
    let (mut full, secret) = token_with_secret(&b.user, "ERP sync");
    full.role_id = Some(api.id);
    full.permissions = Some(patterns(&["orders:read", "billing.*:read"]));
    full.metadata = json!({"team": "finance", "ticket": 4711, "tags": ["erp", "nightly"]});
    full.status = TokenStatus::Pending;
    full.not_before = Some(full.created_at + Duration::hours(1));
    full.expires_at = Some(full.created_at + Duration::days(90));
    full.rate_limit_per_minute = Some(150);
    full.rate_limit_per = keyward_core::RateLimitPer::User;
    store.create_token(&full, &ev(&full)).await.unwrap();

    // None of them.
    let bare = token(&b.user, "bare");
    store.create_token(&bare, &ev(&bare)).await.unwrap();

    // A narrowing to nothing is not the absence of a narrowing.
    let mut nothing = token(&b.user, "narrowed to nothing");
    nothing.permissions = Some(Vec::new());
    store.create_token(&nothing, &ev(&nothing)).await.unwrap();

    for t in [&full, &bare, &nothing] {
        assert_eq!(
            store.token(ws, t.id).await.unwrap(),
            Some(t.ms()),
            "{}",
            t.name
        );
        assert_eq!(
            store.token_by_hash(&t.hash).await.unwrap(),
            Some(t.ms()),
            "{} by hash",
            t.name
        );
    }
    // The hash of the shown secret finds the token.
    let hash = TokenHasher::default().hash(&secret);
    assert_eq!(
        store.token_by_hash(&hash).await.unwrap().map(|t| t.id),
        Some(full.id)
    );
    let unknown = TokenHasher::default().hash(&TokenSecret::generate("kw", &mut OsRng));
    assert_eq!(store.token_by_hash(&unknown).await.unwrap(), None);
    let missing = TokenId::random(&mut OsRng);
    assert_eq!(store.token(ws, missing).await.unwrap(), None);
}

async fn token_update_replaces_mutable_fields(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let api = role(ws, "integration", RoleKind::Api);
    store.create_role(&api, &ev(&api)).await.unwrap();
    let mut t = token(&b.user, "before");
    t.status = TokenStatus::Pending;
    t.expires_at = Some(t.created_at + Duration::days(30));
    store.create_token(&t, &ev(&t)).await.unwrap();
    let other = token(&b.user, "bystander");
    store.create_token(&other, &ev(&other)).await.unwrap();

    // Activate; give it a role, a narrowing, metadata and a not-before; rename.
    t.status = TokenStatus::Active;
    t.role_id = Some(api.id);
    t.permissions = Some(patterns(&["orders:read"]));
    t.metadata = json!({"owner": "finance"});
    t.not_before = Some(t.created_at + Duration::minutes(5));
    t.name = "after".into();
    step(&mut t);
    put_token(&store, &t, &ev(&t)).await.unwrap();
    assert_eq!(store.token(ws, t.id).await.unwrap(), Some(t.ms()));

    // Access policy: an allowlist, internal-only, a rate limit.
    t.ip_allowlist =
        keyward_core::ip::IpAllowlist::parse_input("10.0.0.0/8, 2001:db8::1", "ips").unwrap();
    t.internal_only = true;
    t.rate_limit_per_minute = Some(30);
    step(&mut t);
    put_token(&store, &t, &ev(&t)).await.unwrap();
    assert_eq!(store.token(ws, t.id).await.unwrap(), Some(t.ms()));

    // A per-user budget, then back to a budget of its own.
    t.rate_limit_per = keyward_core::RateLimitPer::User;
    step(&mut t);
    put_token(&store, &t, &ev(&t)).await.unwrap();
    assert_eq!(store.token(ws, t.id).await.unwrap(), Some(t.ms()));
    assert_eq!(store.token_by_hash(&t.hash).await.unwrap(), Some(t.ms()));
    t.rate_limit_per = keyward_core::RateLimitPer::Token;
    step(&mut t);
    put_token(&store, &t, &ev(&t)).await.unwrap();
    assert_eq!(store.token(ws, t.id).await.unwrap(), Some(t.ms()));

    // Clear the narrowing, the role and the not-before; extend the expiry.
    t.permissions = None;
    t.role_id = None;
    t.not_before = None;
    t.expires_at = Some(t.created_at + Duration::days(365));
    step(&mut t);
    put_token(&store, &t, &ev(&t)).await.unwrap();
    assert_eq!(store.token(ws, t.id).await.unwrap(), Some(t.ms()));

    // Remove the expiry; narrow to nothing.
    t.expires_at = None;
    t.permissions = Some(Vec::new());
    step(&mut t);
    put_token(&store, &t, &ev(&t)).await.unwrap();
    assert_eq!(store.token(ws, t.id).await.unwrap(), Some(t.ms()));

    // Revoke.
    t.status = TokenStatus::Revoked;
    t.revoked_at = Some(now());
    step(&mut t);
    put_token(&store, &t, &ev(&t)).await.unwrap();
    assert_eq!(store.token(ws, t.id).await.unwrap(), Some(t.ms()));
    assert_eq!(store.token_by_hash(&t.hash).await.unwrap(), Some(t.ms()));

    // Revocation is final: even an update naming the current version and carrying an
    // unrevoked status does not bring it back.
    let mut unrevoke = t.clone();
    unrevoke.status = TokenStatus::Active;
    unrevoke.revoked_at = None;
    unrevoke.name = "late writer".into();
    put_token(&store, &unrevoke, &ev(&unrevoke)).await.unwrap();
    let stored = store.token(ws, t.id).await.unwrap().unwrap();
    assert_eq!(stored.status, TokenStatus::Revoked);
    assert_eq!(stored.revoked_at, t.ms().revoked_at);
    assert_eq!(stored.name, "late writer");
    t.name = "late writer".into();

    // Creation time is not rewritten by an update.
    let mut moved = t.clone();
    moved.created_at -= Duration::days(1);
    put_token(&store, &moved, &ev(&moved)).await.unwrap();
    assert_eq!(store.token(ws, t.id).await.unwrap(), Some(t.ms()));

    assert_eq!(store.token(ws, other.id).await.unwrap(), Some(other.ms()));
}

/// Moves `t`'s change time on, as every update does.
fn step(t: &mut Token) {
    t.updated_at += Duration::seconds(1);
}

async fn token_delete_and_not_found(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let t = token(&b.user, "short-lived");
    store.create_token(&t, &ev(&t)).await.unwrap();

    store.delete_token(ws, t.id, &ev(&ws)).await.unwrap();
    assert_eq!(store.token(ws, t.id).await.unwrap(), None);
    assert_eq!(store.token_by_hash(&t.hash).await.unwrap(), None);
    assert_not_found(store.delete_token(ws, t.id, &ev(&ws)).await);
    assert_not_found(put_token(&store, &t, &ev(&t)).await);
    assert_eq!(
        store.token(ws, t.id).await.unwrap(),
        None,
        "update created it"
    );

    // The bootstrap token is untouched.
    let left = store
        .list_tokens(ws, &any_token(), &first(100))
        .await
        .unwrap();
    assert_eq!(left, vec![b.token.ms()]);
}

async fn token_hash_is_unique(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "A").await;
    let other = new_workspace(&store, "B").await;

    // Hashes are unique across workspaces: a hash finds exactly one token.
    let mut same_ws = token(&a.user, "copy");
    same_ws.hash = a.token.hash;
    assert!(store.create_token(&same_ws, &ev(&same_ws)).await.is_err());
    let mut other_ws = token(&other.user, "copy elsewhere");
    other_ws.hash = a.token.hash;
    assert!(store.create_token(&other_ws, &ev(&other_ws)).await.is_err());

    assert_eq!(store.token(a.workspace.id, same_ws.id).await.unwrap(), None);
    assert_eq!(
        store.token(other.workspace.id, other_ws.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.token_by_hash(&a.token.hash).await.unwrap(),
        Some(a.token.ms())
    );
}

async fn tokens_list_by_owner_and_role(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let (u1, u2) = (
        user(ws, UserKind::Service, "u1"),
        user(ws, UserKind::Service, "u2"),
    );
    store.create_user(&u1, &ev(&u1)).await.unwrap();
    store.create_user(&u2, &ev(&u2)).await.unwrap();
    let (r1, r2) = (role(ws, "r1", RoleKind::Api), role(ws, "r2", RoleKind::Api));
    store.create_role(&r1, &ev(&r1)).await.unwrap();
    store.create_role(&r2, &ev(&r2)).await.unwrap();

    let mut all = vec![b.token.clone()];
    for (owner, role_id) in [
        (&u1, Some(r1.id)),
        (&u1, None),
        (&u2, Some(r1.id)),
        (&u2, Some(r2.id)),
        (&u1, Some(r2.id)),
    ] {
        let mut t = token(owner, "t");
        t.role_id = role_id;
        store.create_token(&t, &ev(&t)).await.unwrap();
        all.push(t);
    }
    let all = in_listing_order(&all.ms());
    let nobody = user(ws, UserKind::Service, "nobody").id;

    let owners = [
        None,
        Some(u1.id),
        Some(u2.id),
        Some(b.user.id),
        Some(nobody),
    ];
    let roles = [None, Some(r1.id), Some(r2.id), Some(b.role.id)];
    for owner_id in owners {
        for role_id in roles {
            let filter = TokenFilter {
                owner_id,
                role_id,
                ..any_token()
            };
            let expected: Vec<Token> = all
                .iter()
                .filter(|t| owner_id.is_none() || owner_id == Some(t.owner_id))
                .filter(|t| role_id.is_none() || role_id == t.role_id)
                .cloned()
                .collect();
            let got = store.list_tokens(ws, &filter, &first(100)).await.unwrap();
            assert_eq!(got, expected, "owner {owner_id:?}, role {role_id:?}");
        }
    }
}

async fn tokens_list_by_shown_status(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    // The instant the statuses are judged at; tokens expire around it.
    let t0 = at(b.token.created_at.timestamp_millis() + 10 * 60_000);
    let ms = Duration::milliseconds;
    let cases: [(&str, TokenStatus, Option<DateTime<Utc>>); 12] = [
        ("pending", TokenStatus::Pending, None),
        (
            "pending, expires later",
            TokenStatus::Pending,
            Some(t0 + ms(1)),
        ),
        ("pending, expired", TokenStatus::Pending, Some(t0 - ms(1))),
        ("pending, expires now", TokenStatus::Pending, Some(t0)),
        ("active", TokenStatus::Active, None),
        (
            "active, expires later",
            TokenStatus::Active,
            Some(t0 + ms(1)),
        ),
        ("active, expired", TokenStatus::Active, Some(t0 - ms(1))),
        ("active, expires now", TokenStatus::Active, Some(t0)),
        (
            "active, far future",
            TokenStatus::Active,
            Some(t0 + Duration::days(3650)),
        ),
        ("revoked", TokenStatus::Revoked, None),
        ("revoked, expired", TokenStatus::Revoked, Some(t0 - ms(1))),
        (
            "revoked, expires later",
            TokenStatus::Revoked,
            Some(t0 + ms(1)),
        ),
    ];
    let mut all = vec![b.token.clone()];
    for (name, status, expires_at) in cases {
        let mut t = token(&b.user, name);
        t.status = status;
        t.expires_at = expires_at;
        if status == TokenStatus::Revoked {
            t.revoked_at = Some(t.created_at);
        }
        // Not-before does not change the shown status.
        if name.starts_with("active, expires later") {
            t.not_before = Some(t0 + Duration::hours(1));
        }
        store.create_token(&t, &ev(&t)).await.unwrap();
        all.push(t);
    }
    let all = in_listing_order(&all.ms());

    // Judged at t0 (also with a sub-millisecond part), just after, and much later.
    let instants = [
        t0,
        t0 + Duration::nanoseconds(999_999),
        t0 + ms(1),
        t0 + Duration::days(1),
    ];
    let statuses = [
        ShownStatus::Pending,
        ShownStatus::Active,
        ShownStatus::Revoked,
        ShownStatus::Expired,
    ];
    for now in instants {
        let mut seen = 0;
        for status in statuses {
            let filter = TokenFilter {
                status: Some(status),
                now,
                ..any_token()
            };
            let expected: Vec<Token> = all
                .iter()
                .filter(|t| t.shown_status(now) == status)
                .cloned()
                .collect();
            let got = store.list_tokens(ws, &filter, &first(100)).await.unwrap();
            let names = |ts: &[Token]| ts.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
            assert_eq!(names(&got), names(&expected), "{status:?} at {now}");
            assert_eq!(got, expected, "{status:?} at {now}");
            seen += got.len();
        }
        assert_eq!(
            seen,
            all.len(),
            "every token has exactly one status at {now}"
        );
    }

    // At t0, every status has members (so the checks above were not vacuous).
    for status in statuses {
        assert!(
            all.iter().any(|t| t.shown_status(t0) == status),
            "{status:?}"
        );
    }

    // Status and owner combine.
    let other = user(ws, UserKind::Service, "other");
    store.create_user(&other, &ev(&other)).await.unwrap();
    let theirs = token(&other, "theirs");
    store.create_token(&theirs, &ev(&theirs)).await.unwrap();
    let filter = TokenFilter {
        owner_id: Some(other.id),
        status: Some(ShownStatus::Active),
        now: t0,
        role_id: None,
    };
    let got = store.list_tokens(ws, &filter, &first(100)).await.unwrap();
    assert_eq!(got, vec![theirs.ms()]);
}

async fn tokens_list_in_pages(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let base = b.token.created_at;
    let mut all = vec![b.token.clone()];
    for (i, ms) in [4, 1, 1, 2, 3, 1, 2, 5].into_iter().enumerate() {
        let mut t = token(&b.user, &format!("token{i}"));
        t.created_at = base + Duration::milliseconds(ms);
        if i % 3 == 0 {
            t.status = TokenStatus::Revoked;
        }
        store.create_token(&t, &ev(&t)).await.unwrap();
        all.push(t);
    }
    let expected = in_listing_order(&all.ms());

    for limit in [2, 3, 9] {
        let s = store.clone();
        let got = pages(limit, move |p| {
            let s = s.clone();
            async move { s.list_tokens(ws, &any_token(), &p).await }
        })
        .await;
        assert_pages(&got, &expected, limit as usize, |t| t.id);
    }

    // Filtered by status, still paged.
    let now = Utc::now();
    let active: Vec<Token> = expected
        .iter()
        .filter(|t| t.shown_status(now) == ShownStatus::Active)
        .cloned()
        .collect();
    assert!(active.len() > 2);
    let s = store.clone();
    let got = pages(2, move |p| {
        let s = s.clone();
        let filter = TokenFilter {
            status: Some(ShownStatus::Active),
            now,
            ..any_token()
        };
        async move { s.list_tokens(ws, &filter, &p).await }
    })
    .await;
    assert_pages(&got, &active, 2, |t| t.id);
}
