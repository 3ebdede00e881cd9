//! People: credentials, the TOTP replay guard, recovery codes, invitations and sessions; what
//! goes with a deleted user; and the further roles a workspace is bootstrapped with.

use std::sync::Arc;

use chrono::Duration;
use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::model::{RoleKind, UserKind};
use keyward_core::{User, UserId, WorkspaceId};
use keyward_store::{
    AuditFilter, Credentials, Invitation, Session, SessionStage, Store, StoreError,
};
use rand_core::OsRng;

use crate::fixtures::*;
use crate::support::*;

conformance!(
    credentials_round_trip,
    people_by_email_is_case_insensitive_and_human_only,
    totp_steps_are_claimed_once_and_in_order,
    recovery_codes_are_used_once,
    invitations_supersede_and_are_accepted_once,
    sessions_are_kept_listed_and_ended,
    deleting_a_user_removes_its_people_rows,
    bootstrap_inserts_the_extra_roles,
    concurrent_uses_succeed_once,
);

impl Ms for Credentials {
    fn ms(&self) -> Self {
        Self {
            totp_enabled_at: self.totp_enabled_at.ms(),
            updated_at: self.updated_at.ms(),
            ..self.clone()
        }
    }
}

impl Ms for Invitation {
    fn ms(&self) -> Self {
        Self {
            created_at: self.created_at.ms(),
            expires_at: self.expires_at.ms(),
            used_at: self.used_at.ms(),
            ..self.clone()
        }
    }
}

impl Ms for Session {
    fn ms(&self) -> Self {
        Self {
            created_at: self.created_at.ms(),
            last_seen_at: self.last_seen_at.ms(),
            ..self.clone()
        }
    }
}

/// A human user of `ws` with this e-mail address, stored.
async fn person(store: &Arc<dyn Store>, ws: WorkspaceId, email: &str) -> User {
    let mut u = user(ws, UserKind::Human, email);
    u.email = Some(email.to_owned());
    store.create_user(&u, &ev(&u)).await.unwrap();
    u
}

/// A password and a confirmed TOTP secret for `u`.
fn secrets(u: &User) -> Credentials {
    Credentials {
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1${}", random_hex())),
        totp_secret: Some("JBSWY3DPEHPK3PXP".into()),
        totp_enabled_at: Some(now()),
        ..Credentials::empty(u, now())
    }
}

