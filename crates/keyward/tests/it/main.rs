//! The binary end to end, as the README walks through it: `keyward serve` on a fresh
//! database prints the admin token once, then the CLI declares permissions, creates a role,
//! a service user and a token, verifies it, revokes it, and verifies again; then subscribes a
//! webhook (its secret shown once, never listed) and deletes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod change_requests;
mod readme;
mod skip;
mod startup;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    url: String,
    token: String,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A name no other test of this run (or an earlier one) uses.
fn random_hex() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}_{nanos:x}_{n}", std::process::id())
}

/// Starts `keyward serve` on a free port; reads the first-run banner for the URL and token.
fn serve(extra_env: &[(&str, String)], database_url: &str) -> Server {
    let log = std::env::temp_dir().join(format!("keyward-cli-{}.log", random_hex()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyward"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        database_url,
    ])
    .env_remove("KEYWARD_URL")
    .env_remove("KEYWARD_TOKEN")
    .stdout(Stdio::piped())
    .env("KEYWARD_LOG__LEVEL", "debug")
    .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (mut url, mut token) = (None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(v) = line.trim().strip_prefix("export KEYWARD_URL=") {
            url = Some(v.to_owned());
        }
        if let Some(v) = line.trim().strip_prefix("export KEYWARD_TOKEN=") {
            token = Some(v.to_owned());
        }
        if url.is_some() && token.is_some() {
            break;
        }
    }
    Server {
        child,
        url: url.expect("banner names the URL"),
        token: token.expect("banner shows the token"),
        log,
    }
}

/// Runs a CLI verb against `server`; returns (success, stdout, stderr).
fn cli(server: &Server, args: &[&str]) -> (bool, String, String) {
    cli_as(server, &server.token, args, None)
}

/// Runs a CLI verb against `server` as `token` (`KEYWARD_TOKEN`), with `stdin` as its standard
/// input when given; returns (success, stdout, stderr).
fn cli_as(
    server: &Server,
    token: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .env("KEYWARD_URL", &server.url)
        .env("KEYWARD_TOKEN", token)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(server: &Server, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = cli(server, &all);
    assert!(ok, "{args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn walkthrough(server: &Server) {
    let secret = walk(server);
    // The server's log (at DEBUG) holds neither the admin token nor the one created.
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("token created"), "the log was captured");
    assert!(!log.contains(&secret), "a token secret was logged");
    assert!(!log.contains(&server.token), "the admin token was logged");
}

/// `keyward audit checkpoint` prints one line of signed JSON; `keyward audit verify
/// --checkpoint FILE` checks the chain against it, and refuses a forged one.
fn audit_checkpoint(server: &Server) {
    let (ok, line, err) = cli(server, &["audit", "checkpoint"]);
    assert!(ok, "{err}");
    assert_eq!(line.trim_end().lines().count(), 1, "{line}");
    let cp: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        cp["seq"].as_i64().unwrap() > 0 && cp["signature"].is_string(),
        "{cp}"
    );
    let file = std::env::temp_dir().join(format!("keyward-cp-{}.json", random_hex()));
    std::fs::write(&file, &line).unwrap();
    let path = file.display().to_string();
    let (ok, out, err) = cli(server, &["audit", "verify", "--checkpoint", &path]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("intact") && out.contains("checkpoint"),
        "{out}"
    );
    let mut forged = cp.clone();
    forged["seq"] = serde_json::json!(cp["seq"].as_i64().unwrap() - 1);
    std::fs::write(&file, forged.to_string()).unwrap();
    let (ok, _, err) = cli(server, &["audit", "verify", "--checkpoint", &path]);
    assert!(!ok);
    assert!(err.contains("INVALID_CHECKPOINT"), "{err}");
    let _ = std::fs::remove_file(file);
}

