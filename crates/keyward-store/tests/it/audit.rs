//! The audit trail: every mutation appends exactly its event in its own transaction, a refused
//! change appends nothing, appends from several connections number the chain without gaps, the
//! chain checks, and an edit made behind keyward's back is found.

use std::sync::Arc;

use chrono::Duration;
use keyward_core::audit::{check_chain, Actor, AuditDraft, AuditEvent};
use keyward_core::model::{RoleKind, UserKind};
use keyward_core::{TokenId, WorkspaceId};
use keyward_store::{AuditFilter, Store};

use crate::fixtures::*;
use crate::support::*;

conformance!(
    each_change_appends_its_event_in_order,
    a_refused_change_appends_nothing,
    filters_and_cursors,
    concurrent_appends_chain_without_gaps,
    chains_are_per_workspace,
);

fn draft(ws: WorkspaceId, action: &str, target: &str) -> AuditDraft {
    let by = Actor::token(TokenId::random(&mut rand_core::OsRng), user_id());
    AuditDraft::new(ws, now(), by, action, "token", target)
}

fn user_id() -> keyward_core::UserId {
    keyward_core::UserId::random(&mut rand_core::OsRng)
}

async fn all(store: &Arc<dyn Store>, ws: WorkspaceId) -> Vec<AuditEvent> {
    let f = AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    };
    store.list_audit(ws, &f).await.unwrap()
}

async fn each_change_appends_its_event_in_order(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Audited").await;
    let ws = b.workspace.id;
    let r = role(ws, "ops", RoleKind::Api);
    store
        .create_role(&r, &draft(ws, "role.created", "r").after(&r))
        .await
        .unwrap();
    let u = user(ws, UserKind::Service, "bot");
    store
        .create_user(&u, &draft(ws, "user.created", "u"))
        .await
        .unwrap();
    let t = token(&u, "t");
    let ip = Some("203.0.113.9".parse().unwrap());
    store
        .create_token(&t, &draft(ws, "token.created", "t").ip(ip))
        .await
        .unwrap();
    store
        .delete_token(ws, t.id, &draft(ws, "token.deleted", "t"))
        .await
        .unwrap();

    let events = all(&store, ws).await;
    let actions: Vec<_> = events.iter().map(|e| e.draft.action.as_str()).collect();
    // The bootstrap's own event comes first.
    assert_eq!(
        actions,
        [
            "test.change",
            "role.created",
            "user.created",
            "token.created",
            "token.deleted"
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(events[3].draft.ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(
        events[1].draft.after.as_deref(),
        Some(serde_json::to_string(&r).unwrap().as_str())
    );
    // Read back exactly as written: the chain checks and ends at the head.
    let (seq, hash) = check_chain((0, String::new()), &events).unwrap();
    assert_eq!(store.audit_head(ws).await.unwrap(), Some((seq, hash)));
}

async fn a_refused_change_appends_nothing(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Strict").await;
    let ws = b.workspace.id;
    let before = all(&store, ws).await.len();
    // Not found, name taken, in use: each refused, none audited.
    let missing = user(ws, UserKind::Service, "ghost");
    assert_not_found(put_user(&store, &missing, &draft(ws, "user.updated", "ghost")).await);
    let dup = role(ws, &b.role.name, RoleKind::Api);
    assert_conflict(
        store
            .create_role(&dup, &draft(ws, "role.created", "dup"))
            .await,
        "NAME_TAKEN",
    );
    assert_conflict(
        store
            .delete_user(ws, b.user.id, &draft(ws, "user.deleted", "admin"))
            .await,
        "USER_HAS_TOKENS",
    );
    assert_eq!(all(&store, ws).await.len(), before);
}

async fn filters_and_cursors(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Filtered").await;
    let ws = b.workspace.id;
    let tok = TokenId::random(&mut rand_core::OsRng);
    let by = Actor::token(tok, b.user.id);
    let t0 = now();
    let mut drafts = Vec::new();
    for (i, action) in [
        "token.created",
        "role.updated",
        "token.revoked",
        "tokenx.odd",
    ]
    .into_iter()
    .enumerate()
    {
        let mut d = AuditDraft::new(
            ws,
            now() + Duration::minutes(i as i64),
            by,
            action,
            "x",
            "y",
        );
        if action == "role.updated" {
            // About the token, by someone else.
            d.actor = Actor::SYSTEM;
            d.target_id = tok.to_string();
        }
        drafts.push(d);
    }
    store.append_audit(&drafts).await.unwrap();
    let list = |f: AuditFilter| {
        let store = store.clone();
        async move {
            let f = AuditFilter { limit: 100, ..f };
            store
                .list_audit(ws, &f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.draft.action)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(AuditFilter {
            action: Some("token.*".into()),
            ..Default::default()
        })
        .await,
        ["token.created", "token.revoked"],
        "a family is matched by its exact prefix"
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some(tok.to_string()),
            ..Default::default()
        })
        .await,
        ["token.created", "token.revoked", "tokenx.odd"]
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some(b.user.id.to_string()),
            action: Some("token.revoked".into()),
            ..Default::default()
        })
        .await,
        ["token.revoked"]
    );
    assert_eq!(
        list(AuditFilter {
            token: Some(tok),
            ..Default::default()
        })
        .await,
        [
            "token.created",
            "role.updated",
            "token.revoked",
            "tokenx.odd"
        ]
    );
    assert_eq!(
        list(AuditFilter {
            from: Some(t0 + Duration::minutes(1)),
            to: Some(t0 + Duration::minutes(3)),
            ..Default::default()
        })
        .await,
        ["role.updated", "token.revoked"]
    );
    // Pages: ascending after a number, descending before one.
    let first = all(&store, ws).await;
    let page = store
        .list_audit(
            ws,
            &AuditFilter {
                cursor: Some(first[1].seq),
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [first[2].seq, first[3].seq]
    );
    let newest = store
        .list_audit(
            ws,
            &AuditFilter {
                descending: true,
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        newest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [first[4].seq, first[3].seq]
    );
}

async fn concurrent_appends_chain_without_gaps(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Busy").await;
    let ws = b.workspace.id;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let s = store.clone();
        tasks.spawn(async move {
            if i % 2 == 0 {
                let u = user(ws, UserKind::Service, &format!("u{i}"));
                s.create_user(&u, &draft(ws, "user.created", &format!("u{i}")))
                    .await
            } else {
                s.append_audit(&[draft(ws, "security.denied", &format!("t{i}"))])
                    .await
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let events = all(&store, ws).await;
    assert_eq!(events.len(), 25);
    assert!(check_chain((0, String::new()), &events).is_ok());
    assert_eq!(store.audit_head(ws).await.unwrap().map(|h| h.0), Some(25));
}

async fn chains_are_per_workspace(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    store
        .append_audit(&[draft(a.workspace.id, "x.a", "1")])
        .await
        .unwrap();
    let ea = all(&store, a.workspace.id).await;
    let eb = all(&store, b.workspace.id).await;
    assert_eq!((ea.len(), eb.len()), (2, 1));
    assert!(eb.iter().all(|e| e.draft.workspace_id == b.workspace.id));
    assert_eq!(eb[0].seq, 1);
    assert_eq!(eb[0].prev_hash, "");
}
