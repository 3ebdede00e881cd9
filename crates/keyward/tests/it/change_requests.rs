//! Two-person approval through the `keyward` binary, on both backends, as the README's
//! "Two-person approval of security changes" section shows it: the bootstrap admin turns
//! approval on and creates a Security Manager and a Security Admin (people, with their tokens);
//! the manager's `workspace update --ip-allowlist` is held (NOT APPLIED, exit 0) as a `chg_…`
//! request; the manager cannot approve it; the admin, with the code the
//! `change_request.created` webhook carried to a receiver in this test, approves it (a wrong
//! code first, then the right one from standard input), and the allowlist applies. A second
//! request is cancelled by its requester, a third rejected by the admin.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{cli, cli_as, json, on_postgres, on_sqlite, Server};

/// The private-destination switch that lets keyward deliver to the receiver on 127.0.0.1.
const ALLOW_LOOPBACK_HOOKS: &str = "KEYWARD_WEBHOOKS__ALLOW_PRIVATE_DESTINATIONS";

const WIDER: &str = "127.0.0.1, 203.0.113.5, 203.0.113.6";

/// A webhook receiver: answers every POST 200 and keeps its body.
struct Hooks {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Hooks {
    fn start() -> Hooks {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let kept = Arc::clone(&kept);
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(&stream);
                    // One request per connection is all keyward needs; answer and close.
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    kept.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).into_owned());
                    let mut stream = &stream;
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                });
            }
        });
        Hooks { url, bodies }
    }

    /// The first event of type `kind` about change request `id`, waiting up to 15 s for it.
    fn event(&self, kind: &str, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .bodies
                .lock()
                .unwrap()
                .iter()
                .filter_map(|b| serde_json::from_str::<Value>(b).ok())
                .find(|e| e["type"] == kind && e["data"]["id"] == id);
            if let Some(event) = found {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} event for {id}; received: {:?}",
                self.bodies.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `args` with `--json` as `token`; panics unless it succeeds.
fn json_as(server: &Server, token: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = cli_as(server, token, &all, None);
    assert!(ok, "{args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// The first `chg_…` id in `text`.
fn change_id(text: &str) -> String {
    text.match_indices("chg_")
        .map(|(at, _)| {
            let hex: String = text[at + 4..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            format!("chg_{hex}")
        })
        .find(|id| id.len() == 4 + 32)
        .unwrap_or_else(|| panic!("no change request id in: {text}"))
}

/// The workspace allowlist, as stored.
fn allowlist(server: &Server) -> Vec<String> {
    let ws = json(server, &["workspace", "get"]);
    ws["settings"]["ip_allowlist"]
        .as_array()
        .unwrap_or_else(|| panic!("no allowlist: {ws}"))
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}

/// `keyward verify` of `secret` from `ip`: (accepted, what it printed).
fn verify_from(server: &Server, secret: &str, ip: &str) -> (bool, String) {
    let (ok, out, err) = cli(
        server,
        &["verify", secret, "--ip", ip, "--permission", "orders:read"],
    );
    (ok, format!("{out}{err}"))
}

/// A person: a human user holding the workspace's ready-made human role `human_role`, and a
/// token of theirs (made by the bootstrap admin) acting with a new api role of `perms`.
fn person(server: &Server, name: &str, human_role: &str, perms: &[&str]) -> (String, String) {
    let roles = json(server, &["role", "list", "--all"]);
    let role = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == human_role)
        .unwrap_or_else(|| panic!("every workspace offers {human_role}: {roles}"));
    assert_eq!(role["kind"], "human", "{role}");
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
    let user = json(
        server,
        &[
            "user",
            "create",
            "--kind",
            "human",
            "--name",
            name,
            "--email",
            &email,
            "--role",
            role["id"].as_str().unwrap(),
        ],
    );
    let user_id = user["id"].as_str().unwrap();
    let api_name = format!("{name} api");
    let mut args = vec![
        "role",
        "create",
        "--name",
        &api_name,
        "--kind",
        "api",
        "--scope",
        "workspace",
    ];
    for p in perms {
        args.extend(["--permission", p]);
    }
    let api = json(server, &args);
    let token_name = format!("{name} cli");
    let created = json(
        server,
        &[
            "token",
            "create",
            "--owner",
            user_id,
            "--name",
            &token_name,
            "--role",
            api["id"].as_str().unwrap(),
        ],
    );
    (
        user_id.to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// The manager asks for `allowlist` (held, not applied, exit 0); answers the request's id.
fn request(server: &Server, manager: &str, allowlist: &str, reason: &str) -> String {
    let (ok, out, err) = cli_as(
        server,
        manager,
        &[
            "workspace",
            "update",
            "--ip-allowlist",
            allowlist,
            "--reason",
            reason,
        ],
        None,
    );
    assert!(ok, "a held change exits 0: {out}{err}");
    assert!(out.starts_with("NOT APPLIED"), "{out}");
    assert!(out.contains("keyward change-request approve chg_"), "{out}");
    change_id(&out)
}

fn approval_flow(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cli(server, &["workspace", "get"]).0 {
        assert!(Instant::now() < deadline, "server did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    let hooks = Hooks::start();
    let (ok, out, err) = cli(
        server,
        &[
            "webhook",
            "create",
            "--endpoint",
            &hooks.url,
            "--event",
            "change_request.created",
            "--event",
            "change_request.applied",
            "--description",
            "approvers",
        ],
    );
    assert!(ok, "{out}{err}");

    // An integration whose token the workspace allowlist will govern.
    json(server, &["permission", "put", "orders:read"]);
    let role = json(
        server,
        &[
            "role",
            "create",
            "--name",
            "Integration",
            "--kind",
            "api",
            "--scope",
            "workspace",
            "--permission",
            "orders:read",
        ],
    );
    let shop = json(
        server,
        &[
            "user",
            "create",
            "--kind",
            "service",
            "--name",
            "shop",
            "--role",
            role["id"].as_str().unwrap(),
        ],
    );
    let shop = json(
        server,
        &[
            "token",
            "create",
            "--owner",
            shop["id"].as_str().unwrap(),
            "--name",
            "shop prod",
        ],
    );
    let shop = shop["secret"].as_str().unwrap().to_owned();

    // Turning approval on (with the tests' own address as the allowlist) applies at once.
    let ws = json(
        server,
        &[
            "workspace",
            "update",
            "--require-approval",
            "true",
            "--ip-allowlist",
            "127.0.0.1",
        ],
    );
    assert_eq!(ws["settings"]["require_approval"], true, "{ws}");
    assert_eq!(allowlist(server), ["127.0.0.1/32"]);
    let (ok, out) = verify_from(server, &shop, "203.0.113.5");
    assert!(!ok && out.contains("IP_NOT_ALLOWED"), "{out}");

    let (_, manager) = person(
        server,
        "Security Manager",
        "Security Manager",
        &["keyward.workspace:*"],
    );
    let (admin_id, admin) = person(
        server,
        "Security Admin",
        "Security Admin",
        &["keyward.workspace:*", "keyward.security:approve"],
    );

    // The manager asks for two more addresses: nothing changes yet.
    let id = request(server, &manager, WIDER, "warehouse");
    assert_eq!(allowlist(server), ["127.0.0.1/32"]);
    let (ok, out) = verify_from(server, &shop, "203.0.113.5");
    assert!(!ok && out.contains("IP_NOT_ALLOWED"), "{out}");
    let pending = json_as(server, &manager, &["change-request", "show", &id]);
    assert_eq!(pending["state"], "pending", "{pending}");
    assert_eq!(pending["reason"], "warehouse", "{pending}");
    assert!(pending.get("approval_code").is_none(), "{pending}");

    // The approvers' webhook carries the code.
    let created = hooks.event("change_request.created", &id);
    let code = created["data"]["approval_code"]
        .as_str()
        .unwrap_or_else(|| panic!("no approval code: {created}"))
        .to_owned();
    assert_eq!(code.len(), 11, "{code}");

    // The manager cannot approve, not even with the right code: approving is the approvers'.
    let (ok, out, err) = cli_as(
        server,
        &manager,
        &["change-request", "approve", &id, "--code", &code],
        None,
    );
    assert!(!ok, "{out}");
    assert!(err.contains("INSUFFICIENT_PERMISSIONS"), "{err}");
    assert!(!err.contains(&code) && !out.contains(&code), "{out}{err}");

    // A wrong code is refused; the right one, from standard input, applies the change.
    let (ok, out, err) = cli_as(
        server,
        &admin,
        &["change-request", "approve", &id, "--code", "00000-00000"],
        None,
    );
    assert!(!ok, "{out}");
    assert!(err.contains("INVALID_APPROVAL_CODE"), "{err}");
    assert_eq!(allowlist(server), ["127.0.0.1/32"]);
    let (ok, out, err) = cli_as(
        server,
        &admin,
        &[
            "change-request",
            "approve",
            &id,
            "--code",
            "-",
            "--comment",
            "checked with the warehouse",
        ],
        Some(&format!("{code}\n")),
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("Approved: change request {id} is applied.")),
        "{out}"
    );
    assert!(!out.contains(&code), "{out}");

    let applied = json_as(server, &manager, &["change-request", "show", &id]);
    assert_eq!(applied["state"], "applied", "{applied}");
    assert_eq!(applied["approvals"][0]["user_id"], admin_id, "{applied}");
    assert_eq!(
        allowlist(server),
        ["127.0.0.1/32", "203.0.113.5/32", "203.0.113.6/32"]
    );
    for ip in ["203.0.113.5", "203.0.113.6"] {
        let (ok, out) = verify_from(server, &shop, ip);
        assert!(ok && out.contains("VALID"), "{ip}: {out}");
    }
    let event = hooks.event("change_request.applied", &id);
    assert!(event["data"].get("approval_code").is_none(), "{event}");
    assert_eq!(event["data"]["state"], "applied", "{event}");

    let listed = json_as(
        server,
        &admin,
        &["change-request", "list", "--state", "applied"],
    );
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["id"], id.as_str());
    let (ok, table, _) = cli_as(server, &admin, &["cr", "list", "--state", "applied"], None);
    assert!(
        ok && table.contains(&id) && table.contains("warehouse"),
        "{table}"
    );

    // A second request, withdrawn by the manager.
    let second = request(server, &manager, "127.0.0.1, 198.51.100.7", "temporary");
    let (ok, out, err) = cli_as(
        server,
        &manager,
        &[
            "change-request",
            "cancel",
            &second,
            "--comment",
            "not needed",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("Cancelled change request"), "{out}");
    let shown = json_as(server, &manager, &["change-request", "show", &second]);
    assert_eq!(shown["state"], "cancelled", "{shown}");

    // A third, refused by the admin.
    let third = request(server, &manager, "127.0.0.1, 198.51.100.8", "another");
    let (ok, out, err) = cli_as(
        server,
        &admin,
        &["change-request", "reject", &third, "--comment", "not ours"],
        None,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("Rejected change request"), "{out}");
    let shown = json_as(server, &admin, &["change-request", "show", &third]);
    assert_eq!(shown["state"], "rejected", "{shown}");
    assert_eq!(
        allowlist(server),
        ["127.0.0.1/32", "203.0.113.5/32", "203.0.113.6/32"]
    );

    // Every step is audited, the code nowhere; the chain holds; the log never saw the code.
    let (ok, trail, err) = cli(server, &["audit", "export", "--action", "change_request.*"]);
    assert!(ok, "{err}");
    for action in [
        "change_request.created",
        "change_request.code_failed",
        "change_request.approved",
        "change_request.applied",
        "change_request.cancelled",
        "change_request.rejected",
    ] {
        assert!(trail.contains(action), "{action} missing: {trail}");
    }
    assert!(!trail.contains(&code), "the approval code was audited");
    let (ok, out, err) = cli(server, &["audit", "verify"]);
    assert!(ok && out.contains("intact"), "{out}{err}");
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(!log.contains(&code), "the approval code was logged");
}

#[test]
fn change_requests_through_the_cli_on_sqlite() {
    on_sqlite(&[(ALLOW_LOOPBACK_HOOKS, "true".into())], approval_flow);
}

#[test]
fn change_requests_through_the_cli_on_postgres() {
    on_postgres(
        "change_requests_through_the_cli_on_postgres",
        &[(ALLOW_LOOPBACK_HOOKS, "true".into())],
        approval_flow,
    );
}