/// An audit draft with this action, in `ws`.
fn act(ws: WorkspaceId, action: &str) -> AuditDraft {
    AuditDraft::new(ws, now(), Actor::SYSTEM, action, "user", "u")
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

fn invitation(u: &User, expires_in: Duration) -> Invitation {
    let t = now();
    Invitation {
        hash: random_hex(),
        workspace_id: u.workspace_id,
        user_id: u.id,
        created_at: t,
        expires_at: t + expires_in,
        used_at: None,
    }
}

fn session(u: &User, created_at: chrono::DateTime<chrono::Utc>) -> Session {
    Session {
        hash: random_hex(),
        workspace_id: u.workspace_id,
        user_id: u.id,
        stage: SessionStage::SecondFactor,
        created_at,
        last_seen_at: created_at,
        ip: Some("192.0.2.7".into()),
        user_agent: Some("Mozilla/5.0 (test)".into()),
    }
}

async fn credentials_round_trip(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let ada = person(&store, ws, "ada@example.com").await;
    assert_eq!(store.credentials(ws, ada.id).await.unwrap(), None);

    let c = secrets(&ada);
    store
        .put_credentials(&c, &act(ws, "test.credentials"))
        .await
        .unwrap();
    assert_eq!(store.credentials(ws, ada.id).await.unwrap(), Some(c.ms()));

    // Replaced, 2FA turned off.
    let off = Credentials {
        totp_secret: None,
        totp_enabled_at: None,
        updated_at: now() + Duration::seconds(1),
        ..c.clone()
    };
    store
        .put_credentials(&off, &act(ws, "test.credentials"))
        .await
        .unwrap();
    let read = store.credentials(ws, ada.id).await.unwrap().unwrap();
    assert_eq!(read, off.ms());
    assert!(!read.has_2fa());
    assert_eq!(events(&store, ws, "test.credentials").await, 2);

    // Never through another workspace, nor for a user that does not exist.
    let other = new_workspace(&store, "Other").await.workspace.id;
    assert_eq!(store.credentials(other, ada.id).await.unwrap(), None);
    let mut foreign = secrets(&ada);
    foreign.workspace_id = other;
    let r = store.put_credentials(&foreign, &act(other, "test.x")).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    let mut ghost = secrets(&ada);
    ghost.user_id = UserId::random(&mut OsRng);
    let r = store.put_credentials(&ghost, &act(ws, "test.x")).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert_eq!(events(&store, ws, "test.x").await, 0);
    assert_eq!(events(&store, other, "test.x").await, 0);
}

async fn people_by_email_is_case_insensitive_and_human_only(store: Arc<dyn Store>) {
    let one = new_workspace(&store, "One").await.workspace.id;
    let two = new_workspace(&store, "Two").await.workspace.id;
    let ada1 = person(&store, one, "ada@example.com").await;
    let ada2 = person(&store, two, "ada@example.com").await;
    let _grace = person(&store, one, "grace@example.com").await;
    let mut bot = user(one, UserKind::Service, "ada-bot");
    bot.email = Some("ada+bot@example.com".into());
    store.create_user(&bot, &ev(&bot)).await.unwrap();
    // A service user with the address, in a workspace of its own (one address per workspace).
    let three = new_workspace(&store, "Three").await.workspace.id;
    let mut svc = user(three, UserKind::Service, "ada-service");
    svc.email = Some("ada@example.com".into());
    store.create_user(&svc, &ev(&svc)).await.unwrap();
    let c1 = secrets(&ada1);
    store.put_credentials(&c1, &ev(&one)).await.unwrap();

    let mut found = store.people_by_email("ADA@Example.COM").await.unwrap();
    found.sort_by_key(|(u, _)| u.id.uuid());
    let mut want = vec![
        (ada1.ms(), c1.ms()),
        (ada2.ms(), Credentials::empty(&ada2, ada2.created_at).ms()),
    ];
    want.sort_by_key(|(u, _)| u.id.uuid());
    assert_eq!(found, want);

    // Beyond ASCII too, alike on both backends.
    let eva = person(&store, one, "éva@example.com").await;
    let found = store.people_by_email("ÉVA@EXAMPLE.COM").await.unwrap();
    assert_eq!(
        found,
        vec![(eva.ms(), Credentials::empty(&eva, eva.created_at).ms())]
    );

    assert!(store.people_by_email("ada").await.unwrap().is_empty());
    assert!(store
        .people_by_email("ada+bot@example.com")
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .people_by_email("nobody@example.com")
        .await
        .unwrap()
        .is_empty());
}

async fn totp_steps_are_claimed_once_and_in_order(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let ada = person(&store, ws, "ada@example.com").await;
    // No credentials: nothing to claim against.
    assert!(!store.claim_totp_step(ws, ada.id, 100).await.unwrap());

    store
        .put_credentials(&secrets(&ada), &ev(&ws))
        .await
        .unwrap();
    assert!(store.claim_totp_step(ws, ada.id, 100).await.unwrap());
    assert!(
        !store.claim_totp_step(ws, ada.id, 100).await.unwrap(),
        "replay"
    );
    assert!(
        !store.claim_totp_step(ws, ada.id, 99).await.unwrap(),
        "older"
    );
    assert!(store.claim_totp_step(ws, ada.id, 101).await.unwrap());
    let other = new_workspace(&store, "Other").await.workspace.id;
    assert!(!store.claim_totp_step(other, ada.id, 200).await.unwrap());
    let read = store.credentials(ws, ada.id).await.unwrap().unwrap();
    assert_eq!(read.totp_last_step, Some(101));

    // A write computed from an older read keeps the claimed step.
    let mut stale = read.clone();
    stale.totp_last_step = Some(50);
    store.put_credentials(&stale, &ev(&ws)).await.unwrap();
    stale.totp_last_step = None;
    store.put_credentials(&stale, &ev(&ws)).await.unwrap();
    let read = store.credentials(ws, ada.id).await.unwrap().unwrap();
    assert_eq!(read.totp_last_step, Some(101));
    assert!(!store.claim_totp_step(ws, ada.id, 101).await.unwrap());
    let mut later = read;
    later.totp_last_step = Some(150);
    store.put_credentials(&later, &ev(&ws)).await.unwrap();
    assert!(!store.claim_totp_step(ws, ada.id, 120).await.unwrap());
    assert!(store.claim_totp_step(ws, ada.id, 151).await.unwrap());
}

async fn recovery_codes_are_used_once(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let ada = person(&store, ws, "ada@example.com").await;
    assert_eq!(store.recovery_codes_left(ws, ada.id).await.unwrap(), 0);

    let codes: Vec<String> = (0..3).map(|_| random_hex()).collect();
    store
        .replace_recovery_codes(ws, ada.id, &codes, &act(ws, "test.codes"))
        .await
        .unwrap();
    assert_eq!(store.recovery_codes_left(ws, ada.id).await.unwrap(), 3);

    let used = |hash: String| {
        let store = store.clone();
        async move {
            store
                .use_recovery_code(ws, ada.id, &hash, now(), &act(ws, "test.code_used"))
                .await
                .unwrap()
        }
    };
    assert!(used(codes[0].clone()).await);
    assert_eq!(store.recovery_codes_left(ws, ada.id).await.unwrap(), 2);
    assert!(!used(codes[0].clone()).await, "second use");
    assert!(!used(random_hex()).await, "unknown code");
    let other = new_workspace(&store, "Other").await.workspace.id;
    assert!(!store
        .use_recovery_code(
            other,
            ada.id,
            &codes[1],
            now(),
            &act(other, "test.code_used")
        )
        .await
        .unwrap());
    assert_eq!(store.recovery_codes_left(ws, ada.id).await.unwrap(), 2);
    assert_eq!(events(&store, ws, "test.code_used").await, 1);
    assert_eq!(events(&store, other, "test.code_used").await, 0);

    // A new set replaces the old one, used codes included.
    let fresh: Vec<String> = (0..2).map(|_| random_hex()).collect();
    store
        .replace_recovery_codes(ws, ada.id, &fresh, &act(ws, "test.codes"))
        .await
        .unwrap();
    assert_eq!(store.recovery_codes_left(ws, ada.id).await.unwrap(), 2);
    assert!(!used(codes[1].clone()).await, "a replaced code");
    assert!(used(fresh[1].clone()).await);
    assert_eq!(store.recovery_codes_left(ws, ada.id).await.unwrap(), 1);
    assert_eq!(events(&store, ws, "test.codes").await, 2);
    assert_eq!(events(&store, ws, "test.code_used").await, 2);

    // Not for another workspace's user.
    let r = store
        .replace_recovery_codes(other, ada.id, &codes, &act(other, "test.codes"))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert_eq!(store.recovery_codes_left(ws, ada.id).await.unwrap(), 1);
}

async fn invitations_supersede_and_are_accepted_once(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let ada = person(&store, ws, "ada@example.com").await;
    let grace = person(&store, ws, "grace@example.com").await;

    let first = invitation(&ada, Duration::days(7));
    store
        .create_invitation(&first, &act(ws, "test.invited"))
        .await
        .unwrap();
    assert_eq!(
        store.invitation(&first.hash).await.unwrap(),
        Some(first.ms())
    );
    let second = invitation(&ada, Duration::days(7));
    store
        .create_invitation(&second, &act(ws, "test.invited"))
        .await
        .unwrap();
    let grace_inv = invitation(&grace, Duration::days(7));
    store
        .create_invitation(&grace_inv, &act(ws, "test.invited"))
        .await
        .unwrap();
    assert_eq!(events(&store, ws, "test.invited").await, 3);
    // The earlier link is gone; another person's is not touched.
    assert_eq!(store.invitation(&first.hash).await.unwrap(), None);
    assert_eq!(
        store.invitation(&grace_inv.hash).await.unwrap(),
        Some(grace_inv.ms())
    );

    let creds = Credentials {
        totp_secret: None,
        totp_enabled_at: None,
        ..secrets(&ada)
    };
    let at = now();
    let accept = |hash: String, c: Credentials| {
        let store = store.clone();
        async move {
            store
                .accept_invitation(&hash, at, &c, &act(ws, "test.accepted"))
                .await
                .unwrap()
        }
    };
    assert!(
        !accept(first.hash.clone(), creds.clone()).await,
        "superseded"
    );
    // Grace's link does not set Ada's password.
    assert!(!accept(grace_inv.hash.clone(), creds.clone()).await);
    assert_eq!(store.credentials(ws, ada.id).await.unwrap(), None);

    assert!(accept(second.hash.clone(), creds.clone()).await);
    assert_eq!(
        store.credentials(ws, ada.id).await.unwrap(),
        Some(creds.ms())
    );
    let used = store.invitation(&second.hash).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(at.ms()));
    let again = Credentials {
        password_hash: Some("$argon2id$other".into()),
        ..creds.clone()
    };
    assert!(!accept(second.hash.clone(), again).await, "second accept");
    assert_eq!(
        store.credentials(ws, ada.id).await.unwrap(),
        Some(creds.ms())
    );
    // A new invitation leaves the used one as it was.
    let third = invitation(&ada, Duration::days(7));
    store
        .create_invitation(&third, &act(ws, "test.invited"))
        .await
        .unwrap();
    assert_eq!(store.invitation(&second.hash).await.unwrap(), Some(used));

    // Expired: refused at its expiry and after, nothing stored.
    let expired = invitation(&grace, Duration::minutes(10));
    store
        .create_invitation(&expired, &act(ws, "test.invited"))
        .await
        .unwrap();
    let grace_creds = secrets(&grace);
    for late in [
        expired.expires_at,
        expired.expires_at + Duration::seconds(1),
    ] {
        assert!(!store
            .accept_invitation(&expired.hash, late, &grace_creds, &act(ws, "test.accepted"))
            .await
            .unwrap());
    }
    assert_eq!(store.credentials(ws, grace.id).await.unwrap(), None);
    assert_eq!(
        store
            .invitation(&expired.hash)
            .await
            .unwrap()
            .unwrap()
            .used_at,
        None
    );
    assert!(!accept(random_hex(), grace_creds.clone()).await, "unknown");
    assert_eq!(events(&store, ws, "test.accepted").await, 1);

    // Not for another workspace's user.
    let other = new_workspace(&store, "Other").await.workspace.id;
    let mut foreign = invitation(&ada, Duration::days(1));
    foreign.workspace_id = other;
    let r = store
        .create_invitation(&foreign, &act(other, "test.x"))
        .await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    assert_eq!(store.invitation(&foreign.hash).await.unwrap(), None);
    assert_eq!(events(&store, other, "test.x").await, 0);
}

