//! Gateway mode: keyward's own listener admits each request by the route table, then streams
//! it to an upstream (here an axum server in the test, on 127.0.0.1:0) with the credential
//! taken off and the principal headers put on; refusals and the upstream's failures are the
//! gateway's answers; large bodies stream in bounded memory; an HTTP/1.1 upgrade passes.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use keyward_gate::routes::RouteConfig;
use keyward_server::{Application, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::forward_auth::h;
use crate::support::{Backend, TestApp};

const MIB: u64 = 1024 * 1024;
static CHUNK: [u8; 64 * 1024] = [b'k'; 64 * 1024];

/// A generated body of `left` bytes, never held in memory (64 KiB frames of one static
/// buffer).
struct Generated {
    left: u64,
    exact: bool,
}

impl HttpBody for Generated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK.len() as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &CHUNK[..n as usize],
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.left)
        } else {
            SizeHint::default()
        }
    }
}

/// A body fed by a channel (the test decides when each chunk goes).
struct Fed(tokio::sync::mpsc::Receiver<Bytes>);

impl HttpBody for Fed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c))))
    }
}

/// Reads `body` to its end, counting bytes.
async fn count<B: HttpBody<Data = Bytes> + Unpin>(mut body: B) -> u64
where
    B::Error: std::fmt::Debug,
{
    let mut n = 0;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.unwrap().into_data() {
            n += data.len() as u64;
        }
    }
    n
}

/// The test's upstream and what it saw.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
}

async fn echo(State(seen): State<Arc<Seen>>, req: Request) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        headers.insert(
            name.as_str().to_owned(),
            value.to_str().unwrap_or("<binary>").into(),
        );
    }
    axum::Json(serde_json::json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "headers": headers,
    }))
    .into_response()
}

async fn upload(State(seen): State<Arc<Seen>>, req: Request) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    let chunked = req.headers().get("transfer-encoding").is_some();
    let bytes = count(req.into_body()).await;
    axum::Json(serde_json::json!({"bytes": bytes, "chunked": chunked})).into_response()
}

async fn download(State(seen): State<Arc<Seen>>, Path(n): Path<u64>) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    Response::new(Body::new(Generated {
        left: n,
        exact: false,
    }))
}

async fn slow(State(seen): State<Arc<Seen>>) -> &'static str {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    "late"
}

/// Accepts any upgrade and echoes bytes on the upgraded connection.
async fn upgrade(State(seen): State<Arc<Seen>>, mut req: Request) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    let key = req
        .headers()
        .get("sec-websocket-key")
        .cloned()
        .unwrap_or(axum::http::HeaderValue::from_static("none"));
    let saw_auth = req.headers().contains_key("authorization");
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let mut io = TokioIo::new(on.await.unwrap());
        let mut buf = [0u8; 1024];
        loop {
            let n = io.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            io.write_all(&buf[..n]).await.unwrap();
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("x-saw-key", key)
        .header("x-saw-authorization", saw_auth.to_string())
        .body(Body::empty())
        .unwrap()
}

/// Starts the upstream; its address and what it counts.
async fn upstream() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/upload", post(upload))
        .route("/download/{n}", get(download))
        .route("/slow", get(slow))
        .route("/ws", get(upgrade))
        .fallback(any(echo))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn routes(config: &mut Config) {
    config.edge.routes = vec![RouteConfig {
        route: "* /**".into(),
        permissions: vec!["orders:read".into()],
        anonymous: false,
    }];
}

/// keyward with its gateway in front of `upstream`.
async fn spawn(upstream: &str, configure: impl FnOnce(&mut Config)) -> (TestApp, String) {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.gateway.upstream = upstream.to_owned();
        c.gateway.listen = "127.0.0.1:0".into();
        routes(c);
        configure(c);
    })
    .await
    .unwrap();
    let url = app.gateway_url.clone().expect("the gateway is on");
    (app, url)
}

/// A token holding `orders:read`; its secret and id.
async fn reader(app: &TestApp) -> (String, String) {
    reader_with(app, |_| {}).await
}

/// Like [`reader`], the token request shaped by `shape` (forward-auth's reader: the same
/// admission, the same token).
async fn reader_with(
    app: &TestApp,
    shape: impl FnOnce(&mut keyward_core::api::CreateToken),
) -> (String, String) {
    crate::forward_auth::reader(app, shape).await
}

