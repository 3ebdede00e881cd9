//! Change requests: stored, read back and listed (every filter, newest first, paged); approvals
//! once per person and only while the request is pending and unexpired; decisions only from
//! `pending`, once; applying a workspace, role or token change together with the transition
//! and its audit events, refused as stale (writing nothing) when the target changed meanwhile,
//! and won by exactly one of two concurrent callers; the approval code's hash never serialised.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::model::{RoleKind, UserKind};
use keyward_core::{
    Approval, ChangeRequest, ChangeRequestId, ChangeState, ChangeTarget, User, UserId, WorkspaceId,
};
use keyward_store::{
    AuditFilter, ChangeApply, ChangeRequestFilter, Cursor, PageRequest, Store, StoreError,
    CONCURRENT_UPDATE,
};
use rand_core::OsRng;

use crate::fixtures::*;
use crate::support::*;

conformance!(
    requests_are_stored_listed_and_filtered,
    approvals_are_once_per_person_and_only_while_open,
    requests_finish_only_from_pending,
    applying_changes_the_target_and_marks_the_request,
    a_stale_apply_writes_nothing,
    concurrent_applies_succeed_once,
    expired_requests_are_listed_across_workspaces,
    the_code_hash_is_stored_but_never_serialised,
);

impl Ms for ChangeRequest {
    fn ms(&self) -> Self {
        Self {
            created_at: self.created_at.ms(),
            expires_at: self.expires_at.ms(),
            decided_at: self.decided_at.ms(),
            approvals: self
                .approvals
                .iter()
                .map(|a| Approval {
                    at: a.at.ms(),
                    ..a.clone()
                })
                .collect(),
            ..self.clone()
        }
    }
}

impl Listed for ChangeRequest {
    fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.uuid(),
        }
    }
}

/// A pending request of `requested_by` to change `target`, created at `created_at`, open for
/// an hour.
fn request(
    ws: WorkspaceId,
    target: ChangeTarget,
    requested_by: Actor,
    created_at: DateTime<Utc>,
) -> ChangeRequest {
    ChangeRequest {
        id: ChangeRequestId::random(&mut OsRng),
        workspace_id: ws,
        target,
        change: serde_json::json!({"description": "wanted", "n": 1}),
        before: serde_json::json!({"description": "was"}),
        base_version: 1,
        requested_by_maker: requested_by.user_id,
        requested_by,
        reason: "because".into(),
        state: ChangeState::Pending,
        approvals_needed: 3,
        approvals: vec![],
        code_hash: format!("{}{}", random_hex(), random_hex()),
        created_at,
        expires_at: created_at + Duration::hours(1),
        decided_at: None,
        decided_by: None,
        comment: String::new(),
        outcome: None,
    }
}

/// An audit draft with this action, in `ws`.
fn act(ws: WorkspaceId, action: &str) -> AuditDraft {
    AuditDraft::new(ws, now(), Actor::SYSTEM, action, "change_request", "chg")
}

/// How many events with this action `ws`'s trail holds.
async fn events(store: &Arc<dyn Store>, ws: WorkspaceId, action: &str) -> usize {
    let f = AuditFilter {
        action: Some(action.to_owned()),
        limit: 1000,
        ..AuditFilter::default()
    };
    store.list_audit(ws, &f).await.unwrap().len()
}

/// A human user of `ws`, stored.
async fn person(store: &Arc<dyn Store>, ws: WorkspaceId, name: &str) -> User {
    let u = user(ws, UserKind::Human, name);
    store.create_user(&u, &ev(&u)).await.unwrap();
    u
}

fn approval(user: UserId, at: DateTime<Utc>) -> Approval {
    Approval {
        user_id: user,
        token_id: None,
        token_maker: None,
        at,
        comment: format!("ok from {user}"),
    }
}

/// Stores `r`, with a `change.requested` event.
async fn create(store: &Arc<dyn Store>, r: &ChangeRequest) {
    let audit = act(r.workspace_id, "change.requested");
    store.create_change_request(r, &audit).await.unwrap();
}

