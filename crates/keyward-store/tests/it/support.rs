//! Running one test body on both backends, and helpers shared by the tests.

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyward_store::{Cursor, PageRequest, Store, StoreError, StoreOptions};
use rand_core::{OsRng, RngCore};
use sqlx::Connection as _;

/// Used when `KEYWARD_TEST_DATABASE_URL` is not set.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Pool size of each test's store: small, because many tests run at once.
const MAX_CONNECTIONS: u32 = 4;

/// `conformance!(a, b)` turns each `async fn a(store: Arc<dyn Store>)` of the calling module into
/// `mod a { sqlite, postgres }` test functions.
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                $crate::support::on_sqlite(stringify!($name), super::$name).await;
            }

            #[tokio::test]
            async fn postgres() {
                $crate::support::on_postgres(stringify!($name), super::$name).await;
            }
        }
    )+};
}

/// The audit chain key every test store is opened with.
pub fn chain_key() -> keyward_core::audit::ChainKey {
    keyward_core::audit::ChainKey::from_bytes([0x5a; 32])
}

/// Runs `test` on a store in a fresh SQLite file, removed afterwards.
pub async fn on_sqlite<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let path = std::env::temp_dir().join(format!("keyward-it-{name}-{}.db", random_hex()));
    // Removes the files even when the test panics.
    let _files = SqliteFiles(path.clone());
    let options = StoreOptions {
        url: format!("sqlite://{}", path.display()),
        schema: None,
        max_connections: MAX_CONNECTIONS,
        chain_key: chain_key(),
        sqlite_synchronous: keyward_store::SqliteSync::Full,
    };
    let store = keyward_store::open(&options)
        .await
        .unwrap_or_else(|e| panic!("opening SQLite store {}: {e}", path.display()));
    assert_eq!(store.backend(), "sqlite");
    finish(tokio::spawn(test(store)).await);
}

/// Runs `test` on a store in a fresh PostgreSQL schema, dropped afterwards.
pub async fn on_postgres<F, Fut>(name: &str, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url =
        std::env::var("KEYWARD_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    if !postgres_or_skip(&url, name).await {
        return;
    }
    let schema = format!("kwtest_{}", random_hex());
    let options = StoreOptions {
        url: url.clone(),
        schema: Some(schema.clone()),
        max_connections: MAX_CONNECTIONS,
        chain_key: chain_key(),
        sqlite_synchronous: keyward_store::SqliteSync::Full,
    };
    let store = keyward_store::open(&options)
        .await
        .unwrap_or_else(|e| panic!("opening PostgreSQL store in schema {schema}: {e}"));
    assert_eq!(store.backend(), "postgres");
    let outcome = tokio::spawn(test(store)).await;
    drop_schema(&url, &schema).await;
    finish(outcome);
}

/// Re-raises the test's panic, if any, after clean-up.
fn finish(outcome: Result<(), tokio::task::JoinError>) {
    match outcome {
        Ok(()) => {}
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test task did not finish: {e}"),
    }
}

/// How many PostgreSQL halves of tests this run skipped so far.
pub static POSTGRES_SKIPS: AtomicUsize = AtomicUsize::new(0);

/// Whether the PostgreSQL half of test `name` runs. It is skipped only when PostgreSQL at
/// `url` does not accept connections at all (no TCP or Unix-socket connection to its host and
/// port), and then only outside CI: under `CI=true` that fails the test. Any later error (a
/// refused login, a missing database, a migration bug) fails the test, never skips it.
///
/// The skip line goes to the process's stderr directly (libtest captures only the print
/// macros), so it shows in `cargo test`'s output, numbered: the last one tells how many.
pub async fn postgres_or_skip(url: &str, name: &str) -> bool {
    let Some(why) = unreachable(url).await else {
        return true;
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("PostgreSQL is required under CI=true ({why}); set KEYWARD_TEST_DATABASE_URL");
    }
    let n = POSTGRES_SKIPS.fetch_add(1, Ordering::SeqCst) + 1;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED on PostgreSQL ({why}): `{name}` did not run there \
         [{n} PostgreSQL test(s) skipped so far]"
    );
    false
}

