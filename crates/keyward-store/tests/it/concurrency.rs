//! Writes from several connections at once get their proper answers, never a storage error
//! (SQLite refuses a transaction that read before writing while another connection writes).

use std::sync::Arc;

use keyward_core::model::{RoleKind, UserKind};
use keyward_store::Store;

use crate::fixtures::*;
use crate::support::*;

conformance!(concurrent_deletes_and_writes_answer_cleanly);

async fn concurrent_deletes_and_writes_answer_cleanly(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Busy").await;
    let ws = b.workspace.id;

    // Half the users own a token (and hold a role), half do not.
    let mut cases = Vec::new();
    for i in 0..16 {
        let r = role(ws, &format!("role{i}"), RoleKind::Api);
        store.create_role(&r, &ev(&r)).await.unwrap();
        let mut u = user(ws, UserKind::Service, &format!("user{i}"));
        let busy = i % 2 == 0;
        if busy {
            u.role_id = Some(r.id);
        }
        store.create_user(&u, &ev(&u)).await.unwrap();
        if busy {
            store
                .create_token(&token(&u, "held"), &ev(&u))
                .await
                .unwrap();
        }
        cases.push((u, r, busy));
    }

    let mut tasks = tokio::task::JoinSet::new();
    for (u, r, busy) in cases {
        let s = store.clone();
        tasks.spawn(async move {
            let user_result = s.delete_user(ws, u.id, &ev(&ws)).await;
            let role_result = s.delete_role(ws, r.id, &ev(&ws)).await;
            (busy, user_result, role_result)
        });
        // Meanwhile, other writes.
        let s = store.clone();
        let admin = b.user.clone();
        tasks.spawn(async move {
            s.create_token(&token(&admin, "meanwhile"), &ev(&admin))
                .await
                .unwrap();
            (false, Ok(()), Ok(()))
        });
    }
    let mut conflicts = 0;
    while let Some(joined) = tasks.join_next().await {
        let (busy, user_result, role_result) = joined.unwrap();
        if busy {
            assert_conflict(user_result, "USER_HAS_TOKENS");
            assert_conflict(role_result, "ROLE_IN_USE");
            conflicts += 1;
        } else {
            assert!(
                matches!(user_result, Ok(())),
                "deleting a user without tokens: {user_result:?}"
            );
            assert!(
                matches!(role_result, Ok(())),
                "deleting an unused role: {role_result:?}"
            );
        }
    }
    assert_eq!(conflicts, 8);
    let tokens = store.list_tokens(ws, &any_token(), &first(100)).await;
    assert_eq!(tokens.unwrap().len(), 1 + 8 + 16);
}
