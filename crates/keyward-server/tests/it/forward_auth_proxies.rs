//! keyward's forward-auth endpoint behind real proxies, configured with the files shipped in
//! `docs/proxies/` (placeholders substituted): nginx (`auth_request`) and Caddy
//! (`forward_auth`) run as child processes on loopback ports in front of an upstream that
//! echoes the headers it received. A missing proxy binary skips its tests loudly, or fails
//! them under `CI=true`.
//!
//! Traefik and Envoy have no Debian packages: their request shapes, as their documentation
//! and source describe them, are sent to `/auth` directly.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::{HeaderMap, Method, Uri};
use keyward_core::api::{CreatedToken, IpListInput};
use keyward_core::model::Scope;
use keyward_gate::routes::RouteConfig;
use reqwest::StatusCode;

use crate::support::{random_hex, token_request, Backend, TestApp};

const NGINX: &str = "/usr/sbin/nginx";
const CADDY: &str = "/usr/bin/caddy";

// ---------------------------------------------------------------------------------------------
// The harness: an echoing upstream, the proxies as child processes.

/// What the upstream received: method, path and query, and every header (lower-case name →
/// all its values, in order).
#[derive(Debug, serde::Deserialize)]
struct Echoed {
    method: String,
    uri: String,
    headers: BTreeMap<String, Vec<String>>,
    body: String,
}

impl Echoed {
    fn one(&self, name: &str) -> Option<&str> {
        match self.headers.get(name).map(Vec::as_slice) {
            None | Some([]) => None,
            Some([v]) => Some(v.as_str()),
            Some(many) => panic!("the upstream got {name} {} times: {many:?}", many.len()),
        }
    }
}