async fn get(store: &Arc<dyn Store>, r: &ChangeRequest) -> ChangeRequest {
    store
        .change_request(r.workspace_id, r.id)
        .await
        .unwrap()
        .expect("the request is stored")
}

/// `items` newest first (by creation millisecond, then id), as requests are listed.
fn newest_first(items: &[ChangeRequest]) -> Vec<ChangeRequest> {
    let mut sorted = in_listing_order(items);
    sorted.reverse();
    sorted
}

async fn list(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    filter: &ChangeRequestFilter,
) -> Vec<ChangeRequest> {
    let page = PageRequest {
        limit: 100,
        after: None,
    };
    store.list_change_requests(ws, filter, &page).await.unwrap()
}

async fn requests_are_stored_listed_and_filtered(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Changes").await;
    let other = new_workspace(&store, "Other").await;
    let ws = b.workspace.id;
    let alice = person(&store, ws, "alice").await;
    let admin = Actor::token(b.token.id, b.user.id);
    let base = now();
    let mut all = Vec::new();
    for i in 0..8_i64 {
        let target = match i % 3 {
            0 => ChangeTarget::Workspace,
            1 => ChangeTarget::Role(b.role.id),
            _ => ChangeTarget::Token(b.token.id),
        };
        let by = if i % 2 == 0 {
            Actor::person(alice.id)
        } else {
            admin
        };
        // Two requests per millisecond: the id breaks the tie.
        let mut r = request(ws, target, by, base + Duration::milliseconds(i / 2));
        r.base_version = i;
        r.approvals_needed = 2;
        create(&store, &r).await;
        all.push(r.ms());
    }
    assert_eq!(events(&store, ws, "change.requested").await, 8);

    // Read back exactly, in its workspace only.
    for r in &all {
        assert_eq!(&get(&store, r).await, r);
        assert_eq!(
            store
                .change_request(other.workspace.id, r.id)
                .await
                .unwrap(),
            None
        );
    }
    let unknown = ChangeRequestId::random(&mut OsRng);
    assert_eq!(store.change_request(ws, unknown).await.unwrap(), None);

    // Newest first, page by page.
    let expected = newest_first(&all);
    let any = ChangeRequestFilter::default();
    let got = pages(3, |p| {
        let store = store.clone();
        let any = any.clone();
        async move { store.list_change_requests(ws, &any, &p).await }
    })
    .await;
    assert_pages(&got, &expected, 3, |r| r.id);
    assert!(list(&store, other.workspace.id, &any).await.is_empty());

    // Each filter.
    let cancelled = &all[3];
    let done = store
        .finish_change_request(
            ws,
            cancelled.id,
            ChangeState::Cancelled,
            &admin,
            "never mind",
            None,
            now(),
            &act(ws, "change.cancelled"),
        )
        .await
        .unwrap();
    assert!(done);
    let by_state = |s: ChangeState| ChangeRequestFilter {
        state: Some(s),
        ..ChangeRequestFilter::default()
    };
    let ids = |rs: Vec<ChangeRequest>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let want = |keep: &dyn Fn(&ChangeRequest) -> bool| {
        expected
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(list(&store, ws, &by_state(ChangeState::Cancelled)).await),
        vec![cancelled.id]
    );
    assert_eq!(
        ids(list(&store, ws, &by_state(ChangeState::Pending)).await),
        want(&|r| r.id != cancelled.id)
    );
    assert!(list(&store, ws, &by_state(ChangeState::Applied))
        .await
        .is_empty());
    for kind in ["workspace", "role", "token"] {
        let f = ChangeRequestFilter {
            target_kind: Some(kind.into()),
            ..ChangeRequestFilter::default()
        };
        let got = ids(list(&store, ws, &f).await);
        assert_eq!(got, want(&|r| r.target.kind() == kind), "{kind}");
        assert!(!got.is_empty());
    }
    let f = ChangeRequestFilter {
        target_kind: Some("role".into()),
        target_id: Some(b.role.id.to_string()),
        ..ChangeRequestFilter::default()
    };
    assert_eq!(
        ids(list(&store, ws, &f).await),
        want(&|r| r.target == ChangeTarget::Role(b.role.id))
    );
    let f = ChangeRequestFilter {
        target_id: Some(b.token.id.to_string()),
        ..ChangeRequestFilter::default()
    };
    assert_eq!(
        ids(list(&store, ws, &f).await),
        want(&|r| r.target == ChangeTarget::Token(b.token.id))
    );
    let f = ChangeRequestFilter {
        requested_by_user: Some(alice.id),
        ..ChangeRequestFilter::default()
    };
    let mine = ids(list(&store, ws, &f).await);
    assert_eq!(mine, want(&|r| r.requested_by.user_id == Some(alice.id)));
    assert_eq!(mine.len(), 4);
    let f = ChangeRequestFilter {
        requested_by_user: Some(b.user.id),
        state: Some(ChangeState::Pending),
        ..ChangeRequestFilter::default()
    };
    assert_eq!(
        ids(list(&store, ws, &f).await),
        want(&|r| r.requested_by.user_id == Some(b.user.id) && r.id != cancelled.id)
    );
    // A request with the id of one stored is refused.
    let again = store
        .create_change_request(&all[0], &act(ws, "change.requested"))
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    assert_eq!(events(&store, ws, "change.requested").await, 8);
}

