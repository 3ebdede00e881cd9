//! Workspaces are sealed from each other: a workspace's admin token cannot read or change
//! another workspace's objects, and only the operator's workspace manages workspaces.

use keyward_core::api::{CreateWorkspace, RolePatch, TokenPatch, UserPatch};
use keyward_core::model::Scope;
use keyward_core::Code;

use crate::support::{both_backends, code_of, token_request, TestApp};

async fn workspaces_cannot_reach_each_other(app: TestApp) {
    // Objects of the operator's workspace A.
    let role_a = app.api_role("A role", Scope::Workspace, &[]).await;
    let user_a = app.service_user("a-sync", Some(role_a.id)).await;
    let token_a = app.token_for(&user_a).await;

    // Workspace B, created by the operator, with its own admin.
    let b = app
        .admin
        .create_workspace(&CreateWorkspace {
            name: "Acme".into(),
            settings: None,
        })
        .await
        .unwrap();
    assert!(!b.workspace.operator);
    let admin_b = app.client(&b.admin_token.secret);
    assert_eq!(admin_b.workspace().await.unwrap().id, b.workspace.id);

    assert_eq!(code_of(admin_b.user(user_a.id).await), "RESOURCE_NOT_FOUND");
    assert_eq!(code_of(admin_b.role(role_a.id).await), "RESOURCE_NOT_FOUND");
    assert_eq!(
        code_of(admin_b.token(token_a.token.id).await),
        "RESOURCE_NOT_FOUND"
    );
    assert_eq!(
        code_of(admin_b.revoke_token(token_a.token.id).await),
        "RESOURCE_NOT_FOUND"
    );
    assert_eq!(
        code_of(admin_b.delete_token(token_a.token.id).await),
        "RESOURCE_NOT_FOUND"
    );
    let disable = UserPatch {
        disabled: Some(true),
        ..UserPatch::default()
    };
    assert_eq!(
        code_of(admin_b.update_user(user_a.id, &disable).await),
        "RESOURCE_NOT_FOUND"
    );
    let rename = RolePatch {
        name: Some("pwned".into()),
        ..RolePatch::default()
    };
    assert_eq!(
        code_of(admin_b.update_role(role_a.id, &rename).await),
        "RESOURCE_NOT_FOUND"
    );
    let patch = TokenPatch {
        name: Some("pwned".into()),
        ..TokenPatch::default()
    };
    assert_eq!(
        code_of(admin_b.update_token(token_a.token.id, &patch).await),
        "RESOURCE_NOT_FOUND"
    );
    // Nor can B mint a token for A's user, or give its user A's role.
    assert_eq!(
        code_of(admin_b.create_token(&token_request(&user_a)).await),
        "UNKNOWN_REFERENCE"
    );

    // Listings show only the caller's own workspace.
    let listed = admin_b.list_tokens(&Default::default()).await.unwrap();
    assert!(listed
        .items
        .iter()
        .all(|t| t.workspace_id == b.workspace.id));
    assert_eq!(listed.items.len(), 1, "only B's bootstrap token");
    let users = admin_b.list_users(&Default::default()).await.unwrap();
    assert!(users.items.iter().all(|u| u.workspace_id == b.workspace.id));

    // A's token still works, untouched.
    assert_eq!(app.verify(&token_a.secret, &[]).await.code, Code::Valid);
    assert_eq!(app.admin.role(role_a.id).await.unwrap().name, "A role");

    // Only the operator's workspace manages workspaces.
    let create = CreateWorkspace {
        name: "Other".into(),
        settings: None,
    };
    assert_eq!(
        code_of(admin_b.create_workspace(&create).await),
        "OPERATOR_ONLY"
    );
    assert_eq!(
        code_of(admin_b.list_workspaces(&Default::default()).await),
        "OPERATOR_ONLY"
    );
    let all = app
        .admin
        .list_workspaces(&Default::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
}
both_backends!(workspaces_cannot_reach_each_other);

async fn user_scoped_tokens_see_only_their_owner(app: TestApp) {
    let agent = app
        .api_role(
            "Agent",
            Scope::User,
            &[
                "keyward.tokens:read",
                "keyward.tokens:create",
                "keyward.users:read",
            ],
        )
        .await;
    let alice = app.service_user("alice-bot", Some(agent.id)).await;
    let bob = app.service_user("bob-bot", Some(agent.id)).await;
    let alice_token = app.token_for(&alice).await;
    let bob_token = app.token_for(&bob).await;
    let as_alice = app.client(&alice_token.secret);

    let listed = as_alice.list_tokens(&Default::default()).await.unwrap();
    assert_eq!(
        listed.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![alice_token.token.id]
    );
    assert_eq!(
        code_of(as_alice.token(bob_token.token.id).await),
        "RESOURCE_NOT_FOUND"
    );
    assert_eq!(code_of(as_alice.user(bob.id).await), "RESOURCE_NOT_FOUND");
    assert_eq!(as_alice.user(alice.id).await.unwrap().id, alice.id);
    assert_eq!(
        code_of(as_alice.create_token(&token_request(&bob)).await),
        "SCOPE_VIOLATION"
    );
    assert!(as_alice.create_token(&token_request(&alice)).await.is_ok());
    // The same permissions at workspace scope are not hers to hand out.
    let wide = app
        .api_role(
            "Agent (workspace)",
            Scope::Workspace,
            &[
                "keyward.tokens:read",
                "keyward.tokens:create",
                "keyward.users:read",
            ],
        )
        .await;
    let mut req = token_request(&alice);
    req.role_id = Some(wide.id);
    assert_eq!(
        code_of(as_alice.create_token(&req).await),
        "SCOPE_VIOLATION"
    );
}
both_backends!(user_scoped_tokens_see_only_their_owner);
