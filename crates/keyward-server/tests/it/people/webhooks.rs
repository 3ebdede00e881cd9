//! The webhooks section: a subscription added in the dashboard is the API's, its signing
//! secret is shown once (and signs the deliveries, which the subscription's page lists),
//! rotation shows the new one once, deletion needs a confirmation; a person who may only
//! read webhooks gets no form and no way round it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use keyward_client::ListParams;
use keyward_core::audit::{AuditEventView, AuditQuery};
use keyward_core::events::EventType;
use sha2::Sha256;

use super::browserless::{by_id, onboard, person};
use crate::events::{eventually, fast, Received, Receiver};
use crate::support::TestApp;
use crate::webhook_safety::{both_with, emit, wait_log};

const PASSWORD: &str = "correct horse battery staple";

/// Whether `r` is signed with `secret` (Standard Webhooks, computed here independently).
fn signed_with(secret: &str, r: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts = r.headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{}", r.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}

async fn events(app: &TestApp, action: &str) -> Vec<AuditEventView> {
    let q = AuditQuery {
        action: Some(action.into()),
        limit: Some(100),
        ..AuditQuery::default()
    };
    app.admin.audit(&q).await.unwrap().items
}

/// The id in the "go to the webhook" link of a secret page.
fn webhook_id(html: &str) -> String {
    let link = html.split("href=\"/ui/webhooks/").nth(1).unwrap();
    link[..link.find('"').unwrap()].to_owned()
}

async fn a_dashboard_webhook_is_the_apis_and_its_secret_shown_once(app: TestApp) {
    let who = person(&app, "hooks@example.com", &["keyward.webhooks:*"]).await;
    let (mut jar, _, _) = onboard(&app, &who, PASSWORD).await;
    let rx = Receiver::start(&[]).await;

    let list = jar.get("/ui/webhooks").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("/ui/webhooks/new"), "{}", list.body);
    let form = jar.get("/ui/webhooks/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    for t in EventType::ALL {
        let needle = format!("name=\"event_types\" value=\"{}\"", t.as_str());
        assert!(form.body.contains(&needle), "{needle}");
    }

    // A destination the policy refuses is refused next to the field, the form kept.
    let bad = jar
        .post(
            "/ui/webhooks/new",
            &[
                ("csrf", &form.csrf()),
                ("url", "http://10.0.0.1/hook"),
                ("description", "internal"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(by_id(&bad.body, "url-error").is_some(), "{}", bad.body);
    assert!(bad.body.contains("value=\"http://10.0.0.1/hook\""));

    let created = jar
        .post(
            "/ui/webhooks/new",
            &[
                ("csrf", &form.csrf()),
                ("url", &rx.url),
                ("description", "tickets"),
                ("event_types", "token.created"),
                ("event_types", "token.revoked"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = by_id(&created.body, "webhook-secret").unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = webhook_id(&created.body);

    // Visible through the API as it was asked for.
    let all = app
        .admin
        .list_webhooks(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1, "{:?}", all.items);
    let w = &all.items[0];
    assert_eq!(w.id.to_string(), id);
    assert_eq!(w.url, rx.url);
    assert!(w.enabled);
    assert_eq!(w.description, "tickets");
    assert_eq!(
        w.event_types.as_deref(),
        Some(&[EventType::TokenCreated, EventType::TokenRevoked][..])
    );
    let made = events(&app, "webhook.created").await;
    assert_eq!(made[0].actor.user_id, Some(who.id));
    assert_eq!(made[0].actor.token_id, None);
    assert_eq!(made[0].ip.as_deref(), Some("127.0.0.1"));

    // The list and the subscription's page never show the secret again.
    let list = jar.get("/ui/webhooks").await;
    assert!(list.body.contains(&rx.url), "{}", list.body);
    assert!(list.body.contains("token.created, token.revoked"));
    assert!(!list.body.contains(&secret));
    let path = format!("/ui/webhooks/{id}");
    let page = jar.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains(&secret), "{}", page.body);
    assert!(!page.body.contains("whsec_"), "{}", page.body);
    assert!(page.body.contains("No deliveries yet"), "{}", page.body);

    // A delivery is signed with the secret shown, and listed on the page.
    emit(&app).await;
    eventually("the delivery arrived", || rx.count() == 1).await;
    assert!(signed_with(&secret, &rx.all()[0]));
    wait_log(&app, &id, 1).await;
    let page = jar.get(&path).await;
    let table = page.body.split("id=\"deliveries\"").nth(1).unwrap();
    let table = &table[..table.find("</table>").unwrap()];
    assert!(table.contains("token.created"), "{table}");
    assert!(table.contains("succeeded"), "{table}");
    assert!(table.contains("<td>200</td>"), "{table}");

    // Rotation needs the confirmation, then shows the new secret once.
    let unconfirmed = jar
        .post(&format!("{path}/rotate-secret"), &[("csrf", &page.csrf())])
        .await;
    assert_eq!(unconfirmed.status, 422, "{}", unconfirmed.body);
    assert!(by_id(&unconfirmed.body, "webhook-secret").is_none());
    let rotated = jar
        .post(
            &format!("{path}/rotate-secret"),
            &[("csrf", &page.csrf()), ("confirm", "yes")],
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let fresh = by_id(&rotated.body, "webhook-secret").unwrap();
    assert!(fresh.starts_with("whsec_") && fresh != secret, "{fresh}");
    let page = jar.get(&path).await;
    assert!(!page.body.contains(&fresh) && !page.body.contains(&secret));
    assert_eq!(events(&app, "webhook.secret_rotated").await.len(), 1);
    emit(&app).await;
    eventually("the second delivery arrived", || rx.count() == 2).await;
    assert!(signed_with(&fresh, &rx.all()[1]));

    // Changing it: disabled, every event type.
    let saved = jar
        .post(
            &path,
            &[
                ("csrf", &page.csrf()),
                ("url", &rx.url),
                ("description", "tickets, paused"),
            ],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("Webhook saved"), "{}", saved.body);
    let w = app.admin.webhook(w.id).await.unwrap();
    assert!(!w.enabled);
    assert_eq!(w.event_types, None);
    assert_eq!(w.description, "tickets, paused");

    // Deleting needs the confirmation.
    let delete = format!("{path}/delete");
    let unconfirmed = jar.post(&delete, &[("csrf", &page.csrf())]).await;
    assert_eq!(unconfirmed.status, 422, "{}", unconfirmed.body);
    assert!(app.admin.webhook(w.id).await.is_ok());
    let deleted = jar
        .post(&delete, &[("csrf", &page.csrf()), ("confirm", "yes")])
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(deleted.body.contains("Webhook deleted"), "{}", deleted.body);
    let all = app
        .admin
        .list_webhooks(&ListParams::default())
        .await
        .unwrap();
    assert!(all.items.is_empty(), "{:?}", all.items);
    let gone = events(&app, "webhook.deleted").await;
    assert_eq!(gone[0].actor.user_id, Some(who.id));
}
both_with!(
    a_dashboard_webhook_is_the_apis_and_its_secret_shown_once,
    fast
);

async fn reading_webhooks_shows_no_form_and_refuses_changes(app: TestApp) {
    let hook = app
        .admin
        .create_webhook(&keyward_core::events::CreateWebhook {
            url: "https://hooks.example.com/keyward".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let viewer = person(&app, "hookviewer@example.com", &["keyward.webhooks:read"]).await;
    let (mut jar, _, _) = onboard(&app, &viewer, PASSWORD).await;
    let list = jar.get("/ui/webhooks").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("hooks.example.com"), "{}", list.body);
    assert!(list.body.contains("all events"), "{}", list.body);
    assert!(!list.body.contains("/ui/webhooks/new"), "{}", list.body);
    assert_eq!(jar.get("/ui/webhooks/new").await.status, 403);
    let path = format!("/ui/webhooks/{}", hook.webhook.id);
    let page = jar.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for control in [
        "id=\"webhook-form\"",
        "id=\"rotate-secret\"",
        "id=\"delete-webhook\"",
    ] {
        assert!(!page.body.contains(control), "{control}: {}", page.body);
    }
    let csrf = page.csrf();
    let new = jar
        .post(
            "/ui/webhooks/new",
            &[("csrf", &csrf), ("url", "https://evil.example.com/")],
        )
        .await;
    assert_eq!(new.status, 403, "{}", new.body);
    let rotate = jar
        .post(
            &format!("{path}/rotate-secret"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(rotate.status, 403, "{}", rotate.body);
    assert!(by_id(&rotate.body, "webhook-secret").is_none());
    let delete = jar
        .post(
            &format!("{path}/delete"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(delete.status, 403, "{}", delete.body);
    let edit = jar
        .post(
            &path,
            &[("csrf", &csrf), ("url", "https://evil.example.com/")],
        )
        .await;
    assert_eq!(edit.status, 403, "{}", edit.body);
    let all = app
        .admin
        .list_webhooks(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    assert_eq!(all.items[0].url, "https://hooks.example.com/keyward");
    assert!(events(&app, "webhook.secret_rotated").await.is_empty());

    // Without keyward.webhooks:read there is no section at all.
    let nobody = person(&app, "nohooks@example.com", &["keyward.tokens:read"]).await;
    let (mut jar, _, _) = onboard(&app, &nobody, PASSWORD).await;
    let home = jar.get("/ui").await;
    assert!(
        !home.body.contains("href=\"/ui/webhooks\""),
        "{}",
        home.body
    );
    assert_eq!(jar.get("/ui/webhooks").await.status, 403);
    assert_eq!(jar.get(&path).await.status, 403);
}
both_with!(reading_webhooks_shows_no_form_and_refuses_changes, fast);
