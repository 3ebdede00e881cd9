//! Webhooks cannot be pointed inside: internal destinations in any spelling and URLs with
//! credentials are refused at create and update (422, naming `url`, echoing nothing) and again
//! at send time, after DNS resolution; the delivery log tells no closed port from a host that
//! answered something other than HTTP.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::events::{call, eventually, fast, subscribe, Receiver};
use crate::support::TestApp;

/// Runs `$body(app)` on both backends, the configuration adjusted by `$configure`.
macro_rules! both_with {
    ($name:ident, $configure:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = crate::support::TestApp::spawn_with(
                    crate::support::Backend::Sqlite,
                    super::$configure,
                )
                .await;
                if let Some(app) = app {
                    super::$name(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = crate::support::TestApp::spawn_with(
                    crate::support::Backend::Postgres,
                    super::$configure,
                )
                .await;
                if let Some(app) = app {
                    super::$name(app).await;
                }
            }
        }
    };
}
pub(crate) use both_with;

/// The server's default policy: no internal destination at all.
fn strict(c: &mut keyward_server::Config) {
    fast(c);
    c.webhooks.allowed_destinations.clear();
}

/// The delivery log of a subscription.
pub async fn log(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, page) = call(app, "GET", &format!("/v1/webhooks/{id}/deliveries"), None).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// Waits until the log of `id` holds `n` attempts.
pub async fn wait_log(app: &TestApp, id: &str, n: usize) -> Vec<Value> {
    for _ in 0..500 {
        let l = log(app, id).await;
        if l.len() >= n {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the delivery log of {id} never reached {n} attempts");
}

/// Creates a token, so that `token.created` is emitted.
pub async fn emit(app: &TestApp) -> keyward_core::api::CreatedToken {
    let name = format!("svc-{}", crate::support::random_hex());
    app.catalogue(&["orders:read"]).await;
    let role = app
        .api_role(
            &name,
            keyward_core::model::Scope::Workspace,
            &["orders:read"],
        )
        .await;
    let owner = app.service_user(&name, Some(role.id)).await;
    app.token_for(&owner).await
}

async fn internal_destinations_are_refused_at_create_and_update(app: TestApp) {
    let refused = [
        "http://127.0.0.1:9/hook",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://0.0.0.0:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://172.20.1.1/",
        "http://192.168.0.10/",
        "http://100.64.1.1/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fe80::1]/",
        "http://[fd12:3456::1]/",
        "http://localhost:8080/",
        "https://LOCALHOST./",
    ];
    for url in refused {
        let (status, problem) = call(&app, "POST", "/v1/webhooks", Some(json!({"url": url}))).await;
        assert_eq!(status, 422, "{url}: {problem}");
        assert_eq!(problem["code"], "WEBHOOK_DESTINATION_FORBIDDEN", "{url}");
        assert_eq!(problem["field"], "url");
        let text = problem.to_string();
        let authority = url.split("//").nth(1).unwrap().split('/').next().unwrap();
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap(),
            None => authority.split(':').next().unwrap(),
        };
        assert!(!host.is_empty() && !text.contains(host), "{text}");
    }

    let secret_part = "pw-ZXy7hunter2";
    let with_credentials = format!("https://hook-user:{secret_part}@hooks.example.com/in");
    let (status, problem) = call(
        &app,
        "POST",
        "/v1/webhooks",
        Some(json!({"url": with_credentials})),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "WEBHOOK_URL_CREDENTIALS");
    assert_eq!(problem["field"], "url");
    assert!(!problem.to_string().contains(secret_part));
    let (_, list) = call(&app, "GET", "/v1/webhooks", None).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");

    // A public (here: documentation) address is fine, and stored normalised.
    let (id, _) = subscribe(&app, json!({"url": "HTTP://192.0.2.1:9/hook"})).await;
    let path = format!("/v1/webhooks/{id}");
    let (_, shown) = call(&app, "GET", &path, None).await;
    assert_eq!(shown["url"], "http://192.0.2.1:9/hook");
    for (url, code) in [
        ("http://169.254.169.254/", "WEBHOOK_DESTINATION_FORBIDDEN"),
        ("http://[::ffff:10.0.0.1]/", "WEBHOOK_DESTINATION_FORBIDDEN"),
        (with_credentials.as_str(), "WEBHOOK_URL_CREDENTIALS"),
    ] {
        let (status, problem) = call(&app, "PATCH", &path, Some(json!({"url": url}))).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["code"], code);
        assert_eq!(problem["field"], "url");
    }
    let (_, after) = call(&app, "GET", &path, None).await;
    assert_eq!(after["url"], "http://192.0.2.1:9/hook");
    // Nothing refused reached the audit trail or the logs.
    let q = keyward_core::audit::AuditQuery {
        action: Some("webhook.*".into()),
        ..keyward_core::audit::AuditQuery::default()
    };
    let trail = app.admin.audit(&q).await.unwrap().items;
    assert_eq!(trail.len(), 1, "{trail:?}");
    let trail_text = serde_json::to_string(&trail).unwrap();
    assert!(!trail_text.contains(secret_part) && !trail_text.contains("169.254"));
    assert!(!crate::support::logs_contain(secret_part));

    // A URL stored with credentials by an older version is shown (and audited) without them.
    // (Another password than above: the SQL below is logged by sqlx, in every test's logs.)
    let old_password = "legacy-pw-Q9x";
    let legacy = format!("http://hook-user:{old_password}@192.0.2.1:9/hook");
    crate::support::raw_sql(
        &app,
        &format!("UPDATE webhooks SET url = '{legacy}' WHERE url = 'http://192.0.2.1:9/hook'"),
    )
    .await;
    let (_, shown) = call(&app, "GET", &path, None).await;
    assert_eq!(shown["url"], "http://192.0.2.1:9/hook", "{shown}");
    let (status, patched) = call(&app, "PATCH", &path, Some(json!({"enabled": false}))).await;
    assert_eq!(status, 200);
    assert!(!patched.to_string().contains(old_password));
    let trail = app.admin.audit(&q).await.unwrap().items;
    assert!(!serde_json::to_string(&trail)
        .unwrap()
        .contains(old_password));
}
both_with!(
    internal_destinations_are_refused_at_create_and_update,
    strict
);