/// An upstream on `127.0.0.1:0` answering every request with what it received, as JSON.
async fn upstream() -> String {
    let app = axum::Router::new().fallback(
        |method: Method, uri: Uri, headers: HeaderMap, body: String| async move {
            let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (name, value) in &headers {
                map.entry(name.as_str().to_owned())
                    .or_default()
                    .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
            }
            axum::Json(serde_json::json!({
                "method": method.as_str(),
                "uri": uri.to_string(),
                "headers": map,
                "body": body,
            }))
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A shipped proxy configuration, `docs/proxies/<name>`.
fn shipped(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/proxies")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether the proxy binary is there; if not, fails under `CI=true`, else says so loudly on
/// the process's stderr (libtest captures only the print macros) and the test returns.
fn have(binary: &str) -> bool {
    if Path::new(binary).exists() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{binary} is required under CI=true (.ci/run installs it)");
    }
    let thread = std::thread::current();
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED ({binary} is not installed): `{}` did not run",
        thread.name().unwrap_or("a test")
    );
    false
}

/// A proxy process with its own scratch directory; killed (and the directory removed) on drop.
struct Proxy {
    name: &'static str,
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:<port>`
    url: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Proxy {
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keyward-{name}-{}", random_hex()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// What the proxy wrote to its logs so far (for failure messages).
    fn logs(&self) -> String {
        let mut out = String::new();
        for file in ["stdout.log", "stderr.log", "error.log"] {
            if let Ok(text) = std::fs::read_to_string(self.dir.join(file)) {
                out.push_str(&format!("--- {} {file}\n{text}", self.name));
            }
        }
        out
    }

    fn spawn(name: &'static str, dir: PathBuf, port: u16, command: &mut Command) -> Proxy {
        let stdout = std::fs::File::create(dir.join("stdout.log")).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proxy {
            name,
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits until the proxy accepts connections (it fails the test if the process exits).
    /// `Err` when the port was taken in the meantime (by another test's `127.0.0.1:0`).
    async fn ready(mut self) -> Result<Proxy, String> {
        let addr = self.url.trim_start_matches("http://").to_owned();
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                let logs = self.logs();
                if logs.contains("in use") {
                    return Err(logs);
                }
                panic!("{} exited with {status}:\n{logs}", self.name);
            }
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                return Ok(self);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} did not listen on {addr} within 10 s:\n{}",
            self.name,
            self.logs()
        );
    }

    /// nginx with `docs/proxies/nginx.conf` inside a minimal main configuration whose logs,
    /// pid file and temporary paths are all in the scratch directory.
    /// `secret`: what replaces the `KEYWARD_PROXY_SECRET` placeholder (empty: none is sent).
    async fn nginx(keyward: &str, upstream: &str, secret: &str) -> Proxy {
        retry_port(async || Self::nginx_on(keyward, upstream, secret).await).await
    }

    async fn nginx_on(keyward: &str, upstream: &str, secret: &str) -> Result<Proxy, String> {
        let dir = Self::scratch("nginx");
        let port = free_port();
        let server = shipped("nginx.conf")
            .replace("LISTEN_ADDR", &format!("127.0.0.1:{port}"))
            .replace("KEYWARD_ADDR", keyward)
            .replace("UPSTREAM_ADDR", upstream)
            .replace("KEYWARD_PROXY_SECRET", secret);
        std::fs::write(dir.join("keyward.conf"), server).unwrap();
        let d = dir.display();
        let main = format!(
            "worker_processes 1;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
               access_log {d}/access.log;\n\
               client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               include {d}/keyward.conf;\n\
             }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        // One process, no master: killing it leaves no worker behind (a killed master's
        // workers would keep running, and keep the port).
        let globals = format!("daemon off; master_process off; pid {d}/nginx.pid;");
        let mut command = Command::new(NGINX);
        command
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-g")
            .arg(globals);
        Self::spawn("nginx", dir, port, &mut command).ready().await
    }

    /// Caddy with `docs/proxies/Caddyfile` (its admin endpoint is off), HOME and the XDG
    /// directories in the scratch directory.
    /// `secret`: when given, the shipped proxy-secret line is uncommented and Caddy gets the
    /// secret in its environment.
    async fn caddy(keyward: &str, upstream: &str, secret: Option<&str>) -> Proxy {
        retry_port(async || Self::caddy_on(keyward, upstream, secret).await).await
    }

    async fn caddy_on(
        keyward: &str,
        upstream: &str,
        secret: Option<&str>,
    ) -> Result<Proxy, String> {
        let dir = Self::scratch("caddy");
        let port = free_port();
        let mut caddyfile = shipped("Caddyfile")
            .replace("LISTEN_ADDR", &format!("127.0.0.1:{port}"))
            .replace("KEYWARD_ADDR", keyward)
            .replace("UPSTREAM_ADDR", upstream);
        if secret.is_some() {
            let line = "# header_up X-Keyward-Proxy-Secret {env.KEYWARD_PROXY_SECRET}";
            assert!(
                caddyfile.contains(line),
                "the shipped Caddyfile has the secret line"
            );
            caddyfile = caddyfile.replace(line, &line[2..]);
        }
        assert!(
            caddyfile.contains("admin off"),
            "the shipped Caddyfile turns admin off"
        );
        std::fs::write(dir.join("Caddyfile"), caddyfile).unwrap();
        let mut command = Command::new(CADDY);
        command
            .arg("run")
            .arg("--config")
            .arg(dir.join("Caddyfile"))
            .arg("--adapter")
            .arg("caddyfile")
            .env("HOME", &dir)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("KEYWARD_PROXY_SECRET", secret.unwrap_or_default());
        Self::spawn("caddy", dir, port, &mut command).ready().await
    }
}

/// Starts a proxy, on a fresh port again if the one picked was taken before it bound it.
async fn retry_port(start: impl AsyncFn() -> Result<Proxy, String>) -> Proxy {
    let mut last = String::new();
    for _ in 0..3 {
        match start().await {
            Ok(proxy) => return proxy,
            Err(logs) => last = logs,
        }
    }
    panic!("the proxy found its port taken three times:\n{last}");
}

// ---------------------------------------------------------------------------------------------
// The keyward side: the app, its routes and tokens.

/// keyward on SQLite trusting 127.0.0.1 as a proxy, with an edge route table.
async fn keyward() -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |c| {
        c.policy.trusted_proxies = vec!["127.0.0.1".into()];
        let route = |route: &str, permissions: &[&str], anonymous: bool| RouteConfig {
            route: route.into(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            anonymous,
        };
        c.edge.routes = vec![
            route("GET /orders/{id}", &["orders:read"], false),
            route("POST /orders", &["orders:write"], false),
            route("PUT /orders/{id}", &["orders:read"], false),
            route("GET /public/**", &[], true),
        ];
    })
    .await
    .expect("SQLite always starts")
}

/// The tokens the scenarios use, all for one service user holding a reader role.
struct Tokens {
    /// The role the owner holds (and the tokens inherit).
    role_id: String,
    good: CreatedToken,
    revoked: CreatedToken,
    wrong_ip: CreatedToken,
    limited: CreatedToken,
}

async fn tokens(app: &TestApp) -> Tokens {
    app.catalogue(&["orders:read", "orders:write"]).await;
    let role = app
        .api_role("Order reader", Scope::Workspace, &["orders:read"])
        .await;
    let user = app.service_user("shop-frontend", Some(role.id)).await;
    let good = app
        .admin
        .create_token(&keyward_core::api::CreateToken {
            name: "with metadata".into(),
            metadata: Some(metadata()),
            ..token_request(&user)
        })
        .await
        .unwrap();
    let revoked = app.token_for(&user).await;
    let wrong_ip = app
        .admin
        .create_token(&keyward_core::api::CreateToken {
            name: "only from 10/8".into(),
            ip_allowlist: Some(IpListInput::Text("10.0.0.0/8".into())),
            ..token_request(&user)
        })
        .await
        .unwrap();
    let limited = app
        .admin
        .create_token(&keyward_core::api::CreateToken {
            name: "two a minute".into(),
            rate_limit_per_minute: Some(2),
            ..token_request(&user)
        })
        .await
        .unwrap();
    Tokens {
        role_id: role.id.to_string(),
        good,
        revoked,
        wrong_ip,
        limited,
    }
}

/// The good token's metadata: quotes, commas and a non-ASCII letter to carry through a header.
fn metadata() -> serde_json::Value {
    serde_json::json!({"team": "Zürich", "tier": "gold", "shards": [1, 2]})
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 1]))
        .build()
        .unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

fn code(r: &reqwest::Response) -> Option<&str> {
    header(r, "x-keyward-code")
}

/// The one `WWW-Authenticate` challenge (a proxy must not send keyward's twice).
fn challenge(r: &reqwest::Response) -> Option<&str> {
    let all: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
    assert!(all.len() <= 1, "{} challenges: {all:?}", all.len());
    header(r, "www-authenticate")
}

// ---------------------------------------------------------------------------------------------
// The scenarios, the same through each real proxy.

async fn through(proxy: &Proxy, app: &TestApp, t: &Tokens) {
    let http = http();
    let at = |path: &str| format!("{}{path}", proxy.url);
    let name = proxy.name;
    let bearer = |c: &CreatedToken| format!("Bearer {}", c.secret);

    // A valid token reaches the upstream with the principal keyward vouched for; the client's
    // own X-Keyward-* do not get through.
    let r = http
        .get(at("/orders/42?expand=lines"))
        .header("authorization", bearer(&t.good))
        .header("x-keyward-user-id", "forged-user")
        .header("x-keyward-token-id", "forged-token")
        .header("x-keyward-anonymous", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{name}: {}", proxy.logs());
    let got: Echoed = r.json().await.unwrap();
    assert_eq!(got.method, "GET");
    assert_eq!(got.uri, "/orders/42?expand=lines");
    let token_id = t.good.token.id.to_string();
    let user_id = t.good.token.owner_id.to_string();
    let workspace_id = t.good.token.workspace_id.to_string();
    assert_eq!(
        got.one("x-keyward-token-id"),
        Some(token_id.as_str()),
        "{name}: {got:?}"
    );
    assert_eq!(
        got.one("x-keyward-user-id"),
        Some(user_id.as_str()),
        "{name}: {got:?}"
    );
    assert_eq!(
        got.one("x-keyward-workspace-id"),
        Some(workspace_id.as_str()),
        "{name}"
    );
    assert_eq!(
        got.one("x-keyward-role-id"),
        Some(t.role_id.as_str()),
        "{name}: {got:?}"
    );
    assert!(
        got.one("x-keyward-permissions")
            .is_some_and(|p| p.split(',').any(|p| p.trim() == "orders:read")),
        "{name}: {got:?}"
    );
    assert!(got.one("x-keyward-scope").is_some(), "{name}: {got:?}");
    let meta: serde_json::Value =
        serde_json::from_str(got.one("x-keyward-metadata").unwrap()).unwrap();
    assert_eq!(meta, metadata(), "{name}");
    assert_eq!(got.one("x-keyward-anonymous"), None, "{name}: {got:?}");
    no_leftovers(name, &got);

    // A request body and its method go to the upstream unchanged; the method is what keyward
    // judged (POST /orders needs orders:write, which the reader lacks).
    let r = http
        .post(at("/orders"))
        .header("authorization", bearer(&t.good))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
    assert_eq!(code(&r), Some("INSUFFICIENT_PERMISSIONS"), "{name}");
    assert_eq!(
        challenge(&r),
        Some(r#"Bearer realm="keyward", error="insufficient_scope", scope="orders:write""#),
        "{name}"
    );
    let r = http
        .put(at("/orders/9"))
        .header("authorization", bearer(&t.good))
        .body("the new order")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{name}");
    let got: Echoed = r.json().await.unwrap();
    assert_eq!(
        (got.method.as_str(), got.body.as_str()),
        ("PUT", "the new order"),
        "{name}"
    );

    // No credential: 401 with the bare challenge.
    let r = http.get(at("/orders/42")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
    assert_eq!(code(&r), Some("MISSING_CREDENTIAL"), "{name}");
    assert_eq!(challenge(&r), Some(r#"Bearer realm="keyward""#), "{name}");

    // A client cannot choose what keyward judges: its own X-Forwarded-Uri / X-Original-URI
    // naming an anonymous route do not get a protected one through.
    let r = http
        .get(at("/orders/42"))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/public/readme")
        .header("x-original-method", "GET")
        .header("x-original-uri", "/public/readme")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");

    // Revoked: 401 with WWW-Authenticate at the client.
    let r = http
        .get(at("/orders/1"))
        .header("authorization", bearer(&t.revoked))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{name}: the token works before it is revoked"
    );
    app.admin.revoke_token(t.revoked.token.id).await.unwrap();
    let r = http
        .get(at("/orders/1"))
        .header("authorization", bearer(&t.revoked))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name}");
    assert_eq!(code(&r), Some("REVOKED"), "{name}");
    assert_eq!(
        challenge(&r),
        Some(r#"Bearer realm="keyward", error="invalid_token""#),
        "{name}"
    );

    // The client's address (127.0.0.1) is outside the token's allowlist: 403.
    let r = http
        .get(at("/orders/1"))
        .header("authorization", bearer(&t.wrong_ip))
        .header("x-forwarded-for", "10.1.2.3")
        .header("x-real-ip", "10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
    assert_eq!(code(&r), Some("IP_NOT_ALLOWED"), "{name}");

    // Two a minute: the third request is a real 429 with Retry-After, through nginx too.
    for n in 1..=2 {
        let r = http
            .get(at("/orders/1"))
            .header("authorization", bearer(&t.limited))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{name}: request {n} of 2");
        let got: Echoed = r.json().await.unwrap();
        assert!(got.one("ratelimit").is_some(), "{name}: {got:?}");
        assert!(got.one("ratelimit-policy").is_some(), "{name}: {got:?}");
    }
    let r = http
        .get(at("/orders/1"))
        .header("authorization", bearer(&t.limited))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "{name}: {}",
        proxy.logs()
    );
    assert_eq!(code(&r), Some("RATE_LIMITED"), "{name}");
    let retry: u64 = header(&r, "retry-after")
        .unwrap_or_else(|| panic!("{name}: no Retry-After"))
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{name}: Retry-After {retry}");
    assert!(header(&r, "ratelimit").is_some(), "{name}");
    assert!(header(&r, "ratelimit-policy").is_some(), "{name}");
    assert!(
        header(&r, "content-type").is_some_and(|c| c.starts_with("application/problem+json")),
        "{name}"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED", "{name}");

    // A route not in the table: 403 even with a valid token.
    let r = http
        .get(at("/admin/everything"))
        .header("authorization", bearer(&t.good))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
    assert_eq!(code(&r), Some("ROUTE_NOT_ALLOWED"), "{name}");

    // An anonymous route passes without a token, and no principal header reaches the
    // upstream, forged ones included.
    let r = http
        .get(at("/public/readme"))
        .header("x-keyward-user-id", "forged-user")
        .header("x-keyward-permissions", "everything:*")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{name}");
    let got: Echoed = r.json().await.unwrap();
    assert_eq!(
        got.one("x-keyward-anonymous"),
        Some("true"),
        "{name}: {got:?}"
    );
    for h in [
        "x-keyward-user-id",
        "x-keyward-token-id",
        "x-keyward-permissions",
        "x-keyward-role-id",
        "x-keyward-workspace-id",
    ] {
        assert_eq!(
            got.one(h),
            None,
            "{name}: {h} reached the upstream: {got:?}"
        );
    }
    no_leftovers(name, &got);
}

/// No header the upstream got is empty or an unexpanded Caddy placeholder.
fn no_leftovers(name: &str, got: &Echoed) {
    for (h, values) in &got.headers {
        for v in values {
            assert!(
                !v.contains("{http."),
                "{name}: {h} reached the upstream as a placeholder: {v}"
            );
            if h.starts_with("x-keyward-") {
                assert!(!v.is_empty(), "{name}: {h} reached the upstream empty");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request() {
    if !have(NGINX) {
        return;
    }
    let app = keyward().await;
    let t = tokens(&app).await;
    let upstream = upstream().await;
    let keyward_addr = app.url.trim_start_matches("http://").to_owned();
    let proxy = Proxy::nginx(&keyward_addr, &upstream, "").await;
    through(&proxy, &app, &t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth() {
    if !have(CADDY) {
        return;
    }
    let app = keyward().await;
    let t = tokens(&app).await;
    let upstream = upstream().await;
    let keyward_addr = app.url.trim_start_matches("http://").to_owned();
    let proxy = Proxy::caddy(&keyward_addr, &upstream, None).await;
    through(&proxy, &app, &t).await;
}

/// keyward trusting no proxy address, only the shared secret, which the proxy sends: the
/// shipped configurations' proxy-secret lines work, and the secret never reaches the upstream.
async fn with_secret(proxy: impl AsyncFnOnce(&str, &str, &str) -> Proxy) {
    let secret = format!("proxy-{}", random_hex());
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.edge.proxy_secret = secret.clone();
        c.edge.routes = vec![RouteConfig {
            route: "GET /orders/{id}".into(),
            permissions: vec!["orders:read".into()],
            anonymous: false,
        }];
    })
    .await
    .unwrap();
    let t = tokens(&app).await;
    let upstream = upstream().await;
    let keyward_addr = app.url.trim_start_matches("http://").to_owned();
    let proxy = proxy(&keyward_addr, &upstream, &secret).await;
    let http = http();
    let r = http
        .get(format!("{}/orders/1", proxy.url))
        .header("authorization", format!("Bearer {}", t.good.secret))
        .header("x-keyward-proxy-secret", "the client's guess")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{}: {}",
        proxy.name,
        proxy.logs()
    );
    let got: Echoed = r.json().await.unwrap();
    assert_eq!(
        got.one("x-keyward-proxy-secret"),
        None,
        "{}: {got:?}",
        proxy.name
    );
    assert!(
        got.one("x-keyward-token-id").is_some(),
        "{}: {got:?}",
        proxy.name
    );
    // Without the secret, the same peer is refused.
    let r = http.get(format!("{}/auth", app.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "PROXY_NOT_TRUSTED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_proxy_secret() {
    if have(NGINX) {
        with_secret(async |k, u, s| Proxy::nginx(k, u, s).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_proxy_secret() {
    if have(CADDY) {
        with_secret(async |k, u, s| Proxy::caddy(k, u, Some(s)).await).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Traefik and Envoy: their requests to /auth, as they build them, sent directly.

/// Traefik's ForwardAuth (pkg/middlewares/auth/forward.go): a GET to the configured address,
/// the client's headers copied, and X-Forwarded-Method/-Proto/-Host/-Uri/-For set from the
/// original request (trustForwardHeader false).
fn traefik(
    http: &reqwest::Client,
    app: &TestApp,
    method: &str,
    uri: &str,
) -> reqwest::RequestBuilder {
    http.get(format!("{}/auth", app.url))
        .header("x-forwarded-method", method)
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "shop.example")
        .header("x-forwarded-uri", uri)
        .header("x-forwarded-for", "127.0.0.1")
        .header("user-agent", "curl/8")
}

/// Envoy's ext_authz HTTP service: the original method, `path_prefix` + the original path and
/// query, no body (Content-Length: 0), and only Host, Authorization and the allowed headers.
fn envoy(
    http: &reqwest::Client,
    app: &TestApp,
    method: Method,
    path: &str,
) -> reqwest::RequestBuilder {
    http.request(method, format!("{}/auth{path}", app.url))
        .header("content-length", "0")
        .header("x-forwarded-for", "127.0.0.1")
        .header("x-forwarded-proto", "http")
}

/// The same original request as Traefik and as Envoy would ask it, with `token` if any.
async fn both(
    http: &reqwest::Client,
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&CreatedToken>,
) -> [(&'static str, reqwest::Response); 2] {
    let mut traefik = traefik(http, app, method, path);
    let mut envoy = envoy(http, app, method.parse().unwrap(), path);
    if let Some(t) = token {
        traefik = traefik.bearer_auth(&t.secret);
        envoy = envoy.bearer_auth(&t.secret);
    }
    [
        ("traefik", traefik.send().await.unwrap()),
        ("envoy", envoy.send().await.unwrap()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_and_envoy_request_shapes() {
    let app = keyward().await;
    let t = tokens(&app).await;
    let http = http();
    let bearer = |c: &CreatedToken| format!("Bearer {}", c.secret);
    let token_id = t.good.token.id.to_string();

    for (who, r) in both(&http, &app, "GET", "/orders/7?x=1", Some(&t.good)).await {
        assert_eq!(r.status(), StatusCode::OK, "{who}");
        assert_eq!(
            header(&r, "x-keyward-token-id"),
            Some(token_id.as_str()),
            "{who}"
        );
        assert!(header(&r, "x-keyward-user-id").is_some(), "{who}");
        assert!(header(&r, "ratelimit").is_some(), "{who}");
        assert!(header(&r, "ratelimit-policy").is_some(), "{who}");
    }

    // The original method is what is judged.
    for (who, r) in both(&http, &app, "POST", "/orders", Some(&t.good)).await {
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who}");
        assert_eq!(code(&r), Some("INSUFFICIENT_PERMISSIONS"), "{who}");
        let challenge = challenge(&r).unwrap_or_default();
        assert!(
            challenge.contains("insufficient_scope"),
            "{who}: {challenge}"
        );
        assert!(challenge.contains("orders:write"), "{who}: {challenge}");
    }

    // Anonymous routes, unmatched routes, missing credentials.
    for (who, r) in both(&http, &app, "GET", "/public/a/b", None).await {
        assert_eq!(r.status(), StatusCode::OK, "{who}");
        assert_eq!(header(&r, "x-keyward-anonymous"), Some("true"), "{who}");
        assert_eq!(header(&r, "x-keyward-user-id"), None, "{who}");
    }
    for (who, r) in both(&http, &app, "GET", "/admin", Some(&t.good)).await {
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who}");
        assert_eq!(code(&r), Some("ROUTE_NOT_ALLOWED"), "{who}");
    }
    for (who, r) in both(&http, &app, "GET", "/orders/7", None).await {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{who}");
        assert_eq!(code(&r), Some("MISSING_CREDENTIAL"), "{who}");
        assert_eq!(challenge(&r), Some(r#"Bearer realm="keyward""#), "{who}");
        assert!(
            header(&r, "content-type").is_some_and(|c| c.starts_with("application/problem+json")),
            "{who}"
        );
    }

    // The client's address and the allowlist.
    for (who, r) in both(&http, &app, "GET", "/orders/7", Some(&t.wrong_ip)).await {
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who}");
        assert_eq!(code(&r), Some("IP_NOT_ALLOWED"), "{who}");
    }

    // Revoked.
    app.admin.revoke_token(t.revoked.token.id).await.unwrap();
    for (who, r) in both(&http, &app, "GET", "/orders/7", Some(&t.revoked)).await {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{who}");
        assert_eq!(code(&r), Some("REVOKED"), "{who}");
        assert_eq!(
            challenge(&r),
            Some(r#"Bearer realm="keyward", error="invalid_token""#),
            "{who}"
        );
    }

    // Rate limited: a real 429 (no X-Original-URI, so not nginx's 403), two a minute shared
    // by both proxies' requests.
    let limited = |who: &str| {
        let b = bearer(&t.limited);
        match who {
            "traefik" => traefik(&http, &app, "GET", "/orders/7").header("authorization", b),
            _ => envoy(&http, &app, Method::GET, "/orders/7").header("authorization", b),
        }
    };
    let r = limited("traefik").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = limited("envoy").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for who in ["traefik", "envoy"] {
        let r = limited(who).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{who}");
        assert_eq!(code(&r), Some("RATE_LIMITED"), "{who}");
        assert!(
            header(&r, "retry-after").is_some_and(|s| s.parse::<u64>().is_ok()),
            "{who}"
        );
        assert!(header(&r, "ratelimit").is_some(), "{who}");
        assert!(header(&r, "ratelimit-policy").is_some(), "{who}");
    }
}

/// docs/forward-auth.md shows each shipped configuration exactly as it is in docs/proxies/
/// (the nginx and Caddy files being what the tests above run).
#[test]
fn the_guide_shows_the_shipped_configs() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/forward-auth.md");
    let guide = std::fs::read_to_string(&path).unwrap();
    for file in ["nginx.conf", "Caddyfile", "traefik.yml", "envoy.yaml"] {
        assert!(
            guide.contains(&shipped(file)),
            "docs/forward-auth.md does not show docs/proxies/{file} as shipped"
        );
    }
}
