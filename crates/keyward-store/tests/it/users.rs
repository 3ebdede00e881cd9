//! Users: create, read, filter, page, update, e-mail uniqueness, delete.

use std::sync::Arc;

use chrono::Duration;
use keyward_core::model::{RoleKind, UserKind};
use keyward_core::{User, UserId};
use keyward_store::{Store, UserFilter};
use rand_core::OsRng;

use crate::fixtures::*;
use crate::support::*;

conformance!(
    users_round_trip,
    users_list_with_filters,
    users_list_in_pages_with_a_cursor,
    user_update_replaces_mutable_fields,
    email_taken_is_a_conflict,
    user_with_tokens_cannot_be_deleted,
    missing_users_are_not_found,
);

async fn users_round_trip(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let support = role(ws, "support", RoleKind::Human);
    store.create_role(&support, &ev(&support)).await.unwrap();

    let mut human = user(ws, UserKind::Human, "Ada Lovelace");
    human.email = Some("ada@example.com".into());
    human.role_id = Some(support.id);
    store.create_user(&human, &ev(&human)).await.unwrap();

    let mut service = user(ws, UserKind::Service, "erp-sync");
    service.disabled = true;
    store.create_user(&service, &ev(&service)).await.unwrap();

    assert_eq!(store.user(ws, human.id).await.unwrap(), Some(human.ms()));
    assert_eq!(
        store.user(ws, service.id).await.unwrap(),
        Some(service.ms())
    );
    let unknown = UserId::random(&mut OsRng);
    assert_eq!(store.user(ws, unknown).await.unwrap(), None);
}

/// Which users a filter should keep.
type Keep = Box<dyn Fn(&User) -> bool + Send>;

async fn users_list_with_filters(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let mut all = vec![b.user.clone()];
    for (kind, disabled, name) in [
        (UserKind::Human, false, "h-on"),
        (UserKind::Human, true, "h-off"),
        (UserKind::Service, false, "s-on"),
        (UserKind::Service, true, "s-off"),
        (UserKind::Human, false, "h-on-2"),
    ] {
        let mut u = user(ws, kind, name);
        u.disabled = disabled;
        store.create_user(&u, &ev(&u)).await.unwrap();
        all.push(u);
    }
    let all = in_listing_order(&all.ms());
    let some = all[2].id;

    let cases: Vec<(UserFilter, Keep)> = vec![
        (UserFilter::default(), Box::new(|_| true)),
        (
            UserFilter {
                kind: Some(UserKind::Human),
                ..UserFilter::default()
            },
            Box::new(|u| u.kind == UserKind::Human),
        ),
        (
            UserFilter {
                kind: Some(UserKind::Service),
                ..UserFilter::default()
            },
            Box::new(|u| u.kind == UserKind::Service),
        ),
        (
            UserFilter {
                disabled: Some(true),
                ..UserFilter::default()
            },
            Box::new(|u| u.disabled),
        ),
        (
            UserFilter {
                disabled: Some(false),
                ..UserFilter::default()
            },
            Box::new(|u| !u.disabled),
        ),
        (
            UserFilter {
                kind: Some(UserKind::Human),
                disabled: Some(false),
                id: None,
            },
            Box::new(|u| u.kind == UserKind::Human && !u.disabled),
        ),
        (
            UserFilter {
                id: Some(some),
                ..UserFilter::default()
            },
            Box::new(move |u| u.id == some),
        ),
        (
            UserFilter {
                id: Some(UserId::random(&mut OsRng)),
                ..UserFilter::default()
            },
            Box::new(|_| false),
        ),
    ];
    for (filter, keep) in cases {
        let expected: Vec<User> = all.iter().filter(|u| keep(u)).cloned().collect();
        let got = store.list_users(ws, &filter, &first(100)).await.unwrap();
        assert_eq!(got, expected, "filter {filter:?}");
    }
    // The id filter combined with a kind the user does not have.
    let mismatch = UserFilter {
        kind: Some(if all[2].kind == UserKind::Human {
            UserKind::Service
        } else {
            UserKind::Human
        }),
        id: Some(some),
        disabled: None,
    };
    let got = store.list_users(ws, &mismatch, &first(100)).await.unwrap();
    assert!(got.is_empty(), "{got:?}");
}