async fn sessions_are_kept_listed_and_ended(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let ada = person(&store, ws, "ada@example.com").await;
    let grace = person(&store, ws, "grace@example.com").await;
    let t = now();

    let s1 = session(&ada, t - Duration::hours(3));
    let s2 = session(&ada, t - Duration::hours(2));
    let mut s3 = session(&ada, t - Duration::hours(1));
    s3.ip = None;
    s3.user_agent = None;
    let g = session(&grace, t - Duration::hours(1));
    for s in [&s1, &s2, &s3, &g] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(store.session(&s1.hash).await.unwrap(), Some(s1.ms()));
    assert_eq!(store.session(&s3.hash).await.unwrap(), Some(s3.ms()));
    assert_eq!(store.session(&random_hex()).await.unwrap(), None);

    store
        .update_session(&s1.hash, SessionStage::Full, t)
        .await
        .unwrap();
    let s1 = Session {
        stage: SessionStage::Full,
        last_seen_at: t,
        ..s1
    };
    assert_eq!(store.session(&s1.hash).await.unwrap(), Some(s1.ms()));
    store
        .update_session(&s2.hash, SessionStage::MustEnrol, t)
        .await
        .unwrap();
    let s2 = Session {
        stage: SessionStage::MustEnrol,
        last_seen_at: t,
        ..s2
    };
    assert_not_found(
        store
            .update_session(&random_hex(), SessionStage::Full, t)
            .await,
    );

    assert_eq!(
        store.list_sessions(ws, ada.id).await.unwrap(),
        vec![s3.ms(), s2.ms(), s1.ms()],
        "newest first"
    );
    let other = new_workspace(&store, "Other").await.workspace.id;
    assert!(store.list_sessions(other, ada.id).await.unwrap().is_empty());

    // One: only by its person, in its workspace.
    assert!(!store.delete_session(ws, grace.id, &s2.hash).await.unwrap());
    assert!(!store.delete_session(other, ada.id, &s2.hash).await.unwrap());
    assert!(store.delete_session(ws, ada.id, &s2.hash).await.unwrap());
    assert!(!store.delete_session(ws, ada.id, &s2.hash).await.unwrap());
    assert_eq!(store.session(&s2.hash).await.unwrap(), None);

    // All of a person's.
    assert_eq!(store.delete_user_sessions(ws, ada.id).await.unwrap(), 2);
    assert_eq!(store.delete_user_sessions(ws, ada.id).await.unwrap(), 0);
    assert!(store.list_sessions(ws, ada.id).await.unwrap().is_empty());
    assert_eq!(store.session(&g.hash).await.unwrap(), Some(g.ms()));

    // Stale ones: idle too long, or too old however busy.
    let idle = session(&ada, t - Duration::hours(2));
    let mut old = session(&ada, t - Duration::hours(30));
    old.last_seen_at = t;
    let mut fresh = session(&ada, t - Duration::hours(2));
    fresh.last_seen_at = t - Duration::minutes(5);
    for s in [&idle, &old, &fresh] {
        store.create_session(s).await.unwrap();
    }
    let gone = store
        .delete_stale_sessions(t - Duration::minutes(30), t - Duration::hours(24))
        .await
        .unwrap();
    // `g`, last seen an hour ago, is idle too.
    assert_eq!(gone, 3);
    assert_eq!(
        store.list_sessions(ws, ada.id).await.unwrap(),
        vec![fresh.ms()]
    );
    assert_eq!(store.session(&g.hash).await.unwrap(), None);

    // Not for another workspace's user.
    let mut foreign = session(&ada, t);
    foreign.workspace_id = other;
    assert_not_found(store.create_session(&foreign).await);
    assert_eq!(store.session(&foreign.hash).await.unwrap(), None);
}

