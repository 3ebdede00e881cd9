//! The audit trail: every mutation appends exactly its event in its own transaction, a refused
//! change appends nothing, appends from several connections number the chain without gaps, the
//! chain checks, and an edit made behind keyward's back is found.

use std::sync::Arc;

use chrono::Duration;
use keyward_core::audit::{
    check_chain, keyed_hash, plain_hash, Actor, AuditDraft, AuditEvent, ChainRules, Checkpoint,
};
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
    events_are_keyed_and_the_store_verifies_them,
    checkpoints_are_signed_and_checked,
);

fn keyed_rules(key: &keyward_core::audit::ChainKey) -> ChainRules<'_> {
    ChainRules {
        key,
        keyed_from: 1,
        checkpoint: None,
    }
}

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
    let key = chain_key();
    let (seq, hash) = check_chain(&keyed_rules(&key), (0, String::new()), &events).unwrap();
    let head = store.audit_head(ws).await.unwrap().unwrap();
    assert_eq!((head.seq, head.hash), (seq, hash));
    assert_eq!(
        head.keyed_from,
        Some(1),
        "a new chain is keyed from its first event"
    );
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
    let key = chain_key();
    assert!(check_chain(&keyed_rules(&key), (0, String::new()), &events).is_ok());
    assert_eq!(store.audit_head(ws).await.unwrap().map(|h| h.seq), Some(25));
    assert!(store.verify_audit(ws, None).await.unwrap().intact);
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

async fn events_are_keyed_and_the_store_verifies_them(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Keyed").await;
    let ws = b.workspace.id;
    store
        .append_audit(&[draft(ws, "x.one", "1"), draft(ws, "x.two", "2")])
        .await
        .unwrap();
    let events = all(&store, ws).await;
    let key = chain_key();
    for e in &events {
        assert_eq!(e.hash, keyed_hash(&key, &e.prev_hash, e.seq, &e.draft));
        assert_ne!(e.hash, plain_hash(&e.prev_hash, e.seq, &e.draft));
    }
    let v = store.verify_audit(ws, None).await.unwrap();
    assert!(v.intact, "{v:?}");
    assert_eq!(
        (v.events_checked, v.head_seq, v.keyed_from),
        (3, 3, Some(1))
    );
}

async fn checkpoints_are_signed_and_checked(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Pinned").await;
    let other = new_workspace(&store, "Other").await;
    let ws = b.workspace.id;
    store.append_audit(&[draft(ws, "x.a", "1")]).await.unwrap();
    let cp = store.audit_checkpoint(ws, now()).await.unwrap();
    assert_eq!((cp.workspace_id, cp.seq), (ws, 2));
    assert_eq!(cp.hash, all(&store, ws).await[1].hash);
    assert!(store.checkpoint_is_authentic(&cp));
    // Round-trips as the one line of JSON the CLI prints.
    let line = serde_json::to_string(&cp).unwrap();
    let cp: Checkpoint = serde_json::from_str(&line).unwrap();
    assert!(store.checkpoint_is_authentic(&cp));
    // Later events do not disturb it.
    store.append_audit(&[draft(ws, "x.b", "2")]).await.unwrap();
    let v = store.verify_audit(ws, Some(&cp)).await.unwrap();
    assert!(v.intact, "{v:?}");
    assert_eq!(v.checkpoint_seq, Some(2));
    // A forged one (another hash, signature kept) and another workspace's are not accepted.
    let mut forged = cp.clone();
    forged.hash = "00".repeat(32);
    assert!(!store.checkpoint_is_authentic(&forged));
    let v = store.verify_audit(ws, Some(&forged)).await.unwrap();
    assert!(!v.intact && v.first_broken.unwrap().reason.contains("not signed"));
    let theirs = store
        .audit_checkpoint(other.workspace.id, now())
        .await
        .unwrap();
    assert!(!store.verify_audit(ws, Some(&theirs)).await.unwrap().intact);
    // A checkpoint beyond the head: the chain was cut back.
    let ahead = Checkpoint::sign(&chain_key(), ws, 9, "ab".repeat(32), now());
    let v = store.verify_audit(ws, Some(&ahead)).await.unwrap();
    let broken = v.first_broken.unwrap();
    assert_eq!(broken.seq, 9);
    assert!(broken.reason.contains("removed"), "{broken:?}");
}