#[tokio::test]
async fn an_admitted_request_reaches_the_upstream_with_the_principal_and_without_the_credential() {
    let (up, seen) = upstream().await;
    let (app, gw) = spawn(&up, |_| {}).await;
    let (secret, id) = reader(&app).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{gw}/orders/7?expand=lines"))
        .bearer_auth(&secret)
        .header("X-Keyward-User-Id", "usr_forged")
        .header("X-Keyward-Anonymous", "true")
        .header("X-Forwarded-For", "6.6.6.6")
        .header("Connection", "X-Hop")
        .header("X-Hop", "gone")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echoed: serde_json::Value = r.json().await.unwrap();
    let headers = &echoed["headers"];
    assert_eq!(echoed["uri"], "/orders/7?expand=lines");
    assert_eq!(headers["x-keyward-token-id"], id.as_str());
    assert!(headers["x-keyward-workspace-id"]
        .as_str()
        .unwrap()
        .starts_with("ws_"));
    let user = headers["x-keyward-user-id"].as_str().unwrap();
    assert!(user.starts_with("usr_") && user != "usr_forged", "{user}");
    assert_eq!(headers["x-keyward-permissions"], "orders:read");
    assert!(headers.get("x-keyward-anonymous").is_none(), "{headers}");
    assert!(headers.get("authorization").is_none(), "{headers}");
    assert!(headers.get("x-hop").is_none(), "{headers}");
    // The peer is not a trusted proxy: its X-Forwarded-For is replaced, not extended.
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    let host = gw.trim_start_matches("http://");
    assert_eq!(headers["host"], host);
    assert_eq!(headers["x-forwarded-host"], host);
    assert!(!crate::support::logs_contain(&secret));

    // A forged principal without a credential gets nowhere.
    let before = seen.requests.load(Ordering::SeqCst);
    let r = http
        .get(format!("{gw}/orders/7"))
        .header("X-Keyward-User-Id", "usr_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(h(r.headers(), "x-keyward-code"), "MISSING_CREDENTIAL");
    assert_eq!(seen.requests.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn the_credential_is_passed_on_when_asked_and_the_host_can_be_the_upstreams() {
    let (up, _) = upstream().await;
    let (app, gw) = spawn(&up, |c| {
        c.gateway.strip_credential = false;
        c.gateway.preserve_host = false;
    })
    .await;
    let (secret, _) = reader(&app).await;
    let r = reqwest::Client::new()
        .get(format!("{gw}/x"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let echoed: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        echoed["headers"]["authorization"],
        format!("Bearer {secret}")
    );
    assert_eq!(echoed["headers"]["host"], up.trim_start_matches("http://"));
}

#[tokio::test]
async fn a_revoked_token_is_refused_by_the_gateway_and_the_upstream_sees_nothing() {
    let (up, seen) = upstream().await;
    let (app, gw) = spawn(&up, |_| {}).await;
    let (secret, id) = reader(&app).await;
    app.admin.revoke_token(id.parse().unwrap()).await.unwrap();
    let before = seen.requests.load(Ordering::SeqCst);
    let r = reqwest::Client::new()
        .post(format!("{gw}/orders"))
        .bearer_auth(&secret)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(h(r.headers(), "content-type"), "application/problem+json");
    assert_eq!(h(r.headers(), "x-keyward-code"), "REVOKED");
    assert_eq!(
        h(r.headers(), "www-authenticate"),
        "Bearer realm=\"keyward\", error=\"invalid_token\""
    );
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "REVOKED");
    assert_eq!(seen.requests.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn rate_limits_are_a_real_429_and_anonymous_routes_are_marked() {
    let (up, seen) = upstream().await;
    let (app, gw) = spawn(&up, |c| {
        c.edge.routes.push(RouteConfig {
            route: "GET /public/**".into(),
            permissions: Vec::new(),
            anonymous: true,
        });
    })
    .await;
    let (secret, _) = reader_with(&app, |t| t.rate_limit_per_minute = Some(2)).await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let r = http
            .get(format!("{gw}/orders"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(h(r.headers(), "content-type").starts_with("application/json"));
        // The client sees what is left of its budget.
        assert_eq!(h(r.headers(), "ratelimit-policy"), "\"token\";q=2;w=60");
        assert!(h(r.headers(), "ratelimit").contains(";r="));
    }
    let before = seen.requests.load(Ordering::SeqCst);
    // nginx's header changes nothing here: the gateway answers the client itself.
    let r = http
        .get(format!("{gw}/orders"))
        .bearer_auth(&secret)
        .header("X-Original-URI", "/orders")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(h(r.headers(), "x-keyward-code"), "RATE_LIMITED");
    assert!(!h(r.headers(), "retry-after").is_empty());
    assert!(h(r.headers(), "ratelimit-policy").contains("q=2"));
    assert_eq!(seen.requests.load(Ordering::SeqCst), before);

    let r = http
        .get(format!("{gw}/public/logo.svg"))
        .header("X-Keyward-Token-Id", "tok_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echoed: serde_json::Value = r.json().await.unwrap();
    assert_eq!(echoed["headers"]["x-keyward-anonymous"], "true");
    assert!(echoed["headers"].get("x-keyward-token-id").is_none());
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Samples the process's RSS until dropped; the highest seen.
struct Sampler {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(rss_kib()));
        let p = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                p.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Self { peak, task }
    }

    fn peak(self) -> u64 {
        self.task.abort();
        self.peak.load(Ordering::Relaxed).max(rss_kib())
    }
}

/// The measurement below, run alone in a process of its own (this test binary, started
/// again), so no other test's memory is counted.
#[test]
fn large_bodies_stream_both_ways_in_bounded_memory() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "gateway::streaming_measured_alone",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("{stderr}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "run by large_bodies_stream_both_ways_in_bounded_memory, alone in its process"]
async fn streaming_measured_alone() {
    const SIZE: u64 = 256 * MIB;
    let (up, _) = upstream().await;
    let (app, gw) = spawn(&up, |_| {}).await;
    let (secret, _) = reader(&app).await;
    let client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Generated>();
    let upload = |left: u64| {
        let req = hyper::Request::post(format!("{gw}/upload"))
            .header("authorization", format!("Bearer {secret}"))
            .body(Generated { left, exact: false })
            .unwrap();
        client.request(req)
    };
    // Warm up (pools, caches), then measure.
    let r = upload(MIB).await.unwrap();
    assert_eq!(r.status(), 200);
    count(r.into_body()).await;
    let baseline = rss_kib();
    let sampler = Sampler::start();
    let started = Instant::now();
    let r = upload(SIZE).await.unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.into_body();
    let mut answer = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(d) = frame.unwrap().into_data() {
            answer.extend_from_slice(&d);
        }
    }
    let upload_secs = started.elapsed().as_secs_f64();
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["bytes"], SIZE);
    assert_eq!(answer["chunked"], true);

    let started = Instant::now();
    let mut r = reqwest::Client::new()
        .get(format!("{gw}/download/{SIZE}"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut got = 0u64;
    while let Some(chunk) = r.chunk().await.unwrap() {
        got += chunk.len() as u64;
    }
    let download_secs = started.elapsed().as_secs_f64();
    assert_eq!(got, SIZE);
    let grown = sampler.peak().saturating_sub(baseline);
    eprintln!(
        "gateway streaming: RSS grew {} KiB at most; upload {:.0} MiB/s, download {:.0} MiB/s",
        grown,
        256.0 / upload_secs,
        256.0 / download_secs
    );
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
}

#[tokio::test]
async fn a_slow_upload_outlasts_the_request_and_response_timeouts() {
    let (up, _) = upstream().await;
    let (app, gw) = spawn(&up, |c| {
        c.server.request_timeout_secs = 1;
        c.gateway.response_timeout_secs = 1;
    })
    .await;
    let (secret, _) = reader(&app).await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for _ in 0..5 {
            tx.send(Bytes::from_static(b"0123456789")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let client =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Fed>();
    let req = hyper::Request::post(format!("{gw}/upload"))
        .header("authorization", format!("Bearer {secret}"))
        .body(Fed(rx))
        .unwrap();
    let r = client.request(req).await.unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.into_body();
    let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
    let data = frame.unwrap().unwrap().into_data().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(answer["bytes"], 50);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let (app, gw) = spawn(&format!("http://127.0.0.1:{port}"), |_| {}).await;
    let (secret, _) = reader(&app).await;
    let r = reqwest::Client::new()
        .get(format!("{gw}/orders"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(h(r.headers(), "content-type"), "application/problem+json");
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(problem["status"], 502);
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_after_the_response_timeout() {
    let (up, _) = upstream().await;
    let (app, gw) = spawn(&up, |c| c.gateway.response_timeout_secs = 1).await;
    let (secret, _) = reader(&app).await;
    let started = Instant::now();
    let r = reqwest::Client::new()
        .get(format!("{gw}/slow"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(2_500), "{elapsed:?}");
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "UPSTREAM_TIMEOUT");
}

async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed early");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

#[tokio::test]
async fn an_upgrade_passes_through_and_bytes_echo_both_ways() {
    let (up, _) = upstream().await;
    let (app, gw) = spawn(&up, |c| c.server.request_timeout_secs = 1).await;
    let (secret, _) = reader(&app).await;
    let mut stream = tokio::net::TcpStream::connect(gw.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: api.example\r\nAuthorization: Bearer {secret}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(
        head.contains("x-saw-key: dghlihnhbxbszsbub25jzq=="),
        "{head}"
    );
    assert!(head.contains("x-saw-authorization: false"), "{head}");
    // Longer than the main listener's request timeout: an upgraded connection is not cut.
    for message in ["hello", "keyward"] {
        stream.write_all(message.as_bytes()).await.unwrap();
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(back, message.as_bytes());
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    // Only WebSocket is switched to: after an h2c switch every later request on the
    // connection would pass unadmitted.
    let mut stream = tokio::net::TcpStream::connect(gw.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: api.example\r\nAuthorization: Bearer {secret}\r\n\
         Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(!head.starts_with("HTTP/1.1 101"), "{head}");

    // Without a credential, no upgrade: the gateway's own 401.
    let mut stream = tokio::net::TcpStream::connect(gw.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
}

#[tokio::test]
async fn an_upgraded_connection_keeps_its_place_under_the_connection_cap() {
    let (up, _) = upstream().await;
    let (app, gw) = spawn(&up, |c| c.server.max_connections = 1).await;
    let (secret, _) = reader(&app).await;
    let mut stream = tokio::net::TcpStream::connect(gw.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 101"));
    let http = reqwest::Client::new();
    let ask = || http.get(format!("{gw}/x")).bearer_auth(&secret).send();
    let waited = tokio::time::timeout(Duration::from_millis(500), ask()).await;
    assert!(waited.is_err(), "served beside an open upgraded connection");
    drop(stream);
    let r = tokio::time::timeout(Duration::from_secs(5), ask())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_bad_upstream_is_refused_at_start_by_its_key() {
    for (upstream, why) in [
        ("127.0.0.1:9000", "http:// URL"),
        ("http://127.0.0.1", "port"),
        ("https://api.example:443", "https"),
    ] {
        let mut config = Config::default();
        let db =
            std::env::temp_dir().join(format!("keyward-gw-{}.db", crate::support::random_hex()));
        config.database.url = format!("sqlite://{}", db.display());
        config.server.listen = "127.0.0.1:0".into();
        config.gateway.upstream = upstream.into();
        let err = match Application::build(&config).await {
            Ok(_) => panic!("{upstream} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("gateway.upstream"), "{upstream}: {err}");
        assert!(err.contains(why), "{upstream}: {err}");
        assert!(!db.exists(), "{upstream} created the database");
    }
    // The gateway's port in use fails before anything is created, too.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = Config::default();
    let db = std::env::temp_dir().join(format!("keyward-gw-{}.db", crate::support::random_hex()));
    config.database.url = format!("sqlite://{}", db.display());
    config.server.listen = "127.0.0.1:0".into();
    config.gateway.upstream = "http://127.0.0.1:9".into();
    config.gateway.listen = taken.local_addr().unwrap().to_string();
    let err = Application::build(&config).await.err().unwrap().to_string();
    assert!(err.contains("binding"), "{err}");
    assert!(!db.exists());
}