async fn deleting_a_user_removes_its_people_rows(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let ada = person(&store, ws, "ada@example.com").await;
    let grace = person(&store, ws, "grace@example.com").await;
    let tok = token(&ada, "cli");
    store.create_token(&tok, &ev(&tok)).await.unwrap();

    for u in [&ada, &grace] {
        store.put_credentials(&secrets(u), &ev(&ws)).await.unwrap();
        let codes = vec![random_hex(), random_hex()];
        store
            .replace_recovery_codes(ws, u.id, &codes, &ev(&ws))
            .await
            .unwrap();
    }
    let inv = invitation(&ada, Duration::days(1));
    store.create_invitation(&inv, &ev(&ws)).await.unwrap();
    let s = session(&ada, now());
    store.create_session(&s).await.unwrap();

    // The tokens still refuse it; the people rows do not.
    assert_conflict(
        store.delete_user(ws, ada.id, &ev(&ws)).await,
        "USER_HAS_TOKENS",
    );
    assert!(store.credentials(ws, ada.id).await.unwrap().is_some());
    store.delete_token(ws, tok.id, &ev(&ws)).await.unwrap();
    store.delete_user(ws, ada.id, &ev(&ws)).await.unwrap();

    assert_eq!(store.credentials(ws, ada.id).await.unwrap(), None);
    assert_eq!(store.recovery_codes_left(ws, ada.id).await.unwrap(), 0);
    assert_eq!(store.invitation(&inv.hash).await.unwrap(), None);
    assert_eq!(store.session(&s.hash).await.unwrap(), None);
    assert!(store
        .people_by_email("ada@example.com")
        .await
        .unwrap()
        .is_empty());
    // Another person's rows stay.
    assert!(store.credentials(ws, grace.id).await.unwrap().is_some());
    assert_eq!(store.recovery_codes_left(ws, grace.id).await.unwrap(), 2);
}