async fn approvals_are_once_per_person_and_only_while_open(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Approvals").await;
    let other = new_workspace(&store, "Other").await;
    let ws = b.workspace.id;
    let (alice, bob, carol) = (
        person(&store, ws, "alice").await,
        person(&store, ws, "bob").await,
        person(&store, ws, "carol").await,
    );
    let r = request(ws, ChangeTarget::Workspace, Actor::person(alice.id), now());
    create(&store, &r).await;
    let t = r.created_at + Duration::minutes(1);
    let id = r.id;
    let approve = |a: Approval| {
        let store = store.clone();
        async move {
            store
                .add_approval(ws, id, &a, &act(ws, "change.approved"))
                .await
                .unwrap()
        }
    };

    let first = approval(bob.id, t);
    assert!(approve(first.clone()).await);
    let mut again = approval(bob.id, t + Duration::seconds(1));
    again.comment = "twice".into();
    assert!(!approve(again).await, "a person approves once");
    // Bob made this token: he stands behind an approval already.
    let made_by_bob = Approval {
        token_id: Some(b.token.id),
        token_maker: Some(bob.id),
        ..approval(b.user.id, t + Duration::seconds(2))
    };
    assert!(
        !approve(made_by_bob).await,
        "nobody stands behind two approvals"
    );
    let with_token = Approval {
        token_id: Some(b.token.id),
        token_maker: Some(UserId::random(&mut OsRng)),
        ..approval(b.user.id, t + Duration::seconds(2))
    };
    assert!(approve(with_token.clone()).await);
    // Another workspace cannot approve it.
    let foreign = store
        .add_approval(
            other.workspace.id,
            r.id,
            &approval(carol.id, t),
            &act(other.workspace.id, "change.approved"),
        )
        .await
        .unwrap();
    assert!(!foreign);
    // Not at or after its expiry.
    assert!(!approve(approval(carol.id, r.expires_at)).await);
    // Unknown requests have no approvals.
    let unknown = store
        .add_approval(
            ws,
            ChangeRequestId::random(&mut OsRng),
            &approval(carol.id, t),
            &act(ws, "change.approved"),
        )
        .await
        .unwrap();
    assert!(!unknown);

    let stored = get(&store, &r).await;
    assert_eq!(stored.approvals, vec![first.ms(), with_token.ms()]);
    assert!(stored.approved_by(bob.id) && stored.approved_by(b.user.id));
    assert!(!stored.approved_by(carol.id));
    assert_eq!(events(&store, ws, "change.approved").await, 2);
    assert_eq!(
        events(&store, other.workspace.id, "change.approved").await,
        0
    );
    // A third person completes the three needed; nobody adds a fourth.
    assert!(approve(approval(carol.id, t + Duration::seconds(3))).await);
    let dave = UserId::random(&mut OsRng);
    assert!(
        !approve(approval(dave, t + Duration::seconds(4))).await,
        "a request approved enough takes no more approvals"
    );
    assert_eq!(get(&store, &r).await.approvals.len(), 3);

    // None once it is decided.
    let done = store
        .finish_change_request(
            ws,
            r.id,
            ChangeState::Rejected,
            &Actor::person(carol.id),
            "no",
            None,
            t,
            &act(ws, "change.rejected"),
        )
        .await
        .unwrap();
    assert!(done);
    assert!(!approve(approval(carol.id, t)).await);
    assert_eq!(get(&store, &r).await.approvals.len(), 3);
    assert_eq!(events(&store, ws, "change.approved").await, 3);
}

