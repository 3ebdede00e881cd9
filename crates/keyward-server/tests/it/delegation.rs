//! Delegation covers restrictions, over real HTTP from clients bound to 127.0.0.x: a token
//! limited by an allowlist, internal-only, a rate limit or an expiry creates, changes,
//! activates and rotates only tokens (and roles) at least as limited, and cannot PATCH its own
//! limits away; refusals are 403 `PRIVILEGE_ESCALATION` naming the field, never a value.
//! Managing a user needs every permission its role and its live tokens hold.

use chrono::Duration;
use keyward_client::Client;
use keyward_core::api::{
    CreateRole, CreateToken, CreatedToken, IpListInput, RolePatch, RotateToken, SettingsPatch,
    TokenPatch, UserPatch, WorkspacePatch,
};
use keyward_core::model::{RoleKind, Scope, User};
use keyward_core::{Clock as _, Code, Role};

use crate::support::{both_backends, code_of, problem_of, token_request, TestApp};

fn text(s: &str) -> Option<IpListInput> {
    Some(IpListInput::Text(s.into()))
}

/// Checks a refusal is the escalation of `field`, without the caller's list in it.
fn assert_escalation<T: std::fmt::Debug>(r: Result<T, keyward_client::ClientError>, field: &str) {
    let p = problem_of(r);
    assert_eq!(
        (p.status, p.code.as_str(), p.field.as_deref()),
        (403, "PRIVILEGE_ESCALATION", Some(field)),
        "{}",
        p.detail
    );
    assert!(!p.detail.contains("127.0.0"), "{}", p.detail);
}

/// A workspace-scoped role holding `perms`, a service user with it, and a token of that user
/// made by the admin with `restrict` applied, used from 127.0.0.2.
async fn delegate(
    app: &TestApp,
    perms: &[&str],
    restrict: impl FnOnce(&mut CreateToken),
) -> (User, CreatedToken, Client) {
    let role = app.api_role("Delegator", Scope::Workspace, perms).await;
    let owner = app.service_user("delegate", Some(role.id)).await;
    let mut req = token_request(&owner);
    restrict(&mut req);
    let token = app.admin.create_token(&req).await.unwrap();
    let client = app.client_from("127.0.0.2", &token.secret);
    (owner, token, client)
}

fn role_request(name: &str, ips: Option<IpListInput>, rate: Option<u32>) -> CreateRole {
    CreateRole {
        name: name.into(),
        description: String::new(),
        kind: RoleKind::Api,
        scope: Scope::Workspace,
        permissions: vec!["orders:read".into()],
        ip_allowlist: ips,
        rate_limit_per_minute: rate,
        rate_limit_per: None,
    }
}