/// The README's walkthrough; returns the secret it created.
fn walk(server: &Server) -> String {
    assert!(server.token.starts_with("kw_"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cli(server, &["workspace", "get"]).0 {
        assert!(Instant::now() < deadline, "server did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    json(
        server,
        &[
            "permission",
            "put",
            "cart:read",
            "--description",
            "See carts",
        ],
    );
    json(
        server,
        &[
            "permission",
            "put",
            "cart:write",
            "--description",
            "Change carts",
        ],
    );
    let role = json(
        server,
        &[
            "role",
            "create",
            "--name",
            "Cart Editor",
            "--kind",
            "api",
            "--scope",
            "user",
            "--permission",
            "cart:write",
        ],
    );
    let role_id = role["id"].as_str().unwrap();
    let user = json(
        server,
        &[
            "user",
            "create",
            "--kind",
            "service",
            "--name",
            "shop-sync",
            "--role",
            role_id,
        ],
    );
    let user_id = user["id"].as_str().unwrap();
    let created = json(
        server,
        &[
            "token",
            "create",
            "--owner",
            user_id,
            "--name",
            "shop-sync prod",
            "--expires-in",
            "90d",
        ],
    );
    let secret = created["secret"].as_str().unwrap().to_owned();
    let token_id = created["token"]["id"].as_str().unwrap().to_owned();

    let v = json(server, &["verify", &secret, "--permission", "cart:write"]);
    assert_eq!(v["code"], "VALID");
    assert_eq!(v["role"]["name"], "Cart Editor");
    let (ok, out, _) = cli(server, &["verify", &secret, "--permission", "cart:read"]);
    assert!(!ok, "a refused verification exits non-zero");
    assert!(out.contains("INSUFFICIENT_PERMISSIONS"), "{out}");

    // Both verifications are usage records, written a moment later by the batch writer.
    let mut usage = serde_json::Value::Null;
    for _ in 0..100 {
        usage = json(server, &["token", "usage", &token_id]);
        if usage["total"] == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(usage["total"], 2, "{usage}");
    assert_eq!(usage["codes"]["INSUFFICIENT_PERMISSIONS"], 1, "{usage}");
    let (ok, summary, _) = cli(
        server,
        &["token", "usage", &token_id, "--granularity", "day"],
    );
    assert!(ok);
    assert!(summary.contains("VALID 1"), "{summary}");
    assert!(summary.contains("(by day)"), "{summary}");

    // The human table lists the token without its secret.
    let (ok, table, _) = cli(server, &["token", "list"]);
    assert!(ok);
    assert!(table.contains("shop-sync prod"), "{table}");
    assert!(!table.contains(&secret));

    // Rotation: a new secret, the old one still working inside the grace period.
    let rotated = json(server, &["token", "rotate", &token_id, "--grace", "1h"]);
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    for s in [&secret, &new_secret] {
        let (ok, out, _) = cli(server, &["verify", s]);
        assert!(ok, "{out}");
    }
    let family = json(server, &["token", "family", &token_id]);
    assert_eq!(family.as_array().unwrap().len(), 2);
    let (ok, out, _) = cli(server, &["user", "revoke-tokens", user_id]);
    assert!(
        ok && out.contains(rotated["token"]["id"].as_str().unwrap()),
        "{out}"
    );
    let (ok, out, _) = cli(server, &["verify", &new_secret]);
    assert!(!ok && out.contains("REVOKED"), "{out}");

    json(server, &["token", "revoke", &token_id]);
    let (ok, out, _) = cli(server, &["verify", &secret]);
    assert!(!ok);
    assert!(out.contains("REVOKED"), "{out}");

    // The audit trail shows the revocation, exports as NDJSON and CSV, and its chain checks.
    let (ok, out, err) = cli(server, &["audit", "list", "--token-id", &token_id]);
    assert!(ok, "{err}");
    assert!(
        out.contains("token.created") && out.contains("token.revoked"),
        "{out}"
    );
    let (ok, ndjson, _) = cli(server, &["audit", "export", "--action", "token.*"]);
    assert!(ok);
    let lines: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|e| e["action"] == "token.revoked"));
    assert!(!ndjson.contains(&secret));
    let (ok, csv, _) = cli(server, &["audit", "export", "--format", "csv"]);
    assert!(ok);
    assert!(csv.starts_with("seq,at,actor_kind"), "{csv}");
    assert!(
        csv.lines()
            .skip(1)
            .any(|row| row.contains(",token.revoked,token,")),
        "{csv}"
    );
    let (ok, out, _) = cli(server, &["audit", "verify"]);
    assert!(ok, "{out}");
    assert!(out.contains("intact"), "{out}");
    audit_checkpoint(server);

    webhooks(server);

    // A bad permission is refused with the problem's code and field.
    let (ok, _, err) = cli(
        server,
        &[
            "role",
            "create",
            "--name",
            "Bad",
            "--kind",
            "api",
            "--scope",
            "user",
            "--permission",
            "cart:wrte",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("UNKNOWN_PERMISSION") && err.contains("permissions[0]"),
        "{err}"
    );
    secret
}

/// The README's webhook commands: the secret is shown once with a warning, never listed,
/// logged or audited; the subscription is deleted again.
fn webhooks(server: &Server) {
    let (ok, out, err) = cli(
        server,
        &[
            "webhook",
            "create",
            "--endpoint",
            "http://hooks.internal/keyward",
            "--event",
            "token.revoked",
            "--description",
            "siem",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("shown once"), "{out}");
    let secret = out
        .split_whitespace()
        .find(|w| w.starts_with("whsec_"))
        .unwrap_or_else(|| panic!("no secret shown: {out}"))
        .to_owned();
    let listed = json(server, &["webhook", "list"]);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(
        items[0]["event_types"],
        serde_json::json!(["token.revoked"])
    );
    assert!(!listed.to_string().contains("whsec_"), "{listed}");
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let (ok, table, _) = cli(server, &["webhook", "list"]);
    assert!(ok);
    assert!(table.contains(&id) && table.contains("siem"), "{table}");
    assert!(!table.contains("whsec_"), "{table}");
    let (ok, shown, _) = cli(server, &["webhook", "show", &id]);
    assert!(
        ok && shown.contains("token.revoked") && !shown.contains("whsec_"),
        "{shown}"
    );

    let (ok, out, err) = cli(server, &["webhook", "delete", &id]);
    assert!(ok, "{err}");
    assert!(out.contains("Deleted webhook"), "{out}");
    let listed = json(server, &["webhook", "list"]);
    assert!(listed["items"].as_array().unwrap().is_empty(), "{listed}");

    // Both changes are audited, without the secret; the server log never saw it either.
    let (ok, trail, _) = cli(server, &["audit", "export", "--action", "webhook.*"]);
    assert!(ok);
    assert!(
        trail.contains("webhook.created") && trail.contains("webhook.deleted"),
        "{trail}"
    );
    assert!(!trail.contains(&secret));
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(!log.contains(&secret), "a webhook secret was logged");
}

#[test]
fn readme_walkthrough_on_sqlite() {
    on_sqlite(&[], walkthrough);
}

/// Runs `run` against a keyward serving a fresh SQLite file (removed afterwards), with
/// `extra_env` as well.
fn on_sqlite(extra_env: &[(&str, String)], run: impl FnOnce(&Server)) {
    let dir = std::env::temp_dir().join(format!("keyward-cli-{}", random_hex()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = serve(
        extra_env,
        &format!("sqlite://{}", dir.join("kw.db").display()),
    );
    run(&server);
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `run` against a keyward serving a schema of its own on the machine's PostgreSQL, with
/// `extra_env` as well; says loudly that test `name` was skipped when there is none (fails
/// under CI).
fn on_postgres(name: &str, extra_env: &[(&str, String)], run: impl FnOnce(&Server)) {
    let url = std::env::var("KEYWARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if !skip::postgres_or_skip(&url, name) {
        return;
    }
    // The schema comes through the environment layer of the configuration. PostgreSQL needs
    // the audit chain key configured; SQLite generates its own key file.
    let mut env = vec![
        (
            "KEYWARD_DATABASE__SCHEMA",
            format!("kwcli_{}", random_hex()),
        ),
        ("KEYWARD_AUDIT__CHAIN_KEY", "5a".repeat(32)),
    ];
    env.extend(extra_env.iter().cloned());
    let server = serve(&env, &url);
    run(&server);
}

#[test]
fn readme_walkthrough_on_postgres() {
    on_postgres("readme_walkthrough_on_postgres", &[], walkthrough);
}