impl Ms for Approval {
    fn ms(&self) -> Self {
        Self {
            at: self.at.ms(),
            ..self.clone()
        }
    }
}

async fn requests_finish_only_from_pending(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Finish").await;
    let ws = b.workspace.id;
    let alice = person(&store, ws, "alice").await;
    let bob = Actor::person(person(&store, ws, "bob").await.id);
    let finish = |id: ChangeRequestId, to: ChangeState, outcome: Option<&'static str>| {
        let store = store.clone();
        async move {
            store
                .finish_change_request(
                    ws,
                    id,
                    to,
                    &bob,
                    "said so",
                    outcome,
                    at(1_800_000_000_000),
                    &act(ws, "change.finished"),
                )
                .await
        }
    };

    let r = request(ws, ChangeTarget::Workspace, Actor::person(alice.id), now());
    create(&store, &r).await;
    assert!(finish(r.id, ChangeState::Rejected, None).await.unwrap());
    assert!(!finish(r.id, ChangeState::Cancelled, None).await.unwrap());
    assert!(!finish(r.id, ChangeState::Rejected, None).await.unwrap());
    let stored = get(&store, &r).await;
    assert_eq!(stored.state, ChangeState::Rejected);
    assert_eq!(stored.decided_by, Some(bob));
    assert_eq!(stored.decided_at, Some(at(1_800_000_000_000)));
    assert_eq!(stored.comment, "said so");
    assert_eq!(stored.outcome, None);
    assert_eq!(events(&store, ws, "change.finished").await, 1);

    let failed = request(
        ws,
        ChangeTarget::Role(b.role.id),
        Actor::person(alice.id),
        now(),
    );
    create(&store, &failed).await;
    // Neither back to pending nor to applied this way: nothing is written.
    assert!(finish(failed.id, ChangeState::Pending, None).await.is_err());
    assert!(finish(failed.id, ChangeState::Applied, None).await.is_err());
    assert_eq!(get(&store, &failed).await.state, ChangeState::Pending);
    let outcome = "STALE: the role changed meanwhile";
    assert!(finish(failed.id, ChangeState::Failed, Some(outcome))
        .await
        .unwrap());
    let stored = get(&store, &failed).await;
    assert_eq!(
        (stored.state, stored.outcome.as_deref()),
        (ChangeState::Failed, Some(outcome))
    );
    assert!(stored.state.is_final());

    // Of two concurrent decisions, exactly one is taken.
    let raced = request(ws, ChangeTarget::Workspace, Actor::person(alice.id), now());
    create(&store, &raced).await;
    let (x, y) = tokio::join!(
        finish(raced.id, ChangeState::Rejected, None),
        finish(raced.id, ChangeState::Cancelled, None)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(x ^ y, "exactly one decision wins: {x} {y}");
    let stored = get(&store, &raced).await;
    let winner = if x {
        ChangeState::Rejected
    } else {
        ChangeState::Cancelled
    };
    assert_eq!(stored.state, winner);
    assert_eq!(events(&store, ws, "change.finished").await, 3);
    let unknown = ChangeRequestId::random(&mut OsRng);
    assert!(!finish(unknown, ChangeState::Expired, None).await.unwrap());
}

