//! The decision through `POST /v1/verify`: one code per failure, the principal on success, and
//! changes seen on the very next request although the token is cached.

use chrono::Duration;
use keyward_core::api::{RolePatch, UserPatch};
use keyward_core::model::{Scope, UserKind};
use keyward_core::Code;

use crate::support::{both_backends, token_request, TestApp};

async fn valid_token_gets_its_principal(app: TestApp) {
    app.catalogue(&["cart:read", "cart:write", "orders:read"])
        .await;
    let role = app.api_role("Cart Editor", Scope::User, &["cart:*"]).await;
    let owner = app.service_user("shop-sync", Some(role.id)).await;
    let mut req = token_request(&owner);
    req.metadata = Some(serde_json::json!({"team": "web"}));
    // Narrowing to a permission the role lacks would leave a token that silently holds less
    // than it says: refused, naming the entry.
    req.permissions = Some(vec!["cart:write".into(), "orders:read".into()]);
    let p = crate::support::problem_of(app.admin.create_token(&req).await);
    assert_eq!(
        (p.status, p.code.as_str(), p.field.as_deref()),
        (422, "PERMISSION_NOT_IN_ROLE", Some("permissions[1]"))
    );
    req.permissions = Some(vec!["cart:write".into()]);
    let created = app.admin.create_token(&req).await.unwrap();

    let v = app.verify(&created.secret, &["cart:write"]).await;
    assert!(v.valid, "{v:?}");
    assert_eq!(v.code, Code::Valid);
    assert_eq!(v.token_id, Some(created.token.id));
    assert_eq!(
        v.owner.as_ref().map(|o| (o.id, o.kind)),
        Some((owner.id, UserKind::Service))
    );
    assert_eq!(
        v.role.as_ref().map(|r| r.name.as_str()),
        Some("Cart Editor")
    );
    assert_eq!(v.scope, Some(Scope::User));
    // Effective = role (cart:*) ∩ narrowing (cart:write).
    let perms: Vec<String> = v
        .permissions
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(perms, vec!["cart:write"]);
    assert_eq!(v.metadata, Some(serde_json::json!({"team": "web"})));

    let v = app
        .verify(&created.secret, &["cart:write", "orders:read", "cart:read"])
        .await;
    assert_eq!(v.code, Code::InsufficientPermissions);
    let missing: Vec<String> = v
        .missing_permissions
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(missing, vec!["orders:read", "cart:read"]);
    assert!(
        v.permissions.is_none(),
        "a refused answer carries no principal"
    );
}
both_backends!(valid_token_gets_its_principal);

async fn each_refusal_has_its_own_code(app: TestApp) {
    let role = app.api_role("Reader", Scope::Workspace, &[]).await;
    let owner = app.service_user("erp", Some(role.id)).await;
    let good = app.token_for(&owner).await.secret;

    // The last character changed (to one it is not), so the checksum fails.
    let last = if good.ends_with('x') { 'y' } else { 'x' };
    let malformed = format!("{}{last}", &good[..good.len() - 1]);
    assert_eq!(app.verify(&malformed, &[]).await.code, Code::Malformed);
    assert_eq!(app.verify("not a token", &[]).await.code, Code::Malformed);
    let unknown = keyward_core::TokenSecret::generate("kw", &mut rand_core::OsRng);
    assert_eq!(app.verify(unknown.expose(), &[]).await.code, Code::NotFound);
    // Asked twice: the second answer comes from the negative cache, same code.
    assert_eq!(app.verify(unknown.expose(), &[]).await.code, Code::NotFound);

    let mut pending = token_request(&owner);
    pending.pending = true;
    let pending = app.admin.create_token(&pending).await.unwrap();
    assert_eq!(app.verify(&pending.secret, &[]).await.code, Code::Pending);
    app.admin.activate_token(pending.token.id).await.unwrap();
    assert_eq!(app.verify(&pending.secret, &[]).await.code, Code::Valid);

    let revoked = app.token_for(&owner).await;
    assert_eq!(app.verify(&revoked.secret, &[]).await.code, Code::Valid);
    app.admin.revoke_token(revoked.token.id).await.unwrap();
    let v = app.verify(&revoked.secret, &[]).await;
    assert_eq!(
        (v.code, v.token_id),
        (Code::Revoked, Some(revoked.token.id))
    );

    let now = keyward_core::Clock::now(app.clock.as_ref());
    let mut expiring = token_request(&owner);
    expiring.expires_at = Some(now + Duration::hours(1));
    let expiring = app.admin.create_token(&expiring).await.unwrap();
    let mut later = token_request(&owner);
    later.not_before = Some(now + Duration::minutes(30));
    let later = app.admin.create_token(&later).await.unwrap();
    assert_eq!(app.verify(&expiring.secret, &[]).await.code, Code::Valid);
    assert_eq!(app.verify(&later.secret, &[]).await.code, Code::NotYetValid);
    app.clock.advance(Duration::minutes(30));
    assert_eq!(app.verify(&later.secret, &[]).await.code, Code::Valid);
    app.clock.advance(Duration::minutes(30));
    assert_eq!(app.verify(&expiring.secret, &[]).await.code, Code::Expired);
    let shown = app.admin.token(expiring.token.id).await.unwrap();
    assert_eq!(shown.status, keyward_core::model::ShownStatus::Expired);

    // Deleted: gone on the very next request.
    let deleted = app.token_for(&owner).await;
    assert_eq!(app.verify(&deleted.secret, &[]).await.code, Code::Valid);
    app.admin.delete_token(deleted.token.id).await.unwrap();
    assert_eq!(app.verify(&deleted.secret, &[]).await.code, Code::NotFound);
}
both_backends!(each_refusal_has_its_own_code);

async fn role_edit_and_owner_state_apply_on_the_next_request(app: TestApp) {
    app.catalogue(&["orders:read", "orders:write"]).await;
    let role = app
        .api_role("Orders", Scope::Workspace, &["orders:read"])
        .await;
    let owner = app.service_user("bi", Some(role.id)).await;
    let t = app.token_for(&owner).await;
    // Cached now, with the old permissions.
    assert_eq!(
        app.verify(&t.secret, &["orders:write"]).await.code,
        Code::InsufficientPermissions
    );
    let patch = RolePatch {
        permissions: Some(vec!["orders:*".into()]),
        ..RolePatch::default()
    };
    app.admin.update_role(role.id, &patch).await.unwrap();
    assert_eq!(
        app.verify(&t.secret, &["orders:write"]).await.code,
        Code::Valid
    );

    let disable = UserPatch {
        disabled: Some(true),
        ..UserPatch::default()
    };
    app.admin.update_user(owner.id, &disable).await.unwrap();
    assert_eq!(app.verify(&t.secret, &[]).await.code, Code::OwnerDisabled);
    let enable = UserPatch {
        disabled: Some(false),
        ..UserPatch::default()
    };
    app.admin.update_user(owner.id, &enable).await.unwrap();
    assert_eq!(app.verify(&t.secret, &[]).await.code, Code::Valid);

    // Narrowing a token takes effect at once too.
    let narrow = keyward_core::api::TokenPatch {
        permissions: Some(Some(vec!["orders:read".into()])),
        ..Default::default()
    };
    app.admin.update_token(t.token.id, &narrow).await.unwrap();
    assert_eq!(
        app.verify(&t.secret, &["orders:write"]).await.code,
        Code::InsufficientPermissions
    );
    assert_eq!(
        app.verify(&t.secret, &["orders:read"]).await.code,
        Code::Valid
    );
}
both_backends!(role_edit_and_owner_state_apply_on_the_next_request);
