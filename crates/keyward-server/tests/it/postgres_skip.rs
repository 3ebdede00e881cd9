//! The harness skips a PostgreSQL test only when nothing accepts connections at PostgreSQL's
//! host and port: a closed port is unreachable, while a server that answers but refuses to
//! start the application (here: the database does not exist, which start-up reports as
//! "storage unavailable", and which the harness used to skip) fails the test.

use crate::support::{postgres_unreachable, random_hex, skip_postgres, Backend, TestApp};

/// The test URL with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (server, _) = base
        .rsplit_once('/')
        .filter(|(server, _)| server.contains("://") && !server.ends_with('/'))
        .unwrap_or((base, ""));
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let why = postgres_unreachable("postgres://postgres@127.0.0.1:1/test").await;
    assert!(
        why.as_deref().is_some_and(|w| w.contains("127.0.0.1:1")),
        "{why:?}"
    );
}

#[tokio::test]
async fn a_postgres_that_answers_but_refuses_start_up_fails_the_test() {
    let url = crate::support::postgres_url();
    if let Some(why) = postgres_unreachable(&url).await {
        skip_postgres(&why);
        return;
    }
    let missing = with_database(&url, &format!("kw_missing_{}", random_hex()));
    assert_eq!(
        postgres_unreachable(&missing).await,
        None,
        "the server is up"
    );
    // On a thread of its own, to catch the panic (the start-up future is not `Send`).
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            TestApp::spawn_with(Backend::Postgres, |c| c.database.url = missing)
                .await
                .is_some()
        })
    })
    .join();
    match outcome {
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            assert!(text.contains("does not exist"), "{text}");
        }
        Ok(started) => panic!("a missing database was not a failure (started: {started})"),
    }
}
