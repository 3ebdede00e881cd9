//! Rotation in storage: the old token is cut short and its replacement inserted together, the
//! family lists both in order, a token is replaced at most once, and a revoked token cannot be.

use std::sync::Arc;

use chrono::Duration;
use keyward_core::model::{TokenStatus, UserKind};
use keyward_core::Token;
use keyward_store::Store;

use crate::fixtures::*;
use crate::support::*;

conformance!(
    rotation_replaces_and_lists_the_family,
    a_token_is_replaced_once_and_never_when_revoked,
);

/// `old`'s replacement, as the server builds it.
fn successor(old: &Token, name: &str) -> Token {
    let owner_like = keyward_core::User {
        id: old.owner_id,
        workspace_id: old.workspace_id,
        kind: UserKind::Service,
        name: String::new(),
        email: None,
        role_id: None,
        disabled: false,
        created_at: old.created_at,
        updated_at: old.created_at,
    };
    let mut new = token(&owner_like, name);
    new.family_id = Some(old.family());
    new.rotated_from = Some(old.id);
    new.created_at = old.created_at + Duration::milliseconds(1);
    new
}

async fn rotation_replaces_and_lists_the_family(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Rotating").await;
    let u = user(b.workspace.id, UserKind::Service, "bot");
    store.create_user(&u, &ev(&u)).await.unwrap();
    let first = token(&u, "v1");
    store.create_token(&first, &ev(&first)).await.unwrap();

    let mut old = first.clone();
    old.expires_at = Some(now() + Duration::hours(1));
    let second = successor(&old, "v2");
    rotate(&store, &old, &second, &ev(&old)).await.unwrap();
    let mut old2 = second.clone();
    old2.expires_at = Some(now() + Duration::hours(2));
    let mut third = successor(&old2, "v3");
    third.created_at = second.created_at + Duration::milliseconds(1);
    rotate(&store, &old2, &third, &ev(&old2)).await.unwrap();

    let stored = store
        .token(b.workspace.id, first.id)
        .await
        .unwrap()
        .unwrap();
    let ms = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_millis());
    assert_eq!(ms(stored.expires_at), ms(old.expires_at), "cut short");
    let family = store.token_family(b.workspace.id, first.id).await.unwrap();
    let names: Vec<_> = family.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["v1", "v2", "v3"]);
    assert!(family.iter().all(|t| t.family() == first.id));
    assert_eq!(family[2].rotated_from, Some(second.id));
    // Another workspace sees no family.
    let other = new_workspace(&store, "Other").await;
    assert!(store
        .token_family(other.workspace.id, first.id)
        .await
        .unwrap()
        .is_empty());
}

async fn a_token_is_replaced_once_and_never_when_revoked(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Once").await;
    let u = user(b.workspace.id, UserKind::Service, "bot");
    store.create_user(&u, &ev(&u)).await.unwrap();
    let t = token(&u, "v1");
    store.create_token(&t, &ev(&t)).await.unwrap();
    rotate(&store, &t, &successor(&t, "a"), &ev(&t))
        .await
        .unwrap();
    let before = store.audit_head(b.workspace.id).await.unwrap();
    assert_conflict(
        rotate(&store, &t, &successor(&t, "b"), &ev(&t)).await,
        "ALREADY_ROTATED",
    );
    let mut revoked = token(&u, "gone");
    store.create_token(&revoked, &ev(&revoked)).await.unwrap();
    revoked.status = TokenStatus::Revoked;
    revoked.revoked_at = Some(now());
    put_token(&store, &revoked, &ev(&revoked)).await.unwrap();
    let head = store.audit_head(b.workspace.id).await.unwrap();
    assert_conflict(
        rotate(&store, &revoked, &successor(&revoked, "c"), &ev(&revoked)).await,
        "TOKEN_REVOKED",
    );
    // Refused rotations store nothing, their events included.
    assert_eq!(store.audit_head(b.workspace.id).await.unwrap(), head);
    assert_ne!(before, head);
    let names: Vec<_> = store
        .token_family(b.workspace.id, t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["v1", "a"]);
}
