//! The dashboard in a real headless Chromium, driven through ChromeDriver (WebDriver) with
//! fantoccini: a person accepts an invitation, sets a password, enrols TOTP from the page's
//! key, keeps the recovery codes, creates a token ("copy it now"), saves it, sees it work,
//! revokes it, signs out and signs in again with the second factor. Screenshots of each step
//! go to `target/screenshots/` (or `KEYWARD_SCREENSHOTS_DIR`).
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
use keyward_core::model::Scope;
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

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn fill(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(value)
        .await
        .unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_walks_the_dashboard_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    app.catalogue(&["orders:read", "orders:write"]).await;
    let ada = person(&app, "ada@example.com", &["*", "keyward.*"]).await;
    let api = app
        .api_role("billing", Scope::User, &["orders:read", "orders:write"])
        .await;
    let svc = app.service_user("billing-sync", Some(api.id)).await;
    let c = browser(&driver).await;

    // The invitation link: choose a password.
    c.goto(&format!("{}{}", app.url, invitation_path(&app, &ada).await))
        .await
        .unwrap();
    shot(&c, "01-invitation").await;
    fill(&c, "#password", PASSWORD).await;
    fill(&c, "#confirm", PASSWORD).await;
    click(&c, "form.card button[type=submit]").await;

    // Enrol TOTP with the key shown next to the QR code.
    assert_eq!(path(&c).await, "/ui/account/2fa");
    let qr = c.find(Locator::Css("figure.qr img")).await.unwrap();
    assert!(qr.is_displayed().await.unwrap(), "the QR code is shown");
    let secret = text(&c, "#totp-secret").await;
    shot(&c, "02-enrol-2fa").await;
    fill(&c, "#code", &code(&app, &secret)).await;
    click(&c, "form.card button[type=submit]").await;
    let codes = c
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once");
    shot(&c, "03-recovery-codes").await;
    c.find(Locator::LinkText("Continue to the dashboard"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(path(&c).await, "/ui");

    // A token for the integration user: copy it now, then save it.
    click(&c, "a[href='/ui/tokens']").await;
    click(&c, "#create-token").await;
    fill(&c, "#name", "billing sync").await;
    c.find(Locator::Css("#owner"))
        .await
        .unwrap()
        .select_by_value(&svc.id.to_string())
        .await
        .unwrap();
    click(&c, "input[name=permissions][value='orders:read']").await;
    shot(&c, "04-new-token").await;
    click(&c, "#generate").await;
    let token = text(&c, "#token-secret").await;
    assert!(token.starts_with("kw_"), "{token}");
    shot(&c, "05-copy-token-now").await;
    assert!(
        !app.verify(&token, &["orders:read"]).await.valid,
        "pending until saved"
    );
    click(&c, "#save-token").await;
    assert_eq!(text(&c, "#token-status").await, "active");
    let ok = app.verify(&token, &["orders:read"]).await;
    assert!(ok.valid, "{ok:?}");
    assert!(
        !app.verify(&token, &["orders:write"]).await.valid,
        "only what was ticked"
    );

    // Revoke: the confirmation is required, then the next verify is refused.
    click(&c, "#confirm-revoke").await;
    click(&c, "#revoke").await;
    assert_eq!(text(&c, "#token-status").await, "revoked");
    shot(&c, "06-token-revoked").await;
    assert_eq!(
        app.verify(&token, &["orders:read"]).await.code,
        Code::Revoked
    );

    // Sign out, and in again with the password and a fresh code.
    click(&c, "form[action='/ui/sign-out'] button").await;
    assert_eq!(path(&c).await, "/ui/sign-in");
    fill(&c, "#email", "ada@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    shot(&c, "07-sign-in").await;
    click(&c, "form.card button[type=submit]").await;
    assert_eq!(path(&c).await, "/ui/sign-in/code");
    app.clock.advance(Span::seconds(30));
    fill(&c, "#code", &code(&app, &secret)).await;
    click(&c, "form.card button[type=submit]").await;
    assert_eq!(path(&c).await, "/ui");
    assert!(text(&c, "main h1").await.contains("Overview"));
    shot(&c, "08-overview").await;
    c.close().await.unwrap();
}
