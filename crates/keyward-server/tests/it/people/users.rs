//! The users section: creating, disabling and enabling users, inviting people, and each
//! user's API tokens (generate with the owner prefilled, revoke), plus rotating and deleting
//! from a token's page — all through the operations layer, checked through the JSON API and
//! the audit trail; a person who may only read users sees no buttons and is refused.

use keyward_client::{ClientError, UserQuery};
use keyward_core::api::CreateUser;
use keyward_core::audit::{ActorKind, AuditEventView, AuditQuery};
use keyward_core::model::{RoleKind, Scope, UserKind};
use keyward_core::{Code, TokenId, UserId};

use super::browserless::{by_id, onboard, person, Jar, Page};
use crate::support::{both_backends, TestApp};

const PASSWORD: &str = "correct horse battery staple";

/// What a person managing users and tokens holds (and `orders:read`, which the service
/// users' role grants: nobody hands out more than they hold).
const MANAGER: &[&str] = &[
    "keyward.users:*",
    "keyward.tokens:*",
    "keyward.roles:read",
    "orders:read",
];

/// The id in a `Location: /ui/users/usr_…?created=1`.
fn created_user(page: &Page) -> UserId {
    let location = page.location.as_deref().unwrap();
    let id = location
        .strip_prefix("/ui/users/")
        .and_then(|rest| rest.split('?').next())
        .unwrap();
    id.parse().unwrap()
}

/// The value of the selected option of the `<select id="{id}">`.
fn selected(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("<select id=\"{id}\""))?;
    let select = &html[at..at + html[at..].find("</select>")?];
    let option = select
        .split("<option ")
        .find(|o| o.split('>').next().is_some_and(|t| t.contains("selected")))?;
    let value = option.strip_prefix("value=\"")?;
    Some(value[..value.find('"')?].to_owned())
}

/// The token id of a "token created" page.
fn token_id_of(page: &Page) -> TokenId {
    let rest = page.body.split("/ui/tokens/").nth(1).unwrap();
    rest[..rest.find('/').unwrap()].parse().unwrap()
}

/// The one audit event of `action` about `target`.
async fn event(app: &TestApp, action: &str, target: &str) -> AuditEventView {
    let q = AuditQuery {
        action: Some(action.into()),
        limit: Some(1000),
        ..AuditQuery::default()
    };
    let events = app.admin.audit(&q).await.unwrap().items;
    let mut about: Vec<_> = events
        .into_iter()
        .filter(|e| e.target_id == target)
        .collect();
    assert_eq!(about.len(), 1, "{action} about {target}: {about:?}");
    about.remove(0)
}

/// Asserts that the event was the person's, from the jar's address, not a token's.
fn by_person(e: &AuditEventView, person: UserId) {
    assert_eq!(e.actor.kind, ActorKind::User, "{e:?}");
    assert_eq!(e.actor.user_id, Some(person), "{e:?}");
    assert_eq!(e.actor.token_id, None, "{e:?}");
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"), "{e:?}");
}

/// A signed-in manager, and an api role (`orders:read`) for service users.
async fn manager(app: &TestApp) -> (Jar, UserId, keyward_core::Role) {
    app.catalogue(&["orders:read"]).await;
    let me = person(app, "manager@example.com", MANAGER).await;
    let (jar, _, _) = onboard(app, &me, PASSWORD).await;
    let api = app.api_role("billing", Scope::User, &["orders:read"]).await;
    (jar, me.id, api)
}

