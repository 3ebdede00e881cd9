//! The README is executable: every shell command in its `sh` blocks runs, in order, against a
//! real `keyward serve` on a fresh SQLite file, through bash and the real CLI.
//!
//! What the runner adds, and nothing else: `keyward` is the binary built for this test; the
//! server's own address stands for `127.0.0.1:8080` / `localhost:8080`; a placeholder such as
//! `rol_…`, `usr_…`, `tok_…`, `whk_…` or `kw_…` is the id or secret of that kind that the
//! commands before it printed last (as a reader would copy it); `export` lines set the
//! environment of the commands after them. A command must succeed, unless its comment says
//! `→ CODE` for a refusal, which it must then print and exit non-zero; `tail`, which follows
//! for ever, runs for two seconds. The two set-up commands (`cargo …`) and the `alias` line
//! are what this test itself is, and are not run again.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{random_hex, serve};

/// The commands of the README's `sh` blocks, continuation lines joined.
fn commands(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in readme.lines() {
        let trimmed = line.trim();
        if let Some(lang) = trimmed.strip_prefix("```") {
            in_sh = !in_sh && lang == "sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let command = std::mem::take(&mut pending);
        if !command.is_empty() && !command.starts_with('#') {
            out.push(command);
        }
    }
    out
}

/// The refusal a command's comment announces (`# → REVOKED`), if any.
fn expected_refusal(command: &str) -> Option<String> {
    let (_, comment) = command.split_once("# →")?;
    let code: String = comment
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
        .collect();
    (!code.is_empty() && code != "VALID").then_some(code)
}

/// The ids and secrets a command printed, in order.
fn harvest(text: &str, last: &mut HashMap<&'static str, String>) {
    for prefix in ["rol_", "usr_", "tok_", "whk_", "ws_"] {
        for (at, _) in text.match_indices(prefix) {
            let rest = &text[at + prefix.len()..];
            let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            let boundary = at == 0 || !text.as_bytes()[at - 1].is_ascii_alphanumeric();
            if hex.len() == 32 && boundary {
                last.insert(prefix, format!("{prefix}{hex}"));
            }
        }
    }
    for (at, _) in text.match_indices("kw_") {
        let secret: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if secret.len() == "kw_".len() + 49 {
            last.insert("kw_", secret);
        }
    }
}

#[test]
fn every_readme_command_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let commands = commands(&readme);
    assert!(
        commands.len() > 40,
        "found only {} commands",
        commands.len()
    );
    let db = std::env::temp_dir().join(format!("keyward-readme-{}.db", random_hex()));
    let server = serve(&[], &format!("sqlite://{}", db.display()));
    let address = server.url.trim_start_matches("http://").to_owned();
    let work = std::env::temp_dir().join(format!("keyward-readme-{}", random_hex()));
    std::fs::create_dir_all(&work).unwrap();
    let bin = env!("CARGO_BIN_EXE_keyward");
    let mut env: HashMap<String, String> = HashMap::new();
    let mut last: HashMap<&'static str, String> = HashMap::new();
    last.insert("kw_", server.token.clone());
    let mut ran = 0;
    for command in &commands {
        if command.starts_with("cargo ") || command.starts_with("alias ") {
            continue;
        }
        let mut line = command
            .replace("127.0.0.1:8080", &address)
            .replace("localhost:8080", &address);
        for (prefix, value) in &last {
            line = line.replace(&format!("{prefix}…"), value);
        }
        assert!(
            !line.contains('…') || line.contains("# "),
            "unfilled placeholder: {command}"
        );
        if let Some(assignment) = line.strip_prefix("export ") {
            let assignment = assignment.split('#').next().unwrap().trim();
            let (name, value) = assignment.split_once('=').unwrap();
            env.insert(name.to_owned(), value.to_owned());
            continue;
        }
        let follows = line.contains("audit tail");
        let script = if follows {
            let rest = line.strip_prefix("keyward").unwrap_or(&line);
            format!("timeout 2 '{bin}' {rest}\ntest $? = 124")
        } else {
            format!("keyward() {{ '{bin}' \"$@\"; }}\n{line}")
        };
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(&work)
            .env_remove("KEYWARD_URL")
            .env_remove("KEYWARD_TOKEN")
            .envs(&env)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match expected_refusal(command) {
            Some(code) => {
                assert!(
                    !out.status.success(),
                    "{command}: expected {code}, got success"
                );
                assert!(
                    stdout.contains(&code) || stderr.contains(&code),
                    "{command}: expected {code}:\n{stdout}\n{stderr}"
                );
            }
            None => assert!(
                out.status.success(),
                "{command} failed:\n{stdout}\n{stderr}"
            ),
        }
        harvest(&stdout, &mut last);
        ran += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(ran >= 35, "ran only {ran} commands");
    let _ = std::fs::remove_dir_all(&work);
}
