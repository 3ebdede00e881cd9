//! Roles: create, read, update, list, name uniqueness, delete while in use.

use std::sync::Arc;

use chrono::Duration;
use keyward_core::model::{RoleKind, Scope, UserKind};
use keyward_core::RoleId;
use keyward_store::Store;
use rand_core::OsRng;

use crate::fixtures::*;
use crate::support::*;

conformance!(
    roles_round_trip_and_update,
    roles_list_in_pages,
    role_name_taken_is_a_conflict,
    role_in_use_cannot_be_deleted,
    missing_roles_are_not_found,
);

async fn roles_round_trip_and_update(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;

    let mut agent = role(ws, "agent", RoleKind::Api);
    agent.scope = Scope::User;
    agent.description = "Sees what its owner sees — «quoted» \"text\"".into();
    agent.permissions = patterns(&["orders:read", "billing.*:read", "cart:*", "*", "keyward.*"]);
    agent.rate_limit_per_minute = Some(150);
    agent.rate_limit_per = keyward_core::RateLimitPer::User;
    store.create_role(&agent, &ev(&agent)).await.unwrap();
    let mut human = role(ws, "support", RoleKind::Human);
    human.permissions = Vec::new();
    store.create_role(&human, &ev(&human)).await.unwrap();

    assert_eq!(store.role(ws, agent.id).await.unwrap(), Some(agent.ms()));
    assert_eq!(store.role(ws, human.id).await.unwrap(), Some(human.ms()));

    agent.name = "integration".into();
    agent.description = String::new();
    agent.scope = Scope::Workspace;
    agent.permissions = patterns(&["cart:write"]);
    agent.ip_allowlist =
        keyward_core::ip::IpAllowlist::parse_input("192.168.0.0/16", "ips").unwrap();
    agent.rate_limit_per_minute = Some(600);
    agent.rate_limit_per = keyward_core::RateLimitPer::User;
    agent.updated_at += Duration::seconds(10);
    put_role(&store, &agent, &ev(&agent)).await.unwrap();
    assert_eq!(store.role(ws, agent.id).await.unwrap(), Some(agent.ms()));

    agent.permissions = Vec::new();
    agent.updated_at += Duration::seconds(10);
    put_role(&store, &agent, &ev(&agent)).await.unwrap();
    assert_eq!(store.role(ws, agent.id).await.unwrap(), Some(agent.ms()));

    // Creation time is not rewritten by an update.
    let mut moved = agent.clone();
    moved.created_at -= Duration::days(1);
    put_role(&store, &moved, &ev(&moved)).await.unwrap();
    assert_eq!(store.role(ws, agent.id).await.unwrap(), Some(agent.ms()));

    // Others are untouched.
    assert_eq!(store.role(ws, human.id).await.unwrap(), Some(human.ms()));
    assert_eq!(store.role(ws, b.role.id).await.unwrap(), Some(b.role.ms()));
}

async fn roles_list_in_pages(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let base = b.role.created_at;
    let mut all = vec![b.role.clone()];
    for (i, ms) in [2, 2, 1, 3, 2, 0].into_iter().enumerate() {
        let mut r = role(ws, &format!("role{i}"), RoleKind::Api);
        r.created_at = base + Duration::milliseconds(ms);
        store.create_role(&r, &ev(&r)).await.unwrap();
        all.push(r);
    }
    let expected = in_listing_order(&all.ms());

    for limit in [2, 4, 7] {
        let s = store.clone();
        let got = pages(limit, move |p| {
            let s = s.clone();
            async move { s.list_roles(ws, &p).await }
        })
        .await;
        assert_pages(&got, &expected, limit as usize, |r| r.id);
    }
}