async fn service_users_from_the_dashboard(app: TestApp) {
    let (mut jar, me, api) = manager(&app).await;

    let list = jar.get("/ui/users").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("id=\"create-user\""), "{}", list.body);
    assert!(list.body.contains("manager@example.com"), "{}", list.body);

    // The form offers the api role for service users, apart from the human roles.
    let form = jar.get("/ui/users/new?kind=service").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let api_group = form.body.find("API roles").unwrap();
    assert!(
        form.body[api_group..].contains(&api.id.to_string()),
        "{}",
        form.body
    );
    assert!(form.body.contains("id=\"kind-service\" checked"));

    // A person with an api role is refused by the operation, next to the role field.
    let role = api.id.to_string();
    let mismatch = jar
        .post_owned(
            "/ui/users/new",
            &[
                ("csrf", form.csrf()),
                ("kind", "human".into()),
                ("name", "Mismatched".into()),
                ("role", role.clone()),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 422, "{}", mismatch.body);
    let error = by_id(&mismatch.body, "role-error").unwrap();
    assert!(error.contains("api role"), "{error}");
    assert!(mismatch.body.contains("value=\"Mismatched\""));
    let empty = jar
        .post_owned(
            "/ui/users/new",
            &[
                ("csrf", form.csrf()),
                ("kind", "service".into()),
                ("name", "  ".into()),
            ],
        )
        .await;
    assert_eq!(empty.status, 422, "{}", empty.body);
    assert!(by_id(&empty.body, "name-error").is_some(), "{}", empty.body);

    let created = jar
        .post_owned(
            "/ui/users/new",
            &[
                ("csrf", form.csrf()),
                ("kind", "service".into()),
                ("name", "billing sync".into()),
                ("email", String::new()),
                ("role", role),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let id = created_user(&created);
    let user = app.admin.user(id).await.unwrap();
    assert_eq!(user.kind, UserKind::Service);
    assert_eq!(user.name, "billing sync");
    assert_eq!(user.email, None);
    assert_eq!(user.role_id, Some(api.id));
    assert!(!user.disabled);
    by_person(&event(&app, "user.created", &id.to_string()).await, me);
    let all = app.admin.list_users(&UserQuery::default()).await.unwrap();
    assert!(all.items.iter().all(|u| u.name != "Mismatched"));

    // The user's page, then disable and enable it; the API sees each change.
    let page = jar.get(created.location.as_deref().unwrap()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("User created."), "{}", page.body);
    assert_eq!(by_id(&page.body, "user-status").as_deref(), Some("enabled"));
    assert!(page.body.contains("id=\"disable\""), "{}", page.body);
    assert!(
        !page.body.contains("id=\"invite\""),
        "a service user is not invited"
    );
    let disabled = jar
        .post(
            &format!("/ui/users/{id}/disable"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(
        by_id(&disabled.body, "user-status").as_deref(),
        Some("disabled")
    );
    assert!(app.admin.user(id).await.unwrap().disabled);
    assert!(disabled.body.contains("id=\"enable\""), "{}", disabled.body);
    let updated = event(&app, "user.updated", &id.to_string()).await;
    by_person(&updated, me);
    let enabled = jar
        .post(&format!("/ui/users/{id}/enable"), &[("csrf", &page.csrf())])
        .await;
    assert_eq!(enabled.status, 200, "{}", enabled.body);
    assert!(!app.admin.user(id).await.unwrap().disabled);

    // The list filters by kind.
    let services = jar.get("/ui/users?kind=service").await;
    assert!(services.body.contains("billing sync"), "{}", services.body);
    assert!(!services.body.contains("manager@example.com"));
    let people = jar.get("/ui/users?kind=human").await;
    assert!(!people.body.contains("billing sync"), "{}", people.body);

    // Without the CSRF token nothing changes.
    let forged = jar
        .post(&format!("/ui/users/{id}/disable"), &[("csrf", "nope")])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(!app.admin.user(id).await.unwrap().disabled);
}
both_backends!(service_users_from_the_dashboard);

async fn a_users_api_tokens(app: TestApp) {
    let (mut jar, me, api) = manager(&app).await;
    let svc = app.service_user("billing", Some(api.id)).await;

    // Actions → API token: the form opens with the owner chosen.
    let page = jar.get(&format!("/ui/users/{}", svc.id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let link = format!("/ui/tokens/new?owner={}", svc.id);
    assert!(
        page.body.contains(&format!("href=\"{link}\"")),
        "{}",
        page.body
    );
    let form = jar.get(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let owner = selected(&form.body, "owner").unwrap();
    assert_eq!(owner, svc.id.to_string());
    let created = jar
        .post_owned(
            "/ui/tokens/new",
            &[
                ("csrf", form.csrf()),
                ("name", "billing sync".into()),
                ("owner", owner),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = by_id(&created.body, "token-secret").unwrap();
    let token = token_id_of(&created);
    let saved = jar
        .post(
            &format!("/ui/tokens/{token}/activate"),
            &[("csrf", &created.csrf())],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(app.verify(&secret, &["orders:read"]).await.valid);
    assert_eq!(app.admin.token(token).await.unwrap().owner_id, svc.id);

    // The user's page lists it with a revoke form; revoking there is final for verify.
    let page = jar.get(&format!("/ui/users/{}", svc.id)).await;
    let revoke = format!("/ui/tokens/{token}/revoke");
    assert!(
        page.body.contains(&format!("action=\"{revoke}\"")),
        "{}",
        page.body
    );
    let revoked = jar
        .post(&revoke, &[("csrf", &page.csrf()), ("confirm", "yes")])
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(
        app.verify(&secret, &["orders:read"]).await.code,
        Code::Revoked
    );
    by_person(&event(&app, "token.revoked", &token.to_string()).await, me);
    let page = jar.get(&format!("/ui/users/{}", svc.id)).await;
    assert!(
        !page.body.contains(&format!("action=\"{revoke}\"")),
        "{}",
        page.body
    );

    // A revoked token can be deleted from its page, once confirmed.
    let gone = jar.get(&format!("/ui/tokens/{token}")).await;
    assert!(gone.body.contains("id=\"delete\""), "{}", gone.body);
    assert!(!gone.body.contains("id=\"rotate\""), "{}", gone.body);
    let unconfirmed = jar
        .post(
            &format!("/ui/tokens/{token}/delete"),
            &[("csrf", &gone.csrf())],
        )
        .await;
    assert_eq!(unconfirmed.status, 422, "{}", unconfirmed.body);
    assert!(app.admin.token(token).await.is_ok());
    let deleted = jar
        .post(
            &format!("/ui/tokens/{token}/delete"),
            &[("csrf", &gone.csrf()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert_eq!(deleted.location.as_deref(), Some("/ui/tokens"));
    assert!(matches!(
        app.admin.token(token).await,
        Err(ClientError::Api { status: 404, .. })
    ));
    by_person(&event(&app, "token.deleted", &token.to_string()).await, me);
}
both_backends!(a_users_api_tokens);

async fn rotating_from_the_token_page(app: TestApp) {
    let (mut jar, me, api) = manager(&app).await;
    let svc = app.service_user("billing", Some(api.id)).await;
    let old = app.token_for(&svc).await;
    let id = old.token.id;

    let page = jar.get(&format!("/ui/tokens/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"rotate\""), "{}", page.body);
    assert!(
        !page.body.contains("id=\"delete\""),
        "an active token is not deleted here"
    );
    assert!(
        page.body
            .contains(&format!("href=\"/ui/tokens/{id}/activity\"")),
        "{}",
        page.body
    );

    // A grace period that is not a number of minutes is refused; nothing rotates.
    let bad = jar
        .post(
            &format!("/ui/tokens/{id}/rotate"),
            &[("csrf", &page.csrf()), ("grace_minutes", "soon")],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let family = app.admin.token_family(id).await.unwrap();
    assert_eq!(family.len(), 1);

    // With ten minutes' grace both secrets work; the new one is shown once.
    let rotated = jar
        .post(
            &format!("/ui/tokens/{id}/rotate"),
            &[("csrf", &page.csrf()), ("grace_minutes", "10")],
        )
        .await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    let secret = by_id(&rotated.body, "token-secret").unwrap();
    assert_ne!(secret, old.secret);
    assert!(app.verify(&secret, &["orders:read"]).await.valid);
    assert!(app.verify(&old.secret, &["orders:read"]).await.valid);
    let family = app.admin.token_family(id).await.unwrap();
    assert_eq!(family.len(), 2);
    let new = family.iter().find(|t| t.id != id).unwrap();
    by_person(&event(&app, "token.rotated", &new.id.to_string()).await, me);
    let new_page = jar.get(&format!("/ui/tokens/{}", new.id)).await;
    assert!(
        !new_page.body.contains(&secret),
        "the secret is shown only once"
    );

    // Rotating the new one at once: the next secret works, the previous one stops.
    let again = jar
        .post(
            &format!("/ui/tokens/{}/rotate", new.id),
            &[("csrf", &page.csrf()), ("grace_minutes", "")],
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
    let third = by_id(&again.body, "token-secret").unwrap();
    assert!(app.verify(&third, &["orders:read"]).await.valid);
    assert!(!app.verify(&secret, &["orders:read"]).await.valid);
}
both_backends!(rotating_from_the_token_page);

/// Presses the user page's invite button; returns the path of the link shown.
async fn invite(jar: &mut Jar, id: UserId, csrf: &str) -> String {
    let answer = jar
        .post(&format!("/ui/users/{id}/invite"), &[("csrf", csrf)])
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert!(answer.body.contains("shown only once"), "{}", answer.body);
    assert!(by_id(&answer.body, "invitation-expires").is_some());
    let url = by_id(&answer.body, "invitation-url").unwrap();
    url[url.find("/ui/").unwrap()..].to_owned()
}

async fn inviting_a_person_from_the_dashboard(app: TestApp) {
    let (mut jar, me, _) = manager(&app).await;
    let viewer = app
        .admin
        .create_role(&keyward_core::api::CreateRole {
            name: "token viewer".into(),
            description: String::new(),
            kind: RoleKind::Human,
            scope: Scope::Workspace,
            permissions: vec!["keyward.tokens:read".into()],
            ip_allowlist: None,
            rate_limit_per_minute: None,
            rate_limit_per: None,
        })
        .await
        .unwrap();
    let form = jar.get("/ui/users/new").await;
    assert!(
        form.body.contains("id=\"kind-human\" checked"),
        "{}",
        form.body
    );
    let created = jar
        .post_owned(
            "/ui/users/new",
            &[
                ("csrf", form.csrf()),
                ("kind", "human".into()),
                ("name", "Ada".into()),
                ("email", "ada@example.com".into()),
                ("role", viewer.id.to_string()),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let id = created_user(&created);
    let ada = app.admin.user(id).await.unwrap();
    assert_eq!(ada.kind, UserKind::Human);
    assert_eq!(ada.email.as_deref(), Some("ada@example.com"));

    let page = jar.get(&format!("/ui/users/{id}")).await;
    assert_eq!(by_id(&page.body, "invite").as_deref(), Some("Invite"));
    let first = invite(&mut jar, id, &page.csrf()).await;
    assert_eq!(Jar::new(&app).get(&first).await.status, 200);
    by_person(&event(&app, "person.invited", &id.to_string()).await, me);

    // A second invitation makes the first link stop working.
    let second = invite(&mut jar, id, &page.csrf()).await;
    assert_ne!(first, second);
    assert_eq!(Jar::new(&app).get(&first).await.status, 404);
    assert_eq!(Jar::new(&app).get(&second).await.status, 200);

    // Once Ada has signed up, the button offers a new invitation (a recovery).
    let (_ada_jar, _, _) = onboard(&app, &ada, PASSWORD).await;
    let page = jar.get(&format!("/ui/users/{id}")).await;
    assert_eq!(
        by_id(&page.body, "invite").as_deref(),
        Some("Send a new invitation")
    );

    // A disabled person is not invited: no button, and the operation refuses.
    let disabled = jar
        .post(
            &format!("/ui/users/{id}/disable"),
            &[("csrf", &page.csrf())],
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert!(
        !disabled.body.contains("id=\"invite\""),
        "{}",
        disabled.body
    );
    let refused = jar
        .post(&format!("/ui/users/{id}/invite"), &[("csrf", &page.csrf())])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
}
both_backends!(inviting_a_person_from_the_dashboard);

async fn a_reader_sees_no_buttons_and_is_refused(app: TestApp) {
    let reader = person(&app, "reader@example.com", &["keyward.users:read"]).await;
    let (mut jar, _, _) = onboard(&app, &reader, PASSWORD).await;
    let svc = app.service_user("billing", None).await;
    let human = app
        .admin
        .create_user(&CreateUser {
            kind: UserKind::Human,
            name: "Bea".into(),
            email: Some("bea@example.com".into()),
            role_id: None,
        })
        .await
        .unwrap();

    let list = jar.get("/ui/users").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("billing"), "{}", list.body);
    assert!(
        !list.body.contains("href=\"/ui/users/new\""),
        "{}",
        list.body
    );
    for user in [svc.id, human.id] {
        let page = jar.get(&format!("/ui/users/{user}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for button in [
            "id=\"actions\"",
            "id=\"disable\"",
            "id=\"invite\"",
            "id=\"generate-token\"",
        ] {
            assert!(!page.body.contains(button), "{button}: {}", page.body);
        }
        assert!(!page.body.contains("id=\"user-tokens\""), "{}", page.body);
    }
    assert_eq!(jar.get("/ui/users/new").await.status, 403);

    // Direct requests are refused by the operations and change nothing.
    let csrf = list.csrf();
    let disable = jar
        .post(&format!("/ui/users/{}/disable", svc.id), &[("csrf", &csrf)])
        .await;
    assert_eq!(disable.status, 403, "{}", disable.body);
    assert!(!app.admin.user(svc.id).await.unwrap().disabled);
    let invite = jar
        .post(
            &format!("/ui/users/{}/invite", human.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(invite.status, 403, "{}", invite.body);
    let create = jar
        .post(
            "/ui/users/new",
            &[("csrf", &csrf), ("kind", "service"), ("name", "sneaky")],
        )
        .await;
    assert_eq!(create.status, 403, "{}", create.body);
    let all = app.admin.list_users(&UserQuery::default()).await.unwrap();
    assert!(all.items.iter().all(|u| u.name != "sneaky"));
    let q = AuditQuery {
        actor: Some(reader.id.to_string()),
        action: Some("user.*".into()),
        ..AuditQuery::default()
    };
    assert!(app.admin.audit(&q).await.unwrap().items.is_empty());
}
both_backends!(a_reader_sees_no_buttons_and_is_refused);