async fn bootstrap_inserts_the_extra_roles(store: Arc<dyn Store>) {
    let mut b = bootstrap("Acme");
    let ws = b.workspace.id;
    let viewer = role(ws, "viewer", RoleKind::Human);
    let editor = role(ws, "editor", RoleKind::Human);
    b.extra_roles = vec![viewer.clone(), editor.clone()];
    // The user may hold one of them: they are stored before it.
    b.user.role_id = Some(viewer.id);
    b.token.role_id = Some(b.role.id);
    store.bootstrap_workspace(&b, &ev(&b)).await.unwrap();

    assert_eq!(store.role(ws, viewer.id).await.unwrap(), Some(viewer.ms()));
    assert_eq!(store.role(ws, editor.id).await.unwrap(), Some(editor.ms()));
    assert_eq!(store.role(ws, b.role.id).await.unwrap(), Some(b.role.ms()));
    assert_eq!(store.list_roles(ws, &first(10)).await.unwrap().len(), 3);
    assert_eq!(
        store.user(ws, b.user.id).await.unwrap().unwrap().role_id,
        Some(viewer.id)
    );

    // All or nothing: a clashing extra role leaves no workspace behind.
    let mut clash = bootstrap("Clash");
    let dup = role(clash.workspace.id, "admin", RoleKind::Human);
    clash.extra_roles = vec![dup];
    assert_conflict(
        store.bootstrap_workspace(&clash, &ev(&clash)).await,
        "NAME_TAKEN",
    );
    assert_eq!(store.workspace(clash.workspace.id).await.unwrap(), None);
    assert_eq!(store.count_workspaces().await.unwrap(), 1);
}