async fn users_list_in_pages_with_a_cursor(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    // Seven more users after the admin; several share a millisecond, so the id must break
    // ties; inserted out of creation order.
    let base = b.user.created_at;
    let mut all = vec![b.user.clone()];
    for (i, ms) in [5, 1, 1, 4, 3, 1, 2].into_iter().enumerate() {
        let kind = if i % 2 == 0 {
            UserKind::Human
        } else {
            UserKind::Service
        };
        let mut u = user(ws, kind, &format!("user{i}"));
        u.created_at = base + Duration::milliseconds(ms);
        store.create_user(&u, &ev(&u)).await.unwrap();
        all.push(u);
    }
    let expected = in_listing_order(&all.ms());
    assert_eq!(expected.len(), 8);

    for limit in [2, 3, 8] {
        let s = store.clone();
        let got = pages(limit, move |p| {
            let s = s.clone();
            async move { s.list_users(ws, &UserFilter::default(), &p).await }
        })
        .await;
        assert_pages(&got, &expected, limit as usize, |u| u.id);
    }

    // A filtered listing pages too: the keyset condition and the filter combine.
    let humans: Vec<User> = expected
        .iter()
        .filter(|u| u.kind == UserKind::Human)
        .cloned()
        .collect();
    let s = store.clone();
    let got = pages(2, move |p| {
        let s = s.clone();
        let filter = UserFilter {
            kind: Some(UserKind::Human),
            ..UserFilter::default()
        };
        async move { s.list_users(ws, &filter, &p).await }
    })
    .await;
    assert_pages(&got, &humans, 2, |u| u.id);

    // A cursor stays valid when the item it names is deleted meanwhile. (The admin, first,
    // owns a token; the second user owns none.)
    let first_two = store
        .list_users(ws, &UserFilter::default(), &first(2))
        .await
        .unwrap();
    let cursor = first_two[1].cursor();
    store
        .delete_user(ws, first_two[1].id, &ev(&ws))
        .await
        .unwrap();
    let after = keyward_store::PageRequest {
        limit: 2,
        after: Some(cursor),
    };
    let next = store
        .list_users(ws, &UserFilter::default(), &after)
        .await
        .unwrap();
    assert_eq!(next, expected[2..4].to_vec());
}

async fn user_update_replaces_mutable_fields(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let support = role(ws, "support", RoleKind::Human);
    let billing = role(ws, "billing", RoleKind::Human);
    store.create_role(&support, &ev(&support)).await.unwrap();
    store.create_role(&billing, &ev(&billing)).await.unwrap();

    let mut u = user(ws, UserKind::Human, "Ada");
    u.email = Some("ada@example.com".into());
    u.role_id = Some(support.id);
    store.create_user(&u, &ev(&u)).await.unwrap();

    // Rename, clear the e-mail and the role, disable.
    u.name = "Ada L.".into();
    u.email = None;
    u.role_id = None;
    u.disabled = true;
    u.updated_at += Duration::seconds(30);
    put_user(&store, &u, &ev(&u)).await.unwrap();
    assert_eq!(store.user(ws, u.id).await.unwrap(), Some(u.ms()));

    // Set them again, re-enable.
    u.email = Some("ada.l@example.com".into());
    u.role_id = Some(billing.id);
    u.disabled = false;
    u.updated_at += Duration::seconds(30);
    put_user(&store, &u, &ev(&u)).await.unwrap();
    assert_eq!(store.user(ws, u.id).await.unwrap(), Some(u.ms()));

    // Keeping one's own e-mail is not a conflict; creation time is not rewritten.
    let mut moved = u.clone();
    moved.created_at -= Duration::days(1);
    put_user(&store, &moved, &ev(&moved)).await.unwrap();
    assert_eq!(store.user(ws, u.id).await.unwrap(), Some(u.ms()));

    // Other users are untouched.
    assert_eq!(store.user(ws, b.user.id).await.unwrap(), Some(b.user.ms()));
}

