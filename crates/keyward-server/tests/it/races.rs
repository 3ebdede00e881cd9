//! Lost updates, with real concurrent HTTP requests on separate connections: a PATCH racing a
//! rotation or a revocation never undoes it (the rotated-away secret stays refused, the token
//! stays revoked) and is itself kept; two PATCHes of different fields of one token, role,
//! user or workspace both stick.

use keyward_client::Client;
use keyward_core::api::{
    RolePatch, RotateToken, SettingsPatch, TokenPatch, UserPatch, WorkspacePatch,
};
use keyward_core::model::{Scope, ShownStatus};
use keyward_core::Code;

use crate::support::{both_backends, TestApp};

const ROUNDS: usize = 20;

/// Two admin clients, each with its own connection pool, so the requests really overlap.
fn two_admins(app: &TestApp) -> (Client, Client) {
    (app.client(&app.admin_secret), app.client(&app.admin_secret))
}

/// Moves the clock on, so the admin token's rate limit refills between rounds.
fn next_minute(app: &TestApp) {
    app.clock.advance(chrono::Duration::minutes(1));
}

fn rename(name: String) -> TokenPatch {
    TokenPatch {
        name: Some(name),
        ..Default::default()
    }
}

async fn a_patch_racing_a_rotation_never_revives_the_old_secret(app: TestApp) {
    let role = app.api_role("Racing", Scope::Workspace, &[]).await;
    let owner = app.service_user("racer", Some(role.id)).await;
    let (a, b) = two_admins(&app);
    let grace0 = RotateToken {
        grace_period_secs: 0,
        expires_at: None,
    };
    for round in 0..ROUNDS {
        next_minute(&app);
        let t = app.token_for(&owner).await;
        let name = format!("renamed {round}");
        let patch = rename(name.clone());
        let (patched, rotated) = tokio::join!(
            a.update_token(t.token.id, &patch),
            b.rotate_token(t.token.id, &grace0),
        );
        let patched = patched.unwrap();
        let rotated = rotated.unwrap();
        assert_eq!(patched.name, name);
        assert_eq!(
            app.verify(&t.secret, &[]).await.code,
            Code::Expired,
            "round {round}: the rotated-away secret works again"
        );
        assert_eq!(app.verify(&rotated.secret, &[]).await.code, Code::Valid);
        let old = app.admin.token(t.token.id).await.unwrap();
        assert_eq!(old.expires_at, rotated.previous.expires_at, "round {round}");
        assert_eq!(old.name, name, "round {round}: the rename was lost");
    }
}
both_backends!(a_patch_racing_a_rotation_never_revives_the_old_secret);

async fn a_patch_racing_a_revocation_never_undoes_it(app: TestApp) {
    let role = app.api_role("Racing", Scope::Workspace, &[]).await;
    let owner = app.service_user("racer", Some(role.id)).await;
    let (a, b) = two_admins(&app);
    for round in 0..ROUNDS {
        next_minute(&app);
        let t = app.token_for(&owner).await;
        let patch = TokenPatch {
            name: Some(format!("renamed {round}")),
            metadata: Some(serde_json::json!({ "round": round })),
            ..Default::default()
        };
        let (patched, revoked) = tokio::join!(
            a.update_token(t.token.id, &patch),
            b.revoke_token(t.token.id),
        );
        patched.unwrap();
        assert_eq!(revoked.unwrap().status, ShownStatus::Revoked);
        assert_eq!(
            app.verify(&t.secret, &[]).await.code,
            Code::Revoked,
            "round {round}"
        );
        let stored = app.admin.token(t.token.id).await.unwrap();
        assert_eq!(stored.status, ShownStatus::Revoked, "round {round}");
        assert_eq!(
            (stored.name.as_str(), &stored.metadata),
            (
                patch.name.as_deref().unwrap(),
                patch.metadata.as_ref().unwrap()
            ),
            "round {round}: the revocation wrote back the token it read"
        );
    }
}
both_backends!(a_patch_racing_a_revocation_never_undoes_it);

async fn patches_of_different_fields_both_stick(app: TestApp) {
    let role = app.api_role("Edited", Scope::Workspace, &[]).await;
    let owner = app.service_user("edited", Some(role.id)).await;
    let t = app.token_for(&owner).await;
    let (a, b) = two_admins(&app);
    for round in 0..ROUNDS as u32 {
        next_minute(&app);
        // Token: name and rate limit.
        let name = TokenPatch {
            name: Some(format!("token {round}")),
            ..Default::default()
        };
        let rate = TokenPatch {
            rate_limit_per_minute: Some(Some(100 + round)),
            ..Default::default()
        };
        let (x, y) = tokio::join!(
            a.update_token(t.token.id, &name),
            b.update_token(t.token.id, &rate)
        );
        x.unwrap();
        y.unwrap();
        let stored = app.admin.token(t.token.id).await.unwrap();
        assert_eq!(
            (stored.name, stored.rate_limit_per_minute),
            (format!("token {round}"), Some(100 + round)),
            "round {round}"
        );

        // Role: description and rate limit.
        let describe = RolePatch {
            description: Some(format!("role {round}")),
            ..Default::default()
        };
        let limit = RolePatch {
            rate_limit_per_minute: Some(Some(100 + round)),
            ..Default::default()
        };
        let (x, y) = tokio::join!(
            a.update_role(role.id, &describe),
            b.update_role(role.id, &limit)
        );
        x.unwrap();
        y.unwrap();
        let stored = app.admin.role(role.id).await.unwrap();
        assert_eq!(
            (stored.description, stored.rate_limit_per_minute),
            (format!("role {round}"), Some(100 + round)),
            "round {round}"
        );

        // User: name and e-mail.
        let name = UserPatch {
            name: Some(format!("user {round}")),
            ..Default::default()
        };
        let email = UserPatch {
            email: Some(Some(format!("u{round}@example.com"))),
            ..Default::default()
        };
        let (x, y) = tokio::join!(
            a.update_user(owner.id, &name),
            b.update_user(owner.id, &email)
        );
        x.unwrap();
        y.unwrap();
        let stored = app.admin.user(owner.id).await.unwrap();
        assert_eq!(
            (stored.name, stored.email),
            (
                format!("user {round}"),
                Some(format!("u{round}@example.com"))
            ),
            "round {round}"
        );

        // Workspace: its name and one of its settings.
        let name = WorkspacePatch {
            reason: None,
            name: Some(format!("workspace {round}")),
            settings: None,
        };
        let warn = WorkspacePatch {
            reason: None,
            name: None,
            settings: Some(SettingsPatch {
                expiry_warning_days: Some(1 + round),
                ..Default::default()
            }),
        };
        let (x, y) = tokio::join!(a.update_workspace(&name), b.update_workspace(&warn));
        x.unwrap();
        y.unwrap();
        let stored = app.admin.workspace().await.unwrap();
        assert_eq!(
            (stored.name, stored.settings.expiry_warning_days),
            (format!("workspace {round}"), 1 + round),
            "round {round}"
        );
    }
}
both_backends!(patches_of_different_fields_both_stick);
