//! The conformance harness skips a PostgreSQL half only when nothing accepts connections at
//! PostgreSQL's host and port: a closed port does, a server that answers does not, even for a
//! database that does not exist (opening the store then fails the test, where the harness used
//! to skip it).

use crate::support::{postgres_or_skip, random_hex, unreachable};

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let why = unreachable("postgres://postgres@127.0.0.1:1/test").await;
    assert!(
        why.as_deref().is_some_and(|w| w.contains("127.0.0.1:1")),
        "{why:?}"
    );
}

#[tokio::test]
async fn a_missing_database_on_a_live_server_is_not_a_skip() {
    let url = std::env::var("KEYWARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    if !postgres_or_skip(&url, "a_missing_database_on_a_live_server_is_not_a_skip").await {
        return;
    }
    let base = url.split('?').next().unwrap_or_default();
    let server = match base.rsplit_once('/') {
        Some((server, _)) if !server.ends_with('/') => server,
        _ => base,
    };
    let missing = format!("{server}/kw_missing_{}", random_hex());
    assert_eq!(unreachable(&missing).await, None);
    let options = keyward_store::StoreOptions {
        url: missing,
        schema: Some(format!("kwtest_{}", random_hex())),
        max_connections: 1,
        chain_key: crate::support::chain_key(),
        sqlite_synchronous: keyward_store::SqliteSync::Full,
    };
    let opened = keyward_store::open(&options).await;
    assert!(opened.is_err(), "a missing database opened");
}
