//! The server's connection limits (`[server]`), over raw TCP: a client that sends half a
//! request head is disconnected after the header-read timeout, a silent connection after the
//! idle timeout, a request not answered in time gets 503 `REQUEST_TIMEOUT`, and connections
//! beyond `max_connections` wait until a slot frees. The limits do not involve storage, so
//! these run on SQLite only.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Backend, TestApp};

async fn app_with(configure: impl FnOnce(&mut keyward_server::Config)) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, configure)
        .await
        .expect("SQLite always starts")
}

async fn connect(app: &TestApp) -> TcpStream {
    let port = app.url.rsplit(':').next().unwrap();
    TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap()
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: keyward\r\n\r\n";

/// Reads one answer to `GET /healthz` (a short, fixed-length response).
async fn read_health(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"ok") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the server closes the connection (or resets it); returns what it sent.
async fn read_to_close(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Err(_) => panic!("still open after {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_request_head_is_cut_off_after_the_header_timeout() {
    let app = app_with(|c| c.server.header_read_timeout_secs = 1).await;
    let mut slow = connect(&app).await;
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: keyward\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut slow, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
    // A prompt client is served as usual.
    let mut quick = connect(&app).await;
    quick.write_all(HEALTH).await.unwrap();
    assert!(read_health(&mut quick).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let app = app_with(|c| {
        c.server.idle_timeout_secs = 1;
        c.server.header_read_timeout_secs = 30;
    })
    .await;
    let mut conn = connect(&app).await;
    conn.write_all(HEALTH).await.unwrap();
    read_health(&mut conn).await;
    // Traffic keeps it open past one idle period…
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        conn.write_all(HEALTH).await.unwrap();
        read_health(&mut conn).await;
    }
    // …silence closes it.
    let started = Instant::now();
    read_to_close(&mut conn, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_not_answered_in_time_is_503_problem_json() {
    let app = app_with(|c| c.server.request_timeout_secs = 1).await;
    let mut conn = connect(&app).await;
    // A body announced but never finished: the handler waits for it until the timeout.
    let head = format!(
        "POST /v1/roles HTTP/1.1\r\nHost: keyward\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na",
        app.admin_secret
    );
    let started = Instant::now();
    conn.write_all(head.as_bytes()).await.unwrap();
    let got = read_to_close(&mut conn, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("REQUEST_TIMEOUT"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let app = app_with(|c| c.server.max_connections = 2).await;
    let mut first = connect(&app).await;
    first.write_all(HEALTH).await.unwrap();
    read_health(&mut first).await;
    let mut second = connect(&app).await;
    second.write_all(HEALTH).await.unwrap();
    read_health(&mut second).await;
    // The third connects (the kernel's backlog holds it) but is not served…
    let mut third = connect(&app).await;
    third.write_all(HEALTH).await.unwrap();
    let mut buf = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_millis(800), third.read(&mut buf)).await;
    assert!(waited.is_err(), "served beyond the cap: {waited:?}");
    // …until one of the two closes.
    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(5), read_health(&mut third))
        .await
        .expect("served once a slot freed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Shutting down with kept-alive connections open does not wait for them to leave.
    let started = Instant::now();
    app.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    drop((second, third));
}

/// hyper starts the header clock whenever a connection waits for a request, so the header
/// timeout also bounds a kept-alive connection's wait for its next request (documented).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_waits_for_its_next_request_at_most_the_header_timeout() {
    let app = app_with(|c| {
        c.server.idle_timeout_secs = 30;
        c.server.header_read_timeout_secs = 1;
    })
    .await;
    for requests in [0, 1] {
        let mut conn = connect(&app).await;
        for _ in 0..requests {
            conn.write_all(HEALTH).await.unwrap();
            read_health(&mut conn).await;
        }
        let started = Instant::now();
        read_to_close(&mut conn, Duration::from_secs(5)).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    }
}