/// Applies `change` to `r` with a `change.applied` and a `<kind>.updated` event.
async fn apply(
    store: &Arc<dyn Store>,
    r: &ChangeRequest,
    change: &ChangeApply,
) -> keyward_store::Result<bool> {
    let ws = r.workspace_id;
    let audits = [
        act(ws, "change.applied"),
        act(ws, &format!("{}.updated", r.target.kind())),
    ];
    let by = Actor::SYSTEM;
    store
        .apply_change_request(
            ws,
            r.id,
            change,
            &by,
            r.created_at + Duration::minutes(1),
            &audits,
        )
        .await
}

async fn applying_changes_the_target_and_marks_the_request(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Apply").await;
    let ws = b.workspace.id;
    let alice = person(&store, ws, "alice").await;
    let by = Actor::person(alice.id);

    // The workspace.
    let read = store.workspace_versioned(ws).await.unwrap().unwrap();
    let mut r = request(ws, ChangeTarget::Workspace, by, now());
    r.base_version = read.version;
    create(&store, &r).await;
    let mut new = read.clone();
    new.value.settings.require_approval = true;
    new.value.name = "Applied".into();
    assert!(apply(&store, &r, &ChangeApply::Workspace(new.clone()))
        .await
        .unwrap());
    let now_at = store.workspace_versioned(ws).await.unwrap().unwrap();
    assert_eq!(now_at.value.name, "Applied");
    assert!(now_at.value.settings.require_approval);
    assert_eq!(now_at.version, read.version + 1);
    let stored = get(&store, &r).await;
    assert_eq!(stored.state, ChangeState::Applied);
    assert_eq!(stored.decided_by, Some(Actor::SYSTEM));
    assert_eq!(
        stored.decided_at,
        Some((r.created_at + Duration::minutes(1)).ms())
    );
    // Once: a second apply writes nothing.
    let mut later = now_at.clone();
    later.value.name = "Twice".into();
    assert!(!apply(&store, &r, &ChangeApply::Workspace(later))
        .await
        .unwrap());
    let after = store.workspace_versioned(ws).await.unwrap().unwrap();
    assert_eq!(
        (after.value.name.as_str(), after.version),
        ("Applied", now_at.version)
    );

    // A role.
    let mut analyst = role(ws, "analyst", RoleKind::Api);
    analyst.permissions = patterns(&["orders:read"]);
    store.create_role(&analyst, &ev(&analyst)).await.unwrap();
    let read = store.role_versioned(ws, analyst.id).await.unwrap().unwrap();
    let mut r = request(ws, ChangeTarget::Role(analyst.id), by, now());
    r.base_version = read.version;
    create(&store, &r).await;
    let mut new = read.clone();
    new.value.description = "approved".into();
    new.value.rate_limit_per_minute = Some(30);
    assert!(apply(&store, &r, &ChangeApply::Role(new)).await.unwrap());
    let now_at = store.role_versioned(ws, analyst.id).await.unwrap().unwrap();
    assert_eq!(now_at.value.description, "approved");
    assert_eq!(now_at.value.rate_limit_per_minute, Some(30));
    assert_eq!(now_at.version, read.version + 1);
    assert_eq!(get(&store, &r).await.state, ChangeState::Applied);

    // A token.
    let read = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();
    let mut r = request(ws, ChangeTarget::Token(b.token.id), by, now());
    r.base_version = read.version;
    create(&store, &r).await;
    let mut new = read.clone();
    new.value.internal_only = true;
    new.value.name = "narrowed".into();
    assert!(apply(&store, &r, &ChangeApply::Token(new)).await.unwrap());
    let now_at = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();
    assert!(now_at.value.internal_only);
    assert_eq!(now_at.value.name, "narrowed");
    assert_eq!(now_at.version, read.version + 1);
    assert_eq!(get(&store, &r).await.state, ChangeState::Applied);

    // The events, in the chain, which still checks.
    assert_eq!(events(&store, ws, "change.applied").await, 3);
    for kind in ["workspace", "role", "token"] {
        assert_eq!(events(&store, ws, &format!("{kind}.updated")).await, 1);
    }
    assert!(store.verify_audit(ws, None).await.unwrap().intact);
    let f = ChangeRequestFilter {
        state: Some(ChangeState::Applied),
        ..ChangeRequestFilter::default()
    };
    assert_eq!(list(&store, ws, &f).await.len(), 3);
}

