//! The roles section: a role made in the permission matrix (with the "may generate API
//! tokens" switch, an allowlist and a rate limit) is exactly what the API then shows; editing
//! it changes the API's view; the audit trail names the person; escalation is refused as the
//! API refuses it; a person who may only read roles gets no form and no way round it.

use keyward_client::ListParams;
use keyward_core::api::CreateRole;
use keyward_core::audit::{ActorKind, AuditEventView, AuditQuery};
use keyward_core::model::{RoleKind, Scope};
use keyward_core::RoleId;

use super::browserless::{by_id, onboard, person, Jar, Page};
use crate::support::{both_backends, problem_of, TestApp};

const PASSWORD: &str = "correct horse battery staple";

/// The whole `<input …>` tag around the first occurrence of `needle`.
fn tag<'a>(html: &'a str, needle: &str) -> Option<&'a str> {
    let at = html.find(needle)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    Some(&html[start..=end])
}

/// Whether the matrix checkbox sending `value` is there and ticked.
fn ticked(html: &str, value: &str) -> Option<bool> {
    let t = tag(html, &format!("name=\"permissions\" value=\"{value}\""))?;
    Some(t.contains(" checked"))
}

fn role_id(created: &Page) -> RoleId {
    let to = created.location.as_deref().unwrap();
    let id = to.strip_prefix("/ui/roles/").unwrap();
    id[..id.find('?').unwrap_or(id.len())].parse().unwrap()
}

async fn events(app: &TestApp, action: &str, target: RoleId) -> Vec<AuditEventView> {
    let q = AuditQuery {
        action: Some(action.into()),
        limit: Some(100),
        ..AuditQuery::default()
    };
    let all = app.admin.audit(&q).await.unwrap().items;
    all.into_iter()
        .filter(|e| e.target_id == target.to_string())
        .collect()
}

async fn role_names(app: &TestApp) -> Vec<String> {
    let page = app.admin.list_roles(&ListParams::default()).await.unwrap();
    page.items.into_iter().map(|r| r.name).collect()
}

/// A person who may manage roles (and tokens, and every product permission), signed in.
async fn manager(app: &TestApp) -> (keyward_core::User, Jar) {
    app.catalogue(&["orders:read", "orders:write", "cart:write"])
        .await;
    let who = person(
        app,
        "roles@example.com",
        &[
            "keyward.roles:*",
            "keyward.tokens:*",
            "keyward.users:read",
            "*",
        ],
    )
    .await;
    let (jar, _, _) = onboard(app, &who, PASSWORD).await;
    (who, jar)
}

fn new_role_form(csrf: String) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", csrf),
        ("name", "support bots".into()),
        ("description", "Bots answering tickets".into()),
        ("kind", "api".into()),
        ("scope", "workspace".into()),
        ("permissions", "orders:read".into()),
        ("may_generate_tokens", "on".into()),
        ("tokens_shown", "no".into()),
        ("ip_allowlist", "203.0.113.5, 198.51.100.0/24".into()),
        ("rate_limit", "150".into()),
        ("rate_limit_per", "user".into()),
    ]
}