async fn the_send_time_check_judges_resolved_addresses(app: TestApp) {
    // Allowed at creation (the tests' config permits 127.0.0.0/8): a name resolving to
    // loopback and a literal address.
    let (by_name, by_ip) = (Receiver::start(&[]).await, Receiver::start(&[]).await);
    let port = |r: &Receiver| r.url.rsplit(':').next().unwrap().to_owned();
    let name_url = format!("http://localhost:{}", port(&by_name));
    let (name_id, _) = subscribe(&app, json!({"url": name_url})).await;
    let (ip_id, _) = subscribe(&app, json!({"url": by_ip.url})).await;
    emit(&app).await;
    // `localhost` also resolves to ::1, outside the allowlist: only 127.0.0.1 is connected to.
    eventually("both delivered", || {
        by_name.count() == 1 && by_ip.count() == 1
    })
    .await;
    assert_eq!(wait_log(&app, &name_id, 1).await[0]["succeeded"], true);

    // The operator withdraws the allowance: the stored subscriptions are refused when sent,
    // the name after resolving it, before any connection.
    let mut app = app;
    app.config.webhooks.allowed_destinations.clear();
    let app = app.restart().await;
    // (A later time, so the log lists the new attempts second.)
    app.clock.advance(chrono::Duration::seconds(1));
    emit(&app).await;
    for id in [&name_id, &ip_id] {
        let l = wait_log(&app, id, 2).await;
        assert_eq!(l[1]["succeeded"], false, "{l:?}");
        assert_eq!(l[1]["error"], "destination_forbidden", "{l:?}");
        assert_eq!(l[1]["status_code"], Value::Null);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((by_name.count(), by_ip.count()), (1, 1));
}
both_with!(the_send_time_check_judges_resolved_addresses, fast);

/// A port nothing listens on.
async fn closed_port() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    drop(l);
    url
}

/// A listener answering a non-HTTP banner and closing; counts connections.
async fn not_http() -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = l.accept().await {
            s.fetch_add(1, Ordering::SeqCst);
            let _ = conn.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
            let _ = conn.shutdown().await;
        }
    });
    (url, seen)
}

/// A listener that accepts and never answers; counts connections.
pub async fn hung() -> (String, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = l.accept().await {
            s.fetch_add(1, Ordering::SeqCst);
            held.push(conn);
        }
    });
    (url, seen)
}

fn one_second(c: &mut keyward_server::Config) {
    fast(c);
    c.webhooks.timeout_secs = 1;
}

async fn the_log_does_not_tell_a_closed_port_from_a_non_http_answer(app: TestApp) {
    let closed = closed_port().await;
    let (banner, banner_seen) = not_http().await;
    let (silent, silent_seen) = hung().await;
    let answering = Receiver::start(&[503]).await;
    let mut ids = Vec::new();
    for url in [&closed, &banner, &silent, &answering.url] {
        ids.push(subscribe(&app, json!({"url": url})).await.0);
    }
    let sent = Instant::now();
    emit(&app).await;
    // The refused connection is logged no sooner than the timeout: how soon an entry appears
    // says nothing either.
    wait_log(&app, &ids[0], 1).await;
    let refused_after = sent.elapsed();
    let mut firsts = Vec::new();
    for id in &ids {
        firsts.push(wait_log(&app, id, 1).await[0].clone());
    }
    assert!(banner_seen.load(Ordering::SeqCst) >= 1 && silent_seen.load(Ordering::SeqCst) >= 1);
    let shape = |a: &Value| {
        (
            a["succeeded"].clone(),
            a["status_code"].clone(),
            a["error"].clone(),
        )
    };
    let no_answer = (json!(false), Value::Null, json!("delivery_failed"));
    for (i, a) in firsts[..3].iter().enumerate() {
        assert_eq!(shape(a), no_answer, "receiver {i}: {a}");
    }
    assert_eq!(
        shape(&firsts[3]),
        (json!(false), json!(503), json!("http_status"))
    );
    assert!(
        refused_after >= Duration::from_millis(900),
        "{refused_after:?}"
    );
}
both_with!(
    the_log_does_not_tell_a_closed_port_from_a_non_http_answer,
    one_second
);