async fn a_restricted_token_creates_only_tokens_as_restricted(app: TestApp) {
    app.catalogue(&["orders:read"]).await;
    let week = app.clock.now() + Duration::days(7);
    let (_, _, client) = delegate(
        &app,
        &[
            "keyward.tokens:create",
            "keyward.roles:write",
            "keyward.roles:read",
            "orders:read",
        ],
        |r| {
            r.ip_allowlist = text("127.0.0.0/30");
            r.rate_limit_per_minute = Some(20);
            r.expires_at = Some(week);
        },
    )
    .await;
    let reader = app
        .api_role("Reader", Scope::Workspace, &["orders:read"])
        .await;
    let target = app.service_user("target", Some(reader.id)).await;
    let within = || {
        let mut r = token_request(&target);
        r.ip_allowlist = text("127.0.0.1");
        r.rate_limit_per_minute = Some(20);
        r.expires_at = Some(week);
        r
    };

    type Loosen = fn(&mut CreateToken, chrono::DateTime<chrono::Utc>);
    let cases: [(Loosen, &str); 8] = [
        (|r, _| r.ip_allowlist = None, "ip_allowlist"),
        (|r, _| r.ip_allowlist = text(""), "ip_allowlist"),
        (|r, _| r.ip_allowlist = text("127.0.0.0/29"), "ip_allowlist"),
        (
            |r, _| r.ip_allowlist = text("127.0.0.1, ::1"),
            "ip_allowlist",
        ),
        (
            |r, _| r.rate_limit_per_minute = None,
            "rate_limit_per_minute",
        ),
        (
            |r, _| r.rate_limit_per_minute = Some(21),
            "rate_limit_per_minute",
        ),
        (|r, _| r.expires_at = None, "expires_at"),
        (
            |r, week| r.expires_at = Some(week + Duration::seconds(1)),
            "expires_at",
        ),
    ];
    for (loosen, field) in cases {
        let mut r = within();
        loosen(&mut r, week);
        assert_escalation(client.create_token(&r).await, field);
    }
    let before = app.admin.list_tokens(&Default::default()).await.unwrap();

    // As restricted or more: accepted, and the token works where it may.
    let made = client.create_token(&within()).await.unwrap();
    assert_eq!(
        app.verify(&made.secret, &["orders:read"]).await.code,
        Code::Valid
    );
    let mut tighter = within();
    tighter.rate_limit_per_minute = Some(5);
    tighter.expires_at = Some(week - Duration::days(6));
    client.create_token(&tighter).await.unwrap();
    let after = app.admin.list_tokens(&Default::default()).await.unwrap();
    assert_eq!(
        after.items.len(),
        before.items.len() + 2,
        "refusals made nothing"
    );

    // The role's list and limit count: a token with none of its own acting with a pinned role
    // is as restricted as the role.
    let pinned = app
        .admin
        .create_role(&role_request("Pinned", text("127.0.0.1"), Some(10)))
        .await
        .unwrap();
    let mut via_role = token_request(&target);
    via_role.role_id = Some(pinned.id);
    via_role.expires_at = Some(week);
    client.create_token(&via_role).await.unwrap();
    // So does the workspace's: one that leaves only 127.0.0.0/30 makes any list acceptable.
    let ws_list = WorkspacePatch {
        settings: Some(SettingsPatch {
            ip_allowlist: text("127.0.0.0/30"),
            ..Default::default()
        }),
        ..Default::default()
    };
    app.admin.update_workspace(&ws_list).await.unwrap();
    let mut wide = within();
    wide.ip_allowlist = text("127.0.0.0/8");
    client.create_token(&wide).await.unwrap();
    let open = WorkspacePatch {
        settings: Some(SettingsPatch {
            ip_allowlist: text(""),
            ..Default::default()
        }),
        ..Default::default()
    };
    app.admin.update_workspace(&open).await.unwrap();
    assert_escalation(client.create_token(&wide).await, "ip_allowlist");

    // Roles: their list (with the workspace's) and their limit (else the default).
    assert_escalation(
        client
            .create_role(&role_request("Open", None, Some(20)))
            .await,
        "ip_allowlist",
    );
    assert_escalation(
        client
            .create_role(&role_request("Fast", text("127.0.0.1"), None))
            .await,
        "rate_limit_per_minute",
    );
    let mine = client
        .create_role(&role_request("Mine", text("127.0.0.1"), Some(20)))
        .await
        .unwrap();
    let clear = RolePatch {
        ip_allowlist: text(""),
        ..RolePatch::default()
    };
    assert_escalation(client.update_role(mine.id, &clear).await, "ip_allowlist");
    let raise = RolePatch {
        rate_limit_per_minute: Some(Some(1000)),
        ..RolePatch::default()
    };
    assert_escalation(
        client.update_role(pinned.id, &raise).await,
        "rate_limit_per_minute",
    );
    let rename = RolePatch {
        name: Some("Pinned tight".into()),
        ..RolePatch::default()
    };
    client.update_role(pinned.id, &rename).await.unwrap();
    let stored: Role = app.admin.role(mine.id).await.unwrap();
    assert_eq!(stored.ip_allowlist.entries(), ["127.0.0.1/32"]);
    assert_eq!(
        app.admin
            .role(pinned.id)
            .await
            .unwrap()
            .rate_limit_per_minute,
        Some(10)
    );
    // A role the caller could not create it may not change either.
    let admin_made = app
        .admin
        .create_role(&role_request("Anywhere", None, None))
        .await
        .unwrap();
    assert_escalation(
        client.update_role(admin_made.id, &rename).await,
        "ip_allowlist",
    );
}
both_backends!(a_restricted_token_creates_only_tokens_as_restricted);

async fn an_internal_only_token_creates_only_internal_only_tokens(app: TestApp) {
    app.catalogue(&["orders:read"]).await;
    let internal = WorkspacePatch {
        settings: Some(SettingsPatch {
            internal_networks: text("127.0.0.0/29"),
            ..Default::default()
        }),
        ..Default::default()
    };
    app.admin.update_workspace(&internal).await.unwrap();
    let (owner, _, client) = delegate(&app, &["keyward.tokens:create", "orders:read"], |r| {
        r.internal_only = true
    })
    .await;
    let open = token_request(&owner);
    assert_escalation(client.create_token(&open).await, "internal_only");
    let mut inside = token_request(&owner);
    inside.internal_only = true;
    let made = client.create_token(&inside).await.unwrap();
    assert!(made.token.internal_only);
    // A caller that is not internal-only may make internal-only tokens: they are narrower.
    let free_role = app
        .api_role("Free", Scope::Workspace, &["keyward.tokens:create"])
        .await;
    let free_owner = app.service_user("free", Some(free_role.id)).await;
    let free_token = app.token_for(&free_owner).await;
    let free = app.client_from("127.0.0.3", &free_token.secret);
    let mut narrow = token_request(&owner);
    narrow.internal_only = true;
    narrow.permissions = Some(vec![]);
    free.create_token(&narrow).await.unwrap();
}
both_backends!(an_internal_only_token_creates_only_internal_only_tokens);