/// Why PostgreSQL at `url` cannot be reached at all, if it cannot: no connection to its host
/// and port within a few seconds.
pub async fn unreachable(url: &str) -> Option<String> {
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(url).unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL test URL {} does not parse: {e}",
            redact(url)
        )
    });
    let (host, port) = (options.get_host().to_owned(), options.get_port());
    let socket = options
        .get_socket()
        .cloned()
        .or_else(|| host.starts_with('/').then(|| host.clone().into()))
        .map(|dir: PathBuf| dir.join(format!(".s.PGSQL.{port}")));
    let place = match &socket {
        Some(path) => path.display().to_string(),
        None => format!("{host}:{port}"),
    };
    let attempt = async {
        match &socket {
            Some(path) => tokio::net::UnixStream::connect(path).await.map(drop),
            None => tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map(drop),
        }
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("no connection to {place}: {e}")),
        Err(_) => Some(format!("no connection to {place} within 3 s")),
    }
}

/// Best effort: a schema left behind only costs space.
pub async fn drop_schema(url: &str, schema: &str) {
    let result = async {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await?;
        conn.close().await
    }
    .await;
    if let Err(e) = result {
        eprintln!("warning: could not drop test schema {schema}: {e}");
    }
}

/// `scheme://user:password@host…` without the password, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

pub fn random_hex() -> String {
    format!("{:016x}", OsRng.next_u64())
}

/// A SQLite database file and its companions, deleted on drop.
struct SqliteFiles(PathBuf);

impl Drop for SqliteFiles {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// An item of a listing, which pages by creation time, then id.
pub trait Listed {
    fn cursor(&self) -> Cursor;
}

impl Listed for keyward_core::Workspace {
    fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.uuid(),
        }
    }
}

impl Listed for keyward_core::User {
    fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.uuid(),
        }
    }
}

impl Listed for keyward_core::Role {
    fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.uuid(),
        }
    }
}

impl Listed for keyward_core::Token {
    fn cursor(&self) -> Cursor {
        Cursor {
            created_at: self.created_at,
            id: self.id.uuid(),
        }
    }
}

/// A first page of `limit` items.
pub fn first(limit: u32) -> PageRequest {
    PageRequest { limit, after: None }
}

/// `items` in listing order (by creation millisecond, then id).
pub fn in_listing_order<T: Listed + Clone>(items: &[T]) -> Vec<T> {
    let mut sorted = items.to_vec();
    sorted.sort_by_key(|i| {
        let c = i.cursor();
        (c.created_at.timestamp_millis(), c.id)
    });
    sorted
}

/// Walks a listing page by page, as an API caller would (through the cursor's text form),
/// until a short page; returns the pages.
pub async fn pages<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<Vec<T>>
where
    T: Listed,
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = keyward_store::Result<Vec<T>>>,
{
    let mut pages = Vec::new();
    let mut after = None;
    for _ in 0..100 {
        let page = fetch(PageRequest { limit, after })
            .await
            .expect("listing a page");
        assert!(
            page.len() <= limit as usize,
            "a page of limit {limit} has {} items",
            page.len()
        );
        let last_page = page.len() < limit as usize;
        after = page
            .last()
            .map(|item| Cursor::decode(&item.cursor().encode()).expect("decoding a cursor"));
        pages.push(page);
        if last_page {
            return pages;
        }
    }
    panic!("pagination did not end after 100 pages");
}

/// Checks that `pages` hold exactly `expected` in order, each page full but the last, with
/// no item twice.
pub fn assert_pages<T, K>(pages: &[Vec<T>], expected: &[T], limit: usize, id: impl Fn(&T) -> K)
where
    T: PartialEq + Debug,
    K: std::hash::Hash + Eq,
{
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    let mut want = vec![limit; expected.len() / limit];
    want.push(expected.len() % limit);
    assert_eq!(sizes, want, "page sizes");
    let all: Vec<&T> = pages.iter().flatten().collect();
    let distinct: HashSet<K> = all.iter().map(|t| id(t)).collect();
    assert_eq!(distinct.len(), all.len(), "an item appeared on two pages");
    let expected: Vec<&T> = expected.iter().collect();
    assert_eq!(all, expected, "the pages, joined");
}

/// Checks `r` failed with a conflict of `code`.
pub fn assert_conflict<T: Debug>(r: keyward_store::Result<T>, code: &str) {
    match r {
        Err(StoreError::Conflict { code: got, .. }) if got == code => {}
        other => panic!("expected conflict {code}, got {other:?}"),
    }
}

/// Checks `r` failed with `NotFound`.
pub fn assert_not_found<T: Debug>(r: keyward_store::Result<T>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}