async fn email_taken_is_a_conflict(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "A").await;
    let other = new_workspace(&store, "B").await;
    let ws = a.workspace.id;

    let mut first_user = user(ws, UserKind::Human, "first");
    first_user.email = Some("ops@example.com".into());
    store
        .create_user(&first_user, &ev(&first_user))
        .await
        .unwrap();

    let mut second = user(ws, UserKind::Human, "second");
    second.email = Some("ops@example.com".into());
    assert_conflict(
        store.create_user(&second, &ev(&second)).await,
        "EMAIL_TAKEN",
    );
    assert_eq!(store.user(ws, second.id).await.unwrap(), None);

    // The same address in another workspace is fine.
    let mut elsewhere = user(other.workspace.id, UserKind::Human, "elsewhere");
    elsewhere.email = Some("ops@example.com".into());
    store
        .create_user(&elsewhere, &ev(&elsewhere))
        .await
        .unwrap();

    // Any number of users may have no e-mail.
    let mut plain = Vec::new();
    for name in ["no-mail-1", "no-mail-2"] {
        let u = user(ws, UserKind::Service, name);
        store.create_user(&u, &ev(&u)).await.unwrap();
        plain.push(u);
    }

    // Changing to a taken address is refused and changes nothing.
    let mut changed = plain[0].clone();
    changed.email = Some("ops@example.com".into());
    changed.name = "renamed".into();
    assert_conflict(
        put_user(&store, &changed, &ev(&changed)).await,
        "EMAIL_TAKEN",
    );
    assert_eq!(
        store.user(ws, plain[0].id).await.unwrap(),
        Some(plain[0].ms())
    );

    // Once the address is released, it can be taken.
    first_user.email = None;
    put_user(&store, &first_user, &ev(&first_user))
        .await
        .unwrap();
    put_user(&store, &changed, &ev(&changed)).await.unwrap();
    assert_eq!(
        store.user(ws, changed.id).await.unwrap(),
        Some(changed.ms())
    );
}

async fn user_with_tokens_cannot_be_deleted(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let u = user(ws, UserKind::Service, "erp");
    store.create_user(&u, &ev(&u)).await.unwrap();
    let t1 = token(&u, "one");
    let t2 = token(&u, "two");
    store.create_token(&t1, &ev(&t1)).await.unwrap();
    store.create_token(&t2, &ev(&t2)).await.unwrap();

    assert_conflict(
        store.delete_user(ws, u.id, &ev(&ws)).await,
        "USER_HAS_TOKENS",
    );
    store.delete_token(ws, t1.id, &ev(&ws)).await.unwrap();
    assert_conflict(
        store.delete_user(ws, u.id, &ev(&ws)).await,
        "USER_HAS_TOKENS",
    );
    assert_eq!(store.user(ws, u.id).await.unwrap(), Some(u.ms()));

    store.delete_token(ws, t2.id, &ev(&ws)).await.unwrap();
    store.delete_user(ws, u.id, &ev(&ws)).await.unwrap();
    assert_eq!(store.user(ws, u.id).await.unwrap(), None);
    assert_not_found(store.delete_user(ws, u.id, &ev(&ws)).await);
    let listed = store
        .list_users(ws, &UserFilter::default(), &first(100))
        .await
        .unwrap();
    assert_eq!(listed, vec![b.user.ms()]);
}

async fn missing_users_are_not_found(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let ghost = user(ws, UserKind::Human, "ghost");
    assert_eq!(store.user(ws, ghost.id).await.unwrap(), None);
    assert_not_found(put_user(&store, &ghost, &ev(&ghost)).await);
    assert_not_found(store.delete_user(ws, ghost.id, &ev(&ws)).await);
    assert_eq!(
        store.user(ws, ghost.id).await.unwrap(),
        None,
        "update created it"
    );
}
