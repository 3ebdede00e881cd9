//! Tenancy: one workspace's users, roles, tokens and catalogue can be neither seen nor changed
//! through another workspace's id.

use std::sync::Arc;

use keyward_core::model::{RoleKind, TokenStatus, UserKind};
use keyward_store::{Store, TokenFilter, UserFilter, WorkspaceBootstrap};

use crate::fixtures::*;
use crate::support::*;

conformance!(
    objects_of_another_workspace_are_invisible,
    objects_of_another_workspace_cannot_be_changed,
);

/// Workspace A with an extra user (owning a token with its own role) and a catalogue entry.
struct Tenant {
    b: WorkspaceBootstrap,
    user: keyward_core::User,
    role: keyward_core::Role,
    token: keyward_core::Token,
}

async fn tenant(store: &Arc<dyn Store>, name: &str) -> Tenant {
    let b = new_workspace(store, name).await;
    let ws = b.workspace.id;
    let r = role(ws, "integration", RoleKind::Api);
    store.create_role(&r, &ev(&r)).await.unwrap();
    let mut u = user(ws, UserKind::Service, "erp");
    u.email = Some("erp@example.com".into());
    store.create_user(&u, &ev(&u)).await.unwrap();
    let mut t = token(&u, "erp token");
    t.role_id = Some(r.id);
    store.create_token(&t, &ev(&t)).await.unwrap();
    store
        .put_permission(ws, &entry("orders:read", "Read orders"), &ev(&ws))
        .await
        .unwrap();
    Tenant {
        b,
        user: u,
        role: r,
        token: t,
    }
}

/// Everything of `a` is still there, unchanged.
async fn assert_intact(store: &Arc<dyn Store>, a: &Tenant) {
    let ws = a.b.workspace.id;
    assert_eq!(store.user(ws, a.user.id).await.unwrap(), Some(a.user.ms()));
    assert_eq!(store.role(ws, a.role.id).await.unwrap(), Some(a.role.ms()));
    assert_eq!(
        store.token(ws, a.token.id).await.unwrap(),
        Some(a.token.ms())
    );
    assert_eq!(
        store.catalogue(ws).await.unwrap(),
        vec![entry("orders:read", "Read orders")]
    );
}

async fn objects_of_another_workspace_are_invisible(store: Arc<dyn Store>) {
    let a = tenant(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let wb = b.workspace.id;

    assert_eq!(store.user(wb, a.user.id).await.unwrap(), None);
    assert_eq!(store.user(wb, a.b.user.id).await.unwrap(), None);
    assert_eq!(store.role(wb, a.role.id).await.unwrap(), None);
    assert_eq!(store.role(wb, a.b.role.id).await.unwrap(), None);
    assert_eq!(store.token(wb, a.token.id).await.unwrap(), None);
    assert!(store.catalogue(wb).await.unwrap().is_empty());

    let all = first(100);
    let users = store
        .list_users(wb, &UserFilter::default(), &all)
        .await
        .unwrap();
    assert_eq!(users, vec![b.user.ms()]);
    let by_id = UserFilter {
        id: Some(a.user.id),
        ..UserFilter::default()
    };
    assert!(store.list_users(wb, &by_id, &all).await.unwrap().is_empty());
    assert_eq!(store.list_roles(wb, &all).await.unwrap(), vec![b.role.ms()]);
    let tokens = store.list_tokens(wb, &any_token(), &all).await.unwrap();
    assert_eq!(tokens, vec![b.token.ms()]);
    for filter in [
        TokenFilter {
            owner_id: Some(a.user.id),
            ..any_token()
        },
        TokenFilter {
            role_id: Some(a.role.id),
            ..any_token()
        },
    ] {
        let got = store.list_tokens(wb, &filter, &all).await.unwrap();
        assert!(got.is_empty(), "{filter:?}: {got:?}");
    }

    // An e-mail taken in A is free in B.
    let mut same_mail = user(wb, UserKind::Human, "namesake");
    same_mail.email = a.user.email.clone();
    store
        .create_user(&same_mail, &ev(&same_mail))
        .await
        .unwrap();
    assert_intact(&store, &a).await;
}

async fn objects_of_another_workspace_cannot_be_changed(store: Arc<dyn Store>) {
    let a = tenant(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let wb = b.workspace.id;

    // Updates naming A's objects but B's workspace touch nothing.
    let mut u = a.user.clone();
    u.workspace_id = wb;
    u.name = "hijacked".into();
    u.disabled = true;
    assert_not_found(put_user(&store, &u, &ev(&u)).await);
    let mut r = a.role.clone();
    r.workspace_id = wb;
    r.permissions = patterns(&["*"]);
    assert_not_found(put_role(&store, &r, &ev(&r)).await);
    let mut t = a.token.clone();
    t.workspace_id = wb;
    t.status = TokenStatus::Revoked;
    assert_not_found(put_token(&store, &t, &ev(&t)).await);
    assert_intact(&store, &a).await;

    // Deletes too, and they answer as for a missing object: no hint that it exists elsewhere
    // or is in use there (A's user owns a token, A's roles are held).
    assert_not_found(store.delete_token(wb, a.token.id, &ev(&wb)).await);
    assert_not_found(store.delete_user(wb, a.user.id, &ev(&wb)).await);
    assert_not_found(store.delete_user(wb, a.b.user.id, &ev(&wb)).await);
    assert_not_found(store.delete_role(wb, a.role.id, &ev(&wb)).await);
    assert_not_found(store.delete_role(wb, a.b.role.id, &ev(&wb)).await);
    assert_not_found(
        store
            .delete_permission(wb, &permission("orders:read"), &ev(&wb))
            .await,
    );
    assert_intact(&store, &a).await;

    // An unused object of A is not deletable through B either.
    let unused_role = role(a.b.workspace.id, "unused", RoleKind::Api);
    store
        .create_role(&unused_role, &ev(&unused_role))
        .await
        .unwrap();
    let lone_user = user(a.b.workspace.id, UserKind::Human, "lone");
    store
        .create_user(&lone_user, &ev(&lone_user))
        .await
        .unwrap();
    assert_not_found(store.delete_role(wb, unused_role.id, &ev(&wb)).await);
    assert_not_found(store.delete_user(wb, lone_user.id, &ev(&wb)).await);
    let wa = a.b.workspace.id;
    assert_eq!(
        store.role(wa, unused_role.id).await.unwrap(),
        Some(unused_role.ms())
    );
    assert_eq!(
        store.user(wa, lone_user.id).await.unwrap(),
        Some(lone_user.ms())
    );

    // B's own objects were not touched either.
    assert_eq!(store.user(wb, b.user.id).await.unwrap(), Some(b.user.ms()));
    assert_eq!(store.role(wb, b.role.id).await.unwrap(), Some(b.role.ms()));
    assert_eq!(
        store.token(wb, b.token.id).await.unwrap(),
        Some(b.token.ms())
    );
}