async fn a_role_made_in_the_matrix_is_the_apis(app: TestApp) {
    let (who, mut jar) = manager(&app).await;

    // The matrix: resources × actions from the catalogue, wildcards, the switch.
    let form = jar.get("/ui/roles/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    for value in [
        "orders:read",
        "orders:write",
        "cart:write",
        "orders:*",
        "cart:*",
        "keyward.tokens:create",
        "keyward.tokens:*",
        "*",
        "keyward.*",
    ] {
        assert_eq!(ticked(&form.body, value), Some(false), "{value}");
    }
    assert_eq!(
        ticked(&form.body, "cart:read"),
        None,
        "not in the catalogue"
    );
    let switch = tag(&form.body, "id=\"may-generate-tokens\"").unwrap();
    assert!(switch.contains("type=\"checkbox\""), "{switch}");
    assert!(!switch.contains(" checked"), "{switch}");
    assert!(form.body.contains("Agent — only their own tokens and data"));
    assert!(form.body.contains("Admin — the whole workspace"));

    let created = jar
        .post_owned("/ui/roles/new", &new_role_form(form.csrf()))
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let id = role_id(&created);

    let role = app.admin.role(id).await.unwrap();
    let perms: Vec<&str> = role.permissions.iter().map(|p| p.as_str()).collect();
    assert_eq!(perms, ["orders:read", "keyward.tokens:create"]);
    assert_eq!(
        role.ip_allowlist.entries(),
        ["198.51.100.0/24", "203.0.113.5/32"]
    );
    assert_eq!(
        role.rate_limit(),
        Some((150, keyward_core::RateLimitPer::User))
    );
    let page = jar.get(&format!("/ui/roles/{id}")).await;
    assert!(
        page.body.contains("<option value=\"user\" selected>"),
        "the form shows the per-user budget: {}",
        page.body
    );
    let list = jar.get("/ui/roles").await;
    assert!(list.body.contains("150/min per user"), "{}", list.body);
    assert_eq!(role.scope, Scope::Workspace);
    assert_eq!(role.kind, RoleKind::Api);
    assert_eq!(role.description, "Bots answering tickets");

    // The list shows it as the dashboard words it.
    let list = jar.get("/ui/roles").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let row = list
        .body
        .split(&format!("id=\"role-{id}\""))
        .nth(1)
        .unwrap();
    let row = &row[..row.find("</tr>").unwrap()];
    for cell in [
        "support bots",
        "<td>api</td>",
        "<td>Admin</td>",
        "<td>2</td>",
        "150/min",
        "<td>yes</td>",
    ] {
        assert!(row.contains(cell), "{cell} in {row}");
    }

    // The edit form shows what is stored; the kind is fixed.
    let path = created.location.clone().unwrap();
    let edit = jar.get(&path).await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    assert!(edit.body.contains("Role created."), "{}", edit.body);
    assert_eq!(ticked(&edit.body, "orders:read"), Some(true));
    assert_eq!(ticked(&edit.body, "keyward.tokens:create"), Some(true));
    assert_eq!(ticked(&edit.body, "orders:write"), Some(false));
    assert!(tag(&edit.body, "id=\"may-generate-tokens\"")
        .unwrap()
        .contains(" checked"));
    assert!(tag(&edit.body, "id=\"scope-workspace\"")
        .unwrap()
        .contains(" checked"));
    assert!(!edit.body.contains("name=\"kind\""), "{}", edit.body);
    assert!(edit.body.contains("203.0.113.5/32"), "{}", edit.body);

    // Untick the switch (its matrix cell still ticked, as the form showed it: the switch
    // changed, so it decides), add orders:write, make it an agent role.
    let edit_path = format!("/ui/roles/{id}");
    let fields = vec![
        ("csrf", edit.csrf()),
        ("name", "support bots".into()),
        ("description", "Bots answering tickets".into()),
        ("scope", "user".into()),
        ("permissions", "orders:read".into()),
        ("permissions", "orders:write".into()),
        ("permissions", "keyward.tokens:create".into()),
        ("tokens_shown", "yes".into()),
        ("ip_allowlist", "203.0.113.5".into()),
        ("rate_limit", "".into()),
    ];
    let saved = jar.post_owned(&edit_path, &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let role = app.admin.role(id).await.unwrap();
    let perms: Vec<&str> = role.permissions.iter().map(|p| p.as_str()).collect();
    assert_eq!(perms, ["orders:read", "orders:write"]);
    assert_eq!(role.scope, Scope::User);
    assert_eq!(role.ip_allowlist.entries(), ["203.0.113.5/32"]);
    assert_eq!(role.rate_limit_per_minute, None);
    assert_eq!(
        role.rate_limit_per,
        keyward_core::RateLimitPer::Token,
        "without a limit of its own the role counts nothing itself"
    );
    let shown = jar.get(saved.location.as_deref().unwrap()).await;
    assert!(shown.body.contains("Role saved"), "{}", shown.body);
    assert!(!tag(&shown.body, "id=\"may-generate-tokens\"")
        .unwrap()
        .contains(" checked"));
    assert_eq!(ticked(&shown.body, "keyward.tokens:create"), Some(false));

    // Ticking only the matrix cell grants it too (neither was shown ticked).
    let mut again = fields.clone();
    again[0].1 = shown.csrf();
    again[7].1 = "no".into();
    let saved = jar.post_owned(&edit_path, &again).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let role = app.admin.role(id).await.unwrap();
    assert!(role
        .permissions
        .iter()
        .any(|p| p.as_str() == "keyward.tokens:create"));

    // The trail names the person, from the session's address.
    let made = events(&app, "role.created", id).await;
    assert_eq!(made.len(), 1, "{made:?}");
    let changed = events(&app, "role.updated", id).await;
    assert_eq!(changed.len(), 2, "{changed:?}");
    for e in made.iter().chain(&changed) {
        assert_eq!(e.actor.kind, ActorKind::User);
        assert_eq!(e.actor.user_id, Some(who.id));
        assert_eq!(e.actor.token_id, None);
        assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
    }

    // Deleting needs the confirmation.
    let page = jar.get(&edit_path).await;
    let delete = format!("/ui/roles/{id}/delete");
    let unconfirmed = jar.post(&delete, &[("csrf", &page.csrf())]).await;
    assert_eq!(unconfirmed.status, 422, "{}", unconfirmed.body);
    assert!(app.admin.role(id).await.is_ok());
    let deleted = jar
        .post(&delete, &[("csrf", &page.csrf()), ("confirm", "yes")])
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(deleted.body.contains("deleted"), "{}", deleted.body);
    assert!(app.admin.role(id).await.is_err());
    assert_eq!(events(&app, "role.deleted", id).await.len(), 1);
}
both_backends!(a_role_made_in_the_matrix_is_the_apis);

async fn escalation_is_refused_as_the_api_refuses_it(app: TestApp) {
    let (_, mut jar) = manager(&app).await;
    let form = jar.get("/ui/roles/new").await;
    let mut fields = new_role_form(form.csrf());
    fields[1].1 = "auditors".into();
    fields.push(("permissions", "keyward.audit:read".into()));
    let refused = jar.post_owned("/ui/roles/new", &fields).await;

    // The same request through the API, by a token holding what the person holds.
    let mirror = app
        .api_role(
            "mirror",
            Scope::Workspace,
            &[
                "keyward.roles:*",
                "keyward.tokens:*",
                "keyward.users:read",
                "*",
            ],
        )
        .await;
    let svc = app.service_user("mirror", Some(mirror.id)).await;
    let token = app.token_for(&svc).await;
    let api = app.client(&token.secret);
    let problem = problem_of(
        api.create_role(&CreateRole {
            name: "auditors by api".into(),
            description: String::new(),
            kind: RoleKind::Api,
            scope: Scope::Workspace,
            permissions: vec![
                "orders:read".into(),
                "keyward.audit:read".into(),
                "keyward.tokens:create".into(),
            ],
            ip_allowlist: None,
            rate_limit_per_minute: None,
            rate_limit_per: None,
        })
        .await,
    );
    assert_eq!(problem.code, "PRIVILEGE_ESCALATION");
    assert_eq!(refused.status, problem.status, "{}", refused.body);
    assert_eq!(refused.status, 403);
    assert_eq!(
        by_id(&refused.body, "error-code").as_deref(),
        Some("PRIVILEGE_ESCALATION")
    );
    // The same refusal, worded for a person ("you") instead of a token.
    assert!(
        problem.detail.contains("keyward.audit:read"),
        "{}",
        problem.detail
    );
    assert!(
        refused
            .body
            .contains("this would grant keyward.audit:read, which you do not hold yourself"),
        "{}",
        refused.body
    );
    // Nothing was created, and the form keeps what was typed.
    let names = role_names(&app).await;
    assert!(
        !names.iter().any(|n| n.starts_with("auditors")),
        "{names:?}"
    );
    assert!(
        refused.body.contains("value=\"auditors\""),
        "{}",
        refused.body
    );
    assert_eq!(ticked(&refused.body, "keyward.audit:read"), Some(true));
    assert_eq!(ticked(&refused.body, "orders:read"), Some(true));
    assert!(refused.body.contains("203.0.113.5, 198.51.100.0/24"));

    // The global keyward.* is offered, and refused the same way.
    let mut all = new_role_form(form.csrf());
    all[1].1 = "everything".into();
    all.push(("permissions", "keyward.*".into()));
    let refused = jar.post_owned("/ui/roles/new", &all).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!role_names(&app).await.contains(&"everything".to_owned()));

    // Input errors are shown next to their field, with what was typed kept.
    let mut bad = new_role_form(form.csrf());
    bad[8].1 = "203.0.113.999".into();
    let page = jar.post_owned("/ui/roles/new", &bad).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(by_id(&page.body, "ip-error").is_some(), "{}", page.body);
    assert!(page.body.contains("203.0.113.999"));
    let mut bad = new_role_form(form.csrf());
    bad[9].1 = "lots".into();
    let page = jar.post_owned("/ui/roles/new", &bad).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(by_id(&page.body, "rate-error").is_some(), "{}", page.body);
    assert!(page.body.contains("value=\"lots\""));
    assert!(!role_names(&app).await.contains(&"support bots".to_owned()));
}
both_backends!(escalation_is_refused_as_the_api_refuses_it);

