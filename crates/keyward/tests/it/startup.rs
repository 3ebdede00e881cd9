//! `keyward serve` refuses a bad configuration before it creates anything: no database file,
//! no migration, no first admin token; and it says why once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh, empty directory to start the server in (its default database is `keyward.db`
/// there).
fn empty_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyward-startup-{}", super::random_hex()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `keyward serve ARGS` in `dir`; it must exit (non-zero) within 60 s. Returns stdout
/// and stderr.
fn serve_fails(dir: &Path, args: &[&str]) -> (String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("serve")
        .args(args)
        .current_dir(dir)
        .env_remove("KEYWARD_URL")
        .env_remove("KEYWARD_TOKEN")
        .env_remove("KEYWARD_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("keyward serve {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!status.success(), "{args:?} started: {stdout}{stderr}");
    assert!(!stdout.contains("Admin token"), "{stdout}");
    (stdout, stderr)
}

fn nothing_created(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "keyward.toml")
        .collect();
    assert!(left.is_empty(), "created {left:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_listen_address_fails_before_any_state_is_created() {
    let dir = empty_dir();
    let (_, stderr) = serve_fails(&dir, &["--listen", "127.0.0.1:99999"]);
    assert!(stderr.contains("server.listen"), "{stderr}");
    assert!(stderr.contains("port"), "{stderr}");
    assert_eq!(stderr.matches("server.listen").count(), 1, "{stderr}");
    nothing_created(&dir);
}

#[test]
fn a_port_in_use_fails_before_any_state_is_created() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = empty_dir();
    let (_, stderr) = serve_fails(&dir, &["--listen", &address]);
    assert!(stderr.contains(&format!("binding {address}")), "{stderr}");
    nothing_created(&dir);
}

#[test]
fn a_bad_leak_key_fails_before_any_state_is_created() {
    let dir = empty_dir();
    std::fs::write(
        dir.join("keyward.toml"),
        "[[leaks.github_public_keys]]\nkey_identifier = \"k1\"\nkey = \"not a PEM key\"\n",
    )
    .unwrap();
    let (_, stderr) = serve_fails(
        &dir,
        &["--config", "keyward.toml", "--listen", "127.0.0.1:0"],
    );
    assert!(stderr.contains("leaks.github_public_keys"), "{stderr}");
    assert!(!stderr.contains("not a PEM key"), "{stderr}");
    nothing_created(&dir);
}

#[test]
fn a_bad_trusted_proxy_fails_before_any_state_is_created() {
    let dir = empty_dir();
    std::fs::write(
        dir.join("keyward.toml"),
        "[policy]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/99\"]\n",
    )
    .unwrap();
    let (_, stderr) = serve_fails(
        &dir,
        &["--config", "keyward.toml", "--listen", "127.0.0.1:0"],
    );
    assert!(stderr.contains("policy.trusted_proxies"), "{stderr}");
    nothing_created(&dir);
}

#[test]
fn a_bad_database_url_is_reported_once() {
    let dir = empty_dir();
    let (_, stderr) = serve_fails(
        &dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "mysql://db/keyward",
        ],
    );
    assert_eq!(
        stderr.matches("database url must start with").count(),
        1,
        "{stderr}"
    );
    nothing_created(&dir);
}

#[test]
fn a_bad_upstream_fails_before_any_state_is_created_naming_its_key() {
    for (upstream, why) in [
        ("127.0.0.1:9000", "http:// URL"),
        ("https://api.example:443", "https"),
    ] {
        let dir = empty_dir();
        let (_, stderr) = serve_fails(&dir, &["--listen", "127.0.0.1:0", "--upstream", upstream]);
        assert!(stderr.contains("gateway.upstream"), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
        nothing_created(&dir);
    }
    let dir = empty_dir();
    let (_, stderr) = serve_fails(
        &dir,
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9000",
            "--gateway-listen",
            "nowhere",
        ],
    );
    assert!(stderr.contains("gateway.listen"), "{stderr}");
    nothing_created(&dir);
}
