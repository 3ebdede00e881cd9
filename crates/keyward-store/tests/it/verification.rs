//! `load_verification`: everything the decision needs about one token, in one call.

use std::sync::Arc;

use keyward_core::model::{RoleKind, UserKind};
use keyward_core::permission::builtin_catalogue;
use keyward_core::{CatalogueEntry, TokenHasher, TokenSecret};
use keyward_store::{load_verification_by_parts, Store};
use rand_core::OsRng;

use crate::fixtures::*;

conformance!(
    verification_prefers_the_tokens_own_role,
    verification_falls_back_to_the_owners_role,
    verification_without_any_role,
    verification_of_an_unknown_hash_is_none,
    one_statement_matches_the_five_reads,
    one_statement_matches_the_five_reads_for_a_large_workspace,
);

/// Adds two entries of its own to the workspace; returns the full catalogue expected.
async fn own_catalogue(
    store: &Arc<dyn Store>,
    b: &keyward_store::WorkspaceBootstrap,
) -> Vec<CatalogueEntry> {
    let ws = b.workspace.id;
    // Put out of order: the own part is sorted.
    let own = [
        entry("orders:write", "Change orders"),
        entry("orders:read", "Read orders"),
    ];
    for e in &own {
        store.put_permission(ws, e, &ev(&ws)).await.unwrap();
    }
    let mut expected = builtin_catalogue();
    assert!(!expected.is_empty() && expected.iter().all(|e| e.builtin));
    expected.push(own[1].clone());
    expected.push(own[0].clone());
    expected
}

async fn verification_prefers_the_tokens_own_role(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let catalogue = own_catalogue(&store, &b).await;
    let owners = role(ws, "owner's", RoleKind::Api);
    let own = role(ws, "token's", RoleKind::Api);
    store.create_role(&owners, &ev(&owners)).await.unwrap();
    store.create_role(&own, &ev(&own)).await.unwrap();
    let mut owner = user(ws, UserKind::Service, "erp");
    owner.role_id = Some(owners.id);
    owner.disabled = true;
    store.create_user(&owner, &ev(&owner)).await.unwrap();
    let (mut t, secret) = token_with_secret(&owner, "with own role");
    t.role_id = Some(own.id);
    t.permissions = Some(patterns(&["orders:read"]));
    store.create_token(&t, &ev(&t)).await.unwrap();

    let hash = TokenHasher::default().hash(&secret);
    let record = store.load_verification(&hash).await.unwrap().unwrap();
    assert_eq!(record.token, t.ms());
    // The owner comes as stored, disabled flag included: the decision refuses, not the store.
    assert_eq!(record.owner, owner.ms());
    assert_eq!(record.role, Some(own.ms()));
    assert_eq!(record.catalogue, catalogue);

    // The catalogue is read afresh: a new entry shows up in the next load.
    store
        .put_permission(ws, &entry("cart:write", "Fill carts"), &ev(&ws))
        .await
        .unwrap();
    let again = store.load_verification(&hash).await.unwrap().unwrap();
    assert_eq!(again.catalogue.len(), catalogue.len() + 1);
    assert!(again
        .catalogue
        .iter()
        .any(|e| e.permission.as_str() == "cart:write" && !e.builtin));
}

async fn verification_falls_back_to_the_owners_role(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let catalogue = own_catalogue(&store, &b).await;

    // The bootstrap token has no role of its own; its owner holds the admin role.
    assert_eq!(b.token.role_id, None);
    let record = store
        .load_verification(&b.token.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.token, b.token.ms());
    assert_eq!(record.owner, b.user.ms());
    assert_eq!(record.role, Some(b.role.ms()));
    assert_eq!(record.catalogue, catalogue);

    // A role edit is seen by the next load.
    let mut edited = b.role.clone();
    edited.permissions = patterns(&["orders:read"]);
    put_role(&store, &edited, &ev(&edited)).await.unwrap();
    let record = store
        .load_verification(&b.token.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.role, Some(edited.ms()));
}

async fn verification_without_any_role(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let owner = user(ws, UserKind::Human, "no role");
    store.create_user(&owner, &ev(&owner)).await.unwrap();
    let t = token(&owner, "no role either");
    store.create_token(&t, &ev(&t)).await.unwrap();

    let record = store.load_verification(&t.hash).await.unwrap().unwrap();
    assert_eq!(record.token, t.ms());
    assert_eq!(record.owner, owner.ms());
    assert_eq!(record.role, None);
    // No own entries: the built-ins only.
    assert_eq!(record.catalogue, builtin_catalogue());
}

async fn verification_of_an_unknown_hash_is_none(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let unknown = TokenHasher::default().hash(&TokenSecret::generate("kw", &mut OsRng));
    assert!(store.load_verification(&unknown).await.unwrap().is_none());

    // Nor after its token is deleted.
    store
        .delete_token(b.workspace.id, b.token.id, &ev(&b.workspace.id))
        .await
        .unwrap();
    assert!(store
        .load_verification(&b.token.hash)
        .await
        .unwrap()
        .is_none());
}