async fn a_stale_apply_writes_nothing(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Stale").await;
    let ws = b.workspace.id;
    let by = Actor::person(person(&store, ws, "alice").await.id);

    let read = store.role_versioned(ws, b.role.id).await.unwrap().unwrap();
    let mut r = request(ws, ChangeTarget::Role(b.role.id), by, now());
    r.base_version = read.version;
    create(&store, &r).await;
    // Someone changes the role directly meanwhile.
    let mut direct = read.clone();
    direct.value.description = "direct".into();
    store.update_role(&direct, &ev(&ws)).await.unwrap();
    let everything = AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    };
    let events_before = store.list_audit(ws, &everything).await.unwrap().len();

    let mut approved = read.clone();
    approved.value.description = "approved".into();
    approved.value.permissions = patterns(&["*"]);
    assert_conflict(
        apply(&store, &r, &ChangeApply::Role(approved.clone())).await,
        CONCURRENT_UPDATE,
    );
    let stored = get(&store, &r).await;
    assert_eq!(
        stored.state,
        ChangeState::Pending,
        "the request stays pending"
    );
    assert_eq!((stored.decided_at, stored.decided_by), (None, None));
    let role_now = store.role_versioned(ws, b.role.id).await.unwrap().unwrap();
    assert_eq!(role_now.value.description, "direct");
    assert_eq!(role_now.value.permissions, b.role.permissions);
    assert_eq!(role_now.version, read.version + 1);
    let events_after = store.list_audit(ws, &everything).await.unwrap().len();
    assert_eq!(events_after, events_before, "no event for a refused apply");

    // A change of another target than the request's is refused, and writes nothing either.
    let token = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();
    assert!(apply(&store, &r, &ChangeApply::Token(token.clone()))
        .await
        .is_err());
    let mut foreign = store.workspace_versioned(ws).await.unwrap().unwrap();
    foreign.value.id = WorkspaceId::random(&mut OsRng);
    assert!(apply(&store, &r, &ChangeApply::Workspace(foreign))
        .await
        .is_err());
    assert_eq!(get(&store, &r).await.state, ChangeState::Pending);
    let token_now = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token_now.version, token.version);

    // Redone from a fresh read, it applies.
    approved.version = role_now.version;
    assert!(apply(&store, &r, &ChangeApply::Role(approved))
        .await
        .unwrap());
    assert_eq!(get(&store, &r).await.state, ChangeState::Applied);

    // A target gone meanwhile: as `update_token` alone, `NotFound`, and the request stays.
    let owner = b.user.clone();
    let doomed = token_of(&store, &owner, "doomed").await;
    let read = store.token_versioned(ws, doomed.id).await.unwrap().unwrap();
    let r = request(ws, ChangeTarget::Token(doomed.id), by, now());
    create(&store, &r).await;
    store.delete_token(ws, doomed.id, &ev(&ws)).await.unwrap();
    assert_not_found(apply(&store, &r, &ChangeApply::Token(read)).await);
    assert_eq!(get(&store, &r).await.state, ChangeState::Pending);
}

/// A new token of `owner`, stored.
async fn token_of(store: &Arc<dyn Store>, owner: &User, name: &str) -> keyward_core::Token {
    let t = token(owner, name);
    store.create_token(&t, &ev(&t)).await.unwrap();
    t
}