async fn role_name_taken_is_a_conflict(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "A").await;
    let other = new_workspace(&store, "B").await;
    let ws = a.workspace.id;

    let ops = role(ws, "ops", RoleKind::Api);
    store.create_role(&ops, &ev(&ops)).await.unwrap();
    let again = role(ws, "ops", RoleKind::Human);
    assert_conflict(store.create_role(&again, &ev(&again)).await, "NAME_TAKEN");
    assert_eq!(store.role(ws, again.id).await.unwrap(), None);
    // The bootstrap's own role name is taken too.
    assert_conflict(
        store
            .create_role(&role(ws, &a.role.name, RoleKind::Api), &ev(&ws))
            .await,
        "NAME_TAKEN",
    );

    // The same name in another workspace is fine.
    store
        .create_role(&role(other.workspace.id, "ops", RoleKind::Api), &ev(&other))
        .await
        .unwrap();

    // Renaming onto a taken name is refused and changes nothing.
    let dev = role(ws, "dev", RoleKind::Api);
    store.create_role(&dev, &ev(&dev)).await.unwrap();
    let mut renamed = dev.clone();
    renamed.name = "ops".into();
    renamed.description = "changed".into();
    assert_conflict(
        put_role(&store, &renamed, &ev(&renamed)).await,
        "NAME_TAKEN",
    );
    assert_eq!(store.role(ws, dev.id).await.unwrap(), Some(dev.ms()));
}

async fn role_in_use_cannot_be_deleted(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;

    // The bootstrap's role is held by the admin user.
    assert_conflict(
        store.delete_role(ws, b.role.id, &ev(&ws)).await,
        "ROLE_IN_USE",
    );

    let by_user = role(ws, "held-by-user", RoleKind::Api);
    let by_token = role(ws, "held-by-token", RoleKind::Api);
    let unused = role(ws, "unused", RoleKind::Api);
    for r in [&by_user, &by_token, &unused] {
        store.create_role(r, &ev(&r)).await.unwrap();
    }
    let mut holder = user(ws, UserKind::Service, "holder");
    holder.role_id = Some(by_user.id);
    store.create_user(&holder, &ev(&holder)).await.unwrap();
    let mut t = token(&b.user, "with own role");
    t.role_id = Some(by_token.id);
    store.create_token(&t, &ev(&t)).await.unwrap();

    assert_conflict(
        store.delete_role(ws, by_user.id, &ev(&ws)).await,
        "ROLE_IN_USE",
    );
    assert_conflict(
        store.delete_role(ws, by_token.id, &ev(&ws)).await,
        "ROLE_IN_USE",
    );
    assert_eq!(
        store.role(ws, by_user.id).await.unwrap(),
        Some(by_user.ms())
    );
    assert_eq!(
        store.role(ws, by_token.id).await.unwrap(),
        Some(by_token.ms())
    );

    store.delete_role(ws, unused.id, &ev(&ws)).await.unwrap();
    assert_eq!(store.role(ws, unused.id).await.unwrap(), None);

    holder.role_id = None;
    put_user(&store, &holder, &ev(&holder)).await.unwrap();
    store.delete_role(ws, by_user.id, &ev(&ws)).await.unwrap();
    assert_eq!(store.role(ws, by_user.id).await.unwrap(), None);

    t.role_id = None;
    put_token(&store, &t, &ev(&t)).await.unwrap();
    store.delete_role(ws, by_token.id, &ev(&ws)).await.unwrap();
    assert_eq!(store.role(ws, by_token.id).await.unwrap(), None);

    assert_not_found(store.delete_role(ws, by_token.id, &ev(&ws)).await);
    let left = store.list_roles(ws, &first(100)).await.unwrap();
    assert_eq!(left, vec![b.role.ms()]);
}

async fn missing_roles_are_not_found(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let ghost = role(ws, "ghost", RoleKind::Api);
    assert_eq!(store.role(ws, ghost.id).await.unwrap(), None);
    assert_not_found(put_role(&store, &ghost, &ev(&ghost)).await);
    assert_not_found(
        store
            .delete_role(ws, RoleId::random(&mut OsRng), &ev(&ws))
            .await,
    );
    assert_eq!(
        store.role(ws, ghost.id).await.unwrap(),
        None,
        "update created it"
    );
}
