//! Whether a PostgreSQL test runs: it is skipped only when nothing accepts TCP connections at
//! the URL's host and port, and then only outside CI (under `CI=true` that fails the test).
//! Any later error fails the test. The skip line goes to the process's stderr directly
//! (libtest captures only the print macros), so `cargo test` shows it.

use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// `host:port` of a `postgres://[user[:password]@]host[:port][/db][?query]` URL (port 5432
/// when absent).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let has_port = match authority.rsplit_once(':') {
        Some((host, port)) => !port.is_empty() && (!host.contains(':') || host.ends_with(']')),
        None => false,
    };
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    }
}

/// `true` when the PostgreSQL test `test` may run against `url`.
pub fn postgres_or_skip(url: &str, test: &str) -> bool {
    let place = host_port(url);
    let why = match place.to_socket_addrs() {
        Err(e) => format!("{place} does not resolve: {e}"),
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            let connected = addrs
                .iter()
                .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok());
            if connected {
                return true;
            }
            format!("no connection to {place}")
        }
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL is required under CI=true: {why}");
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED on PostgreSQL ({why}): `{test}` did not run"
    );
    false
}

#[test]
fn host_and_port_of_test_urls() {
    assert_eq!(
        host_port("postgres://postgres@127.0.0.1:5432/test"),
        "127.0.0.1:5432"
    );
    assert_eq!(
        host_port("postgres://u:p@w@db.local/x?sslmode=off"),
        "db.local:5432"
    );
    assert_eq!(host_port("postgresql://[::1]:6543/test"), "[::1]:6543");
    assert_eq!(host_port("postgres://localhost"), "localhost:5432");
}
