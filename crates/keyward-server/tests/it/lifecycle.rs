//! Health, readiness, restarts and graceful shutdown.

use std::sync::Arc;

use keyward_server::clock::SystemClock;
use keyward_server::{Application, Config};

use crate::support::{both_backends, TestApp};

async fn health_and_readiness_answer(app: TestApp) {
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = http
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert!(["sqlite", "postgres"].contains(&body["backend"].as_str().unwrap()));
    app.admin.ready().await.unwrap();
}
both_backends!(health_and_readiness_answer);

fn sqlite_config(path: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.server.shutdown_grace_secs = 1;
    config.database.url = format!("sqlite://{}", path.display());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_everything_and_prints_no_new_credential() {
    let path = std::env::temp_dir().join(format!(
        "keyward-restart-{}.db",
        crate::support::random_hex()
    ));
    let config = sqlite_config(&path);
    let mut first = Application::build_with_clock(&config, Arc::new(SystemClock))
        .await
        .unwrap();
    let created = first.take_bootstrap().expect("fresh store bootstraps");
    assert!(
        first.take_bootstrap().is_none(),
        "the credential is handed out once"
    );
    drop(first);

    let mut second = Application::build_with_clock(&config, Arc::new(SystemClock))
        .await
        .unwrap();
    assert!(
        second.take_bootstrap().is_none(),
        "a restart creates no new workspace"
    );
    let url = format!("http://127.0.0.1:{}", second.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(second.run_until(async move {
        let _ = stopped.await;
    }));
    let admin = keyward_client::Client::new(&url, Some(created.admin_token.secret)).unwrap();
    assert_eq!(admin.workspace().await.unwrap().id, created.workspace.id);

    // Graceful shutdown: the server stops, and its port no longer answers.
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("stops within the grace period")
        .unwrap()
        .unwrap();
    assert!(reqwest::get(format!("{url}/healthz")).await.is_err());
    let _ = std::fs::remove_file(&path);
}
