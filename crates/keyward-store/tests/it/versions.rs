//! Optimistic concurrency: every change of a workspace, user, role or token names the row
//! version it read, and one computed from a stale read is refused with `CONCURRENT_UPDATE`
//! (storing nothing, its audit event included); revocation changes only the status; a
//! rotation computed from a stale read is refused and inserts no successor; read-modify-write
//! loops racing on several connections lose no update.

use std::sync::Arc;

use chrono::Duration;
use keyward_core::model::{RoleKind, TokenStatus, UserKind};
use keyward_store::{AuditFilter, Store, Versioned, CONCURRENT_UPDATE};
use serde_json::json;

use crate::fixtures::*;
use crate::support::*;

conformance!(
    stale_changes_are_refused_on_every_object,
    revocation_changes_only_the_status,
    a_stale_rotation_is_refused_and_inserts_nothing,
    racing_read_modify_writes_lose_nothing,
);

/// How many audit events the workspace has.
async fn audit_count(store: &Arc<dyn Store>, ws: keyward_core::WorkspaceId) -> usize {
    let f = AuditFilter {
        limit: 1_000,
        ..AuditFilter::default()
    };
    store.list_audit(ws, &f).await.unwrap().len()
}

async fn stale_changes_are_refused_on_every_object(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Versions").await;
    let ws = b.workspace.id;

    // Workspace.
    let read = store.workspace_versioned(ws).await.unwrap().unwrap();
    let mut first = read.clone();
    first.value.name = "first".into();
    store.update_workspace(&first, &ev(&ws)).await.unwrap();
    let events = audit_count(&store, ws).await;
    let mut late = read.clone();
    late.value.name = "late".into();
    assert_conflict(
        store.update_workspace(&late, &ev(&ws)).await,
        CONCURRENT_UPDATE,
    );
    let now_at = store.workspace_versioned(ws).await.unwrap().unwrap();
    assert_eq!(now_at.value.name, "first");
    assert_eq!(now_at.version, read.version + 1);
    assert_eq!(
        audit_count(&store, ws).await,
        events,
        "no event for a refused change"
    );

    // User.
    let read = store.user_versioned(ws, b.user.id).await.unwrap().unwrap();
    let mut first = read.clone();
    first.value.name = "first".into();
    store.update_user(&first, &ev(&ws)).await.unwrap();
    let mut late = read.clone();
    late.value.disabled = true;
    assert_conflict(store.update_user(&late, &ev(&ws)).await, CONCURRENT_UPDATE);
    let stored = store.user(ws, b.user.id).await.unwrap().unwrap();
    assert_eq!((stored.name.as_str(), stored.disabled), ("first", false));

    // Role.
    let read = store.role_versioned(ws, b.role.id).await.unwrap().unwrap();
    let mut first = read.clone();
    first.value.description = "first".into();
    store.update_role(&first, &ev(&ws)).await.unwrap();
    let mut late = read.clone();
    late.value.permissions = patterns(&["*"]);
    late.value.description = "late".into();
    assert_conflict(store.update_role(&late, &ev(&ws)).await, CONCURRENT_UPDATE);
    let stored = store.role(ws, b.role.id).await.unwrap().unwrap();
    assert_eq!(stored.description, "first");
    assert_eq!(stored.permissions, b.role.permissions);

    // Token.
    let read = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();
    let mut first = read.clone();
    first.value.expires_at = Some(now() + Duration::minutes(5));
    store.update_token(&first, &ev(&ws)).await.unwrap();
    let mut late = read.clone();
    late.value.name = "late".into();
    assert_conflict(store.update_token(&late, &ev(&ws)).await, CONCURRENT_UPDATE);
    let stored = store.token(ws, b.token.id).await.unwrap().unwrap();
    assert_eq!(stored.expires_at, first.value.expires_at.ms());
    assert_eq!(stored.name, b.token.name);

    // A missing row is still "not found", whatever the version.
    let mut ghost = read.clone();
    ghost.value.id = keyward_core::TokenId::random(&mut rand_core::OsRng);
    assert_not_found(store.update_token(&ghost, &ev(&ws)).await);
    assert_eq!(
        store.token_versioned(ws, ghost.value.id).await.unwrap(),
        None
    );
}

async fn revocation_changes_only_the_status(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Revoking").await;
    let ws = b.workspace.id;
    let other = new_workspace(&store, "Elsewhere").await;
    let read = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();

    // A change committed before the revocation is kept by it.
    let mut renamed = read.clone();
    renamed.value.name = "renamed".into();
    renamed.value.rate_limit_per_minute = Some(7);
    store.update_token(&renamed, &ev(&ws)).await.unwrap();

    let at = now() + Duration::seconds(3);
    assert_not_found(
        store
            .revoke_token(other.workspace.id, b.token.id, at, &ev(&ws))
            .await,
    );
    assert!(store
        .revoke_token(ws, b.token.id, at, &ev(&ws))
        .await
        .unwrap());
    let stored = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.value.status, TokenStatus::Revoked);
    assert_eq!(stored.value.revoked_at, Some(at.ms()));
    assert_eq!(stored.value.updated_at, at.ms());
    assert_eq!(stored.value.name, "renamed");
    assert_eq!(stored.value.rate_limit_per_minute, Some(7));
    assert_eq!(stored.version, read.version + 2);

    // A PATCH computed before the revocation cannot write its copy back.
    assert_conflict(
        store.update_token(&renamed, &ev(&ws)).await,
        CONCURRENT_UPDATE,
    );
    // Revoking again changes nothing and stores no event.
    let events = audit_count(&store, ws).await;
    let later = at + Duration::seconds(1);
    assert!(!store
        .revoke_token(ws, b.token.id, later, &ev(&ws))
        .await
        .unwrap());
    assert_eq!(audit_count(&store, ws).await, events);
    let again = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, stored);
    let missing = keyward_core::TokenId::random(&mut rand_core::OsRng);
    assert_not_found(store.revoke_token(ws, missing, at, &ev(&ws)).await);
}