async fn a_token_cannot_patch_its_own_limits_away(app: TestApp) {
    let week = app.clock.now() + Duration::days(7);
    let (owner, me, client) = delegate(
        &app,
        &[
            "keyward.tokens:read",
            "keyward.tokens:write",
            "keyward.tokens:create",
        ],
        |r| {
            r.ip_allowlist = text("127.0.0.0/30");
            r.rate_limit_per_minute = Some(20);
            r.expires_at = Some(week);
        },
    )
    .await;
    let id = me.token.id;
    let patches: [(TokenPatch, &str); 7] = [
        (
            TokenPatch {
                ip_allowlist: text(""),
                ..Default::default()
            },
            "ip_allowlist",
        ),
        (
            TokenPatch {
                ip_allowlist: text("127.0.0.0/8"),
                ..Default::default()
            },
            "ip_allowlist",
        ),
        (
            TokenPatch {
                rate_limit_per_minute: Some(Some(1000)),
                ..Default::default()
            },
            "rate_limit_per_minute",
        ),
        (
            TokenPatch {
                rate_limit_per_minute: Some(None),
                ..Default::default()
            },
            "rate_limit_per_minute",
        ),
        (
            TokenPatch {
                expires_at: Some(None),
                ..Default::default()
            },
            "expires_at",
        ),
        (
            TokenPatch {
                expires_at: Some(Some(week + Duration::days(30))),
                ..Default::default()
            },
            "expires_at",
        ),
        (
            TokenPatch {
                // Harmless on its own, but the change as a whole would widen the list.
                name: Some("renamed".into()),
                ip_allowlist: text("127.0.0.0/24"),
                ..Default::default()
            },
            "ip_allowlist",
        ),
    ];
    for (patch, field) in &patches {
        assert_escalation(client.update_token(id, patch).await, field);
    }
    let stored = app.admin.token(id).await.unwrap();
    assert_eq!(stored.ip_allowlist.entries(), ["127.0.0.0/30"]);
    assert_eq!(stored.rate_limit_per_minute, Some(20));
    assert_eq!(stored.expires_at, Some(week));
    assert_eq!(stored.name, me.token.name);

    // Tightening is fine, and takes effect.
    let tighten = TokenPatch {
        name: Some("tight".into()),
        ip_allowlist: text("127.0.0.2"),
        rate_limit_per_minute: Some(Some(10)),
        expires_at: Some(Some(week - Duration::days(5))),
        ..Default::default()
    };
    let view = client.update_token(id, &tighten).await.unwrap();
    assert_eq!(view.ip_allowlist.entries(), ["127.0.0.2/32"]);
    assert!(client.token(id).await.is_ok());
    assert_eq!(
        code_of(app.client_from("127.0.0.3", &me.secret).token(id).await),
        "IP_NOT_ALLOWED"
    );
    // Nor can it loosen now what it tightened.
    let back = TokenPatch {
        ip_allowlist: text("127.0.0.0/30"),
        ..Default::default()
    };
    assert_escalation(client.update_token(id, &back).await, "ip_allowlist");

    // Another token of the workspace that is less restricted: no change, no activation.
    let mut pending = token_request(&owner);
    pending.pending = true;
    let other = app.admin.create_token(&pending).await.unwrap();
    let rename = TokenPatch {
        name: Some("mine now".into()),
        ..Default::default()
    };
    assert_escalation(
        client.update_token(other.token.id, &rename).await,
        "ip_allowlist",
    );
    assert_escalation(client.activate_token(other.token.id).await, "ip_allowlist");
    assert_eq!(app.verify(&other.secret, &[]).await.code, Code::Pending);
}
both_backends!(a_token_cannot_patch_its_own_limits_away);