/// How many of `n` concurrent runs of `f` answered `true`.
async fn winners<F, Fut>(n: usize, f: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = keyward_store::Result<bool>> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(f())).collect();
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            won += 1;
        }
    }
    won
}

async fn concurrent_uses_succeed_once(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let ws = b.workspace.id;
    let ada = person(&store, ws, "ada@example.com").await;
    store
        .put_credentials(&secrets(&ada), &ev(&ws))
        .await
        .unwrap();

    let claims = winners(8, || {
        let store = store.clone();
        async move { store.claim_totp_step(ws, ada.id, 7).await }
    });
    assert_eq!(claims.await, 1, "TOTP step");

    let code = random_hex();
    store
        .replace_recovery_codes(ws, ada.id, std::slice::from_ref(&code), &ev(&ws))
        .await
        .unwrap();
    let uses = winners(8, || {
        let (store, code) = (store.clone(), code.clone());
        async move {
            let audit = act(ws, "test.code_used");
            store
                .use_recovery_code(ws, ada.id, &code, now(), &audit)
                .await
        }
    });
    assert_eq!(uses.await, 1, "recovery code");
    assert_eq!(events(&store, ws, "test.code_used").await, 1);

    let inv = invitation(&ada, Duration::days(1));
    store.create_invitation(&inv, &ev(&ws)).await.unwrap();
    let accepts = winners(8, || {
        let (store, hash, c) = (store.clone(), inv.hash.clone(), secrets(&ada));
        async move {
            let audit = act(ws, "test.accepted");
            store.accept_invitation(&hash, now(), &c, &audit).await
        }
    });
    assert_eq!(accepts.await, 1, "invitation");
    assert_eq!(events(&store, ws, "test.accepted").await, 1);
}