async fn a_stale_rotation_is_refused_and_inserts_nothing(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Rotating").await;
    let ws = b.workspace.id;
    let read = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();

    // Renamed meanwhile: the rotation computed from `read` is refused.
    let mut renamed = read.clone();
    renamed.value.name = "renamed".into();
    store.update_token(&renamed, &ev(&ws)).await.unwrap();
    let mut cut = read.clone();
    cut.value.expires_at = Some(now() + Duration::seconds(1));
    let mut successor = token(&b.user, "successor");
    successor.family_id = Some(b.token.id);
    successor.rotated_from = Some(b.token.id);
    assert_conflict(
        store.rotate_token(&cut, &successor, &ev(&ws)).await,
        CONCURRENT_UPDATE,
    );
    assert_eq!(store.token(ws, successor.id).await.unwrap(), None);
    assert_eq!(store.token_family(ws, b.token.id).await.unwrap().len(), 1);

    // On a fresh read it goes through; a PATCH computed before it cannot restore the expiry.
    let fresh = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();
    let mut cut = fresh.clone();
    cut.value.expires_at = Some(now() + Duration::seconds(1));
    store
        .rotate_token(&cut, &successor, &ev(&ws))
        .await
        .unwrap();
    let mut stale_patch = fresh.clone();
    stale_patch.value.name = "after".into();
    assert_conflict(
        store.update_token(&stale_patch, &ev(&ws)).await,
        CONCURRENT_UPDATE,
    );
    let stored = store.token(ws, b.token.id).await.unwrap().unwrap();
    assert_eq!(stored.expires_at, cut.value.expires_at.ms());

    // A revoked token's stale rotation is refused as revoked.
    let read = store
        .token_versioned(ws, successor.id)
        .await
        .unwrap()
        .unwrap();
    store
        .revoke_token(ws, successor.id, now(), &ev(&ws))
        .await
        .unwrap();
    let mut third = token(&b.user, "third");
    third.family_id = Some(b.token.id);
    third.rotated_from = Some(successor.id);
    assert_conflict(
        store.rotate_token(&read, &third, &ev(&ws)).await,
        "TOKEN_REVOKED",
    );
}

async fn racing_read_modify_writes_lose_nothing(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Counting").await;
    let ws = b.workspace.id;
    let r = role(ws, "counted", RoleKind::Api);
    store.create_role(&r, &ev(&r)).await.unwrap();
    let u = user(ws, UserKind::Service, "counted");
    store.create_user(&u, &ev(&u)).await.unwrap();
    let t = token(&u, "counted");
    store.create_token(&t, &ev(&t)).await.unwrap();
    store
        .revoke_token(ws, b.token.id, now(), &ev(&ws))
        .await
        .unwrap();

    const TASKS: u64 = 6;
    const EACH: u64 = 5;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let s = store.clone();
        let (role_id, user_id, token_id) = (r.id, u.id, t.id);
        tasks.spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..EACH {
                // Each object: read, add one, write on condition; retry when refused as stale.
                loop {
                    let mut v = s.token_versioned(ws, token_id).await.unwrap().unwrap();
                    let n = v.value.metadata["n"].as_u64().unwrap_or(0);
                    v.value.metadata = json!({ "n": n + 1 });
                    match s.update_token(&v, &ev(&ws)).await {
                        Ok(()) => break,
                        Err(keyward_store::StoreError::Conflict { code, .. })
                            if code == CONCURRENT_UPDATE =>
                        {
                            conflicts += 1
                        }
                        Err(e) => panic!("token update: {e:?}"),
                    }
                }
                loop {
                    let mut v = s.role_versioned(ws, role_id).await.unwrap().unwrap();
                    let n: u64 = v.value.description.parse().unwrap_or(0);
                    v.value.description = (n + 1).to_string();
                    match s.update_role(&v, &ev(&ws)).await {
                        Ok(()) => break,
                        Err(keyward_store::StoreError::Conflict { code, .. })
                            if code == CONCURRENT_UPDATE =>
                        {
                            conflicts += 1
                        }
                        Err(e) => panic!("role update: {e:?}"),
                    }
                }
                loop {
                    let mut v: Versioned<_> = s.user_versioned(ws, user_id).await.unwrap().unwrap();
                    let n: u64 = v.value.name.trim_start_matches('u').parse().unwrap_or(0);
                    v.value.name = format!("u{}", n + 1);
                    match s.update_user(&v, &ev(&ws)).await {
                        Ok(()) => break,
                        Err(keyward_store::StoreError::Conflict { code, .. })
                            if code == CONCURRENT_UPDATE =>
                        {
                            conflicts += 1
                        }
                        Err(e) => panic!("user update: {e:?}"),
                    }
                }
            }
            conflicts
        });
    }
    let mut conflicts = 0;
    while let Some(done) = tasks.join_next().await {
        conflicts += done.unwrap();
    }
    let total = TASKS * EACH;
    let token = store.token_versioned(ws, t.id).await.unwrap().unwrap();
    assert_eq!(token.value.metadata, json!({ "n": total }));
    assert_eq!(token.version, i64::try_from(total).unwrap());
    let role = store.role(ws, r.id).await.unwrap().unwrap();
    assert_eq!(role.description, total.to_string());
    let user = store.user(ws, u.id).await.unwrap().unwrap();
    assert_eq!(user.name, format!("u{total}"));
    // The race is real: without the condition, these would have been lost updates.
    assert!(conflicts > 0, "no write ever raced another");
}