async fn reading_roles_shows_no_form_and_refuses_changes(app: TestApp) {
    app.catalogue(&["orders:read"]).await;
    let role = app.api_role("readers", Scope::User, &["orders:read"]).await;
    let viewer = person(&app, "viewer@example.com", &["keyward.roles:read"]).await;
    let (mut jar, _, _) = onboard(&app, &viewer, PASSWORD).await;

    let list = jar.get("/ui/roles").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("readers"), "{}", list.body);
    assert!(!list.body.contains("/ui/roles/new"), "{}", list.body);
    assert!(list.body.contains("<td>Agent</td>"), "{}", list.body);

    let path = format!("/ui/roles/{}", role.id);
    let page = jar.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"role-facts\""), "{}", page.body);
    for control in [
        "name=\"permissions\"",
        "id=\"role-form\"",
        "id=\"save-role\"",
        "id=\"delete-role\"",
        "id=\"may-generate-tokens\"",
        "name=\"scope\"",
    ] {
        assert!(!page.body.contains(control), "{control}: {}", page.body);
    }
    assert!(page.body.contains("granted"), "{}", page.body);
    assert_eq!(jar.get("/ui/roles/new").await.status, 403);

    // Direct POSTs are refused by the operations layer, and change nothing.
    let csrf = page.csrf();
    let edit = jar
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("name", "readers"),
                ("scope", "workspace"),
                ("permissions", "orders:read"),
            ],
        )
        .await;
    assert_eq!(edit.status, 403, "{}", edit.body);
    assert_eq!(
        app.admin.role(role.id).await.unwrap().scope,
        Scope::User,
        "unchanged"
    );
    let new = jar
        .post(
            "/ui/roles/new",
            &[
                ("csrf", &csrf),
                ("name", "sneaky"),
                ("kind", "api"),
                ("scope", "user"),
            ],
        )
        .await;
    assert_eq!(new.status, 403, "{}", new.body);
    assert!(!role_names(&app).await.contains(&"sneaky".to_owned()));
    let delete = jar
        .post(
            &format!("{path}/delete"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(delete.status, 403, "{}", delete.body);
    assert!(app.admin.role(role.id).await.is_ok());
    // A form without the session's CSRF token is refused before anything else.
    let forged = jar
        .post(
            &format!("{path}/delete"),
            &[("csrf", "nope"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.body.contains("CSRF"), "{}", forged.body);
}
both_backends!(reading_roles_shows_no_form_and_refuses_changes);