async fn concurrent_applies_succeed_once(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Race").await;
    let ws = b.workspace.id;
    let by = Actor::person(person(&store, ws, "alice").await.id);
    let read = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();
    let mut r = request(ws, ChangeTarget::Token(b.token.id), by, now());
    r.base_version = read.version;
    create(&store, &r).await;
    let (mut one, mut two) = (read.clone(), read.clone());
    one.value.name = "one".into();
    two.value.name = "two".into();
    let (one, two) = (ChangeApply::Token(one), ChangeApply::Token(two));
    let (x, y) = tokio::join!(apply(&store, &r, &one), apply(&store, &r, &two));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(x ^ y, "exactly one apply wins: {x} {y}");
    let now_at = store
        .token_versioned(ws, b.token.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now_at.value.name, if x { "one" } else { "two" });
    assert_eq!(now_at.version, read.version + 1);
    assert_eq!(get(&store, &r).await.state, ChangeState::Applied);
    assert_eq!(events(&store, ws, "change.applied").await, 1);
    assert_eq!(events(&store, ws, "token.updated").await, 1);
}

async fn expired_requests_are_listed_across_workspaces(store: Arc<dyn Store>) {
    let a = new_workspace(&store, "A").await;
    let b = new_workspace(&store, "B").await;
    let t = now();
    let by = Actor::SYSTEM;
    let mut due_a = request(
        a.workspace.id,
        ChangeTarget::Workspace,
        by,
        t - Duration::hours(3),
    );
    due_a.expires_at = t - Duration::hours(2);
    let mut due_b = request(
        b.workspace.id,
        ChangeTarget::Workspace,
        by,
        t - Duration::hours(3),
    );
    due_b.expires_at = t - Duration::hours(1);
    let open = request(a.workspace.id, ChangeTarget::Workspace, by, t);
    let mut decided = request(
        b.workspace.id,
        ChangeTarget::Workspace,
        by,
        t - Duration::hours(3),
    );
    decided.expires_at = t - Duration::hours(2);
    let mut exactly = request(
        a.workspace.id,
        ChangeTarget::Workspace,
        by,
        t - Duration::hours(1),
    );
    exactly.expires_at = t;
    for r in [&due_a, &due_b, &open, &decided, &exactly] {
        create(&store, r).await;
    }
    let finished = store
        .finish_change_request(
            b.workspace.id,
            decided.id,
            ChangeState::Rejected,
            &by,
            "",
            None,
            t,
            &act(b.workspace.id, "change.rejected"),
        )
        .await
        .unwrap();
    assert!(finished);

    let due = store.expired_change_requests(t, 10).await.unwrap();
    let ids: Vec<_> = due.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        vec![due_a.id, due_b.id, exactly.id],
        "earliest expiry first"
    );
    assert_eq!(due[0], due_a.ms());
    let first = store.expired_change_requests(t, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id, due_a.id);
    let earlier = store
        .expired_change_requests(t - Duration::minutes(90), 10)
        .await
        .unwrap();
    assert_eq!(earlier.len(), 1);
    assert!(due.iter().all(|r| r.is_expired(t)));
}

async fn the_code_hash_is_stored_but_never_serialised(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Code").await;
    let ws = b.workspace.id;
    let alice = person(&store, ws, "alice").await;
    let r = request(
        ws,
        ChangeTarget::Token(b.token.id),
        Actor::person(alice.id),
        now(),
    );
    create(&store, &r).await;
    let approver = person(&store, ws, "bob").await;
    let added = store
        .add_approval(
            ws,
            r.id,
            &approval(approver.id, now()),
            &act(ws, "change.approved"),
        )
        .await
        .unwrap();
    assert!(added);
    let stored = get(&store, &r).await;
    assert_eq!(stored.code_hash, r.code_hash, "the store keeps it");
    let listed = list(&store, ws, &ChangeRequestFilter::default()).await;
    for shown in [
        serde_json::to_string(&stored).unwrap(),
        serde_json::to_string(&listed).unwrap(),
    ] {
        assert!(!shown.contains(&r.code_hash), "{shown}");
        assert!(!shown.contains("code_hash"), "{shown}");
        assert!(shown.contains(&r.id.to_string()));
    }
}
