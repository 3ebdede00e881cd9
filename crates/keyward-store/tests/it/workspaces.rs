//! Workspaces: bootstrap (all or nothing), read, update, list, count.

use std::sync::Arc;

use chrono::Duration;
use keyward_core::{TokenHasher, TokenSecret, UserId, WorkspaceId, WorkspaceSettings};
use keyward_store::{Store, UserFilter, WorkspaceBootstrap};
use rand_core::OsRng;

use crate::fixtures::*;
use crate::support::*;

conformance!(
    fresh_store_is_empty_and_answers,
    bootstrap_creates_all_four_objects,
    failed_bootstrap_leaves_nothing_behind,
    workspace_update_replaces_name_and_settings,
    workspaces_list_in_pages_and_count,
);

async fn fresh_store_is_empty_and_answers(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    assert_eq!(store.count_workspaces().await.unwrap(), 0);
    assert!(store.list_workspaces(&first(10)).await.unwrap().is_empty());
    let id = WorkspaceId::random(&mut OsRng);
    assert_eq!(store.workspace(id).await.unwrap(), None);
}

async fn bootstrap_creates_all_four_objects(store: Arc<dyn Store>) {
    let mut b = bootstrap("Acme");
    b.workspace.operator = true;
    let secret = TokenSecret::generate("kw", &mut OsRng);
    b.token.hash = TokenHasher::default().hash(&secret);
    store.bootstrap_workspace(&b, &ev(&b)).await.unwrap();

    let ws = b.workspace.id;
    assert_eq!(store.count_workspaces().await.unwrap(), 1);
    assert_eq!(store.workspace(ws).await.unwrap(), Some(b.workspace.ms()));
    assert_eq!(store.role(ws, b.role.id).await.unwrap(), Some(b.role.ms()));
    assert_eq!(store.user(ws, b.user.id).await.unwrap(), Some(b.user.ms()));
    assert_eq!(
        store.token(ws, b.token.id).await.unwrap(),
        Some(b.token.ms())
    );
    let hash = TokenHasher::default().hash(&secret);
    assert_eq!(
        store.token_by_hash(&hash).await.unwrap(),
        Some(b.token.ms())
    );

    // The listings see the same four objects.
    let page = first(10);
    assert_eq!(
        store.list_workspaces(&page).await.unwrap(),
        vec![b.workspace.ms()]
    );
    assert_eq!(
        store.list_roles(ws, &page).await.unwrap(),
        vec![b.role.ms()]
    );
    let users = store
        .list_users(ws, &UserFilter::default(), &page)
        .await
        .unwrap();
    assert_eq!(users, vec![b.user.ms()]);
    let tokens = store.list_tokens(ws, &any_token(), &page).await.unwrap();
    assert_eq!(tokens, vec![b.token.ms()]);
}

/// Nothing of `b` is stored (its workspace id is not another workspace's).
async fn assert_absent(store: &Arc<dyn Store>, b: &WorkspaceBootstrap, case: &str) {
    let ws = b.workspace.id;
    assert_eq!(
        store.workspace(ws).await.unwrap(),
        None,
        "{case}: workspace"
    );
    assert_eq!(
        store.role(ws, b.role.id).await.unwrap(),
        None,
        "{case}: role"
    );
    assert_eq!(
        store.user(ws, b.user.id).await.unwrap(),
        None,
        "{case}: user"
    );
    assert_eq!(
        store.token(ws, b.token.id).await.unwrap(),
        None,
        "{case}: token"
    );
    let by_hash = store.token_by_hash(&b.token.hash).await.unwrap();
    assert_ne!(
        by_hash.map(|t| t.id),
        Some(b.token.id),
        "{case}: token by hash"
    );
    let all = store.list_workspaces(&first(100)).await.unwrap();
    assert!(all.iter().all(|w| w.id != ws), "{case}: listed workspace");
}