/// `load_verification` (one statement on both SQL backends) answers exactly what the five
/// separate reads it replaced answer; returns the answer.
async fn same_as_by_parts(
    store: &Arc<dyn Store>,
    hash: &keyward_core::TokenHash,
) -> Option<keyward_store::VerificationRecord> {
    let one = store.load_verification(hash).await.unwrap();
    let parts = load_verification_by_parts(store.as_ref(), hash)
        .await
        .unwrap();
    assert_eq!(one, parts);
    one
}

async fn one_statement_matches_the_five_reads(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    own_catalogue(&store, &b).await;
    let owners = role(ws, "owner's", RoleKind::Api);
    let own = role(ws, "token's", RoleKind::Api);
    store.create_role(&owners, &ev(&owners)).await.unwrap();
    store.create_role(&own, &ev(&own)).await.unwrap();
    let mut owner = user(ws, UserKind::Service, "erp");
    owner.role_id = Some(owners.id);
    store.create_user(&owner, &ev(&owner)).await.unwrap();

    // Its own role.
    let mut with_own = token(&owner, "own role");
    with_own.role_id = Some(own.id);
    store.create_token(&with_own, &ev(&with_own)).await.unwrap();
    let r = same_as_by_parts(&store, &with_own.hash).await.unwrap();
    assert_eq!(r.role, Some(own.ms()));

    // Its owner's.
    let inherits = token(&owner, "inherits");
    store.create_token(&inherits, &ev(&inherits)).await.unwrap();
    let r = same_as_by_parts(&store, &inherits.hash).await.unwrap();
    assert_eq!(r.role, Some(owners.ms()));

    // Narrowed, with every optional column set.
    let mut narrowed = token(&owner, "narrowed");
    narrowed.permissions = Some(patterns(&["orders:read"]));
    narrowed.not_before = Some(at(1_700_000_000_000));
    narrowed.expires_at = Some(at(1_900_000_000_000));
    narrowed.ip_allowlist =
        keyward_core::ip::IpAllowlist::parse_input("10.0.0.0/8, 2001:db8::1", "ips").unwrap();
    narrowed.internal_only = true;
    narrowed.rate_limit_per_minute = Some(42);
    narrowed.rate_limit_per = keyward_core::RateLimitPer::User;
    store.create_token(&narrowed, &ev(&narrowed)).await.unwrap();
    let r = same_as_by_parts(&store, &narrowed.hash).await.unwrap();
    assert_eq!(r.token, narrowed.ms());

    // A role the store cannot find in the token's workspace (a role in use cannot be deleted,
    // so this is the reachable form of a deleted one: it names another workspace's role).
    let other = new_workspace(&store, "Other").await;
    let mut foreign = token(&owner, "foreign role");
    foreign.role_id = Some(other.role.id);
    store.create_token(&foreign, &ev(&foreign)).await.unwrap();
    let r = same_as_by_parts(&store, &foreign.hash).await.unwrap();
    assert_eq!(r.role, None);
    // No role anywhere, no own catalogue entries.
    let bare = user(other.workspace.id, UserKind::Human, "bare");
    store.create_user(&bare, &ev(&bare)).await.unwrap();
    let plain = token(&bare, "plain");
    store.create_token(&plain, &ev(&plain)).await.unwrap();
    let r = same_as_by_parts(&store, &plain.hash).await.unwrap();
    assert_eq!((r.role, r.catalogue), (None, builtin_catalogue()));

    // Unknown.
    let unknown = TokenHasher::default().hash(&TokenSecret::generate("kw", &mut OsRng));
    assert!(same_as_by_parts(&store, &unknown).await.is_none());
}

/// 7,000 allowlist entries (in the workspace's settings) and 500 catalogue entries.
async fn one_statement_matches_the_five_reads_for_a_large_workspace(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Large").await;
    let ws = b.workspace.id;
    let addresses: Vec<String> = (0..7_000)
        .map(|i| format!("10.{}.{}.1", i / 250, i % 250))
        .collect();
    let mut w = b.workspace.clone();
    w.settings.ip_allowlist =
        keyward_core::ip::IpAllowlist::parse_input(&addresses.join("\n"), "ips").unwrap();
    put_workspace(&store, &w, &ev(&ws)).await.unwrap();
    for i in (0..500).rev() {
        let e = entry(&format!("svc{i:03}:read"), &format!("Read \"service\" {i}"));
        store.put_permission(ws, &e, &ev(&ws)).await.unwrap();
    }
    let r = same_as_by_parts(&store, &b.token.hash).await.unwrap();
    assert_eq!(r.workspace, w.ms());
    assert_eq!(r.catalogue.len(), builtin_catalogue().len() + 500);
    assert_eq!(
        r.catalogue.last().unwrap().permission.as_str(),
        "svc499:read"
    );
}