async fn rotation_by_a_restricted_token(app: TestApp) {
    let week = app.clock.now() + Duration::days(7);
    let (owner, me, client) = delegate(
        &app,
        &["keyward.tokens:create", "keyward.tokens:read"],
        |r| {
            r.ip_allowlist = text("127.0.0.0/30");
            r.rate_limit_per_minute = Some(20);
            r.expires_at = Some(week);
        },
    )
    .await;
    let grace = |expires_at| RotateToken {
        grace_period_secs: 3600,
        expires_at,
    };
    let plain = app
        .admin
        .create_token(&token_request(&owner))
        .await
        .unwrap();
    let mut sibling = token_request(&owner);
    sibling.ip_allowlist = text("127.0.0.1");
    sibling.rate_limit_per_minute = Some(20);
    sibling.expires_at = Some(week);
    let sibling = client.create_token(&sibling).await.unwrap();
    app.clock.advance(Duration::days(1));

    // A less restricted token: its copy would be too.
    assert_escalation(
        client.rotate_token(plain.token.id, &grace(None)).await,
        "ip_allowlist",
    );
    // A sibling as restricted: renewing its lifetime from now would outlive the caller.
    assert_escalation(
        client.rotate_token(sibling.token.id, &grace(None)).await,
        "expires_at",
    );
    let r = client
        .rotate_token(sibling.token.id, &grace(Some(week)))
        .await
        .unwrap();
    assert_eq!(r.token.expires_at, Some(week));
    assert_eq!(r.token.ip_allowlist.entries(), ["127.0.0.1/32"]);

    // Renewing itself: the same lifetime from now (that is what rotation is for), no more.
    let renewed = app.clock.now() + Duration::days(7);
    assert_escalation(
        client
            .rotate_token(me.token.id, &grace(Some(renewed + Duration::seconds(1))))
            .await,
        "expires_at",
    );
    let r = client
        .rotate_token(me.token.id, &grace(None))
        .await
        .unwrap();
    assert_eq!(r.token.expires_at, Some(renewed));
    assert_eq!(r.token.ip_allowlist.entries(), ["127.0.0.0/30"]);
    assert_eq!(r.token.rate_limit_per_minute, Some(20));
}
both_backends!(rotation_by_a_restricted_token);

async fn managing_a_user_needs_what_its_tokens_hold(app: TestApp) {
    app.catalogue(&["orders:read", "orders:write"]).await;
    let hr_role = app
        .api_role(
            "HR",
            Scope::Workspace,
            &["keyward.users:read", "keyward.users:write", "orders:read"],
        )
        .await;
    let hr = app.service_user("hr", Some(hr_role.id)).await;
    let hr_client = app.client(&app.token_for(&hr).await.secret);
    let weak = app
        .api_role("Weak", Scope::Workspace, &["orders:read"])
        .await;
    let weak2 = app
        .api_role("Weak too", Scope::Workspace, &["orders:read"])
        .await;
    let strong = app
        .api_role("Strong", Scope::Workspace, &["orders:read", "orders:write"])
        .await;
    // The user's own role is weak; one of its tokens acts with a strong role of its own.
    let ops = app.service_user("ops", Some(weak.id)).await;
    let mut req = token_request(&ops);
    req.role_id = Some(strong.id);
    let mighty = app.admin.create_token(&req).await.unwrap();
    // A token narrowed to what HR holds is no obstacle.
    let mut narrowed = token_request(&ops);
    narrowed.role_id = Some(strong.id);
    narrowed.permissions = Some(vec!["orders:read".into()]);
    app.admin.create_token(&narrowed).await.unwrap();

    let patches = [
        UserPatch {
            disabled: Some(true),
            ..Default::default()
        },
        UserPatch {
            name: Some("renamed".into()),
            ..Default::default()
        },
        UserPatch {
            role_id: Some(Some(weak2.id)),
            ..Default::default()
        },
    ];
    for patch in &patches {
        assert_eq!(
            code_of(hr_client.update_user(ops.id, patch).await),
            "PRIVILEGE_ESCALATION",
            "{patch:?}"
        );
    }
    assert_eq!(
        code_of(hr_client.delete_user(ops.id).await),
        "PRIVILEGE_ESCALATION"
    );
    assert_eq!(
        app.admin.user(ops.id).await.unwrap(),
        ops,
        "nothing changed"
    );
    assert_eq!(
        app.verify(&mighty.secret, &["orders:write"]).await.code,
        Code::Valid
    );
    // Nor re-enable it once an admin disabled it.
    let disable = UserPatch {
        disabled: Some(true),
        ..Default::default()
    };
    let enable = UserPatch {
        disabled: Some(false),
        ..Default::default()
    };
    app.admin.update_user(ops.id, &disable).await.unwrap();
    assert_eq!(
        code_of(hr_client.update_user(ops.id, &enable).await),
        "PRIVILEGE_ESCALATION"
    );
    assert_eq!(
        app.verify(&mighty.secret, &[]).await.code,
        Code::OwnerDisabled
    );

    // Revoked (and expired) tokens hold nothing: once the strong one is revoked, HR may.
    app.admin.revoke_token(mighty.token.id).await.unwrap();
    hr_client.update_user(ops.id, &enable).await.unwrap();
    hr_client.update_user(ops.id, &patches[1]).await.unwrap();
    hr_client.update_user(ops.id, &patches[2]).await.unwrap();
    hr_client.update_user(ops.id, &disable).await.unwrap();
    assert!(app.admin.user(ops.id).await.unwrap().disabled);
}
both_backends!(managing_a_user_needs_what_its_tokens_hold);