async fn failed_bootstrap_leaves_nothing_behind(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "A").await;

    // Each bootstrap below fails on one of its four rows, after the rows before it were
    // written in the same transaction.
    let mut dup_hash = bootstrap("duplicate token hash");
    dup_hash.token.hash = a.token.hash;
    assert!(store
        .bootstrap_workspace(&dup_hash, &ev(&dup_hash))
        .await
        .is_err());
    assert_absent(&store, &dup_hash, "duplicate token hash").await;

    let mut dup_token = bootstrap("reused token id");
    dup_token.token.id = a.token.id;
    assert!(store
        .bootstrap_workspace(&dup_token, &ev(&dup_token))
        .await
        .is_err());
    assert_absent(&store, &dup_token, "reused token id").await;

    let mut dup_user = bootstrap("reused user id");
    dup_user.user.id = a.user.id;
    dup_user.token.owner_id = a.user.id;
    assert!(store
        .bootstrap_workspace(&dup_user, &ev(&dup_user))
        .await
        .is_err());
    assert_absent(&store, &dup_user, "reused user id").await;

    let mut dup_role = bootstrap("reused role id");
    dup_role.role.id = a.role.id;
    dup_role.user.role_id = Some(a.role.id);
    assert!(store
        .bootstrap_workspace(&dup_role, &ev(&dup_role))
        .await
        .is_err());
    assert_absent(&store, &dup_role, "reused role id").await;

    // A reused workspace id fails first and must not touch the existing workspace.
    let mut dup_ws = bootstrap("reused workspace id");
    let taken = a.workspace.id;
    dup_ws.workspace.id = taken;
    dup_ws.role.workspace_id = taken;
    dup_ws.user.workspace_id = taken;
    dup_ws.token.workspace_id = taken;
    assert!(store
        .bootstrap_workspace(&dup_ws, &ev(&dup_ws))
        .await
        .is_err());
    assert_eq!(
        store.workspace(taken).await.unwrap(),
        Some(a.workspace.ms())
    );
    assert_eq!(store.role(taken, dup_ws.role.id).await.unwrap(), None);
    assert_eq!(store.user(taken, dup_ws.user.id).await.unwrap(), None);
    assert_eq!(store.token(taken, dup_ws.token.id).await.unwrap(), None);

    assert_eq!(store.count_workspaces().await.unwrap(), 1);
    assert_eq!(
        store.token_by_hash(&a.token.hash).await.unwrap(),
        Some(a.token.ms())
    );

    // Nothing half-written is left to collide with: the same objects, made valid, go in.
    let mut fixed = dup_user;
    fixed.user.id = UserId::random(&mut OsRng);
    fixed.token.owner_id = fixed.user.id;
    store
        .bootstrap_workspace(&fixed, &ev(&fixed))
        .await
        .unwrap();
    assert_eq!(store.count_workspaces().await.unwrap(), 2);
    assert_eq!(
        store.user(fixed.workspace.id, fixed.user.id).await.unwrap(),
        Some(fixed.user.ms())
    );
}

async fn workspace_update_replaces_name_and_settings(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Before").await;
    let mut ws = b.workspace.clone();
    ws.name = "After".into();
    ws.settings = WorkspaceSettings {
        token_prefix: "acme_live".into(),
        default_rate_limit_per_minute: 600,
        default_rate_limit_per: keyward_core::RateLimitPer::User,
        token_max_lifetime_days: Some(90),
        expiry_warning_days: 14,
        require_2fa: true,
        require_approval: true,
        approvals_required: 2,
        approval_expiry_hours: 24,
        ip_allowlist: keyward_core::ip::IpAllowlist::parse_input("203.0.113.0/24", "ips").unwrap(),
        internal_networks: keyward_core::ip::IpAllowlist::parse_input("10.0.0.0/8", "ips").unwrap(),
    };
    ws.updated_at += Duration::minutes(5);
    put_workspace(&store, &ws, &ev(&ws)).await.unwrap();
    assert_eq!(store.workspace(ws.id).await.unwrap(), Some(ws.ms()));

    // Back to defaults (including the optional maximum cleared).
    ws.settings = WorkspaceSettings::default();
    ws.updated_at += Duration::minutes(5);
    put_workspace(&store, &ws, &ev(&ws)).await.unwrap();
    assert_eq!(store.workspace(ws.id).await.unwrap(), Some(ws.ms()));

    // Creation time is not rewritten by an update.
    let mut moved = ws.clone();
    moved.created_at -= Duration::days(1);
    put_workspace(&store, &moved, &ev(&moved)).await.unwrap();
    assert_eq!(store.workspace(ws.id).await.unwrap(), Some(ws.ms()));

    let mut missing = ws.clone();
    missing.id = WorkspaceId::random(&mut OsRng);
    assert_not_found(put_workspace(&store, &missing, &ev(&missing)).await);
    assert_eq!(store.workspace(missing.id).await.unwrap(), None);
    assert_eq!(store.count_workspaces().await.unwrap(), 1);
}

async fn workspaces_list_in_pages_and_count(store: Arc<dyn Store>) {
    // Seven workspaces, some created in the same millisecond, inserted out of order.
    let base = now();
    let offsets = [3, 0, 1, 1, 0, 2, 1];
    let mut created = Vec::new();
    for (i, ms) in offsets.into_iter().enumerate() {
        let mut b = bootstrap(&format!("ws{i}"));
        b.workspace.created_at = base + Duration::milliseconds(ms);
        store.bootstrap_workspace(&b, &ev(&b)).await.unwrap();
        created.push(b.workspace.ms());
    }
    assert_eq!(store.count_workspaces().await.unwrap(), 7);
    let expected = in_listing_order(&created);

    let s = store.clone();
    let pages = pages(2, move |p| {
        let s = s.clone();
        async move { s.list_workspaces(&p).await }
    })
    .await;
    assert_pages(&pages, &expected, 2, |w| w.id);

    // One page holding everything, and a limit larger than the listing.
    assert_eq!(store.list_workspaces(&first(7)).await.unwrap(), expected);
    assert_eq!(store.list_workspaces(&first(100)).await.unwrap(), expected);
}
