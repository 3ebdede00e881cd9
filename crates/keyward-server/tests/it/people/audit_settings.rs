//! The audit log, security settings and token activity pages over HTTP as a browser uses
//! them: the log names the person and filters and pages like the API, its export holds
//! exactly the API's events, the chain check says intact; settings change the workspace (the
//! person audited as actor), refuse a self-locking allowlist and show no form without
//! `keyward.workspace:write`; a token's activity shows its usage and a server-drawn chart.

use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use chrono::Duration;
use keyward_core::api::{SettingsPatch, VerifyRequest, WorkspacePatch};
use keyward_core::audit::{ActorKind, AuditEventView, AuditQuery};
use keyward_core::model::Scope;

use super::browserless::{by_id, code, hidden, onboard, person, Jar, Page};
use crate::support::{both_backends, TestApp};

const PASSWORD: &str = "correct horse battery staple";

/// Every event of `action` (a family with `*`), oldest first, through the API.
async fn api_events(app: &TestApp, action: Option<&str>) -> Vec<AuditEventView> {
    let q = AuditQuery {
        action: action.map(Into::into),
        limit: Some(1000),
        ..AuditQuery::default()
    };
    app.admin.audit(&q).await.unwrap().items
}

/// Signs `jar` out and in again with password and a fresh TOTP code.
async fn sign_in_again(app: &TestApp, jar: &mut Jar, email: &str, secret: &str) {
    let home = jar.get("/ui").await;
    let out = jar.post("/ui/sign-out", &[("csrf", &home.csrf())]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    let form = jar.get("/ui/sign-in").await;
    let step = jar
        .post(
            "/ui/sign-in",
            &[
                ("csrf", &form.csrf()),
                ("email", email),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(step.location.as_deref(), Some("/ui/sign-in/code"));
    app.clock.advance(Duration::seconds(30));
    let form = jar.get("/ui/sign-in/code").await;
    let c = code(app, secret);
    let done = jar
        .post("/ui/sign-in/code", &[("csrf", &form.csrf()), ("code", &c)])
        .await;
    assert_eq!(done.location.as_deref(), Some("/ui"), "{}", done.body);
}

/// The event numbers a log page shows, in its order.
fn seqs_on(page: &Page) -> Vec<i64> {
    page.body
        .split("<tr id=\"event-")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The actions a log page shows.
fn actions_on(page: &Page) -> Vec<String> {
    page.body
        .split("<td class=\"action\"><code>")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap()].to_owned())
        .collect()
}

/// `href` of the element with `id`, unescaped.
fn href_of(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap();
    let tag_start = html[..at].rfind('<').unwrap();
    let tag = &html[tag_start..at + html[at..].find('>').unwrap()];
    let h = tag.find("href=\"").unwrap() + 6;
    tag[h..h + tag[h..].find('"').unwrap()].replace("&amp;", "&")
}

async fn the_audit_log_lists_filters_exports_and_checks_the_chain(app: TestApp) {
    let who = person(
        &app,
        "auditor@example.com",
        &[
            "keyward.audit:read",
            "keyward.workspace:*",
            "keyward.tokens:*",
        ],
    )
    .await;
    let (mut jar, secret, _) = onboard(&app, &who, PASSWORD).await;
    sign_in_again(&app, &mut jar, "auditor@example.com", &secret).await;

    // The newest events first, the sign-in named by person and address.
    let log = jar.get("/ui/audit").await;
    assert_eq!(log.status, 200, "{}", log.body);
    assert!(log.body.contains("person.signed_in"), "{}", log.body);
    let seqs = seqs_on(&log);
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let signed_in = &api_events(&app, Some("person.signed_in")).await[0];
    let row = log
        .body
        .split(&format!("<tr id=\"event-{}\">", signed_in.seq))
        .nth(1)
        .unwrap();
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("<td class=\"actor\">auditor</td>"), "{row}");
    assert!(row.contains("<td class=\"ip\">127.0.0.1</td>"), "{row}");

    // The action filter narrows, also to a family.
    let only = jar.get("/ui/audit?action=person.signed_in").await;
    assert_eq!(only.status, 200, "{}", only.body);
    assert_eq!(actions_on(&only), vec!["person.signed_in".to_owned()]);
    let family = jar.get("/ui/audit?action=person.*").await;
    let acts = actions_on(&family);
    assert!(acts.len() > 1 && acts.iter().all(|a| a.starts_with("person.")));
    assert_eq!(
        seqs_on(&family).len(),
        api_events(&app, Some("person.*")).await.len()
    );
    let by_actor = jar.get(&format!("/ui/audit?actor={}", who.id)).await;
    assert!(!seqs_on(&by_actor).is_empty());
    assert!(!by_actor.body.contains("role.created"), "{}", by_actor.body);
    let bad = jar.get("/ui/audit?actor=nobody").await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(by_id(&bad.body, "actor-error").is_some(), "{}", bad.body);
    let dates = jar.get("/ui/audit?from=2026-06-01&to=2026-06-01").await;
    assert_eq!(seqs_on(&dates).len(), seqs.len(), "{}", dates.body);
    let none = jar.get("/ui/audit?to=2026-05-01").await;
    assert!(seqs_on(&none).is_empty());

    // Paging with the cursor: 60 more events make an older page.
    app.catalogue(
        &(0..60)
            .map(|i| format!("orders:op{i}"))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    let all = api_events(&app, None).await;
    let first = jar.get("/ui/audit").await;
    let mut shown = seqs_on(&first);
    assert_eq!(shown.len(), 50);
    let older = jar.get(&href_of(&first.body, "older")).await;
    assert_eq!(older.status, 200, "{}", older.body);
    shown.extend(seqs_on(&older));
    let mut pages = older;
    while pages.body.contains("id=\"older\"") {
        pages = jar.get(&href_of(&pages.body, "older")).await;
        shown.extend(seqs_on(&pages));
    }
    let mut expected: Vec<i64> = all.iter().map(|e| e.seq).collect();
    expected.reverse();
    assert_eq!(shown, expected);

    // The export holds exactly the API's events for the same filter, oldest first.
    for filter in ["", "action=permission.*&", "action=person.*&"] {
        let action = filter
            .strip_prefix("action=")
            .map(|f| f.trim_end_matches('&'));
        let api: Vec<i64> = api_events(&app, action)
            .await
            .iter()
            .map(|e| e.seq)
            .collect();
        let jsonl = jar
            .get(&format!("/ui/audit/export?{filter}format=jsonl"))
            .await;
        assert_eq!(jsonl.status, 200, "{}", jsonl.body);
        let disposition = jsonl.headers["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        assert!(disposition.contains(".jsonl"), "{disposition}");
        let lines: Vec<AuditEventView> = jsonl
            .body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.iter().map(|e| e.seq).collect::<Vec<_>>(), api);
        let csv = jar
            .get(&format!("/ui/audit/export?{filter}format=csv"))
            .await;
        assert_eq!(csv.status, 200, "{}", csv.body);
        assert!(csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let rows: Vec<&str> = csv.body.lines().collect();
        assert!(rows[0].starts_with("seq,at,actor_kind"), "{}", rows[0]);
        assert_eq!(rows.len(), api.len() + 1);
        let csv_seqs: Vec<i64> = rows[1..]
            .iter()
            .map(|r| r.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(csv_seqs, api);
    }
    let link = href_of(
        &jar.get("/ui/audit?action=person.*").await.body,
        "export-csv",
    );
    assert_eq!(link, "/ui/audit/export?action=person.*&format=csv");
    let wrong = jar.get("/ui/audit/export?format=xml").await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);

    // The chain check is the API's.
    let chain = jar.get("/ui/audit/verify").await;
    assert_eq!(chain.status, 200, "{}", chain.body);
    assert_eq!(by_id(&chain.body, "chain-state").as_deref(), Some("intact"));
    let api = app.admin.verify_audit().await.unwrap();
    assert!(api.intact);
    assert_eq!(
        by_id(&chain.body, "events-checked"),
        Some(api.events_checked.to_string())
    );

    // Without keyward.audit:read: no section, no page, no export.
    let other = person(&app, "reader@example.com", &["keyward.tokens:read"]).await;
    let (mut jar, _, _) = onboard(&app, &other, PASSWORD).await;
    let home = jar.get("/ui").await;
    assert!(!home.body.contains("href=\"/ui/audit\""), "{}", home.body);
    assert_eq!(jar.get("/ui/audit").await.status, 403);
    assert_eq!(jar.get("/ui/audit/export?format=csv").await.status, 403);
    assert_eq!(jar.get("/ui/audit/verify").await.status, 403);
}
both_backends!(the_audit_log_lists_filters_exports_and_checks_the_chain);

/// The settings form as a browser would send it unchanged: hidden fields and the values shown.
pub(super) fn settings_form(page: &Page) -> Vec<(&'static str, String)> {
    let textarea = |name: &str| {
        let at = page.body.find(&format!("name=\"{name}\"")).unwrap();
        let rest = &page.body[at..];
        let start = rest.find('>').unwrap() + 1;
        rest[start..start + rest[start..].find("</textarea>").unwrap()].to_owned()
    };
    let mut form = vec![
        ("csrf", page.csrf()),
        ("ip_allowlist", textarea("ip_allowlist")),
        ("internal_networks", textarea("internal_networks")),
    ];
    for name in [
        "was_ip_allowlist",
        "was_internal_networks",
        "was_require_2fa",
        "was_require_approval",
        "was_token_max_lifetime_days",
        "was_expiry_warning_days",
        "was_default_rate_limit_per_minute",
        "token_max_lifetime_days",
        "expiry_warning_days",
        "default_rate_limit_per_minute",
    ] {
        form.push((name, hidden(&page.body, name).unwrap()));
    }
    for name in ["require_2fa", "require_approval"] {
        let tag = format!("name=\"{name}\" value=\"on\" checked");
        if page.body.contains(&tag) {
            form.push((name, "on".into()));
        }
    }
    form
}

pub(super) fn set(form: &mut Vec<(&'static str, String)>, name: &'static str, value: &str) {
    form.retain(|(k, _)| *k != name);
    form.push((name, value.to_owned()));
}

async fn security_settings_change_the_workspace(app: TestApp) {
    let admin = person(
        &app,
        "secops@example.com",
        &[
            "keyward.audit:read",
            "keyward.workspace:*",
            "keyward.tokens:*",
        ],
    )
    .await;
    let (mut jar, _, _) = onboard(&app, &admin, PASSWORD).await;
    let page = jar.get("/ui/settings").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"save-settings\""), "{}", page.body);
    assert_eq!(by_id(&page.body, "your-ip").as_deref(), Some("127.0.0.1"));
    let before = app.admin.workspace().await.unwrap().settings;

    // Someone changes the rate limit through the API while the form is open: saving other
    // fields keeps it.
    let meanwhile = WorkspacePatch {
        reason: None,
        name: None,
        settings: Some(SettingsPatch {
            default_rate_limit_per_minute: Some(before.default_rate_limit_per_minute + 7),
            ..SettingsPatch::default()
        }),
    };
    app.admin.update_workspace(&meanwhile).await.unwrap();

    let mut form = settings_form(&page);
    set(&mut form, "ip_allowlist", "127.0.0.0/8, 203.0.113.5");
    set(&mut form, "require_2fa", "on");
    let saved = jar.post_owned("/ui/settings", &form).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    assert!(saved.body.contains("Settings saved."), "{}", saved.body);
    let after = app.admin.workspace().await.unwrap().settings;
    assert!(after.require_2fa);
    assert_eq!(
        after.ip_allowlist.entries(),
        ["127.0.0.0/8".to_owned(), "203.0.113.5/32".to_owned()]
    );
    assert_eq!(
        after.default_rate_limit_per_minute,
        before.default_rate_limit_per_minute + 7,
        "a field the person did not change is not sent"
    );
    assert_eq!(after.expiry_warning_days, before.expiry_warning_days);
    let updates = api_events(&app, Some("workspace.updated")).await;
    let event = updates.last().unwrap();
    assert_eq!(event.actor.kind, ActorKind::User);
    assert_eq!(event.actor.user_id, Some(admin.id));
    assert_eq!(event.actor.token_id, None);
    assert_eq!(event.ip.as_deref(), Some("127.0.0.1"));

    // Sending the form unchanged changes nothing and writes no event.
    let page = jar.get("/ui/settings").await;
    let same = jar.post_owned("/ui/settings", &settings_form(&page)).await;
    assert_eq!(same.status, 200, "{}", same.body);
    assert!(same.body.contains("Nothing changed."), "{}", same.body);
    assert_eq!(
        api_events(&app, Some("workspace.updated")).await.len(),
        updates.len()
    );

    // An allowlist without the person's own address is refused, next to the field, with a
    // warning; nothing changes.
    let mut form = settings_form(&page);
    set(&mut form, "ip_allowlist", "203.0.113.5");
    set(&mut form, "expiry_warning_days", "3");
    let refused = jar.post_owned("/ui/settings", &form).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    let error = by_id(&refused.body, "ip_allowlist-error").unwrap();
    assert!(error.contains("allowlist"), "{error}");
    assert!(
        refused.body.contains("id=\"lockout-warning\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(">203.0.113.5</textarea>"));
    assert_eq!(app.admin.workspace().await.unwrap().settings, after);

    // A bad entry is refused by the operation, naming the field.
    let mut form = settings_form(&page);
    set(&mut form, "internal_networks", "10.0.0.0/8, not-an-ip");
    let bad = jar.post_owned("/ui/settings", &form).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(by_id(&bad.body, "internal_networks-error").is_some());
    let mut form = settings_form(&page);
    set(&mut form, "token_max_lifetime_days", "ninety");
    let bad = jar.post_owned("/ui/settings", &form).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(by_id(&bad.body, "token_max_lifetime_days-error").is_some());
    assert_eq!(app.admin.workspace().await.unwrap().settings, after);

    // A blank lifetime clears it, numbers are set; the default limit may count per user.
    let mut form = settings_form(&page);
    set(&mut form, "token_max_lifetime_days", "90");
    set(&mut form, "expiry_warning_days", "5");
    set(&mut form, "default_rate_limit_per", "user");
    let ok = jar.post_owned("/ui/settings", &form).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let s = app.admin.workspace().await.unwrap().settings;
    assert_eq!(
        (s.token_max_lifetime_days, s.expiry_warning_days),
        (Some(90), 5)
    );
    assert_eq!(s.default_rate_limit_per, keyward_core::RateLimitPer::User);
    let shown = jar.get("/ui/settings").await;
    assert!(
        shown.body.contains("<option value=\"user\" selected>"),
        "{}",
        shown.body
    );
    let page = jar.get("/ui/settings").await;
    let mut form = settings_form(&page);
    set(&mut form, "token_max_lifetime_days", "");
    jar.post_owned("/ui/settings", &form).await;
    let s = app.admin.workspace().await.unwrap().settings;
    assert_eq!(s.token_max_lifetime_days, None);

    // keyward.workspace:read alone: the values, no form, and a POST is refused.
    let viewer = person(&app, "viewer@example.com", &["keyward.workspace:read"]).await;
    let (mut jar, _, _) = onboard(&app, &viewer, PASSWORD).await;
    let page = jar.get("/ui/settings").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("203.0.113.5"), "{}", page.body);
    assert_eq!(by_id(&page.body, "require_2fa").as_deref(), Some("yes"));
    assert!(!page.body.contains("id=\"save-settings\""), "{}", page.body);
    assert!(!page.body.contains("action=\"/ui/settings\""));
    let post = jar
        .post(
            "/ui/settings",
            &[
                ("csrf", &page.csrf()),
                ("ip_allowlist", ""),
                ("was_ip_allowlist", "127.0.0.0/8, 203.0.113.5"),
            ],
        )
        .await;
    assert_eq!(post.status, 403, "{}", post.body);
    assert_eq!(app.admin.workspace().await.unwrap().settings, s);

    // Without keyward.workspace:read: no section, no page.
    let nobody = person(&app, "nobody@example.com", &["keyward.tokens:read"]).await;
    let (mut jar, _, _) = onboard(&app, &nobody, PASSWORD).await;
    assert!(!jar.get("/ui").await.body.contains("href=\"/ui/settings\""));
    assert_eq!(jar.get("/ui/settings").await.status, 403);
}
both_backends!(security_settings_change_the_workspace);

/// Waits until the usage pipeline has accounted for `n` records (a condition; the bound only
/// keeps a broken pipeline from hanging the suite).
async fn usage_settled(app: &TestApp, n: u64) {
    let c = app.state.usage.counters();
    for _ in 0..6_000 {
        if c.written.load(Ordering::SeqCst) + c.dropped.load(Ordering::SeqCst) >= n {
            assert_eq!(c.dropped.load(Ordering::SeqCst), 0);
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("the usage pipeline did not account for {n} records");
}

async fn token_activity_shows_usage_and_events(app: TestApp) {
    let ops = person(
        &app,
        "ops@example.com",
        &[
            "keyward.audit:read",
            "keyward.workspace:*",
            "keyward.tokens:*",
        ],
    )
    .await;
    let (mut jar, _, _) = onboard(&app, &ops, PASSWORD).await;
    app.catalogue(&["orders:read", "orders:write"]).await;
    let role = app
        .api_role("orders", Scope::Workspace, &["orders:read"])
        .await;
    let svc = app.service_user("erp", Some(role.id)).await;
    let created = app.token_for(&svc).await;
    let id = created.token.id;

    let fresh = jar.get(&format!("/ui/tokens/{id}/activity")).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(by_id(&fresh.body, "last-used").as_deref(), Some("never"));
    assert_eq!(by_id(&fresh.body, "usage-total").as_deref(), Some("0"));

    for _ in 0..3 {
        assert!(app.verify(&created.secret, &["orders:read"]).await.valid);
    }
    let denied = app.verify(&created.secret, &["orders:write"]).await;
    assert!(!denied.valid);
    let named = app
        .admin
        .verify(&VerifyRequest {
            token: created.secret.as_str().into(),
            permissions: Some(vec!["orders:read".into()]),
            method: Some("GET".into()),
            path: Some("/orders/42".into()),
            ..VerifyRequest::default()
        })
        .await
        .unwrap();
    assert!(named.valid);
    usage_settled(&app, 5).await;

    let page = jar.get(&format!("/ui/tokens/{id}/activity")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(by_id(&page.body, "usage-total").as_deref(), Some("5"));
    assert_eq!(by_id(&page.body, "last-ip").as_deref(), Some("127.0.0.1"));
    assert!(page.body.contains("GET /orders/42"), "{}", page.body);
    assert!(page.body.contains("<svg"), "{}", page.body);
    assert!(page.body.contains("<rect"), "{}", page.body);
    assert!(
        !page.body.contains("style="),
        "no inline style under the CSP"
    );
    let codes = page.body.split("id=\"usage-codes\"").nth(1).unwrap();
    assert!(
        codes.contains("<code>VALID</code></td><td>4</td>"),
        "{codes}"
    );
    assert!(codes.contains("</code></td><td>1</td>"), "{codes}");
    let ips = page.body.split("id=\"usage-ips\"").nth(1).unwrap();
    assert!(ips.contains("<td>127.0.0.1</td><td>5</td>"), "{ips}");
    // The 24 hourly bars, and the token's own audit events.
    assert_eq!(
        page.body.matches("<title>").count(),
        1 + 24,
        "the page's and 24 bars'"
    );
    assert!(page.body.contains("token.created"), "{}", page.body);

    let month = jar
        .get(&format!("/ui/tokens/{id}/activity?range=30d"))
        .await;
    assert_eq!(month.status, 200, "{}", month.body);
    assert_eq!(by_id(&month.body, "usage-total").as_deref(), Some("5"));
    assert!(month.body.contains("<svg"));

    // The same numbers as the API's report.
    let report = app
        .admin
        .token_usage(id, &keyward_client::UsageParams::default())
        .await
        .unwrap();
    assert_eq!(report.total, 5);

    // A person who may not see tokens is refused.
    let other = person(&app, "other@example.com", &["keyward.audit:read"]).await;
    let (mut jar, _, _) = onboard(&app, &other, PASSWORD).await;
    assert_eq!(
        jar.get(&format!("/ui/tokens/{id}/activity")).await.status,
        403
    );
    assert_eq!(
        jar.get("/ui/tokens/tok_nonsense/activity").await.status,
        404
    );
}
both_backends!(token_activity_shows_usage_and_events);
