//! The dashboard in a real headless Chromium, driven through ChromeDriver (WebDriver) with
//! fantoccini: a person accepts an invitation, sets a password, enrols TOTP from the page's
//! key, keeps the recovery codes; creates the "Cart Editor" role in the permission matrix, a
//! service user holding it and a token for it ("copy it now", then "Save token"), sees it
//! verify and appear nowhere afterwards, looks at its activity, revokes it, reads the audit
//! log and the security settings, signs out and in again with the second factor; and a person
//! without `keyward.tokens:create` finds no way to create a token and is refused when posting
//! the form anyway. And two-person approval: a Security Manager asks for a wider workspace
//! allowlist, a Security Admin finds it in the approvals inbox with its diff and approves it.
//! Screenshots of each step go to `target/screenshots/` (or `KEYWARD_SCREENSHOTS_DIR`).
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium`,
//! `chromium-driver`; `.ci/run` installs them). Without them the test says so loudly and
//! passes on a laptop, and fails under `CI=true`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Duration as Span;
use fantoccini::{Client, ClientBuilder, Locator};
use keyward_core::Code;
use serde_json::json;

use crate::people::browserless::{code, invitation_path, person};
use crate::support::{Backend, TestApp};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "a long and private passphrase";

/// A ChromeDriver of this test's own, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn driver() -> Option<Driver> {
    if !(std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(DRIVER).exists()) {
        let why =
            format!("{CHROMIUM} or {DRIVER} is missing (apt-get install chromium chromium-driver)");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the browser test: {why}"
        );
        eprintln!("\n*** SKIPPED: the real-browser dashboard test: {why} ***\n");
        return None;
    }
    let port = free_port();
    let driver = Driver {
        child: Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on port {port}");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

fn shots() -> PathBuf {
    let dir = std::env::var_os("KEYWARD_SCREENSHOTS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// The element `css` once the current page has it.
async fn element(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
}

async fn text(c: &Client, css: &str) -> String {
    element(c, css).await.text().await.unwrap()
}

async fn fill(c: &Client, css: &str, value: &str) {
    element(c, css).await.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    element(c, css).await.click().await.unwrap();
}

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

/// Waits (a click's navigation is not awaited) until the page's path starts with `prefix`;
/// returns the path.
async fn at(c: &Client, prefix: &str) -> String {
    for _ in 0..100 {
        let now = path(c).await;
        let ready = c
            .execute("return document.readyState", vec![])
            .await
            .unwrap();
        if now.starts_with(prefix) && ready == json!("complete") {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "still at {} instead of {prefix}: {}",
        path(c).await,
        c.source().await.unwrap()
    );
}

/// Waits until the element `css` says `expected`.
async fn shows(c: &Client, css: &str, expected: &str) {
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if e.text().await.ok().as_deref() == Some(expected) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never said {expected}: {}", c.source().await.unwrap());
}

async fn role_id(app: &TestApp, name: &str) -> String {
    let roles = app.admin.list_roles(&Default::default()).await.unwrap();
    roles
        .items
        .iter()
        .find(|r| r.name == name)
        .map(|r| r.id.to_string())
        .unwrap_or_else(|| panic!("no role {name}"))
}

/// Signs up through an invitation link: password, then TOTP enrolment (or "Not now").
async fn sign_up(c: &Client, app: &TestApp, link: &str, enrol: bool) -> Option<String> {
    c.goto(&format!("{}{link}", app.url)).await.unwrap();
    fill(c, "#password", PASSWORD).await;
    fill(c, "#confirm", PASSWORD).await;
    click(c, "form.card button[type=submit]").await;
    at(c, "/ui/account/2fa").await;
    if !enrol {
        click(c, "form[action='/ui/account/2fa/skip'] button").await;
        at(c, "/ui").await;
        return None;
    }
    let qr = element(c, "figure.qr img").await;
    assert!(qr.is_displayed().await.unwrap(), "the QR code is shown");
    let secret = text(c, "#totp-secret").await;
    shot(c, "02-enrol-2fa").await;
    fill(c, "#code", &code(app, &secret)).await;
    click(c, "form.card button[type=submit]").await;
    let codes = c
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once");
    shot(c, "03-recovery-codes").await;
    c.find(Locator::LinkText("Continue to the dashboard"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    at(c, "/ui").await;
    Some(secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_walks_the_dashboard_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    app.catalogue(&["cart:read", "cart:write"]).await;
    let ada = person(&app, "ada@example.com", &["*", "keyward.*"]).await;
    let c = browser(&driver).await;

    // The invitation link: a password, then TOTP from the key shown next to the QR code.
    c.goto(&format!("{}{}", app.url, invitation_path(&app, &ada).await))
        .await
        .unwrap();
    shot(&c, "01-invitation").await;
    let link = invitation_path(&app, &ada).await;
    let secret = sign_up(&c, &app, &link, true).await.unwrap();

    // The "Cart Editor" role with only cart:write, in the permission matrix.
    click(&c, "a[href='/ui/roles']").await;
    click(&c, "#create-role").await;
    fill(&c, "#name", "Cart Editor").await;
    click(&c, "#kind-api").await;
    click(&c, "#scope-user").await;
    click(&c, "input[name=permissions][value='cart:write']").await;
    shot(&c, "04-role-matrix").await;
    click(&c, "#save-role").await;
    at(&c, "/ui/roles/rol_").await;
    let roles = app.admin.list_roles(&Default::default()).await.unwrap();
    let editor = roles
        .items
        .iter()
        .find(|r| r.name == "Cart Editor")
        .unwrap();
    let granted: Vec<_> = editor.permissions.iter().map(|p| p.as_str()).collect();
    assert_eq!(granted, ["cart:write"]);

    // A service user holding it, through the users form.
    click(&c, "a[href='/ui/users']").await;
    click(&c, "#create-user").await;
    click(&c, "#kind-service").await;
    fill(&c, "#name", "shop-sync").await;
    c.find(Locator::Css("#role"))
        .await
        .unwrap()
        .select_by_value(&role_id(&app, "Cart Editor").await)
        .await
        .unwrap();
    click(&c, "#create").await;
    let user_page = at(&c, "/ui/users/usr_").await;
    shot(&c, "05-user").await;

    // Its token: "Generate API token" preselects the owner; copy it now, then save it.
    let generate = element(&c, "#generate-token").await;
    let href = generate.attr("href").await.unwrap().unwrap();
    c.goto(&format!("{}{href}", app.url)).await.unwrap();
    fill(&c, "#name", "shop-sync prod").await;
    shot(&c, "06-new-token").await;
    click(&c, "#generate").await;
    at(&c, "/ui/tokens/new").await;
    let token = text(&c, "#token-secret").await;
    assert!(token.starts_with("kw_"), "{token}");
    shot(&c, "07-copy-token-now").await;
    assert!(
        !app.verify(&token, &["cart:write"]).await.valid,
        "pending until saved"
    );
    click(&c, "#save-token").await;
    shows(&c, "#token-status", "active").await;
    let activity = element(&c, "#token-activity")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let token_page = activity.trim_end_matches("/activity").to_owned();
    let ok = app.verify(&token, &["cart:write"]).await;
    assert!(ok.valid, "{ok:?}");
    assert_eq!(
        app.verify(&token, &["cart:read"]).await.code,
        Code::InsufficientPermissions
    );
    // Shown nowhere after the dialog: not on the token's page, the list or the user's page.
    for page in [token_page.as_str(), "/ui/tokens", user_page.as_str()] {
        c.goto(&format!("{}{page}", app.url)).await.unwrap();
        assert!(!c.source().await.unwrap().contains(&token), "{page}");
    }

    // Its activity, then revoke it (confirmation required): the next verify is refused.
    c.goto(&format!("{}{token_page}/activity", app.url))
        .await
        .unwrap();
    assert!(c.find(Locator::Css("svg")).await.is_ok(), "the usage chart");
    shot(&c, "08-token-activity").await;
    c.goto(&format!("{}{token_page}", app.url)).await.unwrap();
    click(&c, "#confirm-revoke").await;
    click(&c, "#revoke").await;
    shows(&c, "#token-status", "revoked").await;
    shot(&c, "09-token-revoked").await;
    assert_eq!(
        app.verify(&token, &["cart:write"]).await.code,
        Code::Revoked
    );

    // The audit log and the security settings.
    click(&c, "a[href='/ui/audit']").await;
    at(&c, "/ui/audit").await;
    assert!(c.source().await.unwrap().contains("token.revoked"));
    shot(&c, "10-audit-log").await;
    click(&c, "a[href='/ui/settings']").await;
    at(&c, "/ui/settings").await;
    shot(&c, "11-security-settings").await;

    // Sign out, and in again with the password and a fresh code.
    click(&c, "form[action='/ui/sign-out'] button").await;
    at(&c, "/ui/sign-in").await;
    fill(&c, "#email", "ada@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    shot(&c, "12-sign-in").await;
    click(&c, "form.card button[type=submit]").await;
    at(&c, "/ui/sign-in/code").await;
    app.clock.advance(Span::seconds(30));
    fill(&c, "#code", &code(&app, &secret)).await;
    click(&c, "form.card button[type=submit]").await;
    at(&c, "/ui").await;
    assert!(text(&c, "main h1").await.contains("Overview"));
    click(&c, "form[action='/ui/sign-out'] button").await;

    // A person without keyward.tokens:create sees no way to create a token, and a form
    // posted directly from their session is refused.
    let viewer = person(&app, "viewer@example.com", &["keyward.tokens:read"]).await;
    let link = invitation_path(&app, &viewer).await;
    sign_up(&c, &app, &link, false).await;
    c.goto(&format!("{}/ui/tokens", app.url)).await.unwrap();
    at(&c, "/ui/tokens").await;
    let source = c.source().await.unwrap();
    assert!(!source.contains("/ui/tokens/new"), "{source}");
    assert!(c.find(Locator::Css("#create-token")).await.is_err());
    let csrf = element(&c, "input[name=csrf]")
        .await
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let owner = viewer.id.to_string();
    // (The page's CSP forbids script requests, so the form is built and sent as a browser
    // form, with the session's own CSRF token: only the permission can refuse it.)
    c.execute(
        "const f = document.createElement('form'); f.method = 'post'; \
         f.action = '/ui/tokens/new'; \
         const v = {csrf: arguments[0], name: 'sneaky', owner: arguments[1]}; \
         for (const k in v) { const i = document.createElement('input'); i.type = 'hidden'; \
           i.name = k; i.value = v[k]; f.appendChild(i); } \
         document.body.appendChild(f); f.submit();",
        vec![json!(csrf), json!(owner)],
    )
    .await
    .unwrap();
    shows(
        &c,
        "main p",
        "You do not have the permission this needs (keyward.tokens:create).",
    )
    .await;
    let all = app.admin.list_tokens(&Default::default()).await.unwrap();
    assert!(all.items.iter().all(|t| t.name != "sneaky"));
    c.close().await.unwrap();
}

/// `PATCH /v1/workspace` with `secret`; answers the status and body.
async fn patch_workspace(
    app: &TestApp,
    secret: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let res = reqwest::Client::new()
        .patch(format!("{}/v1/workspace", app.url))
        .bearer_auth(secret)
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_security_admin_approves_an_allowlist_change_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let on = json!({"settings": {"require_approval": true, "ip_allowlist": "127.0.0.1"}});
    let (status, ws) = patch_workspace(&app, &app.admin_secret, on).await;
    assert_eq!(status, 200, "{ws}");

    // The Security Manager asks, through the API, for two more addresses.
    let maria =
        crate::change_requests::person(&app, "maria", "Security Manager", &["keyward.workspace:*"])
            .await;
    let ask = json!({
        "settings": {"ip_allowlist": "127.0.0.1, 203.0.113.5, 203.0.113.6"},
        "reason": "new warehouse",
    });
    let (status, request) = patch_workspace(&app, &maria.secret, ask).await;
    assert_eq!(status, 202, "{request}");
    let id = request["id"].as_str().unwrap().to_owned();

    // A Security Admin signs in and opens Approvals: the request with its diff and code.
    let admin_role = role_id(&app, "Security Admin").await.parse().unwrap();
    let sam = app
        .admin
        .create_user(&keyward_core::api::CreateUser {
            kind: keyward_core::model::UserKind::Human,
            name: "sam".into(),
            email: Some("sam@example.com".into()),
            role_id: Some(admin_role),
        })
        .await
        .unwrap();
    let c = browser(&driver).await;
    let link = invitation_path(&app, &sam).await;
    sign_up(&c, &app, &link, false).await;
    click(&c, "a[href='/ui/approvals']").await;
    at(&c, "/ui/approvals").await;
    let card = format!("#cr-{id}");
    let new = text(&c, &format!("{card} tr.diff-ip_allowlist td.new")).await;
    assert!(
        new.contains("203.0.113.5") && new.contains("203.0.113.6"),
        "{new}"
    );
    let old = text(&c, &format!("{card} tr.diff-ip_allowlist td.old")).await;
    assert!(
        old.contains("127.0.0.1") && !old.contains("203.0.113.5"),
        "{old}"
    );
    assert_eq!(text(&c, &format!("{card} .requester")).await, "maria");
    assert_eq!(text(&c, &format!("{card} .reason")).await, "new warehouse");
    assert_eq!(text(&c, &format!("{card} .approvals")).await, "0 of 1");
    assert!(!text(&c, &format!("{card} .approval-code")).await.is_empty());
    shot(&c, "13-approvals-inbox").await;

    // Approve: the allowlist holds the addresses and the request is applied.
    fill(
        &c,
        &format!("#approve-comment-{id}"),
        "checked with the warehouse",
    )
    .await;
    click(&c, &format!("{card} button.approve")).await;
    shows(&c, "p.flash", "Approved and applied.").await;
    shows(&c, &format!("#decided {card} td.state"), "applied").await;
    shot(&c, "14-approvals-decided").await;
    let ws = app.admin.workspace().await.unwrap();
    let entries = ws.settings.ip_allowlist.entries().join(", ");
    assert!(
        entries.contains("203.0.113.5") && entries.contains("203.0.113.6"),
        "{entries}"
    );
    let res = reqwest::Client::new()
        .get(format!("{}/v1/change-requests/{id}", app.url))
        .bearer_auth(&maria.secret)
        .send()
        .await
        .unwrap();
    let done: serde_json::Value = res.json().await.unwrap();
    assert_eq!(done["state"], "applied", "{done}");
    assert_eq!(done["approvals"][0]["user_id"], sam.id.to_string());
    assert_eq!(
        done["approvals"][0]["comment"],
        "checked with the warehouse"
    );
    c.close().await.unwrap();
}
