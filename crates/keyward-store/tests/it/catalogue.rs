//! The permission catalogue: put (new or re-described), list sorted, delete.

use std::sync::Arc;

use keyward_core::CatalogueEntry;
use keyward_store::Store;

use crate::fixtures::*;
use crate::support::*;

conformance!(catalogue_put_list_delete, catalogue_is_per_workspace);

async fn catalogue_put_list_delete(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    assert!(store.catalogue(ws).await.unwrap().is_empty());

    assert!(store
        .put_permission(ws, &entry("orders:read", "Read orders"), &ev(&ws))
        .await
        .unwrap());
    // Only the description changes: not new.
    assert!(!store
        .put_permission(ws, &entry("orders:read", "Read all orders"), &ev(&ws))
        .await
        .unwrap());
    // Nothing changes at all: still not new.
    assert!(!store
        .put_permission(ws, &entry("orders:read", "Read all orders"), &ev(&ws))
        .await
        .unwrap());
    assert_eq!(
        store.catalogue(ws).await.unwrap(),
        vec![entry("orders:read", "Read all orders")]
    );

    // Names whose order depends on comparing punctuation, digits and letters byte by byte.
    let names = [
        "orders:write",
        "billing:read",
        "billing.invoices:read",
        "ab:x",
        "a.c:x",
        "a-b:x",
        "a_b:x",
        "a1:x",
        "zeta:read",
        "cart:write",
    ];
    for name in names {
        let new = store
            .put_permission(ws, &entry(name, &format!("about {name}")), &ev(&ws))
            .await
            .unwrap();
        assert!(new, "{name} was new");
    }
    let mut expected: Vec<CatalogueEntry> = names
        .iter()
        .map(|n| entry(n, &format!("about {n}")))
        .collect();
    expected.push(entry("orders:read", "Read all orders"));
    expected.sort_by(|a, b| a.permission.as_str().cmp(b.permission.as_str()));
    let got = store.catalogue(ws).await.unwrap();
    assert_eq!(got, expected);
    assert!(got.iter().all(|e| !e.builtin));

    store
        .delete_permission(ws, &permission("orders:read"), &ev(&ws))
        .await
        .unwrap();
    expected.retain(|e| e.permission.as_str() != "orders:read");
    assert_eq!(store.catalogue(ws).await.unwrap(), expected);
    assert_not_found(
        store
            .delete_permission(ws, &permission("orders:read"), &ev(&ws))
            .await,
    );
    assert_not_found(
        store
            .delete_permission(ws, &permission("never:added"), &ev(&ws))
            .await,
    );

    // A deleted permission can be added again, and is new again.
    assert!(store
        .put_permission(ws, &entry("orders:read", "back"), &ev(&ws))
        .await
        .unwrap());
}

async fn catalogue_is_per_workspace(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let (wa, wb) = (a.workspace.id, b.workspace.id);

    assert!(store
        .put_permission(wa, &entry("orders:read", "A's"), &ev(&wa))
        .await
        .unwrap());
    assert!(store.catalogue(wb).await.unwrap().is_empty());

    // The same permission in B is new for B and leaves A's description alone.
    assert!(store
        .put_permission(wb, &entry("orders:read", "B's"), &ev(&wb))
        .await
        .unwrap());
    assert_eq!(
        store.catalogue(wa).await.unwrap(),
        vec![entry("orders:read", "A's")]
    );

    // Deleting in B does not delete in A.
    store
        .delete_permission(wb, &permission("orders:read"), &ev(&wb))
        .await
        .unwrap();
    assert_not_found(
        store
            .delete_permission(wb, &permission("orders:read"), &ev(&wb))
            .await,
    );
    assert_eq!(
        store.catalogue(wa).await.unwrap(),
        vec![entry("orders:read", "A's")]
    );
}
